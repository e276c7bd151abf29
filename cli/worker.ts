import type { Command } from 'commander';
import { maintainEventPartitions } from '../jobs/event-maintenance.js';
import { bossQueue, createBoss, requestEventProcessing } from '../jobs/index.js';
import { startWorker } from '../jobs/worker.js';
import { throttle } from '../lib/throttle.js';
import { buildServer } from '../server/app.js';
import type { CliContext } from './context.js';

async function serve(ctx: CliContext, withHttp: boolean): Promise<void> {
  const db = await ctx.openDatabase();
  const boss = createBoss(db.url);
  await boss.start();
  const worker = await startWorker(boss, { pool: db.pool, log: ctx.log, config: ctx.config });
  const { eventRetentionDays: retentionDays, eventDedupDays: dedupDays } = ctx.config;
  if (withHttp) await maintainEventPartitions(db.pool, { now: new Date(), retentionDays, dedupDays, log: ctx.log });
  // Stored events wake the processor, at most about five times a second.
  const wakeProcessing = throttle(() => {
    requestEventProcessing(bossQueue(boss)).catch((err: unknown) => ctx.log.warn({ err }, 'event processing request failed'));
  }, 200);
  const server = withHttp ? await buildServer({ pool: db.pool, log: ctx.log, onEventsStored: wakeProcessing }) : undefined;
  if (server) {
    await server.listen({ host: ctx.config.httpHost, port: ctx.config.httpPort });
  }
  // Resolves only once a signal has stopped everything, so the command stays up until then.
  await new Promise<void>((resolve) => {
    const shutdown = async (signal: string) => {
      ctx.log.info({ signal }, 'shutting down');
      await server?.close();
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
    .description('Serve HTTP (health, OpenAPI docs at /docs) and run workers')
    .action(() => serve(ctx, true));
  program
    .command('worker')
    .description('Run workers only: scheduled imports, hydration, group updates and exports')
    .action(() => serve(ctx, false));
}
