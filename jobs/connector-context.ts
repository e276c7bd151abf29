import type { Logger } from '../lib/logger.js';
import type { ConnectorContext, PropertyFetch } from '../connectors/sdk/index.js';
import type { AppRow, PropertyFetchRow } from '../sql/object-queries.js';

export function connectorContext(log: Logger, app: AppRow, signal?: AbortSignal): ConnectorContext {
  return { log: log.child({ connector: app.type, appId: app.id }), signal: signal ?? new AbortController().signal };
}

/** A stored property's fetch options as a source connector takes them. */
export function toPropertyFetch(row: PropertyFetchRow): PropertyFetch {
  const { kind, ...options } = row.fetchOptions;

  return { ...options, key: row.key, kind, isList: row.isList } as PropertyFetch;
}
