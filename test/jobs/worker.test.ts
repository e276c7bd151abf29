// Covers the long-running worker on pg-boss: a queued import flows through hydration, groups
// and an export without any direct call, from a CSV file to a CSV file.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { bossQueue, createBoss, requestImportRun } from '../../jobs/index.js';
import { startWorker, type Worker } from '../../jobs/worker.js';
import { findObjectId } from '../../sql/object-queries.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('worker', () => {
  let db: TestDatabase;
  let dir: string;
  let worker: Worker | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-worker-'));
    await fs.writeFile(path.join(dir, 'people.csv'), 'id,email,plan\n1,a@example.com,pro\n2,b@example.com,free\n3,c@example.com,pro\n');
    await applyYaml(
      db.pool,
      `
apps:
  - { key: files, type: csv, options: {} }
sources:
  - key: people
    app: files
    path: ${path.join(dir, 'people.csv')}
    identity: { column: id, property: person_id }
properties:
  - { key: person_id, type: integer, unique: true, source: people, column: id }
  - { key: email, type: email, unique: true, source: people, column: email }
  - { key: plan, type: string, source: people, column: plan }
groups:
  - key: pro
    rule: { "==": [{ "var": "plan" }, "pro"] }
destinations:
  - key: out
    app: files
    options: { path: ${path.join(dir, 'out.csv')} }
    groups: [pro]
    mapping: { email: email }
`,
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs a queued import through to the export without help', async () => {
    const boss = createBoss(db.url);
    await boss.start();
    worker = await startWorker(boss, { pool: db.pool, log: pino({ level: 'silent' }), config: loadConfig({}) });
    const sourceId = (await findObjectId(db.pool, 'sources', 'people')) as number;
    await requestImportRun(db.pool, bossQueue(boss), sourceId, 'manual');

    await vi.waitFor(
      async () => {
        const { rows } = await db.pool.query(`SELECT kind, status FROM roster.runs WHERE kind = 'export' AND status = 'succeeded'`);
        expect(rows).toHaveLength(1);
      },
      { timeout: 30_000, interval: 200 },
    );
    const written = await fs.readFile(path.join(dir, 'out.csv'), 'utf8');
    expect(written).toContain('a@example.com');
    expect(written).toContain('c@example.com');
    expect(written).not.toContain('b@example.com');
    const imports = await db.pool.query(`SELECT status, counts FROM roster.runs WHERE kind = 'import'`);
    expect(imports.rows[0].status).toBe('succeeded');
    expect(imports.rows[0].counts.profilesCreated).toBe(3);
  });
});
