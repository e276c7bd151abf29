// Evidence for SQL bars: runs product code against a client that EXPLAIN ANALYZEs the statements
// it sends, inside a transaction that is rolled back, and returns the plans.
import type { Pool, PoolClient, Queryable } from '../../lib/db.js';

/**
 * Calls `fn` with a Queryable that prefixes statements matching `pattern` with
 * EXPLAIN (ANALYZE, BUFFERS); the product code then sees plan rows instead of its results,
 * which is fine for functions that only count what came back. Everything is rolled back.
 */
export async function explainProductQueries(pool: Pool, pattern: RegExp, fn: (db: Queryable) => Promise<unknown>): Promise<string[]> {
  const client: PoolClient = await pool.connect();
  const plans: string[] = [];
  const proxy = {
    query: async (textOrConfig: string | { text: string; values?: unknown[] }, maybeValues?: unknown[]) => {
      // A named statement comes as a config object; its EXPLAIN runs unnamed.
      const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
      const values = typeof textOrConfig === 'string' ? maybeValues : textOrConfig.values;
      if (!pattern.test(text)) return client.query(text, values);
      const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
      plans.push(result.rows.map((row) => row['QUERY PLAN']).join('\n'));

      return { ...result, rows: [] };
    },
  } as unknown as Queryable;
  try {
    await client.query('BEGIN');
    await fn(proxy).catch(() => {});
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }

  return plans;
}
