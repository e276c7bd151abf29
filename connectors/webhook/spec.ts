import type { ConnectorSpec } from '../sdk/index.js';

export const webhookSpec: ConnectorSpec = {
  name: 'webhook',
  version: '1.0.0',
  roles: ['destination'],
  configSchema: {
    type: 'object',
    properties: {
      url: { type: 'string', pattern: '^https?://', description: 'Receives POST { records: [...] } as JSON' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Sent with every request, e.g. Authorization' },
      timeoutMs: { type: 'integer', minimum: 100, maximum: 300000, default: 10000 },
    },
    required: ['url'],
    additionalProperties: false,
  },
  // Headers usually carry the receiver's token.
  secretFields: ['headers'],
  destinationOptionsSchema: {
    type: 'object',
    properties: {
      batchSize: { type: 'integer', minimum: 1, maximum: 10000 },
      eventsUrl: { type: 'string', pattern: '^https?://', description: 'Receives POST { events: [...] }; defaults to the app URL' },
    },
    additionalProperties: false,
  },
  syncModes: [],
  propertyKinds: [],
  eventDelivery: true,
};
