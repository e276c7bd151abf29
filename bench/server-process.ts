// The ingestion server in its own process, so the load generator never shares its event loop.
// Prints {"port":N} on stdout once listening; SIGTERM closes it. Started by bench/lib/server-child.ts.
import { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { startEventPump, type EventPump } from '../jobs/event-pump.js';
import type { JobQueue } from '../jobs/index.js';
import { buildServer } from '../server/app.js';

const options = new Command()
  .requiredOption('--database-url <url>')
  .option('--pump', 'run the event pump in this process, as `roster start` does')
  .parse()
  .opts<{ databaseUrl: string; pump?: boolean }>();

const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
const pool = createPool(options.databaseUrl, 10);
// The pump only needs a queue for exports that hydration requests; nothing here runs them.
const queue: JobQueue = { send: async () => {} };
const pump: EventPump | undefined = options.pump
  ? startEventPump({ pool, log, config: loadConfig({ ROSTER_LOG_LEVEL: 'silent' }), queue })
  : undefined;
const app = await buildServer({ pool, log, onEventsStored: pump ? () => pump.wake() : undefined });

// Bench-only reference routes: what Fastify costs with no database work at all.
app.post('/bench/noop', async () => ({ success: true }));

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);

let isClosing = false;
async function close(): Promise<void> {
  if (isClosing) return;
  isClosing = true;
  await app.close().catch(() => {});
  await pump?.stop().catch(() => {});
  await pool.end().catch(() => {});
  // A normal exit lets --cpu-prof write its profile.
  process.exit(0);
}
process.on('SIGTERM', () => void close());
process.on('SIGINT', () => void close());
