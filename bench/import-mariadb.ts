// Bar: import N customers with 6 properties (one an aggregate over purchases) from MariaDB,
// wall time and peak memory of the importing process.
// Reference: a raw copy of the same rows (customers joined with their purchase sums) from
// MariaDB into a plain Postgres table, streamed and written with multi-row inserts.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2';
import type { Pool } from '../lib/db.js';
import { applyConfigText } from './lib/apply-config-text.js';
import { scaled, type Benchmark } from './lib/context.js';
import { withBenchDatabase } from './lib/database.js';
import { createShopDatabase, MARIADB } from './lib/mariadb.js';
import { newestCpuProfile, summariseCpuProfile } from './lib/cpu-profile.js';
import { saveEvidence } from './lib/evidence.js';
import { judge } from './lib/result.js';

const IMPORT_SCRIPT = fileURLToPath(new URL('./import-process.ts', import.meta.url));
const PASSWORD_ENV = 'BENCH_MARIADB_PASSWORD';

function shopConfig(database: string): string {
  return `
apps:
  - key: shop
    type: mysql
    options: { host: ${MARIADB.host}, port: ${MARIADB.port}, user: ${MARIADB.user}, database: ${database}, password: { env: ${PASSWORD_ENV} } }
sources:
  - key: customers
    app: shop
    table: customers
    identity: { column: customer_id, property: customer_id }
properties:
  - { key: customer_id, type: integer, unique: true, source: customers, column: customer_id }
  - { key: email, type: email, unique: true, source: customers, column: email }
  - { key: first_name, type: string, source: customers, column: first_name }
  - { key: last_name, type: string, source: customers, column: last_name }
  - { key: country, type: string, source: customers, column: country }
  - { key: ltv, type: float, source: customers, aggregate: { table: purchases, matchColumn: customer_id, function: sum, column: amount } }
`;
}

interface ImportOutcome {
  durationMs: number;
  importRunMs?: number;
  /** Stopped at the time limit: durationMs is a lower bound and profiles are those so far. */
  timedOut?: boolean;
  peakRssMb: number;
  maxRssMb: number;
  profiles: number;
  failed: boolean;
  runs: unknown[];
  statements?: Array<{ statement: string; calls: number; totalMs: number }>;
}

async function runImportProcess(databaseUrl: string, timeoutMs: number, cpuProfDir?: string): Promise<ImportOutcome> {
  const profileArgs = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const child = spawn(process.execPath, ['--import', 'tsx', ...profileArgs, IMPORT_SCRIPT, '--database-url', databaseUrl, '--source', 'customers'], {
    env: { ...process.env, [PASSWORD_ENV]: MARIADB.password },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  let peakRssMb = 0;
  const startedAt = performance.now();
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const sample of text.matchAll(/\{"rssMb":([\d.]+)\}/g)) peakRssMb = Math.max(peakRssMb, Number(sample[1]));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  if (timedOut) {
    return { durationMs: performance.now() - startedAt, peakRssMb, maxRssMb: peakRssMb, profiles: -1, failed: true, runs: [], timedOut };
  }
  const line = text.split('\n').find((candidate) => candidate.startsWith('{"durationMs"'));
  if (!line) throw new Error(`Import process exited with code ${code} and no result`);

  return JSON.parse(line) as ImportOutcome;
}

/** Streams customers with their purchase sums out of MariaDB into a plain Postgres table. */
async function rawCopy(pool: Pool, database: string): Promise<{ ms: number; rows: number }> {
  await pool.query(
    `CREATE TABLE bench_raw_customers (
       customer_id bigint PRIMARY KEY,
       email text,
       first_name text,
       last_name text,
       country text,
       ltv double precision
     )`,
  );
  const startedAt = performance.now();
  const connection = mysql.createConnection({ ...MARIADB, database });
  let rows = 0;
  try {
    const stream = connection
      .query(
        `SELECT c.customer_id, c.email, c.first_name, c.last_name, c.country, s.ltv
         FROM customers AS c
         LEFT JOIN (SELECT customer_id, SUM(amount) AS ltv FROM purchases GROUP BY customer_id) AS s
           ON s.customer_id = c.customer_id`,
      )
      .stream({ highWaterMark: 5000 });
    let batch: Array<Record<string, unknown>> = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const columns = ['customer_id', 'email', 'first_name', 'last_name', 'country', 'ltv'].map((name) => batch.map((row) => row[name]));
      batch = [];
      await pool.query(
        `INSERT INTO bench_raw_customers
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])`,
        columns,
      );
    };
    for await (const row of stream as AsyncIterable<Record<string, unknown>>) {
      batch.push(row);
      rows += 1;
      if (batch.length >= 5000) await flush();
    }
    await flush();
  } finally {
    connection.end();
  }

  return { ms: performance.now() - startedAt, rows };
}

export const importMariadb: Benchmark = {
  name: 'import-mariadb',
  async run(ctx) {
    const customers = scaled(1_000_000, ctx.scale, 1000);
    ctx.note(`import-mariadb: generating ${customers} customers in MariaDB`);
    const shop = await createShopDatabase(customers);
    try {
      return await withBenchDatabase(ctx.adminUrl, 'import', async (db) => {
        ctx.note(`import-mariadb: ${shop.customers} customers and ${shop.purchases} purchases loaded`);
        const copy = await rawCopy(db.pool, shop.database);
        process.env[PASSWORD_ENV] = MARIADB.password;
        await applyConfigText(db.pool, shopConfig(shop.database));
        // Bounded: at scale 1 an import slower than 5 minutes is reported as a lower bound.
        const importStartedAt = Date.now();
        const outcome = await runImportProcess(db.url, Math.round((60 + 240 * ctx.scale) * 1000), ctx.evidenceDir);
        const profile = ctx.evidenceDir ? await newestCpuProfile(ctx.evidenceDir, importStartedAt) : undefined;
        const profileSummary = profile ? await summariseCpuProfile(profile) : undefined;
        if (profileSummary) {
          await saveEvidence(ctx, 'import-cpu-profile.txt', `${profile}\n${profileSummary}\n`);
          ctx.note(`import-mariadb: import process CPU profile:\n${profileSummary}`);
        }
        if (outcome.timedOut) {
          const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.profiles');
          outcome.profiles = rows[0].n;
          ctx.note(`import-mariadb: stopped at the time limit with ${outcome.profiles} of ${customers} profiles`);
        }
        if (outcome.failed || outcome.profiles !== customers) {
          ctx.note(`import-mariadb: import failed or incomplete: ${JSON.stringify(outcome.runs)}`);
        }
        const copyS = copy.ms / 1000;
        const details = { customers, timedOut: outcome.timedOut ?? false, importRunMs: outcome.importRunMs, purchases: shop.purchases, profiles: outcome.profiles, failed: outcome.failed, runs: outcome.runs, rawCopyRows: copy.rows, cpuProfileSummary: profileSummary, statements: outcome.statements };
        if (outcome.statements) {
          ctx.note(`import-mariadb: time waiting per statement:\n${outcome.statements.map((s) => `${String(s.totalMs).padStart(8)} ms ${String(s.calls).padStart(6)}x  ${s.statement}`).join('\n')}`);
        }

        return [
          judge('import-mariadb', `import mariadb ${customers.toLocaleString('en-US')} rows${outcome.timedOut ? ' (stopped, >=)' : ''}`, { figure: outcome.durationMs / 1000, unit: 's' }, { op: '<', value: 30 * ctx.scale }, {
            reference: { label: 'raw copy', figure: copyS, unit: 's' },
            details,
          }),
          judge('import-mariadb', 'import mariadb peak RSS', { figure: outcome.peakRssMb, unit: 'MB' }, { op: '<', value: 300 }, {
            details: { maxRssMb: outcome.maxRssMb },
          }),
        ];
      });
    } finally {
      await shop.drop();
    }
  },
};
