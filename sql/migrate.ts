import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

const SQL_DIR = path.dirname(fileURLToPath(import.meta.url));
const MIGRATIONS_DIR = path.join(SQL_DIR, 'migrations');
const VIEWS_DIR = path.join(SQL_DIR, 'views');
const MIGRATION_NAME = /^\d{4}_[a-z0-9_]+\.sql$/;

/** Feeds knex the plain SQL files of sql/migrations, in order, refusing gaps in numbering. */
class SqlMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    const files = (await fs.readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();
    files.forEach((file, index) => {
      if (!MIGRATION_NAME.test(file) || Number(file.slice(0, 4)) !== index + 1) {
        throw new ConfigError('CDP_MIGRATION_GAP', `Migration ${file} is out of sequence: expected number ${String(index + 1).padStart(4, '0')}`);
      }
    });

    return files;
  }

  getMigrationName(migration: string): string {
    return migration;
  }

  async getMigration(migration: string): Promise<Knex.Migration> {
    const sql = await fs.readFile(path.join(MIGRATIONS_DIR, migration), 'utf8');
    // `CREATE INDEX CONCURRENTLY` and friends cannot run inside a transaction.
    const inTransaction = !sql.startsWith('-- migrate:no-transaction');

    // knex reads `config.transaction` per migration, though its types do not declare it.
    return {
      up: (knex: Knex) => knex.raw(sql),
      down: () => {
        throw new ConfigError('CDP_MIGRATION_FORWARD_ONLY', `Migration ${migration} cannot be undone: migrations are forward-only`);
      },
      config: { transaction: inTransaction },
    } as Knex.Migration;
  }
}

/**
 * Migrations are forward-only: a file that was applied must never change. Each applied file's
 * checksum is kept, and a file that no longer matches stops the migration before anything runs.
 */
async function verifyChecksums(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE IF NOT EXISTS roster_core.migration_checksums (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
  )`);
  const files = (await fs.readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql'));
  const current = new Map<string, string>();
  for (const file of files) {
    current.set(file, createHash('sha256').update(await fs.readFile(path.join(MIGRATIONS_DIR, file))).digest('hex'));
  }
  const { rows } = (await knex.raw('SELECT name, checksum FROM roster_core.migration_checksums')) as { rows: Array<{ name: string; checksum: string }> };
  for (const row of rows) {
    const checksum = current.get(row.name);
    if (checksum !== undefined && checksum !== row.checksum) {
      throw new ConfigError('CDP_MIGRATION_CHECKSUM_MISMATCH', `Migration ${row.name} changed after it was applied to this database`, { details: { migration: row.name } });
    }
  }
}

async function recordChecksums(knex: Knex): Promise<void> {
  const { rows } = (await knex.raw('SELECT name FROM roster_core.migrations')) as { rows: Array<{ name: string }> };
  for (const { name } of rows) {
    const checksum = createHash('sha256').update(await fs.readFile(path.join(MIGRATIONS_DIR, name))).digest('hex');
    await knex.raw('INSERT INTO roster_core.migration_checksums (name, checksum) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, checksum]);
  }
}

/** The database's own message, without the whole migration text knex puts in front of it. */
function shortMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const cut = message.lastIndexOf(' - ');

  return cut === -1 ? message : message.slice(cut + 3);
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/**
 * A clear error for a database that cannot be reached or does not exist, naming host, port
 * and database but never the password; undefined for anything else.
 */
function connectionError(err: unknown, databaseUrl: string): ConfigError | undefined {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  let host = 'localhost';
  let port = '5432';
  let database = '';
  try {
    const url = new URL(databaseUrl);
    host = url.hostname || host;
    port = url.port || port;
    database = decodeURIComponent(url.pathname.slice(1));
  } catch {
    // A socket path ("/var/run/postgresql db") is not a URL but is a valid connection string.
    if (!/^(\/|socket:)/.test(databaseUrl)) {
      return new ConfigError('CDP_DATABASE_URL_INVALID', 'DATABASE_URL is not a URL such as postgres://user:password@host:5432/database', { cause: err });
    }
  }
  const details = { host, port: Number(port), database, cause: code };
  if (UNREACHABLE.has(code) || (err instanceof Error && /timeout acquiring a connection|Connection terminated/i.test(err.message))) {
    return new ConfigError('CDP_DATABASE_UNREACHABLE', `Database server ${host}:${port} is unreachable (${code || 'timeout'}); check DATABASE_URL`, { cause: err, details });
  }
  if (code === '28P01' || code === '28000') {
    return new ConfigError('CDP_DATABASE_AUTH_FAILED', `Database server ${host}:${port} refused the user or password in DATABASE_URL (${code})`, { cause: err, details });
  }
  if (code === '3D000') {
    return new ConfigError('CDP_DATABASE_NOT_FOUND', `Database "${database}" does not exist on ${host}:${port}; create it or fix DATABASE_URL`, { cause: err, details });
  }

  return undefined;
}

/** knex prints its warnings (a failed connection attempt, with its stack) to the console. */
function knexLog(log: Logger): Knex.Config['log'] {
  const debug = (message: unknown) => log.debug({ knexMessage: String(message) }, 'knex message');

  return { warn: debug, error: debug, deprecate: debug, debug };
}

/**
 * Brings the database schema up to date, then re-applies every view of sql/views.
 * knex holds a lock while it migrates, so concurrent starts are safe.
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const knex = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 }, log: knexLog(log) });
  try {
    await knex.raw('CREATE SCHEMA IF NOT EXISTS roster_core');
    await verifyChecksums(knex);
    const [, applied] = (await knex.migrate.latest({
      migrationSource: new SqlMigrationSource(),
      schemaName: 'roster_core',
      tableName: 'migrations',
    })) as [number, string[]];
    await recordChecksums(knex);
    for (const file of (await fs.readdir(VIEWS_DIR)).filter((f) => f.endsWith('.sql')).sort()) {
      await knex.raw(await fs.readFile(path.join(VIEWS_DIR, file), 'utf8'));
    }
    log.info({ applied: applied.length }, 'database migrated');

    return applied;
  } catch (err) {
    if (err instanceof ConfigError) {
      throw err;
    }
    throw connectionError(err, databaseUrl) ?? new ConfigError('CDP_MIGRATION_FAILED', `Database migration failed: ${shortMessage(err)}`, { cause: err });
  } finally {
    await knex.destroy();
  }
}
