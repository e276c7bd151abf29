// Pins that building the HTTP server prints no Fastify deprecation warning (FSTDEP023) and
// that requests are still not logged one line each.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { buildServer } from '../../server/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

it('builds the server without a deprecation warning and logs no line per request', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      messages.push(...chunk.toString().trim().split('\n').map((line) => String((JSON.parse(line) as { msg: unknown }).msg)));
      done();
    },
  });
  process.on('warning', onWarning);
  try {
    const app = await buildServer({ pool: db.pool, log: pino({ level: 'info' }, sink) });
    const response = await app.inject({ method: 'GET', url: '/health' });
    await app.close();
    await new Promise((resolve) => setImmediate(resolve));

    expect(response.statusCode).toBe(200);
  } finally {
    process.off('warning', onWarning);
  }

  expect(warnings.map((warning) => (warning as Error & { code?: string }).code)).not.toContain('FSTDEP023');
  expect(messages).not.toContain('incoming request');
  expect(messages).not.toContain('request completed');
});
