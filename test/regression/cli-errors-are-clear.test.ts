// Pins that common CLI mistakes end in one clear `error <code>: <message>` line, naming the
// object, with no stack trace and no password: a missing members file, a busy HTTP port, an
// unreachable or missing database, a config folder without config files.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { unusedPort } from '../helpers/ports.js';

const ROSTER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/roster.js');

function roster(args: string[], env: Record<string, string>): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ROSTER, ...args], { env: { ...process.env, ROSTER_LOG_LEVEL: 'warn', ...env }, timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ status: typeof err?.code === 'number' ? err.code : err ? 1 : 0, stderr });
    });
  });
}

function expectOneCleanError(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');

  expect(lines.at(-1)).toMatch(new RegExp(`^error ${code}: `));
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('s3cret');
}

describe('roster CLI errors', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db.drop();
  });

  it('reports a missing --file of group add as CDP_FILE_NOT_FOUND naming the file', async () => {
    const { status, stderr } = await roster(['group', 'add', 'vip', '--file', '/tmp/roster-no-such-members.csv'], { DATABASE_URL: db.url });

    expect(status).toBe(2);
    expectOneCleanError(stderr, 'CDP_FILE_NOT_FOUND');
    expect(stderr).toContain('/tmp/roster-no-such-members.csv');
  });

  it('reports a database on a closed port as CDP_DATABASE_UNREACHABLE naming host and port', async () => {
    const port = await unusedPort();
    const { status, stderr } = await roster(['migrate'], { DATABASE_URL: `postgres://postgres:s3cret@127.0.0.1:${port}/roster` });

    expect(status).toBe(2);
    expectOneCleanError(stderr, 'CDP_DATABASE_UNREACHABLE');
    expect(stderr).toContain(`127.0.0.1:${port}`);
  });

  it('reports a malformed DATABASE_URL as CDP_DATABASE_URL_INVALID without echoing it', async () => {
    const { status, stderr } = await roster(['migrate'], { DATABASE_URL: 'not a url s3cret' });

    expect(status).toBe(2);
    expectOneCleanError(stderr, 'CDP_DATABASE_URL_INVALID');
  });

  it('reports a missing database as CDP_DATABASE_NOT_FOUND naming it', async () => {
    const url = new URL(db.url);
    url.password = 's3cret';
    url.pathname = '/roster_no_such_database';
    const { status, stderr } = await roster(['migrate'], { DATABASE_URL: url.toString() });

    expect(status).toBe(2);
    expectOneCleanError(stderr, 'CDP_DATABASE_NOT_FOUND');
    expect(stderr).toContain('roster_no_such_database');
  });

  it.each(['1', '2'])('reports a second start on a busy port as CDP_SERVER_PORT_IN_USE naming host and port, before any worker starts (%s HTTP processes)', async (processes) => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as net.AddressInfo;
    try {
      const { status, stderr } = await roster(['start'], { DATABASE_URL: db.url, ROSTER_HOST: '127.0.0.1', ROSTER_PORT: String(port), ROSTER_HTTP_PROCESSES: processes });

      expect(status).toBe(2);
      expectOneCleanError(stderr, 'CDP_SERVER_PORT_IN_USE');
      expect(stderr).toContain(`127.0.0.1:${port}`);
      // It failed before starting the job workers, which create their schema on start.
      const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'roster_jobs'`);
      expect(rows[0].n).toBe(0);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
  it('refuses to apply a folder without config files as CDP_CONFIG_DIR_EMPTY and deletes nothing', async () => {
    await applyYaml(db.pool, 'groups:\n  - { key: kept, type: manual }\n');
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'roster-empty-config-'));
    try {
      for (const command of ['validate', 'apply']) {
        const { status, stderr } = await roster([command, empty], { DATABASE_URL: db.url });

        expect(status).toBe(2);
        expectOneCleanError(stderr, 'CDP_CONFIG_DIR_EMPTY');
        expect(stderr).toContain(empty);
      }
      const { rows } = await db.pool.query<{ key: string }>('SELECT key FROM roster_core.groups');
      expect(rows).toEqual([{ key: 'kept' }]);
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });
});
