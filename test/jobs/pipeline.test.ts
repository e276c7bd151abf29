// Covers the whole flow on a Postgres source: import, typed values, identity, hydration,
// groups and webhook exports, including cases C2, C3, C4, C5, C6, C7 and C10.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runOnce } from '../../cli/run.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';

const log = pino({ level: 'silent' });
const config = loadConfig({ ROSTER_IMPORT_BATCH_SIZE: '3', ROSTER_EXPORT_BATCH_SIZE: '50' });

describe('data flow from a Postgres source to a webhook', () => {
  let roster: TestDatabase;
  let source: TestDatabase;
  let hook: WebhookServer;
  // Both sources are scheduled hourly, so after the first run they are run by name.
  const run = () => runOnce({ config, log }, { pool: roster.pool, url: roster.url }, { sources: ['users', 'orders'] });
  const runSource = (key: string) => runOnce({ config, log }, { pool: roster.pool, url: roster.url }, { sources: [key] });
  const sentIds = () => hook.received.flat().map((r) => `${r.action}:${r.properties.email}`);

  beforeAll(async () => {
    roster = await createTestDatabase();
    source = await createTestDatabase();
    hook = await startWebhookServer();
    await source.pool.query(`
      CREATE TABLE users (id int PRIMARY KEY, email text, name text, age text, updated_at timestamptz NOT NULL);
      CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL);
      INSERT INTO users VALUES
        (1, 'Ann@Example.com', 'Ann', '34', '2024-01-01'),
        (2, 'bob@example.com', 'Bob', '12abc', '2024-01-01'),
        (3, 'cy@example.com', 'Cy', '51', '2024-01-01'),
        (4, 'dee@example.com', 'Dee', '27', '2024-01-01'),
        (5, 'ann@example.com', 'Ann Two', '40', '2024-01-02');
      INSERT INTO orders VALUES
        (1, 1, 80, '2024-02-01'), (2, 1, 70, '2024-02-02'),
        (3, 2, 300, '2024-02-03'), (4, 3, 20, '2024-02-04');
    `);
    process.env.PIPELINE_SOURCE_URL = source.url;
    await applyYaml(
      roster.pool,
      `
apps:
  - key: shop
    type: postgres
    options: { connectionString: { env: PIPELINE_SOURCE_URL } }
  - key: hook
    type: webhook
    options: { url: "${hook.url}" }
sources:
  - key: users
    app: shop
    table: users
    identity: { column: id, property: user_id }
    incremental: { column: updated_at, tieBreaker: id }
    schedule: { every: 1h }
  - key: orders
    app: shop
    table: orders
    identity: { column: user_id, property: user_id }
    createsProfiles: false
    incremental: { column: id, tieBreaker: id }
    schedule: { every: 1h }
properties:
  - { key: user_id, type: integer, unique: true, source: users, column: id }
  - { key: email, type: email, unique: true, source: users, column: email }
  - { key: name, type: string, source: users, column: name }
  - { key: age, type: integer, source: users, column: age }
  - key: spend
    type: float
    source: users
    aggregate: { table: orders, matchColumn: user_id, function: sum, column: amount }
groups:
  - key: big_spenders
    rule: { ">": [{ "var": "spend" }, 100] }
destinations:
  - key: hook
    app: hook
    options: {}
    groups: [big_spenders]
    mapping: { email: email, spend: spend }
`,
    );
  });

  afterAll(async () => {
    await hook?.close();
    await roster?.drop();
    await source?.drop();
  });

  it('imports every row, hydrates aggregates and exports the group members', async () => {
    const outcome = await run();

    expect(outcome.failed).toBe(false);
    expect(outcome.profiles).toBe(5);
    const { rows } = await roster.pool.query('SELECT user_id, email, name, spend FROM roster.profiles ORDER BY user_id');
    expect(rows.map((r) => [r.user_id, r.email, r.spend])).toEqual([
      [1, 'ann@example.com', 150],
      [2, 'bob@example.com', 300],
      [3, 'cy@example.com', 20],
      [4, 'dee@example.com', null],
      // User 5 carries user 1's e-mail: kept apart, its e-mail not stored (case C7).
      [5, null, null],
    ]);
    expect(sentIds().sort()).toEqual(['create:ann@example.com', 'create:bob@example.com']);
  });

  it('sets aside a value that fails its type and keeps the rest of the row (C6)', async () => {
    const { rows } = await roster.pool.query(`SELECT property_key, raw_value, reason, source_key FROM roster.invalid_values`);
    expect(rows).toHaveLength(1);
    expect(rows[0].property_key).toBe('age');
    // Named after the source that gave the value, also when hydration (which reads every source) set it aside.
    expect(rows[0].source_key).toBe('users');
    expect(rows[0].raw_value).toBe('12abc');
    const bob = await roster.pool.query('SELECT age, name FROM roster.profiles WHERE user_id = 2');
    expect(bob.rows[0]).toEqual({ age: null, name: 'Bob' });
  });

  it('records a shared unique value as a conflict and keeps the profiles apart (C7)', async () => {
    const { rows } = await roster.pool.query('SELECT property_key, value, resolution FROM roster.identity_conflicts');
    expect(rows).toEqual([{ property_key: 'email', value: 'ann@example.com', resolution: 'kept_apart' }]);
    const owners = await roster.pool.query(
      `SELECT count(*)::int AS n FROM roster_core.identities i JOIN roster_core.properties p ON p.id = i.property_id WHERE p.key = 'email' AND i.value = 'ann@example.com'`,
    );
    expect(owners.rows[0].n).toBe(1);
  });

  it('reads nothing again and sends nothing when the same import runs twice (C2)', async () => {
    const before = await roster.pool.query('SELECT count(*)::int AS n FROM roster_core.profiles');
    hook.received.length = 0;
    // Forget the cursor, as if the worker died before saving it: every row is read again.
    await roster.pool.query('UPDATE roster_core.sources SET cursor = NULL');
    const outcome = await runSource('users');

    expect(outcome.failed).toBe(false);
    const after = await roster.pool.query('SELECT count(*)::int AS n FROM roster_core.profiles');
    expect(after.rows[0].n).toBe(before.rows[0].n);
    const imported = outcome.runs.find((r) => r.kind === 'import');
    expect(imported?.counts.rowsRead).toBe(5);
    expect(imported?.counts.profilesChanged ?? 0).toBe(0);
    expect(hook.received.flat()).toEqual([]);
  });

  it('sends a removal when a property change takes a profile out of the group (C3)', async () => {
    hook.received.length = 0;
    await source.pool.query(`UPDATE orders SET amount = 10 WHERE user_id = 1; INSERT INTO orders VALUES (5, 1, 1, '2024-03-01')`);
    const outcome = await run();

    expect(outcome.failed).toBe(false);
    expect(sentIds()).toEqual(['remove:ann@example.com']);
    const history = await roster.pool.query(`SELECT action, reason FROM roster.group_membership_history WHERE profile_id = (SELECT profile_id FROM roster.profiles WHERE user_id = 1) ORDER BY at`);
    expect(history.rows).toEqual([
      { action: 'enter', reason: 'data_change' },
      { action: 'exit', reason: 'data_change' },
    ]);
  });

  it('records per-record rejects and retries only the rejected records (C4)', async () => {
    hook.received.length = 0;
    await source.pool.query(`INSERT INTO orders VALUES (6, 3, 500, '2024-03-02'), (7, 4, 500, '2024-03-02'), (8, 1, 500, '2024-03-03')`);
    hook.respond = (records) => ({ status: 200, body: { rejected: records.filter((r) => r.properties.email === 'cy@example.com').map((r) => ({ recordId: r.recordId, code: 'bad_email', message: 'Mailbox refused' })) } });
    await run();

    const ledger = await roster.pool.query(`SELECT status, error_code, payload->'properties'->>'email' AS email FROM roster.export_records WHERE run_id = (SELECT max(run_id) FROM roster.export_records) ORDER BY email`);
    expect(ledger.rows).toEqual([
      { status: 'sent', error_code: null, email: 'ann@example.com' },
      { status: 'failed', error_code: 'bad_email', email: 'cy@example.com' },
      { status: 'sent', error_code: null, email: 'dee@example.com' },
    ]);

    hook.respond = () => ({ status: 200, body: {} });
    hook.received.length = 0;
    await runOnce({ config, log }, { pool: roster.pool, url: roster.url }, { destinations: ['hook'] });
    expect(sentIds()).toEqual(['create:cy@example.com']);
  });

  it('keeps changes due while the destination is down and delivers them once it is back (C5, C10)', async () => {
    hook.received.length = 0;
    hook.respond = () => ({ status: 503 });
    await source.pool.query(`INSERT INTO orders VALUES (9, 2, 1, '2024-04-01')`);
    const down = await run();

    expect(down.failed).toBe(true);
    const failedRun = down.runs.find((r) => r.kind === 'export');
    expect(failedRun?.status).toBe('failed');
    expect(hook.received.flat()).toEqual([]);

    hook.respond = () => ({ status: 200, body: {} });
    const back = await runOnce({ config, log }, { pool: roster.pool, url: roster.url }, { destinations: ['hook'] });
    expect(back.failed).toBe(false);
    expect(sentIds()).toEqual(['update:bob@example.com']);
    const again = await runOnce({ config, log }, { pool: roster.pool, url: roster.url }, { destinations: ['hook'] });
    expect(again.failed).toBe(false);
    expect(sentIds()).toEqual(['update:bob@example.com']);
  });
});
