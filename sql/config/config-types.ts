/**
 * Shapes of config as code: the problems validation reports and the desired state that
 * `applyConfig` writes. Every object remembers the file it came from, for error messages.
 */
import type { AggregateFunction, PropertyFetchKind } from '../../connectors/sdk/index.js';
import type { PropertyType } from '../property-types.js';

export const CONFIG_KINDS = ['app', 'source', 'property', 'group', 'destination'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

/** The top-level list that holds each kind in a config file. */
export const LIST_OF_KIND: Record<ConfigKind, string> = {
  app: 'apps',
  source: 'sources',
  property: 'properties',
  group: 'groups',
  destination: 'destinations',
};

/** One thing wrong with a config folder. `kind`, `key` and `field` are '' when they do not apply. */
export interface ConfigProblem {
  /** Path of the file relative to the config folder. */
  file: string;
  kind: ConfigKind | 'events' | 'writeKey' | '';
  key: string;
  /** Dotted path inside the object, e.g. `options.password`. */
  field: string;
  code: string;
  message: string;
  /** 1-based line, for parse errors. */
  line?: number;
}

/** A parsed file of a config folder. */
export interface ConfigDocument {
  file: string;
  absolutePath: string;
  data: unknown;
}

export interface LoadedConfig {
  dir: string;
  documents: ConfigDocument[];
  /** Files that could not be read or parsed. */
  problems: ConfigProblem[];
}

export interface AppConfig {
  file: string;
  key: string;
  type: string;
  /** Options without secrets. */
  options: Record<string, unknown>;
  /** Secret option name -> environment variable that holds it. */
  secretEnvs: Record<string, string>;
}

export interface SourceConfig {
  file: string;
  key: string;
  app: string;
  /** Exactly one of table, query and path (absolute). */
  stream: { table?: string; query?: string; path?: string };
  /** Connector-specific stream settings (e.g. a CSV delimiter). */
  options: Record<string, unknown>;
  identity: { column: string; property: string };
  createsProfiles: boolean;
  incremental: { column: string; tieBreaker: string } | null;
  schedule: { intervalMs: number; cron?: undefined } | { cron: string; intervalMs?: undefined } | null;
}

export type PropertyFetchConfig =
  | { kind: 'column'; column: string }
  | {
      kind: 'aggregate';
      table: string;
      matchColumn: string;
      function: AggregateFunction;
      column?: string;
      sortColumn?: string;
    }
  | { kind: 'query'; sql: string }
  | EventFetchConfig;

/** Event types an event property can count; `track` events are told apart by name. */
export const EVENT_TYPES = ['track', 'page', 'screen', 'identify', 'group'] as const;
export const EVENT_FUNCTIONS = ['count', 'sum', 'min', 'max', 'first', 'last'] as const;
export type EventFunction = (typeof EVENT_FUNCTIONS)[number];

/**
 * A property computed from the profile's own events. `field` is `occurred_at` or a dotted
 * path into the event's `properties`; `days` limits it to the last N days of roster_core.clock().
 */
export interface EventFetchConfig {
  kind: 'event';
  /** Only given for types other than track. */
  type?: (typeof EVENT_TYPES)[number];
  /** The track event name, or the page or screen name; required for track. */
  name?: string;
  function: EventFunction;
  field?: string;
  days?: number;
}

export interface PropertyConfig {
  file: string;
  key: string;
  type: PropertyType;
  unique: boolean;
  list: boolean;
  /** Null for a property set only by events and the API. */
  source: string | null;
  fetch: PropertyFetchConfig | null;
}

export interface GroupConfig {
  file: string;
  key: string;
  type: 'manual' | 'calculated';
  rule: unknown;
}

export interface DestinationConfig {
  file: string;
  key: string;
  app: string;
  options: Record<string, unknown>;
  groups: string[];
  /** Destination field -> property key. */
  mapping: Record<string, string>;
  /** Event names (track events, page or screen names) forwarded to the destination. */
  events: string[];
}

/** The top-level `events` object: how Segment-style events name profiles. */
export interface EventsConfig {
  file: string;
  /** The unique property that a Segment `userId` fills. */
  userIdProperty: string;
  anonymousIdsPerProfile: number;
  retentionDays?: number;
  dedupWindowDays?: number;
}

/** A write key whose value comes from an environment variable; only its sha256 is stored. */
export interface WriteKeyConfig {
  file: string;
  name: string;
  env: string;
  /** sha256 of the variable's value; null when the variable is unset (validate only). */
  keyHash: string | null;
  keyPrefix: string | null;
}

/** A validated config folder: the whole desired state. */
export interface DesiredConfig {
  apps: AppConfig[];
  sources: SourceConfig[];
  properties: PropertyConfig[];
  groups: GroupConfig[];
  destinations: DestinationConfig[];
  /** Absent or null: no events settings (apply deletes stored ones). */
  events?: EventsConfig | null;
  writeKeys?: WriteKeyConfig[];
}

export type { PropertyFetchKind };
