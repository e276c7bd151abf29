// Gives each test file a fresh, migrated Postgres database cloned from a template.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, type Pool } from '../../lib/db.js';

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The admin URL the global setup chose (DATABASE_URL, the default, or a container). */
export function adminUrl(): string {
  return inject('adminUrl');
}

export function databaseUrl(name: string, admin: string = adminUrl()): string {
  const url = new URL(admin);
  url.pathname = `/${name}`;

  return url.toString();
}

export async function adminQuery(sql: string, admin: string = adminUrl()): Promise<void> {
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A new database cloned from the migrated template; `drop()` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `roster_t_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
  const url = databaseUrl(name);
  const pool = createPool(url, 5);

  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
