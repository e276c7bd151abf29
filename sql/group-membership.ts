/**
 * Group membership: incremental re-evaluation for changed profiles, full recompute of one
 * group, and manual members. Every statement that moves profiles writes one change set per
 * action to roster_core.group_membership_changes with its reason; the set's id orders the
 * change for exports, so the profile rows themselves are not rewritten.
 *
 * All work is set-based: one statement per group, whatever the number of profiles. History is
 * written from the RETURNING of the insert or delete itself, so two runs racing on the same
 * profiles record each change once (the loser's insert hits ON CONFLICT, its delete finds
 * nothing). Run these inside a transaction (withTransaction) so memberships and history
 * commit together.
 */
import type { Queryable } from '../lib/db.js';
import { ConfigError, InternalError, NotFoundError } from '../lib/errors.js';

export { dropGroupView, syncGroupView } from './group-views.js';

/** Why a profile entered or left a group; the history's reason check allows these only. */
export const MEMBERSHIP_REASONS = ['data_change', 'rule_change', 'manual', 'time_passing', 'merge'] as const;

export type MembershipReason = (typeof MEMBERSHIP_REASONS)[number];

function checkReason(reason: string): MembershipReason {
  if (!(MEMBERSHIP_REASONS as readonly string[]).includes(reason)) {
    throw new InternalError('CDP_GROUP_INVALID_REASON', `Membership reason "${reason.slice(0, 40)}" is not one of ${MEMBERSHIP_REASONS.join(', ')}`, {
      details: { reason },
    });
  }

  return reason as MembershipReason;
}

export interface MembershipChange {
  entered: number;
  exited: number;
  changedProfileIds: number[];
}

interface GroupRow {
  id: number;
  key: string;
  type: 'manual' | 'calculated';
  compiledSql: string | null;
}

const GROUP_COLUMNS = `id, key, type, compiled_sql AS "compiledSql"`;

// Writes the history (one change set per action, ids ascending) and returns the changed
// profiles; appended to a statement whose `entered` and `exited` CTEs return profile_id.
function historyTail(groupParam: string, reasonParam: string): string {
  return `,
history AS (
  ${historyInsert(groupParam, reasonParam)}
)
SELECT e.profile_id, 'enter' AS action FROM entered AS e
UNION ALL
SELECT x.profile_id, 'exit' AS action FROM exited AS x`;
}

// An empty change set writes no row (HAVING), so a statement that moved nobody leaves no trace.
function historyInsert(groupParam: string, reasonParam: string): string {
  return `INSERT INTO roster_core.group_membership_changes (group_id, action, reason, profile_ids)
  SELECT ${groupParam}, 'enter', ${reasonParam}, array_agg(e.profile_id ORDER BY e.profile_id) FROM entered AS e HAVING count(*) > 0
  UNION ALL
  SELECT ${groupParam}, 'exit', ${reasonParam}, array_agg(x.profile_id ORDER BY x.profile_id) FROM exited AS x HAVING count(*) > 0`;
}

function summarize(rows: Array<{ profile_id: number; action: string }>): MembershipChange {
  const changed = new Set<number>();
  let entered = 0;
  for (const row of rows) {
    changed.add(Number(row.profile_id));
    if (row.action === 'enter') {
      entered += 1;
    }
  }

  return { entered, exited: rows.length - entered, changedProfileIds: [...changed].sort((a, b) => a - b) };
}

export interface GroupByKey {
  id: number;
  key: string;
  type: 'manual' | 'calculated';
  rule: unknown;
}

/** The group with this key; throws CDP_GROUP_NOT_FOUND (NotFoundError) when there is none. */
export async function loadGroupByKey(client: Queryable, groupKey: string): Promise<GroupByKey> {
  const { rows } = await client.query<GroupByKey>('SELECT id, key, type, rule FROM roster_core.groups WHERE key = $1', [groupKey]);
  if (rows.length === 0) {
    throw new NotFoundError('CDP_GROUP_NOT_FOUND', `Group "${groupKey.slice(0, 60)}" does not exist`, { details: { group: groupKey } });
  }

  return rows[0];
}

async function loadGroup(client: Queryable, groupId: number): Promise<GroupRow> {
  const { rows } = await client.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM roster_core.groups WHERE id = $1`, [groupId]);
  if (rows.length === 0) {
    throw new NotFoundError('CDP_GROUP_NOT_FOUND', `Group ${groupId} does not exist`, { details: { groupId } });
  }

  return rows[0];
}

interface CalculatedGroup extends GroupRow {
  /** NULL when unknown: the group is then evaluated on every change. */
  propertyKeys: string[] | null;
  rule: unknown;
  isTimeRelative: boolean;
}

/** What a rule reads besides properties: other groups' memberships and events. */
export interface RuleDependencies {
  groupKeys: string[];
  usesEvents: boolean;
}

/** Finds `in_group` and `performed` nodes anywhere in a rule. */
export function ruleDependencies(rule: unknown): RuleDependencies {
  const groupKeys = new Set<string>();
  let usesEvents = false;
  const visit = (node: unknown, depth: number): void => {
    if (depth > 100 || node === null || typeof node !== 'object') {
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item) => visit(item, depth + 1));

      return;
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === 'performed') {
        usesEvents = true;
      }
      if (key === 'in_group') {
        const name = Array.isArray(value) ? value[0] : value;
        if (typeof name === 'string') {
          groupKeys.add(name);
        }
      }
      visit(value, depth + 1);
    }
  };
  visit(rule, 0);

  return { groupKeys: [...groupKeys], usesEvents };
}

async function loadCalculatedGroups(client: Queryable): Promise<CalculatedGroup[]> {
  const { rows } = await client.query<CalculatedGroup>(
    `SELECT ${GROUP_COLUMNS}, property_keys AS "propertyKeys", rule, is_time_relative AS "isTimeRelative"
     FROM roster_core.groups
     WHERE type = 'calculated'
       AND compiled_sql IS NOT NULL
     ORDER BY id`,
  );

  return rows;
}

/**
 * Groups in evaluation order: a group after every group its rule reads through `in_group`, so
 * it sees their fresh memberships. Groups caught in a cycle keep id order at the end.
 */
function inDependencyOrder(groups: CalculatedGroup[]): Array<CalculatedGroup & RuleDependencies> {
  const pending = groups.map((group) => ({ ...group, ...ruleDependencies(group.rule) }));
  const keys = new Set(groups.map((group) => group.key));
  const ordered: typeof pending = [];
  const done = new Set<string>();
  while (pending.length > 0) {
    const ready = pending.findIndex((group) => group.groupKeys.every((key) => done.has(key) || !keys.has(key) || key === group.key));
    const [next] = pending.splice(ready === -1 ? 0 : ready, 1);
    ordered.push(next);
    done.add(next.key);
  }

  return ordered;
}

export interface UpdateMembershipsOptions {
  /**
   * Property keys that changed, per profile; `null` for a profile means "unknown". A profile
   * missing from the map changed no property. Without the map, every group is evaluated for
   * every profile.
   */
  changedKeys?: Map<number, ReadonlySet<string> | null>;
  /** The profiles may have new events, so groups using `performed` are evaluated too. */
  eventsChanged?: boolean;
  /** Groups whose membership just changed for these profiles (groups reading them follow). */
  movedGroupKeys?: string[];
}

/**
 * Re-evaluates calculated groups for just `profileIds` and applies entries and exits. With
 * `changedKeys`, a profile is evaluated only against groups whose rule reads a changed key,
 * groups reading the membership of a group it just entered or left, and (with
 * `eventsChanged`) groups using events. Profiles missing from roster_core.profiles are ignored.
 */
export async function updateMembershipsForProfiles(
  client: Queryable,
  profileIds: number[],
  reason: MembershipReason,
  options: UpdateMembershipsOptions = {},
): Promise<MembershipChange> {
  checkReason(reason);
  // Sorted ids let the primary-key scans walk the index in order.
  const ids = [...new Set(profileIds)].sort((a, b) => a - b);
  if (ids.length === 0) {
    return { entered: 0, exited: 0, changedProfileIds: [] };
  }
  const groups = inDependencyOrder(await loadCalculatedGroups(client));
  const { changedKeys } = options;
  const moved = new Map<string, Set<number>>((options.movedGroupKeys ?? []).map((key) => [key, new Set(ids)]));

  const changes: Array<{ profile_id: number; action: string }> = [];
  for (const group of groups) {
    let targets = ids;
    if (changedKeys !== undefined && !(group.usesEvents && options.eventsChanged === true)) {
      const readKeys = group.propertyKeys;
      const movedIn = group.groupKeys.map((key) => moved.get(key)).filter((set) => set !== undefined);
      targets = ids.filter((id) => {
        const keys = changedKeys.get(id);
        if (movedIn.some((set) => set.has(id))) {
          return true;
        }
        if (keys === undefined || keys === null) {
          return keys === null;
        }

        return keys.size > 0 && (readKeys === null || readKeys.some((key) => keys.has(key)));
      });
    }
    if (targets.length === 0) {
      continue;
    }
    // compiled_sql is renderInline output: literals are quoted, identifiers come from properties.
    const { rows } = await client.query<{ profile_id: number; action: string }>(
      // Every part starts from the changed ids (unnest) and reads by primary key: OFFSET 0 keeps
      // each lookup a per-id index probe, so the planner never walks a rule's index, the whole
      // group or the whole table and filters on the ids.
      `WITH matching AS (
  SELECT c.id
  FROM unnest($1::bigint[]) AS c(id)
  CROSS JOIN LATERAL (
    SELECT 1 FROM roster_core.profiles AS p WHERE p.id = c.id AND (${group.compiledSql}) OFFSET 0
  ) AS x
),
current AS (
  SELECT c.id
  FROM unnest($1::bigint[]) AS c(id)
  CROSS JOIN LATERAL (
    SELECT 1 FROM roster_core.group_memberships AS m WHERE m.group_id = $2 AND m.profile_id = c.id OFFSET 0
  ) AS x
),
entered AS (
  INSERT INTO roster_core.group_memberships (group_id, profile_id)
  SELECT $2, t.id
  FROM matching AS t
  WHERE NOT EXISTS (SELECT 1 FROM current AS cu WHERE cu.id = t.id)
  ON CONFLICT ON CONSTRAINT group_memberships_pkey DO NOTHING
  RETURNING profile_id
),
exited AS (
  DELETE FROM roster_core.group_memberships AS m
  USING current AS cu
  WHERE m.group_id = $2
    AND m.profile_id = cu.id
    AND NOT EXISTS (SELECT 1 FROM matching AS t WHERE t.id = cu.id)
  RETURNING m.profile_id
)${historyTail('$2::bigint', '$3::text')}`,
      [targets, group.id, reason],
    );
    if (rows.length > 0) {
      moved.set(group.key, new Set(rows.map((row) => Number(row.profile_id))));
    }
    changes.push(...rows);
  }

  return summarize(changes);
}

/**
 * Recomputes one calculated group over every profile: entries are the rule's matches that are
 * not members, exits the members that no longer match. When its membership moved, the groups
 * whose rules read it through `in_group` are recomputed after it, with the same reason.
 */
export async function recomputeGroup(
  client: Queryable,
  groupId: number,
  reason: MembershipReason,
): Promise<{ entered: number; exited: number }> {
  checkReason(reason);
  const counts = await recomputeOneGroup(client, groupId, reason);
  if (counts.entered + counts.exited === 0) {
    return counts;
  }
  const groups = inDependencyOrder(await loadCalculatedGroups(client));
  const reached = new Set(groups.filter((group) => group.id === groupId).map((group) => group.key));
  for (const group of groups) {
    if (!reached.has(group.key) && group.groupKeys.some((key) => reached.has(key))) {
      reached.add(group.key);
      await recomputeOneGroup(client, group.id, reason);
    }
  }

  return counts;
}

// TODO: a profile deleted by a concurrent merge while this statement inserts its membership
// leaves that membership behind until the next recompute (memberships have no per-row FK).
async function recomputeOneGroup(client: Queryable, groupId: number, reason: MembershipReason): Promise<{ entered: number; exited: number }> {
  const group = await loadGroup(client, groupId);
  if (group.type !== 'calculated') {
    throw new ConfigError('CDP_GROUP_NOT_CALCULATED', `Group "${group.key}" is manual and has no rule to recompute`, {
      details: { group: group.key },
    });
  }
  if (group.compiledSql === null) {
    throw new ConfigError('CDP_GROUP_NOT_COMPILED', `Group "${group.key}" has no compiled rule`, {
      details: { group: group.key },
    });
  }

  // One full join of the rule's matches with the members gives both entries (matches that
  // are not members) and exits (members that no longer match) in a single pass, instead of
  // hashing both sets twice for two EXCEPTs.
  const { rows } = await client.query<{ entered: number; exited: number }>(
    `WITH diff AS (
  SELECT
    coalesce(t.id, m.profile_id) AS profile_id,
    m.profile_id IS NULL AS is_entry
  FROM (SELECT p.id FROM roster_core.profiles AS p WHERE ${group.compiledSql}) AS t
  FULL JOIN (SELECT profile_id FROM roster_core.group_memberships WHERE group_id = $1) AS m
    ON m.profile_id = t.id
  WHERE t.id IS NULL
    OR m.profile_id IS NULL
),
entered AS (
  INSERT INTO roster_core.group_memberships (group_id, profile_id)
  SELECT $1, d.profile_id
  FROM diff AS d
  WHERE d.is_entry
  ON CONFLICT ON CONSTRAINT group_memberships_pkey DO NOTHING
  RETURNING profile_id
),
exited AS (
  DELETE FROM roster_core.group_memberships AS m
  USING diff AS d
  WHERE m.group_id = $1
    AND NOT d.is_entry
    AND m.profile_id = d.profile_id
  RETURNING m.profile_id
),
history AS (
  ${historyInsert('$1::bigint', '$2::text')}
)
SELECT
  (SELECT count(*) FROM entered)::int AS entered,
  (SELECT count(*) FROM exited)::int AS exited`,
    [groupId, reason],
  );

  return { entered: rows[0].entered, exited: rows[0].exited };
}

/**
 * Recomputes every calculated group whose members change with time alone (reason
 * `time_passing`): rules with relative dates, rules over events (`performed`, whose windows
 * age), and groups that read such a group's membership, after it.
 */
export async function recomputeTimeRelativeGroups(
  client: Queryable,
): Promise<Array<{ groupId: number; groupKey: string; entered: number; exited: number }>> {
  const groups = inDependencyOrder(await loadCalculatedGroups(client));
  const aging = new Set<string>();
  for (const group of groups) {
    if (group.isTimeRelative || group.usesEvents || group.groupKeys.some((key) => aging.has(key))) {
      aging.add(group.key);
    }
  }

  const results = [];
  for (const group of groups.filter((candidate) => aging.has(candidate.key))) {
    const counts = await recomputeOneGroup(client, group.id, 'time_passing');
    results.push({ groupId: group.id, groupKey: group.key, ...counts });
  }

  return results;
}

/** Re-evaluates the groups that read a manual group, for the profiles that just moved in it. */
async function updateDependents(client: Queryable, groupId: number, profileIds: number[], reason: MembershipReason): Promise<void> {
  if (profileIds.length === 0) {
    return;
  }
  const group = await loadGroup(client, groupId);
  await updateMembershipsForProfiles(client, profileIds, reason, { changedKeys: new Map(), movedGroupKeys: [group.key] });
}

async function loadManualGroup(client: Queryable, groupId: number): Promise<GroupRow> {
  const group = await loadGroup(client, groupId);
  if (group.type !== 'manual') {
    throw new ConfigError('CDP_GROUP_NOT_MANUAL', `Group "${group.key}" is calculated; its members follow its rule`, {
      details: { group: group.key },
    });
  }

  return group;
}

/** Adds profiles to a manual group. Existing members are left as they are. */
export async function addManualMembers(
  client: Queryable,
  groupId: number,
  profileIds: number[],
  reason: MembershipReason = 'manual',
): Promise<MembershipChange> {
  checkReason(reason);
  await loadManualGroup(client, groupId);
  const ids = [...new Set(profileIds)];
  const { rows: found } = await client.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM roster_core.profiles WHERE id = ANY($1::bigint[])',
    [ids],
  );
  if (found[0].count !== ids.length) {
    throw new NotFoundError('CDP_PROFILE_NOT_FOUND', `${ids.length - found[0].count} of the profiles to add do not exist`, {
      details: { groupId },
    });
  }

  const { rows } = await client.query<{ profile_id: number; action: string }>(
    `WITH entered AS (
  INSERT INTO roster_core.group_memberships (group_id, profile_id)
  SELECT $2, id FROM unnest($1::bigint[]) AS id
  ON CONFLICT ON CONSTRAINT group_memberships_pkey DO NOTHING
  RETURNING profile_id
),
exited AS (
  SELECT NULL::bigint AS profile_id WHERE false
)${historyTail('$2::bigint', '$3::text')}`,
    [ids, groupId, reason],
  );
  const result = summarize(rows);
  await updateDependents(client, groupId, result.changedProfileIds, reason);

  return result;
}

/** Removes profiles from a manual group. Profiles that are not members are ignored. */
export async function removeManualMembers(
  client: Queryable,
  groupId: number,
  profileIds: number[],
  reason: MembershipReason = 'manual',
): Promise<MembershipChange> {
  checkReason(reason);
  await loadManualGroup(client, groupId);
  const { rows } = await client.query<{ profile_id: number; action: string }>(
    `WITH exited AS (
  DELETE FROM roster_core.group_memberships AS m
  WHERE m.group_id = $2
    AND m.profile_id = ANY($1::bigint[])
  RETURNING m.profile_id
),
entered AS (
  SELECT NULL::bigint AS profile_id WHERE false
)${historyTail('$2::bigint', '$3::text')}`,
    [[...new Set(profileIds)], groupId, reason],
  );
  const result = summarize(rows);
  await updateDependents(client, groupId, result.changedProfileIds, reason);

  return result;
}
