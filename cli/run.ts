import type { Command } from 'commander';
import { ConfigError } from '../lib/errors.js';
import { createBoss, requestExportRun, requestImportRun, bossQueue, ensureQueues } from '../jobs/index.js';
import { drainUntilIdle } from '../jobs/drain.js';
import { findObjectId } from '../sql/object-queries.js';
import { abandonStaleRuns, loadRun } from '../sql/run-queries.js';
import { STALE_RUN_MS } from '../jobs/tick.js';
import { groupSizes, maxRunId, profileCount, runsSince, type RunSummary } from '../sql/summary-queries.js';
import type { CliContext, OpenDatabase } from './context.js';

export interface RunOutcome {
  runs: RunSummary[];
  /** Runs asked for by name that another process is still working on. */
  busy: Array<{ kind: 'import' | 'export'; key: string; runId: number }>;
  profiles: number;
  groups: Array<{ key: string; members: number }>;
  durationMs: number;
  failed: boolean;
}

function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).filter(([, value]) => value !== 0);

  return entries.length === 0 ? 'nothing to do' : entries.map(([key, value]) => `${key}=${value}`).join(' ');
}

export function formatOutcome(outcome: RunOutcome): string {
  const lines = outcome.busy.map((busy) => `${busy.kind} ${busy.key} #${busy.runId}: still running in another process`);
  lines.push(...outcome.runs.map((run) => {
    const head = `${run.kind} ${run.objectKey} #${run.runId}: ${run.status}`;

    return run.status === 'failed' ? `${head} [${run.errorCode}] ${run.errorMessage}` : `${head} (${describeCounts(run.counts)})`;
  }));
  lines.push(`profiles: ${outcome.profiles}`);
  for (const group of outcome.groups) lines.push(`group ${group.key}: ${group.members} members`);
  lines.push(`finished in ${(outcome.durationMs / 1000).toFixed(1)} s${outcome.failed ? ' with failed runs' : ''}`);

  return `${lines.join('\n')}\n`;
}

/**
 * Runs everything that is due (and the named sources and destinations, due or not) until no
 * work is left, then reports what happened.
 */
export async function runOnce(
  ctx: Pick<CliContext, 'config' | 'log'>,
  db: Pick<OpenDatabase, 'pool' | 'url'>,
  options: { sources?: string[]; destinations?: string[] } = {},
): Promise<RunOutcome> {
  const startedAt = Date.now();
  const before = await maxRunId(db.pool);
  const boss = createBoss(db.url);
  boss.on('error', (err) => ctx.log.error({ err }, 'job queue error'));
  await boss.start();
  try {
    await ensureQueues(boss);
    const queue = bossQueue(boss);
    // Runs left behind by a killed process are failed first, so the runs asked for below start
    // anew (resuming from the saved cursor) instead of waiting on a dead one.
    await abandonStaleRuns(db.pool, STALE_RUN_MS);
    const requested: Array<{ kind: 'import' | 'export'; key: string; runId: number }> = [];
    for (const key of options.sources ?? []) {
      const id = await findObjectId(db.pool, 'sources', key);
      if (id === undefined) throw new ConfigError('CDP_SOURCE_NOT_FOUND', `No source named "${key}"`);
      requested.push({ kind: 'import', key, runId: await requestImportRun(db.pool, queue, id, 'manual') });
    }
    for (const key of options.destinations ?? []) {
      const id = await findObjectId(db.pool, 'destinations', key);
      if (id === undefined) throw new ConfigError('CDP_DESTINATION_NOT_FOUND', `No destination named "${key}"`);
      requested.push({ kind: 'export', key, runId: await requestExportRun(db.pool, queue, id, 'manual') });
    }
    const drained = await drainUntilIdle(boss, { pool: db.pool, log: ctx.log, config: ctx.config });
    const runs = await runsSince(db.pool, before);
    const busy = [];
    for (const request of requested) {
      const run = await loadRun(db.pool, request.runId);
      if (run && (run.status === 'running' || run.status === 'queued')) busy.push(request);
    }

    return {
      runs,
      busy,
      profiles: await profileCount(db.pool),
      groups: await groupSizes(db.pool),
      durationMs: Date.now() - startedAt,
      failed: drained.failedJobs > 0 || runs.some((run) => run.status === 'failed'),
    };
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

export function registerRunCommand(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('Process everything due until idle, print a summary, exit non-zero if a run failed')
    .option('-s, --source <key...>', 'also run these sources now')
    .option('-d, --destination <key...>', 'also export to these destinations now')
    .action(async (options: { source?: string[]; destination?: string[] }) => {
      const db = await ctx.openDatabase();
      try {
        const outcome = await runOnce(ctx, db, { sources: options.source, destinations: options.destination });
        process.stdout.write(formatOutcome(outcome));
        if (outcome.failed) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}
