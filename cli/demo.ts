import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { closeConnectors } from '../connectors/index.js';
import { generateStore, type StoreCounts } from '../examples/demo/generate-store.js';
import { createPool } from '../lib/db.js';
import { ConfigError } from '../lib/errors.js';
import { applyConfig } from '../sql/config/apply-config.js';
import { loadConfigDir } from '../sql/config/load-config-dir.js';
import { validateConfig } from '../sql/config/validate-config.js';
import { profileCount } from '../sql/summary-queries.js';
import type { CliContext, OpenDatabase } from './context.js';
import { runOnce, type RunOutcome } from './run.js';

export const DEMO_CONFIG_DIR = fileURLToPath(new URL('../examples/demo/config/', import.meta.url));
export const DEMO_WAREHOUSE_DB = 'roster_demo_store';
/** The variable the demo config names for the warehouse's connection string. */
export const DEMO_WAREHOUSE_ENV = 'ROSTER_DEMO_WAREHOUSE_URL';
const CSV_APP = 'files';

export interface DemoOptions {
  customers: number;
  seed: number;
  /** The warehouse to (re)build; by default `roster_demo_store` on Roster's own server. */
  warehouseUrl?: string;
  /** Folder for the CSV destination; by default `demo-exports` in the data folder. */
  outputDir?: string;
}

export interface DemoResult {
  warehouseUrl: string;
  outputDir: string;
  store: StoreCounts;
  generateMs: number;
  profilesBefore: number;
  outcome: RunOutcome;
  exports: Array<{ key: string; records: number; failed: number }>;
}

/** The warehouse database on the same server as Roster's, created when missing. */
async function ensureWarehouse(db: Pick<OpenDatabase, 'pool' | 'url' | 'embedded'>): Promise<string> {
  if (db.embedded) {
    await db.embedded.createDatabase(DEMO_WAREHOUSE_DB);

    return db.embedded.url(DEMO_WAREHOUSE_DB);
  }
  const { rowCount } = await db.pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [DEMO_WAREHOUSE_DB]);
  if (rowCount === 0) {
    try {
      await db.pool.query(`CREATE DATABASE ${DEMO_WAREHOUSE_DB}`);
    } catch (err) {
      throw new ConfigError('CDP_DEMO_WAREHOUSE_FAILED', `The demo could not create database ${DEMO_WAREHOUSE_DB} on the server of DATABASE_URL`, { cause: err });
    }
  }
  const url = new URL(db.url);
  url.pathname = `/${DEMO_WAREHOUSE_DB}`;

  return url.toString();
}

/**
 * The whole demo: builds a store warehouse, applies the example config against it, runs every
 * import, hydration and export until idle, and reports what happened.
 */
export async function runDemo(
  ctx: Pick<CliContext, 'config' | 'log'>,
  db: Pick<OpenDatabase, 'pool' | 'url' | 'embedded'>,
  options: DemoOptions,
): Promise<DemoResult> {
  const warehouseUrl = options.warehouseUrl ?? (await ensureWarehouse(db));
  const outputDir = options.outputDir ?? path.join(ctx.config.dataDir, 'demo-exports');
  await fs.mkdir(outputDir, { recursive: true });

  const generateStartedAt = Date.now();
  const warehouse = createPool(warehouseUrl, 2);
  let store: StoreCounts;
  try {
    store = await generateStore(warehouse, { customers: options.customers, seed: options.seed });
  } finally {
    await warehouse.end();
  }
  const generateMs = Date.now() - generateStartedAt;

  // The config names the warehouse by environment variable, as real configs name secrets.
  process.env[DEMO_WAREHOUSE_ENV] = warehouseUrl;
  const { config } = validateConfig(await loadConfigDir(DEMO_CONFIG_DIR), { env: process.env });
  const csvApp = config.apps.find((app) => app.key === CSV_APP);
  if (csvApp) {
    csvApp.options = { ...csvApp.options, baseDir: outputDir };
  }
  await applyConfig(db.pool, config);
  // The store was just rebuilt, possibly with other people and older timestamps, so the
  // sources read it whole instead of only past their saved cursors.
  await db.pool.query('UPDATE roster_core.sources SET cursor = NULL WHERE key = ANY($1::text[])', [config.sources.map((source) => source.key)]);

  const profilesBefore = await profileCount(db.pool);
  let outcome: RunOutcome;
  try {
    outcome = await runOnce(ctx, db, {
      sources: config.sources.map((source) => source.key),
      destinations: config.destinations.map((destination) => destination.key),
    });
  } finally {
    await closeConnectors();
  }
  const exports = config.destinations.map((destination) => {
    const runs = outcome.runs.filter((run) => run.kind === 'export' && run.objectKey === destination.key);
    const sum = (names: string[]) => runs.reduce((total, run) => total + names.reduce((n, name) => n + (run.counts[name] ?? 0), 0), 0);

    return { key: destination.key, records: sum(['created', 'updated', 'removed']), failed: sum(['failed']) };
  });

  return { warehouseUrl, outputDir, store, generateMs, profilesBefore, outcome, exports };
}

function formatNumber(value: number): string {
  return value.toLocaleString('en-US');
}

/** A connection string with its password hidden, for printing. */
function withoutPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) {
    parsed.password = '***';
  }

  return parsed.toString();
}

/**
 * The demo's report. Passwords in connection strings are masked unless `showPasswords` (the
 * embedded server's fixed local credentials are no secret, and the commands must work as shown).
 */
export function formatDemo(result: DemoResult, databaseUrl: string, options: { showPasswords?: boolean } = {}): string {
  const { outcome, store } = result;
  const shown = (url: string) => (options.showPasswords ? url : withoutPassword(url));
  const lines: string[] = [];
  lines.push(
    `Store warehouse built in ${(result.generateMs / 1000).toFixed(1)} s: ${formatNumber(store.customers)} customers, ` +
      `${formatNumber(store.purchases)} purchases, ${formatNumber(store.refunds)} refunds, ${formatNumber(store.carts)} carts`,
  );
  lines.push('');
  lines.push('Runs:');
  for (const run of outcome.runs) {
    const counts = Object.entries(run.counts)
      .filter(([, value]) => value !== 0)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
    const detail = run.status === 'failed' ? `[${run.errorCode}] ${run.errorMessage}` : counts || 'nothing to do';
    lines.push(`  ${run.kind} ${run.objectKey}: ${run.status} (${detail})`);
  }
  lines.push('');
  lines.push(`Profiles: ${formatNumber(outcome.profiles)} (${formatNumber(outcome.profiles - result.profilesBefore)} created by this run)`);
  lines.push('Groups:');
  for (const group of outcome.groups) {
    lines.push(`  ${group.key.padEnd(18)} ${formatNumber(group.members).padStart(6)} members`);
  }
  lines.push('Exported:');
  for (const destination of result.exports) {
    const failed = destination.failed > 0 ? `, ${formatNumber(destination.failed)} failed` : '';
    lines.push(`  ${destination.key.padEnd(18)} ${formatNumber(destination.records).padStart(6)} records${failed}`);
  }
  lines.push('');
  lines.push(`Done in ${((result.generateMs + outcome.durationMs) / 1000).toFixed(1)} s${outcome.failed ? ', with failed runs' : ''}.`);

  const csvFile = path.join(result.outputDir, 'high_value.csv');
  lines.push(
    '',
    'Where to look next:',
    `  CSV export:  ${csvFile}`,
    '  The config:  examples/demo/config/*.yml',
    '  Serve the API and run the schedules (the embedded Postgres runs while this does):',
    `    ${DEMO_WAREHOUSE_ENV}='${shown(result.warehouseUrl)}' node bin/roster.js start`,
    '    then open http://127.0.0.1:3000/docs',
    '  Read the results with SQL (while Roster or your own Postgres is running):',
    `    psql '${shown(databaseUrl)}'`,
    '      SELECT * FROM roster.profiles LIMIT 10;',
    '      SELECT p.email, p.ltv FROM roster."group_high_value" JOIN roster.profiles AS p USING (profile_id) ORDER BY p.ltv DESC LIMIT 10;',
    '      SELECT group_key, count(*) FROM roster.group_members GROUP BY group_key;',
    '      SELECT * FROM roster.export_records ORDER BY record_id DESC LIMIT 10;',
    `    psql '${shown(result.warehouseUrl)}' -c 'SELECT * FROM crm_contacts LIMIT 10'`,
  );

  return `${lines.join('\n')}\n`;
}

function parseCount(name: string, min: number) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      throw new ConfigError('CDP_DEMO_INVALID_OPTION', `Option --${name} must be an integer of at least ${min}, got "${raw}"`);
    }

    return value;
  };
}

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('Build a sample store warehouse, apply examples/demo/config and run everything once')
    .option('-c, --customers <n>', 'number of customers to generate', parseCount('customers', 1), 3000)
    .option('--seed <n>', 'random seed: the same seed gives the same store', parseCount('seed', 0), 42)
    .option('-o, --out <dir>', 'folder for the CSV export (default: demo-exports in the data folder)')
    .option('-v, --verbose', 'keep the configured log level instead of showing warnings only')
    .action(async (options: { customers: number; seed: number; out?: string; verbose?: boolean }) => {
      // The log shares stdout with the summary; per-run info lines would bury it.
      if (!options.verbose && ctx.log.isLevelEnabled('info')) {
        ctx.log.level = 'warn';
      }
      const db = await ctx.openDatabase();
      try {
        const result = await runDemo(ctx, db, { customers: options.customers, seed: options.seed, outputDir: options.out });
        process.stdout.write(formatDemo(result, db.url, { showPasswords: db.embedded !== undefined }));
        if (result.outcome.failed) {
          process.exitCode = 1;
        }
      } finally {
        await db.close();
      }
    });
}
