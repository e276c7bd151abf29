import pg from 'pg';
import { ConfigError, TransientError, type SqlDriver, type SqlRow } from '../sdk/index.js';

export interface PostgresConfig {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: boolean;
  connectionString?: string;
}

const CONNECT_TIMEOUT_MS = 10_000;
const OID = { int8: 20, date: 1082, timestamp: 1114 } as const;

// Parsers for this connector's pools only; the global pg.types belong to Roster's own pool.
// int8 (bigint, count(*)) becomes a number when it fits exactly; numeric stays a numeric string.
// `timestamp` and `date` carry no zone, so they stay text instead of being read as local time.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === OID.int8) {
      return (value: string) => {
        const n = Number(value);

        return Number.isSafeInteger(n) ? n : value;
      };
    }
    if (oid === OID.timestamp || oid === OID.date) {
      return (value: string) => value;
    }

    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** A short, secret-free name for the server, used in error messages. */
export function describeServer(config: PostgresConfig): string {
  if (config.connectionString) {
    try {
      const url = new URL(config.connectionString);

      return `${url.hostname}:${url.port || 5432}${url.pathname}`;
    } catch {
      return 'the configured server';
    }
  }

  return `${config.host}:${config.port ?? 5432}/${config.database}`;
}

/** The host alone, for messages about name resolution. */
function describeHost(config: PostgresConfig): string {
  if (config.connectionString) {
    try {
      return new URL(config.connectionString).hostname || 'localhost';
    } catch {
      return '(unparsable connection string)';
    }
  }

  return config.host ?? 'localhost';
}

/**
 * One pool per distinct config, so repeated syncs reuse connections; `closeAll` ends them.
 * A source's pools are `readOnly`: every session starts with `default_transaction_read_only`
 * on, so a stray autocommit statement cannot write either. Destinations need their own
 * instance, since the cache key is the config alone.
 */
export class PostgresPools {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(private readonly options: { readOnly?: boolean } = {}) {}

  get(config: PostgresConfig): pg.Pool {
    const key = JSON.stringify([config.connectionString, config.host, config.port, config.database, config.user, config.password, config.ssl]);
    let pool = this.pools.get(key);
    if (!pool) {
      const connection = config.connectionString
        ? { connectionString: config.connectionString }
        : { host: config.host, port: config.port ?? 5432, database: config.database, user: config.user, password: config.password ?? '', ssl: config.ssl ? true : undefined };
      const options = this.options.readOnly ? { options: '-c default_transaction_read_only=on' } : {};
      pool = new pg.Pool({ ...connection, ...options, max: 5, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'roster', types });
      // An idle client losing its connection must not crash the process; the next query reports it.
      pool.on('error', () => {});
      this.pools.set(key, pool);
    }

    return pool;
  }

  async closeAll(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }
}

type PgError = Error & { code?: string; table?: string; column?: string };

const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001|40P01)/;
const TRANSIENT_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

function quotedName(message: string, kind: 'relation' | 'column'): string {
  return new RegExp(`${kind} "?([^"\\s]+)"? does not exist`).exec(message)?.[1] ?? 'unknown';
}

/**
 * Turns a pg error into Roster's classes. Messages name the server, table or column only:
 * Postgres messages can quote the offending value, which may be record data.
 */
export function mapPostgresError(err: unknown, config: PostgresConfig): unknown {
  if (!(err instanceof Error) || err instanceof ConfigError || err instanceof TransientError) {
    return err;
  }
  const pgErr = err as PgError;
  const code = pgErr.code ?? '';
  const server = describeServer(config);
  const details = { sqlstate: pgErr.code };
  if (code === '28P01' || code === '28000') {
    return new ConfigError('CDP_CONNECTOR_AUTH_FAILED', `Postgres at ${server} rejected the credentials of user ${config.user ?? '(from connection string)'}`, { cause: err, details });
  }
  if (code === '3D000') {
    return new ConfigError('CDP_CONNECTOR_DATABASE_MISSING', `Postgres at ${server} has no such database`, { cause: err, details });
  }
  if (code === '42P01') {
    return new ConfigError('CDP_SOURCE_TABLE_MISSING', `Postgres at ${server} has no table ${quotedName(err.message, 'relation')}`, { cause: err, details });
  }
  if (code === '42703') {
    return new ConfigError('CDP_SOURCE_COLUMN_MISSING', `Postgres at ${server} has no column ${quotedName(err.message, 'column')}`, { cause: err, details });
  }
  if (code === '25006') {
    return new ConfigError('CDP_SOURCE_QUERY_NOT_READ_ONLY', `Postgres at ${server} refused a write: source statements are read-only`, { cause: err, details });
  }
  if (code === '42501') {
    return new ConfigError('CDP_CONNECTOR_PERMISSION_DENIED', `Postgres at ${server} denied permission for the statement`, { cause: err, details });
  }
  if (code.startsWith('42') || code === '0A000') {
    return new ConfigError('CDP_SOURCE_QUERY_INVALID', `Postgres at ${server} refused the statement as invalid (SQLSTATE ${code})`, { cause: err, details });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ConfigError('CDP_CONNECTOR_UNREACHABLE', `Postgres host "${describeHost(config)}" does not resolve (${code})`, { cause: err, details });
  }
  if (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_SOCKET.has(code) || /timeout|terminated/i.test(err.message)) {
    const reason = code || (/timeout/i.test(err.message) ? 'ETIMEDOUT' : 'connection terminated');

    return new TransientError('CDP_CONNECTOR_UNAVAILABLE', `Postgres at ${server} is unavailable for now (${reason})`, { cause: err, details });
  }

  return err;
}

/**
 * A connection in an explicit read-only transaction. Every source statement runs in one: the
 * session default alone could be switched off by one statement (set_config) for every later
 * statement on the connection, and the extended protocol refuses several statements in one
 * text, so a `COMMIT; DELETE ...` cannot leave the transaction either.
 */
async function beginReadOnly(pool: pg.Pool, config: PostgresConfig): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw mapPostgresError(err, config);
  }
  try {
    await client.query('BEGIN READ ONLY');
  } catch (err) {
    client.release(true);
    throw mapPostgresError(err, config);
  }

  return client;
}

/** Rolls back what was not committed and returns the connection to the pool. */
async function endReadOnly(client: pg.PoolClient, committed: boolean): Promise<void> {
  if (!committed) {
    await client.query('ROLLBACK').catch(() => {});
  }
  client.release();
}

/** The SQL-source driver over a pg pool. */
export function createPostgresDriver(pool: pg.Pool, config: PostgresConfig): SqlDriver {
  return {
    async query(sql, params) {
      const client = await beginReadOnly(pool, config);
      let committed = false;
      try {
        const { rows } = await client.query({ text: sql, values: params, queryMode: 'extended' } as pg.QueryConfig);
        await client.query('COMMIT');
        committed = true;

        return rows as SqlRow[];
      } catch (err) {
        throw mapPostgresError(err, config);
      } finally {
        await endReadOnly(client, committed);
      }
    },
    async *stream(sql, batchSize, signal) {
      // A server-side cursor streams a full read without holding the table in memory; it
      // needs a transaction on one dedicated connection.
      const client = await beginReadOnly(pool, config);
      let committed = false;
      try {
        await client.query({ text: `DECLARE roster_read NO SCROLL CURSOR FOR ${sql}`, queryMode: 'extended' } as pg.QueryConfig);
        for (;;) {
          signal.throwIfAborted();
          const { rows } = await client.query(`FETCH FORWARD ${batchSize} FROM roster_read`);
          if (rows.length > 0) {
            yield rows as SqlRow[];
          }
          if (rows.length < batchSize) {
            break;
          }
        }
        await client.query('COMMIT');
        committed = true;
      } catch (err) {
        throw mapPostgresError(err, config);
      } finally {
        await endReadOnly(client, committed);
      }
    },
    quoteIdent: (name) => pg.escapeIdentifier(name),
    placeholder: (index) => `$${index}`,
    matchAny: (expr, values, firstIndex) => ({ sql: `${expr} = ANY($${firstIndex})`, params: [values] }),
    castText: (expr) => `CAST(${expr} AS text)`,
    pickAny: (expr) => `(array_agg(${expr}))[1]`,
    catalogSql: `SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END AS stream,
  column_name AS column, data_type AS type
FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY table_schema, table_name, ordinal_position`,
  };
}
