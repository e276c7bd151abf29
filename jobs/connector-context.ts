import type { Logger } from '../lib/logger.js';
import type { ConnectorContext } from '../connectors/sdk/index.js';
import type { AppRow } from '../sql/object-queries.js';

export function connectorContext(log: Logger, app: AppRow, signal?: AbortSignal): ConnectorContext {
  return { log: log.child({ connector: app.type, appId: app.id }), signal: signal ?? new AbortController().signal };
}
