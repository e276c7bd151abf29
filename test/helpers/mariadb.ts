// Gives a test a fresh MariaDB database of its own.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export const MARIADB = {
  host: process.env.MARIADB_HOST ?? '127.0.0.1',
  port: Number(process.env.MARIADB_PORT ?? 3306),
  user: process.env.MARIADB_USER ?? 'root',
  password: process.env.MARIADB_PASSWORD ?? '',
};

export interface TestMariaDatabase {
  database: string;
  connection: mysql.Connection;
  drop(): Promise<void>;
}

export async function createMariaDatabase(): Promise<TestMariaDatabase> {
  const database = `roster_t_${randomBytes(5).toString('hex')}`;
  const admin = await mysql.createConnection({ ...MARIADB });
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const connection = await mysql.createConnection({ ...MARIADB, database, multipleStatements: true });

  return {
    database,
    connection,
    async drop() {
      await connection.end();
      const cleanup = await mysql.createConnection({ ...MARIADB });
      await cleanup.query(`DROP DATABASE IF EXISTS ${database}`);
      await cleanup.end();
    },
  };
}
