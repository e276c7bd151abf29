// Covers the logger's error serializer: an error's own facts, never the driver connection on it.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.js';
import { serializeError } from '../../lib/logger.js';

describe('serializeError', () => {
  it('leaves out the database client a driver error carries', () => {
    const err = Object.assign(new Error('terminating connection'), {
      code: '57P01',
      client: { connectionParameters: { user: 'roster', password: 'hunter2-secret' } },
    });
    const logged = JSON.stringify(serializeError(err));

    expect(logged).toContain('57P01');
    expect(logged).not.toContain('hunter2-secret');
    expect(logged).not.toContain('connectionParameters');
  });

  it('keeps the code, details and cause of Roster errors', () => {
    const err = new ConfigError('CDP_TEST', 'Source "s" failed', { cause: new Error('inner'), details: { sourceId: 3 } });

    expect(serializeError(err)).toMatchObject({ code: 'CDP_TEST', details: { sourceId: 3 }, cause: { message: 'inner' } });
  });
});
