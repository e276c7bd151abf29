// Covers the import's fast write path and what it leaves to hydration: new profiles inserted
// with their values and aggregates, fresh keys that hydration does not fetch again, a profile
// fed by two sources, conflicts on the fast path, and aggregates the import could not fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runHydration } from '../../jobs/hydrate.js';
import { runImport } from '../../jobs/import-run.js';
import { requestImportRun, type JobDeps } from '../../jobs/index.js';
import { findObjectId } from '../../sql/object-queries.js';
import { queueHydration } from '../../sql/profile-values.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('import write path and hydration', () => {
  let roster: TestDatabase;
  let source: TestDatabase;
  let deps: JobDeps;

  const importSource = async (key: string): Promise<void> => {
    const sourceId = (await findObjectId(roster.pool, 'sources', key)) as number;
    await runImport(deps, await requestImportRun(roster.pool, deps.queue, sourceId, 'manual'));
  };
  const profile = async (userId: number) => {
    const { rows } = await roster.pool.query('SELECT user_id, email, name, spend, orders, tier FROM roster.profiles WHERE user_id = $1', [userId]);

    return rows[0];
  };

  beforeAll(async () => {
    roster = await createTestDatabase();
    source = await createTestDatabase();
    await source.pool.query(`
      CREATE TABLE users (id int PRIMARY KEY, email text, name text);
      CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL, amount numeric NOT NULL);
      CREATE TABLE crm (user_id int PRIMARY KEY, tier text);
      INSERT INTO users VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob'), (3, 'ann@example.com', 'Ann Again');
      INSERT INTO orders VALUES (1, 1, 80), (2, 1, 70), (3, 2, 300);
      INSERT INTO crm VALUES (1, 'gold'), (2, 'silver');
    `);
    process.env.IMPORT_HYDRATION_SOURCE_URL = source.url;
    await applyYaml(
      roster.pool,
      `
apps:
  - key: shop
    type: postgres
    options: { connectionString: { env: IMPORT_HYDRATION_SOURCE_URL } }
sources:
  - { key: users, app: shop, table: users, identity: { column: id, property: user_id } }
  - { key: crm, app: shop, table: crm, identity: { column: user_id, property: user_id }, createsProfiles: false }
properties:
  - { key: user_id, type: integer, unique: true, source: users, column: id }
  - { key: email, type: email, unique: true, source: users, column: email }
  - { key: name, type: string, source: users, column: name }
  - key: spend
    type: float
    source: users
    aggregate: { table: orders, matchColumn: user_id, function: sum, column: amount }
  - key: orders
    type: integer
    source: users
    aggregate: { table: orders, matchColumn: user_id, function: count }
  - { key: tier, type: string, source: crm, column: tier }
`,
    );
    deps = { pool: roster.pool, log: pino({ level: 'silent' }), config: loadConfig({ ROSTER_IMPORT_BATCH_SIZE: '10' }), queue: { send: async () => {} } };
  });

  afterAll(async () => {
    await roster?.drop();
    await source?.drop();
  });

  it('inserts new profiles with their columns, aggregates and value times, and queues them with what is fresh', async () => {
    await importSource('users');

    expect(await profile(1)).toEqual({ user_id: 1, email: 'ann@example.com', name: 'Ann', spend: 150, orders: 2, tier: null });
    expect(await profile(2)).toMatchObject({ spend: 300, orders: 1 });
    const { rows: times } = await roster.pool.query(`SELECT value_times FROM roster_core.profiles p WHERE p.user_id = 1`);
    expect(Object.keys(times[0].value_times).sort()).toEqual(['email', 'name', 'orders', 'spend', 'user_id']);
    const { rows: queued } = await roster.pool.query('SELECT changed_keys, fresh_keys FROM roster_core.hydration_queue ORDER BY profile_id');
    expect(queued).toHaveLength(3);
    for (const row of queued) {
      expect(row.changed_keys).toBeNull();
      expect([...row.fresh_keys].sort()).toEqual(['email', 'name', 'orders', 'spend', 'user_id']);
    }
  });

  it('records a unique value held by another new profile of the batch as a conflict and keeps it off', async () => {
    expect(await profile(3)).toMatchObject({ email: null, name: 'Ann Again', spend: null, orders: 0 });
    const { rows } = await roster.pool.query('SELECT property_key, value, resolution FROM roster.identity_conflicts');
    expect(rows).toEqual([{ property_key: 'email', value: 'ann@example.com', resolution: 'kept_apart' }]);
    const { rows: owners } = await roster.pool.query(`SELECT count(*)::int AS n FROM roster_core.identities WHERE value = 'ann@example.com'`);
    expect(owners[0].n).toBe(1);
  });

  it('fetches nothing again in hydration for what the import has just written', async () => {
    // Changed in the source after the import: hydration must not read it again.
    await source.pool.query(`UPDATE users SET name = 'Changed' WHERE id = 1`);
    const result = await runHydration(deps);

    expect(result.profiles).toBe(3);
    expect(await profile(1)).toMatchObject({ name: 'Ann', spend: 150 });
    const { rows } = await roster.pool.query('SELECT count(*)::int AS n FROM roster_core.hydration_queue');
    expect(rows[0].n).toBe(0);
  });

  it('still fetches every other property for a profile another source imported', async () => {
    await source.pool.query(`INSERT INTO orders VALUES (4, 1, 50)`);
    await importSource('crm');
    const { rows: queued } = await roster.pool.query('SELECT fresh_keys FROM roster_core.hydration_queue ORDER BY profile_id');
    // crm's only own column is tier; user_id is the users source's property.
    expect(queued.map((row) => row.fresh_keys)).toEqual([['tier'], ['tier']]);
    await runHydration(deps);

    // tier from crm's import; name and spend from users through hydration.
    expect(await profile(1)).toEqual({ user_id: 1, email: 'ann@example.com', name: 'Changed', spend: 200, orders: 3, tier: 'gold' });
    expect(await profile(2)).toMatchObject({ tier: 'silver', spend: 300 });
  });

  it('keeps a unique value an existing profile holds apart on the fast path too', async () => {
    await source.pool.query(`INSERT INTO users VALUES (4, 'BOB@example.com', 'Bob Two')`);
    await importSource('users');

    expect(await profile(4)).toMatchObject({ email: null, name: 'Bob Two' });
    const { rows } = await roster.pool.query(`SELECT value, profile_id, other_profile_id FROM roster_core.identity_conflicts WHERE value = 'bob@example.com'`);
    const bob = await roster.pool.query('SELECT id FROM roster_core.profiles WHERE user_id = 2');
    const bobTwo = await roster.pool.query('SELECT id FROM roster_core.profiles WHERE user_id = 4');
    expect(rows).toEqual([{ value: 'bob@example.com', profile_id: bobTwo.rows[0].id, other_profile_id: bob.rows[0].id }]);
    await runHydration(deps);
  });

  it('resets fresh keys when something else queues the profile, so hydration fetches everything', async () => {
    await source.pool.query(`UPDATE users SET name = 'Bob Renamed' WHERE id = 2`);
    await source.pool.query(`UPDATE crm SET tier = 'bronze' WHERE user_id = 2`);
    await importSource('crm');
    // An event (or a merge, or a config change) queues the same profile without fresh keys.
    const bob = await roster.pool.query('SELECT id FROM roster_core.profiles WHERE user_id = 2');
    await queueHydration(roster.pool, [bob.rows[0].id]);
    const { rows } = await roster.pool.query('SELECT fresh_keys FROM roster_core.hydration_queue WHERE profile_id = $1', [bob.rows[0].id]);
    expect(rows[0].fresh_keys).toBeNull();
    await runHydration(deps);

    expect(await profile(2)).toMatchObject({ name: 'Bob Renamed', tier: 'bronze' });
  });

  it('leaves aggregates it cannot fetch to hydration, which reports the source', async () => {
    await source.pool.query(`ALTER TABLE orders RENAME TO orders_gone`);
    await source.pool.query(`INSERT INTO users VALUES (5, 'cy@example.com', 'Cy')`);
    try {
      await importSource('users');
      const { rows: runs } = await roster.pool.query(`SELECT status FROM roster_core.runs WHERE kind = 'import' ORDER BY id DESC LIMIT 1`);
      expect(runs[0].status).toBe('succeeded');
      expect(await profile(5)).toMatchObject({ name: 'Cy', spend: null, orders: null });
      const { rows: queued } = await roster.pool.query(
        `SELECT fresh_keys FROM roster_core.hydration_queue AS q JOIN roster_core.profiles AS p ON p.id = q.profile_id WHERE p.user_id = 5`,
      );
      expect([...queued[0].fresh_keys].sort()).toEqual(['email', 'name', 'user_id']);
      const result = await runHydration(deps);
      expect(result.failedSources.map((failed) => failed.code)).toEqual(['CDP_SOURCE_TABLE_MISSING']);
    } finally {
      await source.pool.query(`ALTER TABLE orders_gone RENAME TO orders`);
    }
    const cy = await roster.pool.query('SELECT id FROM roster_core.profiles WHERE user_id = 5');
    await queueHydration(roster.pool, [cy.rows[0].id]);
    await runHydration(deps);
    expect(await profile(5)).toMatchObject({ spend: null, orders: 0 });
  });
});

describe('imports that leave hydration nothing to fetch', () => {
  let roster: TestDatabase;
  let source: TestDatabase;
  const sent: Array<{ queue: string }> = [];
  let deps: JobDeps;

  const config = (extra: string) => `
apps:
  - key: shop
    type: postgres
    options: { connectionString: { env: IMPORT_INLINE_SOURCE_URL } }
  - { key: hook_app, type: webhook, options: { url: "http://127.0.0.1:9/unused" } }
sources:
  - { key: users, app: shop, table: users, identity: { column: id, property: user_id } }
properties:
  - { key: user_id, type: integer, unique: true, source: users, column: id }
  - { key: name, type: string, source: users, column: name }
  - key: spend
    type: float
    source: users
    aggregate: { table: orders, matchColumn: user_id, function: sum, column: amount }
${extra}
groups:
  - key: big_spenders
    rule: { ">": [{ "var": "spend" }, 100] }
destinations:
  - { key: hook, app: hook_app, groups: [big_spenders], mapping: { name: name } }
`;
  const queued = async (): Promise<number> => (await roster.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.hydration_queue')).rows[0].n;
  const bigSpenders = async (): Promise<number[]> =>
    (await roster.pool.query<{ userId: number }>(`SELECT p.user_id AS "userId" FROM roster.group_members AS m JOIN roster.profiles AS p ON p.profile_id = m.profile_id WHERE m.group_key = 'big_spenders' ORDER BY 1`)).rows.map(
      (row) => row.userId,
    );
  const importUsers = async (): Promise<void> => {
    const sourceId = (await findObjectId(roster.pool, 'sources', 'users')) as number;
    await runImport(deps, await requestImportRun(roster.pool, deps.queue, sourceId, 'manual'));
  };

  beforeAll(async () => {
    roster = await createTestDatabase();
    source = await createTestDatabase();
    await source.pool.query(`
      CREATE TABLE users (id int PRIMARY KEY, name text);
      CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL, amount numeric NOT NULL);
      INSERT INTO users VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy');
      INSERT INTO orders VALUES (1, 1, 80), (2, 1, 70), (3, 2, 30);
    `);
    process.env.IMPORT_INLINE_SOURCE_URL = source.url;
    deps = {
      pool: roster.pool,
      log: pino({ level: 'silent' }),
      config: loadConfig({ ROSTER_IMPORT_BATCH_SIZE: '2' }),
      queue: { send: async (queue: string) => void sent.push({ queue }) },
    } as JobDeps;
  });

  afterAll(async () => {
    await roster?.drop();
    await source?.drop();
  });

  it('evaluates groups in the import, queues nothing for hydration and asks for exports', async () => {
    await applyYaml(roster.pool, config(''));
    await importUsers();

    expect(await queued()).toBe(0);
    expect(await bigSpenders()).toEqual([1]);
    const { rows } = await roster.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM roster_core.runs WHERE kind = 'export'`);
    expect(rows[0].n).toBe(1);

    // A changed aggregate moves a profile into the group on the next import, again without hydration.
    await source.pool.query('INSERT INTO orders VALUES (4, 2, 200)');
    await importUsers();
    expect(await queued()).toBe(0);
    expect(await bigSpenders()).toEqual([1, 2]);
  });

  it('queues profiles for hydration when an event property must be computed', async () => {
    await applyYaml(roster.pool, config('  - { key: visits, type: integer, event: { name: Visit, function: count } }'));
    await importUsers();

    expect(await queued()).toBe(3);
  });
});
