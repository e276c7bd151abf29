// Covers the event pump: wake() and NOTIFY start a round at once, rounds never overlap, slow destinations stay in their lane, and pg-boss can run beside it.
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { EVENTS_CHANNEL, startEventPump, type EventPump } from '../../jobs/event-pump.js';
import { createBoss, requestOutboundDelivery, bossQueue, type JobDeps } from '../../jobs/index.js';
import { sendOutboundEvents } from '../../jobs/outbound-events.js';
import { startWorker, type Worker } from '../../jobs/worker.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startEventReceiver, type EventReceiver } from '../helpers/event-receiver.js';
import { applyOutboundConfig, insertProfile, insertReadyEvent, loadOutboundRows } from '../helpers/outbound-fixture.js';

describe('event pump', () => {
  let db: TestDatabase;
  let deps: JobDeps;
  let logLines: Array<{ msg: string }>;
  let journal: string[];
  let receivers: EventReceiver[];
  let pump: EventPump | undefined;
  let worker: Worker | undefined;

  beforeEach(async () => {
    db = await createTestDatabase();
    logLines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    deps = { pool: db.pool, log: pino({ level: 'trace' }, sink), config: loadConfig({}), queue: { send: async () => {} } };
    journal = [];
    receivers = [];
    pump = undefined;
    worker = undefined;
  });

  afterEach(async () => {
    await pump?.stop();
    await worker?.stop();
    await Promise.all(receivers.map((r) => r.close()));
    await db.drop();
  });

  async function receiver(name: string): Promise<EventReceiver> {
    const started = await startEventReceiver(name, journal);
    receivers.push(started);

    return started;
  }

  const rounds = (msg: 'started' | 'finished') => logLines.filter((line) => line.msg === `event pump round ${msg}`).length;

  /** The first round runs once LISTEN is in place; after it, only a wake or NOTIFY starts one. */
  async function waitForIdleListeningPump(): Promise<void> {
    await vi.waitFor(() => expect(rounds('finished')).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 10 });
    expect(rounds('started')).toBe(rounds('finished'));
  }

  it('delivers a ready event right after wake(), without waiting for a poll', async ({ annotate }) => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'ann@example.com', plan: 'pro' }, ['vip']);
    pump = startEventPump(deps, { fallbackMs: 600_000 });
    await waitForIdleListeningPump();

    const latenciesMs: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const { messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], properties: { i } });
      const wokenAt = Date.now();
      pump.wake();
      await vi.waitFor(() => expect(hook.arrivedAt.has(messageId)).toBe(true), { timeout: 10_000, interval: 5 });
      latenciesMs.push((hook.arrivedAt.get(messageId) as number) - wokenAt);
    }

    expect(hook.delivered).toHaveLength(20);
    latenciesMs.sort((a, b) => a - b);
    await annotate(`wake to delivery: median ${latenciesMs[9]} ms, p95 ${latenciesMs[18]} ms, max ${latenciesMs[19]} ms`);
  });

  it('starts a round on a NOTIFY from another connection', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'bo@example.com', plan: 'pro' }, ['vip']);
    pump = startEventPump(deps, { fallbackMs: 600_000 });
    await waitForIdleListeningPump();
    const { messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });

    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    await other.query(`NOTIFY ${EVENTS_CHANNEL}`);
    await other.end();

    await vi.waitFor(() => expect(hook.delivered.map((e) => e.messageId)).toEqual([messageId]), { timeout: 10_000, interval: 10 });
  });

  it('listens again after its connection is lost', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'al@example.com', plan: 'pro' }, ['vip']);
    pump = startEventPump(deps, { fallbackMs: 600_000, reconnectMs: 20 });
    await waitForIdleListeningPump();
    const listenerPids = async () =>
      (await db.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1`, [`LISTEN ${EVENTS_CHANNEL}`])).rows.map((r) => r.pid);
    const [lost] = await listenerPids();

    await db.pool.query('SELECT pg_terminate_backend($1)', [lost]);
    await vi.waitFor(async () => expect((await listenerPids()).filter((pid) => pid !== lost)).toHaveLength(1), { timeout: 10_000, interval: 20 });
    // Listening again starts a round; once it is over, only the NOTIFY below can deliver.
    await vi.waitFor(() => expect(rounds('finished')).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 10 });
    await vi.waitFor(() => expect(rounds('started')).toBe(rounds('finished')), { timeout: 10_000, interval: 10 });
    const { messageId } = await insertReadyEvent(db.pool, { profileId, destinations: ['hook'] });
    await db.pool.query(`NOTIFY ${EVENTS_CHANNEL}`);

    await vi.waitFor(() => expect(hook.delivered.map((e) => e.messageId)).toEqual([messageId]), { timeout: 10_000, interval: 10 });
  });

  it('runs one round at a time and folds a burst of wakes into one more round', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    pump = startEventPump(deps, { fallbackMs: 600_000 });
    await waitForIdleListeningPump();
    const before = rounds('started');

    for (let i = 0; i < 50; i += 1) pump.wake();

    await vi.waitFor(() => expect(rounds('finished')).toBe(rounds('started')), { timeout: 10_000, interval: 10 });
    // The first wake starts a round, the other 49 fold into one more; its own NOTIFYs are ignored.
    expect(rounds('started') - before).toBe(2);
    const sequence = logLines.map((line) => line.msg).filter((msg) => msg.startsWith('event pump round'));
    for (let i = 0; i < sequence.length; i += 1) {
      expect(sequence[i]).toBe(i % 2 === 0 ? 'event pump round started' : 'event pump round finished');
    }
  });

  it('keeps delivering to a healthy destination while another one hangs', async () => {
    const failing = await receiver('failing');
    const healthy = await receiver('healthy');
    failing.respond = () => 'hang';
    await applyOutboundConfig(db.pool, [
      { key: 'failing', url: failing.url, timeoutMs: 120_000 },
      { key: 'healthy', url: healthy.url },
    ]);
    const profileId = await insertProfile(db.pool, { email: 'cy@example.com', plan: 'pro' }, ['vip']);
    pump = startEventPump(deps, { fallbackMs: 600_000 });
    await waitForIdleListeningPump();

    const first = await insertReadyEvent(db.pool, { profileId, destinations: ['failing', 'healthy'] });
    pump.wake();
    await vi.waitFor(() => expect(journal).toContain('failing:received'), { timeout: 10_000, interval: 10 });
    await vi.waitFor(() => expect(healthy.delivered).toHaveLength(1), { timeout: 10_000, interval: 10 });
    const second = await insertReadyEvent(db.pool, { profileId, destinations: ['healthy'] });
    pump.wake();
    await vi.waitFor(() => expect(healthy.delivered.map((e) => e.messageId)).toEqual([first.messageId, second.messageId]), { timeout: 10_000, interval: 10 });

    // The failing destination is still hanging on its first request.
    expect(journal).not.toContain('failing:abandoned');
    await pump.stop();
    pump = undefined;
    expect((await loadOutboundRows(db.pool, first.eventId)).failing).toMatchObject({ status: 'ready', attempts: 1, errorCode: 'CDP_OUTBOUND_INTERRUPTED' });
  });

  it('sends each event once while pg-boss workers and other senders run beside it', async () => {
    const hook = await receiver('hook');
    await applyOutboundConfig(db.pool, [{ key: 'hook', url: hook.url }]);
    const profileId = await insertProfile(db.pool, { email: 'di@example.com', plan: 'pro' }, ['vip']);
    const boss = createBoss(db.url);
    await boss.start();
    worker = await startWorker(boss, { pool: db.pool, log: pino({ level: 'silent' }), config: deps.config });
    pump = startEventPump(deps, { fallbackMs: 50, batchSize: 5 });

    const messageIds: string[] = [];
    for (let i = 0; i < 60; i += 1) {
      messageIds.push((await insertReadyEvent(db.pool, { profileId, destinations: ['hook'], properties: { i } })).messageId);
      if (i % 10 === 0) {
        pump.wake();
        await requestOutboundDelivery(bossQueue(boss));
        void sendOutboundEvents(deps, { batchSize: 5 });
      }
    }

    await vi.waitFor(
      async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS sent FROM roster_core.outbound_events WHERE status = 'sent'`);
        expect(rows[0].sent).toBe(60);
      },
      { timeout: 20_000, interval: 50 },
    );
    expect(hook.delivered.map((e) => e.messageId).sort()).toEqual([...messageIds].sort());
  });
});
