import { mapPgError, type Queryable } from '../lib/db.js';
import { isAppError } from '../lib/errors.js';

export interface IdentityKey {
  propertyId: number;
  value: string;
}

/**
 * Owners of the given unique values, keyed by `${propertyId}:${value}`.
 * TODO: a first import probes every value here and inserts it again later; one
 * INSERT ... ON CONFLICT DO NOTHING RETURNING could do both for new values.
 */
export async function findIdentityOwners(db: Queryable, keys: IdentityKey[]): Promise<Map<string, number>> {
  if (keys.length === 0) {
    return new Map();
  }
  const { rows } = await db.query<{ propertyId: number; value: string; profileId: number }>(
    `SELECT
       i.property_id AS "propertyId",
       i.value,
       i.profile_id AS "profileId"
     FROM roster_core.identities AS i
     JOIN unnest($1::bigint[], $2::text[]) AS k (property_id, value)
       ON k.property_id = i.property_id AND k.value = i.value`,
    [keys.map((key) => key.propertyId), keys.map((key) => key.value)],
  );

  return new Map(rows.map((row) => [identityMapKey(row.propertyId, row.value), row.profileId]));
}

export function identityMapKey(propertyId: number, value: string): string {
  return `${propertyId}:${value}`;
}

/** Profiles among `profileIds` that already hold a value of `propertyId`. */
export async function profilesWithIdentity(db: Queryable, propertyId: number, profileIds: number[]): Promise<Set<number>> {
  if (profileIds.length === 0) {
    return new Set();
  }
  const { rows } = await db.query<{ profileId: number }>(
    `SELECT DISTINCT profile_id AS "profileId"
     FROM roster_core.identities
     WHERE property_id = $1
       AND profile_id = ANY($2::bigint[])`,
    [propertyId, profileIds],
  );

  return new Set(rows.map((row) => row.profileId));
}

export async function insertIdentities(db: Queryable, rows: Array<IdentityKey & { profileId: number }>): Promise<void> {
  if (rows.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.identities (property_id, value, profile_id)
     SELECT property_id, value, profile_id
     FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS n (property_id, value, profile_id)
     ON CONFLICT (property_id, value) DO NOTHING`,
    [rows.map((row) => row.propertyId), rows.map((row) => row.value), rows.map((row) => row.profileId)],
  );
}

/**
 * Stores identities whose values were looked up under `lockIdentities` and found free. Only a
 * writer that claims values without the lock (hydration) can take one of them meanwhile; then
 * the statement is redone as `insertIdentities`, which skips taken values. A plain insert
 * costs a third less than one with ON CONFLICT. Call inside a transaction.
 */
export async function insertFreeIdentities(db: Queryable, rows: Array<IdentityKey & { profileId: number }>): Promise<void> {
  if (rows.length === 0) {
    return;
  }
  await db.query('SAVEPOINT free_identities');
  try {
    await db.query(
      `INSERT INTO roster_core.identities (property_id, value, profile_id)
       SELECT property_id, value, profile_id
       FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS n (property_id, value, profile_id)`,
      [rows.map((row) => row.propertyId), rows.map((row) => row.value), rows.map((row) => row.profileId)],
    );
  } catch (err) {
    const mapped = mapPgError(err);
    if (!isAppError(mapped) || mapped.code !== 'CDP_DB_UNIQUE_VIOLATION') {
      throw err;
    }
    await db.query('ROLLBACK TO SAVEPOINT free_identities');
    // TODO: the values skipped here stay in their new profiles' columns without a kept_apart
    // conflict; re-read their owners and record one.
    await insertIdentities(db, rows);
  }
  await db.query('RELEASE SAVEPOINT free_identities');
}

/**
 * A unique property holds one current value per profile: when it changes (or is cleared),
 * the old value stops identifying the profile. `value` null releases every value.
 */
export async function releaseOldIdentities(db: Queryable, rows: Array<{ propertyId: number; profileId: number; value: string | null }>): Promise<void> {
  if (rows.length === 0) {
    return;
  }
  await db.query(
    `DELETE FROM roster_core.identities AS i
     USING unnest($1::bigint[], $2::bigint[], $3::text[]) AS n (property_id, profile_id, value)
     WHERE i.property_id = n.property_id
       AND i.profile_id = n.profile_id
       AND (n.value IS NULL OR i.value <> n.value)`,
    [rows.map((row) => row.propertyId), rows.map((row) => row.profileId), rows.map((row) => row.value)],
  );
}

export async function createProfiles(db: Queryable, count: number): Promise<number[]> {
  if (count === 0) {
    return [];
  }
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO roster_core.profiles (created_at)
     SELECT now()
     FROM generate_series(1, $1::int)
     RETURNING id`,
    [count],
  );

  return rows.map((row) => row.id);
}

/**
 * Takes ids for profiles that are inserted later in the same transaction, with their values
 * (`writeProfileValues`), so resolution can refer to them before their rows exist.
 */
export async function reserveProfileIds(db: Queryable, count: number): Promise<number[]> {
  if (count === 0) {
    return [];
  }
  const { rows } = await db.query<{ id: number }>(
    // The sequence by name: pg_get_serial_sequence() here would be evaluated once per row.
    `SELECT nextval('roster_core.profiles_id_seq') AS id
     FROM generate_series(1, $1::int)`,
    [count],
  );

  return rows.map((row) => row.id);
}

export interface IdentityConflict {
  propertyKey: string;
  value: string;
  profileId: number;
  otherProfileId: number;
  resolution: string;
  recordRef: string | null;
}

export async function insertIdentityConflicts(
  db: Queryable,
  context: { sourceId: number | null; runId: number | null },
  conflicts: IdentityConflict[],
): Promise<void> {
  if (conflicts.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.identity_conflicts (source_id, run_id, property_key, value, profile_id, other_profile_id, resolution, record_ref)
     SELECT $1, $2, property_key, value, profile_id, other_profile_id, resolution, record_ref
     FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])
       AS c (property_key, value, profile_id, other_profile_id, resolution, record_ref)
     ON CONFLICT (property_key, value, profile_id, other_profile_id) DO NOTHING`,
    [
      context.sourceId,
      context.runId,
      conflicts.map((c) => c.propertyKey),
      conflicts.map((c) => c.value),
      conflicts.map((c) => c.profileId),
      conflicts.map((c) => c.otherProfileId),
      conflicts.map((c) => c.resolution),
      conflicts.map((c) => c.recordRef),
    ],
  );
}

/**
 * Serialises identity resolution between concurrent writers (two imports creating the same
 * person at once) for the rest of the transaction.
 */
export async function lockIdentities(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('roster.identities'))`);
}
