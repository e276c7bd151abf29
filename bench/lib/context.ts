// What every benchmark gets from bench/run.ts.
import { pino } from 'pino';
import { loadConfig, type RosterConfig } from '../../lib/config.js';
import type { Logger } from '../../lib/logger.js';
import type { BarResult } from './result.js';

export interface BenchContext {
  adminUrl: string;
  /** 1 = the sizes of the product's quality bars; 0.01 for a quick run. */
  scale: number;
  config: RosterConfig;
  log: Logger;
  /** Progress and evidence lines (stderr), kept apart from the result lines. */
  note(message: string): void;
  /** Where profiles and EXPLAIN output go, when asked for. */
  evidenceDir?: string;
  /** HTTP processes of the ingestion servers (ROSTER_HTTP_PROCESSES of `roster start`). */
  httpProcesses: number;
}

export interface Benchmark {
  name: string;
  run(ctx: BenchContext): Promise<BarResult[]>;
}

export function createBenchLogger(): Logger {
  return pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
}

export function benchConfig(): RosterConfig {
  return loadConfig({ ROSTER_LOG_LEVEL: 'silent' });
}

/** `full` at scale 1, never below `min`. */
export function scaled(full: number, scale: number, min = 1): number {
  return Math.max(min, Math.round(full * scale));
}
