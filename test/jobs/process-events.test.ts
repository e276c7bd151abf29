// Covers event processing: identity from userId, unique traits and anonymous ids, merges, alias, junk ids, typed traits, outbound queueing and concurrency.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { QUEUES, type JobDeps, type QueueName } from '../../jobs/index.js';
import { processPendingEvents } from '../../jobs/process-events.js';
import { isJunkIdentifier } from '../../sql/resolve-event-profiles.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { eventProfiles, insertPendingEvents } from '../helpers/pending-events.js';

const CONFIG = `
events:
  userIdProperty: user_id
  anonymousIdsPerProfile: 3
properties:
  - { key: user_id, type: string, unique: true }
  - { key: email, type: email, unique: true }
  - { key: age, type: integer }
  - { key: plan, type: string }
groups:
  - { key: vip, type: manual }
apps:
  - { key: hooks, type: webhook, options: { url: "https://example.com/hook" } }
destinations:
  - { key: rentals_hook, app: hooks, events: [Film Rented, Pricing] }
`;

let db: TestDatabase;
let sent: QueueName[];
let deps: JobDeps;

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.pool.query<{ count: number }>(sql, params);

  return rows[0].count;
}

async function profileOf(column: 'user_id' | 'email', value: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.pool.query(`SELECT id, user_id, email, age, plan FROM roster_core.profiles WHERE ${column} = $1`, [value]);

  return rows[0];
}

beforeAll(async () => {
  db = await createTestDatabase();
  await applyYaml(db.pool, CONFIG);
});

afterAll(async () => {
  await db.drop();
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE roster_core.events, roster_core.profiles, roster_core.anonymous_ids, roster_core.profile_merges, roster_core.identity_conflicts, roster_core.outbound_events CASCADE');
  sent = [];
  deps = { pool: db.pool, log: pino({ level: 'silent' }), config: loadConfig({}), queue: { send: async (queue) => void sent.push(queue) } };
});

describe('processPendingEvents', () => {
  it('keeps two users of one anonymous id apart (C8)', async () => {
    const ids = await insertPendingEvents(db.pool, [
      { type: 'track', event: 'Viewed', anonymousId: 'device-1' },
      { type: 'identify', userId: 'b', anonymousId: 'device-1' },
      { type: 'track', event: 'Viewed', anonymousId: 'device-1' },
      { type: 'identify', userId: 'c', anonymousId: 'device-1' },
      { type: 'track', event: 'Viewed', anonymousId: 'device-1' },
    ]);

    const result = await processPendingEvents(deps);

    const b = await profileOf('user_id', 'b');
    const c = await profileOf('user_id', 'c');
    expect(b?.id).toBeDefined();
    expect(c?.id).toBeDefined();
    expect(b?.id).not.toBe(c?.id);
    expect(await eventProfiles(db.pool, ids)).toEqual([b?.id, b?.id, b?.id, c?.id, c?.id]);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profiles')).toBe(2);
    const { rows } = await db.pool.query(`SELECT profile_id FROM roster_core.anonymous_ids WHERE anonymous_id = 'device-1'`);
    expect(rows).toEqual([{ profile_id: c?.id }]);
    const { rows: conflicts } = await db.pool.query(`SELECT resolution, profile_id, other_profile_id FROM roster.identity_conflicts`);
    expect(conflicts).toEqual([{ resolution: 'anonymous_id_moved', profile_id: c?.id, other_profile_id: b?.id }]);
    expect(result).toMatchObject({ events: 5, anonymousIdsMoved: 1, profilesMerged: 0 });
  });

  it('keeps two users of one anonymous id apart when they arrive in separate batches (C8)', async () => {
    await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'b', anonymousId: 'device-2' }]);
    await processPendingEvents(deps);
    await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'c', anonymousId: 'device-2' }]);

    await processPendingEvents(deps);

    expect((await profileOf('user_id', 'b'))?.id).not.toBe((await profileOf('user_id', 'c'))?.id);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profile_merges')).toBe(0);
  });

  it('links an identify carrying only an email to that profile, and its anonymous events follow (C9)', async () => {
    await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'u9', traits: { email: 'Ada@Example.com' } }]);
    await processPendingEvents(deps);
    const anonymous = await insertPendingEvents(db.pool, [
      { type: 'page', event: 'Pricing', anonymousId: 'browser-9' },
      { type: 'track', event: 'Film Rented', anonymousId: 'browser-9' },
    ]);
    await processPendingEvents(deps);
    const [anonymousProfile] = await eventProfiles(db.pool, anonymous);
    const identify = await insertPendingEvents(db.pool, [{ type: 'identify', anonymousId: 'browser-9', traits: { email: 'ada@example.com' } }]);

    const result = await processPendingEvents(deps);

    const ada = await profileOf('email', 'ada@example.com');
    expect(ada?.user_id).toBe('u9');
    expect(await eventProfiles(db.pool, [...anonymous, ...identify])).toEqual([ada?.id, ada?.id, ada?.id]);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profiles WHERE id = $1', [anonymousProfile])).toBe(0);
    const { rows: merges } = await db.pool.query('SELECT from_profile_id, into_profile_id, reason FROM roster_core.profile_merges');
    expect(merges).toEqual([{ from_profile_id: anonymousProfile, into_profile_id: ada?.id, reason: 'identified' }]);
    const { rows: outbound } = await db.pool.query('SELECT DISTINCT profile_id FROM roster_core.outbound_events');
    expect(outbound).toEqual([{ profile_id: ada?.id }]);
    expect(result.profilesMerged).toBe(1);
  });

  it('creates one anonymous profile for anonymous events and merges it on identify, recording the merge', async () => {
    const anonymous = await insertPendingEvents(db.pool, [
      { type: 'track', event: 'Viewed', anonymousId: 'anon-1', context: { traits: { plan: 'free' } } },
      { type: 'page', event: 'Home', anonymousId: 'anon-1' },
    ]);
    await processPendingEvents(deps);
    const [first, second] = await eventProfiles(db.pool, anonymous);
    expect(first).not.toBeNull();
    expect(second).toBe(first);
    await db.pool.query(`INSERT INTO roster_core.group_memberships (group_id, profile_id) SELECT id, $1 FROM roster_core.groups WHERE key = 'vip'`, [first]);
    await insertPendingEvents(db.pool, [{ type: 'track', event: 'Known', userId: 'u1' }]);
    await processPendingEvents(deps);
    await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'u1', anonymousId: 'anon-1', traits: { age: 41 } }]);

    await processPendingEvents(deps);

    const u1 = await profileOf('user_id', 'u1');
    expect(u1).toMatchObject({ age: 41, plan: 'free' });
    expect(await eventProfiles(db.pool, anonymous)).toEqual([u1?.id, u1?.id]);
    const { rows: merges } = await db.pool.query('SELECT from_profile_id, into_profile_id, reason, details FROM roster_core.profile_merges');
    expect(merges).toEqual([{ from_profile_id: first, into_profile_id: u1?.id, reason: 'identified', details: expect.objectContaining({ anonymousId: 'anon-1' }) }]);
    expect(await count(`SELECT count(*)::int AS count FROM roster.group_members WHERE group_key = 'vip' AND profile_id = $1`, [u1?.id])).toBe(1);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profiles')).toBe(1);
  });

  it('promotes an anonymous profile in place when its first identify names a new user', async () => {
    const ids = await insertPendingEvents(db.pool, [
      { type: 'track', event: 'Viewed', anonymousId: 'anon-2' },
      { type: 'identify', userId: 'u2', anonymousId: 'anon-2' },
    ]);

    await processPendingEvents(deps);

    const [a, b] = await eventProfiles(db.pool, ids);
    expect(a).toBe(b);
    expect((await profileOf('user_id', 'u2'))?.id).toBe(a);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profile_merges')).toBe(0);
  });

  it('merges the anonymous profile of an alias previousId into the userId profile', async () => {
    const anonymous = await insertPendingEvents(db.pool, [{ type: 'track', event: 'Viewed', anonymousId: 'anon-3' }]);
    await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'u3' }]);
    await processPendingEvents(deps);
    await insertPendingEvents(db.pool, [{ type: 'alias', previousId: 'anon-3', userId: 'u3' }]);

    await processPendingEvents(deps);

    const u3 = await profileOf('user_id', 'u3');
    expect(await eventProfiles(db.pool, anonymous)).toEqual([u3?.id]);
    const { rows } = await db.pool.query('SELECT reason FROM roster_core.profile_merges');
    expect(rows).toEqual([{ reason: 'alias' }]);
  });

  it('keeps two known users named by an alias apart and reports them', async () => {
    await insertPendingEvents(db.pool, [
      { type: 'identify', userId: 'old' },
      { type: 'identify', userId: 'new' },
    ]);
    await processPendingEvents(deps);

    const result = await processPendingEvents(deps, {});
    await insertPendingEvents(db.pool, [{ type: 'alias', previousId: 'old', userId: 'new' }]);
    const aliased = await processPendingEvents(deps);

    expect(result.events).toBe(0);
    expect(aliased.keptApart).toBe(1);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.profiles')).toBe(2);
    const { rows } = await db.pool.query('SELECT property_key, value, resolution FROM roster.identity_conflicts');
    expect(rows).toEqual([{ property_key: 'user_id', value: 'old', resolution: 'kept_apart' }]);
  });

  it('ignores junk identifiers', async () => {
    const ids = await insertPendingEvents(db.pool, [
      { type: 'identify', userId: 'null', anonymousId: '00000000-0000-0000-0000-000000000000', traits: { email: 'undefined' } },
      { type: 'track', event: 'Viewed', userId: '', anonymousId: 'anonymous' },
      { type: 'identify', userId: '0', anonymousId: 'real-device' },
    ]);

    const result = await processPendingEvents(deps);

    const [first, second, third] = await eventProfiles(db.pool, ids);
    expect(first).toBeNull();
    expect(second).toBeNull();
    expect(third).not.toBeNull();
    expect(await count('SELECT count(*)::int AS count FROM roster_core.identities')).toBe(0);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.anonymous_ids')).toBe(1);
    expect(result).toMatchObject({ unresolved: 2, junkIdentifiers: 6 });
    expect(['', ' NULL ', 'Anonymous', '0', '000-000', 'undefined'].every(isJunkIdentifier)).toBe(true);
    expect(isJunkIdentifier('user-0')).toBe(false);
  });

  it('links no more anonymous ids to a profile than the configured cap', async () => {
    await insertPendingEvents(
      db.pool,
      ['d1', 'd2', 'd3', 'd4', 'd5'].map((anonymousId) => ({ type: 'identify' as const, userId: 'shared', anonymousId })),
    );

    const result = await processPendingEvents(deps);

    expect(await count('SELECT count(*)::int AS count FROM roster_core.anonymous_ids')).toBe(3);
    expect(result.anonymousIdsNotLinked).toBe(2);
  });

  it('writes defined traits as typed values and sets an invalid one aside', async () => {
    await insertPendingEvents(db.pool, [
      { type: 'identify', userId: 'u4', traits: { age: '37', plan: 'pro', favourite_colour: 'red' } },
      { type: 'identify', userId: 'u5', traits: { age: 'forty' } },
      { type: 'track', event: 'Viewed', userId: 'u5', context: { traits: { plan: 'team' } } },
    ]);

    const result = await processPendingEvents(deps);

    expect(await profileOf('user_id', 'u4')).toMatchObject({ age: 37, plan: 'pro' });
    expect(await profileOf('user_id', 'u5')).toMatchObject({ age: null, plan: 'team' });
    const { rows } = await db.pool.query('SELECT property_key, raw_value FROM roster.invalid_values');
    expect(rows).toEqual([expect.objectContaining({ property_key: 'age', raw_value: 'forty' })]);
    expect(result.invalidValues).toBe(1);
    const { rows: columns } = await db.pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'profiles' AND column_name = 'favourite_colour'`);
    expect(columns).toEqual([]);
  });

  it('queues touched profiles for hydration and waiting outbound events for subscribed destinations', async () => {
    await insertPendingEvents(db.pool, [
      { type: 'track', event: 'Film Rented', userId: 'u6' },
      { type: 'track', event: 'Film Returned', userId: 'u6' },
      { type: 'page', event: 'Pricing', userId: 'u6' },
    ]);

    const result = await processPendingEvents(deps);

    const u6 = await profileOf('user_id', 'u6');
    expect(await count('SELECT count(*)::int AS count FROM roster_core.hydration_queue WHERE profile_id = $1', [u6?.id])).toBe(1);
    const { rows } = await db.pool.query(`SELECT status, profile_id FROM roster_core.outbound_events`);
    expect(rows).toEqual([
      { status: 'waiting', profile_id: u6?.id },
      { status: 'waiting', profile_id: u6?.id },
    ]);
    expect(result.outboundQueued).toBe(2);
    expect(sent).toEqual([QUEUES.hydrate]);
  });

  it('still resolves userId events by anonymous id and counts them when no userIdProperty is set', async () => {
    await db.pool.query(`UPDATE roster_core.settings SET value = value - 'userIdProperty' WHERE key = 'events'`);
    try {
      const ids = await insertPendingEvents(db.pool, [{ type: 'identify', userId: 'u7', anonymousId: 'anon-7', traits: { plan: 'pro' } }]);

      const result = await processPendingEvents(deps);

      expect(result.userIdsIgnored).toBe(1);
      const [profileId] = await eventProfiles(db.pool, ids);
      expect(profileId).not.toBeNull();
      expect(await count('SELECT count(*)::int AS count FROM roster_core.identities')).toBe(0);
    } finally {
      await db.pool.query(`UPDATE roster_core.settings SET value = value || '{"userIdProperty": "user_id"}' WHERE key = 'events'`);
    }
  });

  it('changes nothing when processing runs again', async () => {
    await insertPendingEvents(db.pool, [
      { type: 'track', event: 'Viewed', anonymousId: 'anon-8' },
      { type: 'identify', userId: 'u8', anonymousId: 'anon-8', traits: { email: 'u8@example.com', age: 30 } },
      { type: 'track', event: 'Film Rented', userId: 'u8' },
    ]);
    await processPendingEvents(deps);
    const snapshot = async () => {
      const parts = [];
      for (const table of ['events', 'profiles', 'anonymous_ids', 'identities', 'profile_merges', 'outbound_events']) {
        parts.push(JSON.stringify((await db.pool.query(`SELECT * FROM roster_core.${table} ORDER BY 1`)).rows));
      }

      return parts.join('\n');
    };
    const before = await snapshot();

    const again = await processPendingEvents(deps);

    expect(again.events).toBe(0);
    expect(await snapshot()).toBe(before);
  });

  it('never hands one event to two concurrent processors', async () => {
    const events = Array.from({ length: 1200 }, (_, i) => ({ type: 'track' as const, event: 'Film Rented', userId: `user-${i % 300}`, anonymousId: `device-${i % 400}` }));
    await insertPendingEvents(db.pool, events);

    const results = await Promise.all([processPendingEvents(deps, { batchSize: 100 }), processPendingEvents(deps, { batchSize: 100 })]);

    expect(results[0].events + results[1].events).toBe(1200);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.events WHERE processed_at IS NULL OR profile_id IS NULL')).toBe(0);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.outbound_events')).toBe(1200);
    expect(await count('SELECT count(*)::int AS count FROM roster_core.identities')).toBe(300);
  });
});
