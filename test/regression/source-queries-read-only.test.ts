// Pins that every statement a SQL source runs is read-only: a write in a query property or
// source query fails with CDP_SOURCE_QUERY_NOT_READ_ONLY and leaves the source untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlConnector } from '../../connectors/mysql/index.js';
import { postgresConnector } from '../../connectors/postgres/index.js';
import { createTestContext } from '../../connectors/sdk/conformance.js';
import { ConfigError, type FetchRequest } from '../../connectors/sdk/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createMariaDatabase, MARIADB, type TestMariaDatabase } from '../helpers/mariadb.js';

const ctx = createTestContext();
const profiles = [{ id: 'p1', values: { person_id: 1 } }];

async function drain(iterable: AsyncIterable<unknown>): Promise<void> {
  for await (const _message of iterable) {
    // Reading is the point: the statement runs while the stream is consumed.
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('postgres source statements', () => {
  let db: TestDatabase;
  let config: { connectionString: string };
  const source = postgresConnector.source!;
  const fetch = (sql: string): FetchRequest<unknown> => ({
    config,
    stream: { table: 'people' },
    match: { column: 'id', property: 'person_id' },
    profiles,
    properties: [{ key: 'victim_name', kind: 'query', sql }],
  });
  const victimCount = async () => Number((await db.pool.query('SELECT count(*) AS n FROM victim')).rows[0].n);

  beforeAll(async () => {
    db = await createTestDatabase();
    config = { connectionString: db.url };
    await db.pool.query(`
      CREATE TABLE people (id integer PRIMARY KEY, name text);
      INSERT INTO people VALUES (1, 'Ann');
      CREATE TABLE victim (id integer PRIMARY KEY, name text);
      INSERT INTO victim VALUES (1, 'Ann'), (2, 'Bob');
    `);
  });

  afterAll(async () => {
    await source.close?.();
    await db.drop();
  });

  it('fails a query property that deletes rows and deletes nothing', async () => {
    const err = await rejection(source.fetchProperties(ctx, fetch('DELETE FROM victim WHERE id = {{profile.person_id}} RETURNING name')));

    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY', details: { property: 'victim_name' } });
    expect(await victimCount()).toBe(2);
  });

  it('fails a query property hiding a delete in a WITH clause', async () => {
    const sql = 'WITH gone AS (DELETE FROM victim WHERE id = {{profile.person_id}} RETURNING name) SELECT name FROM gone';
    const err = await rejection(source.fetchProperties(ctx, fetch(sql)));

    expect(err).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await victimCount()).toBe(2);
  });

  it('refuses a parameterless query property that commits and then deletes', async () => {
    const err = await rejection(source.fetchProperties(ctx, fetch('SELECT 1; COMMIT; DELETE FROM victim')));

    expect(err).toBeInstanceOf(ConfigError);
    expect(await victimCount()).toBe(2);
  });

  it('fails a source query that writes through a function, on a full read and on a preview', async () => {
    await db.pool.query('CREATE FUNCTION wipe() RETURNS bigint LANGUAGE sql AS $$ WITH gone AS (DELETE FROM victim RETURNING 1) SELECT count(*) FROM gone $$');
    const stream = { query: 'SELECT wipe() AS id' };

    expect(await rejection(drain(source.read(ctx, { config, stream, state: null, batchSize: 10 })))).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await rejection(source.preview!(ctx, config, stream, 5))).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await victimCount()).toBe(2);
  });

  it('cannot turn read-only off for the statements that follow on a pooled connection', async () => {
    await source.fetchProperties(ctx, fetch("SELECT set_config('default_transaction_read_only', 'off', false)"));
    const err = await rejection(source.fetchProperties(ctx, fetch('DELETE FROM victim WHERE id = {{profile.person_id}} RETURNING name')));

    expect(err).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await victimCount()).toBe(2);
  });
});

describe('mysql source statements', () => {
  let maria: TestMariaDatabase;
  let config: Record<string, unknown>;
  const source = mysqlConnector.source!;
  const victimCount = async () => {
    const [rows] = await maria.connection.query('SELECT COUNT(*) AS n FROM victim');

    return Number((rows as Array<{ n: number }>)[0].n);
  };

  beforeAll(async () => {
    maria = await createMariaDatabase();
    config = { ...MARIADB, database: maria.database };
    await maria.connection.query(`
      CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(50));
      INSERT INTO people VALUES (1, 'Ann');
      CREATE TABLE victim (id INT PRIMARY KEY, name VARCHAR(50));
      INSERT INTO victim VALUES (1, 'Ann'), (2, 'Bob');
    `);
  });

  afterAll(async () => {
    await source.close?.();
    await maria.drop();
  });

  it('fails a query property that deletes rows and deletes nothing', async () => {
    const err = await rejection(
      source.fetchProperties(ctx, {
        config,
        stream: { table: 'people' },
        match: { column: 'id', property: 'person_id' },
        profiles,
        properties: [{ key: 'victim_name', kind: 'query', sql: 'DELETE FROM victim WHERE id = {{profile.person_id}} RETURNING name' }],
      }),
    );

    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY', details: { property: 'victim_name' } });
    expect(await victimCount()).toBe(2);
  });

  it('fails a full read and a preview whose query calls a writing function', async () => {
    await maria.connection.query('CREATE FUNCTION wipe() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM victim; RETURN 1; END');
    const stream = { query: 'SELECT wipe() AS id' };

    expect(await rejection(drain(source.read(ctx, { config, stream, state: null, batchSize: 10 })))).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await rejection(source.preview!(ctx, config, stream, 5))).toMatchObject({ code: 'CDP_SOURCE_QUERY_NOT_READ_ONLY' });
    expect(await victimCount()).toBe(2);
  });
});
