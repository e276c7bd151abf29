import { sqlStreamOptionsSchema, type ConnectorSpec } from '../sdk/index.js';

export const postgresSpec: ConnectorSpec = {
  name: 'postgres',
  version: '1.0.0',
  roles: ['source', 'destination'],
  configSchema: {
    type: 'object',
    properties: {
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 5432 },
      database: { type: 'string', minLength: 1 },
      user: { type: 'string', minLength: 1 },
      password: { type: 'string' },
      ssl: { type: 'boolean', default: false },
      connectionString: { type: 'string', minLength: 1, description: 'postgres://user:password@host:port/database' },
    },
    oneOf: [{ required: ['host', 'database', 'user'] }, { required: ['connectionString'] }],
  },
  // A connection string usually embeds the password, so it is as secret as the password.
  secretFields: ['password', 'connectionString'],
  sourceOptionsSchema: sqlStreamOptionsSchema('Table or view, optionally schema-qualified (public.customers)'),
  destinationOptionsSchema: {
    type: 'object',
    properties: {
      table: { type: 'string', minLength: 1 },
      keyColumn: { type: 'string', minLength: 1, default: 'profile_id' },
      groupsColumn: { type: 'string', minLength: 1, default: 'groups' },
      createTable: { type: 'boolean', default: true },
    },
    required: ['table'],
    additionalProperties: false,
  },
  syncModes: ['full', 'incremental'],
  propertyKinds: ['column', 'aggregate', 'query'],
};
