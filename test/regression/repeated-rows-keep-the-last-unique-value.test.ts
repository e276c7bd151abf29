// Pins that two rows of one batch for the same profile with different unique values leave the
// profile holding exactly the later value as its identity, whether the profile is new or not.
// The earlier value was claimed and then, with the later one, released as well: the profile
// kept a value in its column that no identity row protected.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runOnce } from '../../cli/run.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let dir: string;
const file = () => path.join(dir, 'people.csv');
const run = () => runOnce({ config: loadConfig({}), log: pino({ level: 'silent' }) }, { pool: db.pool, url: db.url }, { sources: ['people'] });
const emailIdentities = async (personId: number) => {
  const { rows } = await db.pool.query<{ value: string }>(
    `SELECT i.value
     FROM roster_core.identities AS i
     JOIN roster_core.properties AS p ON p.id = i.property_id AND p.key = 'email'
     JOIN roster_core.profiles AS r ON r.id = i.profile_id
     WHERE r.person_id = $1
     ORDER BY i.value`,
    [personId],
  );

  return rows.map((row) => row.value);
};

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-repeated-rows-'));
  await fs.writeFile(file(), 'id,email\n1,first@example.com\n1,second@example.com\n');
  await applyYaml(
    db.pool,
    `
apps:
  - { key: files, type: csv, options: {} }
sources:
  - { key: people, app: files, path: ${file()}, identity: { column: id, property: person_id } }
properties:
  - { key: person_id, type: integer, unique: true, source: people, column: id }
  - { key: email, type: email, unique: true, source: people, column: email }
`,
  );
});

afterAll(async () => {
  await db?.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

it('keeps only the later unique value of a new profile given twice in one batch', async () => {
  expect((await run()).failed).toBe(false);

  const { rows } = await db.pool.query('SELECT email FROM roster.profiles WHERE person_id = 1');
  expect(rows).toEqual([{ email: 'second@example.com' }]);
  expect(await emailIdentities(1)).toEqual(['second@example.com']);
});

it('keeps only the later unique value of an existing profile given twice in one batch', async () => {
  await fs.writeFile(file(), 'id,email\n1,third@example.com\n1,fourth@example.com\n');
  expect((await run()).failed).toBe(false);

  const { rows } = await db.pool.query('SELECT email FROM roster.profiles WHERE person_id = 1');
  expect(rows).toEqual([{ email: 'fourth@example.com' }]);
  expect(await emailIdentities(1)).toEqual(['fourth@example.com']);
});
