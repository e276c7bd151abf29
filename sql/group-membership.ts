/**
 * Group membership: incremental re-evaluation for changed profiles, full recompute of one
 * group, and manual members. Every entry and exit writes one history row with its reason and
 * bumps the profile's revision, so exports notice the change.
 *
 * All work is set-based: one statement per group, whatever the number of profiles. History is
 * written from the RETURNING of the insert or delete itself, so two runs racing on the same
 * profiles record each change once (the loser's insert hits ON CONFLICT, its delete finds
 * nothing). Run these inside a transaction (withTransaction) so memberships, history and
 * revisions commit together.
 */
import type { Queryable } from '../lib/db.js';
import { ConfigError, NotFoundError } from '../lib/errors.js';

export { dropGroupView, syncGroupView } from './group-views.js';

export type MembershipReason = 'data_change' | 'rule_change' | 'manual' | 'time_passing';

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

// Writes the history rows and returns the changed profiles; appended to a statement whose
// `entered` and `exited` CTEs return profile_id. $G is the group id and $R the reason.
function historyTail(groupParam: string, reasonParam: string): string {
  return `,
history AS (
  INSERT INTO roster_core.group_membership_history (group_id, profile_id, action, reason)
  SELECT ${groupParam}, e.profile_id, 'enter', ${reasonParam} FROM entered AS e
  UNION ALL
  SELECT ${groupParam}, x.profile_id, 'exit', ${reasonParam} FROM exited AS x
)
SELECT e.profile_id, 'enter' AS action FROM entered AS e
UNION ALL
SELECT x.profile_id, 'exit' AS action FROM exited AS x`;
}

async function bumpRevisions(client: Queryable, profileIds: number[]): Promise<void> {
  if (profileIds.length === 0) {
    return;
  }
  // Sorted ids take row locks in a stable order, so concurrent bumps cannot deadlock.
  await client.query(
    `UPDATE roster_core.profiles AS p
     SET revision = nextval('roster_core.profile_revision_seq')
     FROM (SELECT DISTINCT unnest($1::bigint[]) AS id ORDER BY id) AS changed
     WHERE p.id = changed.id`,
    [profileIds],
  );
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

async function loadGroup(client: Queryable, groupId: number): Promise<GroupRow> {
  const { rows } = await client.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM roster_core.groups WHERE id = $1`, [groupId]);
  if (rows.length === 0) {
    throw new NotFoundError('CDP_GROUP_NOT_FOUND', `Group ${groupId} does not exist`, { details: { groupId } });
  }

  return rows[0];
}

/**
 * Re-evaluates every calculated group for just `profileIds` and applies entries and exits.
 * Profiles missing from roster_core.profiles are ignored.
 */
export async function updateMembershipsForProfiles(
  client: Queryable,
  profileIds: number[],
  reason: string,
): Promise<MembershipChange> {
  // Sorted ids let the primary-key scans walk the index in order.
  const ids = [...new Set(profileIds)].sort((a, b) => a - b);
  if (ids.length === 0) {
    return { entered: 0, exited: 0, changedProfileIds: [] };
  }
  const { rows: groups } = await client.query<GroupRow>(
    `SELECT ${GROUP_COLUMNS}
     FROM roster_core.groups
     WHERE type = 'calculated'
       AND compiled_sql IS NOT NULL
     ORDER BY id`,
  );

  const changes: Array<{ profile_id: number; action: string }> = [];
  for (const group of groups) {
    // compiled_sql is renderInline output: literals are quoted, identifiers come from properties.
    const { rows } = await client.query<{ profile_id: number; action: string }>(
      `WITH matching AS (
  SELECT p.id
  FROM roster_core.profiles AS p
  WHERE p.id = ANY($1::bigint[])
    AND (${group.compiledSql})
),
entered AS (
  INSERT INTO roster_core.group_memberships (group_id, profile_id)
  SELECT $2, t.id
  FROM matching AS t
  WHERE NOT EXISTS (
    SELECT 1 FROM roster_core.group_memberships AS m WHERE m.group_id = $2 AND m.profile_id = t.id
  )
  ON CONFLICT ON CONSTRAINT group_memberships_pkey DO NOTHING
  RETURNING profile_id
),
exited AS (
  DELETE FROM roster_core.group_memberships AS m
  WHERE m.group_id = $2
    AND m.profile_id = ANY($1::bigint[])
    AND NOT EXISTS (SELECT 1 FROM matching AS t WHERE t.id = m.profile_id)
  RETURNING m.profile_id
)${historyTail('$2::bigint', '$3::text')}`,
      [ids, group.id, reason],
    );
    changes.push(...rows);
  }

  const result = summarize(changes);
  await bumpRevisions(client, result.changedProfileIds);

  return result;
}

/**
 * Recomputes one calculated group over every profile: entries are the rule's matches that are
 * not members, exits the members that no longer match.
 */
export async function recomputeGroup(
  client: Queryable,
  groupId: number,
  reason: string,
): Promise<{ entered: number; exited: number }> {
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
  // hashing both sets twice for two EXCEPTs. The revision bump rides in the same statement:
  // it is the only part that touches each changed profile, and entries and exits never overlap.
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
  INSERT INTO roster_core.group_membership_history (group_id, profile_id, action, reason)
  SELECT $1, e.profile_id, 'enter', $2::text FROM entered AS e
  UNION ALL
  SELECT $1, x.profile_id, 'exit', $2::text FROM exited AS x
),
bumped AS (
  UPDATE roster_core.profiles AS p
  SET revision = nextval('roster_core.profile_revision_seq')
  WHERE p.id IN (SELECT e.profile_id FROM entered AS e UNION ALL SELECT x.profile_id FROM exited AS x)
)
SELECT
  (SELECT count(*) FROM entered)::int AS entered,
  (SELECT count(*) FROM exited)::int AS exited`,
    [groupId, reason],
  );

  return { entered: rows[0].entered, exited: rows[0].exited };
}

/** Recomputes every time-relative calculated group (reason `time_passing`). */
export async function recomputeTimeRelativeGroups(
  client: Queryable,
): Promise<Array<{ groupId: number; groupKey: string; entered: number; exited: number }>> {
  const { rows: groups } = await client.query<GroupRow>(
    `SELECT ${GROUP_COLUMNS}
     FROM roster_core.groups
     WHERE type = 'calculated'
       AND is_time_relative
       AND compiled_sql IS NOT NULL
     ORDER BY id`,
  );

  const results = [];
  for (const group of groups) {
    const counts = await recomputeGroup(client, group.id, 'time_passing');
    results.push({ groupId: group.id, groupKey: group.key, ...counts });
  }

  return results;
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
  reason: string = 'manual',
): Promise<MembershipChange> {
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
  await bumpRevisions(client, result.changedProfileIds);

  return result;
}

/** Removes profiles from a manual group. Profiles that are not members are ignored. */
export async function removeManualMembers(
  client: Queryable,
  groupId: number,
  profileIds: number[],
  reason: string = 'manual',
): Promise<MembershipChange> {
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
  await bumpRevisions(client, result.changedProfileIds);

  return result;
}
