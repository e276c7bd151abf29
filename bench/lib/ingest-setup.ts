// Shared by the ingestion benchmarks: a database with today's event partitions, a write key and
// the server in a child process; plus the plain-table insert ceiling used as a reference.
import { randomBytes } from 'node:crypto';
import type { Pool } from '../../lib/db.js';
import { maintainEventPartitions } from '../../jobs/event-maintenance.js';
import { eventRowJson, insertEvents, type EventRow } from '../../sql/event-queries.js';
import { createWriteKey } from '../../sql/write-keys.js';
import type { BenchContext } from './context.js';
import type { BenchDatabase } from './database.js';
import { explainProductQueries } from './explain.js';
import { startServerChild, type ServerChild } from './server-child.js';

export async function prepareIngestion(ctx: BenchContext, db: BenchDatabase, options: { pump?: boolean } = {}): Promise<{ server: ServerChild; writeKey: string }> {
  await maintainEventPartitions(db.pool, { now: new Date(), retentionDays: 90, dedupDays: 7, log: ctx.log });
  const { key } = await createWriteKey(db.pool, 'bench');
  // The delivery benchmark keeps one process: its pump and server share it, as with the default.
  const processes = options.pump ? 1 : ctx.httpProcesses;
  const server = await startServerChild({ databaseUrl: db.url, pump: options.pump, cpuProfDir: ctx.evidenceDir, processes });

  return { server, writeKey: key };
}

/** A run-unique prefix for messageIds, so two runs never de-duplicate each other. */
export function messageIdPrefix(): string {
  return randomBytes(4).toString('hex');
}

export async function countEvents(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.events');

  return rows[0].n;
}

/**
 * Rows per second that `clients` connections of this process get into a plain table (no
 * indexes but the key, no de-duplication) with multi-row inserts of `rowsPerStatement`.
 */
export async function measurePlainInsertCeiling(pool: Pool, options: { durationS: number; clients: number; rowsPerStatement: number }): Promise<number> {
  await pool.query(
    `CREATE TABLE bench_plain_events (
       id bigserial PRIMARY KEY,
       message_id text NOT NULL,
       type text NOT NULL,
       event text,
       user_id text,
       properties jsonb NOT NULL,
       received_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  const prefix = messageIdPrefix();
  const deadline = performance.now() + options.durationS * 1000;
  const startedAt = performance.now();
  let inserted = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const ids: string[] = [];
      const users: string[] = [];
      const props: string[] = [];
      for (let i = 0; i < options.rowsPerStatement; i += 1) {
        next += 1;
        ids.push(`${prefix}-${next}`);
        users.push(`u${next % 10_000}`);
        props.push(`{"total":${next % 500},"sku":"A-${next % 97}"}`);
      }
      await pool.query(
        `INSERT INTO bench_plain_events (message_id, type, event, user_id, properties)
         SELECT m, 'track', 'Order Completed', u, p::jsonb
         FROM unnest($1::text[], $2::text[], $3::text[]) AS t (m, u, p)`,
        [ids, users, props],
      );
      inserted += options.rowsPerStatement;
    }
  };
  await Promise.all(Array.from({ length: options.clients }, worker));
  const elapsedS = (performance.now() - startedAt) / 1000;
  await pool.query('DROP TABLE bench_plain_events');

  return inserted / elapsedS;
}

/** One Segment track event, as a body pattern item (see BodyPattern): a new messageId each time. */
export function trackEventPattern(messageIdPrefix: string): string {
  return `{"type":"track","userId":"u{n%10000}","event":"Order Completed","messageId":"${messageIdPrefix}-{n}","properties":{"total":{n%500},"sku":"A-{n%97}"}}`;
}

/** EXPLAIN ANALYZE of the event writer's statement for `count` new events (rolled back). */
export async function explainEventInsert(pool: Pool, count: number): Promise<string> {
  const now = new Date().toISOString();
  const prefix = messageIdPrefix();
  const rows: EventRow[] = Array.from({ length: count }, (_, i) => ({
    message_id: `${prefix}-explain-${i}`,
    type: 'track',
    event: 'Order Completed',
    user_id: `u${i}`,
    anonymous_id: null,
    previous_id: null,
    group_id: null,
    properties: { total: i % 500, sku: `A-${i % 97}` },
    traits: {},
    context: {},
    write_key_id: null,
    occurred_at: now,
    received_at: now,
  }));
  const plans = await explainProductQueries(pool, /WITH input AS/, (client) =>
    insertEvents(client, rows.map((row) => ({ json: eventRowJson(row), messageId: row.message_id }))),
  );

  return plans.join('\n\n');
}
