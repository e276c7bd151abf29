/**
 * Loads the Sakila sample store into MariaDB or MySQL: the schema from `schema.mysql.sql`,
 * then every CSV file through multi-row INSERTs. The dataset is read where it lies (it is
 * shared reference data and must not be copied into this repository).
 *
 *   node --import tsx examples/sakila/load-mariadb.ts --database sakila [--replace]
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import mysql from 'mysql2/promise';

/** Tables in foreign-key order, as the dataset's README lists them. */
export const SAKILA_TABLES = [
  'country',
  'city',
  'address',
  'language',
  'category',
  'film',
  'film_category',
  'store',
  'staff',
  'customer',
  'inventory',
  'rental',
  'payment',
] as const;

const INSERT_CHUNK_ROWS = 1000;

/** The shared dataset folder: `SAKILA_DIR`, else `../shared/datasets/sakila` beside the repo. */
export function defaultSakilaDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SAKILA_DIR) {
    return path.resolve(env.SAKILA_DIR);
  }
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

  return path.resolve(repoRoot, '..', 'shared', 'datasets', 'sakila');
}

/** True when `dir` holds the schema and the CSV files. */
export async function hasSakilaDataset(dir: string): Promise<boolean> {
  try {
    await fs.access(path.join(dir, 'schema.mysql.sql'));
    await fs.access(path.join(dir, 'payment.csv'));

    return true;
  } catch {
    return false;
  }
}

export interface LoadSakilaOptions {
  /** An open connection to the target database; left open. */
  connection?: mysql.Connection;
  /** Used to open (and close) a connection when `connection` is not given. */
  mysql?: mysql.ConnectionOptions;
  datasetDir?: string;
  /** Defaults to every table, in foreign-key order. */
  tables?: readonly string[];
}

export interface LoadSakilaResult {
  rows: Record<string, number>;
  durationMs: number;
}

/** The schema file's statements, one string each, without comment lines. */
function schemaStatements(text: string): string[] {
  const body = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n');

  return body
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '');
}

/**
 * Reads a CSV into a header and rows. An empty unquoted field is NULL; a quoted empty field
 * ("") stays an empty string, as the dataset's README specifies.
 */
async function readCsv(file: string): Promise<{ columns: string[]; rows: Array<Array<string | null>> }> {
  const text = await fs.readFile(file, 'utf8');
  // csv-parse only tells a quoted field from an unquoted one through a per-field cast
  // callback, which makes parsing about four times slower. Without `""` in the text no
  // field can be a quoted empty string, so every empty field is NULL.
  const hasQuotedEmpty = text.includes('""');
  const records = parse(text, hasQuotedEmpty ? { cast: (value, context) => (value === '' && !context.quoting ? null : value) } : {}) as Array<Array<string | null>>;
  const [header = [], ...rows] = records;
  if (!hasQuotedEmpty) {
    for (const row of rows) {
      for (let i = 0; i < row.length; i += 1) {
        if (row[i] === '') row[i] = null;
      }
    }
  }

  return { columns: header.map((name) => String(name)), rows };
}

function quoteIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

async function loadTable(connection: mysql.Connection, datasetDir: string, table: string): Promise<number> {
  const { columns, rows } = await readCsv(path.join(datasetDir, `${table}.csv`));
  const insert = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) VALUES ?`;
  for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
    // `VALUES ?` with an array of arrays expands client-side into one multi-row INSERT.
    await connection.query(insert, [rows.slice(i, i + INSERT_CHUNK_ROWS)]);
  }

  return rows.length;
}

/** Creates the Sakila tables in the connection's database and loads the CSV files into them. */
export async function loadSakila(options: LoadSakilaOptions): Promise<LoadSakilaResult> {
  const startedAt = Date.now();
  const datasetDir = options.datasetDir ?? defaultSakilaDir();
  if (!options.connection && !options.mysql) {
    throw new Error('loadSakila needs a connection or mysql connection options');
  }
  const connection = options.connection ?? (await mysql.createConnection(options.mysql!));
  try {
    const schema = await fs.readFile(path.join(datasetDir, 'schema.mysql.sql'), 'utf8');
    for (const statement of schemaStatements(schema)) {
      await connection.query(statement);
    }
    const rows: Record<string, number> = {};
    for (const table of options.tables ?? SAKILA_TABLES) {
      rows[table] = await loadTable(connection, datasetDir, table);
    }

    return { rows, durationMs: Date.now() - startedAt };
  } finally {
    if (!options.connection) {
      await connection.end();
    }
  }
}

interface CliArgs {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  datasetDir: string;
  isReplace: boolean;
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): CliArgs {
  const args: CliArgs = {
    host: env.SAKILA_MYSQL_HOST ?? '127.0.0.1',
    port: Number(env.SAKILA_MYSQL_PORT ?? 3306),
    user: env.SAKILA_MYSQL_USER ?? 'root',
    password: env.SAKILA_MYSQL_PASSWORD ?? '',
    database: 'sakila',
    datasetDir: defaultSakilaDir(env),
    isReplace: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = () => {
      const next = argv[i + 1];
      if (next === undefined) throw new Error(`Option ${flag} needs a value`);
      i += 1;

      return next;
    };
    switch (flag) {
      case '--host':
        args.host = value();
        break;
      case '--port':
        args.port = Number(value());
        break;
      case '--user':
        args.user = value();
        break;
      case '--database':
        args.database = value();
        break;
      case '--dataset':
        args.datasetDir = path.resolve(value());
        break;
      case '--replace':
        args.isReplace = true;
        break;
      default:
        throw new Error(`Unknown option ${flag}; use --host, --port, --user, --database, --dataset, --replace`);
    }
  }
  if (!/^[A-Za-z0-9_]+$/.test(args.database)) {
    throw new Error(`Database name ${args.database} must be letters, digits and underscores`);
  }

  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), process.env);
  if (!(await hasSakilaDataset(args.datasetDir))) {
    throw new Error(`No Sakila dataset in ${args.datasetDir}; set SAKILA_DIR or pass --dataset`);
  }
  const server = { host: args.host, port: args.port, user: args.user, password: args.password };
  const admin = await mysql.createConnection(server);
  try {
    if (args.isReplace) {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(args.database)}`);
    }
    await admin.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(args.database)}`);
  } finally {
    await admin.end();
  }
  const result = await loadSakila({ mysql: { ...server, database: args.database }, datasetDir: args.datasetDir });
  const total = Object.values(result.rows).reduce((sum, count) => sum + count, 0);
  process.stdout.write(`loaded ${total} rows into ${args.database} in ${(result.durationMs / 1000).toFixed(1)} s\n`);
  for (const [table, count] of Object.entries(result.rows)) {
    process.stdout.write(`  ${table}: ${count}\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
