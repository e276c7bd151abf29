// Checks that compiled rules (bound and inlined) select exactly the profiles the reference selects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../lib/db.js';
import type { PropertyDef } from '../../sql/property-types.js';
import { compileRule } from '../../sql/rules/compile-rule.js';
import { evaluateReference, type ReferenceEvent } from '../../sql/rules/reference.js';
import { renderInline } from '../../sql/rules/render-inline.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createGroup, defineProperties, insertProfiles } from './group-fixtures.js';

const PROFILE_COUNT = 300;
const GENERATED_RULES = 400;
// The clock sits on the morning US clocks jump forward, so local-time values cross DST.
const NOW = new Date('2025-03-09T07:30:00.000Z');
const DAY_MS = 86_400_000;
const TEXTS = [
  '', 'a', 'A', 'abc', 'ABC', 'an', "O'Brien", 'semi;colon', '-- dash', '/* c */', 'Zoë', 'Zoe\u0301', 'e\u0301', '日本語',
  '😀 emoji', '👩‍👩‍👧', 'back\\slash', '"quoted"', "it''s", 'Canada', 'Mexico', ' space ', 'percent%_', 'M', 'Zoë 2', '\uFFFD', '\uE000',
];
const INTEGERS = [0, -1, 1, 17, 18, 65, 66, 2_147_483_648, -9_007_199_254_740_991, 9_007_199_254_740_991];
const FLOATS = [0, -0, -0.5, 1.5, 1e-300, 1e300, 3.14159, -1e300, 1e15, 1e15 + 0.5, -1e15];
const DATES = [
  '1970-01-01T00:00:00Z', '2000-02-29T12:00:00Z', '2025-03-09T01:59:59-05:00', '2025-03-09T03:00:00-04:00', '2025-03-09T07:29:59.999Z',
  '2025-03-09T07:30:00Z', '2025-02-28T07:30:00Z', '2025-03-09T12:30:00+05:30', '2024-11-03T01:30:00-04:00', '2024-11-03T01:30:00-05:00',
  '2025-03-08T23:00:00-08:00', '2025-03-16T07:30:00Z', '2026-03-09T07:30:00Z',
];
const EVENTS = ['Film Rented', 'Page Viewed', 'Ünï 😀'];
const UNITS = ['minutes', 'hours', 'days', 'weeks', 'months', 'years'];

type Next = () => number;

// A small seeded generator, so a failure reproduces.
function random(seed: number): Next {
  let state = seed;

  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;

    return state / 2_147_483_648;
  };
}

function makeGenerators(next: Next) {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)];
  const chance = (p: number) => next() < p;
  const nearDate = () => new Date(NOW.getTime() + Math.round((next() - 0.6) * 800) * (DAY_MS / 8)).toISOString();
  const date = () => (chance(0.4) ? pick(DATES) : nearDate());
  const integer = () => (chance(0.6) ? pick(INTEGERS) : Math.floor(next() * 100));
  const float = () => (chance(0.5) ? pick(FLOATS) : Math.round(next() * 1000) / 100 - 3);

  return { pick, chance, date, integer, float, nearDate };
}

/** Generates random rules over the differential test's properties, events and groups. */
function ruleGenerator(next: Next): () => unknown {
  const { pick, chance, date, integer, float } = makeGenerators(next);
  const text = () => (chance(0.8) ? pick(TEXTS) : pick(TEXTS).slice(0, 2));
  const relative = () => ({ [pick(['ago', 'from_now'])]: [Math.floor(next() * 40), pick(UNITS)] });
  const dateValue = () => (chance(0.5) ? date() : relative());
  const order = () => pick(['<', '<=', '>', '>=']);
  const flip = (subject: unknown, value: unknown, op: string) => ({ [op]: chance(0.7) ? [subject, value] : [value, subject] });

  const textLeaf = (subject: unknown): unknown => {
    switch (pick(['==', '!=', 'order', 'in', 'in_text', 'match', 'match', 'exists', '!!'])) {
      case '==':
      case '!=':
        return flip(subject, chance(0.1) ? null : text(), pick(['==', '!=']));
      case 'order':
        return flip(subject, text(), order());
      case 'in':
        return { in: [subject, [text(), text(), text()]] };
      case 'in_text':
        return { in: [text(), subject] };
      case 'match':
        return { [pick(['contains', 'not_contains', 'starts_with', 'ends_with', 'iequals'])]: [subject, text()] };
      case 'exists':
        return { [pick(['exists', 'not_exists'])]: [subject] };
      default:
        return { '!!': subject };
    }
  };
  const numberLeaf = (subject: unknown, value: () => number): unknown => {
    switch (pick(['==', '!=', 'order', 'order', 'between', 'in', 'exists', '!!'])) {
      case '==':
      case '!=':
        return flip(subject, value(), pick(['==', '!=']));
      case 'order':
        return flip(subject, value(), order());
      case 'between': {
        const [low, high] = [value(), value()].sort((a, b) => a - b);

        return chance(0.5) ? { between: [subject, low, high] } : { [pick(['<', '<='])]: [low, subject, high] };
      }
      case 'in':
        return { in: [subject, [value(), value()]] };
      case 'exists':
        return { [pick(['exists', 'not_exists'])]: subject };
      default:
        return chance(0.5) ? { '!!': [subject] } : subject;
    }
  };
  const dateLeaf = (subject: unknown): unknown => {
    switch (pick(['before', 'after', 'between', 'window', 'window', 'order', '=='])) {
      case 'before':
      case 'after':
        return { [pick(['before', 'after'])]: [subject, dateValue()] };
      case 'between':
        return chance(0.5) ? { between: [subject, dateValue(), dateValue()] } : { '<=': [dateValue(), subject, dateValue()] };
      case 'window':
        return { [pick(['in_last', 'more_than_ago', 'in_next'])]: [subject, Math.floor(next() * 40), pick(UNITS)] };
      case 'order':
        return flip(subject, dateValue(), order());
      default:
        return flip(subject, date(), pick(['==', '!=']));
    }
  };
  const listLeaf = (key: string, element: (subject: unknown) => unknown): unknown => {
    switch (pick(['element', 'some', 'count', 'exists'])) {
      case 'element':
        return element({ var: key });
      case 'some':
        return { [pick(['some', 'none', 'all'])]: [{ var: key }, element({ var: '' })] };
      case 'count':
        return flip({ count: [{ var: key }] }, Math.floor(next() * 4), pick(['==', '!=', '<', '>=']));
      default:
        return { [pick(['exists', 'not_exists'])]: [{ var: key }] };
    }
  };
  const whereLeaf = (depth: number): unknown => {
    const field = { var: pick(['properties.category', 'properties.price', 'properties.nested.rating', 'properties.list.0']) };
    const value = () => (chance(0.5) ? text() : chance(0.1) ? pick([true, false, null]) : float());
    switch (depth < 2 ? pick(['and', 'or', '!', 'cmp', 'cmp', 'cmp', 'in', 'exists']) : 'cmp') {
      case 'and':
      case 'or':
        return { [pick(['and', 'or'])]: [whereLeaf(depth + 1), whereLeaf(depth + 1)] };
      case '!':
        return { '!': whereLeaf(depth + 1) };
      case 'in':
        return { in: [field, [value(), value()].filter((item) => item !== null)] };
      case 'exists':
        return { exists: [field] };
      default: {
        const item = value();
        const op = typeof item === 'boolean' || item === null ? pick(['==', '!=']) : pick(['==', '!=', '<', '<=', '>', '>=']);

        return flip(field, item, op);
      }
    }
  };
  const leaf = (): unknown => {
    switch (pick(['name', 'age', 'score', 'vip', 'seen', 'tags', 'nums', 'logins', 'performed', 'in_group'])) {
      case 'name':
        return textLeaf({ var: 'name' });
      case 'age':
        return numberLeaf({ var: 'age' }, integer);
      case 'score':
        return numberLeaf({ var: 'score' }, float);
      case 'vip':
        return pick([{ var: 'vip' }, { '==': [{ var: 'vip' }, chance(0.5)] }, { '!=': [{ var: 'vip' }, chance(0.5)] }, { exists: { var: 'vip' } }]);
      case 'seen':
        return dateLeaf({ var: 'seen' });
      case 'tags':
        return listLeaf('tags', textLeaf);
      case 'nums':
        return listLeaf('nums', (subject) => numberLeaf(subject, integer));
      case 'logins':
        return listLeaf('logins', dateLeaf);
      case 'performed': {
        const spec: Record<string, unknown> = { event: pick(EVENTS), days: pick([1, 7, 30]) };
        if (chance(0.7)) spec.atLeast = Math.floor(next() * 3);
        if (!('atLeast' in spec) || chance(0.3)) spec.atMost = Math.floor(next() * 3);
        if (chance(0.6)) spec.where = whereLeaf(0);

        return { performed: spec };
      }
      default:
        return { in_group: pick(['gold', 'silver']) };
    }
  };
  const node = (depth: number): unknown => {
    if (depth >= 3 || chance(0.4)) {
      return leaf();
    }
    const kind = pick(['and', 'or', '!']);

    return kind === '!' ? { '!': node(depth + 1) } : { [kind]: Array.from({ length: 1 + Math.floor(next() * 3) }, () => node(depth + 1)) };
  };

  return () => node(0);
}

interface Profile {
  id: number;
  values: Record<string, unknown>;
  events: ReferenceEvent[];
  groups: string[];
}

const HAND_WRITTEN: unknown[] = [
  { '==': [{ var: 'name' }, "O'Brien"] },
  { '<': [17, { var: 'age' }, 66] },
  { '!': { '<': [{ var: 'score' }, 0] } },
  { '>': [{ var: 'seen' }, { ago: [30, 'days'] }] },
  { in_last: [{ var: 'seen' }, 1, 'months'] },
  { more_than_ago: [{ var: 'logins' }, 2, 'weeks'] },
  { in: ['😀', { var: 'name' }] },
  { iequals: [{ var: 'name' }, 'abc'] },
  { starts_with: [{ var: 'name' }, 'Zoe'] },
  { ends_with: [{ var: 'tags' }, '\u0301'] },
  { '!=': [{ var: 'tags' }, 'abc'] },
  { none: [{ var: 'nums' }, { '>': [{ var: '' }, 17] }] },
  { all: [{ var: 'logins' }, { before: [{ var: '' }, { ago: [0, 'days'] }] }] },
  { '>=': [{ count: [{ var: 'tags' }] }, 2] },
  { performed: { event: 'Film Rented', atLeast: 2, days: 30, where: { '==': [{ var: 'properties.category' }, 'Canada'] } } },
  { performed: { event: 'Film Rented', atMost: 0, days: 7 } },
  { performed: { event: 'Page Viewed', atLeast: 1, days: 30, where: { '<': [-0, { var: 'properties.price' }] } } },
  { and: [{ in_group: 'gold' }, { '!': { in_group: 'silver' } }] },
  { or: [{ and: [{ var: 'vip' }, { '>=': [{ var: 'age' }, 18] }] }, { '!': { exists: [{ var: 'nums' }] } }] },
  { '==': [{ var: 'score' }, -0] },
  { '>': [{ var: 'score' }, 1e15] },
  { '==': [{ var: 'age' }, 9_007_199_254_740_991] },
];

describe('compiled rules against the reference', () => {
  let db: TestDatabase;
  let client: PoolClient;
  let properties: Map<string, PropertyDef>;
  const profiles: Profile[] = [];
  const generate = ruleGenerator(random(4_242));
  const rules = [...HAND_WRITTEN, ...Array.from({ length: GENERATED_RULES }, generate)];

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
      { key: 'logins', type: 'date', isList: true },
    ]);

    const next = random(20_260_101);
    const { pick, chance, date, integer, float, nearDate } = makeGenerators(next);
    const maybe = <T>(make: () => T): T | null => (chance(0.2) ? null : make());
    const list = <T>(make: () => T): T[] | null => (chance(0.15) ? null : Array.from({ length: Math.floor(next() * 4) }, make));
    const raw = Array.from({ length: PROFILE_COUNT }, () => ({
      name: maybe(() => pick(TEXTS)),
      age: maybe(integer),
      score: maybe(float),
      vip: maybe(() => chance(0.5)),
      seen: maybe(date),
      tags: list(() => pick(TEXTS)),
      nums: list(() => pick([0, 1, 17, 18, 65, 66, 100])),
      logins: list(date),
    }));
    // Postgres parses the dates with their offsets; the reference gets the same instants.
    const ids = await insertProfiles(db.pool, raw);
    const groups = { gold: await createGroup(db.pool, { key: 'gold' }, properties), silver: await createGroup(db.pool, { key: 'silver' }, properties) };
    const eventValue = () => pick<unknown>([pick(TEXTS), float(), integer(), true, null, { a: 1 }, [1, 2]]);

    for (const [i, id] of ids.entries()) {
      const values = Object.fromEntries(
        Object.entries(raw[i]).map(([key, value]) => [
          key,
          key === 'seen' && typeof value === 'string' ? new Date(value) : key === 'logins' && Array.isArray(value) ? value.map((item) => new Date(item as string)) : value,
        ]),
      );
      const events = Array.from({ length: Math.floor(next() * 6) }, (): ReferenceEvent => {
        const props: Record<string, unknown> = {};
        if (chance(0.8)) props.category = chance(0.7) ? pick(['Canada', 'Mexico', 'a', 'Zoë']) : eventValue();
        if (chance(0.7)) props.price = chance(0.7) ? pick([-0, 0, 0.5, 2, 1e15, -3, 9_007_199_254_740_991]) : eventValue();
        if (chance(0.3)) props.nested = { rating: chance(0.8) ? Math.floor(next() * 6) : eventValue() };
        if (chance(0.2)) props.list = [eventValue(), eventValue()];

        return { event: pick(EVENTS), occurredAt: new Date(nearDate()), properties: props };
      });
      const memberOf = (['gold', 'silver'] as const).filter(() => chance(0.4));
      profiles.push({ id, values, events, groups: [...memberOf] });
      for (const [n, event] of events.entries()) {
        await db.pool.query(
          `INSERT INTO roster_core.events (message_id, type, event, properties, occurred_at, profile_id) VALUES ($1, 'track', $2, $3, $4, $5)`,
          [`${id}-${n}`, event.event, JSON.stringify(event.properties), event.occurredAt, id],
        );
      }
      for (const key of memberOf) {
        await db.pool.query('INSERT INTO roster_core.group_memberships (group_id, profile_id) VALUES ($1, $2)', [groups[key].id, id]);
      }
    }

    client = await db.pool.connect();
    await client.query(`SET roster.clock = '${NOW.toISOString()}'`);
  });

  afterAll(async () => {
    client.release();
    await db.drop();
  });

  function expected(rule: unknown): number[] {
    return profiles
      .filter((profile) => evaluateReference(rule, profile.values, { now: NOW, events: profile.events, groups: profile.groups }))
      .map((profile) => profile.id);
  }

  async function selected(rule: unknown): Promise<{ bound: number[]; inline: number[] }> {
    const compiled = compileRule('differential', rule, properties);
    const sql = (where: string) => `SELECT p.id FROM roster_core.profiles AS p WHERE ${where} ORDER BY p.id`;

    return {
      bound: (await client.query<{ id: number }>(sql(compiled.sql), compiled.params)).rows.map((row) => row.id),
      inline: (await client.query<{ id: number }>(sql(renderInline(compiled)), [])).rows.map((row) => row.id),
    };
  }

  // Calendar units follow the session time zone in Postgres and UTC in the reference.
  const isZoneFree = (rule: unknown) => !/"(days?|weeks?|months?|years?)"|"performed"/.test(JSON.stringify(rule));

  it.each(rules.map((rule, i) => [i, JSON.stringify(rule), rule]))('agrees on rule %i: %s', async (_i, _json, rule) => {
    await client.query("SET TIME ZONE 'UTC'");
    const want = expected(rule);
    const { bound, inline } = await selected(rule);
    expect(bound).toEqual(want);
    expect(inline).toEqual(want);

    if (isZoneFree(rule)) {
      await client.query("SET TIME ZONE 'America/New_York'");
      expect((await selected(rule)).bound).toEqual(want);
    }
  });

  it('generates rules with members and non-members', () => {
    const informative = rules.filter((rule) => {
      const count = expected(rule).length;

      return count > 0 && count < PROFILE_COUNT;
    });
    expect(informative.length).toBeGreaterThan(rules.length * 0.6);
  });
});
