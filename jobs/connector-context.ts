import type { Logger } from '../lib/logger.js';
import type { ConnectorContext } from '../connectors/sdk/index.js';
import { resolveAppConfig } from '../sql/app-config.js';
import type { AppRow } from '../sql/object-queries.js';

/** An app's options with each secret read from the environment variable the config names. */
export function appConfig(app: AppRow): Record<string, unknown> {
  return resolveAppConfig(app);
}

export function connectorContext(log: Logger, app: AppRow, signal?: AbortSignal): ConnectorContext {
  return { log: log.child({ connector: app.type, appId: app.id }), signal: signal ?? new AbortController().signal };
}
