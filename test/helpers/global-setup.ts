// Migrates a template database once per test run; each test file clones it.
import { pino } from 'pino';
import { migrate } from '../../sql/migrate.js';
import { adminQuery, databaseUrl, TEMPLATE_DB } from './database.js';

export default async function setup(): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${TEMPLATE_DB}`);
  await migrate(databaseUrl(TEMPLATE_DB), pino({ level: 'silent' }));
}
