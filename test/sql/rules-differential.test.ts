// Checks that compiled rules select exactly the profiles json-logic-js selects, over generated data.
import jsonLogic from 'json-logic-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../lib/db.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { defineProperties, insertProfiles } from './group-fixtures.js';

const PROFILE_COUNT = 300;
const UNIT_MS: Record<string, number> = { minutes: 60_000, hours: 3_600_000, days: 86_400_000, weeks: 604_800_000 };
const TEXTS = [
  '', 'a', 'A', 'abc', 'an', "O'Brien", 'semi;colon', '-- dash', 'Zoë', '日本語', '😀 emoji', 'back\\slash',
  '"quoted"', 'Canada', 'Mexico', ' space ', 'percent%_', 'M', 'Zoë 2',
];
const INTEGERS = [0, -1, 1, 17, 18, 65, 66, 2_147_483_648, -9_007_199_254_740_991, 9_007_199_254_740_991];
const FLOATS = [0, -0.5, 1.5, 1e-300, 1e300, 3.14159, -1e300];

// A small seeded generator, so a failure reproduces.
function random(seed: number): () => number {
  let state = seed;

  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;

    return state / 2_147_483_648;
  };
}

/*
 * The reference is json-logic-js itself (var, and, or, !, !!, truthiness, text `in`), with the
 * comparison operators replaced by Roster's documented semantics, which JSON Logic leaves loose:
 * a null never compares (JavaScript has `null < 5`), and a list matches when any element does.
 * Dates are ISO strings of one fixed format, so string order is time order.
 */
function registerReferenceOperations(nowMs: number): void {
  const present = (value: unknown) => value !== null && value !== undefined;
  const compare = (a: unknown, b: unknown, test: (x: any, y: any) => boolean): boolean => {
    if (Array.isArray(a)) return a.some((x) => present(x) && present(b) && test(x, b));
    if (Array.isArray(b)) return b.some((y) => present(a) && present(y) && test(a, y));

    return present(a) && present(b) && test(a, b);
  };
  const ordered = (test: (x: any, y: any) => boolean) => (a: unknown, b: unknown, c?: unknown) =>
    c === undefined ? compare(a, b, test) : compare(a, b, test) && compare(b, c, test) && (!Array.isArray(b) || b.some((x) => test(a, x) && test(x, c)));
  jsonLogic.add_operation('==', (a: unknown, b: unknown) => compare(a, b, (x, y) => x === y));
  jsonLogic.add_operation('!=', (a: unknown, b: unknown) => !compare(a, b, (x, y) => x === y));
  jsonLogic.add_operation('<', ordered((x, y) => x < y));
  jsonLogic.add_operation('<=', ordered((x, y) => x <= y));
  jsonLogic.add_operation('>', ordered((x, y) => x > y));
  jsonLogic.add_operation('>=', ordered((x, y) => x >= y));
  jsonLogic.add_operation('in', (a: unknown, b: unknown) => {
    if (Array.isArray(a)) return Array.isArray(b) && a.some((x) => b.includes(x));
    if (Array.isArray(b)) return present(a) && b.includes(a);

    return typeof a === 'string' && typeof b === 'string' && b.includes(a);
  });
  jsonLogic.add_operation('exists', (value: unknown) => present(value) && (!Array.isArray(value) || value.length > 0));
  jsonLogic.add_operation('ago', (count: number, unit: string) => new Date(nowMs - count * UNIT_MS[unit]).toISOString());
  jsonLogic.add_operation('from_now', (count: number, unit: string) => new Date(nowMs + count * UNIT_MS[unit]).toISOString());
}

const RULES: unknown[] = [
  { '==': [{ var: 'name' }, "O'Brien"] },
  { '!=': [{ var: 'name' }, 'Canada'] },
  { '<': [{ var: 'name' }, 'M'] },
  { '>=': [{ var: 'name' }, 'Zoë'] },
  { '<': [17, { var: 'age' }, 66] },
  { '<=': [{ var: 'age' }, 0] },
  { '>': [{ var: 'score' }, 1.5] },
  { '!': { '<': [{ var: 'score' }, 0] } },
  { '==': [{ var: 'vip' }, true] },
  { '!=': [{ var: 'vip' }, false] },
  { '>': [{ var: 'seen' }, { ago: [30, 'days'] }] },
  { '<': [{ ago: [52, 'weeks'] }, { var: 'seen' }, { ago: [7, 'days'] }] },
  { '<': [{ var: 'seen' }, { from_now: [36, 'hours'] }] },
  { '>=': [{ var: 'seen' }, '2025-06-01T00:00:00.000Z'] },
  { in: [{ var: 'name' }, ['Canada', 'Mexico', "O'Brien"]] },
  { in: ['an', { var: 'name' }] },
  { in: ['😀', { var: 'name' }] },
  { '==': [{ var: 'tags' }, 'abc'] },
  { '!=': [{ var: 'tags' }, 'abc'] },
  { in: ['Canada', { var: 'tags' }] },
  { in: [{ var: 'tags' }, ['Mexico', '日本語']] },
  { '>': [{ var: 'nums' }, 17] },
  { '<': [0, { var: 'nums' }, 66] },
  { exists: [{ var: 'tags' }] },
  { exists: [{ var: 'seen' }] },
  { '!!': [{ var: 'name' }] },
  { '!!': { var: 'score' } },
  { or: [{ and: [{ var: 'vip' }, { '>=': [{ var: 'age' }, 18] }] }, { '!': { exists: [{ var: 'nums' }] } }] },
  { and: [{ '!=': [{ var: 'name' }, ''] }, { '!': { or: [{ '==': [{ var: 'score' }, 0] }, { in: ['a', { var: 'name' }] }] } }] },
  { '!': { '!': { '<': [{ var: 'age' }, 18] } } },
  { or: [{ '!': { '>': [{ var: 'seen' }, { ago: [90, 'minutes'] }] } }, { '==': [{ var: 'nums' }, 1] }] },
];

describe('compiled rules against json-logic-js', () => {
  let db: TestDatabase;
  let client: PoolClient;
  let properties: Map<string, PropertyDef>;
  const data = new Map<number, Record<string, unknown>>();

  beforeAll(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'name', type: 'string' },
      { key: 'age', type: 'integer' },
      { key: 'score', type: 'float' },
      { key: 'vip', type: 'boolean' },
      { key: 'seen', type: 'date' },
      { key: 'tags', type: 'string', isList: true },
      { key: 'nums', type: 'integer', isList: true },
    ]);

    const next = random(20_260_101);
    const pick = <T>(values: T[]): T => values[Math.floor(next() * values.length)];
    const maybe = <T>(make: () => T): T | null => (next() < 0.2 ? null : make());
    const list = <T>(make: () => T): T[] | null => (next() < 0.15 ? null : Array.from({ length: Math.floor(next() * 4) }, make));
    const nowMs = Date.now();
    const date = () =>
      next() < 0.1 ? pick(['1970-01-01T00:00:00.000Z', '2000-02-29T12:00:00.000Z']) : new Date(nowMs + Math.round((next() - 0.8) * 900 * 86_400_000)).toISOString();

    const profiles = Array.from({ length: PROFILE_COUNT }, () => ({
      name: maybe(() => pick(TEXTS)),
      age: maybe(() => (next() < 0.6 ? pick(INTEGERS) : Math.floor(next() * 100))),
      score: maybe(() => (next() < 0.5 ? pick(FLOATS) : Math.round(next() * 1000) / 100 - 3)),
      vip: maybe(() => next() < 0.5),
      seen: maybe(date),
      tags: list(() => pick(TEXTS)),
      nums: list(() => pick([0, 1, 17, 18, 65, 66, 100])),
    }));
    const ids = await insertProfiles(db.pool, profiles);
    ids.forEach((id, i) => data.set(id, profiles[i]));

    client = await db.pool.connect();
    // Days stay 24 hours long, as in the reference, and now() stays fixed for every rule.
    await client.query("SET TIME ZONE 'UTC'");
    await client.query('BEGIN');
    const { rows } = await client.query<{ nowMs: number }>(`SELECT (extract(epoch FROM now()) * 1000)::float8 AS "nowMs"`);
    registerReferenceOperations(rows[0].nowMs);
  });

  afterAll(async () => {
    await client.query('ROLLBACK');
    client.release();
    await db.drop();
  });

  it.each(RULES.map((rule) => [JSON.stringify(rule), rule]))('selects the same profiles for %s', async (_name, rule) => {
    const compiled = compileRule('differential', rule, properties);
    const sql = (where: string) => `SELECT p.id FROM roster_core.profiles AS p WHERE ${where} ORDER BY p.id`;
    const bound = (await client.query<{ id: number }>(sql(compiled.sql), compiled.params)).rows.map((row) => row.id);
    const inline = (await client.query<{ id: number }>(sql(renderInline(compiled)), [])).rows.map((row) => row.id);
    const expected = [...data].filter(([, values]) => jsonLogic.truthy(jsonLogic.apply(rule as any, values))).map(([id]) => id);

    expect(bound).toEqual(expected);
    expect(inline).toEqual(expected);
  });

  it('generates data on both sides of most rules', async () => {
    let informative = 0;
    for (const rule of RULES) {
      const count = [...data.values()].filter((values) => jsonLogic.truthy(jsonLogic.apply(rule as any, values))).length;
      if (count > 0 && count < PROFILE_COUNT) informative += 1;
    }
    expect(informative).toBeGreaterThan(RULES.length * 0.9);
  });
});
