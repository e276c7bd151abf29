// Covers the HTTP server shell: health, OpenAPI document, and the error shape for bad routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildServer } from '../../server/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('server', () => {
  let db: TestDatabase;
  let app: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await buildServer({ pool: db.pool, log: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('answers health with the database state', async () => {
    const response = await app.inject({ method: 'GET', url: '/health' });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok', database: 'ok' });
  });

  it('serves an OpenAPI document that lists the health route', async () => {
    const response = await app.inject({ method: 'GET', url: '/docs/json' });

    expect(response.statusCode).toBe(200);
    expect(response.json().paths).toHaveProperty('/health');
  });

  it('answers an unknown route with a 404 and a code', async () => {
    const response = await app.inject({ method: 'GET', url: '/nope' });

    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBeTypeOf('string');
  });
});
