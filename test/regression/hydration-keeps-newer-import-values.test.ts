// Pins that hydration never overwrites values an import stored while hydration was reading the
// sources: the import read the source later, so its values are newer. Such profiles go back to
// the queue and are read again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runHydration } from '../../jobs/hydrate.js';
import type { JobDeps } from '../../jobs/index.js';
import { queueHydration } from '../../sql/profile-values.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('hydration racing an import', () => {
  let roster: TestDatabase;
  let source: TestDatabase;
  let deps: JobDeps;

  beforeAll(async () => {
    roster = await createTestDatabase();
    source = await createTestDatabase();
    await source.pool.query(`CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'Read by hydration');`);
    process.env.HYDRATION_RACE_SOURCE_URL = source.url;
    await applyYaml(
      roster.pool,
      `
apps:
  - key: shop
    type: postgres
    options: { connectionString: { env: HYDRATION_RACE_SOURCE_URL } }
sources:
  - { key: users, app: shop, table: users, identity: { column: id, property: user_id } }
properties:
  - { key: user_id, type: integer, unique: true, source: users, column: id }
  - { key: name, type: string, source: users, column: name }
`,
    );
    deps = { pool: roster.pool, log: pino({ level: 'silent' }), config: loadConfig({}), queue: { send: async () => {} } };
  });

  afterAll(async () => {
    await roster?.drop();
    await source?.drop();
  });

  it('keeps the newer value an import wrote while hydration read the old one, and reads the source again', async () => {
    const { rows } = await roster.pool.query<{ id: number }>(`INSERT INTO roster_core.profiles (user_id, name) VALUES (1, 'Stored before') RETURNING id`);
    const profileId = rows[0].id;
    await roster.pool.query(`INSERT INTO roster_core.identities (property_id, value, profile_id) SELECT id, '1', $1 FROM roster_core.properties WHERE key = 'user_id'`, [profileId]);
    await queueHydration(roster.pool, [profileId]);

    // The import: the source changes, the import reads and stores the new value, and commits
    // only after hydration has read the old value from the source.
    const importer = await roster.pool.connect();
    try {
      await importer.query('BEGIN');
      await importer.query(`UPDATE roster_core.profiles SET name = 'Read by the import', revision = nextval('roster_core.profile_revision_seq') WHERE id = $1`, [profileId]);
      const hydration = runHydration(deps);
      // Hydration has read the source (the value before the import's) and now waits for the importer's row lock.
      await expect
        .poll(async () => (await roster.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n, {
          timeout: 10_000,
          interval: 50,
        })
        .toBe(1);
      await source.pool.query(`UPDATE users SET name = 'Read by the import' WHERE id = 1`);
      await importer.query('COMMIT');
      await hydration;
    } finally {
      importer.release();
    }

    const { rows: after } = await roster.pool.query<{ name: string }>('SELECT name FROM roster_core.profiles WHERE id = $1', [profileId]);
    expect(after[0].name).toBe('Read by the import');
    const { rows: queue } = await roster.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.hydration_queue');
    expect(queue[0].n).toBe(0);
  });
});
