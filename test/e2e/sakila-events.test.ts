// Covers events end to end on the Sakila data: every rental replayed through the Segment and RudderStack SDKs, event properties under a pinned clock, a group, its webhook export and outbound events, and C9.
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { parse } from 'csv-parse/sync';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOnce, type RunOutcome } from '../../cli/run.js';
import { closeConnectors } from '../../connectors/index.js';
import { defaultSakilaDir, loadSakila } from '../../examples/sakila/load-mariadb.js';
import { bossQueue, createBoss, ensureQueues, requestEventProcessing, requestHydration, type JobQueue } from '../../jobs/index.js';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db.js';
import { buildServer } from '../../server/app.js';
import { applyConfig } from '../../sql/config/apply-config.js';
import type { LoadedConfig } from '../../sql/config/config-types.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { validateConfig } from '../../sql/config/validate-config.js';
import { createWriteKey } from '../../sql/write-keys.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startEventReceiver, type EventReceiver } from '../helpers/event-receiver.js';
import { createMariaDatabase, MARIADB, type TestMariaDatabase } from '../helpers/mariadb.js';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';

const DATASET_DIR = defaultSakilaDir();
const EXAMPLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/sakila');
const HAS_DATASET = fs.existsSync(path.join(DATASET_DIR, 'schema.mysql.sql')) && fs.existsSync(path.join(DATASET_DIR, 'rental.csv'));
const SOURCES = ['customers', 'payments', 'rentals'];
const AUGUST_CLOCK = '2005-08-31T00:00:00Z';
const SEPTEMBER_CLOCK = '2005-09-30T00:00:00Z';
const WINDOW_DAYS = 30;
const FREQUENT = 3;
const DAY_MS = 24 * 60 * 60 * 1000;

interface Rental {
  rentalId: number;
  customerId: number;
  inventoryId: number;
  rentedAt: Date;
}

interface Customer {
  customerId: number;
  email: string;
}

function readCsv(table: string): Array<Record<string, string>> {
  return parse(fs.readFileSync(path.join(DATASET_DIR, `${table}.csv`)), { columns: true }) as Array<Record<string, string>>;
}

/** A zone-less Sakila timestamp, read as UTC as Roster does. */
function utc(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

/** Rentals per customer in the window the SQL uses: clock - days < occurred_at <= clock. */
function rentalsInWindow(rentals: Rental[], clock: string): Map<number, number> {
  const end = new Date(clock).getTime();
  const start = end - WINDOW_DAYS * DAY_MS;
  const counts = new Map<number, number>();
  for (const rental of rentals) {
    const at = rental.rentedAt.getTime();
    if (at > start && at <= end) counts.set(rental.customerId, (counts.get(rental.customerId) ?? 0) + 1);
  }

  return counts;
}

/** Both folders of the example, read as one config: the base example plus the events additions. */
async function loadExampleConfig(maria: TestMariaDatabase, records: WebhookServer, events: EventReceiver): Promise<LoadedConfig> {
  const base = await loadConfigDir(path.join(EXAMPLE_DIR, 'config'));
  const additions = await loadConfigDir(path.join(EXAMPLE_DIR, 'events-config'));
  const documents = [...base.documents, ...additions.documents.map((doc) => ({ ...doc, file: `events-config/${doc.file}` }))];
  for (const doc of documents) {
    const data = doc.data as {
      apps?: Array<{ key: string; options: Record<string, unknown> }>;
      destinations?: Array<{ key: string; options: Record<string, unknown> }>;
    };
    for (const app of data.apps ?? []) {
      if (app.key === 'sakila') Object.assign(app.options, { host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, database: maria.database });
      if (app.key === 'rentals_hook') app.options.url = records.url;
    }
    for (const destination of data.destinations ?? []) {
      if (destination.key === 'frequent_renters_hook') destination.options.eventsUrl = events.url;
    }
  }

  return { dir: base.dir, documents, problems: [...base.problems, ...additions.problems] };
}

function expectNoFailedRun(outcome: RunOutcome): void {
  expect(outcome.runs.filter((run) => run.status !== 'succeeded')).toEqual([]);
  expect(outcome.failed).toBe(false);
}

const SUITE = HAS_DATASET ? 'events on the Sakila store' : `events on the Sakila store (skipped: no dataset in ${DATASET_DIR}; set SAKILA_DIR)`;
if (!HAS_DATASET) {
  process.stderr.write(`test/e2e/sakila-events.test.ts is skipped: no Sakila dataset in ${DATASET_DIR} (set SAKILA_DIR)\n`);
}

describe.skipIf(!HAS_DATASET)(SUITE, () => {
  // The tests share one stack on purpose: each builds on the state the previous one left.
  describe.sequential('every rental replayed as a Film Rented event', () => {
    const timings: Record<string, number> = {};
    let maria: TestMariaDatabase;
    let roster: TestDatabase;
    let warehouse: TestDatabase;
    let records: WebhookServer;
    let events: EventReceiver;
    let app: FastifyInstance;
    let baseUrl: string;
    let writeKey: string;
    let rentals: Rental[];
    let customers: Map<number, Customer>;
    /** Pools opened after the clock was last pinned, so every connection sees it. */
    let pool: Pool;
    const oldPools: Pool[] = [];

    const ctx = () => ({ config: loadConfig({ DATABASE_URL: roster.url }), log: pino({ level: 'silent' }) });
    const run = (sources: string[] = []) => runOnce(ctx(), { pool, url: roster.url }, { sources });

    /**
     * Queues a job as `roster start` would (its server wakes the event pump): runOnce drains
     * the jobs that exist, and nothing queues one for events that are merely pending.
     */
    async function requestJob(send: (queue: JobQueue) => Promise<void>): Promise<void> {
      const boss = createBoss(roster.url);
      await boss.start();
      try {
        await ensureQueues(boss);
        await send(bossQueue(boss));
      } finally {
        await boss.stop({ graceful: false, wait: true });
      }
    }

    async function pinClock(clock: string): Promise<void> {
      await adminQuery(`ALTER DATABASE ${roster.name} SET roster.clock = '${clock}'`);
      if (pool) oldPools.push(pool);
      pool = createPool(roster.url, 5);
      const { rows } = await pool.query<{ clock: Date }>('SELECT roster_core.clock() AS clock');
      expect(rows[0].clock.toISOString()).toBe(new Date(clock).toISOString());
    }

    async function profileIds(): Promise<Map<number, number>> {
      const { rows } = await pool.query<{ customerId: number; profileId: number }>('SELECT customer_id AS "customerId", profile_id AS "profileId" FROM roster.profiles');

      return new Map(rows.map((row) => [row.customerId, row.profileId]));
    }

    async function members(group: string): Promise<Set<number>> {
      const { rows } = await pool.query<{ profileId: number }>('SELECT profile_id AS "profileId" FROM roster.group_members WHERE group_key = $1', [group]);

      return new Set(rows.map((row) => Number(row.profileId)));
    }

    async function filmRentedCounts(): Promise<{ total: number; distinct: number }> {
      const { rows } = await pool.query<{ total: number; distinct: number }>(
        `SELECT count(*)::int AS total, count(DISTINCT message_id)::int AS distinct FROM roster_core.events WHERE type = 'track' AND event = 'Film Rented'`,
      );

      return rows[0];
    }

    /** Sends every rental, half through each SDK, and resolves once both have flushed. */
    async function replay(): Promise<number> {
      const startedAt = Date.now();
      const segment = new Analytics({ writeKey, host: baseUrl, flushAt: 100, maxRetries: 3 });
      // RudderStack's client posts every full batch at once; it is paced one batch at a time.
      const rudder = new RudderAnalytics(writeKey, { dataPlaneUrl: baseUrl, flushAt: 1000, flushInterval: 600_000, retryCount: 3, logLevel: 'error' });
      let rudderQueued = 0;
      for (const rental of rentals) {
        const message = {
          userId: String(rental.customerId),
          event: 'Film Rented',
          timestamp: rental.rentedAt,
          messageId: `rental-${rental.rentalId}`,
          properties: { rental_id: rental.rentalId, inventory_id: rental.inventoryId },
        };
        if (rental.rentalId % 2 === 0) {
          segment.track(message);
        } else {
          rudder.track(message);
          rudderQueued += 1;
          if (rudderQueued % 100 === 0) await rudder.flush();
        }
      }
      await rudder.flush();
      await segment.closeAndFlush({ timeout: 120_000 });

      return Date.now() - startedAt;
    }

    beforeAll(async () => {
      rentals = readCsv('rental').map((row) => ({
        rentalId: Number(row.rental_id),
        customerId: Number(row.customer_id),
        inventoryId: Number(row.inventory_id),
        rentedAt: utc(row.rental_date),
      }));
      customers = new Map(readCsv('customer').map((row) => [Number(row.customer_id), { customerId: Number(row.customer_id), email: row.email.toLowerCase() }]));

      maria = await createMariaDatabase();
      roster = await createTestDatabase();
      warehouse = await createTestDatabase();
      records = await startWebhookServer();
      events = await startEventReceiver('frequent_renters_hook');
      const loaded = await loadSakila({ connection: maria.connection, datasetDir: DATASET_DIR });
      timings.loadMariaMs = loaded.durationMs;

      await pinClock(AUGUST_CLOCK);
      process.env.SAKILA_MYSQL_PASSWORD = MARIADB.password;
      process.env.SAKILA_WAREHOUSE_URL = warehouse.url;
      const { config } = validateConfig(await loadExampleConfig(maria, records, events));
      await applyConfig(pool, config);

      app = await buildServer({ pool, log: pino({ level: 'silent' }) });
      await app.listen({ host: '127.0.0.1', port: 0 });
      baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      ({ key: writeKey } = await createWriteKey(pool, 'sakila-replay'));
    });

    afterAll(async () => {
      process.stdout.write(`sakila-events timings: ${JSON.stringify(timings)}\n`);
      await app?.close();
      await closeConnectors();
      await Promise.allSettled([pool?.end(), ...oldPools.map((old) => old.end())]);
      await records?.close();
      await events?.close();
      await Promise.allSettled([maria?.drop(), roster?.drop(), warehouse?.drop()]);
    });

    it('imports the 599 customers with their e-mails before any event arrives', async () => {
      const startedAt = Date.now();
      const outcome = await run(SOURCES);
      timings.importMs = Date.now() - startedAt;

      expectNoFailedRun(outcome);
      expect(outcome.profiles).toBe(599);
      const { rows } = await pool.query<{ customerId: number; email: string; rentals: number }>(
        'SELECT customer_id AS "customerId", email, rentals_last_30_days AS rentals FROM roster.profiles',
      );
      expect(rows.filter((row) => row.email !== customers.get(row.customerId)?.email)).toEqual([]);
      expect(rows.every((row) => row.rentals === 0)).toBe(true);
      expect(await members('frequent_renters')).toEqual(new Set());
    });

    it('stores each of the 16,044 rentals once, sent through both SDKs', async () => {
      const ms = await replay();
      timings.replayMs = ms;
      timings.replayEventsPerSecond = Math.round((rentals.length / ms) * 1000);

      expect(await filmRentedCounts()).toEqual({ total: 16_044, distinct: 16_044 });
      const { rows } = await pool.query<{ library: string; count: number }>(
        `SELECT context -> 'library' ->> 'name' AS library, count(*)::int AS count
         FROM roster_core.events WHERE event = 'Film Rented' GROUP BY 1 ORDER BY 1`,
      );
      // The RudderStack client names its library "analytics-node", after the Segment client it forked.
      expect(rows).toEqual([
        { library: '@segment/analytics-node', count: 8022 },
        { library: 'analytics-node', count: 8022 },
      ]);

      const again = await replay();
      timings.replayAgainMs = again;
      expect(await filmRentedCounts()).toEqual({ total: 16_044, distinct: 16_044 });
    });

    it('resolves every event to its customer at the rental time', async () => {
      const startedAt = Date.now();
      await requestJob(requestEventProcessing);
      const outcome = await run();
      timings.processingMs = Date.now() - startedAt;

      expectNoFailedRun(outcome);
      const ids = await profileIds();
      const { rows } = await pool.query<{ messageId: string; profileId: number | null; userId: string; occurredAt: Date }>(
        `SELECT message_id AS "messageId", profile_id AS "profileId", user_id AS "userId", occurred_at AS "occurredAt"
         FROM roster_core.events WHERE event = 'Film Rented'`,
      );
      const byMessage = new Map(rows.map((row) => [row.messageId, row]));
      const wrong = rentals.filter((rental) => {
        const event = byMessage.get(`rental-${rental.rentalId}`);
        // occurred_at corrects for the SDK's clock (timestamp + received_at - sentAt): a few ms.
        return !event || Number(event.profileId) !== ids.get(rental.customerId) || Math.abs(event.occurredAt.getTime() - rental.rentedAt.getTime()) > 5_000;
      });
      expect(wrong.map((rental) => rental.rentalId)).toEqual([]);
      expect(await profileIds()).toHaveProperty('size', 599);
    });

    it('counts the rentals of the 30 days before the pinned clock for every customer', async () => {
      const expected = rentalsInWindow(rentals, AUGUST_CLOCK);
      const { rows } = await pool.query<{ customerId: number; rentals: number; lastAt: Date | null }>(
        'SELECT customer_id AS "customerId", rentals_last_30_days AS rentals, last_film_rented_at AS "lastAt" FROM roster.profiles',
      );
      const got = new Map(rows.map((row) => [row.customerId, row]));

      for (const customerId of [1, 148, 526, 599]) {
        expect(got.get(customerId)!.rentals).toBe(expected.get(customerId) ?? 0);
      }
      expect(rows.filter((row) => row.rentals !== (expected.get(row.customerId) ?? 0)).map((row) => row.customerId)).toEqual([]);
      const last = new Map<number, number>();
      for (const rental of rentals) last.set(rental.customerId, Math.max(last.get(rental.customerId) ?? 0, rental.rentedAt.getTime()));
      expect(rows.filter((row) => Math.abs((row.lastAt?.getTime() ?? 0) - last.get(row.customerId)!) > 5_000).map((row) => row.customerId)).toEqual([]);
    });

    it('puts exactly the customers with three or more such rentals in frequent_renters and exports them', async () => {
      const ids = await profileIds();
      const frequent = [...rentalsInWindow(rentals, AUGUST_CLOCK)].filter(([, count]) => count >= FREQUENT).map(([customerId]) => customerId);
      const groupMembers = await members('frequent_renters');

      expect(groupMembers).toEqual(new Set(frequent.map((customerId) => ids.get(customerId)!)));
      expect(groupMembers.size).toBeLessThan(599);
      const sent = records.received.flat();
      expect(sent.every((record) => record.action === 'create')).toBe(true);
      expect(sent.map((record) => record.properties.email).sort()).toEqual(frequent.map((customerId) => customers.get(customerId)!.email).sort());
      expect(sent.every((record) => Number(record.properties.rentals_last_30_days) >= FREQUENT && record.groups.includes('frequent_renters'))).toBe(true);
    });

    it('forwards the Film Rented events of group members only, each with the mapped e-mail', async () => {
      const ids = await profileIds();
      const emailOf = new Map([...ids].map(([customerId, profileId]) => [profileId, customers.get(customerId)!.email]));
      const groupMembers = await members('frequent_renters');
      const expectedMessages = rentals.filter((rental) => groupMembers.has(ids.get(rental.customerId)!)).map((rental) => `rental-${rental.rentalId}`);

      const delivered = events.delivered;
      expect(delivered.length).toBe(expectedMessages.length);
      expect(new Set(delivered.map((event) => event.messageId))).toEqual(new Set(expectedMessages));
      expect(new Set(delivered.map((event) => Number(event.profileId)))).toEqual(groupMembers);
      expect(delivered.filter((event) => event.event !== 'Film Rented' || event.profile.email !== emailOf.get(Number(event.profileId))).map((event) => event.messageId)).toEqual([]);
      expect(delivered.every((event) => event.groups.includes('frequent_renters') && typeof event.profile.rentals_last_30_days === 'number')).toBe(true);

      const { rows } = await pool.query<{ status: string; errorCode: string | null; count: number }>(
        `SELECT status, error_code AS "errorCode", count(*)::int AS count FROM roster_core.outbound_events GROUP BY 1, 2 ORDER BY 1`,
      );
      expect(rows).toEqual([
        { status: 'sent', errorCode: null, count: expectedMessages.length },
        { status: 'skipped', errorCode: 'CDP_OUTBOUND_NOT_IN_GROUPS', count: 16_044 - expectedMessages.length },
      ]);
    });

    it('gives a customer the anonymous pages seen before an identify that carries only the e-mail (C9)', async () => {
      const anonymousId = 'sakila-device-1';
      const customer = customers.get(42)!;
      const analytics = new Analytics({ writeKey, host: baseUrl, flushAt: 10, maxRetries: 0 });
      analytics.page({ anonymousId, name: 'Catalog', messageId: 'c9-page-1' });
      analytics.page({ anonymousId, name: 'Film', properties: { film_id: 1 }, messageId: 'c9-page-2' });
      await analytics.closeAndFlush({ timeout: 10_000 });
      await requestJob(requestEventProcessing);
      expectNoFailedRun(await run());
      const { rows: before } = await pool.query<{ profileId: number }>(`SELECT DISTINCT profile_id AS "profileId" FROM roster_core.events WHERE anonymous_id = $1`, [anonymousId]);
      expect(before).toHaveLength(1);
      expect(Number(before[0].profileId)).not.toBe((await profileIds()).get(42));

      const identify = new Analytics({ writeKey, host: baseUrl, flushAt: 10, maxRetries: 0 });
      identify.identify({ anonymousId, traits: { email: customer.email.toUpperCase() }, messageId: 'c9-identify' });
      await identify.closeAndFlush({ timeout: 10_000 });
      await requestJob(requestEventProcessing);
      expectNoFailedRun(await run());

      const { rows } = await pool.query<{ messageId: string; profileId: number }>(
        `SELECT message_id AS "messageId", profile_id AS "profileId" FROM roster_core.events WHERE anonymous_id = $1 ORDER BY message_id`,
        [anonymousId],
      );
      const profileId = (await profileIds()).get(42)!;
      expect(rows.map((row) => ({ ...row, profileId: Number(row.profileId) }))).toEqual([
        { messageId: 'c9-identify', profileId },
        { messageId: 'c9-page-1', profileId },
        { messageId: 'c9-page-2', profileId },
      ]);
      const { rows: merges } = await pool.query<{ intoProfileId: number; reason: string }>(
        `SELECT into_profile_id AS "intoProfileId", reason FROM roster_core.profile_merges WHERE from_profile_id = $1`,
        [before[0].profileId],
      );
      expect(merges.map((merge) => ({ ...merge, intoProfileId: Number(merge.intoProfileId) }))).toEqual([{ intoProfileId: profileId, reason: 'identified' }]);
      expect(await profileIds()).toHaveProperty('size', 599);
    });

    it('moves every member out when the clock passes the window, with removals sent to the webhook', async () => {
      const ids = await profileIds();
      const before = await members('frequent_renters');
      const emailOf = new Map([...ids].map(([customerId, profileId]) => [profileId, customers.get(customerId)!.email]));
      const receivedBefore = records.received.flat().length;
      const { rows: lastHistory } = await pool.query<{ id: number }>('SELECT COALESCE(max(id), 0)::int AS id FROM roster_core.group_membership_changes');
      expect(rentalsInWindow(rentals, SEPTEMBER_CLOCK).size).toBe(0);

      await pinClock(SEPTEMBER_CLOCK);
      // A 30-day jump is not a day passing: refresh every profile, not only the window's.
      await pool.query('INSERT INTO roster_core.hydration_queue (profile_id) SELECT id FROM roster_core.profiles ON CONFLICT (profile_id) DO NOTHING');
      const startedAt = Date.now();
      await requestJob(requestHydration);
      const outcome = await run();
      timings.reevaluateMs = Date.now() - startedAt;

      expectNoFailedRun(outcome);
      expect(await members('frequent_renters')).toEqual(new Set());
      const { rows: counts } = await pool.query<{ rentals: number }>('SELECT DISTINCT rentals_last_30_days AS rentals FROM roster.profiles');
      expect(counts).toEqual([{ rentals: 0 }]);
      const { rows: history } = await pool.query<{ profileId: number; action: string; reason: string }>(
        `SELECT unnest(h.profile_ids) AS "profileId", h.action, h.reason
         FROM roster_core.group_membership_changes AS h
         JOIN roster_core.groups AS g ON g.id = h.group_id
         WHERE g.key = 'frequent_renters' AND h.id > $1`,
        [lastHistory[0].id],
      );
      expect(new Set(history.map((row) => Number(row.profileId)))).toEqual(before);
      expect(new Set(history.map((row) => `${row.action}:${row.reason}`))).toEqual(new Set(['exit:data_change']));
      const removals = records.received.flat().slice(receivedBefore);
      expect(new Set(removals.map((record) => record.action))).toEqual(new Set(['remove']));
      expect(removals.map((record) => record.properties.email).sort()).toEqual([...before].map((profileId) => emailOf.get(profileId)).sort());
    });
  });
});
