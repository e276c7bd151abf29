// Pins that SQL connector errors for an unresolvable host name that host, and that "unavailable
// for now" errors carry their cause code (ECONNREFUSED, ETIMEDOUT) in the message.
import { afterAll, describe, expect, it } from 'vitest';
import { mysqlConnector } from '../../connectors/mysql/index.js';
import { postgresConnector } from '../../connectors/postgres/index.js';
import { createTestContext } from '../../connectors/sdk/conformance.js';
import { ConfigError, TransientError } from '../../connectors/sdk/index.js';
import { unusedPort } from '../helpers/ports.js';

const ctx = createTestContext();

async function checkError(check: () => Promise<unknown>): Promise<Error> {
  return check().then(
    () => {
      throw new Error('check passed unexpectedly');
    },
    (err: Error) => err,
  );
}

afterAll(async () => {
  await postgresConnector.source!.close?.();
  await mysqlConnector.source!.close?.();
});

describe.each([
  ['postgres', postgresConnector, { database: 'roster', user: 'postgres' }],
  ['mysql', mysqlConnector, { database: 'roster', user: 'root' }],
])('%s connector', (_name, connector, base) => {
  it('names an unresolvable host', async () => {
    const err = await checkError(() => connector.source!.check(ctx, { ...base, host: 'roster-no-such-host.invalid', port: 1 }));

    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'CDP_CONNECTOR_UNREACHABLE' });
    expect(err.message).toContain('roster-no-such-host.invalid');
  });

  it('carries the cause code of a refused connection', async () => {
    const err = await checkError(async () => connector.source!.check(ctx, { ...base, host: '127.0.0.1', port: await unusedPort() }));

    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'CDP_CONNECTOR_UNAVAILABLE' });
    expect(err.message).toContain('ECONNREFUSED');
  });
});
