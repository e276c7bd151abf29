// Migrates a template database once per test run; each test file clones it. The template's
// name is unique to the run, so two runs on one server do not drop each other's template.
import type { TestProject } from 'vitest/node';
import { pino } from 'pino';
import { migrate } from '../../sql/migrate.js';
import { adminQuery, databaseUrl } from './database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const templateDb = `roster_test_template_${process.pid}`;
  await adminQuery(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${templateDb}`);
  await migrate(databaseUrl(templateDb), pino({ level: 'silent' }));
  project.provide('templateDb', templateDb);

  return async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`);
  };
}
