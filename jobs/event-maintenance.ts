import type { Pool, PoolClient } from '../lib/db.js';
import { quoteIdent } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Daily partitions exist for today and this many days ahead. */
const DAYS_AHEAD = 7;
/** Rows deleted per statement when purging, so no delete holds locks for long. */
const DELETE_CHUNK = 10_000;
/**
 * How long a partition change may wait for its lock. Attaching and detaching need a lock that
 * conflicts with inserts; a change stuck behind a long analyst query would queue every insert
 * behind it, so it gives up quickly and the next run tries again.
 */
const LOCK_TIMEOUT = '2s';
// Any constant shared by every process maintaining the same database.
const ADVISORY_LOCK_KEY = 7_310_214;

export interface EventMaintenanceOptions {
  now: Date;
  retentionDays: number;
  dedupDays: number;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

export interface EventMaintenanceResult {
  created: string[];
  dropped: string[];
  /** Days left to the DEFAULT partition because it already holds their rows. */
  skipped: string[];
  messageIdsDeleted: number;
  defaultRowsDeleted: number;
}

function dayStart(ms: number): Date {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS);
}

function partitionName(day: Date): string {
  return `events_${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** Repeats a bounded DELETE until it deletes less than a chunk. */
async function deleteInChunks(client: PoolClient, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await client.query(sql, params);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < DELETE_CHUNK) return total;
  }
}

async function createPartition(client: PoolClient, day: Date, log: EventMaintenanceOptions['log']): Promise<'created' | 'skipped'> {
  const name = partitionName(day);
  const from = day.toISOString();
  const to = new Date(day.getTime() + DAY_MS).toISOString();
  // Attaching a range that rows of the DEFAULT partition fall in fails; those rows stay there.
  const { rowCount } = await client.query(
    `SELECT 1
     FROM roster_core.events_default
     WHERE received_at >= $1 AND received_at < $2
     LIMIT 1`,
    [from, to],
  );
  if (rowCount) {
    log.warn({ partition: name, from }, 'default event partition holds rows of this day; leaving the day to it');

    return 'skipped';
  }
  // CREATE TABLE ... PARTITION OF would take an ACCESS EXCLUSIVE lock on roster_core.events and
  // block inserts. Creating the table alone and attaching it takes only SHARE UPDATE EXCLUSIVE
  // on the parent (https://www.postgresql.org/docs/15/sql-altertable.html#SQL-ALTERTABLE-ATTACH-PARTITION).
  // The CHECK constraint matching the bounds lets ATTACH skip validating the new table.
  const table = `roster_core.${quoteIdent(name)}`;
  await client.query('BEGIN');
  try {
    await client.query(`CREATE TABLE ${table} (LIKE roster_core.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    await client.query(
      `ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(`${name}_bounds_check`)}
       CHECK (received_at IS NOT NULL AND received_at >= '${from}' AND received_at < '${to}')`,
    );
    await client.query(`ALTER TABLE roster_core.events ATTACH PARTITION ${table} FOR VALUES FROM ('${from}') TO ('${to}')`);
    await client.query(`ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(`${name}_bounds_check`)}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }

  return 'created';
}

/**
 * Keeps roster_core.events healthy: daily partitions for today and the week ahead, partitions
 * older than the retention period dropped, old rows of the DEFAULT partition deleted, and
 * messageIds older than the de-duplication window forgotten. Safe to call from several
 * processes: one runs, the others return at once with nothing done.
 *
 * Old partitions are detached without CONCURRENTLY because Postgres 15 refuses
 * `DETACH PARTITION ... CONCURRENTLY` while a DEFAULT partition exists. A plain DETACH and DROP
 * hold an ACCESS EXCLUSIVE lock on roster_core.events for a moment (no data is scanned or
 * moved); LOCK_TIMEOUT keeps that moment short even behind a long query.
 */
export async function maintainEventPartitions(pool: Pool, options: EventMaintenanceOptions): Promise<EventMaintenanceResult> {
  const result: EventMaintenanceResult = { created: [], dropped: [], skipped: [], messageIdsDeleted: 0, defaultRowsDeleted: 0 };
  const client = await pool.connect();
  try {
    const { rows: locked } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [ADVISORY_LOCK_KEY]);
    if (!locked[0].ok) return result;
    try {
      await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
      const { rows } = await client.query<{ name: string }>(
        `SELECT c.relname AS name
         FROM pg_inherits AS i
         JOIN pg_class AS c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'roster_core.events'::regclass`,
      );
      const existing = new Set(rows.map((row) => row.name));
      const today = dayStart(options.now.getTime());

      for (let offset = 0; offset <= DAYS_AHEAD; offset += 1) {
        const day = new Date(today.getTime() + offset * DAY_MS);
        const name = partitionName(day);
        if (existing.has(name)) continue;
        const outcome = await createPartition(client, day, options.log);
        (outcome === 'created' ? result.created : result.skipped).push(name);
      }

      const keepFrom = new Date(options.now.getTime() - options.retentionDays * DAY_MS);
      for (const name of [...existing].sort()) {
        const match = /^events_(\d{4})(\d{2})(\d{2})$/.exec(name);
        if (!match) continue;
        const dayEnd = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) + DAY_MS;
        if (dayEnd > keepFrom.getTime()) continue;
        const table = `roster_core.${quoteIdent(name)}`;
        await client.query('BEGIN');
        try {
          await client.query(`ALTER TABLE roster_core.events DETACH PARTITION ${table}`);
          await client.query(`DROP TABLE ${table}`);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
        result.dropped.push(name);
      }

      result.defaultRowsDeleted = await deleteInChunks(
        client,
        `DELETE FROM roster_core.events_default
         WHERE ctid IN (SELECT ctid FROM roster_core.events_default WHERE received_at < $1 LIMIT ${DELETE_CHUNK})`,
        [keepFrom],
      );
      result.messageIdsDeleted = await deleteInChunks(
        client,
        `DELETE FROM roster_core.event_message_ids
         WHERE message_id IN (
           SELECT message_id FROM roster_core.event_message_ids WHERE received_at < $1 LIMIT ${DELETE_CHUNK}
         )`,
        [new Date(options.now.getTime() - options.dedupDays * DAY_MS)],
      );
    } finally {
      await client.query('RESET lock_timeout');
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  options.log.info(
    { created: result.created.length, dropped: result.dropped.length, skipped: result.skipped.length, messageIdsDeleted: result.messageIdsDeleted },
    'event partitions maintained',
  );

  return result;
}
