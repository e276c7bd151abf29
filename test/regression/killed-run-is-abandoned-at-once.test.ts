// Regression: a run whose process was killed no longer blocks its source for ten minutes; the
// next `roster run` fails it at once (its lease is gone) and a new run resumes the import.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { runOnce } from '../../cli/run.js';
import { loadConfig } from '../../lib/config.js';
import { acquireRunLease } from '../../sql/run-queries.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('killed runs', () => {
  let db: TestDatabase;
  let dir: string;
  const run = () => runOnce({ config: loadConfig({}), log: pino({ level: 'silent' }) }, { pool: db.pool, url: db.url }, { sources: ['people'] });

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-killed-'));
    await fs.writeFile(path.join(dir, 'people.csv'), 'id,email\n1,a@example.com\n2,b@example.com\n');
    await applyYaml(
      db.pool,
      `
apps:
  - { key: files, type: csv, options: {} }
sources:
  - { key: people, app: files, path: ${path.join(dir, 'people.csv')}, identity: { column: id, property: person_id } }
properties:
  - { key: person_id, type: integer, unique: true, source: people, column: id }
  - { key: email, type: email, unique: true, source: people, column: email }
`,
    );
  });

  afterAll(async () => {
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('abandons a running run whose process is gone and starts a new one at once', async () => {
    // A run left 'running' a second ago by a process that no longer holds its lease.
    const { rows } = await db.pool.query(
      `INSERT INTO roster_core.runs (kind, source_id, status, started_at, heartbeat_at)
       SELECT 'import', id, 'running', now(), now() FROM roster_core.sources WHERE key = 'people'
       RETURNING id`,
    );
    const outcome = await run();

    expect(outcome.failed).toBe(false);
    expect(outcome.busy).toEqual([]);
    const dead = await db.pool.query('SELECT status, error_code FROM roster.runs WHERE run_id = $1', [rows[0].id]);
    expect(dead.rows[0]).toEqual({ status: 'failed', error_code: 'CDP_RUN_ABANDONED' });
    expect(outcome.profiles).toBe(2);
  });

  it('leaves a slow run alone while another process holds its lease, and says so', async () => {
    // Its heartbeat is an hour old: slow, but its process still holds the lease.
    const { rows } = await db.pool.query(
      `INSERT INTO roster_core.runs (kind, source_id, status, started_at, heartbeat_at)
       SELECT 'import', id, 'running', now() - interval '1 hour', now() - interval '1 hour' FROM roster_core.sources WHERE key = 'people'
       RETURNING id`,
    );
    const holder = await db.pool.connect();
    try {
      expect(await acquireRunLease(holder, rows[0].id)).toBe(true);
      const outcome = await run();

      expect(outcome.busy).toEqual([{ kind: 'import', key: 'people', runId: rows[0].id }]);
      const live = await db.pool.query('SELECT status FROM roster.runs WHERE run_id = $1', [rows[0].id]);
      expect(live.rows[0].status).toBe('running');
    } finally {
      holder.release(true);
    }
  });
});
