// Shared setup for the group tests: typed property columns, profiles, groups and rule errors.
import { expect } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import { quoteIdent, type Queryable } from '../../lib/db.js';
import { loadPropertyDefs } from '../../sql/property-queries.js';
import { pgColumnType, type PropertyDef, type PropertyType } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { renderInline } from '../../sql/rules/render-inline.js';

export interface TestProperty {
  key: string;
  type: PropertyType;
  isList?: boolean;
  columnName?: string;
}

/** Adds one typed column per property (what `roster apply` does) and its properties row. */
export async function defineProperties(db: Queryable, properties: TestProperty[]): Promise<Map<string, PropertyDef>> {
  for (const property of properties) {
    const columnName = property.columnName ?? property.key;
    const isList = property.isList ?? false;
    await db.query(`ALTER TABLE roster_core.profiles ADD COLUMN ${quoteIdent(columnName)} ${pgColumnType(property.type, isList)}`);
    await db.query('INSERT INTO roster_core.properties (key, type, is_list, column_name) VALUES ($1, $2, $3, $4)', [
      property.key,
      property.type,
      isList,
      columnName,
    ]);
  }

  return loadPropertyDefs(db);
}

/** Inserts profiles whose values are given by property column name; returns their ids. */
export async function insertProfiles(db: Queryable, profiles: Array<Record<string, unknown>>): Promise<number[]> {
  const ids: number[] = [];
  for (const values of profiles) {
    const columns = Object.keys(values);
    const sql =
      columns.length === 0
        ? 'INSERT INTO roster_core.profiles DEFAULT VALUES RETURNING id'
        : `INSERT INTO roster_core.profiles (${columns.map(quoteIdent).join(', ')})
           VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`;
    const { rows } = await db.query<{ id: number }>(sql, Object.values(values));
    ids.push(rows[0].id);
  }

  return ids;
}

export interface TestGroup {
  id: number;
  key: string;
  type: 'manual' | 'calculated';
  compiledSql: string | null;
}

/** Inserts a group; a calculated one gets its rule compiled and inlined as `apply` would. */
export async function createGroup(
  db: Queryable,
  group: { key: string; rule?: unknown },
  properties: Map<string, PropertyDef>,
): Promise<TestGroup> {
  const type = group.rule === undefined ? 'manual' : 'calculated';
  const compiled = group.rule === undefined ? null : compileRule(group.key, group.rule, properties);
  const compiledSql = compiled === null ? null : renderInline(compiled);
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO roster_core.groups (key, type, rule, is_time_relative, compiled_sql)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [group.key, type, group.rule === undefined ? null : JSON.stringify(group.rule), compiled?.isTimeRelative ?? false, compiledSql],
  );

  return { id: rows[0].id, key: group.key, type, compiledSql };
}

/** Current member ids of a group, sorted. */
export async function memberIds(db: Queryable, groupId: number): Promise<number[]> {
  const { rows } = await db.query<{ profile_id: number }>(
    'SELECT profile_id FROM roster_core.group_memberships WHERE group_id = $1 ORDER BY profile_id',
    [groupId],
  );

  return rows.map((row) => row.profile_id);
}

/** Asserts that compiling throws a ConfigError with this code, naming the group and rule path. */
export function expectRuleError(compile: () => unknown, code: string, details: { group: string; path: string }): void {
  let error: unknown;
  try {
    compile();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).code).toBe(code);
  expect((error as ConfigError).details).toEqual(details);
}
