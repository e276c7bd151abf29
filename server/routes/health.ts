import type { FastifyPluginAsync } from 'fastify';
import type { Pool } from '../../lib/db.js';

const health: FastifyPluginAsync<{ pool: Pool }> = async (app, { pool }) => {
  app.get(
    '/health',
    {
      schema: {
        description: 'Liveness and database reachability. Needs no key.',
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, database: { type: 'string' } } },
          503: { type: 'object', properties: { status: { type: 'string' }, database: { type: 'string' } } },
        },
      },
    },
    async (_request, reply) => {
      try {
        await pool.query('SELECT 1');

        return { status: 'ok', database: 'ok' };
      } catch {
        return reply.status(503).send({ status: 'degraded', database: 'unreachable' });
      }
    },
  );
};

export default health;
