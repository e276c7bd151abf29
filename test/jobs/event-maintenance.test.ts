// Covers event partition upkeep (daily partitions ahead, retention drops under live inserts) and the
// message id window: purge, and de-duplication across days within it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { maintainEventPartitions } from '../../jobs/event-maintenance.js';
import { eventRowJson, insertEvents, type PreparedEvent } from '../../sql/event-queries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const log = pino({ level: 'silent' });
const dayName = (ms: number) => `events_${new Date(ms).toISOString().slice(0, 10).replaceAll('-', '')}`;

function event(messageId: string, receivedAt: Date): PreparedEvent[] {
  const json = eventRowJson({
    message_id: messageId,
    type: 'track',
    event: 'e',
    user_id: 'u',
    anonymous_id: null,
    previous_id: null,
    group_id: null,
    write_key_id: null,
    properties: {},
    traits: {},
    context: {},
    occurred_at: receivedAt.toISOString(),
    received_at: receivedAt.toISOString(),
  });

  return [{ json, messageId }];
}

async function partitions(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'roster_core.events'::regclass ORDER BY 1`,
  );

  return rows.map((row) => row.name);
}

describe('maintainEventPartitions', () => {
  let db: TestDatabase;
  const now = new Date();

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('creates today and the next 7 days, leaving a day the default partition holds rows of', async () => {
    const busyDay = new Date(now.getTime() + 3 * DAY_MS);
    await insertEvents(db.pool, event('early', busyDay));

    const result = await maintainEventPartitions(db.pool, { now, retentionDays: 90, dedupDays: 7, log });

    expect(result.created).toHaveLength(7);
    expect(result.skipped).toEqual([dayName(busyDay.getTime())]);
    expect(await partitions(db)).toContain(dayName(now.getTime()));
    expect(await partitions(db)).toContain(dayName(now.getTime() + 7 * DAY_MS));
  });

  it('creates nothing on a second run', async () => {
    const result = await maintainEventPartitions(db.pool, { now, retentionDays: 90, dedupDays: 7, log });

    expect(result.created).toEqual([]);
  });

  it('routes new events into the partition of their day', async () => {
    await insertEvents(db.pool, event('today', now));
    const { rows } = await db.pool.query(`SELECT tableoid::regclass::text AS part FROM roster_core.events WHERE message_id = 'today'`);

    expect(rows[0].part).toBe(`roster_core.${dayName(now.getTime())}`);
  });

  it('drops partitions older than the retention period while inserts continue', async () => {
    const past = new Date(now.getTime() - 120 * DAY_MS);
    await maintainEventPartitions(db.pool, { now: past, retentionDays: 90, dedupDays: 7, log });
    await insertEvents(db.pool, event('old', past));

    let inserting = true;
    let inserted = 0;
    let slowestMs = 0;
    const writer = (async () => {
      while (inserting) {
        const startedAt = performance.now();
        await insertEvents(db.pool, event(`live-${inserted}`, new Date()));
        slowestMs = Math.max(slowestMs, performance.now() - startedAt);
        inserted += 1;
      }
    })();
    const result = await maintainEventPartitions(db.pool, { now, retentionDays: 90, dedupDays: 7, log });
    inserting = false;
    await writer;

    expect(result.dropped).toContain(dayName(past.getTime()));
    expect(await partitions(db)).not.toContain(dayName(past.getTime()));
    expect(slowestMs).toBeLessThan(2_000);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM roster_core.events WHERE message_id LIKE 'live-%'`);
    expect(rows[0].n).toBe(inserted);
  });

  it('still refuses a message id received 6 days earlier after a purge, and accepts one received 8 days earlier', async () => {
    await insertEvents(db.pool, event('window-inside', new Date(now.getTime() - 6 * DAY_MS)));
    await insertEvents(db.pool, event('window-outside', new Date(now.getTime() - 8 * DAY_MS)));

    await maintainEventPartitions(db.pool, { now, retentionDays: 90, dedupDays: 7, log });

    expect(await insertEvents(db.pool, event('window-inside', now))).toBe(0);
    expect(await insertEvents(db.pool, event('window-outside', now))).toBe(1);
  });

  it('stores server-generated message ids without recording them', async () => {
    const json = eventRowJson({
      message_id: 'server-made',
      type: 'track',
      event: 'e',
      user_id: 'u',
      anonymous_id: null,
      previous_id: null,
      group_id: null,
      properties: {},
      traits: {},
      context: {},
      write_key_id: null,
      occurred_at: now.toISOString(),
      received_at: now.toISOString(),
      dedup: false,
    });

    expect(await insertEvents(db.pool, [{ json, messageId: null }, { json, messageId: null }])).toBe(2);
    const { rows } = await db.pool.query(`SELECT 1 FROM roster_core.event_message_ids WHERE message_id = 'server-made'`);
    expect(rows).toHaveLength(0);
  });

  it('forgets message ids older than the de-duplication window', async () => {
    await db.pool.query(
      `INSERT INTO roster_core.event_message_ids (message_id, received_at)
       SELECT 'expired-' || n, now() - interval '8 days' FROM generate_series(1, 25000) AS n`,
    );
    await db.pool.query(`INSERT INTO roster_core.event_message_ids (message_id, received_at) VALUES ('recent', now() - interval '6 days')`);

    const result = await maintainEventPartitions(db.pool, { now, retentionDays: 90, dedupDays: 7, log });

    expect(result.messageIdsDeleted).toBe(25000);
    const { rows } = await db.pool.query(`SELECT message_id FROM roster_core.event_message_ids WHERE message_id = 'recent'`);
    expect(rows).toHaveLength(1);
  });
});
