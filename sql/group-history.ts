/**
 * Reading membership history: who was in a group at a past time, and the entries and exits
 * of a group over a period. History is written by sql/group-membership.ts (and by merges) as
 * change sets, one row per group, action and statement with the profiles it moved.
 */
import type { Queryable } from '../lib/db.js';
import { loadGroupByKey, type MembershipReason } from './group-membership.js';

export interface HistoricalMember {
  profileId: number;
  /** When the profile last entered before the given time. */
  enteredAt: Date;
}

export interface HistoryEntry {
  profileId: number;
  action: 'enter' | 'exit';
  reason: MembershipReason;
  at: Date;
}

/**
 * Members of a group as of `at`, rebuilt from history by roster.group_members_as_of: a profile
 * is a member when its last entry or exit at or before `at` was an entry.
 */
export async function listGroupMembersAsOf(db: Queryable, groupKey: string, at: Date): Promise<HistoricalMember[]> {
  await loadGroupByKey(db, groupKey);
  const { rows } = await db.query<HistoricalMember>(
    `SELECT
       m.profile_id AS "profileId",
       m.entered_at AS "enteredAt"
     FROM roster.group_members_as_of($1, $2) AS m
     ORDER BY m.profile_id`,
    [groupKey, at],
  );

  return rows;
}

/**
 * Entries and exits of a group from `since` (inclusive) to `until` (exclusive), oldest first.
 * TODO: a profile filter reads every change set of the group (no per-profile index).
 */
export async function listGroupHistory(
  db: Queryable,
  groupKey: string,
  range: { since?: Date; until?: Date; profileId?: number } = {},
): Promise<HistoryEntry[]> {
  const group = await loadGroupByKey(db, groupKey);
  const { rows } = await db.query<HistoryEntry>(
    `SELECT
       moved.profile_id AS "profileId",
       h.action,
       h.reason,
       h.at
     FROM roster_core.group_membership_changes AS h
     CROSS JOIN LATERAL unnest(h.profile_ids) WITH ORDINALITY AS moved (profile_id, position)
     WHERE h.group_id = $1
       AND ($2::timestamptz IS NULL OR h.at >= $2)
       AND ($3::timestamptz IS NULL OR h.at < $3)
       AND ($4::bigint IS NULL OR (h.profile_ids @> ARRAY[$4::bigint] AND moved.profile_id = $4))
     ORDER BY h.at, h.id, moved.position`,
    [group.id, range.since ?? null, range.until ?? null, range.profileId ?? null],
  );

  return rows;
}
