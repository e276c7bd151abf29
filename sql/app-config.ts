import { getConnector } from '../connectors/index.js';
import { readSecretEnv } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';

/** The stored parts of an app that its runtime options are built from. */
export interface StoredAppConfig {
  key?: string;
  /** The connector name; lets secrets of object type (e.g. webhook headers) be read as JSON. */
  type?: string;
  options: Record<string, unknown>;
  /** Secret option name -> environment variable (the `secret_envs` column). */
  secretEnvs?: Record<string, string>;
  /** Same as `secretEnvs`, for rows selected without renaming. */
  secret_envs?: Record<string, string>;
}

function schemaTypeOf(type: string | undefined, field: string): unknown {
  if (!type) {
    return undefined;
  }
  const properties = getConnector(type).spec.configSchema.properties as Record<string, { type?: unknown }> | undefined;

  return properties?.[field]?.type;
}

/**
 * An app's connector options with every secret read from the environment variable that
 * config names. Throws ConfigError `CDP_SECRET_ENV_MISSING` when one is unset, and
 * `CDP_SECRET_ENV_INVALID` when an object-valued secret is not JSON.
 */
export function resolveAppConfig(app: StoredAppConfig, env?: NodeJS.ProcessEnv): Record<string, unknown> {
  const resolved: Record<string, unknown> = { ...app.options };
  for (const [field, name] of Object.entries(app.secretEnvs ?? app.secret_envs ?? {})) {
    const value = readSecretEnv(name, env);
    const schemaType = schemaTypeOf(app.type, field);
    if (schemaType !== 'object' && schemaType !== 'array') {
      resolved[field] = value;
      continue;
    }
    try {
      resolved[field] = JSON.parse(value);
    } catch {
      // No cause: JSON.parse quotes the text it failed on, and that text is a secret.
      throw new ConfigError('CDP_SECRET_ENV_INVALID', `Environment variable ${name} for option ${field} of app ${app.key ?? app.type} must hold JSON`, {
        details: { env: name },
      });
    }
  }

  return resolved;
}
