// Fuzzes compileRule with hostile keys and values: each case is a ConfigError or SQL that runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../lib/db.js';
import { ConfigError } from '../../lib/errors.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { CONDITION_OPERATORS, compileRule } from '../../sql/rules/compile-rule.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { defineProperties, insertProfiles } from './group-fixtures.js';

const CASES = 4_000;
const RULE_CODES = new Set([
  'CDP_RULE_UNKNOWN_PROPERTY',
  'CDP_RULE_UNKNOWN_OPERATOR',
  'CDP_RULE_MALFORMED',
  'CDP_RULE_TYPE_MISMATCH',
  'CDP_RULE_UNKNOWN_GROUP',
  'CDP_RULE_GROUP_CYCLE',
]);
const WEIRD_COLUMN = `we"ird; DROP TABLE roster_core.profiles; --$1`;
const HOSTILE_TEXTS = [
  `x'); DROP TABLE roster_core.profiles; --`, `"; DELETE FROM roster_core.profiles; --`, `' OR '1'='1`, '$1', '$1::text', '$$', `E'\\''`,
  '/* open', '*/', '--', ';', '\\', '%', '_', 'a\u0000b', '\uD800', '\uDFFF x', 'e\u0301', '😀', '\u202e', '', ' ', '2024-01-01', 'NaN',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'properties.a', 'properties.a.b', 'properties.__proto__',
  'properties.a-b', 'properties.', 'properties..a', 'properties.a;drop', 'properties.0', 'x'.repeat(10_000),
];
const NUMBERS = [0, -0, 1, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER, 1e15 + 0.5, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 1e-7];
const HOSTILE_OPS = ['__proto__', 'constructor', 'toString', '', ' ', 'var ', 'VAR', '+', 'if', 'missing', 'merge', `'; DROP`, 'in_group\u0000', 'π'];

function random(seed: number): () => number {
  let state = seed;

  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;

    return state / 2_147_483_648;
  };
}

function fuzzer(next: () => number, keys: string[]): () => unknown {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)];
  const chance = (p: number) => next() < p;
  const ops = [...CONDITION_OPERATORS, 'ago', 'from_now'];

  const scalar = (): unknown => pick([() => pick(HOSTILE_TEXTS), () => pick(NUMBERS), () => chance(0.5), () => null, () => undefined])();
  const value = (depth: number): unknown => {
    if (depth > 3 || chance(0.6)) return scalar();
    switch (pick(['var', 'array', 'object', 'proto', 'relative', 'node'])) {
      case 'var':
        return { var: chance(0.7) ? pick(keys) : chance(0.5) ? pick(HOSTILE_TEXTS) : value(depth + 1) };
      case 'array':
        return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
      case 'object':
        return { a: value(depth + 1), b: value(depth + 1) };
      case 'proto':
        return JSON.parse(`{"__proto__": ${JSON.stringify(scalar() ?? null)}}`);
      case 'relative':
        return { [pick(['ago', 'from_now'])]: [pick(NUMBERS), pick(['days', 'month', 'fortnight', '__proto__', 'constructor', 's'])] };
      default:
        return node(depth + 1);
    }
  };
  const performed = (depth: number): unknown => {
    const spec: Record<string, unknown> = { event: chance(0.7) ? pick(['Film Rented', ...HOSTILE_TEXTS]) : value(depth) };
    for (const field of ['days', 'atLeast', 'atMost']) {
      if (chance(0.8)) spec[field] = chance(0.7) ? Math.floor(next() * 5) : pick(NUMBERS);
    }
    if (chance(0.7)) {
      spec.where = { [pick(['==', '!=', '<', '>=', 'in', 'exists', 'and', '!', ...HOSTILE_OPS])]: [{ var: pick(HOSTILE_TEXTS) }, value(depth + 1)] };
    }
    if (chance(0.1)) spec[pick(HOSTILE_TEXTS)] = scalar();

    return { performed: spec };
  };
  const node = (depth: number): unknown => {
    if (depth > 6) return chance(0.5) ? { var: pick(keys) } : scalar();
    if (chance(0.08)) return performed(depth);
    if (chance(0.05)) return { in_group: chance(0.5) ? pick(['gold', 'fuzz', 'ghost']) : value(depth) };
    const op = chance(0.9) ? pick(ops) : pick(HOSTILE_OPS);
    if (op === 'and' || op === 'or') return { [op]: Array.from({ length: Math.floor(next() * 4) }, () => node(depth + 1)) };
    if (op === '!' || op === '!!') return { [op]: chance(0.5) ? node(depth + 1) : [node(depth + 1)] };
    const subject = chance(0.8) ? { var: pick(keys) } : value(depth + 1);
    const args = [subject, ...Array.from({ length: Math.floor(next() * 3) }, () => (chance(0.3) ? node(depth + 1) : value(depth + 1)))];

    return { [op]: chance(0.9) ? args : value(depth + 1) };
  };

  // Well-formed shapes with hostile values, so that many cases reach Postgres.
  const text = () => pick(HOSTILE_TEXTS);
  const plausible = (): unknown =>
    pick([
      () => ({ [pick(['==', '!=', '<', '>=', 'contains', 'not_contains', 'starts_with', 'ends_with', 'iequals'])]: [{ var: pick(['name', 'email', 'tags', WEIRD_COLUMN]) }, text()] }),
      () => ({ in: [text(), { var: pick(['name', WEIRD_COLUMN, 'tags']) }] }),
      () => ({ in: [{ var: pick(['name', 'tags']) }, [text(), text()]] }),
      () => ({ [pick(['==', '<', '>', 'between'])]: [{ var: pick(['age', 'score', 'nums']) }, pick(NUMBERS), pick(NUMBERS)].slice(0, chance(0.5) ? 2 : 3) }),
      () => ({ [pick(['before', 'after', 'in_last', 'more_than_ago', 'in_next'])]: [{ var: 'seen' }, chance(0.5) ? text() : pick(NUMBERS), 'days'] }),
      () => ({ some: [{ var: 'tags' }, { [pick(['==', 'contains', 'iequals'])]: [{ var: '' }, text()] }] }),
      () => ({ performed: { event: text(), days: 30, atLeast: 1, where: { [pick(['==', '!=', '<', '>'])]: [{ var: pick(['properties.a.b', 'properties.0', 'properties.__proto__', text()]) }, chance(0.5) ? text() : pick(NUMBERS)] } } }),
      () => ({ in_group: text() }),
    ])();

  return () => {
    if (chance(0.6)) {
      return { [pick(['and', 'or'])]: [plausible(), chance(0.5) ? plausible() : { '!': plausible() }] };
    }
    if (chance(0.01)) {
      let deep: unknown = { var: 'name' };
      for (let i = 0; i < 5_000; i += 1) deep = { '!': deep };

      return deep;
    }

    return node(0);
  };
}

describe('fuzzed rules', () => {
  let db: TestDatabase;
  let client: PoolClient;
  let properties: Map<string, PropertyDef>;

  beforeAll(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'name', type: 'string' },
      { key: 'email', type: 'email' },
      { key: 'age', type: 'integer' },
      { key: 'score', type: 'float' },
      { key: 'vip', type: 'boolean' },
      { key: 'seen', type: 'date' },
      { key: 'tags', type: 'string', isList: true },
      { key: 'nums', type: 'integer', isList: true },
      { key: WEIRD_COLUMN, type: 'string', columnName: WEIRD_COLUMN },
    ]);
    await insertProfiles(db.pool, [
      { name: HOSTILE_TEXTS[0], age: 1, score: 1e308, vip: true, seen: '2025-01-01T00:00:00Z', tags: ['a', '%'], nums: [1], [WEIRD_COLUMN]: '$1' },
      { name: '', age: -9_007_199_254_740_991, score: -0, tags: [], nums: [] },
      {},
    ]);
    await db.pool.query(
      `INSERT INTO roster_core.events (message_id, type, event, properties, occurred_at, profile_id)
       SELECT 'm' || id, 'track', 'Film Rented', '{"a": {"b": 1}, "0": "x", "__proto__": 2}', now() - interval '1 day', id
       FROM roster_core.profiles`,
    );
    client = await db.pool.connect();
    await client.query("SET statement_timeout = '10s'");
  });

  afterAll(async () => {
    client.release();
    await db.drop();
  });

  it(`either compiles to SQL that runs or raises a rule ConfigError, for ${CASES} seeded cases`, async () => {
    const generate = fuzzer(random(777), [...properties.keys(), 'ghost', '__proto__', '', 'constructor']);
    const outcomes = { compiled: 0, refused: 0 };
    for (let i = 0; i < CASES; i += 1) {
      const rule = generate();
      let compiled;
      try {
        compiled = compileRule('fuzz', rule, properties, { groupKeys: ['gold', 'fuzz'] });
      } catch (err) {
        if (!(err instanceof ConfigError) || !RULE_CODES.has(err.code)) {
          throw new Error(`Case ${i} threw ${String(err)} for ${JSON.stringify(rule)?.slice(0, 300)}`, { cause: err });
        }
        expect(err.details).toEqual({ group: 'fuzz', path: expect.any(String) });
        outcomes.refused += 1;
        continue;
      }
      const sql = (where: string) => `SELECT count(*)::int AS n FROM roster_core.profiles AS p WHERE ${where}`;
      try {
        const bound = await client.query<{ n: number }>(sql(compiled.sql), compiled.params);
        const inline = await client.query<{ n: number }>(sql(renderInline(compiled)), []);
        expect(inline.rows[0].n).toBe(bound.rows[0].n);
      } catch (err) {
        throw new Error(`Case ${i} failed in SQL for ${JSON.stringify(rule)?.slice(0, 300)}`, { cause: err });
      }
      outcomes.compiled += 1;
    }

    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.profiles');
    expect(rows[0].n).toBe(3);
    // Both paths are exercised, or the fuzzer proves little.
    expect(outcomes.compiled).toBeGreaterThan(CASES * 0.15);
    expect(outcomes.refused).toBeGreaterThan(CASES * 0.1);
  });
});
