// Pins how the test setup finds its Postgres: DATABASE_URL first, then the default server, and a
// container only when nothing answers there, failing clearly without a container runtime.
import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { resolveAdminServer } from '../helpers/global-setup.js';
import { adminUrl } from '../helpers/database.js';

async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));

  return `postgres://postgres@127.0.0.1:${port}/test`;
}

const hasContainerRuntime = fs.existsSync('/var/run/docker.sock') || Boolean(process.env.DOCKER_HOST);

describe('test database fallback', () => {
  it('takes DATABASE_URL without probing anything', async () => {
    let started = false;
    const server = await resolveAdminServer({
      env: { DATABASE_URL: 'postgres://elsewhere/test' },
      defaultUrl: await closedPortUrl(),
      startContainer: async () => {
        started = true;

        return { url: 'unused' };
      },
    });

    expect(server.url).toBe('postgres://elsewhere/test');
    expect(started).toBe(false);
  });

  it('uses the default server when it answers and starts no container', async () => {
    let started = false;
    const server = await resolveAdminServer({
      env: {},
      defaultUrl: adminUrl(),
      startContainer: async () => {
        started = true;

        return { url: 'unused' };
      },
    });

    expect(server.url).toBe(adminUrl());
    expect(started).toBe(false);
  });

  it('falls back to a container only when the default server is unreachable', async () => {
    const server = await resolveAdminServer({ env: {}, defaultUrl: await closedPortUrl(), startContainer: async () => ({ url: 'postgres://container/test' }) });

    expect(server.url).toBe('postgres://container/test');
  });

  it.skipIf(hasContainerRuntime)('fails with a clear message when there is no container runtime (skipped where one exists: it would start Postgres)', async () => {
    const url = await closedPortUrl();

    await expect(resolveAdminServer({ env: {}, defaultUrl: url })).rejects.toThrow(`no PostgreSQL at ${url} and no container runtime: set DATABASE_URL`);
  });
});
