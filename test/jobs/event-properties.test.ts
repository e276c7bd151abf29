// Covers event properties in hydration: count, sum and last over all time and a pinned-clock window, groups over them, window re-queueing and outbound readiness.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runHydration } from '../../jobs/hydrate.js';
import { QUEUES, type JobDeps, type QueueName } from '../../jobs/index.js';
import { processPendingEvents } from '../../jobs/process-events.js';
import { createPool, type Pool } from '../../lib/db.js';
import { queueWindowedEventProfiles } from '../../sql/event-property-queries.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertPendingEvents, type TestEvent } from '../helpers/pending-events.js';

const CONFIG = `
events:
  userIdProperty: customer_id
properties:
  - { key: customer_id, type: integer, unique: true }
  - key: rentals
    type: integer
    event: { name: Film Rented, function: count }
  - key: rentals_last_30_days
    type: integer
    event: { name: Film Rented, function: count, days: 30 }
  - key: spend
    type: float
    event: { name: Film Rented, function: sum, field: properties.amount }
  - key: spend_last_30_days
    type: float
    event: { name: Film Rented, function: sum, field: properties.amount, days: 30 }
  - key: last_title
    type: string
    event: { name: Film Rented, function: last, field: properties.film.title }
  - key: last_rented_at
    type: date
    event: { name: Film Rented, function: max, field: occurred_at }
groups:
  - key: frequent_renters
    rule: { ">=": [{ var: rentals_last_30_days }, 3] }
apps:
  - { key: hooks, type: webhook, options: { url: "https://example.com/hook" } }
destinations:
  - { key: rentals_hook, app: hooks, events: [Film Rented] }
`;

let db: TestDatabase;
// Every connection of this pool sees the clock pinned by ALTER DATABASE.
let pinned: Pool;
let sent: QueueName[];
let deps: JobDeps;

function rental(customerId: number, occurredAt: string, amount: number | string, title: string): TestEvent {
  return { type: 'track', event: 'Film Rented', userId: String(customerId), occurredAt, properties: { amount, film: { title } } };
}

async function profile(customerId: number): Promise<Record<string, unknown>> {
  const { rows } = await pinned.query(
    `SELECT id, rentals, rentals_last_30_days, spend, spend_last_30_days, last_title, last_rented_at FROM roster_core.profiles WHERE customer_id = $1`,
    [customerId],
  );

  return rows[0];
}

beforeAll(async () => {
  db = await createTestDatabase();
  await applyYaml(db.pool, CONFIG);
  await adminQuery(`ALTER DATABASE ${db.name} SET roster.clock = '2005-08-30T00:00:00Z'`);
  pinned = createPool(db.url, 3);
});

afterAll(async () => {
  await pinned.end();
  await db.drop();
});

beforeEach(async () => {
  await pinned.query('TRUNCATE roster_core.events, roster_core.profiles, roster_core.outbound_events, roster_core.hydration_queue CASCADE');
  sent = [];
  deps = { pool: pinned, log: pino({ level: 'silent' }), config: loadConfig({}), queue: { send: async (queue) => void sent.push(queue) } };
});

describe('event properties', () => {
  it('computes count, sum and last over all time and over the last 30 days of the pinned clock', async () => {
    await insertPendingEvents(pinned, [
      rental(1, '2005-05-25T10:00:00Z', 2.99, 'Academy Dinosaur'),
      rental(1, '2005-08-02T10:00:00Z', 4.99, 'Ace Goldfinger'),
      rental(1, '2005-08-20T10:00:00Z', '0.99', 'Adaptation Holes'),
      rental(1, '2005-08-28T10:00:00Z', 'n/a', 'Affair Prejudice'),
      { type: 'track', event: 'Film Returned', userId: '1', occurredAt: '2005-08-29T10:00:00Z', properties: { amount: 100 } },
      rental(2, '2005-06-01T10:00:00Z', 1.5, 'Airport Pollock'),
      { type: 'identify', userId: '3' },
    ]);
    await processPendingEvents(deps);

    await runHydration(deps);

    expect(await profile(1)).toMatchObject({ rentals: 4, rentals_last_30_days: 3, spend: 8.97, spend_last_30_days: 5.98, last_title: 'Affair Prejudice' });
    expect(((await profile(1)).last_rented_at as Date).toISOString()).toBe('2005-08-28T10:00:00.000Z');
    expect(await profile(2)).toMatchObject({ rentals: 1, rentals_last_30_days: 0, spend: 1.5, spend_last_30_days: null });
    expect(await profile(3)).toMatchObject({ rentals: 0, rentals_last_30_days: 0, spend: null, last_title: null, last_rented_at: null });
  });

  it('puts profiles in a group over a windowed event property', async () => {
    await insertPendingEvents(pinned, [
      rental(1, '2005-08-02T10:00:00Z', 1, 'A'),
      rental(1, '2005-08-10T10:00:00Z', 1, 'B'),
      rental(1, '2005-08-29T10:00:00Z', 1, 'C'),
      rental(2, '2005-06-02T10:00:00Z', 1, 'A'),
      rental(2, '2005-06-10T10:00:00Z', 1, 'B'),
      rental(2, '2005-08-29T10:00:00Z', 1, 'C'),
    ]);
    await processPendingEvents(deps);

    await runHydration(deps);

    const { rows } = await pinned.query(
      `SELECT p.customer_id FROM roster.group_members AS m JOIN roster_core.profiles AS p ON p.id = m.profile_id WHERE m.group_key = 'frequent_renters'`,
    );
    expect(rows).toEqual([{ customer_id: 1 }]);
  });

  it('lowers a windowed value as the clock moves on and the tick re-queues the profile', async () => {
    await insertPendingEvents(pinned, [rental(1, '2005-08-02T10:00:00Z', 1, 'A'), rental(1, '2005-08-20T10:00:00Z', 1, 'B')]);
    await processPendingEvents(deps);
    await runHydration(deps);
    const client = await pinned.connect();
    try {
      await client.query(`SET roster.clock = '2005-09-02T00:00:00Z'`);

      const queued = await queueWindowedEventProfiles(client);
      await client.query('RESET roster.clock');
      expect(queued).toBe(1);
    } finally {
      client.release();
    }
    await adminQuery(`ALTER DATABASE ${db.name} SET roster.clock = '2005-09-02T00:00:00Z'`);
    const later = createPool(db.url, 2);
    try {
      await runHydration({ ...deps, pool: later });
      const { rows } = await later.query('SELECT rentals, rentals_last_30_days FROM roster_core.profiles WHERE customer_id = 1');
      expect(rows).toEqual([{ rentals: 2, rentals_last_30_days: 1 }]);
    } finally {
      await later.end();
      await adminQuery(`ALTER DATABASE ${db.name} SET roster.clock = '2005-08-30T00:00:00Z'`);
    }
  });

  it('makes waiting outbound events ready once their profile is hydrated, and asks for delivery', async () => {
    await insertPendingEvents(pinned, [rental(1, '2005-08-20T10:00:00Z', 1, 'A')]);
    await processPendingEvents(deps);
    const { rows: before } = await pinned.query('SELECT status FROM roster_core.outbound_events');
    expect(before).toEqual([{ status: 'waiting' }]);

    await runHydration(deps);

    const { rows: after } = await pinned.query('SELECT status FROM roster_core.outbound_events');
    expect(after).toEqual([{ status: 'ready' }]);
    expect(sent).toContain(QUEUES.outboundEvents);
  });
});
