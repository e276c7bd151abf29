// `npm run bench`: measures every quality bar of docs/product.md with a reference measured in the
// same run, prints one line per bar and writes every result as JSON.
import { execSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { benchConfig, createBenchLogger, type BenchContext, type Benchmark } from './lib/context.js';
import { formatResult, type BarResult } from './lib/result.js';
import { deliveryLatency } from './delivery-latency.js';
import { exportDiff } from './export-diff.js';
import { groupFull } from './group-full.js';
import { groupIncremental } from './group-incremental.js';
import { importMariadb } from './import-mariadb.js';
import { ingestBatch } from './ingest-batch.js';
import { ingestSingle } from './ingest-single.js';

const BENCHMARKS: Benchmark[] = [ingestBatch, ingestSingle, importMariadb, groupFull, groupIncremental, exportDiff, deliveryLatency];
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

function parseScale(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > 1) throw new InvalidArgumentError('must be a number in (0, 1]');

  return value;
}

function parseProcesses(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError('must be a whole number of at least 1');

  return value;
}

function parseOnly(raw: string): string[] {
  const names = raw.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !BENCHMARKS.some((bench) => bench.name === name));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);

  return names;
}

function serverVersion(command: string): string {
  try {
    return execSync(command, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return 'unknown';
  }
}

const options = new Command('bench')
  .description('Measure the quality bars of docs/product.md')
  .option('--scale <n>', 'data sizes and durations relative to the bars (0.01 for a quick run)', parseScale, 1)
  .option('--only <names>', `comma-separated subset of: ${BENCHMARKS.map((b) => b.name).join(', ')}`, parseOnly)
  .option('--out <file>', 'JSON results file (default bench/results/<timestamp>.json)')
  .option('--database-url <url>', 'admin URL; bench databases are created and dropped beside it', process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  .option('--http-processes <n>', 'HTTP processes of the ingestion servers, as ROSTER_HTTP_PROCESSES (default: the number of CPUs)', parseProcesses, os.availableParallelism())
  .option('--profile', 'write a CPU profile of the ingestion server (node --cpu-prof) and EXPLAIN output to bench/results/evidence-<timestamp>/')
  .parse()
  .opts<{ scale: number; only?: string[]; out?: string; databaseUrl: string; profile?: boolean; httpProcesses: number }>();

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(BENCH_DIR, 'results');
const outFile = options.out ?? path.join(resultsDir, `${stamp}.json`);
const evidenceDir = options.profile ? path.join(resultsDir, `evidence-${stamp}`) : undefined;
if (evidenceDir) await fs.mkdir(evidenceDir, { recursive: true });

const ctx: BenchContext = {
  adminUrl: options.databaseUrl,
  scale: options.scale,
  httpProcesses: options.httpProcesses,
  config: benchConfig(),
  log: createBenchLogger(),
  note: (message) => process.stderr.write(`  ${message}\n`),
  evidenceDir,
};
const selected = BENCHMARKS.filter((bench) => !options.only || options.only.includes(bench.name));
const machine = {
  cpus: os.availableParallelism(),
  memoryGb: Math.round(os.totalmem() / 1024 ** 3),
  node: process.version,
  postgres: serverVersion(`psql "${options.databaseUrl}" -Atc "SHOW server_version"`),
  mariadb: serverVersion('mysql -h127.0.0.1 -uroot -N -e "SELECT version()"'),
  loadAverageAtStart: os.loadavg().map((value) => Number(value.toFixed(2))),
};
process.stdout.write(`roster bench: scale ${options.scale}, ${machine.cpus} cpus, ${machine.memoryGb} GB, load ${machine.loadAverageAtStart.join(' ')}\n`);

const results: BarResult[] = [];
const failures: Array<{ bench: string; error: string }> = [];
const startedAt = Date.now();
for (const bench of selected) {
  const benchStartedAt = Date.now();
  process.stderr.write(`> ${bench.name} (load ${os.loadavg()[0].toFixed(2)})\n`);
  try {
    const barResults = await bench.run(ctx);
    for (const result of barResults) {
      result.details = { ...result.details, loadAverage1m: Number(os.loadavg()[0].toFixed(2)), benchSeconds: Math.round((Date.now() - benchStartedAt) / 100) / 10 };
      process.stdout.write(`${formatResult(result)}\n`);
    }
    results.push(...barResults);
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    failures.push({ bench: bench.name, error });
    process.stdout.write(`${bench.name.padEnd(34)} FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    process.stderr.write(`${error}\n`);
  }
}

const totalS = (Date.now() - startedAt) / 1000;
await fs.mkdir(path.dirname(outFile), { recursive: true });
await fs.writeFile(
  outFile,
  `${JSON.stringify({ startedAt: new Date(startedAt).toISOString(), scale: options.scale, machine, loadAverageAtEnd: os.loadavg().map((v) => Number(v.toFixed(2))), totalSeconds: totalS, results, failures }, null, 2)}\n`,
);
const missed = results.filter((result) => result.met === false).length;
process.stdout.write(`${results.length} bars measured, ${missed} not met, ${failures.length} benchmarks failed, ${totalS.toFixed(0)} s; results in ${path.relative(process.cwd(), outFile)}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
