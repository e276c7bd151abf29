import PgBoss from 'pg-boss';
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

/** Creates the queues with their retry policies; safe to call on every start. */
export async function ensureQueues(boss: PgBoss): Promise<void> {
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
    if (!existing.has(name)) {
      await boss.createQueue(name, { name, policy, retryLimit, retryDelay: 5, retryBackoff: true, expireInSeconds: 3600 });
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
