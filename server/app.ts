import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Pool } from '../lib/db.js';
import { isAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import healthRoutes from './routes/health.js';
import segmentRoutes from './routes/segment.js';

export interface ServerDeps {
  pool: Pool;
  log: Logger;
  /** Called after inbound events are committed, with how many were stored (wakes processing). */
  onEventsStored?: (count: number) => void;
}

/** Builds the HTTP server: health, OpenAPI docs, and a uniform `{ code, message }` error shape. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  // No line per request (the top-level `disableRequestLogging` is deprecated, FSTDEP023).
  const logController = new LogController({ disableRequestLogging: true });
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger, logController, bodyLimit: 512 * 1024 });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Roster', description: 'Customer data platform on PostgreSQL', version: '0.1.0' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.setErrorHandler((err, request, reply) => {
    if (isAppError(err)) {
      return reply.status(err.httpStatus).send({ code: err.code, message: err.message });
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      const code = (err as { code?: string }).code ?? 'CDP_BAD_REQUEST';

      return reply.status(status).send({ code: code.startsWith('FST_') ? 'CDP_BAD_REQUEST' : code, message: (err as Error).message });
    }
    request.log.error({ err }, 'request failed');

    return reply.status(500).send({ code: 'CDP_INTERNAL', message: 'Internal error' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ code: 'CDP_ROUTE_NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}` }),
  );
  await app.register(healthRoutes, { pool: deps.pool });
  await app.register(segmentRoutes, { pool: deps.pool, onEventsStored: deps.onEventsStored });

  return app;
}
