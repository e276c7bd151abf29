// A throwaway MariaDB database filled with generated customers and purchases, loaded with
// LOAD DATA LOCAL INFILE from temporary CSV files (far faster than INSERTs).
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import mysql from 'mysql2/promise';
import { COUNTRIES, createRandom, FIRST_NAMES, LAST_NAMES } from './prng.js';

export const MARIADB = {
  host: process.env.MARIADB_HOST ?? '127.0.0.1',
  port: Number(process.env.MARIADB_PORT ?? 3306),
  user: process.env.MARIADB_USER ?? 'root',
  password: process.env.MARIADB_PASSWORD ?? '',
};

export interface ShopDatabase {
  database: string;
  customers: number;
  purchases: number;
  drop(): Promise<void>;
}

async function writeLines(file: string, count: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(file);
  let chunk = '';
  for (let i = 1; i <= count; i += 1) {
    chunk += line(i);
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

/** `customers` rows with 0 to 4 purchases each (2 on average). */
export async function createShopDatabase(customers: number, seed = 42): Promise<ShopDatabase> {
  const database = `roster_bench_${randomBytes(3).toString('hex')}`;
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-bench-maria-'));
  const connection = await mysql.createConnection({
    ...MARIADB,
    multipleStatements: true,
    infileStreamFactory: (file: string) => createReadStream(file),
  });
  const drop = async (): Promise<void> => {
    const cleanup = await mysql.createConnection({ ...MARIADB });
    await cleanup.query(`DROP DATABASE IF EXISTS ${database}`);
    await cleanup.end();
  };
  try {
    await connection.query(`CREATE DATABASE ${database}`);
    await connection.query(`USE ${database}`);
    await connection.query(
      `CREATE TABLE customers (
         customer_id INT NOT NULL PRIMARY KEY,
         email VARCHAR(100) NOT NULL,
         first_name VARCHAR(50) NOT NULL,
         last_name VARCHAR(50) NOT NULL,
         country CHAR(2) NOT NULL,
         updated_at DATETIME NOT NULL
       );
       CREATE TABLE purchases (
         purchase_id INT NOT NULL PRIMARY KEY,
         customer_id INT NOT NULL,
         amount DECIMAL(10, 2) NOT NULL,
         KEY purchases_customer_id_idx (customer_id)
       )`,
    );
    const random = createRandom(seed);
    const customersCsv = path.join(tmp, 'customers.csv');
    await writeLines(customersCsv, customers, (i) => {
      const first = random.pick(FIRST_NAMES);
      const last = random.pick(LAST_NAMES);

      return `${i},${first.toLowerCase()}.${last.toLowerCase()}.${i}@example.com,${first},${last},${random.pick(COUNTRIES)},2024-01-01 00:00:00\n`;
    });
    const purchasesCsv = path.join(tmp, 'purchases.csv');
    let purchases = 0;
    const purchaseLines: string[] = [];
    const out = createWriteStream(purchasesCsv);
    for (let customer = 1; customer <= customers; customer += 1) {
      const count = random.int(0, 4);
      for (let k = 0; k < count; k += 1) {
        purchases += 1;
        purchaseLines.push(`${purchases},${customer},${random.int(100, 50_000) / 100}\n`);
      }
      if (purchaseLines.length >= 50_000) {
        if (!out.write(purchaseLines.join(''))) await once(out, 'drain');
        purchaseLines.length = 0;
      }
    }
    out.end(purchaseLines.join(''));
    await once(out, 'finish');

    const load = (file: string, table: string): Promise<unknown> =>
      connection.query({ sql: `LOAD DATA LOCAL INFILE ? INTO TABLE ${table} FIELDS TERMINATED BY ','`, values: [file], infileStreamFactory: () => createReadStream(file) });
    await load(customersCsv, 'customers');
    await load(purchasesCsv, 'purchases');

    return { database, customers, purchases, drop };
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  } finally {
    await connection.end().catch(() => {});
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
