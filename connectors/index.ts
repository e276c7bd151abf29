import { Ajv, type ErrorObject } from 'ajv';
import { ConfigError } from '../lib/errors.js';
import { csvConnector } from './csv/index.js';
import { mysqlConnector } from './mysql/index.js';
import { postgresConnector } from './postgres/index.js';
import type { Connector, ConnectorRole, JSONSchema } from './sdk/index.js';
import { webhookConnector } from './webhook/index.js';

const CONNECTORS = new Map<string, Connector>();

/** Adds a connector to the registry after checking that its objects match its spec. */
export function registerConnector(connector: Connector): void {
  const { spec } = connector;
  for (const role of ['source', 'destination'] as const) {
    const declared = spec.roles.includes(role);
    if (declared !== Boolean(connector[role])) {
      throw new ConfigError('CDP_CONNECTOR_SPEC_MISMATCH', `Connector ${spec.name} ${declared ? 'declares' : 'does not declare'} the ${role} role but ${declared ? 'has no' : 'has a'} ${role} implementation`);
    }
  }
  if (spec.roles.includes('source') && !spec.sourceOptionsSchema) {
    throw new ConfigError('CDP_CONNECTOR_SPEC_MISMATCH', `Connector ${spec.name} is a source but has no sourceOptionsSchema`);
  }
  if (spec.roles.includes('destination') && !spec.destinationOptionsSchema) {
    throw new ConfigError('CDP_CONNECTOR_SPEC_MISMATCH', `Connector ${spec.name} is a destination but has no destinationOptionsSchema`);
  }
  CONNECTORS.set(spec.name, connector);
}

for (const builtIn of [postgresConnector, mysqlConnector, csvConnector, webhookConnector]) {
  registerConnector(builtIn);
}

export function listConnectors(): Connector[] {
  return [...CONNECTORS.values()];
}

/**
 * Ends the connection pools connectors keep between runs. A one-shot command calls it before
 * exiting; idle pooled connections would otherwise hold the process open for seconds.
 */
export async function closeConnectors(): Promise<void> {
  await Promise.all(listConnectors().flatMap((connector) => [connector.source?.close?.(), connector.destination?.close?.()]));
}

export function getConnector(name: string, role?: ConnectorRole): Connector {
  const connector = CONNECTORS.get(name);
  if (!connector) {
    throw new ConfigError('CDP_CONNECTOR_UNKNOWN', `No connector named "${name}"; known: ${[...CONNECTORS.keys()].join(', ')}`);
  }
  if (role && !connector.spec.roles.includes(role)) {
    throw new ConfigError('CDP_CONNECTOR_ROLE_UNSUPPORTED', `Connector ${name} cannot be used as a ${role}`);
  }

  return connector;
}

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true });
const validators = new WeakMap<JSONSchema, ReturnType<typeof ajv.compile>>();

/** Validates `value` against a connector schema; returns readable problems (empty when valid). */
export function checkAgainstSchema(schema: JSONSchema, value: unknown): Array<{ field: string; message: string }> {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  if (validate(value)) {
    return [];
  }

  return (validate.errors ?? []).map((error: ErrorObject) => ({
    field: error.instancePath.replace(/^\//, '').replaceAll('/', '.') || String(error.params && 'missingProperty' in error.params ? error.params.missingProperty : ''),
    message: error.message ?? 'is invalid',
  }));
}
