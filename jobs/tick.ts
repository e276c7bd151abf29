import { CronExpressionParser } from 'cron-parser';
import { withTransaction } from '../lib/db.js';
import { queueWindowedEventProfiles } from '../sql/event-property-queries.js';
import { recomputeTimeRelativeGroups } from '../sql/group-membership.js';
import { abandonStaleRuns } from '../sql/run-queries.js';
import { maintainEventPartitions } from './event-maintenance.js';
import { requestExportRun, requestExportRunsForAll, requestHydration, requestImportRun, type JobDeps } from './index.js';

/** A run silent for this long is considered dead (its worker was killed). */
export const STALE_RUN_MS = 10 * 60 * 1000;
/** Export retries after failed runs back off from 30 s, doubling, up to an hour. */
const EXPORT_RETRY_BASE_MS = 30_000;
const EXPORT_RETRY_MAX_MS = 60 * 60 * 1000;
/** Event partitions and message ids are looked after about once an hour per process. */
const EVENT_MAINTENANCE_EVERY_MS = 60 * 60 * 1000;
let lastEventMaintenanceMs = 0;
/** Event properties with a `days` window age without new events; they are refreshed hourly. */
const EVENT_WINDOW_REFRESH_EVERY_MS = 60 * 60 * 1000;
let lastEventWindowRefreshMs = 0;

export function nextRunAt(schedule: { intervalMs: number | null; cron: string | null }, from: Date): Date | null {
  if (schedule.intervalMs) {
    return new Date(from.getTime() + schedule.intervalMs);
  }
  if (schedule.cron) {
    return CronExpressionParser.parse(schedule.cron, { currentDate: from, tz: 'UTC' }).next().toDate();
  }

  return null;
}

/** Queues an import run for every source whose schedule is due, and moves its next time on. */
async function queueDueImports(deps: JobDeps, now: Date): Promise<number> {
  return withTransaction(deps.pool, async (client) => {
    const { rows } = await client.query<{ id: number; intervalMs: number | null; cron: string | null }>(
      `SELECT id, schedule_interval_ms AS "intervalMs", schedule_cron AS cron
       FROM roster_core.sources
       WHERE next_run_at IS NOT NULL AND next_run_at <= $1
       ORDER BY next_run_at
       FOR UPDATE SKIP LOCKED`,
      [now],
    );
    for (const source of rows) {
      await requestImportRun(client, deps.queue, source.id, 'schedule');
      await client.query('UPDATE roster_core.sources SET next_run_at = $2 WHERE id = $1', [source.id, nextRunAt(source, now)]);
    }

    return rows.length;
  });
}

/** Destinations whose last export failed get another run once their backoff has passed. */
async function retryFailedExports(deps: JobDeps): Promise<number> {
  const { rows } = await deps.pool.query<{ destinationId: number }>(
    `WITH recent AS (
       SELECT destination_id, status, finished_at,
              row_number() OVER (PARTITION BY destination_id ORDER BY id DESC) AS age
       FROM roster_core.runs
       WHERE kind = 'export'
     ),
     failing AS (
       SELECT destination_id, count(*) AS failures, max(finished_at) AS last_failure
       FROM recent AS r
       WHERE status = 'failed'
         AND NOT EXISTS (
           SELECT 1 FROM recent AS ok
           WHERE ok.destination_id = r.destination_id AND ok.status <> 'failed' AND ok.age < r.age
         )
       GROUP BY destination_id
     )
     SELECT destination_id AS "destinationId"
     FROM failing
     WHERE last_failure + make_interval(secs => least($1::double precision * power(2, failures - 1), $2::double precision) / 1000) <= now()`,
    [EXPORT_RETRY_BASE_MS, EXPORT_RETRY_MAX_MS],
  );
  for (const { destinationId } of rows) {
    await requestExportRun(deps.pool, deps.queue, destinationId, 'retry');
  }

  return rows.length;
}

export interface TickResult {
  importsQueued: number;
  exportsRetried: number;
  abandoned: number;
}

/**
 * The scheduler's heartbeat: abandons dead runs, queues due imports and export retries, and
 * (when asked) re-evaluates groups whose rules use relative dates. Safe to run from several
 * workers at once.
 */
export async function tick(
  deps: JobDeps,
  options: { now?: Date; refreshTimeRelative?: boolean; refreshEventWindows?: boolean } = {},
): Promise<TickResult> {
  const now = options.now ?? new Date();
  const abandoned = await abandonStaleRuns(deps.pool, STALE_RUN_MS);
  const importsQueued = await queueDueImports(deps, now);
  const exportsRetried = await retryFailedExports(deps);
  if (now.getTime() - lastEventMaintenanceMs >= EVENT_MAINTENANCE_EVERY_MS) {
    lastEventMaintenanceMs = now.getTime();
    await maintainEventPartitions(deps.pool, { now, retentionDays: deps.config.eventRetentionDays, dedupDays: deps.config.eventDedupDays, log: deps.log });
  }
  // The refresh keeps its own watermark, so running it more or less often never misses a profile.
  if (options.refreshEventWindows || now.getTime() - lastEventWindowRefreshMs >= EVENT_WINDOW_REFRESH_EVERY_MS) {
    lastEventWindowRefreshMs = now.getTime();
    if ((await queueWindowedEventProfiles(deps.pool)) > 0) await requestHydration(deps.queue);
  }
  if (options.refreshTimeRelative) {
    const groups = await withTransaction(deps.pool, (client) => recomputeTimeRelativeGroups(client));
    if (groups.some((group) => group.entered + group.exited > 0)) {
      await requestExportRunsForAll(deps.pool, deps.queue, 'time_passing');
    }
  }

  return { importsQueued, exportsRetried, abandoned };
}
