import type { Logger } from '../lib/logger.js';
import { getConnector } from '../connectors/index.js';
import type { ConnectorContext, FetchProfile, PropertyFetch } from '../connectors/sdk/index.js';
import { resolveAppConfig } from '../sql/app-config.js';
import type { AppRow, PropertyFetchRow, SourceRow } from '../sql/object-queries.js';

export function connectorContext(log: Logger, app: AppRow, signal?: AbortSignal): ConnectorContext {
  return { log: log.child({ connector: app.type, appId: app.id }), signal: signal ?? new AbortController().signal };
}

/** A stored property's fetch options as a source connector takes them. */
function toPropertyFetch(row: PropertyFetchRow): PropertyFetch {
  const { kind, ...options } = row.fetchOptions;

  return { ...options, key: row.key, kind, isList: row.isList } as PropertyFetch;
}

/** Asks a source for properties of profiles, matched by the source's identity; values by profile id. */
export function fetchSourceProperties(log: Logger, source: SourceRow, profiles: FetchProfile[], fetches: PropertyFetchRow[]): Promise<Map<string, Record<string, unknown>>> {
  const { incremental: _incremental, identity, createsProfiles: _creates, ...stream } = source.options;

  return getConnector(source.app.type, 'source').source!.fetchProperties(connectorContext(log, source.app), {
    config: resolveAppConfig(source.app),
    stream,
    match: identity,
    profiles,
    properties: fetches.map(toPropertyFetch),
  });
}
