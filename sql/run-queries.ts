import { TransientError } from '../lib/errors.js';
import type { Queryable } from '../lib/db.js';

export type RunKind = 'import' | 'export';
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface RunRow {
  id: number;
  kind: RunKind;
  sourceId: number | null;
  destinationId: number | null;
  status: RunStatus;
  trigger: string;
  counts: Record<string, number>;
  errorCode: string | null;
  errorMessage: string | null;
}

const RUN_COLUMNS = `
  id,
  kind,
  source_id AS "sourceId",
  destination_id AS "destinationId",
  status,
  trigger,
  counts,
  error_code AS "errorCode",
  error_message AS "errorMessage"`;

/**
 * Creates a queued run, or returns the unfinished one the object already has (at most one
 * run per source or destination is queued or running at a time). `isNew` says which.
 */
export async function createRun(
  db: Queryable,
  options: { kind: RunKind; objectId: number; trigger: string },
): Promise<{ run: RunRow; isNew: boolean }> {
  const column = options.kind === 'import' ? 'source_id' : 'destination_id';
  // The unfinished run that blocked the insert may finish before it is read: then insert again.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const inserted = await db.query<RunRow>(
      `INSERT INTO roster_core.runs (kind, ${column}, trigger)
       VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING
       RETURNING ${RUN_COLUMNS}`,
      [options.kind, options.objectId, options.trigger],
    );
    if (inserted.rows[0]) {
      return { run: inserted.rows[0], isNew: true };
    }
    const existing = await db.query<RunRow>(
      `SELECT ${RUN_COLUMNS}
       FROM roster_core.runs
       WHERE ${column} = $1 AND status IN ('queued', 'running')`,
      [options.objectId],
    );
    if (existing.rows[0]) {
      return { run: existing.rows[0], isNew: false };
    }
  }
  throw new TransientError('CDP_RUN_BUSY', `Could not create an ${options.kind} run for object ${options.objectId}: runs keep starting and finishing`);
}

export async function loadRun(db: Queryable, runId: number): Promise<RunRow | undefined> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM roster_core.runs WHERE id = $1`, [runId]);

  return rows[0];
}

export async function markRunRunning(db: Queryable, runId: number): Promise<void> {
  await db.query(
    `UPDATE roster_core.runs
     SET status = 'running', started_at = COALESCE(started_at, now()), heartbeat_at = now()
     WHERE id = $1`,
    [runId],
  );
}

/** Adds to the run's counters and touches its heartbeat; call inside the batch's transaction. */
export async function addRunCounts(db: Queryable, runId: number, counts: Record<string, number>): Promise<void> {
  const increments = Object.entries(counts).filter(([, value]) => value !== 0);
  await db.query(
    `UPDATE roster_core.runs AS r
     SET counts = (
           SELECT COALESCE(jsonb_object_agg(k, COALESCE((r.counts ->> k)::bigint, 0) + COALESCE(($2::jsonb ->> k)::bigint, 0)), '{}'::jsonb)
           FROM jsonb_object_keys(r.counts || $2::jsonb) AS k
         ),
         heartbeat_at = now()
     WHERE r.id = $1`,
    [runId, JSON.stringify(Object.fromEntries(increments))],
  );
}

export async function finishRun(
  db: Queryable,
  runId: number,
  outcome: { status: 'succeeded' } | { status: 'failed'; errorCode: string; errorMessage: string },
): Promise<void> {
  await db.query(
    `UPDATE roster_core.runs
     SET status = $2, error_code = $3, error_message = $4, finished_at = now()
     WHERE id = $1`,
    [runId, outcome.status, outcome.status === 'failed' ? outcome.errorCode : null, outcome.status === 'failed' ? outcome.errorMessage : null],
  );
}

/** Advisory lock class of run leases; the object id is the run id. */
export const RUN_LEASE_CLASS = 20250;

/**
 * Holds a run while a process works on it: a session advisory lock that Postgres releases the
 * moment that process's connection dies. Returns false when another process holds the run.
 */
export async function acquireRunLease(client: Queryable, runId: number): Promise<boolean> {
  const { rows } = await client.query<{ acquired: boolean }>('SELECT pg_try_advisory_lock($1, $2::int) AS acquired', [RUN_LEASE_CLASS, runId]);

  return rows[0].acquired;
}

export async function releaseRunLease(client: Queryable, runId: number): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1, $2::int)', [RUN_LEASE_CLASS, runId]);
}

/**
 * Fails runs nobody works on any more, so the next run can resume from the cursor: a running
 * run whose lease is gone (its process died), at once, however recent its heartbeat; and a
 * queued run nobody picked up for `staleAfterMs`. A running run whose lease is held is never
 * abandoned, however slow: another run of the same object would then work beside it.
 */
export async function abandonStaleRuns(db: Queryable, staleAfterMs: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE roster_core.runs AS r
     SET status = 'failed', error_code = 'CDP_RUN_ABANDONED',
         error_message = 'Run stopped reporting progress and was abandoned', finished_at = now()
     WHERE (
         r.status = 'queued'
         AND COALESCE(r.heartbeat_at, r.started_at, r.created_at) < now() - make_interval(secs => $1::double precision / 1000)
       )
       OR (
         r.status = 'running'
         AND NOT EXISTS (
           SELECT 1
           FROM pg_locks AS l
           WHERE l.locktype = 'advisory'
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = $2
             AND l.objid = r.id
             AND l.objsubid = 2
             AND l.granted
         )
       )`,
    [staleAfterMs, RUN_LEASE_CLASS],
  );

  return rowCount ?? 0;
}
