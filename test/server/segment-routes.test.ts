// Covers the Segment-compatible routes: stored rows per type, write-key auth, limits, bad input and batches.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildServer } from '../../server/app.js';
import { createWriteKey, revokeWriteKey } from '../../sql/write-keys.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('segment routes', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let key: string;
  let keyId: number;

  const auth = (writeKey: string) => ({ authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` });
  const post = (url: string, payload: unknown, headers: Record<string, string> = auth(key)) =>
    app.inject({ method: 'POST', url, payload: payload as object, headers });
  const rowsOf = async (messageId: string) =>
    (
      await db.pool.query(
        `SELECT type, event, user_id, anonymous_id, previous_id, group_id, properties, traits, context,
                write_key_id, occurred_at, received_at
         FROM roster_core.events WHERE message_id = $1`,
        [messageId],
      )
    ).rows;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(`INSERT INTO roster_core.properties (key, type, column_name) VALUES ('age', 'integer', 'p_age')`);
    app = await buildServer({ pool: db.pool, log: pino({ level: 'silent' }) });
    ({ key, id: keyId } = await createWriteKey(db.pool, 'test'));
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('stores an identify with traits merged over context.traits', async () => {
    const response = await post('/v1/identify', {
      messageId: 'm-identify',
      userId: 'u1',
      traits: { name: 'Ada', plan: 'pro' },
      context: { ip: '10.0.0.1', traits: { plan: 'free', city: 'Paris' } },
    });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ success: true });
    const [row] = await rowsOf('m-identify');
    expect(row).toMatchObject({ type: 'identify', user_id: 'u1', write_key_id: keyId, traits: { name: 'Ada', plan: 'pro', city: 'Paris' } });
    expect(row.context.ip).toBe('10.0.0.1');
  });

  it('stores a track with its event name and properties', async () => {
    const response = await post('/v1/track', { messageId: 'm-track', anonymousId: 'a1', event: 'Order Completed', properties: { total: 12.5 } });

    expect(response.statusCode).toBe(200);
    expect(await rowsOf('m-track')).toMatchObject([{ type: 'track', event: 'Order Completed', anonymous_id: 'a1', user_id: null, properties: { total: 12.5 } }]);
  });

  it('stores page and screen events under their name', async () => {
    expect((await post('/v1/page', { messageId: 'm-page', userId: 'u1', name: 'Home', properties: { path: '/' } })).statusCode).toBe(200);
    expect((await post('/v1/screen', { messageId: 'm-screen', userId: 'u1', name: 'Settings' })).statusCode).toBe(200);

    expect(await rowsOf('m-page')).toMatchObject([{ type: 'page', event: 'Home', properties: { path: '/' } }]);
    expect(await rowsOf('m-screen')).toMatchObject([{ type: 'screen', event: 'Settings' }]);
  });

  it('stores a group with its group id and traits', async () => {
    expect((await post('/v1/group', { messageId: 'm-group', userId: 'u1', groupId: 'acme', traits: { employees: 40 } })).statusCode).toBe(200);

    expect(await rowsOf('m-group')).toMatchObject([{ type: 'group', group_id: 'acme', traits: { employees: 40 } }]);
  });

  it('stores an alias with previous id and user id', async () => {
    expect((await post('/v1/alias', { messageId: 'm-alias', userId: 'u1', previousId: 'a1' })).statusCode).toBe(200);

    expect(await rowsOf('m-alias')).toMatchObject([{ type: 'alias', user_id: 'u1', previous_id: 'a1' }]);
  });

  it('generates a message id when none is sent', async () => {
    const before = (await db.pool.query(`SELECT count(*)::int AS n FROM roster_core.events WHERE user_id = 'no-id'`)).rows[0].n;
    expect((await post('/v1/track', { userId: 'no-id', event: 'x' })).statusCode).toBe(200);
    expect((await post('/v1/track', { userId: 'no-id', event: 'x' })).statusCode).toBe(200);

    const after = (await db.pool.query(`SELECT count(*)::int AS n FROM roster_core.events WHERE user_id = 'no-id'`)).rows[0].n;
    expect(after - before).toBe(2);
  });

  it('stores a batch of mixed types and inherits the batch context', async () => {
    const response = await post('/v1/batch', {
      context: { library: { name: 'test' } },
      batch: [
        { type: 'identify', messageId: 'b-1', userId: 'u2', traits: { name: 'Bo' } },
        { type: 'track', messageId: 'b-2', userId: 'u2', event: 'Signed Up' },
      ],
    });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ success: true, accepted: 2, rejected: [] });
    expect(await rowsOf('b-2')).toMatchObject([{ type: 'track', event: 'Signed Up', context: { library: { name: 'test' } } }]);
  });

  it('accepts a gzip-compressed body', async () => {
    const payload = gzipSync(JSON.stringify({ batch: [{ type: 'track', messageId: 'gz-1', userId: 'u3', event: 'Zipped' }] }));
    const response = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      payload,
      headers: { ...auth(key), 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });

    expect(response.statusCode).toBe(200);
    expect(await rowsOf('gz-1')).toHaveLength(1);
  });

  describe('write keys', () => {
    it('rejects a request without a key', async () => {
      const response = await post('/v1/track', { userId: 'u', event: 'e' }, {});

      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('CDP_WRITE_KEY_INVALID');
    });

    it('rejects an unknown key', async () => {
      const response = await post('/v1/track', { userId: 'u', event: 'e' }, auth('rk_wrong'));

      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('CDP_WRITE_KEY_INVALID');
    });

    it('rejects a revoked key once the key cache expires', async () => {
      const revoked = await createWriteKey(db.pool, 'to-revoke');
      const first = await buildServer({ pool: db.pool, log: pino({ level: 'silent' }) });
      try {
        const ok = await first.inject({ method: 'POST', url: '/v1/track', payload: { userId: 'u', event: 'e' }, headers: auth(revoked.key) });
        expect(ok.statusCode).toBe(200);
        await revokeWriteKey(db.pool, 'to-revoke');
        // A new server has an empty key cache; a running one notices within its cache time.
        const fresh = await buildServer({ pool: db.pool, log: pino({ level: 'silent' }) });
        const response = await fresh.inject({ method: 'POST', url: '/v1/track', payload: { userId: 'u', event: 'e' }, headers: auth(revoked.key) });
        await fresh.close();

        expect(response.statusCode).toBe(401);
        expect(response.json().code).toBe('CDP_WRITE_KEY_INVALID');
      } finally {
        await first.close();
      }
    });

    it('accepts the key in the body', async () => {
      const response = await post('/v1/track', { writeKey: key, messageId: 'body-key', userId: 'u', event: 'e' }, {});

      expect(response.statusCode).toBe(200);
      expect(await rowsOf('body-key')).toHaveLength(1);
    });
  });

  describe('bad input', () => {
    it('answers 413 for a 33 KB event', async () => {
      const response = await post('/v1/track', { userId: 'u', event: 'big', properties: { blob: 'x'.repeat(33 * 1024) } });

      expect(response.statusCode).toBe(413);
      expect(response.json().code).toBe('CDP_EVENT_TOO_LARGE');
    });

    it('answers 413 for a 501 KB batch', async () => {
      const batch = Array.from({ length: 20 }, (_, i) => ({ type: 'track', userId: 'u', event: 'e', properties: { blob: 'x'.repeat(25 * 1024), i } }));
      const response = await post('/v1/batch', { batch });

      expect(response.statusCode).toBe(413);
      expect(response.json().code).toBe('CDP_EVENT_TOO_LARGE');
    });

    it('rejects a 40 KB event inside a batch alone', async () => {
      const response = await post('/v1/batch', {
        batch: [
          { type: 'track', messageId: 'small-1', userId: 'u', event: 'ok' },
          { type: 'track', messageId: 'big-1', userId: 'u', event: 'big', properties: { blob: 'x'.repeat(40 * 1024) } },
        ],
      });

      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'CDP_EVENT_TOO_LARGE' }] });
      expect(await rowsOf('small-1')).toHaveLength(1);
      expect(await rowsOf('big-1')).toHaveLength(0);
    });

    it('answers 400 for invalid JSON', async () => {
      const response = await app.inject({ method: 'POST', url: '/v1/track', payload: '{"userId": ', headers: { ...auth(key), 'content-type': 'application/json' } });

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_INVALID_JSON');
    });

    it('answers 400 for an event without userId or anonymousId', async () => {
      const response = await post('/v1/track', { event: 'e' });

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_MISSING_IDENTITY');
    });

    it('answers 400 for an alias without previousId', async () => {
      const response = await post('/v1/alias', { userId: 'u' });

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_MISSING_IDENTITY');
    });

    it('answers 400 for a track without an event name', async () => {
      const response = await post('/v1/track', { userId: 'u' });

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_INVALID');
    });

    it('refuses a NUL character alone without failing other events', async () => {
      const response = await post('/v1/batch', {
        batch: [
          { type: 'track', messageId: 'nul-ok', userId: 'u', event: 'ok' },
          { type: 'track', messageId: 'nul-bad', userId: 'u', event: 'bad', properties: { text: 'a\u0000b' } },
        ],
      });

      expect(response.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'CDP_EVENT_INVALID' }] });
      expect(await rowsOf('nul-ok')).toHaveLength(1);
    });

    it('answers 400 with every rejection when no event of a batch is accepted', async () => {
      const response = await post('/v1/batch', { batch: [{ type: 'track', event: 'e' }, { type: 'nope', userId: 'u' }] });

      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        code: 'CDP_EVENT_BATCH_REJECTED',
        rejected: [
          { index: 0, code: 'CDP_EVENT_MISSING_IDENTITY' },
          { index: 1, code: 'CDP_EVENT_INVALID' },
        ],
      });
    });

    it('answers 400 for a body that is not an object', async () => {
      const response = await post('/v1/identify', [1, 2]);

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_INVALID');
    });
  });

  describe('typed traits', () => {
    it('rejects an identify whose trait fails its property type', async () => {
      const response = await post('/v1/identify', { userId: 'u', traits: { age: 'old' } });

      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('CDP_EVENT_TRAIT_INVALID');
    });

    it('rejects a bad context trait in a batch and stores the good event', async () => {
      const response = await post('/v1/batch', {
        batch: [
          { type: 'identify', messageId: 'trait-ok', userId: 'u', traits: { age: 41 } },
          { type: 'track', messageId: 'trait-bad', userId: 'u', event: 'e', context: { traits: { age: 'forty' } } },
        ],
      });

      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'CDP_EVENT_TRAIT_INVALID' }] });
      expect(await rowsOf('trait-ok')).toHaveLength(1);
      expect(await rowsOf('trait-bad')).toHaveLength(0);
    });
  });

  describe('timestamps and de-duplication', () => {
    it('shifts occurred_at back when the client clock is an hour ahead', async () => {
      const ahead = Date.now() + 3600_000;
      const response = await post('/v1/track', {
        messageId: 'skew',
        userId: 'u',
        event: 'e',
        timestamp: new Date(ahead - 60_000).toISOString(),
        sentAt: new Date(ahead).toISOString(),
      });

      expect(response.statusCode).toBe(200);
      const [row] = await rowsOf('skew');
      const expected = row.received_at.getTime() - 60_000;
      expect(Math.abs(row.occurred_at.getTime() - expected)).toBeLessThan(2_000);
    });

    it('keeps a timestamp without sentAt as given', async () => {
      await post('/v1/track', { messageId: 'no-sent-at', userId: 'u', event: 'e', timestamp: '2024-01-02T03:04:05.000Z' });

      expect((await rowsOf('no-sent-at'))[0].occurred_at.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    });

    it('stores a message id sent twice once, across requests', async () => {
      expect((await post('/v1/track', { messageId: 'dup', userId: 'u', event: 'e' })).statusCode).toBe(200);
      expect((await post('/v1/track', { messageId: 'dup', userId: 'u', event: 'e' })).statusCode).toBe(200);

      expect(await rowsOf('dup')).toHaveLength(1);
    });

    it('stores a message id repeated inside one batch once', async () => {
      const item = { type: 'track', messageId: 'dup-batch', userId: 'u', event: 'e' };
      const response = await post('/v1/batch', { batch: [item, item, { ...item, event: 'later' }] });

      expect(response.statusCode).toBe(200);
      expect(await rowsOf('dup-batch')).toMatchObject([{ event: 'e' }]);
    });

    it('stores events without a messageId every time and records no id for them', async () => {
      const item = { type: 'track', userId: 'no-id-user', event: 'no-id' };
      const { rows: before } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.event_message_ids');
      expect((await post('/v1/batch', { batch: [item, item] })).statusCode).toBe(200);
      expect((await post('/v1/track', item)).statusCode).toBe(200);

      const { rows: events } = await db.pool.query<{ message_id: string }>(
        `SELECT message_id FROM roster_core.events WHERE user_id = 'no-id-user'`,
      );
      expect(new Set(events.map((row) => row.message_id)).size).toBe(3);
      const { rows: after } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.event_message_ids');
      expect(after[0].n).toBe(before[0].n);
    });

    it('refuses an event whose timestamp Postgres cannot store alone, and stores the rest of its batch', async () => {
      const response = await post('/v1/batch', {
        batch: [
          { type: 'track', messageId: 'far-ok', userId: 'u', event: 'e', timestamp: '2024-01-02T03:04:05.000Z' },
          { type: 'track', messageId: 'far-past', userId: 'u', event: 'e', timestamp: '-200000-01-01T00:00:00.000Z' },
          { type: 'track', messageId: 'far-future', userId: 'u', event: 'e', timestamp: 8_640_000_000_000_000 },
        ],
      });

      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'CDP_EVENT_INVALID' }, { index: 2, code: 'CDP_EVENT_INVALID' }] });
      expect(await rowsOf('far-ok')).toHaveLength(1);
    });

    it('stores the corrected timestamp of a batch item with its own clock', async () => {
      const response = await post('/v1/batch', {
        sentAt: '2024-03-01T10:00:00.000Z',
        batch: [{ type: 'track', messageId: 'skew-batch', userId: 'u', event: 'e', timestamp: '2024-02-29T23:59:59.250Z' }],
      });

      expect(response.statusCode).toBe(200);
      const [row] = await rowsOf('skew-batch');
      const shiftMs = row.received_at.getTime() - Date.parse('2024-03-01T10:00:00.000Z');
      expect(row.occurred_at.getTime()).toBe(Date.parse('2024-02-29T23:59:59.250Z') + shiftMs);
    });
  });
});
