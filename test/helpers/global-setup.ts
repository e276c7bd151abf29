// Migrates a template database once per test run; each test file clones it. The template's
// name is unique to the run, so two runs on one server do not drop each other's template.
// The server is DATABASE_URL, else the default local one, else a throwaway Postgres container.
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { pino } from 'pino';
import { migrate } from '../../sql/migrate.js';
import { adminQuery, databaseUrl, DEFAULT_ADMIN_URL } from './database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
    adminUrl: string;
  }
}

export interface AdminServer {
  url: string;
  stop?: () => Promise<void>;
}

/** Whether a Postgres server answers at `url`; an SQL error (bad database, role) still counts. */
async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();

    return true;
  } catch (err) {
    return /^[0-9A-Z]{5}$/.test((err as { code?: string }).code ?? '');
  } finally {
    await client.end().catch(() => {});
  }
}

/** A Postgres 15 container with trust auth and a `test` database, through testcontainers. */
export async function startPostgresContainer(): Promise<AdminServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('postgres:15-alpine')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' })
    .withExposedPorts(5432)
    // The entrypoint starts Postgres twice (init, then for real); the second start is ready.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();

  return {
    url: `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/test`,
    stop: async () => {
      await container.stop();
    },
  };
}

/**
 * DATABASE_URL first; when it is unset and nothing answers at the default URL, a container.
 * Without a container runtime that fails with a message saying what to set.
 */
export async function resolveAdminServer(options: { env?: NodeJS.ProcessEnv; defaultUrl?: string; startContainer?: () => Promise<AdminServer> } = {}): Promise<AdminServer> {
  const { env = process.env, defaultUrl = DEFAULT_ADMIN_URL, startContainer = startPostgresContainer } = options;
  if (env.DATABASE_URL) {
    return { url: env.DATABASE_URL };
  }
  if (await answers(defaultUrl)) {
    return { url: defaultUrl };
  }
  try {
    return await startContainer();
  } catch (err) {
    throw new Error(`no PostgreSQL at ${defaultUrl} and no container runtime: set DATABASE_URL`, { cause: err });
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await resolveAdminServer();
  const templateDb = `roster_test_template_${process.pid}`;
  await adminQuery(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`, server.url);
  await adminQuery(`CREATE DATABASE ${templateDb}`, server.url);
  await migrate(databaseUrl(templateDb, server.url), pino({ level: 'silent' }));
  project.provide('templateDb', templateDb);
  project.provide('adminUrl', server.url);

  return async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`, server.url);
    await server.stop?.();
  };
}
