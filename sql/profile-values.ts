import { quoteIdent, quoteLiteral, type Queryable } from '../lib/db.js';
import { coerceValue, identityText, pgColumnType, type PropertyDef } from './property-types.js';
import {
  findIdentityOwners,
  identityMapKey,
  insertFreeIdentities,
  insertIdentities,
  insertIdentityConflicts,
  releaseOldIdentities,
  type IdentityConflict,
  type IdentityKey,
} from './identity-queries.js';

/** Raw values for one profile, by property key, as a source gave them. */
export interface ProfileValuesRow {
  profileId: number;
  values: Record<string, unknown>;
  /** Where the values came from, for conflict reports. */
  ref?: string;
  /** The source that gave these values, when it differs from the context's (hydration mixes sources). */
  sourceId?: number;
}

export interface WriteValuesContext {
  properties: Map<string, PropertyDef>;
  sourceId: number | null;
  runId: number | null;
}

export interface WriteValuesResult {
  /** Profiles whose stored values changed. */
  changedProfileIds: number[];
  /** For each profile in `changedProfileIds`, the property keys whose value changed. */
  changedKeys: Map<number, Set<string>>;
  invalidValues: number;
  conflicts: number;
}

/**
 * What `resolveProfiles` already knows about a batch, so writing it repeats no lookup and new
 * profiles are inserted with their values in one statement.
 */
export interface ResolvedIdentities {
  /** Profiles whose ids are reserved but whose rows do not exist yet. */
  newProfileIds: Set<number>;
  /** The owner of every unique value the rows carry, as resolution left it (updated here). */
  owners: Map<string, number>;
  /** Identities resolution gave its profiles (new primary values), not yet stored. */
  claims: Array<IdentityKey & { profileId: number }>;
}

type IdentityClaim = IdentityKey & { profileId: number };

/** A unique value a profile now holds (null: none), which replaces its earlier ones. */
interface IdentityRelease {
  propertyId: number;
  profileId: number;
  value: string | null;
}

interface InvalidValue {
  profileId: number;
  propertyId: number;
  raw: string;
  reason: string;
  sourceId: number | null;
}

type Typed = string | number | boolean | Date | null | Array<string | number | boolean | Date | null>;

function rawText(raw: unknown): string {
  if (raw instanceof Date) {
    return raw.toISOString();
  }

  return typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
}

/** Checks each value against its property type; failures are returned, not stored. */
function coerceRow(row: ProfileValuesRow, properties: Map<string, PropertyDef>, invalid: InvalidValue[]): Map<string, Typed> {
  const typed = new Map<string, Typed>();
  for (const [key, raw] of Object.entries(row.values)) {
    const property = properties.get(key);
    if (!property) {
      continue;
    }
    if (property.isList) {
      const items = raw === null || raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      const out: Array<string | number | boolean | Date | null> = [];
      let failed: string | null = null;
      for (const item of items) {
        const result = coerceValue(property.type, item);
        if (!result.ok) {
          failed = result.reason;
          break;
        }
        if (result.value !== null) out.push(result.value);
      }
      if (failed) {
        invalid.push({ profileId: row.profileId, propertyId: property.id, raw: rawText(raw), reason: failed, sourceId: row.sourceId ?? null });
      } else {
        typed.set(key, out);
      }
      continue;
    }
    const result = coerceValue(property.type, raw);
    if (result.ok) {
      typed.set(key, result.value);
    } else {
      invalid.push({ profileId: row.profileId, propertyId: property.id, raw: rawText(raw), reason: result.reason, sourceId: row.sourceId ?? null });
    }
  }

  return typed;
}

/**
 * Decides which unique values the rows may claim. A value another profile already holds is
 * not written: the profiles are kept apart and the conflict is recorded (docs/identity.md).
 * `knownOwners` (from resolveProfiles) saves the lookup; the claims are stored by the caller.
 */
async function claimUniqueValues(
  db: Queryable,
  rows: Array<{ row: ProfileValuesRow; typed: Map<string, Typed> }>,
  properties: Map<string, PropertyDef>,
  knownOwners?: Map<string, number>,
): Promise<{ conflicts: IdentityConflict[]; claims: IdentityClaim[] }> {
  const uniques = [...properties.values()].filter((p) => p.isUnique);
  if (uniques.length === 0) {
    return { conflicts: [], claims: [] };
  }
  let owners = knownOwners;
  if (owners === undefined) {
    const keys: IdentityKey[] = [];
    for (const { typed } of rows) {
      for (const property of uniques) {
        const value = typed.get(property.key);
        if (value !== undefined && value !== null && !Array.isArray(value)) {
          keys.push({ propertyId: property.id, value: identityText(value) });
        }
      }
    }
    owners = await findIdentityOwners(db, keys);
  }
  const conflicts: IdentityConflict[] = [];
  const claims: IdentityClaim[] = [];
  for (const { row, typed } of rows) {
    for (const property of uniques) {
      const value = typed.get(property.key);
      if (value === undefined || value === null || Array.isArray(value)) {
        continue;
      }
      const text = identityText(value);
      const mapKey = identityMapKey(property.id, text);
      const owner = owners.get(mapKey);
      if (owner === undefined) {
        owners.set(mapKey, row.profileId);
        claims.push({ propertyId: property.id, value: text, profileId: row.profileId });
      } else if (owner !== row.profileId) {
        typed.delete(property.key);
        conflicts.push({
          propertyKey: property.key,
          value: text,
          profileId: row.profileId,
          otherProfileId: owner,
          resolution: 'kept_apart',
          recordRef: row.ref ?? null,
        });
      }
    }
  }

  return { conflicts, claims };
}

function timesEntry(key: string): string {
  const column = quoteIdent(key);
  const name = quoteLiteral(key);

  return `${name}, CASE WHEN p.${column} IS DISTINCT FROM v.${column} THEN jsonb_build_object('createdAt', COALESCE(p.value_times -> ${name} -> 'createdAt', to_jsonb(now())), 'updatedAt', to_jsonb(now())) END`;
}

/**
 * One UPDATE for all rows that carry the same set of keys; returns each changed profile with
 * the keys whose value changed.
 */
async function updateColumns(
  db: Queryable,
  keys: string[],
  rows: Array<Record<string, unknown>>,
  properties: Map<string, PropertyDef>,
): Promise<Array<{ id: number; changedColumns: string[] }>> {
  const defs = keys.map((key) => properties.get(key) as PropertyDef);
  const columns = defs.map((def) => quoteIdent(def.columnName));
  const recordType = defs.map((def, i) => `${columns[i]} ${pgColumnType(def.type, def.isList)}`).join(', ');
  // jsonb_build_object takes at most 100 arguments, so value_times is built in chunks.
  const timeChunks: string[] = [];
  for (let i = 0; i < defs.length; i += 40) {
    timeChunks.push(`jsonb_strip_nulls(jsonb_build_object(${defs.slice(i, i + 40).map((def) => timesEntry(def.columnName)).join(', ')}))`);
  }
  // The changed columns are read back from value_times: the SET stamps a column's updatedAt
  // with now() exactly when its old and new values differ, judged on the row version the
  // UPDATE really changed (also after waiting for a concurrent writer), so no second look at
  // the old row is needed. A column already stamped earlier in the same transaction is
  // reported again, which only costs a needless re-evaluation.
  const changedColumns = `array_remove(ARRAY[${defs
    .map((def) => `CASE WHEN p.value_times -> ${quoteLiteral(def.columnName)} -> 'updatedAt' = to_jsonb(now()) THEN ${quoteLiteral(def.columnName)} END`)
    .join(', ')}], NULL)`;
  const sql = `
    UPDATE roster_core.profiles AS p
    SET ${columns.map((column) => `${column} = v.${column}`).join(', ')},
        value_times = p.value_times || ${timeChunks.join(' || ')},
        revision = nextval('roster_core.profile_revision_seq'),
        updated_at = now()
    FROM jsonb_to_recordset($1::jsonb) AS v (profile_id bigint, ${recordType})
    WHERE p.id = v.profile_id
      AND (${columns.map((c) => `p.${c}`).join(', ')}, NULL) IS DISTINCT FROM (${columns.map((c) => `v.${c}`).join(', ')}, NULL)
    RETURNING p.id, ${changedColumns} AS "changedColumns"`;
  const { rows: changed } = await db.query<{ id: number; changedColumns: string[] }>(sql, [JSON.stringify(rows)]);

  return changed;
}

/**
 * Inserts profiles whose ids were reserved, each with its values and their times, in one
 * statement; returns the keys of each profile's non-null values, all of them changes. Values
 * travel as one typed array per column (a list property as JSON text per row), which Postgres
 * reads faster than a JSON document of all rows.
 */
async function insertProfiles(
  db: Queryable,
  ids: number[],
  values: Map<number, Map<string, Typed>>,
  properties: Map<string, PropertyDef>,
): Promise<Map<number, Set<string>>> {
  const changedKeys = new Map<number, Set<string>>();
  if (ids.length === 0) {
    return changedKeys;
  }
  const defs = [...new Set(ids.flatMap((id) => [...(values.get(id)?.keys() ?? [])]))].sort().map((key) => properties.get(key) as PropertyDef);
  const columns = defs.map(() => [] as unknown[]);
  // Every value is new, so its times are the same now() for all: value_times is one of a few
  // objects, built once per set of keys that are set rather than once per row (MATERIALIZED,
  // or the planner builds it again for each row it joins).
  const timeSets = new Map<string, number>();
  const rowTimeSets = ids.map((id) => {
    const typed = values.get(id);
    const changed: string[] = [];
    defs.forEach((def, i) => {
      const value = typed?.get(def.key) ?? null;
      columns[i].push(def.isList && value !== null ? JSON.stringify(value) : value);
      if (value !== null) changed.push(def.key);
    });
    if (changed.length > 0) changedKeys.set(id, new Set(changed));
    const signature = textArrayLiteral(changed.map((key) => (properties.get(key) as PropertyDef).columnName));
    if (!timeSets.has(signature)) timeSets.set(signature, timeSets.size + 1);

    return timeSets.get(signature) as number;
  });
  const input = defs.map((def, i) => `$${i + 4}::${def.isList ? 'text' : pgColumnType(def.type, false)}[]`);
  const output = defs.map((def, i) =>
    def.isList
      ? `CASE WHEN n.c${i} IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(n.c${i}::jsonb))::${pgColumnType(def.type, true)} END`
      : `n.c${i}`,
  );
  await db.query(
    `WITH times AS MATERIALIZED (
       SELECT
         s.ord::int AS time_set,
         COALESCE((
           SELECT jsonb_object_agg(k.key, jsonb_build_object('createdAt', to_jsonb(now()), 'updatedAt', to_jsonb(now())))
           FROM unnest(s.keys::text[]) AS k (key)
         ), '{}'::jsonb) AS value_times
       FROM unnest($3::text[]) WITH ORDINALITY AS s (keys, ord)
     )
     INSERT INTO roster_core.profiles (id, ${[...defs.map((def) => quoteIdent(def.columnName)), 'value_times'].join(', ')})
     SELECT n.profile_id, ${[...output, 't.value_times'].join(', ')}
     FROM unnest($1::bigint[], $2::int[]${input.map((param) => `, ${param}`).join('')}) AS n (profile_id, time_set${defs.map((_, i) => `, c${i}`).join('')})
     JOIN times AS t ON t.time_set = n.time_set`,
    [ids, rowTimeSets, [...timeSets.keys()], ...columns],
  );

  return changedKeys;
}

async function recordInvalidValues(db: Queryable, contextSourceId: number | null, invalid: InvalidValue[]): Promise<void> {
  if (invalid.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.invalid_values (profile_id, property_id, raw_value, reason, source_id, seen_at)
     SELECT profile_id, property_id, raw_value, reason, source_id, now()
     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS n (profile_id, property_id, raw_value, reason, source_id)
     ON CONFLICT (profile_id, property_id) DO UPDATE
       SET raw_value = EXCLUDED.raw_value, reason = EXCLUDED.reason, source_id = EXCLUDED.source_id, seen_at = EXCLUDED.seen_at`,
    [invalid.map((i) => i.profileId), invalid.map((i) => i.propertyId), invalid.map((i) => i.raw), invalid.map((i) => i.reason), invalid.map((i) => i.sourceId ?? contextSourceId)],
  );
}

/** A valid value supersedes a value set aside earlier for the same property. */
async function clearInvalidValues(db: Queryable, cleared: Array<{ profileId: number; propertyId: number }>): Promise<void> {
  if (cleared.length === 0) {
    return;
  }
  await db.query(
    `DELETE FROM roster_core.invalid_values AS v
     USING unnest($1::bigint[], $2::bigint[]) AS n (profile_id, property_id)
     WHERE v.profile_id = n.profile_id AND v.property_id = n.property_id`,
    [cleared.map((c) => c.profileId), cleared.map((c) => c.propertyId)],
  );
}

/**
 * Stores typed property values for many profiles at once. Values that fail their type are
 * kept aside in roster_core.invalid_values (the stored value is left as it was); unique values
 * held by another profile are kept apart and reported. Only rows that really change are
 * updated, so `changedProfileIds` is exact. With `resolved` (from resolveProfiles in the same
 * transaction), its new profiles are inserted with their values, and nothing that cannot
 * apply to a profile that did not exist (released identities, values set aside earlier) is
 * looked for.
 */
export async function writeProfileValues(db: Queryable, context: WriteValuesContext, rows: ProfileValuesRow[], resolved?: ResolvedIdentities): Promise<WriteValuesResult> {
  const { properties } = context;
  const newProfileIds = resolved?.newProfileIds ?? new Set<number>();
  const invalid: InvalidValue[] = [];
  const coerced = rows.map((row) => ({ row, typed: coerceRow(row, properties, invalid) }));
  const { conflicts, claims } = await claimUniqueValues(db, coerced, properties, resolved?.owners);

  // Later rows for the same profile win; rows are grouped by their key set so a missing key
  // never overwrites a stored value with null.
  const merged = new Map<number, Map<string, Typed>>();
  for (const { row, typed } of coerced) {
    // A profile's first row takes the later rows' values (its own map is not read again).
    const target = merged.get(row.profileId);
    if (target === undefined) {
      merged.set(row.profileId, typed);
    } else {
      for (const [key, value] of typed) target.set(key, value);
    }
  }
  const keyOfProperty = new Map([...properties.values()].map((def) => [def.id, def.key]));
  const changedKeys = await insertProfiles(db, [...newProfileIds], merged, properties);
  // A new profile keeps only the unique values it ends up holding (a later row of the batch
  // may have replaced an earlier one); it has no earlier identity to release.
  const heldByNew = (claim: IdentityClaim) => {
    const value = merged.get(claim.profileId)?.get(keyOfProperty.get(claim.propertyId) ?? '');

    return value !== undefined && value !== null && !Array.isArray(value) && identityText(value) === claim.value;
  };
  const identities = [...(resolved?.claims ?? []), ...claims.filter((claim) => !newProfileIds.has(claim.profileId) || heldByNew(claim))];
  // Owners that resolution looked up under the identity lock leave only lock-free writers to
  // collide with; other callers' lookups were not locked.
  await (resolved ? insertFreeIdentities(db, identities) : insertIdentities(db, identities));

  const byKeySet = new Map<string, Array<Record<string, unknown>>>();
  const cleared: Array<{ profileId: number; propertyId: number }> = [];
  for (const [profileId, typed] of merged) {
    if (typed.size === 0 || newProfileIds.has(profileId)) continue;
    const keys = [...typed.keys()].sort();
    const record: Record<string, unknown> = { profile_id: profileId };
    for (const key of keys) {
      record[(properties.get(key) as PropertyDef).columnName] = typed.get(key);
      cleared.push({ profileId, propertyId: (properties.get(key) as PropertyDef).id });
    }
    const signature = keys.join(',');
    const group = byKeySet.get(signature) ?? [];
    group.push(record);
    byKeySet.set(signature, group);
  }
  const keyByColumn = new Map([...properties.values()].map((def) => [def.columnName, def.key]));
  for (const [signature, group] of byKeySet) {
    for (const { id, changedColumns } of await updateColumns(db, signature.split(','), group, properties)) {
      const keys = changedKeys.get(id) ?? new Set<string>();
      for (const column of changedColumns) keys.add(keyByColumn.get(column) ?? column);
      changedKeys.set(id, keys);
    }
  }
  // A unique value that did not change still identifies its profile; only changed ones let go
  // of the profile's earlier values (most writes, e.g. hydration, change no unique value). The
  // value kept is the one the profile ends up with: of two rows for one profile, the later one.
  const releases: IdentityRelease[] = [];
  for (const [profileId, typed] of merged) {
    if (newProfileIds.has(profileId)) continue;
    for (const [key, value] of typed) {
      const def = properties.get(key) as PropertyDef;
      if (!def.isUnique || Array.isArray(value) || !changedKeys.get(profileId)?.has(key)) continue;
      releases.push({ propertyId: def.id, profileId, value: value === null ? null : identityText(value) });
    }
  }
  await releaseOldIdentities(db, releases);
  await clearInvalidValues(db, cleared);
  await recordInvalidValues(db, context.sourceId, invalid);
  await insertIdentityConflicts(db, context, conflicts);

  return { changedProfileIds: [...changedKeys.keys()], changedKeys, invalidValues: invalid.length, conflicts: conflicts.length };
}

/**
 * What changed for each touched profile, as `queueHydration` takes it: the written keys (an
 * empty set when nothing changed), and "unknown" for new or merged profiles, whose every group
 * must be evaluated (a rule such as "email does not exist" holds for a brand-new profile).
 */
export function changedKeysForQueue(touched: number[], written: WriteValuesResult, unknown: Iterable<number>): Map<number, Set<string>> {
  const skip = new Set(unknown);
  const keys = new Map<number, Set<string>>();
  for (const id of touched) {
    if (!skip.has(id)) keys.set(id, written.changedKeys.get(id) ?? new Set());
  }

  return keys;
}

export interface QueueHydrationOptions {
  /**
   * The property keys of each profile that changed before it was queued (writeProfileValues
   * reports them), so hydration re-evaluates only the groups that read them. A profile left out
   * is re-evaluated against every group: leave out new and merged profiles, whose memberships
   * may change through keys that never changed (a rule true for missing values).
   */
  changedKeys?: Map<number, Set<string>>;
  /**
   * Properties of a source that an import has just read from it and written for each profile:
   * hydration does not fetch them again. Only the import that wrote them may pass them.
   */
  freshKeys?: Map<number, Set<string>>;
  /** Profiles created in the caller's transaction, which cannot be in the queue yet. */
  newProfileIds?: Set<number>;
}

/** A Postgres array literal, so a text[] per row travels as one element of a text[] parameter. */
function textArrayLiteral(values: Iterable<string>): string {
  const items = [...values].map((value) => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);

  return `{${items.join(',')}}`;
}

/** Marks profiles for a refresh of their properties from every source. */
export async function queueHydration(db: Queryable, profileIds: number[], options: QueueHydrationOptions = {}): Promise<void> {
  if (profileIds.length === 0) {
    return;
  }
  const ids = [...new Set(profileIds)];
  const literals = new Map<Set<string>, string>();
  const arrays = (subset: number[], byProfile: Map<number, Set<string>> | undefined) =>
    subset.map((id) => {
      const set = byProfile?.get(id);
      if (set === undefined) return null;
      // Rows of one import share few sets; each is written out once.
      const literal = literals.get(set) ?? textArrayLiteral(set);
      literals.set(set, literal);

      return literal;
    });
  const params = (subset: number[]) => [subset, arrays(subset, options.changedKeys), arrays(subset, options.freshKeys)];
  const rows = `SELECT n.profile_id, n.changed_keys::text[], n.fresh_keys::text[]
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS n (profile_id, changed_keys, fresh_keys)
     ORDER BY n.profile_id`;
  // Profiles created in this transaction cannot be queued yet: no conflict to look for.
  const created = ids.filter((id) => options.newProfileIds?.has(id));
  if (created.length > 0) {
    await db.query(`INSERT INTO roster_core.hydration_queue (profile_id, changed_keys, fresh_keys) ${rows}`, params(created));
  }
  const others = created.length > 0 ? ids.filter((id) => !options.newProfileIds?.has(id)) : ids;
  if (others.length === 0) {
    return;
  }
  // A second queueing adds its keys to the first; "unknown" (NULL) on either side wins. Fresh
  // keys work alike: a queueing that wrote nothing fresh (an event, a config change) means
  // everything is fetched again.
  await db.query(
    `INSERT INTO roster_core.hydration_queue AS q (profile_id, changed_keys, fresh_keys)
     ${rows}
     ON CONFLICT (profile_id) DO UPDATE
       SET changed_keys = CASE
             WHEN q.changed_keys IS NULL OR EXCLUDED.changed_keys IS NULL THEN NULL
             ELSE ARRAY(SELECT DISTINCT unnest(q.changed_keys || EXCLUDED.changed_keys))
           END,
           fresh_keys = CASE
             WHEN q.fresh_keys IS NULL OR EXCLUDED.fresh_keys IS NULL THEN NULL
             ELSE ARRAY(SELECT DISTINCT unnest(q.fresh_keys || EXCLUDED.fresh_keys))
           END`,
    params(others),
  );
}
