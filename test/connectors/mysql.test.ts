// Covers the MySQL connector against MariaDB: keyset reads, streamed full reads and hydration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlConnector } from '../../connectors/mysql/index.js';
import { createTestContext, describeConnectorConformance } from '../../connectors/sdk/conformance.js';
import { ConfigError, type CursorState, type SourceMessage } from '../../connectors/sdk/index.js';
import { createMariaDatabase, MARIADB, type TestMariaDatabase } from '../helpers/mariadb.js';

let maria: TestMariaDatabase;
let config: { host: string; port: number; user: string; password: string; database: string };
const source = mysqlConnector.source!;
const ctx = createTestContext();

beforeAll(async () => {
  maria = await createMariaDatabase();
  config = { ...MARIADB, database: maria.database };
  await maria.connection.query(`
    CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), updated_at DATETIME(6));
    INSERT INTO customers VALUES
      (1, 'a@x.test', 'Ann', '2024-01-01 10:00:00.000001'),
      (2, 'b@x.test', 'Bob', '2024-01-02 10:00:00.123456'),
      (3, 'c@x.test', 'Cy', '2024-01-02 10:00:00.123456'),
      (4, 'd@x.test', 'Di', '2024-01-02 10:00:00.123456'),
      (5, 'e@x.test', 'Ed', '2024-01-02 10:00:00.123456'),
      (6, 'f@x.test', 'Flo', '2024-01-03 10:00:00'),
      (7, 'g@x.test', 'Gus', NULL);
    CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2), status VARCHAR(20), created_at DATETIME);
    INSERT INTO orders (customer_id, amount, status, created_at) VALUES
      (1, 10.5, 'paid', '2024-02-01'), (1, 20, 'refunded', '2024-03-01'), (1, 5, 'open', '2024-01-01'),
      (2, 7, 'paid', '2024-02-01');
    CREATE TABLE victim (id INT);
  `);
});

afterAll(async () => {
  await source.close?.();
  await maria.drop();
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
  connector: mysqlConnector,
  fixtures: () => ({
    config,
    badCredentialsConfig: { ...config, user: 'no_such_user_roster', password: 'wrong' },
    read: {
      stream: { table: 'customers', cursor: { column: 'updated_at', tieBreaker: 'id' } },
      idColumn: 'id',
      // Customer 7 has no updated_at, so a cursor read skips it by design.
      expectedIds: ['1', '2', '3', '4', '5', '6'],
      batchSize: 3,
    },
  }),
});

describe('mysql source', () => {
  it('reads rows sharing a cursor value across a batch boundary exactly once (C1)', async () => {
    const stream = { table: `${maria.database}.customers`, cursor: { column: 'updated_at', tieBreaker: 'id' } };
    const first = await readAll(stream, null, 3);
    expect(readIds(first)).toEqual([1, 2, 3, 4, 5, 6]);

    const states = first.filter((m) => m.type === 'state').map((m) => (m as { state: CursorState }).state);
    expect(states[0]).toEqual({ value: '2024-01-02 10:00:00.123456', tieBreaker: '3' });
    expect(readIds(await readAll(stream, JSON.parse(JSON.stringify(states[0])), 3))).toEqual([4, 5, 6]);
    expect(readIds(await readAll(stream, JSON.parse(JSON.stringify(states[states.length - 1])), 3))).toEqual([]);
  });

  it('returns DATETIME values as zone-less UTC text', async () => {
    const [row] = await source.preview(ctx, config, { query: 'SELECT updated_at FROM customers WHERE id = 6' }, 1);
    expect(row.updated_at).toMatch(/^2024-01-03 10:00:00(\.0+)?$/);
  });

  it('streams a full read in batches without state', async () => {
    const messages = await readAll({ table: 'customers' }, null, 3);
    expect(messages.every((m) => m.type === 'records')).toBe(true);
    expect(messages.map((m) => (m.type === 'records' ? m.records.length : 0))).toEqual([3, 3, 1]);
  });

  it('throws a ConfigError for a missing table', async () => {
    const error = await readAll({ table: 'nope', cursor: { column: 'a', tieBreaker: 'b' } }, null, 3).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_SOURCE_TABLE_MISSING');
  });

  it('throws a ConfigError for a missing table on a streamed full read', async () => {
    const error = await readAll({ table: 'nope' }, null, 3).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_SOURCE_TABLE_MISSING');
  });

  it('fetches column, aggregate and query properties for several profiles in one call', async () => {
    const result = await source.fetchProperties(ctx, {
      config,
      stream: { query: 'SELECT id, name, email FROM customers' },
      match: { column: 'id', property: 'customerId' },
      profiles: [
        { id: 'p1', values: { customerId: 1, email: 'a@x.test' } },
        { id: 'p2', values: { customerId: '2', email: 'b@x.test' } },
        { id: 'p9', values: { customerId: 99 } },
      ],
      properties: [
        { key: 'name', kind: 'column', column: 'name' },
        { key: 'orderCount', kind: 'aggregate', table: 'orders', matchColumn: 'customer_id', function: 'count' },
        { key: 'spent', kind: 'aggregate', table: 'orders', matchColumn: 'customer_id', function: 'sum', column: 'amount' },
        { key: 'lastStatus', kind: 'aggregate', table: 'orders', matchColumn: 'customer_id', function: 'most_recent', column: 'status', sortColumn: 'created_at' },
        { key: 'firstStatus', kind: 'aggregate', table: 'orders', matchColumn: 'customer_id', function: 'least_recent', column: 'status', sortColumn: 'created_at' },
        { key: 'statuses', kind: 'query', sql: 'SELECT status FROM orders WHERE customer_id = {{profile.customerId}} ORDER BY created_at', isList: true },
      ],
    });
    expect(result.get('p1')).toEqual({ name: 'Ann', orderCount: 3, spent: '35.50', lastStatus: 'refunded', firstStatus: 'open', statuses: ['open', 'paid', 'refunded'] });
    expect(result.get('p2')).toMatchObject({ name: 'Bob', orderCount: 1, lastStatus: 'paid' });
    expect(result.get('p9')).toEqual({ orderCount: 0, spent: null, lastStatus: null, firstStatus: null });
  });

  it('binds a hostile placeholder value as a parameter', async () => {
    const hostile = "'; DROP TABLE victim; --";
    const result = await source.fetchProperties(ctx, {
      config,
      stream: { table: 'customers' },
      match: { column: 'id', property: 'customerId' },
      profiles: [{ id: 'p1', values: { customerId: 1, email: hostile } }],
      properties: [
        { key: 'matches', kind: 'query', sql: "SELECT COUNT(*) FROM customers WHERE email = '{{profile.email}}'" },
        { key: 'echo', kind: 'query', sql: 'SELECT {{profile.email}} AS echo, {{profile.missing}} AS missing' },
      ],
    });
    expect(result.get('p1')).toEqual({ matches: 0, echo: hostile });
    const [rows] = await maria.connection.query("SHOW TABLES LIKE 'victim'");
    expect(rows).toHaveLength(1);
  });
});
