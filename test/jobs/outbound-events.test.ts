// Covers outbound event delivery: enrichment, group checks, per-record outcomes, backoff and per-destination isolation.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import type { JobDeps } from '../../jobs/index.js';
import { OUTBOUND_MAX_ATTEMPTS, outboundRetryDelayMs, sendOutboundEvents } from '../../jobs/outbound-events.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startEventReceiver, type EventReceiver } from '../helpers/event-receiver.js';
import { applyOutboundConfig, insertProfile, insertReadyEvent, loadOutboundRows, makeRetriesDue } from '../helpers/outbound-fixture.js';

describe('outbound events', () => {
  let db: TestDatabase;
  let deps: JobDeps;
  let journal: string[];
  let receivers: EventReceiver[];
  let dir: string;

  beforeEach(async () => {
    db = await createTestDatabase();
    deps = { pool: db.pool, log: pino({ level: 'silent' }), config: loadConfig({}), queue: { send: async () => {} } };
    journal = [];
    receivers = [];
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-outbound-'));
  });

  afterEach(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await db.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function receiver(name: string): Promise<EventReceiver> {
    const started = await startEventReceiver(name, journal);
    receivers.push(started);

    return started;
  }

  it('delivers an event of a group member with the mapped profile and the followed groups it is in', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url, groups: ['vip'] }]);
    const profileId = await insertProfile(db.pool, { email: 'ann@example.com', plan: 'pro' }, ['vip', 'staff']);
    const { eventId, messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], event: 'Order Completed', properties: { total: 42 } });

    const result = await sendOutboundEvents(deps);

    expect(result).toMatchObject({ destinations: 1, sent: 1, failed: 0, skipped: 0, retried: 0 });
    expect(hook.delivered).toEqual([
      {
        recordId: expect.any(String),
        profileId: String(profileId),
        type: 'track',
        event: 'Order Completed',
        messageId,
        timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        properties: { total: 42 },
        profile: { mail: 'ann@example.com', tier: 'pro' },
        groups: ['vip'],
      },
    ]);
    const row = (await loadOutboundRows(db.pool, eventId)).hook;
    expect(row).toMatchObject({ status: 'sent', attempts: 1, errorCode: null, payload: hook.delivered[0] });
    expect(row.sentAt).toBeInstanceOf(Date);
  });

  it('skips an event of a profile outside the destination groups and does not retry it', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url, groups: ['vip'] }]);
    const profileId = await insertProfile(db.pool, { email: 'bob@example.com', plan: 'free' }, ['staff']);
    const { eventId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });

    const result = await sendOutboundEvents(deps);
    await makeRetriesDue(db.pool);
    const again = await sendOutboundEvents(deps);

    expect(result).toMatchObject({ sent: 0, skipped: 1 });
    expect(again.destinations).toBe(0);
    expect(hook.requests).toEqual([]);
    expect((await loadOutboundRows(db.pool, eventId)).hook).toMatchObject({ status: 'skipped', attempts: 0, errorCode: 'CDP_OUTBOUND_NOT_IN_GROUPS' });
  });

  it('records per-record rejects as failed and the rest as sent', async () => {
    const hook = await receiver('hook');
    hook.respond = (events) => ({
      status: 200,
      body: { rejected: events.filter((e) => e.properties.bad === true).map((e) => ({ recordId: e.recordId, code: 'BAD_EVENT', message: 'bad' })) },
    });
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'cy@example.com', plan: 'pro' }, ['vip']);
    const good = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], properties: { bad: false } });
    const bad = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], properties: { bad: true } });

    const result = await sendOutboundEvents(deps);

    expect(result).toMatchObject({ sent: 1, failed: 1, retried: 0 });
    expect((await loadOutboundRows(db.pool, good.eventId)).hook).toMatchObject({ status: 'sent', attempts: 1 });
    expect((await loadOutboundRows(db.pool, bad.eventId)).hook).toMatchObject({ status: 'failed', attempts: 1, errorCode: 'BAD_EVENT' });
  });

  it('fails events for a destination whose connector cannot deliver events, without retrying', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }], { csvPath: path.join(dir, 'out.csv') });
    const profileId = await insertProfile(db.pool, { email: 'di@example.com', plan: 'pro' }, ['vip']);
    const { eventId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook', 'csv_log'] });

    const result = await sendOutboundEvents(deps);

    expect(result).toMatchObject({ destinations: 2, sent: 1, failed: 1 });
    const rows = await loadOutboundRows(db.pool, eventId);
    expect(rows.csv_log).toMatchObject({ status: 'failed', attempts: 0, errorCode: 'CDP_OUTBOUND_UNSUPPORTED' });
    expect(rows.hook.status).toBe('sent');
  });

  it('backs off a failing destination in its own lane while a healthy one gets its events first', async () => {
    // The failing destination is created first, so a one-after-another sender would reach it first.
    const failing = await receiver('failing');
    const healthy = await receiver('healthy');
    failing.respond = () => 'hang';
    await applyOutboundConfig(db.pool, [
      { key: 'failing', url: failing.url, timeoutMs: 300 },
      { key: 'healthy', url: healthy.url },
    ]);
    const profileId = await insertProfile(db.pool, { email: 'eve@example.com', plan: 'pro' }, ['vip']);
    const { eventId, messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['failing', 'healthy'] });

    const first = await sendOutboundEvents(deps);

    expect(first).toMatchObject({ destinations: 2, sent: 1, retried: 1 });
    // The healthy receiver had its events before the hanging request was given up.
    expect(journal.indexOf('healthy:received')).toBeGreaterThanOrEqual(0);
    expect(journal.indexOf('failing:received')).toBeGreaterThanOrEqual(0);
    await expect.poll(() => journal.includes('failing:abandoned')).toBe(true);
    expect(journal.indexOf('healthy:received')).toBeLessThan(journal.indexOf('failing:abandoned'));
    const afterTimeout = (await loadOutboundRows(db.pool, eventId)).failing;
    expect(afterTimeout).toMatchObject({ status: 'ready', attempts: 1, errorCode: 'CDP_DESTINATION_TIMEOUT' });

    failing.respond = () => ({ status: 500, body: { error: 'down' } });
    const dueIn: number[] = [afterTimeout.dueInS];
    for (let attempt = 2; attempt <= 4; attempt += 1) {
      await makeRetriesDue(db.pool);
      await sendOutboundEvents(deps);
      const row = (await loadOutboundRows(db.pool, eventId)).failing;
      expect(row).toMatchObject({ status: 'ready', attempts: attempt, errorCode: 'CDP_DESTINATION_UNAVAILABLE' });
      dueIn.push(row.dueInS);
    }

    expect(dueIn).toEqual([...dueIn].sort((a, b) => a - b));
    expect(new Set(dueIn).size).toBe(dueIn.length);
    expect(healthy.delivered.map((e) => e.messageId)).toEqual([messageId]);
    expect((await loadOutboundRows(db.pool, eventId)).healthy).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('delivers a retried event exactly once after the destination recovers', async () => {
    const hook = await receiver('hook');
    hook.respond = () => ({ status: 503 });
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'fay@example.com', plan: 'pro' }, ['vip']);
    const { eventId, messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });

    await sendOutboundEvents(deps);
    await makeRetriesDue(db.pool);
    await sendOutboundEvents(deps);
    hook.respond = () => ({ status: 200 });
    await makeRetriesDue(db.pool);
    await sendOutboundEvents(deps);
    await makeRetriesDue(db.pool);
    await sendOutboundEvents(deps);

    expect(hook.requests).toHaveLength(3);
    expect(hook.delivered.map((e) => e.messageId)).toEqual([messageId]);
    expect((await loadOutboundRows(db.pool, eventId)).hook).toMatchObject({ status: 'sent', attempts: 3 });
  });

  it('waits at least as long as a rate-limited destination asks', async () => {
    const hook = await receiver('hook');
    hook.respond = () => ({ status: 429, headers: { 'retry-after': '120' } });
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'gus@example.com', plan: 'pro' }, ['vip']);
    const { eventId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });

    await sendOutboundEvents(deps);

    const row = (await loadOutboundRows(db.pool, eventId)).hook;
    expect(row).toMatchObject({ status: 'ready', attempts: 1, errorCode: 'CDP_DESTINATION_RATE_LIMITED' });
    expect(row.dueInS).toBeGreaterThan(100);
  });

  it('settles an event as failed when its last attempt fails', async () => {
    const hook = await receiver('hook');
    hook.respond = () => ({ status: 500 });
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'hal@example.com', plan: 'pro' }, ['vip']);
    const { eventId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });
    await db.pool.query('UPDATE roster_core.outbound_events SET attempts = $1', [OUTBOUND_MAX_ATTEMPTS - 1]);

    const result = await sendOutboundEvents(deps);

    expect(result).toMatchObject({ failed: 1, retried: 0 });
    expect((await loadOutboundRows(db.pool, eventId)).hook).toMatchObject({ status: 'failed', attempts: OUTBOUND_MAX_ATTEMPTS, errorCode: 'CDP_DESTINATION_UNAVAILABLE' });
  });

  it('doubles the retry delay from one second up to an hour', () => {
    expect([0, 1, 2, 3].map((attempts) => outboundRetryDelayMs(attempts))).toEqual([1000, 2000, 4000, 8000]);
    expect(outboundRetryDelayMs(30)).toBe(3_600_000);
    expect(outboundRetryDelayMs(0, 90_000)).toBe(90_000);
  });

  it('sends each event once when several senders run at the same time', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'ida@example.com', plan: 'pro' }, ['vip']);
    const ids: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      ids.push((await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], properties: { i } })).messageId);
    }

    const results = await Promise.all([1, 2, 3, 4].map(() => sendOutboundEvents(deps, { batchSize: 5 })));

    expect(results.reduce((sum, r) => sum + r.sent, 0)).toBe(40);
    expect(hook.delivered.map((e) => e.messageId).sort()).toEqual([...ids].sort());
  });
});
