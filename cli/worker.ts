import type { Command } from 'commander';
import { maintainEventPartitions } from '../jobs/event-maintenance.js';
import { createEventNotifier, startEventPump } from '../jobs/event-pump.js';
import { bossQueue, createBoss } from '../jobs/index.js';
import { startWorker } from '../jobs/worker.js';
import { createPool } from '../lib/db.js';
import { buildServer } from '../server/app.js';
import type { CliContext, OpenDatabase } from './context.js';
import { assertPortFree, forkHttpProcesses, httpChildDatabaseUrl, isHttpChild, listenServer, runHttpChild } from './http-processes.js';

/** An HTTP process forked by `roster start`: the server alone, on the primary's database. */
async function serveHttpChild(ctx: CliContext): Promise<void> {
  const pool = createPool(httpChildDatabaseUrl());
  const notifier = createEventNotifier(pool, ctx.log, `http-${process.pid}`);
  try {
    await runHttpChild(async () => {
      const server = await buildServer({ pool, log: ctx.log, onEventsStored: () => notifier.notify() });
      const port = await listenServer(server, ctx.config.httpHost, ctx.config.httpPort);

      return { port, close: () => server.close() };
    });
  } finally {
    await notifier.settle();
    await pool.end();
  }
}

/**
 * Serves HTTP in this process, or from ROSTER_HTTP_PROCESSES forked processes; returns what
 * stops it.
 */
async function startHttp(ctx: CliContext, db: OpenDatabase, wakePump: () => void): Promise<() => Promise<void>> {
  const { httpHost: host, httpPort: port, httpProcesses: count } = ctx.config;
  if (count > 1) {
    return (await forkHttpProcesses({ count, databaseUrl: db.url, host, port, log: ctx.log })).stop;
  }
  const server = await buildServer({ pool: db.pool, log: ctx.log, onEventsStored: wakePump });
  await listenServer(server, host, port);

  return () => server.close();
}

async function serve(ctx: CliContext, withHttp: boolean): Promise<void> {
  if (withHttp && isHttpChild()) {
    await serveHttpChild(ctx);

    return;
  }
  if (withHttp) await assertPortFree(ctx.config.httpHost, ctx.config.httpPort);
  const db = await ctx.openDatabase();
  const boss = createBoss(db.url);
  await boss.start();
  const worker = await startWorker(boss, { pool: db.pool, log: ctx.log, config: ctx.config });
  const { eventRetentionDays: retentionDays, eventDedupDays: dedupDays } = ctx.config;
  if (withHttp) await maintainEventPartitions(db.pool, { now: new Date(), retentionDays, dedupDays, log: ctx.log });
  // pg-boss polls; the pump carries fresh events to their destinations in well under a
  // second. Stored events wake it (and, through NOTIFY, the pumps of other workers).
  const pump = startEventPump({ pool: db.pool, log: ctx.log, config: ctx.config, queue: bossQueue(boss) });
  let stopHttp: (() => Promise<void>) | undefined;
  try {
    stopHttp = withHttp ? await startHttp(ctx, db, () => pump.wake()) : undefined;
  } catch (err) {
    await pump.stop();
    await worker.stop();
    await db.close();
    throw err;
  }
  // Resolves only once a signal has stopped everything, so the command stays up until then.
  await new Promise<void>((resolve) => {
    const shutdown = async (signal: string) => {
      ctx.log.info({ signal }, 'shutting down');
      await stopHttp?.();
      await pump.stop();
      await worker.stop();
      await db.close();
      resolve();
    };
    process.once('SIGINT', () => void shutdown('SIGINT'));
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
  });
}

export function registerWorkerCommands(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('Serve HTTP (health, OpenAPI docs at /docs) and run workers; ROSTER_HTTP_PROCESSES serves HTTP from several processes')
    .action(() => serve(ctx, true));
  program
    .command('worker')
    .description('Run workers only: scheduled imports, hydration, group updates and exports')
    .action(() => serve(ctx, false));
}
