// Covers `roster start` with ROSTER_HTTP_PROCESSES=2: two HTTP processes share the port, events
// they store are resolved by the primary's pump, and SIGTERM stops every process. A busy port is
// covered with the other CLI errors (test/regression/cli-errors-are-clear.test.ts).
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { unusedPort } from '../helpers/ports.js';

const ROSTER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/roster.js');

function childPids(pid: number): Promise<number[]> {
  return new Promise((resolve) => {
    execFile('pgrep', ['-P', String(pid)], (_err, stdout) => resolve(stdout.split('\n').filter(Boolean).map(Number)));
  });
}

describe('roster start with several HTTP processes', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db.drop();
  });

  it('serves events from two processes, resolves them in the primary and stops them all on SIGTERM', async () => {
    const port = await unusedPort();
    const env = { ...process.env, DATABASE_URL: db.url, ROSTER_HOST: '127.0.0.1', ROSTER_PORT: String(port), ROSTER_HTTP_PROCESSES: '2', ROSTER_LOG_LEVEL: 'info' };
    const writeKey = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [ROSTER, 'write-key', 'create', 'http-processes'], { env }, (err, stdout) => (err ? reject(err) : resolve(/rk_[\w-]+/.exec(stdout)?.[0] ?? '')));
    });
    const primary = spawn(process.execPath, [ROSTER, 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    primary.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => primary.once('exit', resolve));
    try {
      await expect.poll(() => log.includes('HTTP processes listening'), { timeout: 30_000, interval: 100 }).toBe(true);
      expect(await childPids(primary.pid as number)).toHaveLength(2);

      const auth = `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          fetch(`http://127.0.0.1:${port}/v1/track`, {
            method: 'POST',
            headers: { authorization: auth, 'content-type': 'application/json' },
            body: JSON.stringify({ anonymousId: `device-${i}`, event: 'Opened', messageId: `m-${i}` }),
          }).then((response) => response.status),
        ),
      );
      expect(answers).toEqual(Array.from({ length: 40 }, () => 200));
      const counts = async () => (await db.pool.query<{ stored: number; resolved: number }>('SELECT count(*)::int AS stored, count(processed_at)::int AS resolved FROM roster_core.events')).rows[0];
      await expect.poll(counts, { timeout: 15_000, interval: 100 }).toEqual({ stored: 40, resolved: 40 });
    } finally {
      primary.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(await childPids(primary.pid as number)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});
