import type PgBoss from 'pg-boss';
import { HANDLERS } from './handlers.js';
import { bossQueue, ensureQueues, QUEUES, requestEventProcessing, requestHydration, requestOutboundDelivery, type JobDeps, type QueueName } from './index.js';
import { tick } from './tick.js';

// Imports and events feed hydration, which feeds outbound events and exports: draining in
// this order finishes in few passes.
const ORDER: QueueName[] = [QUEUES.importRun, QUEUES.processEvents, QUEUES.hydrate, QUEUES.outboundEvents, QUEUES.exportRun];

export interface DrainResult {
  jobs: number;
  failedJobs: number;
}

/**
 * Processes everything due until no job is left: queues due imports (and re-evaluates
 * relative-date groups), then fetches and runs jobs queue by queue in this process. Used by
 * `roster run`; the same handlers serve long-running workers.
 */
export async function drainUntilIdle(boss: PgBoss, base: Omit<JobDeps, 'queue'>): Promise<DrainResult> {
  await ensureQueues(boss);
  const deps: JobDeps = { ...base, queue: bossQueue(boss) };
  await tick(deps, { refreshTimeRelative: true, refreshEventWindows: true });
  // Work can wait in tables with no job asking for it (events stored while no worker ran,
  // profiles queued by apply, outbound retries come due): ask once for each; the queues keep
  // at most one waiting job, so this is cheap when there is nothing to do.
  await requestEventProcessing(deps.queue);
  await requestHydration(deps.queue);
  await requestOutboundDelivery(deps.queue);
  const result: DrainResult = { jobs: 0, failedJobs: 0 };
  let busy = true;
  while (busy) {
    busy = false;
    for (const name of ORDER) {
      for (;;) {
        const [job] = await boss.fetch<Record<string, unknown>>(name, { batchSize: 1 });
        if (!job) break;
        busy = true;
        result.jobs += 1;
        try {
          await HANDLERS[name]({ ...deps, log: deps.log.child({ queue: name, jobId: job.id }) }, job.data ?? {});
          await boss.complete(name, job.id);
        } catch (err) {
          result.failedJobs += 1;
          deps.log.error({ err, queue: name, jobId: job.id }, 'job failed');
          await boss.fail(name, job.id, { message: err instanceof Error ? err.message : String(err) });
        }
      }
    }
  }

  return result;
}
