import { runExport } from './export-run.js';
import { runHydration } from './hydrate.js';
import { runImport } from './import-run.js';
import { sendOutboundEvents } from './outbound-events.js';
import { processPendingEvents } from './process-events.js';
import { QUEUES, type JobDeps, type QueueName } from './index.js';

/** The handler of each queue. Each takes its job's data and does one unit of work. */
export const HANDLERS: Record<QueueName, (deps: JobDeps, data: Record<string, unknown>) => Promise<unknown>> = {
  [QUEUES.importRun]: (deps, data) => runImport(deps, Number(data.runId)),
  [QUEUES.processEvents]: (deps) => processPendingEvents(deps),
  [QUEUES.hydrate]: (deps) => runHydration(deps),
  [QUEUES.outboundEvents]: (deps) => sendOutboundEvents(deps),
  [QUEUES.exportRun]: (deps, data) => runExport(deps, Number(data.runId)),
};
