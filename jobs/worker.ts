import type PgBoss from 'pg-boss';
import { HANDLERS } from './handlers.js';
import { bossQueue, ensureQueues, QUEUES, type JobDeps } from './index.js';
import { tick } from './tick.js';

export interface Worker {
  stop(): Promise<void>;
}

const TICK_MS = 5_000;
const TIME_RELATIVE_EVERY_MS = 60_000;

/**
 * Starts pg-boss workers for every queue and a scheduler tick. Several workers may run
 * against one database; runs and queue rows are claimed with locks.
 */
export async function startWorker(boss: PgBoss, base: Omit<JobDeps, 'queue'>): Promise<Worker> {
  await ensureQueues(boss);
  const deps: JobDeps = { ...base, queue: bossQueue(boss) };
  boss.on('error', (err) => deps.log.error({ err }, 'job queue error'));
  for (const name of Object.values(QUEUES)) {
    await boss.work<Record<string, unknown>>(name, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]) => {
      const log = deps.log.child({ queue: name, jobId: job.id });
      await HANDLERS[name]({ ...deps, log }, job.data ?? {});
    });
  }
  let lastTimeRelative = 0;
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    const refreshTimeRelative = Date.now() - lastTimeRelative >= TIME_RELATIVE_EVERY_MS;
    tick(deps, { refreshTimeRelative })
      .then(() => {
        if (refreshTimeRelative) lastTimeRelative = Date.now();
      })
      .catch((err: unknown) => deps.log.error({ err }, 'scheduler tick failed'))
      .finally(() => {
        ticking = false;
      });
  }, TICK_MS);
  deps.log.info({ queues: Object.values(QUEUES) }, 'worker started');

  return {
    async stop() {
      clearInterval(timer);
      await boss.stop({ graceful: true, wait: true, timeout: 30_000 });
    },
  };
}
