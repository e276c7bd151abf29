import pg from 'pg';
import { AppError, ConflictError, ConfigError, TransientError } from './errors.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

// Postgres returns bigint (int8) and numeric as strings by default. Profile ids and counts
// fit comfortably in a JS number, and numeric property values are stored as double precision.
pg.types.setTypeParser(20, (value) => Number(value));

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => {});

  return pool;
}

/** Quotes an identifier for SQL text. Every identifier Roster pastes into SQL goes through here. */
export function quoteIdent(name: string): string {
  return pg.escapeIdentifier(name);
}

/** Quotes a literal for SQL text that cannot take bound parameters (view definitions). */
export function quoteLiteral(value: string): string {
  return pg.escapeLiteral(value);
}

/** Runs `fn` in a transaction and maps Postgres errors to Roster's classes. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');

    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw mapPgError(err);
  } finally {
    client.release();
  }
}

/** Turns a Postgres SQLSTATE into one of Roster's error classes; other values pass through. */
export function mapPgError(err: unknown): unknown {
  if (err instanceof AppError || !(err instanceof Error)) {
    return err;
  }
  const pgErr = err as Error & { code?: string; constraint?: string; table?: string; detail?: string };
  const details = { constraint: pgErr.constraint, table: pgErr.table, sqlstate: pgErr.code };
  switch (pgErr.code) {
    case '23505':
      return new ConflictError('CDP_DB_UNIQUE_VIOLATION', `Value already exists (constraint ${pgErr.constraint ?? 'unknown'})`, { cause: err, details });
    case '23503':
      return new ConflictError('CDP_DB_FOREIGN_KEY_VIOLATION', `Referenced row is missing or still in use (constraint ${pgErr.constraint ?? 'unknown'})`, { cause: err, details });
    case '22P02':
    case '22003':
    case '22007':
    case '22008':
      return new ConfigError('CDP_DB_INVALID_VALUE', `Invalid value for the database: ${pgErr.message}`, { cause: err, details });
    case '40001':
    case '40P01':
    case '57P01':
    case '08006':
    case '08003':
      return new TransientError('CDP_DB_TRANSIENT', `Database operation can be retried: ${pgErr.message}`, { cause: err, details });
    default:
      return err;
  }
}
