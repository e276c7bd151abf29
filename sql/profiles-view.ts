import { quoteIdent, type Queryable } from '../lib/db.js';

/**
 * Rebuilds the BI view `roster.profiles`: the profile id, one typed column per property named
 * by its key, then the timestamps. The column list changes with the properties, which
 * `CREATE OR REPLACE VIEW` cannot do when a column goes away, so the view is dropped and
 * created again (inside the caller's transaction, so readers never see it missing).
 */
export async function refreshProfilesView(client: Queryable): Promise<void> {
  const { rows } = await client.query<{ key: string; columnName: string }>(
    `SELECT
       key,
       column_name AS "columnName"
     FROM roster_core.properties
     ORDER BY key`,
  );
  const columns = [
    'p.id AS profile_id',
    ...rows.map((row) => `p.${quoteIdent(row.columnName)} AS ${quoteIdent(row.key)}`),
    'p.created_at',
    'p.updated_at',
  ];

  await client.query('DROP VIEW IF EXISTS roster.profiles');
  await client.query(`CREATE VIEW roster.profiles AS\nSELECT\n  ${columns.join(',\n  ')}\nFROM roster_core.profiles AS p`);
  await client.query(`COMMENT ON VIEW roster.profiles IS 'One row per profile with one typed column per property; rebuilt by roster apply'`);
}
