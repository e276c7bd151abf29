/**
 * Explains one profile's place in a group: for every node of the rule, its operator, the
 * property values it read for that profile, and whether it passed. Each node is compiled on
 * its own (the same compiler as the group, so the same null semantics) and every node is
 * evaluated in one SELECT with a column per node.
 */
import { quoteIdent, type Queryable } from '../lib/db.js';
import { NotFoundError } from '../lib/errors.js';
import { loadGroupByKey } from './group-membership.js';
import { loadPropertyDefs } from './property-queries.js';
import type { PropertyDef } from './property-types.js';
import { compileRule } from './rules/compile-rule.js';
import { renderInline } from './rules/render-inline.js';
import { operatorOf } from './rules/rule-values.js';

export interface ExplainNode {
  /** Where the node sits in the rule, as in rule errors: `and[1].>`. */
  path: string;
  /** The node's operator (`and`, `>=`, `in`, ...), or `true` / `false` for a constant. */
  operator: string;
  /** The node as written in the rule. */
  rule: unknown;
  /** Values of the properties the node reads, for this profile (null when missing). */
  values: Record<string, unknown>;
  passed: boolean;
  children: ExplainNode[];
}

export interface GroupExplanation {
  groupKey: string;
  groupType: 'manual' | 'calculated';
  profileId: number;
  /** Whether the profile is a stored member now (what exports follow). */
  isMember: boolean;
  /** Whether the rule passes on the current values; null for a manual group. */
  passes: boolean | null;
  /** The rule's nodes; null for a manual group. */
  tree: ExplainNode | null;
}

interface PlannedNode {
  path: string;
  operator: string;
  rule: unknown;
  sql: string;
  keys: string[];
  children: PlannedNode[];
}

const BRANCHES = new Set(['and', 'or', '!', '!!']);

function planNode(groupKey: string, rule: unknown, path: string, defs: Map<string, PropertyDef>): PlannedNode {
  const compiled = compileRule(groupKey, rule, defs);
  const op = operatorOf(rule) ?? String(rule);
  const here = path ? `${path}.${op}` : op;
  const raw = operatorOf(rule) === undefined ? undefined : (rule as Record<string, unknown>)[op];
  let children: PlannedNode[] = [];
  if (BRANCHES.has(op)) {
    const args = Array.isArray(raw) ? raw : [raw];
    children = args.map((arg, i) => planNode(groupKey, arg, `${here}[${i}]`, defs));
  }

  return { path: here, operator: op, rule, sql: renderInline(compiled), keys: [...compiled.propertyKeys], children };
}

function flatten(node: PlannedNode, into: PlannedNode[] = []): PlannedNode[] {
  into.push(node);
  node.children.forEach((child) => flatten(child, into));

  return into;
}

/**
 * Explains why profile `profileId` is or is not in group `groupKey`. Throws
 * CDP_GROUP_NOT_FOUND or CDP_PROFILE_NOT_FOUND (NotFoundError).
 */
export async function explainGroup(db: Queryable, groupKey: string, profileId: number): Promise<GroupExplanation> {
  const group = await loadGroupByKey(db, groupKey);
  const defs = await loadPropertyDefs(db);
  const plan = group.type === 'calculated' && group.rule !== null ? planNode(group.key, group.rule, '', defs) : null;
  const nodes = plan === null ? [] : flatten(plan);
  const keys = [...new Set(nodes.flatMap((node) => node.keys))];

  // Node predicates are renderInline output (quoted literals, quoted identifiers), so the only
  // parameters are the profile and group ids.
  const columns = [
    'EXISTS (SELECT 1 FROM roster_core.group_memberships AS m WHERE m.group_id = $2 AND m.profile_id = p.id) AS "isMember"',
    ...nodes.map((node, i) => `(${node.sql}) AS ${quoteIdent(`n${i}`)}`),
    ...keys.map((key, i) => `to_jsonb(p.${quoteIdent((defs.get(key) as PropertyDef).columnName)}) AS ${quoteIdent(`v${i}`)}`),
  ];
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT
       ${columns.join(',\n       ')}
     FROM roster_core.profiles AS p
     WHERE p.id = $1`,
    [profileId, group.id],
  );
  if (rows.length === 0) {
    throw new NotFoundError('CDP_PROFILE_NOT_FOUND', `Profile ${profileId} does not exist`, { details: { profileId } });
  }
  const row = rows[0];
  const valueOf = new Map(keys.map((key, i) => [key, row[`v${i}`] ?? null]));
  const passedOf = new Map(nodes.map((node, i) => [node, row[`n${i}`] === true]));
  const build = (node: PlannedNode): ExplainNode => ({
    path: node.path,
    operator: node.operator,
    rule: node.rule,
    values: Object.fromEntries(node.keys.map((key) => [key, valueOf.get(key) ?? null])),
    passed: passedOf.get(node) ?? false,
    children: node.children.map(build),
  });
  const tree = plan === null ? null : build(plan);

  return {
    groupKey: group.key,
    groupType: group.type,
    profileId,
    isMember: row.isMember === true,
    passes: tree === null ? null : tree.passed,
    tree,
  };
}
