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

/**
 * Profiles a destination must hear about: members of its groups that it has never received,
 * that changed since their last successful export, or whose destination config changed; and
 * profiles it still holds that left every group it follows. The baseline is the last
 * successful export, never the last attempt.
 */
export async function findExportCandidates(db: Queryable, destinationId: number, configHash: string): Promise<ExportCandidate[]> {
  // Candidate ids first, in one pass over the followed groups' member ids and the rows the
  // destination holds (a full join gives joins, removals and changes together), comparing
  // revisions by primary key; group keys are aggregated only for those candidates, not for
  // every member.
  const { rows } = await db.query<ExportCandidate>(
    `WITH followed AS (
       SELECT dg.group_id, g.key
       FROM roster_core.destination_groups AS dg
       JOIN roster_core.groups AS g ON g.id = dg.group_id
       WHERE dg.destination_id = $1
     ),
     members AS (
       SELECT DISTINCT m.profile_id
       FROM roster_core.group_memberships AS m
       WHERE m.group_id IN (SELECT f.group_id FROM followed AS f)
     ),
     held AS (
       SELECT s.profile_id, s.revision, s.config_hash
       FROM roster_core.export_state AS s
       WHERE s.destination_id = $1
         AND NOT s.is_removed
     ),
     candidates AS (
       SELECT coalesce(mem.profile_id, h.profile_id) AS profile_id
       FROM members AS mem
       FULL JOIN held AS h ON h.profile_id = mem.profile_id
       LEFT JOIN roster_core.profiles AS p ON p.id = h.profile_id AND mem.profile_id IS NOT NULL
       WHERE h.profile_id IS NULL
          OR mem.profile_id IS NULL
          OR p.revision > h.revision
          OR h.config_hash <> $2
     )
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
     ) AS k ON true
     ORDER BY 1`,
    [destinationId, configHash],
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
