// Runs one import of the `customers` source (with hydration) in its own process, so its memory
// is the import's alone. Prints {"durationMs", "peakRssMb", ...} on stdout.
import { Command } from 'commander';
import { pino } from 'pino';
import { runOnce } from '../cli/run.js';
import { closeConnectors } from '../connectors/index.js';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { startQueryTimer } from './lib/query-timer.js';
import { sampleRss } from './lib/timing.js';

const options = new Command().requiredOption('--database-url <url>').requiredOption('--source <key>').parse().opts<{ databaseUrl: string; source: string }>();

const queryTimer = startQueryTimer();
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
const pool = createPool(options.databaseUrl);
const rss = sampleRss(100);
// Peak so far, once a second, so a parent that stops a slow import still knows its memory.
const rssReport = setInterval(() => process.stdout.write(`${JSON.stringify({ rssMb: process.memoryUsage().rss / 1024 / 1024 })}\n`), 1000);
const startedAt = performance.now();
try {
  const outcome = await runOnce({ config: loadConfig({ ROSTER_LOG_LEVEL: 'silent' }), log }, { pool, url: options.databaseUrl }, { sources: [options.source] });
  const durationMs = performance.now() - startedAt;
  const peakRssMb = rss.stop();
  clearInterval(rssReport);
  // The import run's own time; the rest of runOnce is hydration (the ltv aggregate) and queueing.
  const { rows } = await pool.query<{ ms: number }>(
    `SELECT extract(epoch FROM finished_at - started_at)::float8 * 1000 AS ms FROM roster_core.runs WHERE kind = 'import' ORDER BY id DESC LIMIT 1`,
  );
  process.stdout.write(
    `${JSON.stringify({
      durationMs,
      importRunMs: rows[0]?.ms,
      peakRssMb,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      profiles: outcome.profiles,
      // Wall time waiting per statement shape (pg-boss included), largest first.
      statements: queryTimer.top(12),
      failed: outcome.failed,
      runs: outcome.runs.map((run) => ({ kind: run.kind, status: run.status, counts: run.counts, errorCode: run.errorCode, errorMessage: run.errorMessage })),
    })}\n`,
  );
} finally {
  clearInterval(rssReport);
  await closeConnectors();
  await pool.end();
}
