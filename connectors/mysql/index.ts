import { SqlSource, type Connector, type SourceConnector } from '../sdk/index.js';
import { createMysqlDriver, mapMysqlError, MysqlPools, type MysqlConfig } from './client.js';
import { mysqlSpec } from './spec.js';

const pools = new MysqlPools();

function sqlSource(config: MysqlConfig): SqlSource {
  return new SqlSource(createMysqlDriver(pools.get(config), config));
}

const source: SourceConnector<MysqlConfig> = {
  async check(_ctx, config) {
    try {
      await pools.get(config).query('SELECT 1');
    } catch (err) {
      throw mapMysqlError(err, config);
    }

    return { ok: true };
  },
  discover: (_ctx, config) => sqlSource(config).discover(),
  preview: (_ctx, config, stream, limit) => sqlSource(config).preview(stream, limit),
  read: (ctx, req) => sqlSource(req.config).read(ctx, req),
  fetchProperties: (ctx, req) => sqlSource(req.config).fetchProperties(ctx, req),
  close: () => pools.closeAll(),
};

/** MySQL and MariaDB as a source: tables, queries and hydration over mysql2. */
export const mysqlConnector: Connector = { spec: mysqlSpec, source };
