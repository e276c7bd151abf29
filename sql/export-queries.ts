import type { Queryable } from '../lib/db.js';

export interface ExportCandidate {
  profileId: number;
  revision: number;
  /** Followed groups the profile is in now; empty means it must be removed. */
  groupKeys: string[];
  /** Whether the destination currently holds the profile (last success was not a removal). */
  isExported: boolean;
  lastHash: string | null;
}

/** A point in the stream of changes: the highest profile revision and history id handed out. */
export interface ChangePoint {
  revision: number;
  historyId: number;
}

/** A change point and the other transactions that were still running once it was read. */
export interface ObservedPoint extends ChangePoint {
  vxids: string[];
}

/** Where a destination's next diff starts (see roster_core.export_marks). */
export interface ExportMark extends ChangePoint {
  configHash: string;
  pending: ObservedPoint | null;
}

/**
 * Reads the highest revision and history id handed out so far, then lists the transactions
 * running in this database at that moment (each holds its virtual transaction id lock). A
 * transaction that drew a value up to the point and has not committed yet is in that list:
 * only once all of them have ended is the point safe to skip to.
 */
export async function observeChangePoint(db: Queryable): Promise<ObservedPoint> {
  const { rows } = await db.query<ChangePoint>(
    `SELECT
       (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM roster_core.profile_revision_seq) AS revision,
       (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM roster_core.group_membership_changes_id_seq) AS "historyId"`,
  );
  // A separate statement, so the list is read after the sequences.
  const { rows: running } = await db.query<{ vxids: string[] }>(
    `SELECT coalesce(array_agg(l.virtualxid::text ORDER BY l.virtualxid::text), '{}') AS vxids
     FROM pg_locks AS l
     JOIN pg_stat_activity AS a ON a.pid = l.pid
     WHERE l.locktype = 'virtualxid'
       AND l.mode = 'ExclusiveLock'
       AND l.granted
       AND l.pid <> pg_backend_pid()
       AND a.datname = current_database()`,
  );

  return { ...rows[0], vxids: running[0].vxids };
}

export async function loadExportMark(db: Queryable, destinationId: number): Promise<ExportMark | null> {
  const { rows } = await db.query<{
    configHash: string;
    revision: number;
    historyId: number;
    pendingRevision: number | null;
    pendingHistoryId: number | null;
    pendingVxids: string[] | null;
  }>(
    `SELECT config_hash AS "configHash", revision, history_id AS "historyId", pending_revision AS "pendingRevision",
       pending_history_id AS "pendingHistoryId", pending_vxids AS "pendingVxids"
     FROM roster_core.export_marks
     WHERE destination_id = $1`,
    [destinationId],
  );
  if (rows.length === 0) {
    return null;
  }
  const row = rows[0];
  const pending =
    row.pendingRevision === null || row.pendingHistoryId === null ? null : { revision: row.pendingRevision, historyId: row.pendingHistoryId, vxids: row.pendingVxids ?? [] };

  return { configHash: row.configHash, revision: row.revision, historyId: row.historyId, pending };
}

/** Where the next diff starts: the mark, unless the destination's config changed since (full diff). */
export function diffBase(mark: ExportMark | null, configHash: string): ChangePoint | null {
  return mark !== null && mark.configHash === configHash ? { revision: mark.revision, historyId: mark.historyId } : null;
}

/**
 * The mark after a successful diff that started from `base` (null: a full diff) and observed
 * `observed` before reading anything. The observed point is safe at once when no other
 * transaction was running; otherwise the previous run's pending point is safe when none of the
 * transactions it waited for were still running at this run's start, since this run then saw
 * everything they wrote.
 */
export function nextExportMark(previous: ExportMark | null, base: ChangePoint | null, observed: ObservedPoint, configHash: string): ExportMark {
  const running = new Set(observed.vxids);
  const floor = base ?? { revision: 0, historyId: 0 };
  let safe = floor;
  if (observed.vxids.length === 0) {
    safe = observed;
  } else if (previous?.pending && !previous.pending.vxids.some((vxid) => running.has(vxid))) {
    safe = previous.pending;
  }

  return {
    configHash,
    revision: Math.max(safe.revision, floor.revision),
    historyId: Math.max(safe.historyId, floor.historyId),
    pending: observed.vxids.length === 0 ? null : observed,
  };
}

export async function saveExportMark(db: Queryable, destinationId: number, mark: ExportMark): Promise<void> {
  await db.query(
    `INSERT INTO roster_core.export_marks
       (destination_id, config_hash, revision, history_id, pending_revision, pending_history_id, pending_vxids, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now())
     ON CONFLICT (destination_id) DO UPDATE
       SET config_hash = EXCLUDED.config_hash,
           revision = EXCLUDED.revision,
           history_id = EXCLUDED.history_id,
           pending_revision = EXCLUDED.pending_revision,
           pending_history_id = EXCLUDED.pending_history_id,
           pending_vxids = EXCLUDED.pending_vxids,
           updated_at = now()`,
    [destinationId, mark.configHash, mark.revision, mark.historyId, mark.pending?.revision ?? null, mark.pending?.historyId ?? null, mark.pending?.vxids ?? null],
  );
}

/** Profiles the destination did not accept: reconsidered on the next run whatever their revision. */
export async function markExportDue(db: Queryable, destinationId: number, profileIds: number[]): Promise<void> {
  if (profileIds.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.export_due (destination_id, profile_id)
     SELECT $1, profile_id FROM unnest($2::bigint[]) AS profile_id
     ON CONFLICT ON CONSTRAINT export_due_pkey DO NOTHING`,
    [destinationId, profileIds],
  );
}

/**
 * After a successful run, which read every due profile as a candidate: only the ones it could
 * not deliver stay due. Sent, unchanged, refused-again and no-longer-relevant ones are done.
 */
export async function settleExportDue(db: Queryable, destinationId: number, stillDueIds: number[]): Promise<void> {
  await db.query(`DELETE FROM roster_core.export_due WHERE destination_id = $1 AND profile_id <> ALL($2::bigint[])`, [destinationId, stillDueIds]);
}

// Shared by both diffs: what each candidate is now (its followed groups) and what the
// destination holds of it. A changed profile that is neither a member nor held is dropped.
const CANDIDATE_DETAILS = `
     SELECT
       c.profile_id AS "profileId",
       COALESCE(p.revision, s.revision) AS revision,
       COALESCE(k.group_keys, '{}'::text[]) AS "groupKeys",
       (s.profile_id IS NOT NULL AND NOT s.is_removed) AS "isExported",
       s.payload_hash AS "lastHash"
     FROM candidates AS c
     LEFT JOIN roster_core.profiles AS p ON p.id = c.profile_id
     LEFT JOIN roster_core.export_state AS s ON s.destination_id = $1 AND s.profile_id = c.profile_id
     LEFT JOIN LATERAL (
       SELECT array_agg(f.key ORDER BY f.key) AS group_keys
       FROM followed AS f
       JOIN roster_core.group_memberships AS m ON m.group_id = f.group_id AND m.profile_id = c.profile_id
       WHERE p.id IS NOT NULL
     ) AS k ON true
     WHERE k.group_keys IS NOT NULL
        OR (s.profile_id IS NOT NULL AND NOT s.is_removed)
     ORDER BY 1`;

const FOLLOWED = `
     followed AS (
       SELECT dg.group_id, g.key
       FROM roster_core.destination_groups AS dg
       JOIN roster_core.groups AS g ON g.id = dg.group_id
       WHERE dg.destination_id = $1
     )`;

/**
 * Profiles a destination must hear about: members of its groups that it has never received,
 * that changed since their last successful export, or whose destination config changed; and
 * profiles it still holds that left every group it follows. The baseline is the last
 * successful export, never the last attempt.
 *
 * With a `base` point (from the destination's mark), only profiles whose revision is above it,
 * whose membership of a followed group moved after it, or that the destination rejected are
 * looked at: a few index and sequential reads instead of every member. Without one (the first
 * run, or the destination's config changed) every member and every held profile is a candidate.
 */
export async function findExportCandidates(db: Queryable, destinationId: number, base: ChangePoint | null): Promise<ExportCandidate[]> {
  if (base === null) {
    const { rows } = await db.query<ExportCandidate>(
      `WITH ${FOLLOWED},
     candidates AS (
       SELECT m.profile_id
       FROM roster_core.group_memberships AS m
       WHERE m.group_id IN (SELECT f.group_id FROM followed AS f)
       UNION
       SELECT s.profile_id
       FROM roster_core.export_state AS s
       WHERE s.destination_id = $1
         AND NOT s.is_removed
     )${CANDIDATE_DETAILS}`,
      [destinationId],
    );

    return rows;
  }
  const { rows } = await db.query<ExportCandidate>(
    `WITH ${FOLLOWED},
     candidates AS (
       SELECT p.id AS profile_id
       FROM roster_core.profiles AS p
       WHERE p.revision > $2
       UNION
       SELECT unnest(h.profile_ids)
       FROM roster_core.group_membership_changes AS h
       WHERE h.id > $3
         AND h.group_id IN (SELECT f.group_id FROM followed AS f)
       UNION
       SELECT d.profile_id
       FROM roster_core.export_due AS d
       WHERE d.destination_id = $1
     )${CANDIDATE_DETAILS}`,
    [destinationId, base.revision, base.historyId],
  );

  return rows;
}

/** Current values of the mapped properties, by profile id (dates as ISO text). */
export async function loadMappedValues(db: Queryable, profileIds: number[], columns: string[]): Promise<Map<number, Record<string, unknown>>> {
  const { rows } = await db.query<{ id: number; values: Record<string, unknown> }>(
    `SELECT p.id, (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(to_jsonb(p)) AS e WHERE e.key = ANY($2::text[])) AS values
     FROM roster_core.profiles AS p
     WHERE p.id = ANY($1::bigint[])`,
    [profileIds, columns],
  );

  return new Map(rows.map((row) => [row.id, row.values ?? {}]));
}

/** A payload the destination refused this many times in a row is not sent again until it changes. */
export const MAX_REFUSALS = 3;

/**
 * Profiles whose current payload the destination has refused as invalid MAX_REFUSALS times
 * in a row (with that same payload hash), mapped to that hash.
 */
export async function loadRefusedHashes(db: Queryable, destinationId: number, profileIds: number[]): Promise<Map<number, string>> {
  const { rows } = await db.query<{ profileId: number; payloadHash: string }>(
    `SELECT profile_id AS "profileId", payload_hash AS "payloadHash"
     FROM (
       SELECT
         profile_id,
         payload_hash,
         status,
         is_retryable,
         row_number() OVER (PARTITION BY profile_id ORDER BY id DESC) AS age,
         first_value(payload_hash) OVER (PARTITION BY profile_id ORDER BY id DESC) AS newest_hash
       FROM roster_core.export_records
       WHERE destination_id = $1 AND profile_id = ANY($2::bigint[])
     ) AS recent
     WHERE age <= $3
     GROUP BY profile_id, payload_hash
     HAVING count(*) = $3
        AND bool_and(status = 'failed' AND is_retryable = false AND payload_hash = newest_hash)`,
    [destinationId, profileIds, MAX_REFUSALS],
  );

  return new Map(rows.map((row) => [row.profileId, row.payloadHash]));
}

export interface LedgerEntry {
  profileId: number;
  action: 'create' | 'update' | 'remove';
  payload: Record<string, unknown>;
  payloadHash: string;
  revision: number;
}

export async function insertLedgerEntries(db: Queryable, runId: number, destinationId: number, entries: LedgerEntry[]): Promise<Map<number, number>> {
  const { rows } = await db.query<{ id: number; profileId: number }>(
    `INSERT INTO roster_core.export_records (run_id, destination_id, profile_id, action, payload, payload_hash, revision)
     SELECT $1, $2, profile_id, action, payload, payload_hash, revision
     FROM unnest($3::bigint[], $4::text[], $5::jsonb[], $6::text[], $7::bigint[]) AS e (profile_id, action, payload, payload_hash, revision)
     RETURNING id, profile_id AS "profileId"`,
    [
      runId,
      destinationId,
      entries.map((e) => e.profileId),
      entries.map((e) => e.action),
      entries.map((e) => JSON.stringify(e.payload)),
      entries.map((e) => e.payloadHash),
      entries.map((e) => e.revision),
    ],
  );

  return new Map(rows.map((row) => [row.profileId, row.id]));
}

export async function markLedgerSent(db: Queryable, recordIds: number[]): Promise<void> {
  await db.query(
    `UPDATE roster_core.export_records SET status = 'sent', finished_at = now() WHERE id = ANY($1::bigint[])`,
    [recordIds],
  );
}

export async function markLedgerFailed(db: Queryable, failures: Array<{ recordId: number; code: string; message: string; isRetryable: boolean }>): Promise<void> {
  if (failures.length === 0) {
    return;
  }
  await db.query(
    `UPDATE roster_core.export_records AS r
     SET status = 'failed', error_code = f.code, error_message = f.message, is_retryable = f.is_retryable, finished_at = now()
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[]) AS f (id, code, message, is_retryable)
     WHERE r.id = f.id`,
    [failures.map((f) => f.recordId), failures.map((f) => f.code), failures.map((f) => f.message), failures.map((f) => f.isRetryable)],
  );
}

/** Records what the destination now holds; the next diff starts from here. */
export async function saveExportState(
  db: Queryable,
  destinationId: number,
  configHash: string,
  entries: Array<{ profileId: number; revision: number; payloadHash: string; isRemoved: boolean }>,
): Promise<void> {
  if (entries.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.export_state (destination_id, profile_id, revision, payload_hash, config_hash, is_removed, exported_at)
     SELECT $1, profile_id, revision, payload_hash, $2, is_removed, now()
     FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::boolean[]) AS e (profile_id, revision, payload_hash, is_removed)
     ON CONFLICT (destination_id, profile_id) DO UPDATE
       SET revision = EXCLUDED.revision,
           payload_hash = EXCLUDED.payload_hash,
           config_hash = EXCLUDED.config_hash,
           is_removed = EXCLUDED.is_removed,
           exported_at = EXCLUDED.exported_at`,
    [destinationId, configHash, entries.map((e) => e.profileId), entries.map((e) => e.revision), entries.map((e) => e.payloadHash), entries.map((e) => e.isRemoved)],
  );
}

/** Entries left pending by a run that died mid-send; their profiles are still due. */
export async function failInterruptedEntries(db: Queryable, destinationId: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE roster_core.export_records
     SET status = 'failed', error_code = 'CDP_EXPORT_INTERRUPTED', error_message = 'Export run stopped before the destination answered', is_retryable = true, finished_at = now()
     WHERE destination_id = $1 AND status = 'pending'`,
    [destinationId],
  );

  return rowCount ?? 0;
}
