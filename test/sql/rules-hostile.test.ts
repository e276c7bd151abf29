// Proves that hostile keys and values in rules end as a ConfigError or a bound value, never as SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import { syncGroupView } from '../../sql/group-membership.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles } from './group-fixtures.js';

const INJECTION = `x'); DROP TABLE roster_core.profiles; --`;
const HOSTILE_TEXTS = [
  INJECTION,
  `"; DELETE FROM roster_core.profiles; --`,
  `' OR '1'='1`,
  `$1::text`,
  `back\\slash\\' E'`,
  `/* comment */ ;;`,
  `ünï​cödé 😀 \u202e`,
];
const WEIRD_COLUMN = `we"ird; DROP TABLE roster_core.profiles; --$1`;

describe('hostile rule input', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;
  let ids: number[];

  beforeAll(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'name', type: 'string' },
      { key: 'score', type: 'float' },
      { key: 'age', type: 'integer' },
      { key: WEIRD_COLUMN, type: 'string', columnName: WEIRD_COLUMN },
    ]);
    ids = await insertProfiles(
      db.pool,
      HOSTILE_TEXTS.map((text, i) => ({ name: text, score: i === 0 ? 1e308 : i, [WEIRD_COLUMN]: text })),
    );
  });

  afterAll(async () => {
    await db.drop();
  });

  async function expectProfilesIntact(): Promise<void> {
    const { rows } = await db.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM roster_core.profiles');
    expect(rows[0].count).toBe(HOSTILE_TEXTS.length);
  }

  async function select(rule: unknown): Promise<{ bound: number[]; inline: number[] }> {
    const compiled = compileRule('hostile', rule, properties);
    const sql = (where: string) => `SELECT p.id FROM roster_core.profiles AS p WHERE ${where} ORDER BY p.id`;

    return {
      bound: (await db.pool.query<{ id: number }>(sql(compiled.sql), compiled.params)).rows.map((row) => row.id),
      inline: (await db.pool.query<{ id: number }>(sql(renderInline(compiled)), [])).rows.map((row) => row.id),
    };
  }

  it.each(HOSTILE_TEXTS.map((text, i) => [text, i]))('matches the hostile text %s as a plain value', async (text, i) => {
    for (const key of ['name', WEIRD_COLUMN]) {
      const result = await select({ or: [{ '==': [{ var: key }, text] }, { in: [text, { var: key }] }, { in: [{ var: key }, [text]] }] });
      expect(result.bound).toEqual([ids[i as number]]);
      expect(result.inline).toEqual(result.bound);
    }
    await expectProfilesIntact();
  });

  it('binds 1e308 as a float value', async () => {
    const result = await select({ '>=': [{ var: 'score' }, 1e308] });
    expect(result.bound).toEqual([ids[0]]);
    expect(result.inline).toEqual([ids[0]]);
  });

  it.each([
    ['a hostile property key', { '==': [{ var: INJECTION }, 1] }, 'CDP_RULE_UNKNOWN_PROPERTY'],
    ['a hostile operator', { [INJECTION]: [{ var: 'name' }, 'a'] }, 'CDP_RULE_UNKNOWN_OPERATOR'],
    ['a hostile relative date unit', { '>': [{ var: 'age' }, { ago: [1, INJECTION] }] }, 'CDP_RULE_MALFORMED'],
    ['1e308 against an integer', { '>': [{ var: 'age' }, 1e308] }, 'CDP_RULE_MALFORMED'],
    ['-1e308 against an integer', { '<': [{ var: 'age' }, -1e308] }, 'CDP_RULE_MALFORMED'],
    ['a hostile string against an integer', { '==': [{ var: 'age' }, INJECTION] }, 'CDP_RULE_TYPE_MISMATCH'],
    ['a NUL character in text', { '==': [{ var: 'name' }, 'a\u0000b'] }, 'CDP_RULE_MALFORMED'],
    ['a prototype key as an operator', JSON.parse('{"__proto__": [1, 2]}'), 'CDP_RULE_UNKNOWN_OPERATOR'],
    ['a prototype key as a property', { exists: [{ var: '__proto__' }] }, 'CDP_RULE_UNKNOWN_PROPERTY'],
  ])('rejects %s with a ConfigError', async (_name, rule, code) => {
    expect(() => compileRule('hostile', rule, properties)).toThrow(ConfigError);
    try {
      compileRule('hostile', rule, properties);
    } catch (err) {
      expect((err as ConfigError).code).toBe(code);
    }
    await expectProfilesIntact();
  });

  it('quotes a hostile group key in its view name', async () => {
    const key = `k"; DROP TABLE roster_core.profiles; --`;
    const group = await createGroup(db.pool, { key, rule: { '==': [{ var: 'name' }, INJECTION] } }, properties);
    await syncGroupView(db.pool, group);

    const { rows } = await db.pool.query<{ profile_id: number }>(
      `SELECT profile_id FROM roster.${'"' + `group_${key}`.replaceAll('"', '""') + '"'}`,
    );
    expect(rows.map((row) => row.profile_id)).toEqual([ids[0]]);
    await expectProfilesIntact();
  });
});
