import type { Queryable } from '../lib/db.js';

export interface RunSummary {
  runId: number;
  kind: 'import' | 'export';
  objectKey: string;
  status: string;
  counts: Record<string, number>;
  errorCode: string | null;
  errorMessage: string | null;
}

export async function maxRunId(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ id: number | null }>('SELECT max(id) AS id FROM roster_core.runs');

  return rows[0].id ?? 0;
}

/** Runs created after `afterRunId`, oldest first. */
export async function runsSince(db: Queryable, afterRunId: number): Promise<RunSummary[]> {
  const { rows } = await db.query<RunSummary>(
    `SELECT
       run_id AS "runId",
       kind,
       object_key AS "objectKey",
       status,
       counts,
       error_code AS "errorCode",
       error_message AS "errorMessage"
     FROM roster.runs
     WHERE run_id > $1
     ORDER BY run_id`,
    [afterRunId],
  );

  return rows;
}

export async function profileCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.profiles');

  return rows[0].count;
}

export async function groupSizes(db: Queryable): Promise<Array<{ key: string; type: string; members: number }>> {
  const { rows } = await db.query<{ key: string; type: string; members: number }>(
    `SELECT g.key, g.type, count(m.profile_id)::int AS members
     FROM roster_core.groups AS g
     LEFT JOIN roster_core.group_memberships AS m ON m.group_id = g.id
     GROUP BY g.id
     ORDER BY g.key`,
  );

  return rows;
}
