import type pg from 'pg';
import PgBoss from 'pg-boss';
import { InternalError } from '../lib/errors.js';
import type { RosterConfig } from '../lib/config.js';
import type { Pool, Queryable } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import { createRun } from '../sql/run-queries.js';

/** Queue names. Jobs move runs and batches; per-profile work lives in tables. */
export const QUEUES = {
  importRun: 'roster-import-run',
  processEvents: 'roster-process-events',
  hydrate: 'roster-hydrate',
  outboundEvents: 'roster-outbound-events',
  exportRun: 'roster-export-run',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The pg-boss schema inside Roster's database. */
export const JOBS_SCHEMA = 'roster_jobs';

/** Sends a job; implemented by pg-boss in workers and in `roster run`. */
export interface JobQueue {
  send(queue: QueueName, data: Record<string, unknown>): Promise<void>;
}

/** What every job handler gets. */
export interface JobDeps {
  pool: Pool;
  log: Logger;
  config: RosterConfig;
  queue: JobQueue;
}

export function createBoss(databaseUrl: string): PgBoss {
  return new PgBoss({ connectionString: databaseUrl, schema: JOBS_SCHEMA, max: 4 });
}

/** Any value fits, as long as it is ours alone; `ensureQueues` holds it while it creates queues. */
const QUEUE_CREATION_LOCK = 'roster.ensure_queues';

/** SQLSTATEs of a queue another process created at the same moment: duplicate table, key. */
const ALREADY_EXISTS = new Set(['42P07', '23505']);

/**
 * Creates the queues with their retry policies; safe to call on every start, from many
 * processes at once. pg-boss's `create_queue` inserts the queue row and then creates its
 * partition with foreign keys, so two of them on a fresh database deadlock on each other
 * (two `roster run` at once). A session advisory lock, on a client of pg-boss's own pool,
 * makes them take turns; a queue that appears anyway counts as created.
 */
export async function ensureQueues(boss: PgBoss): Promise<void> {
  const { pool } = boss.getDb() as PgBoss.Db & { pool?: pg.Pool };
  if (!pool) {
    throw new InternalError('CDP_INTERNAL', 'pg-boss was not started before its queues were ensured');
  }
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [QUEUE_CREATION_LOCK]);
    try {
      await createMissingQueues(boss);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [QUEUE_CREATION_LOCK]);
    }
  } finally {
    client.release();
  }
}

async function createMissingQueues(boss: PgBoss): Promise<void> {
  const existing = new Set((await boss.getQueues()).map((queue) => queue.name));
  const policies: Array<{ name: QueueName; policy: PgBoss.QueuePolicy; retryLimit: number }> = [
    { name: QUEUES.importRun, policy: 'standard', retryLimit: 2 },
    // One hydration job waiting is enough: it drains the whole hydration queue table.
    { name: QUEUES.hydrate, policy: 'stately', retryLimit: 5 },
    // Likewise for events: one job drains every pending event, and one sends every ready one.
    { name: QUEUES.processEvents, policy: 'stately', retryLimit: 5 },
    { name: QUEUES.outboundEvents, policy: 'stately', retryLimit: 5 },
    { name: QUEUES.exportRun, policy: 'standard', retryLimit: 2 },
  ];
  for (const { name, policy, retryLimit } of policies) {
    if (existing.has(name)) {
      continue;
    }
    try {
      await boss.createQueue(name, { name, policy, retryLimit, retryDelay: 5, retryBackoff: true, expireInSeconds: 3600 });
    } catch (err) {
      // A process without this lock (an older Roster, a pg-boss maintenance) may still win.
      if (!ALREADY_EXISTS.has((err as { code?: string }).code ?? '') || !(await boss.getQueue(name))) {
        throw err;
      }
    }
  }
}

export function bossQueue(boss: PgBoss): JobQueue {
  return {
    async send(queue, data) {
      await boss.send(queue, data);
    },
  };
}

/** Creates an import run for a source (unless one is unfinished) and queues it. */
export async function requestImportRun(db: Queryable, queue: JobQueue, sourceId: number, trigger: string): Promise<number> {
  const { run, isNew } = await createRun(db, { kind: 'import', objectId: sourceId, trigger });
  if (isNew) {
    await queue.send(QUEUES.importRun, { runId: run.id });
  }

  return run.id;
}

/** Creates an export run for a destination (unless one is unfinished) and queues it. */
export async function requestExportRun(db: Queryable, queue: JobQueue, destinationId: number, trigger: string): Promise<number> {
  const { run, isNew } = await createRun(db, { kind: 'export', objectId: destinationId, trigger });
  if (isNew) {
    await queue.send(QUEUES.exportRun, { runId: run.id });
  }

  return run.id;
}

/** Asks every destination for an export run; each diff finds out whether it has anything to send. */
export async function requestExportRunsForAll(db: Queryable, queue: JobQueue, trigger: string): Promise<void> {
  const { rows } = await db.query<{ id: number }>('SELECT id FROM roster_core.destinations ORDER BY id');
  for (const { id } of rows) {
    await requestExportRun(db, queue, id, trigger);
  }
}

export async function requestHydration(queue: JobQueue): Promise<void> {
  await queue.send(QUEUES.hydrate, {});
}

/** Asks for the pending inbound events to be resolved to profiles. */
export async function requestEventProcessing(queue: JobQueue): Promise<void> {
  await queue.send(QUEUES.processEvents, {});
}

/** Asks for ready outbound events to be delivered. */
export async function requestOutboundDelivery(queue: JobQueue): Promise<void> {
  await queue.send(QUEUES.outboundEvents, {});
}
