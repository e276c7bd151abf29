import { sqlStreamOptionsSchema, type ConnectorSpec } from '../sdk/index.js';

export const mysqlSpec: ConnectorSpec = {
  name: 'mysql',
  version: '1.0.0',
  roles: ['source'],
  configSchema: {
    type: 'object',
    properties: {
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 3306 },
      database: { type: 'string', minLength: 1 },
      user: { type: 'string', minLength: 1 },
      password: { type: 'string' },
    },
    required: ['host', 'database', 'user'],
  },
  secretFields: ['password'],
  sourceOptionsSchema: sqlStreamOptionsSchema('Table or view, optionally database-qualified (shop.orders)'),
  syncModes: ['full', 'incremental'],
  propertyKinds: ['column', 'aggregate', 'query'],
};
