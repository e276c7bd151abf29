// Covers the values of new profiles, which an import inserts in one statement with a typed
// array per column: every property type, text that needs quoting, and list properties.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runOnce } from '../../cli/run.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let roster: TestDatabase;
let source: TestDatabase;

beforeAll(async () => {
  roster = await createTestDatabase();
  source = await createTestDatabase();
  await source.pool.query(`
    CREATE TABLE people (id int PRIMARY KEY, name text, score numeric, active boolean, born timestamptz, tags text[], logins timestamptz[]);
    INSERT INTO people VALUES
      (1, 'Ann "the" {first}, \\ one', 1.5, true, '2024-05-01T12:00:00Z', ARRAY['a,b', 'c"d', '{e}', 'NULL', ''], ARRAY['2024-01-01T00:00:00Z', '2024-02-01T10:30:00Z']::timestamptz[]),
      (2, NULL, NULL, false, NULL, ARRAY[]::text[], NULL),
      (3, '', -2, NULL, '1999-12-31T23:59:59.5Z', NULL, ARRAY[]::timestamptz[]);
  `);
  process.env.NEW_PROFILE_VALUES_URL = source.url;
  await applyYaml(
    roster.pool,
    `
apps:
  - key: db
    type: postgres
    options: { connectionString: { env: NEW_PROFILE_VALUES_URL } }
sources:
  - { key: people, app: db, table: people, identity: { column: id, property: person_id } }
properties:
  - { key: person_id, type: integer, unique: true, source: people, column: id }
  - { key: name, type: string, source: people, column: name }
  - { key: score, type: float, source: people, column: score }
  - { key: active, type: boolean, source: people, column: active }
  - { key: born, type: date, source: people, column: born }
  - { key: tags, type: string, list: true, source: people, column: tags }
  - { key: logins, type: date, list: true, source: people, column: logins }
`,
  );
});

afterAll(async () => {
  await roster?.drop();
  await source?.drop();
});

it('stores every type, quoted text and lists of new profiles as the source has them', async () => {
  const outcome = await runOnce({ config: loadConfig({}), log: pino({ level: 'silent' }) }, { pool: roster.pool, url: roster.url }, { sources: ['people'] });

  expect(outcome.failed).toBe(false);
  const { rows } = await roster.pool.query(
    `SELECT person_id, name, score, active, born, tags, logins, value_times
     FROM roster_core.profiles
     ORDER BY person_id`,
  );
  expect(rows.map(({ value_times: _times, ...values }) => values)).toEqual([
    {
      person_id: 1,
      name: 'Ann "the" {first}, \\ one',
      score: 1.5,
      active: true,
      born: new Date('2024-05-01T12:00:00Z'),
      tags: ['a,b', 'c"d', '{e}', 'NULL', ''],
      logins: [new Date('2024-01-01T00:00:00Z'), new Date('2024-02-01T10:30:00Z')],
    },
    // A missing list is an empty list, as when a value is updated.
    { person_id: 2, name: null, score: null, active: false, born: null, tags: [], logins: [] },
    { person_id: 3, name: '', score: -2, active: null, born: new Date('1999-12-31T23:59:59.5Z'), tags: [], logins: [] },
  ]);
  expect(Object.keys(rows[1].value_times).sort()).toEqual(['active', 'logins', 'person_id', 'tags']);
  expect(Object.keys(rows[2].value_times).sort()).toEqual(['born', 'logins', 'name', 'person_id', 'score', 'tags']);
});
