// Covers compileRule and renderInline: each operator against real rows, and the error codes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { defineProperties, expectRuleError, insertProfiles } from './group-fixtures.js';

const DAY_MS = 86_400_000;

describe('compileRule', () => {
  let db: TestDatabase;
  let properties: Map<string, PropertyDef>;
  const names = new Map<number, string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'name', type: 'string' },
      { key: 'email', type: 'email' },
      { key: 'age', type: 'integer' },
      { key: 'score', type: 'float' },
      { key: 'vip', type: 'boolean' },
      { key: 'signed_up', type: 'date', columnName: 'signed_up_at' },
      { key: 'tags', type: 'string', isList: true },
      { key: 'scores', type: 'integer', isList: true },
      { key: 'logins', type: 'date', isList: true },
    ]);
    const now = Date.now();
    const profiles: Record<string, Record<string, unknown>> = {
      ada: {
        name: 'Ada',
        email: 'ada@example.com',
        age: 36,
        score: 9.5,
        vip: true,
        signed_up_at: '2024-01-10T00:00:00Z',
        tags: ['a', 'b'],
        scores: [1, 5],
        logins: [new Date(now - 40 * DAY_MS)],
      },
      bob: { name: 'Bob', age: 17, score: 2, vip: false, signed_up_at: '2020-05-01T00:00:00Z', tags: [], scores: [] },
      nil: {},
      oneil: { name: "O'Neil; --", age: 65, signed_up_at: new Date(now - 3 * DAY_MS), tags: ['b'], logins: [new Date(now - DAY_MS)] },
      zoe: { name: 'Zoë 日本', age: 0, score: -1.5, vip: false, tags: ['c'], scores: [10] },
    };
    const ids = await insertProfiles(db.pool, Object.values(profiles));
    Object.keys(profiles).forEach((name, i) => names.set(ids[i], name));
  });

  afterAll(async () => {
    await db.drop();
  });

  async function matches(rule: unknown): Promise<string[]> {
    const compiled = compileRule('test_group', rule, properties);
    const query = (where: string, params: unknown[]) =>
      db.pool.query<{ id: number }>(`SELECT p.id FROM roster_core.profiles AS p WHERE ${where} ORDER BY p.id`, params);
    const bound = (await query(compiled.sql, compiled.params)).rows.map((row) => names.get(row.id) ?? '?');
    const inline = (await query(renderInline(compiled), [])).rows.map((row) => names.get(row.id) ?? '?');
    expect(inline).toEqual(bound);

    return bound.sort();
  }

  it.each([
    ['== on a string', { '==': [{ var: 'name' }, 'Bob'] }, ['bob']],
    ['== with the value first', { '==': ['Bob', { var: 'name' }] }, ['bob']],
    ['== on an email, case-insensitively', { '==': [{ var: 'email' }, 'ADA@example.com'] }, ['ada']],
    ['!= including nulls', { '!=': [{ var: 'name' }, 'Bob'] }, ['ada', 'nil', 'oneil', 'zoe']],
    ['< on an integer', { '<': [{ var: 'age' }, 18] }, ['bob', 'zoe']],
    ['<= on an integer', { '<=': [{ var: 'age' }, 17] }, ['bob', 'zoe']],
    ['> on a float', { '>': [{ var: 'score' }, 1.99] }, ['ada', 'bob']],
    ['>= with the value first', { '>=': [36, { var: 'age' }] }, ['ada', 'bob', 'zoe']],
    ['between with <', { '<': [0, { var: 'age' }, 65] }, ['ada', 'bob']],
    ['between with <=', { '<=': [0, { var: 'age' }, 65] }, ['ada', 'bob', 'oneil', 'zoe']],
    ['== on a boolean', { '==': [{ var: 'vip' }, false] }, ['bob', 'zoe']],
    ['!= on a boolean including nulls', { '!=': [{ var: 'vip' }, true] }, ['bob', 'nil', 'oneil', 'zoe']],
    ['> on a date', { '>': [{ var: 'signed_up' }, '2021-01-01'] }, ['ada', 'oneil']],
    ['> on a date with ago', { '>': [{ var: 'signed_up' }, { ago: [7, 'days'] }] }, ['oneil']],
    ['< on a date with from_now', { '<': [{ var: 'signed_up' }, { from_now: [1, 'hour'] }] }, ['ada', 'bob', 'oneil']],
    ['between two relative dates', { '<': [{ ago: [5, 'years'] }, { var: 'signed_up' }, { ago: [1, 'days'] }] }, ['ada', 'oneil']],
    ['in a list of values', { in: [{ var: 'name' }, ['Bob', 'Zoë 日本', 'nobody']] }, ['bob', 'zoe']],
    ['in an empty list of values', { in: [{ var: 'name' }, []] }, []],
    ['in as text contains', { in: ["'Neil;", { var: 'name' }] }, ['oneil']],
    ['in as list contains', { in: ['b', { var: 'tags' }] }, ['ada', 'oneil']],
    ['in as list overlap', { in: [{ var: 'tags' }, ['c', 'x']] }, ['zoe']],
    ['== on a list as any element', { '==': [{ var: 'tags' }, 'b'] }, ['ada', 'oneil']],
    ['!= on a list as no element, with empty lists and nulls', { '!=': [{ var: 'tags' }, 'b'] }, ['bob', 'nil', 'zoe']],
    ['> on a list as any element', { '>': [{ var: 'scores' }, 4] }, ['ada', 'zoe']],
    ['> on a date list with ago', { '>': [{ var: 'logins' }, { ago: [2, 'days'] }] }, ['oneil']],
    ['exists on a scalar', { exists: [{ var: 'score' }] }, ['ada', 'bob', 'zoe']],
    ['exists on a list, false for empty lists', { exists: [{ var: 'tags' }] }, ['ada', 'oneil', 'zoe']],
    ['== null as has no value', { '==': [{ var: 'score' }, null] }, ['nil', 'oneil']],
    ['!= null as exists', { '!=': [{ var: 'score' }, null] }, ['ada', 'bob', 'zoe']],
    ['! of a comparison with nulls', { '!': { '<': [{ var: 'age' }, 18] } }, ['ada', 'nil', 'oneil']],
    ['!! as truthiness of an integer', { '!!': [{ var: 'age' }] }, ['ada', 'bob', 'oneil']],
    ['a bare var as truthiness of a boolean', { var: 'vip' }, ['ada']],
    ['and', { and: [{ '>': [{ var: 'age' }, 10] }, { exists: [{ var: 'tags' }] }] }, ['ada', 'oneil']],
    ['or', { or: [{ '==': [{ var: 'age' }, 0] }, { '==': [{ var: 'vip' }, true] }] }, ['ada', 'zoe']],
    [
      'deep nesting',
      { or: [{ and: [{ '!': { or: [{ var: 'vip' }, { '==': [{ var: 'name' }, 'Bob'] }] } }, { '>=': [{ var: 'age' }, 0] }] }, false] },
      ['oneil', 'zoe'],
    ],
  ])('compiles %s', async (_name, rule, expected) => {
    expect(await matches(rule)).toEqual(expected);
  });

  it('binds every value and casts each placeholder to the property type', () => {
    const compiled = compileRule('g', { and: [{ '>': [{ var: 'age' }, 3] }, { '<': [{ var: 'signed_up' }, '2020-01-01'] }] }, properties);
    expect(compiled.sql).toContain('$1::bigint');
    expect(compiled.sql).toContain('$2::timestamptz');
    expect(compiled.params).toEqual([3, '2020-01-01T00:00:00.000Z']);
    expect(compiled.propertyKeys).toEqual(['age', 'signed_up']);
    expect(compiled.sql).toContain('"signed_up_at"');
  });

  it('marks rules with relative dates as time-relative', () => {
    expect(compileRule('g', { '>': [{ var: 'signed_up' }, { ago: [1, 'months'] }] }, properties).isTimeRelative).toBe(true);
    expect(compileRule('g', { '>': [{ var: 'signed_up' }, '2020-01-01'] }, properties).isTimeRelative).toBe(false);
  });

  it.each([
    ['an unknown property', { '==': [{ var: 'nope' }, 1] }, 'CDP_RULE_UNKNOWN_PROPERTY', '==[0].var'],
    ['an unknown operator', { and: [true, { '+': [1, 2] }] }, 'CDP_RULE_UNKNOWN_OPERATOR', 'and[1].+'],
    ['an unknown operator in value position', { '==': [{ var: 'age' }, { '*': [1, 2] }] }, 'CDP_RULE_UNKNOWN_OPERATOR', '==[1]'],
    ['a wrong arity', { '>': [{ var: 'age' }] }, 'CDP_RULE_MALFORMED', '>'],
    ['a 3-argument >', { '>': [1, { var: 'age' }, 3] }, 'CDP_RULE_MALFORMED', '>'],
    ['an object where a value belongs', { and: [true, { '>': [{ var: 'age' }, { a: 1, b: 2 }] }] }, 'CDP_RULE_MALFORMED', 'and[1].>[1]'],
    ['a list where a value belongs', { '==': [{ var: 'age' }, [1]] }, 'CDP_RULE_MALFORMED', '==[1]'],
    ['NaN', { '==': [{ var: 'score' }, Number.NaN] }, 'CDP_RULE_MALFORMED', '==[1]'],
    ['Infinity', { '<': [{ var: 'score' }, Number.POSITIVE_INFINITY] }, 'CDP_RULE_MALFORMED', '<[1]'],
    ['an integer beyond bigint', { '>': [{ var: 'age' }, 1e300] }, 'CDP_RULE_MALFORMED', '>[1]'],
    ['two values and no property', { '==': [1, 1] }, 'CDP_RULE_MALFORMED', '=='],
    ['two properties', { '==': [{ var: 'age' }, { var: 'age' }] }, 'CDP_RULE_MALFORMED', '==[1]'],
    ['a bad ago unit', { '>': [{ var: 'signed_up' }, { ago: [1, 'fortnights'] }] }, 'CDP_RULE_MALFORMED', '>[1].ago'],
    ['a negative ago count', { '>': [{ var: 'signed_up' }, { ago: [-1, 'days'] }] }, 'CDP_RULE_MALFORMED', '>[1].ago'],
    ['a string as a condition', 'yes', 'CDP_RULE_MALFORMED', ''],
    ['a multi-key node', { and: [{ '==': [{ var: 'age' }, 1], '!=': [{ var: 'age' }, 2] }] }, 'CDP_RULE_MALFORMED', 'and[0]'],
    ['> on a boolean', { '>': [{ var: 'vip' }, true] }, 'CDP_RULE_TYPE_MISMATCH', '>'],
    ['a string against an integer', { '==': [{ var: 'age' }, '30'] }, 'CDP_RULE_TYPE_MISMATCH', '==[1]'],
    ['a fraction against an integer', { '==': [{ var: 'age' }, 1.5] }, 'CDP_RULE_TYPE_MISMATCH', '==[1]'],
    ['a number against a string', { '==': [{ var: 'name' }, 5] }, 'CDP_RULE_TYPE_MISMATCH', '==[1]'],
    ['ago against a non-date', { '<': [{ var: 'age' }, { ago: [1, 'days'] }] }, 'CDP_RULE_TYPE_MISMATCH', '<[1]'],
    ['an unparsable date', { '<': [{ var: 'signed_up' }, 'last tuesday'] }, 'CDP_RULE_TYPE_MISMATCH', '<[1]'],
    ['text search in an integer', { in: ['1', { var: 'age' }] }, 'CDP_RULE_TYPE_MISMATCH', 'in[0]'],
    ['text search in a boolean', { in: [true, { var: 'vip' }] }, 'CDP_RULE_TYPE_MISMATCH', 'in'],
    ['a bare var of an unknown property', { var: 'ghost' }, 'CDP_RULE_UNKNOWN_PROPERTY', 'var'],
  ])('rejects %s', (_name, rule, code, path) => {
    expectRuleError(() => compileRule('my_group', rule, properties), code, { group: 'my_group', path });
  });

  it('rejects rules nested beyond the depth limit', () => {
    let rule: unknown = { var: 'vip' };
    for (let i = 0; i < 200; i += 1) {
      rule = { '!': [rule] };
    }
    expect(() => compileRule('g', rule, properties)).toThrow(ConfigError);
  });
});
