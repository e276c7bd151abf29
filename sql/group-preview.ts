/**
 * Previews a rule edit without writing anything: which profiles would enter and leave the
 * group, and what each destination following it would then send. It compares the new rule's
 * matches with the stored members, which is exactly what `roster apply` does when the rule
 * changes (recomputeGroup with reason `rule_change`).
 */
import type { Queryable } from '../lib/db.js';
import { ConfigError } from '../lib/errors.js';
import { loadMappedValues } from './export-queries.js';
import { loadGroupByKey } from './group-membership.js';
import { loadPropertyDefs } from './property-queries.js';
import type { PropertyDef } from './property-types.js';
import { compileRule } from './rules/compile-rule.js';
import { renderInline } from './rules/render-inline.js';

export interface PreviewSample {
  profileId: number;
  /** Values of up to MAX_SAMPLE_VALUES properties the old or new rule reads. */
  values: Record<string, unknown>;
}

export interface DestinationImpact {
  destinationKey: string;
  /** Profiles the destination does not hold that it would receive. */
  creates: number;
  /** Profiles it holds whose record changes (their list of groups at least). */
  updates: number;
  /** Profiles it holds that would leave every group it follows. */
  removes: number;
}

export interface GroupRulePreview {
  groupKey: string;
  /** Stored members now. */
  members: number;
  entering: number;
  leaving: number;
  /** Members once the rule is applied. */
  membersAfter: number;
  enteringSample: PreviewSample[];
  leavingSample: PreviewSample[];
  isTimeRelative: boolean;
  destinations: DestinationImpact[];
}

export interface PreviewOptions {
  /** How many sample profiles to return each way (default 5, at most 100). */
  sampleSize?: number;
}

const MAX_SAMPLE_VALUES = 5;

interface PreviewRow {
  members: number;
  entering: number;
  leaving: number;
  enteringIds: number[];
  leavingIds: number[];
  destinations: DestinationImpact[];
}

/**
 * Computes what applying `rule` to calculated group `groupKey` would change. The rule is
 * compiled with the same checks as `roster apply` (ConfigError with a CDP_RULE_* code);
 * an unknown group is CDP_GROUP_NOT_FOUND and a manual one CDP_GROUP_NOT_CALCULATED.
 */
export async function previewGroupRule(db: Queryable, groupKey: string, rule: unknown, options: PreviewOptions = {}): Promise<GroupRulePreview> {
  const group = await loadGroupByKey(db, groupKey);
  if (group.type !== 'calculated') {
    throw new ConfigError('CDP_GROUP_NOT_CALCULATED', `Group "${group.key}" is manual and has no rule to preview`, {
      details: { group: group.key },
    });
  }
  const defs = await loadPropertyDefs(db);
  const { rows: groupRows } = await db.query<{ key: string }>('SELECT key FROM roster_core.groups');
  const compiled = compileRule(group.key, rule, defs, { groupKeys: groupRows.map((row) => row.key) });
  const sampleSize = Math.min(Math.max(Math.trunc(options.sampleSize ?? 5), 0), 100);

  // One statement, so counts, samples and destination impacts come from one snapshot. A
  // destination "holds" a profile when its last accepted record was not a removal; a leaving
  // profile still in another group the destination follows gets an update, not a removal.
  const { rows } = await db.query<PreviewRow>(
    `WITH would AS MATERIALIZED (
       SELECT p.id AS profile_id
       FROM roster_core.profiles AS p
       WHERE ${renderInline(compiled)}
     ),
     current AS MATERIALIZED (
       SELECT m.profile_id
       FROM roster_core.group_memberships AS m
       WHERE m.group_id = $1
     ),
     moved AS MATERIALIZED (
       SELECT coalesce(w.profile_id, c.profile_id) AS profile_id, c.profile_id IS NULL AS is_entry
       FROM would AS w
       FULL JOIN current AS c ON c.profile_id = w.profile_id
       WHERE w.profile_id IS NULL
         OR c.profile_id IS NULL
     ),
     impact AS (
       SELECT
         d.key,
         mv.is_entry,
         EXISTS (
           SELECT 1
           FROM roster_core.destination_groups AS other
           JOIN roster_core.group_memberships AS om ON om.group_id = other.group_id AND om.profile_id = mv.profile_id
           WHERE other.destination_id = d.id
             AND other.group_id <> $1
         ) AS is_in_other,
         EXISTS (
           SELECT 1
           FROM roster_core.export_state AS s
           WHERE s.destination_id = d.id
             AND s.profile_id = mv.profile_id
             AND NOT s.is_removed
         ) AS is_held
       FROM roster_core.destination_groups AS dg
       JOIN roster_core.destinations AS d ON d.id = dg.destination_id
       CROSS JOIN moved AS mv
       WHERE dg.group_id = $1
     )
     SELECT
       (SELECT count(*) FROM current)::int AS members,
       (SELECT count(*) FROM moved WHERE is_entry)::int AS entering,
       (SELECT count(*) FROM moved WHERE NOT is_entry)::int AS leaving,
       ARRAY(SELECT profile_id FROM moved WHERE is_entry ORDER BY profile_id LIMIT $2) AS "enteringIds",
       ARRAY(SELECT profile_id FROM moved WHERE NOT is_entry ORDER BY profile_id LIMIT $2) AS "leavingIds",
       coalesce((
         SELECT jsonb_agg(t ORDER BY t."destinationKey")
         FROM (
           SELECT
             d.key AS "destinationKey",
             count(i.key) FILTER (WHERE (i.is_entry OR i.is_in_other) AND NOT i.is_held)::int AS creates,
             count(i.key) FILTER (WHERE (i.is_entry OR i.is_in_other) AND i.is_held)::int AS updates,
             count(i.key) FILTER (WHERE NOT i.is_entry AND NOT i.is_in_other AND i.is_held)::int AS removes
           FROM roster_core.destination_groups AS dg
           JOIN roster_core.destinations AS d ON d.id = dg.destination_id
           LEFT JOIN impact AS i ON i.key = d.key
           WHERE dg.group_id = $1
           GROUP BY d.key
         ) AS t
       ), '[]'::jsonb) AS destinations`,
    [group.id, sampleSize],
  );
  const row = rows[0];
  // node-postgres parses bigint arrays as text.
  row.enteringIds = row.enteringIds.map(Number);
  row.leavingIds = row.leavingIds.map(Number);

  const oldKeys = group.rule === null ? [] : safePropertyKeys(group.key, group.rule, defs);
  const keys = [...new Set([...compiled.propertyKeys, ...oldKeys])].slice(0, MAX_SAMPLE_VALUES);
  const columns = keys.map((key) => (defs.get(key) as PropertyDef).columnName);
  const values = await loadMappedValues(db, [...row.enteringIds, ...row.leavingIds], columns);
  const sample = (ids: number[]): PreviewSample[] =>
    ids.map((profileId) => {
      const stored = values.get(profileId) ?? {};

      return { profileId, values: Object.fromEntries(keys.map((key, i) => [key, stored[columns[i]] ?? null])) };
    });

  return {
    groupKey: group.key,
    members: row.members,
    entering: row.entering,
    leaving: row.leaving,
    membersAfter: row.members + row.entering - row.leaving,
    enteringSample: sample(row.enteringIds),
    leavingSample: sample(row.leavingIds),
    isTimeRelative: compiled.isTimeRelative,
    destinations: row.destinations,
  };
}

// The stored rule may name a property deleted since; its keys are then simply not shown.
function safePropertyKeys(groupKey: string, rule: unknown, defs: Map<string, PropertyDef>): string[] {
  try {
    return compileRule(groupKey, rule, defs).propertyKeys;
  } catch {
    return [];
  }
}
