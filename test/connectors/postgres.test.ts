// Covers the Postgres connector: SQL-source reads, hydration and the upserting destination, on a real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresConnector } from '../../connectors/postgres/index.js';
import { describeConnectorConformance, createTestContext } from '../../connectors/sdk/conformance.js';
import { ConfigError, type CursorState, type SourceMessage } from '../../connectors/sdk/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let config: { connectionString: string };
const source = postgresConnector.source!;
const destination = postgresConnector.destination!;
const ctx = createTestContext();

beforeAll(async () => {
  db = await createTestDatabase();
  config = { connectionString: db.url };
  await db.pool.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id integer PRIMARY KEY, email text, name text, updated_at timestamptz);
    INSERT INTO shop.customers VALUES
      (1, 'a@x.test', 'Ann', '2024-01-01 10:00:00.000001+00'),
      (2, 'b@x.test', 'Bob', '2024-01-02 10:00:00.123456+00'),
      (3, 'c@x.test', 'Cy', '2024-01-02 10:00:00.123456+00'),
      (4, 'd@x.test', 'Di', '2024-01-02 10:00:00.123456+00'),
      (5, 'e@x.test', 'Ed', '2024-01-02 10:00:00.123456+00'),
      (6, 'f@x.test', 'Flo', '2024-01-03 10:00:00+00'),
      (7, 'g@x.test', 'Gus', NULL);
    CREATE TABLE shop.orders (id serial PRIMARY KEY, customer_id integer, amount numeric, status text, created_at timestamptz);
    INSERT INTO shop.orders (customer_id, amount, status, created_at) VALUES
      (1, 10.5, 'paid', '2024-02-01'), (1, 20, 'refunded', '2024-03-01'), (1, 5, 'open', '2024-01-01'),
      (2, 7, 'paid', '2024-02-01');
    CREATE TABLE shop.victim (id integer);
  `);
});

afterAll(async () => {
  await source.close?.();
  await db.drop();
});

async function readAll(stream: object, state: CursorState | null, batchSize: number) {
  const messages: Array<SourceMessage<CursorState>> = [];
  for await (const message of source.read(ctx, { config, stream, state, batchSize })) {
    messages.push(message);
  }

  return messages;
}

const readIds = (messages: Array<SourceMessage<CursorState>>) => messages.flatMap((m) => (m.type === 'records' ? m.records.map((r) => r.id) : []));

describeConnectorConformance({
  connector: postgresConnector,
  fixtures: () => ({
    config,
    badCredentialsConfig: { host: '127.0.0.1', port: 5432, database: db.name, user: 'no_such_role_roster', password: 'wrong' },
    read: {
      stream: { table: 'shop.customers', cursor: { column: 'updated_at', tieBreaker: 'id' } },
      idColumn: 'id',
      // Customer 7 has no updated_at, so a cursor read skips it by design.
      expectedIds: ['1', '2', '3', '4', '5', '6'],
      batchSize: 3,
    },
    write: {
      options: { table: 'conformance_export' },
      fields: [{ name: 'age', type: 'integer', isList: false }],
      records: [
        { recordId: 'p1', action: 'create', properties: { age: 30 }, groups: ['vip'] },
        { recordId: 'p2', action: 'create', properties: { age: 'not a number' }, groups: [] },
        { recordId: 'p3', action: 'update', properties: { age: 41 }, groups: [] },
      ],
      expectRejected: ['p2'],
    },
  }),
});

describe('postgres source', () => {
  it('reads rows sharing a cursor value across a batch boundary exactly once (C1)', async () => {
    const stream = { table: 'shop.customers', cursor: { column: 'updated_at', tieBreaker: 'id' } };
    const first = await readAll(stream, null, 3);
    expect(readIds(first)).toEqual([1, 2, 3, 4, 5, 6]);

    const states = first.filter((m) => m.type === 'state').map((m) => (m as { state: CursorState }).state);
    const resumed = await readAll(stream, JSON.parse(JSON.stringify(states[0])), 3);
    expect(readIds(resumed)).toEqual([4, 5, 6]);

    const again = await readAll(stream, JSON.parse(JSON.stringify(states[states.length - 1])), 3);
    expect(readIds(again)).toEqual([]);
  });

  it('reads a query stream with a cursor as a subquery', async () => {
    const stream = { query: 'SELECT id, updated_at FROM shop.customers WHERE id > 2;', cursor: { column: 'updated_at', tieBreaker: 'id' } };
    expect(readIds(await readAll(stream, null, 2))).toEqual([3, 4, 5, 6]);
  });

  it('streams a full read in batches without state', async () => {
    const messages = await readAll({ table: 'shop.customers' }, null, 3);
    expect(messages.every((m) => m.type === 'records')).toBe(true);
    expect(messages.map((m) => (m.type === 'records' ? m.records.length : 0))).toEqual([3, 3, 1]);
  });

  it('throws a ConfigError for a missing table', async () => {
    const error = await readAll({ table: 'shop.nope' }, null, 3).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_SOURCE_TABLE_MISSING');
  });

  it('discovers schema-qualified tables with their columns', async () => {
    const catalog = await source.discover(ctx, config);
    const customers = catalog.streams.find((s) => s.name === 'shop.customers');
    expect(customers?.columns.map((c) => c.name)).toEqual(['id', 'email', 'name', 'updated_at']);
  });

  it('previews a few rows', async () => {
    expect(await source.preview(ctx, config, { table: 'shop.customers' }, 2)).toHaveLength(2);
  });

  it('fetches column, list, aggregate and query properties for several profiles in one call', async () => {
    const profiles = [
      { id: 'p1', values: { customerId: 1, email: 'a@x.test' } },
      { id: 'p2', values: { customerId: '2', email: 'b@x.test' } },
      { id: 'p3', values: { customerId: 3 } },
      { id: 'p9', values: { customerId: 99 } },
    ];
    const result = await source.fetchProperties(ctx, {
      config,
      stream: { table: 'shop.customers' },
      match: { column: 'id', property: 'customerId' },
      profiles,
      properties: [
        { key: 'name', kind: 'column', column: 'name' },
        { key: 'emails', kind: 'column', column: 'email', isList: true },
        { key: 'orderCount', kind: 'aggregate', table: 'shop.orders', matchColumn: 'customer_id', function: 'count' },
        { key: 'spent', kind: 'aggregate', table: 'shop.orders', matchColumn: 'customer_id', function: 'sum', column: 'amount' },
        { key: 'lastStatus', kind: 'aggregate', table: 'shop.orders', matchColumn: 'customer_id', function: 'most_recent', column: 'status', sortColumn: 'created_at' },
        { key: 'firstStatus', kind: 'aggregate', table: 'shop.orders', matchColumn: 'customer_id', function: 'least_recent', column: 'status', sortColumn: 'created_at' },
        { key: 'biggest', kind: 'aggregate', table: 'shop.orders', matchColumn: 'customer_id', function: 'max', column: 'amount' },
        { key: 'upperName', kind: 'query', sql: 'SELECT upper(name) FROM shop.customers WHERE email = {{profile.email}}' },
      ],
    });
    expect(result.get('p1')).toEqual({ name: 'Ann', emails: ['a@x.test'], orderCount: 3, spent: '35.5', lastStatus: 'refunded', firstStatus: 'open', biggest: '20', upperName: 'ANN' });
    expect(result.get('p2')).toMatchObject({ name: 'Bob', orderCount: 1, spent: '7', lastStatus: 'paid', upperName: 'BOB' });
    expect(result.get('p3')).toEqual({ name: 'Cy', emails: ['c@x.test'], orderCount: 0, spent: null, lastStatus: null, firstStatus: null, biggest: null });
    expect(result.get('p9')).toEqual({ orderCount: 0, spent: null, lastStatus: null, firstStatus: null, biggest: null });
  });

  it('binds a hostile placeholder value as a parameter', async () => {
    const hostile = "'; DROP TABLE shop.victim; --";
    const result = await source.fetchProperties(ctx, {
      config,
      stream: { table: 'shop.customers' },
      match: { column: 'id', property: 'customerId' },
      profiles: [{ id: 'p1', values: { customerId: 1, email: hostile } }],
      properties: [
        { key: 'quoted', kind: 'query', sql: "SELECT count(*) FROM shop.customers WHERE email = '{{profile.email}}'" },
        { key: 'echo', kind: 'query', sql: 'SELECT {{profile.email}}::text AS echo, {{profile.missing}}::text AS missing' },
      ],
    });
    expect(result.get('p1')).toEqual({ quoted: 0, echo: hostile });
    const { rows } = await db.pool.query("SELECT to_regclass('shop.victim') IS NOT NULL AS present");
    expect(rows[0].present).toBe(true);
  });
});

describe('postgres destination', () => {
  const fields = [
    { name: 'email', type: 'email' as const, isList: false },
    { name: 'score', type: 'float' as const, isList: false },
    { name: 'signed_up', type: 'date' as const, isList: false },
    { name: 'tags', type: 'string' as const, isList: true },
  ];

  it('creates a typed table and upserts, updates and removes rows by key', async () => {
    const options = { table: 'public.people_export' };
    const first = await destination.write(ctx, {
      config,
      options,
      fields,
      records: [
        { recordId: 'p1', action: 'create', properties: { email: 'a@x.test', score: 1.5, signed_up: new Date('2024-01-01T00:00:00Z'), tags: ['a', 'b'] }, groups: ['vip', 'new'] },
        { recordId: 'p2', action: 'create', properties: { email: 'b@x.test', score: 2, signed_up: null, tags: [] }, groups: [] },
      ],
    });
    expect(first).toEqual({ accepted: ['p1', 'p2'], rejected: [] });

    const types = await db.pool.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'people_export' ORDER BY column_name`);
    expect(Object.fromEntries(types.rows.map((r) => [r.column_name, r.data_type]))).toEqual({
      email: 'text', groups: 'ARRAY', profile_id: 'text', score: 'double precision', signed_up: 'timestamp with time zone', tags: 'ARRAY',
    });

    const second = await destination.write(ctx, {
      config,
      options,
      fields: [...fields, { name: 'age', type: 'integer', isList: false }],
      records: [
        { recordId: 'p1', action: 'update', properties: { email: 'a2@x.test', score: 3, age: 40 }, groups: ['vip'] },
        { recordId: 'p2', action: 'remove', properties: {}, groups: [] },
      ],
    });
    expect(second.rejected).toEqual([]);
    const { rows } = await db.pool.query('SELECT profile_id, email, age, groups FROM people_export ORDER BY profile_id');
    expect(rows).toEqual([{ profile_id: 'p1', email: 'a2@x.test', age: 40, groups: ['vip'] }]);
  });

  it('rejects only the records whose values the table refuses', async () => {
    await db.pool.query('CREATE TABLE strict_export (profile_id text PRIMARY KEY, groups text[], age bigint CHECK (age >= 0))');
    const result = await destination.write(ctx, {
      config,
      options: { table: 'strict_export', createTable: false },
      fields: [{ name: 'age', type: 'integer', isList: false }],
      records: [
        { recordId: 'ok1', action: 'create', properties: { age: 1 }, groups: [] },
        { recordId: 'bad', action: 'create', properties: { age: -5 }, groups: [] },
        { recordId: 'ok2', action: 'create', properties: { age: 2 }, groups: [] },
      ],
    });
    expect(result.accepted.sort()).toEqual(['ok1', 'ok2']);
    expect(result.rejected).toEqual([expect.objectContaining({ recordId: 'bad', code: 'CDP_DESTINATION_VALUE_REFUSED', retryable: false })]);
  });

  it('throws a ConfigError for a missing table when it may not create one', async () => {
    const error = await destination
      .write(ctx, { config, options: { table: 'absent_export', createTable: false }, fields: [], records: [{ recordId: 'p1', action: 'create', properties: {}, groups: [] }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_DESTINATION_TABLE_MISSING');
  });
});
