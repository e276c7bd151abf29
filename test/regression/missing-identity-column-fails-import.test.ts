// Pins that an import whose rows lack the identity column entirely fails with
// CDP_SOURCE_COLUMN_MISSING instead of "succeeded" with every row skipped, that an empty
// identity value stays a per-row skip, and that a property column missing from the rows is
// warned about once.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runOnce } from '../../cli/run.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let dir: string;
const logLines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-missing-column-'));
  await fs.writeFile(path.join(dir, 'no-id.csv'), 'email,name\na@example.com,Ann\n');
  await fs.writeFile(path.join(dir, 'empty-id.csv'), 'id,email\n1,b@example.com\n,c@example.com\n');
  await applyYaml(
    db.pool,
    `
apps:
  - { key: files, type: csv, options: {} }
sources:
  - { key: no_id, app: files, path: ${path.join(dir, 'no-id.csv')}, identity: { column: id, property: person_id }, schedule: { every: 1h } }
  - { key: empty_id, app: files, path: ${path.join(dir, 'empty-id.csv')}, identity: { column: id, property: person_id }, schedule: { every: 1h } }
properties:
  - { key: person_id, type: integer, unique: true, source: empty_id, column: id }
  - { key: email, type: email, source: empty_id, column: email }
  - { key: nickname, type: string, source: empty_id, column: nickname }
`,
  );
});

afterAll(async () => {
  await db?.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

it('fails an import whose rows have no identity column, and skips only a row with an empty identity', async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  const log = pino({ level: 'warn' }, sink);
  const outcome = await runOnce({ config: loadConfig({ ROSTER_IMPORT_BATCH_SIZE: '1' }), log }, { pool: db.pool, url: db.url });

  const byKey = Object.fromEntries(outcome.runs.map((run) => [run.objectKey, run]));
  expect(byKey.no_id).toMatchObject({ status: 'failed', errorCode: 'CDP_SOURCE_COLUMN_MISSING' });
  expect(byKey.empty_id).toMatchObject({ status: 'succeeded', counts: expect.objectContaining({ rowsSkipped: 1 }) });

  const missing = logLines.filter((line) => line.msg === 'property columns missing from source rows');
  expect(missing).toHaveLength(1);
  expect(missing[0]).toMatchObject({ columns: ['nickname'], rows: expect.any(Number) });
});
