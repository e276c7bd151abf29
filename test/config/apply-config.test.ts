// Covers applyConfig: creating, re-applying, changing and deleting config objects, dry runs and atomicity.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyConfig } from '../../sql/config/apply-config.js';
import type { DesiredConfig } from '../../sql/config/config-types.js';
import { loadConfigDir } from '../../sql/config/load-config-dir.js';
import { validateConfig } from '../../sql/config/validate-config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { EVENT_FILES, SECRET_ENV, VALID_FILES, WRITE_KEY_ENV, writeConfigDir } from './config-fixture.js';
import { createWriteKey, hashWriteKey } from '../../sql/write-keys.js';

let db: TestDatabase;

async function configOf(files: Record<string, string | undefined>): Promise<DesiredConfig> {
  const dir = await writeConfigDir(files);

  return validateConfig(await loadConfigDir(dir), { env: SECRET_ENV }).config;
}

async function profileColumns(): Promise<Record<string, string>> {
  const { rows } = await db.pool.query<{ name: string; type: string }>(
    `SELECT column_name AS name, format_type(a.atttypid, a.atttypmod) AS type
     FROM information_schema.columns AS c
     JOIN pg_attribute AS a ON a.attrelid = 'roster_core.profiles'::regclass AND a.attname = c.column_name
     WHERE c.table_schema = 'roster_core' AND c.table_name = 'profiles'`,
  );

  return Object.fromEntries(rows.map((row) => [row.name, row.type]));
}

async function viewColumns(view: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT column_name AS name FROM information_schema.columns
     WHERE table_schema = 'roster' AND table_name = $1 ORDER BY ordinal_position`,
    [view],
  );

  return rows.map((row) => row.name);
}

async function snapshot(): Promise<string> {
  const tables = ['apps', 'sources', 'properties', 'groups', 'destinations', 'destination_groups'];
  const parts = [];
  for (const table of tables) {
    const { rows } = await db.pool.query(`SELECT * FROM roster_core.${table} ORDER BY 1, 2`);
    parts.push(JSON.stringify(rows));
  }

  return parts.join('\n');
}

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db.drop();
});

beforeEach(async () => {
  // Start every test from no config at all.
  await applyConfig(db.pool, { apps: [], sources: [], properties: [], groups: [], destinations: [] });
  await db.pool.query('DELETE FROM roster_core.profiles');
  await db.pool.query('DELETE FROM roster_core.write_keys');
});

describe('applyConfig', () => {
  it('creates every object of a valid folder with its columns, views and links', async () => {
    const plan = await applyConfig(db.pool, await configOf(VALID_FILES));

    expect(plan.hasChanges).toBe(true);
    expect(plan.apps.created).toEqual(['crm_db', 'files', 'warehouse']);
    expect(plan.properties.created).toHaveLength(6);
    expect(plan.groups.created).toEqual(['high_value', 'vip']);
    expect(plan.destinations.created).toEqual(['crm']);

    const { rows: apps } = await db.pool.query(`SELECT options, secret_envs FROM roster_core.apps WHERE key = 'warehouse'`);
    expect(apps[0].options).not.toHaveProperty('password');
    expect(apps[0].secret_envs).toEqual({ password: 'WAREHOUSE_PASSWORD' });

    const { rows: sources } = await db.pool.query(
      `SELECT key, options, schedule_interval_ms, schedule_cron, next_run_at IS NOT NULL AS scheduled FROM roster_core.sources ORDER BY key`,
    );
    expect(sources[0]).toMatchObject({ key: 'customers', schedule_interval_ms: 600_000, schedule_cron: null, scheduled: true });
    expect(sources[0].options).toEqual({ table: 'customers', identity: { column: 'id', property: 'customer_id' }, createsProfiles: true, incremental: { column: 'updated_at', tieBreaker: 'id' } });
    expect(sources[1]).toMatchObject({ key: 'leads', schedule_cron: '*/5 * * * *' });

    const { rows: properties } = await db.pool.query(`SELECT key, fetch_options, column_name FROM roster_core.properties WHERE key IN ('ltv', 'country') ORDER BY key`);
    expect(properties[0].fetch_options).toEqual({ kind: 'query', sql: 'SELECT country FROM addresses WHERE customer_id = {{profile.customer_id}}' });
    expect(properties[1].fetch_options).toEqual({ kind: 'aggregate', table: 'payment', matchColumn: 'customer_id', function: 'sum', column: 'amount' });

    const columns = await profileColumns();
    expect(columns).toMatchObject({ customer_id: 'bigint', email: 'text', ltv: 'double precision', tags: 'text[]' });
    const { rows: indexes } = await db.pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'roster_core' AND tablename = 'profiles'`);
    const indexNames = indexes.map((row) => row.indexname);
    // Property columns get no index of their own: every value change would have to write it.
    expect(indexNames.filter((name) => name !== 'profiles_pkey')).toEqual([]);

    expect(await viewColumns('profiles')).toEqual(['profile_id', 'country', 'customer_id', 'email', 'first_name', 'ltv', 'tags', 'created_at', 'updated_at']);
    expect(await viewColumns('group_high_value')).toEqual(['profile_id']);

    const { rows: groups } = await db.pool.query(`SELECT key, type, compiled_sql FROM roster_core.groups ORDER BY key`);
    expect(groups[0].compiled_sql).toContain('ltv');
    expect(groups[1]).toMatchObject({ key: 'vip', type: 'manual', compiled_sql: null });

    const { rows: destinations } = await db.pool.query(
      `SELECT d.mapping, d.config_hash, (SELECT count(*)::int FROM roster_core.destination_groups AS dg WHERE dg.destination_id = d.id) AS groups
       FROM roster_core.destinations AS d`,
    );
    expect(destinations[0]).toMatchObject({ mapping: { email: 'email', first_name: 'first_name' }, groups: 2 });
    expect(destinations[0].config_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes nothing when the same folder is applied twice', async () => {
    const dir = await writeConfigDir(VALID_FILES);
    await applyConfig(db.pool, validateConfig(await loadConfigDir(dir), { env: SECRET_ENV }).config);
    const before = await snapshot();

    const again = await applyConfig(db.pool, validateConfig(await loadConfigDir(dir), { env: SECRET_ENV }).config);

    expect(again.hasChanges).toBe(false);
    expect(again.apps).toEqual({ created: [], updated: [], deleted: [], unchanged: ['crm_db', 'files', 'warehouse'] });
    expect(again.impacts).toEqual([]);
    expect(await snapshot()).toBe(before);
  });

  it('writes nothing on a dry run', async () => {
    const plan = await applyConfig(db.pool, await configOf(VALID_FILES), { dryRun: true });

    expect(plan.dryRun).toBe(true);
    expect(plan.apps.created).toHaveLength(3);
    const { rows } = await db.pool.query('SELECT count(*)::int AS count FROM roster_core.apps');
    expect(rows[0].count).toBe(0);
    expect(await profileColumns()).not.toHaveProperty('email');
  });

  it('deletes objects that leave the files, with their columns and views', async () => {
    await applyConfig(db.pool, await configOf(VALID_FILES));
    const properties = VALID_FILES['model/properties.yml'].replace(/  - key: ltv[\s\S]*?(?=  - key: country)/, '');
    const sources = VALID_FILES['sources.yml'].replace(/  - key: leads[\s\S]*$/, '');

    const plan = await applyConfig(
      db.pool,
      await configOf({
        ...VALID_FILES,
        'sources.yml': sources,
        'model/properties.yml': properties,
        'model/groups.json': JSON.stringify({ groups: [{ key: 'vip', type: 'manual' }] }),
        'destinations.yml': undefined,
      }),
    );

    expect(plan.destinations.deleted).toEqual(['crm']);
    expect(plan.groups.deleted).toEqual(['high_value']);
    expect(plan.properties.deleted).toEqual(['ltv']);
    expect(plan.sources.deleted).toEqual(['leads']);
    expect(plan.apps.unchanged).toEqual(['crm_db', 'files', 'warehouse']);
    expect(await profileColumns()).not.toHaveProperty('ltv');
    expect(await viewColumns('profiles')).not.toContain('ltv');
    expect(await viewColumns('group_high_value')).toEqual([]);
    const { rows } = await db.pool.query(`SELECT key FROM roster_core.groups`);
    expect(rows).toEqual([{ key: 'vip' }]);
  });

  it('recreates the column of a property whose type changes and queues profiles for refetch', async () => {
    await applyConfig(db.pool, await configOf(VALID_FILES));
    await db.pool.query(`INSERT INTO roster_core.profiles (first_name) VALUES ('Ada'), ('Grace')`);
    const changed = VALID_FILES['model/properties.yml'].replace('key: first_name\n    type: string', 'key: first_name\n    type: integer');

    const plan = await applyConfig(db.pool, await configOf({ ...VALID_FILES, 'model/properties.yml': changed }));

    expect(plan.properties.updated).toEqual(['first_name']);
    expect((await profileColumns()).first_name).toBe('bigint');
    const { rows } = await db.pool.query('SELECT count(*)::int AS queued FROM roster_core.hydration_queue');
    expect(rows[0].queued).toBe(2);
    expect(await viewColumns('group_high_value')).toEqual(['profile_id']);
  });

  it('updates a group whose rule changes and recomputes its members', async () => {
    await applyConfig(db.pool, await configOf(VALID_FILES));
    await db.pool.query(`INSERT INTO roster_core.profiles (ltv) VALUES (100), (200)`);
    const groups = JSON.stringify({ groups: [{ key: 'high_value', rule: { '>': [{ var: 'ltv' }, 50] } }, { key: 'vip', type: 'manual' }] });

    const plan = await applyConfig(db.pool, await configOf({ ...VALID_FILES, 'model/groups.json': groups }));

    expect(plan.groups).toMatchObject({ updated: ['high_value'], unchanged: ['vip'] });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS members FROM roster.group_members WHERE group_key = 'high_value'`);
    expect(rows[0].members).toBe(2);
  });

  it('leaves nothing half-written when a step fails midway', async () => {
    // A stray table named like the view apply creates for high_value makes it fail after the
    // apps, sources and properties were written.
    await db.pool.query('CREATE TABLE roster."group_high_value" (id int)');
    try {
      await expect(applyConfig(db.pool, await configOf(VALID_FILES))).rejects.toMatchObject({ code: '42809' });

      const { rows } = await db.pool.query(
        `SELECT (SELECT count(*)::int FROM roster_core.apps) AS apps,
                (SELECT count(*)::int FROM roster_core.sources) AS sources,
                (SELECT count(*)::int FROM roster_core.properties) AS properties`,
      );
      expect(rows[0]).toEqual({ apps: 0, sources: 0, properties: 0 });
      expect(await profileColumns()).not.toHaveProperty('email');
    } finally {
      await db.pool.query('DROP TABLE roster."group_high_value"');
    }
  });

  describe('events, write keys and event properties', () => {
    async function eventConfigOf(files: Record<string, string | undefined>): Promise<DesiredConfig> {
      // Without the CSV source, whose stored path depends on the temporary folder.
      const dir = await writeConfigDir({ ...files, 'sources.yml': VALID_FILES['sources.yml'].replace(/  - key: leads[\s\S]*$/, '') });

      return validateConfig(await loadConfigDir(dir), { env: WRITE_KEY_ENV }).config;
    }

    it('stores the events setting, the write key hash, event properties and destination event names', async () => {
      const plan = await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, ...EVENT_FILES }));

      expect(plan.settings.created).toEqual(['events']);
      expect(plan.writeKeys.created).toEqual(['site']);
      const { rows: settings } = await db.pool.query(`SELECT value FROM roster_core.settings WHERE key = 'events'`);
      expect(settings[0].value).toEqual({ userIdProperty: 'customer_id', anonymousIdsPerProfile: 20, retentionDays: 90 });
      const { rows: keys } = await db.pool.query(`SELECT name, key_hash, key_prefix, origin, revoked_at FROM roster_core.write_keys`);
      expect(keys).toEqual([{ name: 'site', key_hash: hashWriteKey('wk_site_secret_value'), key_prefix: 'wk_sit', origin: 'config', revoked_at: null }]);
      const { rows: properties } = await db.pool.query(`SELECT fetch_options, source_id FROM roster_core.properties WHERE key = 'spend_last_30_days'`);
      expect(properties[0]).toEqual({ fetch_options: { kind: 'event', name: 'Film Rented', function: 'sum', field: 'properties.amount', days: 30 }, source_id: null });
      const { rows: destinations } = await db.pool.query(`SELECT event_names FROM roster_core.destinations WHERE key = 'rentals_hook'`);
      expect(destinations[0].event_names).toEqual(['Checkout', 'Film Rented']);
    });

    it('changes nothing when a folder with events is applied twice', async () => {
      const files = { ...VALID_FILES, ...EVENT_FILES };
      await applyConfig(db.pool, await eventConfigOf(files));
      const before = await snapshot();

      const again = await applyConfig(db.pool, await eventConfigOf(files));

      expect(again.hasChanges).toBe(false);
      expect(await snapshot()).toBe(before);
    });

    it('changes the destination config hash when its events change', async () => {
      await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, ...EVENT_FILES }));
      const hashOf = async () => (await db.pool.query(`SELECT config_hash FROM roster_core.destinations WHERE key = 'rentals_hook'`)).rows[0].config_hash;
      const before = await hashOf();

      const plan = await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, 'events.yml': EVENT_FILES['events.yml'].replace(', Checkout', '') }));

      expect(plan.destinations.updated).toEqual(['rentals_hook']);
      expect(await hashOf()).not.toBe(before);
    });

    it('deletes the events setting and revokes config keys that leave the files, never CLI keys', async () => {
      await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, ...EVENT_FILES }));
      await createWriteKey(db.pool, 'server_side');
      const withoutEvents = EVENT_FILES['events.yml'].replace(/events:[\s\S]*?(?=properties:)/, '');

      const plan = await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, 'events.yml': withoutEvents }));
      const again = await applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, 'events.yml': withoutEvents }));

      expect(plan.settings.deleted).toEqual(['events']);
      expect(plan.writeKeys.deleted).toEqual(['site']);
      expect(again.hasChanges).toBe(false);
      const { rows: settings } = await db.pool.query(`SELECT key FROM roster_core.settings`);
      expect(settings).toEqual([]);
      const { rows: keys } = await db.pool.query(`SELECT name, revoked_at IS NOT NULL AS revoked FROM roster_core.write_keys ORDER BY name`);
      expect(keys).toEqual([
        { name: 'server_side', revoked: false },
        { name: 'site', revoked: true },
      ]);
    });

    it('refuses a config write key whose name a CLI key already has', async () => {
      await createWriteKey(db.pool, 'site');

      await expect(applyConfig(db.pool, await eventConfigOf({ ...VALID_FILES, ...EVENT_FILES }))).rejects.toMatchObject({ code: 'CDP_WRITE_KEY_EXISTS' });
    });
  });
});
