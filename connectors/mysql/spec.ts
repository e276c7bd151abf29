import type { ConnectorSpec } from '../sdk/index.js';

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
  sourceOptionsSchema: {
    type: 'object',
    properties: {
      table: { type: 'string', minLength: 1, description: 'Table or view, optionally database-qualified (shop.orders)' },
      query: { type: 'string', minLength: 1, description: 'A SELECT read as a subquery' },
      cursor: {
        type: 'object',
        properties: {
          column: { type: 'string', minLength: 1 },
          tieBreaker: { type: 'string', minLength: 1 },
        },
        required: ['column', 'tieBreaker'],
        additionalProperties: false,
      },
    },
    oneOf: [{ required: ['table'] }, { required: ['query'] }],
  },
  syncModes: ['full', 'incremental'],
  propertyKinds: ['column', 'aggregate', 'query'],
};
