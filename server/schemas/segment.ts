// Request and response shapes of the Segment-compatible routes, for the OpenAPI docs. The
// routes check bodies themselves (server/segment-message.ts) so that every problem gets a
// stable code and one bad event of a batch is rejected alone.

const id = (description: string) => ({ type: 'string', description: `${description} Numbers are accepted and stored as text.` });
const object = (description: string) => ({ type: 'object', additionalProperties: true, description });
const time = (description: string) => ({ type: 'string', format: 'date-time', description });

const common = {
  userId: id('Your id for the person. Each event needs userId or anonymousId.'),
  anonymousId: id('An id for a person not yet known, such as a device or browser id.'),
  messageId: { type: 'string', description: 'Unique id of the message; a repeat within the de-duplication window is acknowledged and not stored again. Generated when absent.' },
  timestamp: time('When the event happened, by the client clock.'),
  sentAt: time('When the client sent the request; used to correct the client clock skew.'),
  context: object('Extra information about the event (app, device, ip, ...). context.traits are merged under traits.'),
  integrations: object('Accepted for compatibility and not stored.'),
  writeKey: { type: 'string', description: 'The write key, for SDKs that send it in the body instead of HTTP Basic auth.' },
};

const traits = object('Traits of the person or group. A key that names a defined property must match its type.');
const properties = object('Properties of the event.');

export const SEGMENT_BODIES = {
  identify: { ...common, traits },
  track: { ...common, event: { type: 'string', description: 'Name of the action. Required.' }, properties },
  page: { ...common, name: { type: 'string', description: 'Name of the page.' }, properties },
  screen: { ...common, name: { type: 'string', description: 'Name of the screen.' }, properties },
  group: { ...common, groupId: id('Id of the group (account, company). Required.'), traits },
  alias: { ...common, previousId: id('The earlier id to link to userId. Required, with userId.') },
} as const;

export const SEGMENT_BATCH_BODY = {
  type: 'object',
  properties: {
    batch: {
      type: 'array',
      description: 'Events, each with its type: identify, track, page, screen, group or alias.',
      items: { type: 'object', additionalProperties: true, properties: { type: { type: 'string' } } },
    },
    context: object('Context every event of the batch inherits; an event\'s own context wins.'),
    integrations: common.integrations,
    sentAt: common.sentAt,
    writeKey: common.writeKey,
  },
  required: ['batch'],
} as const;

const errorBody = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
};

const rejected = {
  type: 'array',
  description: 'Events that were not stored, by position in the batch.',
  items: {
    type: 'object',
    properties: { index: { type: 'integer' }, code: { type: 'string' }, message: { type: 'string' } },
  },
};

export const SEGMENT_SINGLE_RESPONSES = {
  200: { type: 'object', description: 'The event is committed.', properties: { success: { type: 'boolean' } } },
  400: errorBody,
  401: errorBody,
  413: errorBody,
  503: errorBody,
};

export const SEGMENT_BATCH_RESPONSES = {
  200: {
    type: 'object',
    description: 'At least one event is committed; `rejected` lists the others.',
    properties: { success: { type: 'boolean' }, accepted: { type: 'integer' }, rejected },
  },
  400: {
    type: 'object',
    description: 'No event was accepted: the body is malformed, or every event was rejected.',
    properties: { code: { type: 'string' }, message: { type: 'string' }, rejected },
  },
  401: errorBody,
  413: errorBody,
  503: errorBody,
};
