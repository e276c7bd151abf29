// Covers the rule operators by type, events and group membership against real rows and the reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../lib/db.js';
import { ConfigError } from '../../lib/errors.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { evaluateReference, type ReferenceEvent } from '../../sql/rules/reference.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, expectRuleError, insertProfiles } from './group-fixtures.js';

const NOW = new Date('2025-03-31T12:00:00Z');
const DAY_MS = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY_MS);

interface Person {
  values: Record<string, unknown>;
  events?: Array<[string, number, Record<string, unknown>]>;
  groups?: string[];
}

const PEOPLE: Record<string, Person> = {
  ada: {
    values: { name: 'Ada Lovelace', email: 'ada@example.com', age: 36, vip: true, seen: ago(2), renews: new Date(NOW.getTime() + 5 * DAY_MS), tags: ['a', 'b'], scores: [1, 5] },
    events: [
      ['Film Rented', 1, { category: 'Horror', price: 4.99 }],
      ['Film Rented', 3, { category: 'Horror', price: 2 }],
      ['Film Rented', 10, { category: 'Horror', price: 0 }],
      ['Film Rented', 40, { category: 'Horror' }],
    ],
    groups: ['gold'],
  },
  bob: {
    values: { name: 'bob_smith%', age: 17, vip: false, seen: ago(400), tags: [], scores: [] },
    events: [['Film Rented', 2, { category: 'Drama', price: '4.99' }]],
  },
  nil: { values: {} },
  zoe: {
    values: { name: 'ZOË é', age: 0, seen: new Date('2025-02-28T12:00:00Z'), tags: ['c', 'vip'], scores: [10, 20, 30] },
    events: [
      ['Film Rented', 5, { category: 'Horror', nested: { rating: 5 } }],
      ['Page Viewed', 1, {}],
    ],
    groups: ['gold', 'silver'],
  },
};

describe('rule operators', () => {
  let db: TestDatabase;
  let client: PoolClient;
  let properties: Map<string, PropertyDef>;
  const names = new Map<number, string>();
  const ids = new Map<string, number>();

  beforeAll(async () => {
    db = await createTestDatabase();
    properties = await defineProperties(db.pool, [
      { key: 'name', type: 'string' },
      { key: 'email', type: 'email' },
      { key: 'age', type: 'integer' },
      { key: 'vip', type: 'boolean' },
      { key: 'seen', type: 'date' },
      { key: 'renews', type: 'date' },
      { key: 'tags', type: 'string', isList: true },
      { key: 'scores', type: 'integer', isList: true },
    ]);
    const created = await insertProfiles(db.pool, Object.values(PEOPLE).map((person) => person.values));
    Object.keys(PEOPLE).forEach((name, i) => {
      names.set(created[i], name);
      ids.set(name, created[i]);
    });
    for (const key of ['gold', 'silver']) {
      const group = await createGroup(db.pool, { key }, properties);
      const members = Object.entries(PEOPLE).filter(([, person]) => person.groups?.includes(key)).map(([name]) => ids.get(name));
      await db.pool.query('INSERT INTO roster_core.group_memberships (group_id, profile_id) SELECT $1, unnest($2::bigint[])', [group.id, members]);
    }
    for (const [name, person] of Object.entries(PEOPLE)) {
      for (const [event, daysAgo, props] of person.events ?? []) {
        await db.pool.query(
          `INSERT INTO roster_core.events (message_id, type, event, properties, occurred_at, profile_id) VALUES ($1, 'track', $2, $3, $4, $5)`,
          [`${name}-${event}-${daysAgo}`, event, JSON.stringify(props), ago(daysAgo), ids.get(name)],
        );
      }
    }
    client = await db.pool.connect();
    await client.query("SET TIME ZONE 'UTC'");
    await client.query(`SET roster.clock = '${NOW.toISOString()}'`);
  });

  afterAll(async () => {
    client.release();
    await db.drop();
  });

  function reference(rule: unknown): string[] {
    return Object.entries(PEOPLE)
      .filter(([, person]) =>
        evaluateReference(rule, person.values, {
          now: NOW,
          groups: person.groups,
          events: (person.events ?? []).map(([event, daysAgo, props]): ReferenceEvent => ({ event, occurredAt: ago(daysAgo), properties: props })),
        }),
      )
      .map(([name]) => name)
      .sort();
  }

  async function matches(rule: unknown): Promise<string[]> {
    const compiled = compileRule('test_group', rule, properties);
    const query = (where: string, params: unknown[]) =>
      client.query<{ id: number }>(`SELECT p.id FROM roster_core.profiles AS p WHERE ${where} ORDER BY p.id`, params);
    const bound = (await query(compiled.sql, compiled.params)).rows.map((row) => names.get(row.id) ?? '?').sort();
    const inline = (await query(renderInline(compiled), [])).rows.map((row) => names.get(row.id) ?? '?').sort();
    expect(inline).toEqual(bound);
    expect(reference(rule)).toEqual(bound);

    return bound;
  }

  it.each([
    ['contains', { contains: [{ var: 'name' }, 'ove'] }, ['ada']],
    ['contains with LIKE wildcards as plain text', { contains: [{ var: 'name' }, '_smith%'] }, ['bob']],
    ['contains on a list element', { contains: [{ var: 'tags' }, 'i'] }, ['zoe']],
    ['not_contains including missing values', { not_contains: [{ var: 'name' }, 'o'] }, ['nil', 'zoe']],
    ['starts_with', { starts_with: [{ var: 'name' }, 'Ada'] }, ['ada']],
    ['starts_with that is case-sensitive', { starts_with: [{ var: 'name' }, 'ada'] }, []],
    ['ends_with with a combining accent', { ends_with: [{ var: 'name' }, 'é'] }, ['zoe']],
    ['iequals folding A-Z only', { iequals: [{ var: 'name' }, 'zoË é'] }, ['zoe']],
    ['iequals leaving other letters as they are', { iequals: [{ var: 'name' }, 'zoë é'] }, []],
    ['iequals on an email', { iequals: [{ var: 'email' }, 'ADA@EXAMPLE.COM'] }, ['ada']],
    ['not_exists', { not_exists: [{ var: 'seen' }] }, ['nil']],
    ['not_exists on an empty list', { not_exists: { var: 'tags' } }, ['bob', 'nil']],
    ['between on a number', { between: [{ var: 'age' }, 0, 17] }, ['bob', 'zoe']],
    ['between on a list', { between: [{ var: 'scores' }, 15, 25] }, ['zoe']],
    ['before', { before: [{ var: 'seen' }, '2025-03-01'] }, ['bob', 'zoe']],
    ['after with ago', { after: [{ var: 'seen' }, { ago: [1, 'month'] }] }, ['ada']],
    ['between on dates', { between: [{ var: 'seen' }, '2025-02-28T12:00:00Z', { ago: [1, 'day'] }] }, ['ada', 'zoe']],
    ['in_last days', { in_last: [{ var: 'seen' }, 3, 'days'] }, ['ada']],
    ['in_last one month from the 31st, boundary included', { in_last: [{ var: 'seen' }, 1, 'months'] }, ['ada', 'zoe']],
    ['in_last with a boundary instant', { in_last: [{ var: 'seen' }, 31, 'days'] }, ['ada', 'zoe']],
    ['more_than_ago', { more_than_ago: [{ var: 'seen' }, 1, 'years'] }, ['bob']],
    ['in_next', { in_next: [{ var: 'renews' }, 1, 'week'] }, ['ada']],
    ['in_next excluding the past', { in_next: [{ var: 'seen' }, 10, 'years'] }, []],
    ['some with a condition', { some: [{ var: 'scores' }, { '>': [{ var: '' }, 4] }] }, ['ada', 'zoe']],
    ['none', { none: [{ var: 'scores' }, { '>': [{ var: '' }, 4] }] }, ['bob', 'nil']],
    ['all', { all: [{ var: 'scores' }, { '>=': [{ var: '' }, 10] }] }, ['zoe']],
    ['some with a text operator', { some: [{ var: 'tags' }, { starts_with: [{ var: '' }, 'v'] }] }, ['zoe']],
    ['count compared', { '>=': [{ count: [{ var: 'tags' }] }, 2] }, ['ada', 'zoe']],
    ['count of missing lists as 0', { '==': [{ count: { var: 'scores' } }, 0] }, ['bob', 'nil']],
    ['truthiness of a boolean', { '!!': { var: 'vip' } }, ['ada']],
    ['performed at least', { performed: { event: 'Film Rented', atLeast: 2, days: 30 } }, ['ada']],
    ['performed at most, with no events', { performed: { event: 'Film Rented', atMost: 0, days: 30 } }, ['nil']],
    ['performed between', { performed: { event: 'Film Rented', atLeast: 1, atMost: 1, days: 7 } }, ['bob', 'zoe']],
    [
      'performed with a where',
      { performed: { event: 'Film Rented', atLeast: 3, days: 30, where: { '==': [{ var: 'properties.category' }, 'Horror'] } } },
      ['ada'],
    ],
    [
      'performed with a typed number where',
      { performed: { event: 'Film Rented', atLeast: 1, days: 30, where: { '>': [{ var: 'properties.price' }, 1] } } },
      ['ada'],
    ],
    [
      'performed with a nested field, in and !',
      {
        performed: {
          event: 'Film Rented',
          atLeast: 1,
          days: 30,
          where: { and: [{ '>=': [{ var: 'properties.nested.rating' }, 5] }, { '!': { in: [{ var: 'properties.category' }, ['Drama']] } }] },
        },
      },
      ['zoe'],
    ],
    [
      'performed with a missing field',
      { performed: { event: 'Film Rented', atLeast: 1, days: 60, where: { '==': [{ var: 'properties.price' }, null] } } },
      ['ada', 'zoe'],
    ],
    ['in_group', { in_group: 'gold' }, ['ada', 'zoe']],
    ['not in_group', { '!': { in_group: ['silver'] } }, ['ada', 'bob', 'nil']],
  ])('compiles %s', async (_name, rule, expected) => {
    expect(await matches(rule)).toEqual(expected);
  });

  it('reports what a rule depends on', () => {
    const compiled = compileRule(
      'g',
      { and: [{ in_group: 'gold' }, { performed: { event: 'Film Rented', atLeast: 1, days: 3 } }, { '>': [{ var: 'age' }, 1] }] },
      properties,
    );

    expect(compiled.groupKeys).toEqual(['gold']);
    expect(compiled.eventNames).toEqual(['Film Rented']);
    expect(compiled.isTimeRelative).toBe(true);
    expect(compileRule('g', { in_last: [{ var: 'seen' }, 1, 'day'] }, properties).isTimeRelative).toBe(true);
    expect(compileRule('g', { contains: [{ var: 'name' }, 'a'] }, properties).isTimeRelative).toBe(false);
  });

  it('binds event field paths and values instead of writing them into the SQL', () => {
    const hostile = `x'); DROP TABLE roster_core.profiles; --`;
    const compiled = compileRule('g', { performed: { event: hostile, atLeast: 1, days: 3, where: { '==': [{ var: 'properties.a.b' }, hostile] } } }, properties);

    expect(compiled.sql).not.toContain('DROP');
    expect(compiled.params).toContainEqual(['a', 'b']);
  });

  it('nests and, or and ! a hundred levels deep, and no deeper', async () => {
    let rule: unknown = { '>': [{ var: 'age' }, 1] };
    for (let i = 0; i < 100; i += 1) {
      rule = i % 4 === 0 ? { and: [rule, true] } : i % 4 === 1 ? { or: [rule, false] } : { '!': rule };
    }

    expect(await matches(rule)).toEqual(['ada', 'bob']);
    expect(() => compileRule('g', { and: [rule] }, properties)).toThrow(ConfigError);
  });

  it.each([
    ['contains on an integer', { contains: [{ var: 'age' }, '1'] }, 'CDP_RULE_TYPE_MISMATCH', 'contains'],
    ['starts_with with a number', { starts_with: [{ var: 'name' }, 1] }, 'CDP_RULE_TYPE_MISMATCH', 'starts_with[1]'],
    ['before on a string', { before: [{ var: 'name' }, '2020-01-01'] }, 'CDP_RULE_TYPE_MISMATCH', 'before'],
    ['in_last on a number', { in_last: [{ var: 'age' }, 1, 'days'] }, 'CDP_RULE_TYPE_MISMATCH', 'in_last'],
    ['in_last with a bad unit', { in_last: [{ var: 'seen' }, 1, 'fortnight'] }, 'CDP_RULE_MALFORMED', 'in_last'],
    ['between on a boolean', { between: [{ var: 'vip' }, false, true] }, 'CDP_RULE_TYPE_MISMATCH', 'between'],
    ['some on a scalar', { some: [{ var: 'age' }, true] }, 'CDP_RULE_TYPE_MISMATCH', 'some'],
    ['another property inside some', { some: [{ var: 'tags' }, { '==': [{ var: 'name' }, 'a'] }] }, 'CDP_RULE_MALFORMED', 'some[1].==[0].var'],
    ['count of a scalar', { '>': [{ count: [{ var: 'age' }] }, 1] }, 'CDP_RULE_TYPE_MISMATCH', '>[0].count'],
    ['performed without a count', { performed: { event: 'X', days: 3 } }, 'CDP_RULE_MALFORMED', 'performed'],
    ['performed with a bad path', { performed: { event: 'X', days: 3, atLeast: 1, where: { '==': [{ var: 'properties.a-b' }, 1] } } }, 'CDP_RULE_MALFORMED', 'performed.where.==[0].var'],
    ['performed with an unknown where operator', { performed: { event: 'X', days: 3, atLeast: 1, where: { contains: [1, 2] } } }, 'CDP_RULE_UNKNOWN_OPERATOR', 'performed.where.contains'],
    ['performed ordering booleans', { performed: { event: 'X', days: 3, atLeast: 1, where: { '<': [{ var: 'properties.a' }, true] } } }, 'CDP_RULE_TYPE_MISMATCH', 'performed.where.<[1]'],
    ['performed with a huge window', { performed: { event: 'X', days: 1e9, atLeast: 1 } }, 'CDP_RULE_MALFORMED', 'performed.days'],
    ['in_group of a number', { in_group: 5 }, 'CDP_RULE_MALFORMED', 'in_group'],
    ['in_group of its own group', { or: [false, { in_group: 'my_group' }] }, 'CDP_RULE_GROUP_CYCLE', 'or[1].in_group'],
    ['a condition where a value belongs', { '==': [{ var: 'age' }, { contains: [1, 2] }] }, 'CDP_RULE_MALFORMED', '==[1]'],
  ])('rejects %s', (_name, rule, code, path) => {
    expectRuleError(() => compileRule('my_group', rule, properties), code, { group: 'my_group', path });
  });

  it('rejects an unknown group when the defined groups are given', () => {
    expect(() => compileRule('g', { in_group: 'gold' }, properties, { groupKeys: ['gold'] })).not.toThrow();
    try {
      compileRule('g', { in_group: 'platinum' }, properties, { groupKeys: ['gold'] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CDP_RULE_UNKNOWN_GROUP');
    }
  });
});
