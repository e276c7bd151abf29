// Covers bad input in runs: an unreachable source and a malformed CSV each fail their own run
// with a stable code, and the other sources' runs and exports still go through.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runOnce } from '../../cli/run.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('failing runs', () => {
  let db: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-failures-'));
    await fs.writeFile(path.join(dir, 'good.csv'), 'id,email\n1,a@example.com\n2,b@example.com\n');
    // The broken line comes after a good one: the good row must not be stored either.
    await fs.writeFile(path.join(dir, 'bad.csv'), 'id,email\n5,e@example.com\n6,f@example.com\n7,g@example.com\n3,"c@example.com\n4,d@example.com\n');
    process.env.FAILURES_DOWN_URL = 'postgres://nobody@127.0.0.1:1/nothing';
    await applyYaml(
      db.pool,
      `
apps:
  - { key: files, type: csv, options: {} }
  - key: down
    type: postgres
    options: { connectionString: { env: FAILURES_DOWN_URL } }
sources:
  - { key: good, app: files, path: ${path.join(dir, 'good.csv')}, identity: { column: id, property: person_id }, schedule: { every: 1h } }
  - { key: bad, app: files, path: ${path.join(dir, 'bad.csv')}, identity: { column: id, property: person_id }, schedule: { every: 1h } }
  - { key: gone, app: down, table: people, identity: { column: id, property: person_id }, schedule: { every: 1h } }
properties:
  - { key: person_id, type: integer, unique: true, source: good, column: id }
  - { key: email, type: email, unique: true, source: good, column: email }
  - { key: nickname, type: string, source: gone, column: nickname }
groups:
  - key: everyone
    rule: { "exists": [{ "var": "email" }] }
destinations:
  - { key: out, app: files, options: { path: ${path.join(dir, 'out.csv')} }, groups: [everyone], mapping: { email: email } }
`,
    );
  });

  afterAll(async () => {
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('records each failed run with its code, stores nothing from a malformed file, and still runs the others', async () => {
    const outcome = await runOnce({ config: loadConfig({ ROSTER_IMPORT_BATCH_SIZE: '1' }), log: pino({ level: 'silent' }) }, { pool: db.pool, url: db.url });

    expect(outcome.failed).toBe(true);
    const byKey = Object.fromEntries(outcome.runs.map((run) => [`${run.kind}:${run.objectKey}`, run]));
    expect(byKey['import:good'].status).toBe('succeeded');
    expect(byKey['import:bad'].status).toBe('failed');
    expect(byKey['import:bad'].errorCode).toBe('CDP_CSV_MALFORMED');
    expect(byKey['import:gone'].status).toBe('failed');
    expect(byKey['import:gone'].errorCode).toMatch(/^CDP_CONNECTOR_/);
    expect(byKey['export:out'].status).toBe('succeeded');
    expect(outcome.profiles).toBe(2);
    const written = await fs.readFile(path.join(dir, 'out.csv'), 'utf8');
    expect(written).toContain('a@example.com');
    expect(written).toContain('b@example.com');
  });
});
