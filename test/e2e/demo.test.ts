// Covers `roster demo` end to end: store generation, config apply, imports, hydration, groups and exports.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, type DemoResult } from '../../cli/demo.js';
import { loadConfig } from '../../lib/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const CUSTOMERS = 300;

let roster: TestDatabase;
let warehouse: TestDatabase;
let outputDir: string;
let result: DemoResult;

async function warehouseCount(sql: string): Promise<number> {
  const { rows } = await warehouse.pool.query<{ count: number }>(`SELECT count(*)::int AS count FROM (${sql}) AS q`);

  return rows[0].count;
}

beforeAll(async () => {
  roster = await createTestDatabase();
  warehouse = await createTestDatabase();
  outputDir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-demo-test-'));
  const ctx = { config: loadConfig({ ROSTER_LOG_LEVEL: 'silent' }), log: pino({ level: 'silent' }) };
  result = await runDemo(ctx, { pool: roster.pool, url: roster.url }, { customers: CUSTOMERS, seed: 7, warehouseUrl: warehouse.url, outputDir });
});

afterAll(async () => {
  await roster?.drop();
  await warehouse?.drop();
  await fs.rm(outputDir, { recursive: true, force: true });
});

describe('roster demo', () => {
  it('creates one profile per customer and finishes every run', async () => {
    expect(result.outcome.failed).toBe(false);
    expect(result.store.customers).toBe(CUSTOMERS);
    expect(result.outcome.profiles).toBe(CUSTOMERS);
    const { rows } = await roster.pool.query<{ count: number }>('SELECT count(DISTINCT customer_id)::int AS count FROM roster.profiles');
    expect(rows[0].count).toBe(CUSTOMERS);
  });

  it('computes ltv as purchases minus refunds', async () => {
    const { rows: expected } = await warehouse.pool.query<{ id: number; ltv: string }>(
      `SELECT
         c.id,
         coalesce((SELECT sum(amount) FROM purchases WHERE customer_id = c.id), 0)
           - coalesce((SELECT sum(amount) FROM refunds WHERE customer_id = c.id), 0) AS ltv
       FROM customers AS c
       WHERE c.id IN (SELECT customer_id FROM refunds LIMIT 3)
          OR c.id IN (1, 2, 3)`,
    );
    expect(expected.length).toBeGreaterThanOrEqual(4);
    const { rows: actual } = await roster.pool.query<{ customerId: string; ltv: number }>(
      'SELECT customer_id AS "customerId", ltv FROM roster.profiles WHERE customer_id = ANY($1::bigint[])',
      [expected.map((row) => row.id)],
    );
    const ltvById = new Map(actual.map((row) => [Number(row.customerId), row.ltv]));
    for (const row of expected) {
      expect(ltvById.get(row.id)).toBeCloseTo(Number(row.ltv), 2);
    }
  });

  it('gives each group the members SQL over the warehouse finds', async () => {
    const ltvs = `SELECT c.id
      FROM customers AS c
      LEFT JOIN (SELECT customer_id, sum(amount) AS paid FROM purchases GROUP BY customer_id) AS p ON p.customer_id = c.id
      LEFT JOIN (SELECT customer_id, sum(amount) AS refunded FROM refunds GROUP BY customer_id) AS r ON r.customer_id = c.id
      WHERE coalesce(p.paid, 0) - coalesce(r.refunded, 0) > 1000`;
    const expected = {
      high_value: await warehouseCount(ltvs),
      lapsed: await warehouseCount(`SELECT customer_id FROM purchases GROUP BY customer_id HAVING max(purchased_at) < now() - interval '90 days'`),
      english_speakers: await warehouseCount(`SELECT id FROM customers WHERE locale IN ('en-US', 'en-GB')`),
    };
    const sizes = Object.fromEntries(result.outcome.groups.map((group) => [group.key, group.members]));
    expect(sizes).toEqual(expected);
    expect(expected.high_value).toBeGreaterThan(0);
    expect(expected.lapsed).toBeGreaterThan(0);
  });

  it('exports exactly the members of the followed groups to crm_contacts', async () => {
    const { rows: members } = await roster.pool.query<{ profileId: string; email: string }>(
      `SELECT DISTINCT m.profile_id::text AS "profileId", p.email
       FROM roster.group_members AS m
       JOIN roster.profiles AS p ON p.profile_id = m.profile_id
       WHERE m.group_key IN ('high_value', 'lapsed')`,
    );
    const { rows: contacts } = await warehouse.pool.query<{ profileId: string; email: string }>(
      'SELECT profile_id::text AS "profileId", email FROM crm_contacts',
    );
    const sorted = (rows: Array<{ profileId: string; email: string }>) => rows.map((row) => `${row.profileId} ${row.email}`).sort();
    expect(contacts.length).toBe(members.length);
    expect(sorted(contacts)).toEqual(sorted(members));
    expect(result.exports.find((destination) => destination.key === 'crm_contacts')?.records).toBe(members.length);
  });

  it('writes the high_value members to the CSV file', async () => {
    const text = await fs.readFile(path.join(outputDir, 'high_value.csv'), 'utf8');
    const dataLines = text.trim().split('\n').slice(1);
    const highValue = result.outcome.groups.find((group) => group.key === 'high_value')?.members;
    expect(dataLines.length).toBe(highValue);
  });
});
