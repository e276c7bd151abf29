import { quoteIdent, type Queryable } from '../lib/db.js';
import type { PropertyDef } from './property-types.js';

/** The `events` setting written by `roster apply` (docs/config.md). */
export interface EventsSettings {
  userIdProperty: string | null;
  anonymousIdsPerProfile: number;
}

const DEFAULT_ANONYMOUS_IDS_PER_PROFILE = 50;

export async function loadEventsSettings(db: Queryable): Promise<EventsSettings> {
  const { rows } = await db.query<{ value: { userIdProperty?: string; anonymousIdsPerProfile?: number } }>(
    `SELECT value
     FROM roster_core.settings
     WHERE key = 'events'`,
  );
  const value = rows[0]?.value ?? {};

  return {
    userIdProperty: value.userIdProperty ?? null,
    anonymousIdsPerProfile: value.anonymousIdsPerProfile ?? DEFAULT_ANONYMOUS_IDS_PER_PROFILE,
  };
}

/** The profile each of the given anonymous ids stands for. */
export async function findAnonymousIds(db: Queryable, anonymousIds: string[]): Promise<Map<string, number>> {
  if (anonymousIds.length === 0) {
    return new Map();
  }
  const { rows } = await db.query<{ anonymousId: string; profileId: number }>(
    `SELECT
       anonymous_id AS "anonymousId",
       profile_id AS "profileId"
     FROM roster_core.anonymous_ids
     WHERE anonymous_id = ANY($1::text[])`,
    [anonymousIds],
  );

  return new Map(rows.map((row) => [row.anonymousId, row.profileId]));
}

/** Per profile: whether it holds any unique value, and how many anonymous ids point at it. */
export async function describeProfileIdentities(
  db: Queryable,
  profileIds: number[],
): Promise<Map<number, { isIdentified: boolean; anonymousIds: number }>> {
  if (profileIds.length === 0) {
    return new Map();
  }
  const { rows } = await db.query<{ profileId: number; isIdentified: boolean; anonymousIds: number }>(
    `SELECT
       p.id AS "profileId",
       EXISTS (SELECT 1 FROM roster_core.identities AS i WHERE i.profile_id = p.id) AS "isIdentified",
       (SELECT count(*)::int FROM roster_core.anonymous_ids AS a WHERE a.profile_id = p.id) AS "anonymousIds"
     FROM roster_core.profiles AS p
     WHERE p.id = ANY($1::bigint[])`,
    [profileIds],
  );

  return new Map(rows.map((row) => [row.profileId, { isIdentified: row.isIdentified, anonymousIds: row.anonymousIds }]));
}

/** Points anonymous ids at profiles, creating or re-pointing them. */
export async function upsertAnonymousIds(db: Queryable, links: Array<{ anonymousId: string; profileId: number }>): Promise<void> {
  if (links.length === 0) {
    return;
  }
  await db.query(
    `INSERT INTO roster_core.anonymous_ids (anonymous_id, profile_id)
     SELECT anonymous_id, profile_id
     FROM unnest($1::text[], $2::bigint[]) AS n (anonymous_id, profile_id)
     ON CONFLICT (anonymous_id) DO UPDATE
       SET profile_id = EXCLUDED.profile_id, updated_at = now()
       WHERE roster_core.anonymous_ids.profile_id <> EXCLUDED.profile_id`,
    [links.map((link) => link.anonymousId), links.map((link) => link.profileId)],
  );
}

export interface ProfileMerge {
  fromProfileId: number;
  intoProfileId: number;
  reason: string;
  details: Record<string, unknown>;
}

/**
 * Folds an anonymous profile into another: its events, anonymous ids, pending outbound events
 * and manual group memberships move over, values the target lacks are copied, and the merge is
 * recorded in roster_core.profile_merges. Calculated memberships are left to hydration, which
 * re-evaluates the target. Unique properties are not copied: an anonymous profile holds none.
 */
export async function mergeProfileInto(db: Queryable, merge: ProfileMerge, properties: Map<string, PropertyDef>): Promise<void> {
  const { fromProfileId: from, intoProfileId: into } = merge;
  await db.query('UPDATE roster_core.events SET profile_id = $2 WHERE profile_id = $1', [from, into]);
  await db.query('UPDATE roster_core.anonymous_ids SET profile_id = $2, updated_at = now() WHERE profile_id = $1', [from, into]);
  await db.query('UPDATE roster_core.outbound_events SET profile_id = $2 WHERE profile_id = $1', [from, into]);
  const columns = [...properties.values()].filter((property) => !property.isUnique).map((property) => quoteIdent(property.columnName));
  const copies = columns.map((column) => `${column} = COALESCE(t.${column}, f.${column})`);
  await db.query(
    `UPDATE roster_core.profiles AS t
     SET ${[...copies, 'value_times = f.value_times || t.value_times'].join(', ')},
       revision = nextval('roster_core.profile_revision_seq'),
       updated_at = now()
     FROM roster_core.profiles AS f
     WHERE t.id = $2
       AND f.id = $1`,
    [from, into],
  );
  await db.query(
    `WITH moved AS (
       INSERT INTO roster_core.group_memberships (group_id, profile_id, entered_at)
       SELECT m.group_id, $2, m.entered_at
       FROM roster_core.group_memberships AS m
       JOIN roster_core.groups AS g ON g.id = m.group_id AND g.type = 'manual'
       WHERE m.profile_id = $1
       ON CONFLICT ON CONSTRAINT group_memberships_pkey DO NOTHING
       RETURNING group_id
     )
     INSERT INTO roster_core.group_membership_changes (group_id, action, reason, profile_ids)
     SELECT group_id, 'enter', 'merge', ARRAY[$2::bigint]
     FROM moved
     UNION ALL
     SELECT group_id, 'exit', 'merge', ARRAY[$1::bigint]
     FROM roster_core.group_memberships
     WHERE profile_id = $1`,
    [from, into],
  );
  await db.query('DELETE FROM roster_core.profiles WHERE id = $1', [from]);
  await db.query(
    `INSERT INTO roster_core.profile_merges (from_profile_id, into_profile_id, reason, details)
     VALUES ($1, $2, $3, $4)`,
    [from, into, merge.reason, JSON.stringify(merge.details)],
  );
}
