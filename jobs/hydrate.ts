import { withTransaction, type PoolClient } from '../lib/db.js';
import { describeError } from '../lib/errors.js';
import { getConnector } from '../connectors/index.js';
import type { PropertyFetch } from '../connectors/sdk/index.js';
import { computeEventProperty, loadEventProperties } from '../sql/event-property-queries.js';
import { markOutboundEventsReady } from '../sql/event-processing-queries.js';
import { updateMembershipsForProfiles } from '../sql/group-membership.js';
import { loadPropertyFetches, loadSources, type PropertyFetchRow, type SourceRow } from '../sql/object-queries.js';
import { writeProfileValues, type ProfileValuesRow } from '../sql/profile-values.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import { resolveAppConfig } from '../sql/app-config.js';
import { connectorContext } from './connector-context.js';
import { requestExportRunsForAll, requestOutboundDelivery, type JobDeps } from './index.js';

export interface HydrationResult {
  profiles: number;
  changed: number;
  batches: number;
  /** Sources that failed and were skipped, with their error code. */
  failedSources: Array<{ sourceId: number; code: string }>;
}

function toFetch(row: PropertyFetchRow): PropertyFetch {
  const { kind, ...options } = row.fetchOptions;

  return { ...options, key: row.key, kind, isList: row.isList } as PropertyFetch;
}

/**
 * Takes the oldest queued profiles with the property keys that changed since they were
 * queued (null when unknown); the rows stay locked (and come back on a crash) until commit.
 */
async function takeBatch(client: PoolClient, size: number): Promise<Map<number, Set<string> | null>> {
  const { rows } = await client.query<{ profileId: number; changedKeys: string[] | null }>(
    `DELETE FROM roster_core.hydration_queue
     WHERE profile_id IN (
       SELECT profile_id
       FROM roster_core.hydration_queue
       ORDER BY queued_at, profile_id
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     )
     RETURNING profile_id AS "profileId", changed_keys AS "changedKeys"`,
    [size],
  );

  return new Map(rows.map((row) => [row.profileId, row.changedKeys === null ? null : new Set(row.changedKeys)]));
}

async function loadProfileValues(client: PoolClient, profileIds: number[]): Promise<Array<{ id: string; values: Record<string, unknown> }>> {
  const { rows } = await client.query<{ id: number; values: Record<string, unknown> }>(
    `SELECT p.id, to_jsonb(p) - 'value_times' - 'revision' AS values
     FROM roster_core.profiles AS p
     WHERE p.id = ANY($1::bigint[])`,
    [profileIds],
  );

  return rows.map((row) => ({ id: String(row.id), values: row.values }));
}

async function hydrateBatch(deps: JobDeps, client: PoolClient, queued: Map<number, Set<string> | null>, sources: SourceRow[], fetches: PropertyFetchRow[], failedSources: Map<number, string>): Promise<number> {
  const profileIds = [...queued.keys()];
  const properties = await loadPropertyDefs(client);
  const profiles = await loadProfileValues(client, profileIds);
  const rows: ProfileValuesRow[] = [];
  for (const source of sources) {
    const own = fetches.filter((fetch) => fetch.sourceId === source.id);
    if (own.length === 0 || failedSources.has(source.id)) continue;
    const connector = getConnector(source.app.type, 'source');
    const { incremental: _incremental, identity, createsProfiles: _creates, ...stream } = source.options;
    try {
      const result = await connector.source!.fetchProperties(connectorContext(deps.log, source.app), {
        config: resolveAppConfig(source.app),
        stream,
        match: identity,
        profiles,
        properties: own.map(toFetch),
      });
      for (const [profileId, values] of result) {
        rows.push({ profileId: Number(profileId), values, ref: `${source.key}:hydration`, sourceId: source.id });
      }
    } catch (err) {
      // One unreachable source must not stop every other source's values from flowing: its
      // properties keep their last values until its next import queues the profiles again.
      const { code } = describeError(err);
      failedSources.set(source.id, code);
      deps.log.warn({ err, sourceId: source.id, code }, 'source skipped during hydration');
    }
  }
  // Event properties come from roster_core.events itself: one query per property.
  for (const property of await loadEventProperties(client)) {
    for (const [profileId, value] of await computeEventProperty(client, property, profileIds)) {
      rows.push({ profileId, values: { [property.key]: value }, ref: 'events:hydration' });
    }
  }
  const written = await writeProfileValues(client, { properties, sourceId: null, runId: null }, rows);
  // A profile is re-evaluated against the groups reading a key that changed here or before it
  // was queued (in the import or event that queued it); unknown keys mean every group. It may
  // also have new events, so groups over events are always re-evaluated.
  const changedKeys = new Map<number, Set<string> | null>();
  for (const [profileId, keys] of queued) {
    const fresh = written.changedKeys.get(profileId) ?? [];
    changedKeys.set(profileId, keys === null ? null : new Set([...keys, ...fresh]));
  }
  await updateMembershipsForProfiles(client, profileIds, 'data_change', { changedKeys, eventsChanged: true });

  return written.changedProfileIds.length;
}

/**
 * Refreshes queued profiles from every source, a batch at a time (one query per source and
 * property kind for the whole batch), updates their group memberships, then asks every
 * destination for an export run.
 */
export async function runHydration(deps: JobDeps): Promise<HydrationResult> {
  const sources = await loadSources(deps.pool);
  const fetches = await loadPropertyFetches(deps.pool);
  const result: HydrationResult = { profiles: 0, changed: 0, batches: 0, failedSources: [] };
  const failedSources = new Map<number, string>();
  const startedAt = Date.now();
  let outboundReady = 0;
  for (;;) {
    const batch = await withTransaction(deps.pool, async (client) => {
      const queued = await takeBatch(client, deps.config.hydrationBatchSize);
      const changed = queued.size > 0 ? await hydrateBatch(deps, client, queued, sources, fetches, failedSources) : 0;
      const ready = await markOutboundEventsReady(client, [...queued.keys()]);

      return { size: queued.size, changed, ready };
    });
    outboundReady += batch.ready;
    if (batch.size === 0) break;
    result.profiles += batch.size;
    result.changed += batch.changed;
    result.batches += 1;
    deps.log.debug({ profiles: batch.size, changed: batch.changed }, 'hydration batch written');
  }
  result.failedSources = [...failedSources].map(([sourceId, code]) => ({ sourceId, code }));
  if (outboundReady > 0) {
    await requestOutboundDelivery(deps.queue);
  }
  if (result.profiles > 0) {
    await requestExportRunsForAll(deps.pool, deps.queue, 'profiles_changed');
    deps.log.info({ ...result, durationMs: Date.now() - startedAt }, 'hydration finished');
  }

  return result;
}
