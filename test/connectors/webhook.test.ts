// Covers the webhook destination against a real local HTTP server: accepts, rejects, retries and rate limits.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestContext, describeConnectorConformance } from '../../connectors/sdk/conformance.js';
import { ConfigError, TransientError, type ExportRecord } from '../../connectors/sdk/index.js';
import { webhookConnector } from '../../connectors/webhook/index.js';

type Handler = (body: { records: ExportRecord[] }, req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let handlers: Handler[] = [];
const received: Array<{ records: ExportRecord[]; authorization?: string }> = [];
const destination = webhookConnector.destination!;
const ctx = createTestContext();

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

// Answers in the order queued; with nothing queued, checks the token and accepts everything.
const defaultHandler: Handler = (body, req, res) => {
  if (req.headers.authorization !== 'Bearer good') {
    json(res, 401, { error: 'unauthorized' });

    return;
  }
  const rejected = body.records.filter((r) => r.properties.age === 'bad').map((r) => ({ recordId: r.recordId, message: 'age must be a number' }));
  json(res, 200, { rejected });
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text) as { records: ExportRecord[] };
      received.push({ records: body.records, authorization: req.headers.authorization });
      (handlers.shift() ?? defaultHandler)(body, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  handlers = [];
  received.length = 0;
});

const config = () => ({ url: baseUrl, headers: { authorization: 'Bearer good' }, timeoutMs: 2000 });
const records: ExportRecord[] = [
  { recordId: 'p1', action: 'create', properties: { age: 30 }, groups: ['vip'] },
  { recordId: 'p2', action: 'update', properties: { age: 'bad' }, groups: [] },
  { recordId: 'p3', action: 'remove', properties: { age: 5 }, groups: [] },
];
const fields = [{ name: 'age', type: 'integer' as const, isList: false }];

describeConnectorConformance({
  connector: webhookConnector,
  fixtures: () => ({
    config: config(),
    badCredentialsConfig: { url: baseUrl, headers: { authorization: 'Bearer wrong' } },
    write: { options: {}, fields, records, expectRejected: ['p2'] },
  }),
});

describe('webhook destination', () => {
  it('posts records as JSON with the configured headers', async () => {
    const result = await destination.write(ctx, { config: config(), options: {}, fields, records });
    expect(result.accepted).toEqual(['p1', 'p3']);
    expect(result.rejected).toEqual([{ recordId: 'p2', code: 'CDP_WEBHOOK_REJECTED', message: expect.any(String), retryable: false }]);
    expect(received).toEqual([{ records, authorization: 'Bearer good' }]);
  });

  it('throws a TransientError on a 500, and succeeds when the retry gets a 200', async () => {
    handlers.push((_body, _req, res) => json(res, 500, { error: 'down' }));
    const error = await destination.write(ctx, { config: config(), options: {}, fields, records }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('CDP_DESTINATION_UNAVAILABLE');

    const retry = await destination.write(ctx, { config: config(), options: {}, fields, records });
    expect(retry.accepted).toEqual(['p1', 'p3']);
  });

  it('throws a TransientError with retryAfterMs on a 429', async () => {
    handlers.push((_body, _req, res) => json(res, 429, {}, { 'retry-after': '7' }));
    const error = await destination.write(ctx, { config: config(), options: {}, fields, records }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('CDP_DESTINATION_RATE_LIMITED');
    expect((error as TransientError).retryAfterMs).toBe(7000);
  });

  it('rejects every record of a batch refused with a 4xx', async () => {
    handlers.push((_body, _req, res) => json(res, 422, { error: 'schema' }));
    const result = await destination.write(ctx, { config: config(), options: {}, fields, records });
    expect(result.accepted).toEqual([]);
    expect(result.rejected.map((r) => [r.recordId, r.code, r.retryable])).toEqual([
      ['p1', 'CDP_WEBHOOK_REJECTED', false],
      ['p2', 'CDP_WEBHOOK_REJECTED', false],
      ['p3', 'CDP_WEBHOOK_REJECTED', false],
    ]);
  });

  it('splits records into requests of batchSize', async () => {
    const result = await destination.write(ctx, { config: config(), options: { batchSize: 2 }, fields, records });
    expect(received.map((r) => r.records.length)).toEqual([2, 1]);
    expect(result.accepted).toEqual(['p1', 'p3']);
  });

  it('throws a TransientError when the receiver does not answer in time', async () => {
    handlers.push(() => {});
    const error = await destination.write(ctx, { config: { ...config(), timeoutMs: 200 }, options: {}, fields, records }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('CDP_DESTINATION_TIMEOUT');
  });

  it('throws a TransientError when nothing listens at the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const error = await destination.write(ctx, { config: { url: `http://127.0.0.1:${port}/` }, options: {}, fields, records }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('CDP_DESTINATION_UNAVAILABLE');
  });

  it('passes check with good headers and fails it with a ConfigError otherwise', async () => {
    await expect(destination.check(ctx, config())).resolves.toEqual({ ok: true });
    const error = await destination.check(ctx, { url: baseUrl }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_CONNECTOR_AUTH_FAILED');
  });
});

// Event delivery (sendEvents) follows the same status rules as write.
import type { OutboundEvent } from '../../connectors/sdk/index.js';

describe('webhook event delivery', () => {
  const events: OutboundEvent[] = [
    { recordId: 'e1', profileId: '1', type: 'track', event: 'Signed Up', messageId: 'm1', timestamp: '2024-05-01T10:00:00.000Z', properties: { plan: 'pro' }, profile: { email: 'a@example.com' }, groups: ['vip'] },
    { recordId: 'e2', profileId: '2', type: 'track', event: 'Signed Up', messageId: 'm2', timestamp: '2024-05-01T10:00:01.000Z', properties: { plan: 'bad' }, profile: {}, groups: [] },
  ];
  const sent: Array<{ path?: string; events: unknown }> = [];
  const answer = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (raw, req, res) => {
    sent.push({ path: req.url, events: (raw as unknown as { events: unknown }).events });
    json(res, status, body, headers);
  };

  beforeEach(() => {
    sent.length = 0;
  });

  it('declares event delivery in its spec', () => {
    expect(webhookConnector.spec.eventDelivery).toBe(true);
    expect(typeof destination.sendEvents).toBe('function');
  });

  it('posts events as JSON and accepts all but the listed rejects', async () => {
    handlers.push(answer(200, { rejected: [{ recordId: 'e2', code: 'BAD_PLAN', message: 'plan unknown' }] }));
    const result = await destination.sendEvents!(ctx, { config: config(), options: {}, events });
    expect(result.accepted).toEqual(['e1']);
    expect(result.rejected).toEqual([{ recordId: 'e2', code: 'BAD_PLAN', message: expect.any(String), retryable: false }]);
    expect(sent).toEqual([{ path: '/hook', events }]);
    expect(received[0].authorization).toBe('Bearer good');
  });

  it('posts events to eventsUrl when the destination sets it', async () => {
    handlers.push(answer(200, {}));
    const result = await destination.sendEvents!(ctx, { config: config(), options: { eventsUrl: `${baseUrl}/events` }, events });
    expect(result.accepted).toEqual(['e1', 'e2']);
    expect(sent.map((s) => s.path)).toEqual(['/hook/events']);
  });

  it('throws a TransientError with retryAfterMs on a 429 and on a 503', async () => {
    handlers.push(answer(429, {}, { 'retry-after': '3' }));
    const limited = await destination.sendEvents!(ctx, { config: config(), options: {}, events }).catch((err: unknown) => err);
    expect(limited).toBeInstanceOf(TransientError);
    expect((limited as TransientError).code).toBe('CDP_DESTINATION_RATE_LIMITED');
    expect((limited as TransientError).retryAfterMs).toBe(3000);

    handlers.push(answer(503, {}));
    const down = await destination.sendEvents!(ctx, { config: config(), options: {}, events }).catch((err: unknown) => err);
    expect(down).toBeInstanceOf(TransientError);
    expect((down as TransientError).code).toBe('CDP_DESTINATION_UNAVAILABLE');
  });

  it('rejects every event of a request refused with a 4xx, not retryable', async () => {
    handlers.push(answer(400, { error: 'schema' }));
    const result = await destination.sendEvents!(ctx, { config: config(), options: {}, events });
    expect(result.accepted).toEqual([]);
    expect(result.rejected.map((r) => [r.recordId, r.code, r.retryable])).toEqual([
      ['e1', 'CDP_WEBHOOK_REJECTED', false],
      ['e2', 'CDP_WEBHOOK_REJECTED', false],
    ]);
  });

  it('throws a TransientError when the receiver does not answer events in time', async () => {
    handlers.push(() => {});
    const error = await destination.sendEvents!(ctx, { config: { ...config(), timeoutMs: 200 }, options: {}, events }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe('CDP_DESTINATION_TIMEOUT');
  });
});
