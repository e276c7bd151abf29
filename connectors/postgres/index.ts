import { SqlSource, type Connector, type DestinationConnector, type SourceConnector } from '../sdk/index.js';
import { createPostgresDriver, mapPostgresError, PostgresPools, type PostgresConfig } from './client.js';
import { PostgresDestination, type PostgresDestinationOptions } from './destination.js';
import { postgresSpec } from './spec.js';

// Source pools open read-only sessions; a destination writes, so it never shares them.
const sourcePools = new PostgresPools({ readOnly: true });
const destinationPools = new PostgresPools();

function sqlSource(config: PostgresConfig): SqlSource {
  return new SqlSource(createPostgresDriver(sourcePools.get(config), config));
}

async function check(pools: PostgresPools, config: PostgresConfig) {
  try {
    await pools.get(config).query('SELECT 1');
  } catch (err) {
    throw mapPostgresError(err, config);
  }

  return { ok: true as const };
}

const source: SourceConnector<PostgresConfig> = {
  check: (_ctx, config) => check(sourcePools, config),
  discover: (_ctx, config) => sqlSource(config).discover(),
  preview: (_ctx, config, stream, limit) => sqlSource(config).preview(stream, limit),
  read: (ctx, req) => sqlSource(req.config).read(ctx, req),
  fetchProperties: (ctx, req) => sqlSource(req.config).fetchProperties(ctx, req),
  close: () => sourcePools.closeAll(),
};

const destination: DestinationConnector<PostgresConfig, PostgresDestinationOptions> = {
  check: (_ctx, config) => check(destinationPools, config),
  async write(ctx, req) {
    const started = Date.now();
    const result = await new PostgresDestination(destinationPools.get(req.config), req.config, req.options).write(req.fields, req.records);
    ctx.log.debug({ accepted: result.accepted.length, rejected: result.rejected.length, durationMs: Date.now() - started }, 'batch written');

    return result;
  },
  close: () => destinationPools.closeAll(),
};

/** Postgres as a source (tables, queries, hydration) and as a destination (one upserted table). */
export const postgresConnector: Connector = { spec: postgresSpec, source, destination };
