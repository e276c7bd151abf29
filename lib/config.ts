import path from 'node:path';
import { ConfigError } from './errors.js';

/** Everything Roster reads from its environment, validated once and frozen. */
export interface RosterConfig {
  /** Postgres to use; when absent Roster starts an embedded Postgres under `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Roster's own folder (embedded Postgres files in `pgdata/`, demo exports, ...). */
  readonly dataDir: string;
  readonly embeddedPort: number;
  readonly httpHost: string;
  readonly httpPort: number;
  /** HTTP processes `roster start` serves from (1: the same process as the workers). */
  readonly httpProcesses: number;
  readonly logLevel: string;
  /** Rows read from a source per batch (and per transaction). */
  readonly importBatchSize: number;
  /** Profiles refreshed from their sources per hydration batch. */
  readonly hydrationBatchSize: number;
  /** Records handed to a destination per write call. */
  readonly exportBatchSize: number;
  /** Days a messageId is remembered, so a resent event is stored once. */
  readonly eventDedupDays: number;
  /** Days inbound events are kept; older daily partitions are dropped. */
  readonly eventRetentionDays: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function readInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError('CDP_CONFIG_INVALID_ENV', `Environment variable ${name} must be an integer of at least ${min}, got "${raw}"`);
  }

  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RosterConfig {
  const logLevel = env.ROSTER_LOG_LEVEL ?? env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('CDP_CONFIG_INVALID_ENV', `Environment variable ROSTER_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  return Object.freeze({
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.ROSTER_DATA_DIR ?? path.join(process.cwd(), '.roster')),
    embeddedPort: readInt(env, 'ROSTER_EMBEDDED_PORT', 54329),
    httpHost: env.ROSTER_HOST ?? '127.0.0.1',
    httpPort: readInt(env, 'ROSTER_PORT', 3000, 0),
    httpProcesses: readInt(env, 'ROSTER_HTTP_PROCESSES', 1),
    logLevel,
    importBatchSize: readInt(env, 'ROSTER_IMPORT_BATCH_SIZE', 5000),
    hydrationBatchSize: readInt(env, 'ROSTER_HYDRATION_BATCH_SIZE', 5000),
    exportBatchSize: readInt(env, 'ROSTER_EXPORT_BATCH_SIZE', 500),
    eventDedupDays: readInt(env, 'ROSTER_EVENT_DEDUP_DAYS', 7),
    eventRetentionDays: readInt(env, 'ROSTER_EVENT_RETENTION_DAYS', 90),
  });
}

/**
 * Reads a secret that config-as-code names by environment variable. Secrets never live in
 * config files or in the database; only the variable's name does.
 */
export function readSecretEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined) {
    throw new ConfigError('CDP_SECRET_ENV_MISSING', `Environment variable ${name} named by the config is not set`, { details: { env: name } });
  }

  return value;
}
