// Covers the connector registry's built-ins: all four register at module load with roles matching their specs.
import { describe, expect, it } from 'vitest';
import { getConnector, listConnectors } from '../../connectors/index.js';
import { ConfigError } from '../../connectors/sdk/index.js';

describe('connector registry', () => {
  it('registers the four built-in connectors at module load', () => {
    expect(listConnectors().map((c) => c.spec.name).sort()).toEqual(['csv', 'mysql', 'postgres', 'webhook']);
  });

  it('refuses a role a built-in does not declare', () => {
    expect(getConnector('postgres', 'destination').spec.name).toBe('postgres');
    const error = (() => {
      try {
        getConnector('webhook', 'source');
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CDP_CONNECTOR_ROLE_UNSUPPORTED');
  });
});
