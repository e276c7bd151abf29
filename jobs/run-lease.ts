import { acquireRunLease, releaseRunLease } from '../sql/run-queries.js';
import type { JobDeps } from './index.js';

/**
 * Runs `work` while holding the run's lease on a connection of its own. When another process
 * holds the lease, the run is already being worked on and `work` is not called.
 */
export async function withRunLease(deps: JobDeps, runId: number, work: () => Promise<void>): Promise<void> {
  const client = await deps.pool.connect();
  // The lease connection sits idle while the run works. pg emits 'error' on a checked-out
  // client whose connection drops, and an unheard 'error' would end the process: log it
  // instead. The lease is then gone, so a later tick treats the run as abandoned.
  let lost: unknown;
  const onError = (err: unknown) => {
    lost = err;
    deps.log.warn({ err, runId }, 'run lease connection lost');
  };
  client.on('error', onError);
  try {
    if (!(await acquireRunLease(client, runId))) {
      deps.log.info({ runId }, 'run is held by another process');
      return;
    }
    try {
      await work();
    } finally {
      if (lost === undefined) {
        await releaseRunLease(client, runId).catch((err: unknown) => onError(err));
      }
    }
  } finally {
    client.off('error', onError);
    client.release(lost === undefined ? undefined : true);
  }
}
