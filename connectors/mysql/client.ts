import type { Connection as CallbackConnection } from 'mysql2';
import mysql from 'mysql2/promise';
import { ConfigError, TransientError, type SqlDriver, type SqlRow } from '../sdk/index.js';

export interface MysqlConfig {
  host: string;
  port?: number;
  database: string;
  user: string;
  password?: string;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** A secret-free name for the server, used in error messages. */
function describeServer(config: MysqlConfig): string {
  return `${config.host}:${config.port ?? 3306}/${config.database}`;
}

/** One pool per distinct config; `closeAll` ends them. */
export class MysqlPools {
  private readonly pools = new Map<string, mysql.Pool>();

  get(config: MysqlConfig): mysql.Pool {
    const key = JSON.stringify([config.host, config.port, config.database, config.user, config.password]);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = mysql.createPool({
        host: config.host,
        port: config.port ?? 3306,
        database: config.database,
        user: config.user,
        password: config.password ?? '',
        connectionLimit: 5,
        connectTimeout: CONNECT_TIMEOUT_MS,
        // DATETIME and TIMESTAMP come back as zone-less text ('2024-05-01 12:00:00.123456'),
        // which Roster reads as UTC; the session zone below makes TIMESTAMP text UTC as well.
        // Text also keeps microseconds that a JS Date would drop.
        dateStrings: true,
        timezone: 'Z',
        supportBigNumbers: true,
      });
      // The event hands over the callback-style connection despite the promise typings.
      // Commands queue in order on a connection, so this runs before any query of ours.
      pool.on('connection', (connection) => {
        const callbackConnection = connection as unknown as CallbackConnection;
        callbackConnection.query("SET time_zone = '+00:00'", () => {});
        // Source sessions are read-only by default as well as per statement (below).
        callbackConnection.query('SET SESSION TRANSACTION READ ONLY', () => {});
      });
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

type MysqlError = Error & { code?: string; errno?: number };

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
]);

function quotedName(message: string): string {
  return /'([^']+)'/.exec(message)?.[1] ?? 'unknown';
}

/** Turns a mysql2 error into Roster's classes, naming objects but never values. */
export function mapMysqlError(err: unknown, config: MysqlConfig): unknown {
  if (!(err instanceof Error) || err instanceof ConfigError || err instanceof TransientError) {
    return err;
  }
  const { code = '' } = err as MysqlError;
  const server = describeServer(config);
  const details = { driverCode: code };
  switch (code) {
    case 'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION':
      return new ConfigError('CDP_SOURCE_QUERY_NOT_READ_ONLY', `MySQL at ${server} refused a write: source statements are read-only`, { cause: err, details });
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
      return new ConfigError('CDP_CONNECTOR_AUTH_FAILED', `MySQL at ${server} rejected the credentials of user ${config.user}`, { cause: err, details });
    case 'ER_BAD_DB_ERROR':
      return new ConfigError('CDP_CONNECTOR_DATABASE_MISSING', `MySQL at ${server} has no such database`, { cause: err, details });
    case 'ER_NO_SUCH_TABLE':
      return new ConfigError('CDP_SOURCE_TABLE_MISSING', `MySQL at ${server} has no table ${quotedName(err.message)}`, { cause: err, details });
    case 'ER_BAD_FIELD_ERROR':
      return new ConfigError('CDP_SOURCE_COLUMN_MISSING', `MySQL at ${server} has no column ${quotedName(err.message)}`, { cause: err, details });
    case 'ER_PARSE_ERROR':
    case 'ER_WRONG_FIELD_WITH_GROUP':
      return new ConfigError('CDP_SOURCE_QUERY_INVALID', `MySQL at ${server} refused the statement as invalid (${code})`, { cause: err, details });
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_COLUMNACCESS_DENIED_ERROR':
      return new ConfigError('CDP_CONNECTOR_PERMISSION_DENIED', `MySQL at ${server} denied permission for the statement`, { cause: err, details });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError('CDP_CONNECTOR_UNREACHABLE', `MySQL host "${config.host}" does not resolve (${code})`, { cause: err, details });
    default:
      if (TRANSIENT_CODES.has(code)) {
        return new TransientError('CDP_CONNECTOR_UNAVAILABLE', `MySQL at ${server} is unavailable for now (${code})`, { cause: err, details });
      }

      return err;
  }
}

async function connect(pool: mysql.Pool, config: MysqlConfig): Promise<mysql.PoolConnection> {
  try {
    return await pool.getConnection();
  } catch (err) {
    throw mapMysqlError(err, config);
  }
}

/** Ends a statement's transaction (rolling back unless it committed) and returns the connection. */
async function finish(connection: mysql.PoolConnection, committed: boolean): Promise<void> {
  if (!committed) {
    await connection.query('ROLLBACK').catch(() => {});
  }
  connection.release();
}

/**
 * The SQL-source driver over a mysql2 pool. Statements go through `execute`, so values are
 * bound server-side as prepared-statement parameters rather than escaped into the text.
 */
export function createMysqlDriver(pool: mysql.Pool, config: MysqlConfig): SqlDriver {
  return {
    async query(sql, params) {
      const connection = await connect(pool, config);
      // An explicit read-only transaction per statement: the session setting could be changed
      // by a statement, this cannot. A write fails with ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
      let done = false;
      try {
        await connection.query('START TRANSACTION READ ONLY');
        const [rows] = await connection.execute(sql, params as Array<string | number | null>);
        await connection.query('COMMIT');
        done = true;

        return rows as SqlRow[];
      } catch (err) {
        throw mapMysqlError(err, config);
      } finally {
        await finish(connection, done);
      }
    },
    async *stream(sql, batchSize, signal) {
      const connection = await connect(pool, config);
      let done = false;
      try {
        await connection.query('START TRANSACTION READ ONLY');
      } catch (err) {
        await finish(connection, false);
        throw mapMysqlError(err, config);
      }
      // The underlying callback connection streams rows with backpressure; the promise API
      // would buffer the whole result.
      const rows = (connection.connection as unknown as CallbackConnection).query(sql).stream({ highWaterMark: batchSize });
      try {
        let batch: SqlRow[] = [];
        for await (const row of rows) {
          signal.throwIfAborted();
          batch.push(row as SqlRow);
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
        if (batch.length > 0) {
          yield batch;
        }
        await connection.query('COMMIT');
        done = true;
      } catch (err) {
        throw mapMysqlError(err, config);
      } finally {
        rows.destroy();
        await finish(connection, done);
      }
    },
    quoteIdent: (name) => `\`${name.replaceAll('`', '``')}\``,
    placeholder: () => '?',
    matchAny: (expr, values) => ({ sql: `${expr} IN (${values.map(() => '?').join(', ')})`, params: values }),
    castText: (expr) => `CAST(${expr} AS CHAR)`,
    // ANY_VALUE is MySQL-only; every value in the group is equal, so MAX picks the same one.
    pickAny: (expr) => `MAX(${expr})`,
    catalogSql: `SELECT table_name AS stream, column_name AS \`column\`, data_type AS type
FROM information_schema.columns
WHERE table_schema = DATABASE()
ORDER BY table_name, ordinal_position`,
  };
}
