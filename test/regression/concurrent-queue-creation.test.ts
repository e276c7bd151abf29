// Pins that several workers starting at once on a fresh database create the pg-boss queues
// without deadlocking or failing on a queue another worker just created.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type PgBoss from 'pg-boss';
import { createBoss, ensureQueues, QUEUES } from '../../jobs/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
const bosses: PgBoss[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(bosses.map((boss) => boss.stop({ graceful: false, wait: true })));
  await db.drop();
});

it('creates every queue once when several pg-boss instances ensure them at the same time', async () => {
  for (let i = 0; i < 4; i += 1) {
    const boss = createBoss(db.url);
    boss.on('error', () => {});
    bosses.push(boss);
  }
  await Promise.all(bosses.map((boss) => boss.start()));

  await Promise.all(bosses.map((boss) => ensureQueues(boss)));

  const { rows } = await db.pool.query<{ name: string }>("SELECT name FROM roster_jobs.queue WHERE name LIKE 'roster-%' ORDER BY name");
  expect(rows.map((row) => row.name)).toEqual(Object.values(QUEUES).sort());
});
