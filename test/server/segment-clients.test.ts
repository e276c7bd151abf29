// Covers ingestion over a real socket: the Segment and RudderStack Node SDKs, ack after commit, and concurrency.
import type { AddressInfo } from 'node:net';
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { buildServer } from '../../server/app.js';
import { createWriteKey } from '../../sql/write-keys.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('segment routes over a socket', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let baseUrl: string;
  let key: string;
  let stored = 0;

  const countFor = async (userId: string) =>
    (await db.pool.query<{ type: string; n: number }>(`SELECT type, count(*)::int AS n FROM roster_core.events WHERE user_id = $1 GROUP BY type ORDER BY type`, [userId])).rows;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await buildServer({ pool: db.pool, log: pino({ level: 'silent' }), onEventsStored: (count) => (stored += count) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    ({ key } = await createWriteKey(db.pool, 'sdk'));
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('stores identify, track and page sent with the Segment Node SDK', async () => {
    const analytics = new Analytics({ writeKey: key, host: baseUrl, flushAt: 10, maxRetries: 0 });
    analytics.identify({ userId: 'seg-1', traits: { name: 'Ada' } });
    analytics.track({ userId: 'seg-1', event: 'Clicked', properties: { button: 'buy' } });
    analytics.page({ userId: 'seg-1', name: 'Home' });
    await analytics.closeAndFlush({ timeout: 10_000 });

    expect(await countFor('seg-1')).toEqual([
      { type: 'identify', n: 1 },
      { type: 'page', n: 1 },
      { type: 'track', n: 1 },
    ]);
  });

  it('stores identify, track and page sent with the RudderStack Node SDK (gzip)', async () => {
    const rudder = new RudderAnalytics(key, { dataPlaneUrl: baseUrl, flushAt: 10, flushInterval: 60_000, retryCount: 0, logLevel: 'error' });
    rudder.identify({ userId: 'rud-1', traits: { name: 'Bo' } });
    rudder.track({ userId: 'rud-1', event: 'Clicked', properties: { button: 'buy' } });
    rudder.page({ userId: 'rud-1', name: 'Home' });
    await rudder.flush();

    expect(await countFor('rud-1')).toEqual([
      { type: 'identify', n: 1 },
      { type: 'page', n: 1 },
      { type: 'track', n: 1 },
    ]);
  });

  it('answers only after the event is visible from another connection', async () => {
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      for (let i = 0; i < 20; i += 1) {
        const response = await fetch(`${baseUrl}/v1/track`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` },
          body: JSON.stringify({ messageId: `ack-${i}`, userId: 'ack', event: 'e' }),
        });
        expect(response.status).toBe(200);
        const { rowCount } = await other.query(`SELECT 1 FROM roster_core.events WHERE message_id = $1`, [`ack-${i}`]);
        expect(rowCount).toBe(1);
      }
    } finally {
      await other.end();
    }
  });

  it('stores 200 parallel single track requests exactly once each', async () => {
    const before = stored;
    const headers = { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` };
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${baseUrl}/v1/track`, { method: 'POST', headers, body: JSON.stringify({ messageId: `par-${i}`, userId: 'par', event: 'e' }) }),
      ),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(200).fill(200));
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM roster_core.events WHERE user_id = 'par'`);
    expect(rows[0]).toEqual({ n: 200, d: 200 });
    expect(stored - before).toBe(200);
  });
});
