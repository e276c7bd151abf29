import type { ConnectorSpec } from '../sdk/index.js';

export const csvSpec: ConnectorSpec = {
  name: 'csv',
  version: '1.0.0',
  roles: ['source', 'destination'],
  configSchema: {
    type: 'object',
    properties: {
      baseDir: { type: 'string', minLength: 1, description: 'Relative paths resolve here, and no path may leave it' },
    },
    additionalProperties: false,
  },
  secretFields: [],
  sourceOptionsSchema: {
    type: 'object',
    properties: {
      path: { type: 'string', minLength: 1 },
      delimiter: { type: 'string', minLength: 1, maxLength: 4, default: ',' },
    },
    required: ['path'],
    additionalProperties: false,
  },
  destinationOptionsSchema: {
    type: 'object',
    properties: {
      path: { type: 'string', minLength: 1 },
    },
    required: ['path'],
    additionalProperties: false,
  },
  syncModes: ['full'],
  propertyKinds: ['column'],
};
