import type { Command } from 'commander';
import { maintainEventPartitions } from '../jobs/event-maintenance.js';
import { createEventNotifier, startEventPump } from '../jobs/event-pump.js';
import { bossQueue, createBoss } from '../jobs/index.js';
import { startWorker } from '../jobs/worker.js';
import { createPool } from '../lib/db.js';
import { buildServer } from '../server/app.js';
import type { CliContext } from './context.js';
import { assertPortFree, forkHttpProcesses, httpChildDatabaseUrl, isHttpChild, portInUseError, runHttpChild, type HttpProcesses } from './http-processes.js';

/** An HTTP process forked by `roster start`: the server alone, on the primary's database. */
async function serveHttpChild(ctx: CliContext): Promise<void> {
  const pool = createPool(httpChildDatabaseUrl());
  const notifier = createEventNotifier(pool, ctx.log, `http-${process.pid}`);
  try {
    await runHttpChild(async () => {
      const server = await buildServer({ pool, log: ctx.log, onEventsStored: () => notifier.notify() });
      try {
        await server.listen({ host: ctx.config.httpHost, port: ctx.config.httpPort });
      } catch (err) {
        await server.close();
        throw err;
      }
      const address = server.server.address();

      return { port: typeof address === 'object' && address ? address.port : ctx.config.httpPort, close: () => server.close() };
    });
  } finally {
    await notifier.settle();
    await pool.end();
  }
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
  const processes = withHttp ? ctx.config.httpProcesses : 0;
  let httpProcesses: HttpProcesses | undefined;
  if (processes > 1) {
    const { httpHost: host, httpPort: port } = ctx.config;
    try {
      httpProcesses = await forkHttpProcesses({ count: processes, databaseUrl: db.url, host, port, log: ctx.log });
    } catch (err) {
      await pump.stop();
      await worker.stop();
      await db.close();
      throw err;
    }
  }
  const server = processes === 1 ? await buildServer({ pool: db.pool, log: ctx.log, onEventsStored: () => pump.wake() }) : undefined;
  if (server) {
    const { httpHost: host, httpPort: port } = ctx.config;
    try {
      await server.listen({ host, port });
    } catch (err) {
      await server.close();
      await pump.stop();
      await worker.stop();
      await db.close();
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw portInUseError(host, port, err);
      }
      throw err;
    }
  }
  // Resolves only once a signal has stopped everything, so the command stays up until then.
  await new Promise<void>((resolve) => {
    const shutdown = async (signal: string) => {
      ctx.log.info({ signal }, 'shutting down');
      await server?.close();
      await httpProcesses?.stop();
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
