// Covers the CSV connector: streamed reads, hydration by a match column, malformed files and appended exports.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvConnector } from '../../connectors/csv/index.js';
import { createTestContext, describeConnectorConformance } from '../../connectors/sdk/conformance.js';
import { ConfigError, type SourceMessage } from '../../connectors/sdk/index.js';

let dir: string;
const source = csvConnector.source!;
const destination = csvConnector.destination!;
const ctx = createTestContext();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'roster-csv-'));
  await writeFile(path.join(dir, 'people.csv'), 'id,email,name\n1,a@x.test,Ann\n2,b@x.test,"Bob, Jr."\n3,c@x.test,Cy\n4,a@x.test,Ann again\n5,e@x.test,Ed\n');
  await writeFile(path.join(dir, 'semicolon.csv'), 'id;name\n1;Ann\n');
  await writeFile(path.join(dir, 'unclosed.bad'), 'id,name\n1,Ann\n2,"Bob\n');
  await writeFile(path.join(dir, 'ragged.bad'), 'id,name\n1,Ann\n2,Bob,extra\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(stream: object, batchSize: number) {
  const messages: Array<SourceMessage<unknown>> = [];
  for await (const message of source.read(ctx, { config: { baseDir: dir }, stream, state: null, batchSize })) {
    messages.push(message);
  }

  return messages;
}

describeConnectorConformance({
  connector: csvConnector,
  skip: {
    badCredentials: 'CSV files have no credentials',
    write: 'the CSV destination has no value it refuses, so it never rejects a record',
  },
  fixtures: () => ({
    config: { baseDir: dir },
    badCredentialsConfig: { skip: 'CSV files have no credentials' },
    read: { stream: { path: 'people.csv' } as object, idColumn: 'id', expectedIds: ['1', '2', '3', '4', '5'], batchSize: 2 },
  }),
});

describe('csv source', () => {
  it('streams rows in batches keyed by the header row', async () => {
    const messages = await readAll({ path: 'people.csv' }, 2);
    expect(messages.map((m) => (m.type === 'records' ? m.records.length : 0))).toEqual([2, 2, 1]);
    expect(messages[0]).toEqual({ type: 'records', records: [{ id: '1', email: 'a@x.test', name: 'Ann' }, { id: '2', email: 'b@x.test', name: 'Bob, Jr.' }] });
  });

  it('honours a custom delimiter', async () => {
    expect(await readAll({ path: 'semicolon.csv', delimiter: ';' }, 10)).toEqual([{ type: 'records', records: [{ id: '1', name: 'Ann' }] }]);
  });

  it.each([['unclosed.bad'], ['ragged.bad']])('throws CDP_CSV_MALFORMED for %s', async (file) => {
    const error = await readAll({ path: file }, 10).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_CSV_MALFORMED');
    expect((error as ConfigError).details.line).toEqual(expect.any(Number));
  });

  it('throws CDP_CSV_NOT_FOUND for a missing file', async () => {
    const error = await readAll({ path: 'absent.csv' }, 10).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_CSV_NOT_FOUND');
  });

  it('refuses a path outside the base directory', async () => {
    const error = await readAll({ path: '../etc/passwd' }, 10).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_CSV_PATH_OUTSIDE_BASE');
  });

  it('fetches column and list properties by the match column', async () => {
    const result = await source.fetchProperties(ctx, {
      config: { baseDir: dir },
      stream: { path: 'people.csv' } as object,
      match: { column: 'email', property: 'email' },
      profiles: [{ id: 'p1', values: { email: 'a@x.test' } }, { id: 'p2', values: { email: 'zz@x.test' } }],
      properties: [
        { key: 'name', kind: 'column', column: 'name' },
        { key: 'ids', kind: 'column', column: 'id', isList: true },
      ],
    });
    expect(result).toEqual(new Map([['p1', { name: 'Ann', ids: ['1', '4'] }]]));
  });

  it('discovers the CSV files of the base directory', async () => {
    const catalog = await source.discover(ctx, { baseDir: dir });
    expect(catalog.streams.map((s) => s.name)).toEqual(['people.csv', 'semicolon.csv']);
  });
});

describe('csv destination', () => {
  it('appends one line per record and writes the header only once', async () => {
    const request = {
      config: { baseDir: dir },
      options: { path: 'export.csv' },
      fields: [
        { name: 'email', type: 'email' as const, isList: false },
        { name: 'tags', type: 'string' as const, isList: true },
      ],
    };
    const first = await destination.write(ctx, {
      ...request,
      records: [{ recordId: 'p1', action: 'create', properties: { email: 'a@x.test', tags: ['x', 'y'] }, groups: ['vip', 'new'] }],
    });
    await destination.write(ctx, { ...request, records: [{ recordId: 'p2', action: 'remove', properties: { email: 'b@x.test, "B"' }, groups: [] }] });

    expect(first).toEqual({ accepted: ['p1'], rejected: [] });
    expect(await readFile(path.join(dir, 'export.csv'), 'utf8')).toBe(
      'action,profile_id,email,tags,groups\ncreate,p1,a@x.test,x;y,vip;new\nremove,p2,"b@x.test, ""B""",,\n',
    );
  });
});
