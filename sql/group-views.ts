/**
 * One view per group, `roster."group_<key>"`, for BI tools. A calculated group's view runs the
 * live rule, so it can be ahead of roster_core.group_memberships (which is what exports follow);
 * a manual group's view lists its stored members.
 */
import type { Queryable } from '../lib/db.js';
import { quoteIdent, quoteLiteral } from '../lib/db.js';
import { ConfigError } from '../lib/errors.js';

export interface GroupViewSpec {
  id: number;
  key: string;
  compiledSql: string | null;
  type: 'manual' | 'calculated';
  /** The rule shown in the view comment; loaded from roster_core.groups when left out. */
  rule?: unknown;
}

// Postgres silently truncates longer identifiers, which would let two groups share a view.
const MAX_IDENTIFIER_BYTES = 63;

/** The quoted, schema-qualified name of a group's view. */
export function groupViewName(key: string): string {
  const name = `group_${key}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new ConfigError('CDP_GROUP_KEY_TOO_LONG', `Group key "${key.slice(0, 40)}..." is too long for a view name`, {
      details: { group: key, maxBytes: MAX_IDENTIFIER_BYTES - 'group_'.length },
    });
  }

  return `roster.${quoteIdent(name)}`;
}

// TODO: a calculated group's view depends on the profile columns its rule reads, so dropping
// a property column fails until the view is dropped or re-synced without it; `roster apply`
// must drop affected group views before removing a property, or the apply stops with an error.

/** Creates or replaces the view of one group and its comment. */
export async function syncGroupView(client: Queryable, group: GroupViewSpec): Promise<void> {
  const viewName = groupViewName(group.key);
  if (!Number.isSafeInteger(group.id)) {
    throw new ConfigError('CDP_GROUP_INVALID_ID', `Group "${group.key}" has invalid id ${String(group.id)}`, {
      details: { group: group.key },
    });
  }

  // compiledSql is renderInline output (never user text); a calculated group without a rule
  // has no members.
  const body =
    group.type === 'calculated'
      ? `SELECT
  p.id AS profile_id
FROM roster_core.profiles AS p
WHERE ${group.compiledSql ?? 'FALSE'}`
      : `SELECT
  m.profile_id
FROM roster_core.group_memberships AS m
WHERE m.group_id = ${group.id}`;
  await client.query(`CREATE OR REPLACE VIEW ${viewName} AS\n${body}`);

  let rule = group.rule;
  if (rule === undefined) {
    const { rows } = await client.query<{ rule: unknown }>('SELECT rule FROM roster_core.groups WHERE id = $1', [group.id]);
    rule = rows[0]?.rule ?? null;
  }
  const comment =
    group.type === 'calculated'
      ? `Members of calculated group ${group.key} by its live rule: ${JSON.stringify(rule ?? null)}`
      : `Members of manual group ${group.key}`;
  await client.query(`COMMENT ON VIEW ${viewName} IS ${quoteLiteral(comment)}`);
}

/** Drops the view of a group, if it exists. */
export async function dropGroupView(client: Queryable, key: string): Promise<void> {
  await client.query(`DROP VIEW IF EXISTS ${groupViewName(key)}`);
}
