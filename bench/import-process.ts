// Runs one import of the `customers` source (with hydration) in its own process, so its memory
// is the import's alone. Prints {"durationMs", "peakRssMb", ...} on stdout.
import { Command } from 'commander';
import { pino } from 'pino';
import { runOnce } from '../cli/run.js';
import { closeConnectors } from '../connectors/index.js';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { sampleRss } from './lib/timing.js';

const options = new Command().requiredOption('--database-url <url>').requiredOption('--source <key>').parse().opts<{ databaseUrl: string; source: string }>();

const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
const pool = createPool(options.databaseUrl);
const rss = sampleRss(100);
const startedAt = performance.now();
try {
  const outcome = await runOnce({ config: loadConfig({ ROSTER_LOG_LEVEL: 'silent' }), log }, { pool, url: options.databaseUrl }, { sources: [options.source] });
  const durationMs = performance.now() - startedAt;
  const peakRssMb = rss.stop();
  process.stdout.write(
    `${JSON.stringify({
      durationMs,
      peakRssMb,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      profiles: outcome.profiles,
      failed: outcome.failed,
      runs: outcome.runs.map((run) => ({ kind: run.kind, status: run.status, counts: run.counts, errorCode: run.errorCode, errorMessage: run.errorMessage })),
    })}\n`,
  );
} finally {
  await closeConnectors();
  await pool.end();
}
