import { acquireRunLease, releaseRunLease } from '../sql/run-queries.js';
import type { JobDeps } from './index.js';

/**
 * Runs `work` while holding the run's lease on a connection of its own. When another process
 * holds the lease, the run is already being worked on and `work` is not called.
 */
export async function withRunLease(deps: JobDeps, runId: number, work: () => Promise<void>): Promise<void> {
  const client = await deps.pool.connect();
  try {
    if (!(await acquireRunLease(client, runId))) {
      deps.log.info({ runId }, 'run is held by another process');
      return;
    }
    try {
      await work();
    } finally {
      await releaseRunLease(client, runId);
    }
  } finally {
    client.release();
  }
}
