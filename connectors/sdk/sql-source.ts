import { ConfigError } from './errors.js';
import type {
  Catalog,
  ConnectorContext,
  CursorState,
  FetchProfile,
  FetchRequest,
  FetchResult,
  PropertyFetch,
  ReadRequest,
  SourceMessage,
  StreamOptions,
} from './types.js';

export type SqlRow = Record<string, unknown>;

/**
 * What the SQL-source template needs from a database client. Each method maps driver errors
 * to Roster's classes itself, so the template never sees a raw driver error.
 */
export interface SqlDriver {
  /** Runs one statement with bound parameters and returns its rows. */
  query(sql: string, params: unknown[]): Promise<SqlRow[]>;
  /** Runs one parameterless statement and yields its rows in batches of `batchSize`. */
  stream(sql: string, batchSize: number, signal: AbortSignal): AsyncIterable<SqlRow[]>;
  /** Quotes one identifier part (no dots). */
  quoteIdent(name: string): string;
  /** The bound-parameter marker for the 1-based `index` (`$1` or `?`). */
  placeholder(index: number): string;
  /** A condition `expr` in `values`, with placeholders starting at `firstIndex`. */
  matchAny(expr: string, values: unknown[], firstIndex: number): { sql: string; params: unknown[] };
  /** An expression casting `expr` to text, so cursor values round-trip at full precision. */
  castText(expr: string): string;
  /** An aggregate picking any one value of `expr` in a group (all values are equal there). */
  pickAny(expr: string): string;
  /** A query returning `stream`, `column` and `type` for every readable column. */
  catalogSql: string;
}

const CURSOR_VALUE = '__roster_cursor_value';
const CURSOR_TIE = '__roster_cursor_tie';
const MATCH = '__roster_match';
const MATCH_CHUNK = 1000;
const QUERY_CONCURRENCY = 8;
const PLACEHOLDER_PATTERN = /'\{\{\s*profile\.([\w.-]+)\s*\}\}'|\{\{\s*profile\.([\w.-]+)\s*\}\}/g;

/** Quotes a possibly schema-qualified name (`public.customers`) one part at a time. */
export function quoteQualified(driver: SqlDriver, name: string): string {
  return name
    .split('.')
    .map((part) => driver.quoteIdent(part))
    .join('.');
}

/** The FROM target of a stream: a quoted table, or the query as a subquery. */
export function streamSource(driver: SqlDriver, stream: StreamOptions): string {
  if (stream.query !== undefined && stream.query.trim() !== '') {
    // A trailing semicolon is harmless on its own but breaks the subquery.
    const body = stream.query.trim().replace(/;+\s*$/, '');

    return `(${body}) AS s`;
  }
  if (stream.table !== undefined && stream.table !== '') {
    return `${quoteQualified(driver, stream.table)} AS s`;
  }
  throw new ConfigError('CDP_SOURCE_STREAM_INVALID', 'Source stream names neither a table nor a query');
}

/** Text that identifies a match value whatever type the driver or the profile used for it. */
function matchKey(value: unknown): string | undefined {
  if (value === null || value === undefined || typeof value === 'object') {
    return value instanceof Date ? value.toISOString() : undefined;
  }

  return String(value);
}

/** Profile ids by match value; profiles without a scalar match value cannot match anything. */
function indexProfiles(profiles: FetchProfile[], property: string): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const profile of profiles) {
    const key = matchKey(profile.values[property]);
    if (key === undefined) {
      continue;
    }
    const ids = byKey.get(key) ?? [];
    ids.push(profile.id);
    byKey.set(key, ids);
  }

  return byKey;
}

function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    chunks.push(items.slice(i, i + size));
  }

  return chunks;
}

function stripCursorColumns(row: SqlRow): SqlRow {
  const { [CURSOR_VALUE]: _value, [CURSOR_TIE]: _tie, ...record } = row;

  return record;
}

/**
 * A source connector's read side for any SQL database, given a small driver. Postgres and
 * MySQL use it; a new SQL connector only writes the driver.
 */
export class SqlSource {
  constructor(private readonly driver: SqlDriver) {}

  /** Every table and view the user can read, with column types as the database names them. */
  async discover(): Promise<Catalog> {
    const rows = await this.driver.query(this.driver.catalogSql, []);
    const streams = new Map<string, Array<{ name: string; type: string }>>();
    for (const row of rows) {
      const name = String(row.stream);
      const columns = streams.get(name) ?? [];
      columns.push({ name: String(row.column), type: String(row.type) });
      streams.set(name, columns);
    }

    return { streams: [...streams].map(([name, columns]) => ({ name, columns })) };
  }

  async preview(stream: StreamOptions, limit: number): Promise<SqlRow[]> {
    const rowLimit = Math.max(0, Math.trunc(limit));

    return this.driver.query(`SELECT * FROM ${streamSource(this.driver, stream)} LIMIT ${rowLimit}`, []);
  }

  /**
   * Reads a stream in batches. With a cursor it pages by (cursor, tieBreaker) and yields the
   * state after each batch; rows whose cursor value is NULL are skipped, because no keyset
   * position can come after them. Without a cursor it streams one full read and yields no state.
   */
  async *read(ctx: ConnectorContext, req: ReadRequest<unknown, CursorState>): AsyncGenerator<SourceMessage<CursorState>> {
    const batchSize = Math.max(1, Math.trunc(req.batchSize));
    if (!req.stream.cursor) {
      for await (const records of this.driver.stream(`SELECT * FROM ${streamSource(this.driver, req.stream)}`, batchSize, ctx.signal)) {
        if (records.length > 0) {
          yield { type: 'records', records };
        }
      }

      return;
    }

    let state = req.state;
    for (;;) {
      ctx.signal.throwIfAborted();
      const rows = await this.driver.query(...this.pageSql(req.stream, state, batchSize));
      if (rows.length === 0) {
        return;
      }
      const last = rows[rows.length - 1];
      state = { value: last[CURSOR_VALUE], tieBreaker: last[CURSOR_TIE] };
      ctx.log.debug({ rows: rows.length }, 'source batch read');
      yield { type: 'records', records: rows.map(stripCursorColumns) };
      yield { type: 'state', state };
      if (rows.length < batchSize) {
        return;
      }
    }
  }

  private pageSql(stream: StreamOptions, state: CursorState | null, batchSize: number): [string, unknown[]] {
    const { driver } = this;
    const cursor = stream.cursor!;
    const column = `s.${driver.quoteIdent(cursor.column)}`;
    const tie = `s.${driver.quoteIdent(cursor.tieBreaker)}`;
    // `c > v OR (c = v AND t > w)` rather than a row comparison: MySQL only uses an index for
    // the expanded form, and it reads the same in both dialects.
    const where =
      state === null
        ? `${column} IS NOT NULL`
        : `${column} > ${driver.placeholder(1)} OR (${column} = ${driver.placeholder(2)} AND ${tie} > ${driver.placeholder(3)})`;
    const params = state === null ? [] : [state.value, state.value, state.tieBreaker];
    const sql = [
      `SELECT s.*, ${driver.castText(column)} AS ${driver.quoteIdent(CURSOR_VALUE)}, ${driver.castText(tie)} AS ${driver.quoteIdent(CURSOR_TIE)}`,
      `FROM ${streamSource(driver, stream)}`,
      `WHERE ${where}`,
      `ORDER BY ${column}, ${tie}`,
      `LIMIT ${batchSize}`,
    ].join('\n');

    return [sql, params];
  }

  /** Property values for many profiles at once: one query per kind and table, not per profile. */
  async fetchProperties(ctx: ConnectorContext, req: FetchRequest<unknown>): Promise<FetchResult> {
    const result: FetchResult = new Map();
    const byKey = indexProfiles(req.profiles, req.match.property);
    const set = (profileId: string, key: string, value: unknown) => {
      const values = result.get(profileId) ?? {};
      values[key] = value;
      result.set(profileId, values);
    };

    const columns = req.properties.filter((p) => p.kind === 'column');
    if (columns.length > 0) {
      await this.fetchColumns(req, columns, byKey, set);
    }

    const aggregates = req.properties.filter((p) => p.kind === 'aggregate');
    const groups = new Map<string, typeof aggregates>();
    for (const property of aggregates) {
      const groupKey = JSON.stringify([property.table, property.matchColumn]);
      groups.set(groupKey, [...(groups.get(groupKey) ?? []), property]);
    }
    for (const group of groups.values()) {
      await this.fetchAggregates(group, byKey, set);
    }

    const queries = req.properties.filter((p) => p.kind === 'query');
    if (queries.length > 0) {
      await this.fetchQueries(ctx, req.profiles, queries, set);
    }
    ctx.log.debug({ profiles: req.profiles.length, properties: req.properties.length }, 'properties fetched');

    return result;
  }

  private async fetchColumns(
    req: FetchRequest<unknown>,
    properties: Array<Extract<PropertyFetch, { kind: 'column' }>>,
    byKey: Map<string, string[]>,
    set: (profileId: string, key: string, value: unknown) => void,
  ): Promise<void> {
    const { driver } = this;
    const matchExpr = `s.${driver.quoteIdent(req.match.column)}`;
    const selectList = properties.map((p, i) => `s.${driver.quoteIdent(p.column)} AS ${driver.quoteIdent(`p${i}`)}`);
    const seen = new Set<string>();
    const lists = new Map<string, unknown[]>();

    for (const keys of chunk([...byKey.keys()], MATCH_CHUNK)) {
      const condition = driver.matchAny(matchExpr, keys, 1);
      const sql = `SELECT ${[`${matchExpr} AS ${driver.quoteIdent(MATCH)}`, ...selectList].join(', ')} FROM ${streamSource(driver, req.stream)} WHERE ${condition.sql}`;
      for (const row of await driver.query(sql, condition.params)) {
        for (const profileId of byKey.get(matchKey(row[MATCH]) ?? '') ?? []) {
          properties.forEach((property, i) => {
            const value = row[`p${i}`];
            const slot = `${profileId}\0${property.key}`;
            if (property.isList) {
              const values = lists.get(slot) ?? [];
              if (value !== null && value !== undefined) {
                values.push(value);
              }
              lists.set(slot, values);
              set(profileId, property.key, values);
            } else if (!seen.has(slot)) {
              // Several rows may match one profile; the first one returned wins.
              seen.add(slot);
              set(profileId, property.key, value);
            }
          });
        }
      }
    }
  }

  private async fetchAggregates(
    properties: Array<Extract<PropertyFetch, { kind: 'aggregate' }>>,
    byKey: Map<string, string[]>,
    set: (profileId: string, key: string, value: unknown) => void,
  ): Promise<void> {
    const { driver } = this;
    const { table, matchColumn } = properties[0];
    const match = driver.quoteIdent(matchColumn);
    const inner: string[] = [`t.${match} AS ${driver.quoteIdent(MATCH)}`];
    const outer: string[] = [driver.quoteIdent(MATCH)];

    properties.forEach((property, i) => {
      const alias = driver.quoteIdent(`p${i}`);
      const column = property.column ? `t.${driver.quoteIdent(property.column)}` : undefined;
      const fn = property.function;
      if (fn === 'count') {
        inner.push(`${column ?? '1'} AS ${alias}`);
        outer.push(`COUNT(${alias}) AS ${alias}`);

        return;
      }
      if (!column) {
        throw new ConfigError('CDP_PROPERTY_AGGREGATE_INVALID', `Aggregate property ${property.key} has no column to ${fn}`);
      }
      if (fn === 'most_recent' || fn === 'least_recent') {
        if (!property.sortColumn) {
          throw new ConfigError('CDP_PROPERTY_AGGREGATE_INVALID', `Aggregate property ${property.key} has no sortColumn for ${fn}`);
        }
        const sort = `t.${driver.quoteIdent(property.sortColumn)}`;
        const direction = fn === 'most_recent' ? 'DESC' : 'ASC';
        // NULL sort values go last in both dialects (Postgres would put them first on DESC).
        const order = `CASE WHEN ${sort} IS NULL THEN 1 ELSE 0 END, ${sort} ${direction}`;
        inner.push(`FIRST_VALUE(${column}) OVER (PARTITION BY t.${match} ORDER BY ${order}) AS ${alias}`);
        outer.push(`${driver.pickAny(alias)} AS ${alias}`);

        return;
      }
      inner.push(`${column} AS ${alias}`);
      outer.push(`${fn.toUpperCase()}(${alias}) AS ${alias}`);
    });

    const found = new Set<string>();
    for (const keys of chunk([...byKey.keys()], MATCH_CHUNK)) {
      const condition = driver.matchAny(`t.${match}`, keys, 1);
      const sql = [
        `SELECT ${outer.join(', ')}`,
        `FROM (SELECT ${inner.join(', ')} FROM ${quoteQualified(driver, table)} AS t WHERE ${condition.sql}) AS a`,
        `GROUP BY ${driver.quoteIdent(MATCH)}`,
      ].join('\n');
      for (const row of await driver.query(sql, condition.params)) {
        const key = matchKey(row[MATCH]) ?? '';
        found.add(key);
        for (const profileId of byKey.get(key) ?? []) {
          properties.forEach((property, i) => set(profileId, property.key, row[`p${i}`]));
        }
      }
    }

    for (const [key, profileIds] of byKey) {
      if (found.has(key)) {
        continue;
      }
      for (const profileId of profileIds) {
        properties.forEach((property) => set(profileId, property.key, property.function === 'count' ? 0 : null));
      }
    }
  }

  private async fetchQueries(
    ctx: ConnectorContext,
    profiles: FetchProfile[],
    properties: Array<Extract<PropertyFetch, { kind: 'query' }>>,
    set: (profileId: string, key: string, value: unknown) => void,
  ): Promise<void> {
    const tasks = profiles.flatMap((profile) => properties.map((property) => ({ profile, property })));
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        ctx.signal.throwIfAborted();
        const { profile, property } = tasks[next++];
        const [sql, params] = bindProfile(this.driver, property.sql, profile);
        const rows = await this.driver.query(sql, params).catch((err: unknown) => {
          throw nameQueryProperty(err, property.key);
        });
        if (rows.length === 0) {
          continue;
        }
        const firstValue = (row: SqlRow) => Object.values(row)[0];
        set(profile.id, property.key, property.isList ? rows.map(firstValue) : firstValue(rows[0]));
      }
    };

    await Promise.all(Array.from({ length: Math.min(QUERY_CONCURRENCY, tasks.length) }, worker));
  }
}

/** Says which query property a write or an invalid statement came from; other errors pass. */
function nameQueryProperty(err: unknown, key: string): unknown {
  if (!(err instanceof ConfigError)) {
    return err;
  }
  if (err.code === 'CDP_SOURCE_QUERY_NOT_READ_ONLY') {
    return new ConfigError(err.code, `Query of property "${key}" tried to write, but source statements are read-only`, { cause: err, details: { ...err.details, property: key } });
  }
  if (err.code === 'CDP_SOURCE_QUERY_INVALID') {
    return new ConfigError(err.code, `Query of property "${key}" was refused as invalid`, { cause: err, details: { ...err.details, property: key } });
  }

  return err;
}

/**
 * Turns `{{profile.<key>}}` placeholders into bound parameters. A placeholder the user wrapped
 * in single quotes loses them, since a bound value needs none; a key the profile lacks binds null.
 */
export function bindProfile(driver: SqlDriver, sql: string, profile: FetchProfile): [string, unknown[]] {
  const params: unknown[] = [];
  const text = sql.replace(PLACEHOLDER_PATTERN, (_match, quoted: string | undefined, bare: string | undefined) => {
    const value = profile.values[(quoted ?? bare)!];
    params.push(value === undefined ? null : value);

    return driver.placeholder(params.length);
  });

  return [text, params];
}

/**
 * The source options schema shared by SQL connectors: a table or a query, and an optional
 * cursor for incremental reads.
 */
export function sqlStreamOptionsSchema(tableDescription: string): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      table: { type: 'string', minLength: 1, description: tableDescription },
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
  };
}
