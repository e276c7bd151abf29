/**
 * JSON Schema of one config file. It checks shapes only; references between objects,
 * connector options and rules are checked afterwards by validateConfig.
 */
import { PROPERTY_TYPES } from '../property-types.js';
import { EVENT_FUNCTIONS, EVENT_TYPES } from './config-types.js';

export const OBJECT_KEY_PATTERN = '^[a-z][a-z0-9_]{0,62}$';
// Shorter, so that `profiles_<key>_idx` and similar names stay readable.
export const PROPERTY_KEY_PATTERN = '^[a-z][a-z0-9_]{0,58}$';
// A group's view is roster."group_<key>", and Postgres identifiers stop at 63 bytes.
export const GROUP_KEY_PATTERN = '^[a-z][a-z0-9_]{0,56}$';
// Columns of roster_core.profiles and of the roster.profiles view that a property cannot shadow.
export const RESERVED_PROPERTY_KEYS = ['id', 'profile_id', 'revision', 'value_times', 'created_at', 'updated_at'];
export const AGGREGATE_FUNCTIONS = ['sum', 'count', 'min', 'max', 'avg', 'most_recent', 'least_recent'];
export const SCHEDULE_EVERY_PATTERN = '^[1-9][0-9]{0,8}[smhd]$';
// `occurred_at`, or a path into the event's jsonb properties; the parts become a text[] path.
export const EVENT_FIELD_PATTERN = '^(occurred_at|properties(\\.[A-Za-z0-9_]+)+)$';
export const DEFAULT_ANONYMOUS_IDS_PER_PROFILE = 50;

const name = { type: 'string', minLength: 1, maxLength: 200 };
const sql = { type: 'string', minLength: 1, maxLength: 100_000 };

const APP_SCHEMA = {
  type: 'object',
  required: ['key', 'type'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    type: name,
    options: { type: 'object' },
  },
};

const SOURCE_SCHEMA = {
  type: 'object',
  required: ['key', 'app', 'identity'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    app: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    table: name,
    query: sql,
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    // Connector-specific stream settings, e.g. a CSV delimiter.
    options: { type: 'object' },
    identity: {
      type: 'object',
      required: ['column', 'property'],
      additionalProperties: false,
      properties: { column: name, property: { type: 'string', pattern: PROPERTY_KEY_PATTERN } },
    },
    createsProfiles: { type: 'boolean' },
    incremental: {
      type: 'object',
      required: ['column', 'tieBreaker'],
      additionalProperties: false,
      properties: { column: name, tieBreaker: name },
    },
    schedule: {
      type: 'object',
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
      properties: {
        every: { type: 'string', pattern: SCHEDULE_EVERY_PATTERN },
        cron: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
  },
};

const AGGREGATE_SCHEMA = {
  type: 'object',
  required: ['table', 'matchColumn', 'function'],
  additionalProperties: false,
  properties: {
    table: name,
    matchColumn: name,
    function: { enum: AGGREGATE_FUNCTIONS },
    column: name,
    sortColumn: name,
  },
  allOf: [
    {
      if: { properties: { function: { enum: ['most_recent', 'least_recent'] } }, required: ['function'] },
      then: { required: ['sortColumn', 'column'] },
    },
    {
      if: { properties: { function: { enum: ['sum', 'min', 'max', 'avg'] } }, required: ['function'] },
      then: { required: ['column'] },
    },
  ],
};

const EVENT_PROPERTY_SCHEMA = {
  type: 'object',
  required: ['function'],
  additionalProperties: false,
  properties: {
    name,
    type: { enum: [...EVENT_TYPES] },
    function: { enum: [...EVENT_FUNCTIONS] },
    field: { type: 'string', maxLength: 500, pattern: EVENT_FIELD_PATTERN },
    days: { type: 'integer', minimum: 1, maximum: 36_500 },
  },
};

const PROPERTY_SCHEMA = {
  type: 'object',
  required: ['key', 'type'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: PROPERTY_KEY_PATTERN },
    type: { enum: [...PROPERTY_TYPES] },
    unique: { type: 'boolean' },
    list: { type: 'boolean' },
    source: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    column: name,
    aggregate: AGGREGATE_SCHEMA,
    query: sql,
    event: EVENT_PROPERTY_SCHEMA,
  },
};

const GROUP_SCHEMA = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: GROUP_KEY_PATTERN },
    type: { enum: ['manual', 'calculated'] },
    rule: { type: ['object', 'boolean'] },
  },
};

const DESTINATION_SCHEMA = {
  type: 'object',
  required: ['key', 'app'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    app: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    options: { type: 'object' },
    groups: { type: 'array', items: { type: 'string', pattern: GROUP_KEY_PATTERN } },
    mapping: {
      type: 'object',
      propertyNames: { minLength: 1, maxLength: 200 },
      additionalProperties: { type: 'string', pattern: PROPERTY_KEY_PATTERN },
    },
    events: { type: 'array', items: name },
  },
};

const EVENTS_SCHEMA = {
  type: 'object',
  required: ['userIdProperty'],
  additionalProperties: false,
  properties: {
    userIdProperty: { type: 'string', pattern: PROPERTY_KEY_PATTERN },
    anonymousIdsPerProfile: { type: 'integer', minimum: 1, maximum: 100_000 },
    retentionDays: { type: 'integer', minimum: 1, maximum: 36_500 },
    dedupWindowDays: { type: 'integer', minimum: 1, maximum: 365 },
  },
};

const WRITE_KEY_SCHEMA = {
  type: 'object',
  required: ['name', 'key'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: OBJECT_KEY_PATTERN },
    // Checked by validateConfig, so that a literal key gets CDP_CONFIG_LITERAL_SECRET.
    key: {},
  },
};

/** One config file: any of the five top-level lists, the `events` settings and write keys. */
export const CONFIG_DOCUMENT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    apps: { type: 'array', items: APP_SCHEMA },
    sources: { type: 'array', items: SOURCE_SCHEMA },
    properties: { type: 'array', items: PROPERTY_SCHEMA },
    groups: { type: 'array', items: GROUP_SCHEMA },
    destinations: { type: 'array', items: DESTINATION_SCHEMA },
    events: EVENTS_SCHEMA,
    writeKeys: { type: 'array', items: WRITE_KEY_SCHEMA },
  },
};
