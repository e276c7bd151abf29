// The ingestion server in its own process, so the load generator never shares its event loop.
// Prints {"port":N} on stdout once listening; SIGTERM closes it. Started by bench/lib/server-child.ts.
// With --processes N above 1 it serves HTTP as `roster start` does with ROSTER_HTTP_PROCESSES:
// this process keeps the pump and forks N HTTP processes sharing the port.
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { createEventNotifier, startEventPump, type EventPump } from '../jobs/event-pump.js';
import type { JobQueue } from '../jobs/index.js';
import { buildServer } from '../server/app.js';
import { forkHttpProcesses, httpChildDatabaseUrl, isHttpChild, listenServer, runHttpChild, type HttpProcesses } from '../cli/http-processes.js';

const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });

async function buildBenchServer(pool: ReturnType<typeof createPool>, onEventsStored?: () => void) {
  const app = await buildServer({ pool, log, onEventsStored });
  // Bench-only reference routes: what Fastify costs with no database work at all.
  app.post('/bench/noop', async () => ({ success: true }));

  return { app, port: await listenServer(app, '127.0.0.1', 0) };
}

if (isHttpChild()) {
  const pool = createPool(httpChildDatabaseUrl(), 10);
  const notifier = createEventNotifier(pool, log, `bench-http-${process.pid}`);
  await runHttpChild(async () => {
    const { app, port } = await buildBenchServer(pool, () => notifier.notify());

    return { port, close: () => app.close() };
  });
  await pool.end().catch(() => {});
  process.exit(0);
}

const options = new Command()
  .requiredOption('--database-url <url>')
  .option('--pump', 'run the event pump in this process, as `roster start` does')
  .option('--processes <n>', 'HTTP processes (ROSTER_HTTP_PROCESSES)', (raw) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError('must be a whole number of at least 1');

    return value;
  }, 1)
  .parse()
  .opts<{ databaseUrl: string; pump?: boolean; processes: number }>();

const pool = createPool(options.databaseUrl, 10);
// The pump only needs a queue for exports that hydration requests; nothing here runs them.
const queue: JobQueue = { send: async () => {} };
const pump: EventPump | undefined = options.pump
  ? startEventPump({ pool, log, config: loadConfig({ ROSTER_LOG_LEVEL: 'silent' }), queue })
  : undefined;
let single: Awaited<ReturnType<typeof buildBenchServer>> | undefined;
let forked: HttpProcesses | undefined;
if (options.processes > 1) {
  forked = await forkHttpProcesses({ count: options.processes, databaseUrl: options.databaseUrl, host: '127.0.0.1', port: 0, log });
} else {
  single = await buildBenchServer(pool, pump ? () => pump.wake() : undefined);
}
process.stdout.write(`${JSON.stringify({ port: forked?.port ?? single?.port })}\n`);

let isClosing = false;
async function close(): Promise<void> {
  if (isClosing) return;
  isClosing = true;
  await single?.app.close().catch(() => {});
  await forked?.stop().catch(() => {});
  await pump?.stop().catch(() => {});
  await pool.end().catch(() => {});
  // A normal exit lets --cpu-prof write its profile.
  process.exit(0);
}
process.on('SIGTERM', () => void close());
process.on('SIGINT', () => void close());
