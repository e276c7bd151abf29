// Fresh, migrated Postgres databases for one benchmark each, dropped afterwards even on failure.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { createPool, type Pool } from '../../lib/db.js';
import { migrate } from '../../sql/migrate.js';

export interface BenchDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;

  return url.toString();
}

export async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates and migrates `roster_bench_<label>_<random>`. */
export async function createBenchDatabase(adminUrl: string, label: string, poolSize = 10): Promise<BenchDatabase> {
  const name = `roster_bench_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(3).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = databaseUrl(adminUrl, name);
  let pool: Pool | undefined;
  const drop = async (): Promise<void> => {
    await pool?.end().catch(() => {});
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  try {
    await migrate(url, pino({ level: 'silent' }));
    pool = createPool(url, poolSize);
  } catch (err) {
    await drop();
    throw err;
  }

  return { name, url, pool, drop };
}

/** Runs `fn` with a fresh database and drops it whatever happens. */
export async function withBenchDatabase<T>(adminUrl: string, label: string, fn: (db: BenchDatabase) => Promise<T>): Promise<T> {
  const db = await createBenchDatabase(adminUrl, label);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/** The typed profile column of each property key. */
export async function propertyColumns(pool: Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ key: string; columnName: string }>(
    'SELECT key, column_name AS "columnName" FROM roster_core.properties',
  );

  return Object.fromEntries(rows.map((row) => [row.key, row.columnName]));
}

/** ANALYZE after bulk loads, as autovacuum would eventually, so plans match a settled system. */
export async function analyze(pool: Pool): Promise<void> {
  await pool.query('ANALYZE');
}

/** EXPLAIN (ANALYZE, BUFFERS) text of a statement. */
export async function explainAnalyze(pool: Pool, sql: string, params: unknown[] = []): Promise<string> {
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);

  return rows.map((row) => row['QUERY PLAN']).join('\n');
}
