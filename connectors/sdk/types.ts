import type { Logger } from 'pino';

/** A JSON Schema object (draft 2020-12 subset understood by ajv). */
export type JSONSchema = Record<string, unknown>;

export type SyncMode = 'full' | 'incremental';
export type ConnectorRole = 'source' | 'destination';
export type PropertyFetchKind = 'column' | 'aggregate' | 'query';

/**
 * What a connector is and can do. Roster reads capabilities from here and never guesses them
 * from which methods happen to exist; the registry refuses a connector whose objects do not
 * match its spec.
 */
export interface ConnectorSpec {
  /** The app type users write in config, e.g. `postgres`. */
  name: string;
  version: string;
  roles: ConnectorRole[];
  /** Schema of an app's options (connection settings). */
  configSchema: JSONSchema;
  /** Option names that are secrets: they come from environment variables and are never logged. */
  secretFields: string[];
  /** Schema of a source's options (table or query, identity, cursor); required for sources. */
  sourceOptionsSchema?: JSONSchema;
  /** Schema of a destination's options (target table, URL, file); required for destinations. */
  destinationOptionsSchema?: JSONSchema;
  /** Sync modes a source supports. */
  syncModes: SyncMode[];
  /** How a source can compute property values during hydration. */
  propertyKinds: PropertyFetchKind[];
  /** A destination that can forward single events (it implements `sendEvents`). */
  eventDelivery?: boolean;
}

/** Handed to every connector call. */
export interface ConnectorContext {
  log: Logger;
  signal: AbortSignal;
}

export interface CheckResult {
  ok: true;
  message?: string;
}

export interface Catalog {
  streams: Array<{ name: string; columns: Array<{ name: string; type: string }> }>;
}

/** Where a source's rows come from: exactly one of `table` and `query`. */
export interface StreamOptions {
  table?: string;
  query?: string;
  /** Incremental reads: rows after (column, tieBreaker) of the last committed row. */
  cursor?: { column: string; tieBreaker: string };
}

/** A high-water mark: the cursor column's and tie-breaker's values of the last row stored. */
export interface CursorState {
  value: unknown;
  tieBreaker: unknown;
}

export interface ReadRequest<TConfig, TState = CursorState> {
  config: TConfig;
  stream: StreamOptions;
  /** State from the last committed batch, or null to read from the start. */
  state: TState | null;
  batchSize: number;
}

/**
 * `read` yields a batch of records, then the state that follows that batch. Roster stores the
 * state only after every record before it is stored, so a crash resumes from the last state.
 */
export type SourceMessage<TState = CursorState> =
  | { type: 'records'; records: Array<Record<string, unknown>> }
  | { type: 'state'; state: TState };

export type AggregateFunction = 'sum' | 'count' | 'min' | 'max' | 'avg' | 'most_recent' | 'least_recent';

/** How one property's value is computed for a set of profiles. */
export type PropertyFetch =
  | { key: string; kind: 'column'; column: string; isList?: boolean }
  | {
      key: string;
      kind: 'aggregate';
      table: string;
      /** Column of `table` that holds the profile's match value. */
      matchColumn: string;
      function: AggregateFunction;
      /** Aggregated column; optional for count. */
      column?: string;
      /** Ordering column for most_recent and least_recent. */
      sortColumn?: string;
    }
  | {
      key: string;
      kind: 'query';
      /** SQL with `{{profile.<key>}}` placeholders; each becomes a bound parameter. */
      sql: string;
      isList?: boolean;
    };

export interface FetchProfile {
  /** Roster's profile id. */
  id: string;
  /** The profile's current values by property key (for matching and query placeholders). */
  values: Record<string, unknown>;
}

export interface FetchRequest<TConfig> {
  config: TConfig;
  stream: StreamOptions;
  /** Source column matched against each profile's value of `match.property`. */
  match: { column: string; property: string };
  profiles: FetchProfile[];
  properties: PropertyFetch[];
}

/**
 * Values per profile id. A profile with no matching row is absent. A property whose value
 * was not found is absent from the inner object (not null), except aggregates, which give
 * their SQL result (count 0, sum null).
 */
export type FetchResult = Map<string, Record<string, unknown>>;

export interface SourceConnector<TConfig = Record<string, unknown>, TState = CursorState> {
  check(ctx: ConnectorContext, config: TConfig): Promise<CheckResult>;
  discover(ctx: ConnectorContext, config: TConfig): Promise<Catalog>;
  /** A few rows of a stream, for previews. */
  preview(ctx: ConnectorContext, config: TConfig, stream: StreamOptions, limit: number): Promise<Array<Record<string, unknown>>>;
  read(ctx: ConnectorContext, req: ReadRequest<TConfig, TState>): AsyncIterable<SourceMessage<TState>>;
  fetchProperties(ctx: ConnectorContext, req: FetchRequest<TConfig>): Promise<FetchResult>;
  /** Releases pooled connections held for `config`. */
  close?(): Promise<void>;
}

export type ExportAction = 'create' | 'update' | 'remove';

export interface ExportRecord {
  /** Roster's profile id. */
  recordId: string;
  action: ExportAction;
  /** Mapped properties: destination field name -> value. For removals, the last values sent. */
  properties: Record<string, unknown>;
  /** Keys of the followed groups the profile is in (empty on removal). */
  groups: string[];
}

/** A mapped field: its name at the destination and the Roster property type behind it. */
export interface ExportField {
  name: string;
  type: 'string' | 'email' | 'integer' | 'float' | 'boolean' | 'date' | 'url' | 'phone';
  isList: boolean;
}

export interface WriteRequest<TConfig, TOptions = Record<string, unknown>> {
  config: TConfig;
  options: TOptions;
  /** Every mapped field, so a destination can create typed columns. */
  fields: ExportField[];
  records: ExportRecord[];
}

export interface RecordReject {
  recordId: string;
  code: string;
  message: string;
  /** False when sending again cannot help (the destination refuses the data itself). */
  retryable: boolean;
}

export interface WriteResult {
  accepted: string[];
  rejected: RecordReject[];
}

/** An inbound event forwarded to a destination, enriched with the profile's mapped properties. */
export interface OutboundEvent {
  /** Roster's outbound event id: the `recordId` of accepts and rejects. */
  recordId: string;
  /** Roster's profile id. */
  profileId: string;
  type: 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias';
  /** The track event name, or the page or screen name. */
  event: string | null;
  messageId: string;
  /** ISO 8601, corrected for client clock skew. */
  timestamp: string;
  properties: Record<string, unknown>;
  /** Mapped properties of the profile: destination field name -> value. */
  profile: Record<string, unknown>;
  /** Keys of the followed groups the profile is in. */
  groups: string[];
}

export interface SendEventsRequest<TConfig, TOptions = Record<string, unknown>> {
  config: TConfig;
  options: TOptions;
  events: OutboundEvent[];
}

export interface DestinationConnector<TConfig = Record<string, unknown>, TOptions = Record<string, unknown>> {
  check(ctx: ConnectorContext, config: TConfig): Promise<CheckResult>;
  /** Sends a batch. A whole-batch failure throws (TransientError to retry, ConfigError to stop). */
  write(ctx: ConnectorContext, req: WriteRequest<TConfig, TOptions>): Promise<WriteResult>;
  /** Forwards events; present exactly when `spec.eventDelivery` is true. Same failure rules as write. */
  sendEvents?(ctx: ConnectorContext, req: SendEventsRequest<TConfig, TOptions>): Promise<WriteResult>;
  close?(): Promise<void>;
}

/** A connector package: its spec plus the roles it declares. */
export interface Connector {
  spec: ConnectorSpec;
  source?: SourceConnector<any, any>;
  destination?: DestinationConnector<any, any>;
}
