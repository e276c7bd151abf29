import { quoteIdent, quoteLiteral, withTransaction, type PoolClient } from '../lib/db.js';
import { describeError } from '../lib/errors.js';
import type { FetchProfile } from '../connectors/sdk/index.js';
import { computeEventProperty, loadEventProperties } from '../sql/event-property-queries.js';
import { markOutboundEventsReady } from '../sql/event-processing-queries.js';
import { updateMembershipsForProfiles } from '../sql/group-membership.js';
import { loadPropertyFetches, loadSources, type PropertyFetchRow, type SourceRow } from '../sql/object-queries.js';
import { queueHydration, writeProfileValues, type ProfileValuesRow } from '../sql/profile-values.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import type { PropertyDef } from '../sql/property-types.js';
import { fetchSourceProperties } from './connector-context.js';
import { requestExportRunsForAll, requestOutboundDelivery, type JobDeps } from './index.js';

export interface HydrationResult {
  profiles: number;
  changed: number;
  batches: number;
  /** Sources that failed and were skipped, with their error code. */
  failedSources: Array<{ sourceId: number; code: string }>;
}

interface QueuedProfile {
  /** Property keys changed since the profile was queued; null when unknown. */
  changedKeys: Set<string> | null;
  /** Properties an import has just written from their own source: not fetched again. */
  freshKeys: Set<string>;
}

/**
 * Takes the oldest queued profiles with what is known about them; the rows stay locked (and
 * come back on a crash) until commit.
 */
async function takeBatch(client: PoolClient, size: number): Promise<Map<number, QueuedProfile>> {
  const { rows } = await client.query<{ profileId: number; changedKeys: string[] | null; freshKeys: string[] | null }>(
    // The rows are deleted by the physical address they were locked at (a TID scan), not
    // looked up again by key: 20 against 38 ms per 5,000 entries.
    `DELETE FROM roster_core.hydration_queue
     WHERE ctid = ANY(ARRAY(
       SELECT ctid
       FROM roster_core.hydration_queue
       ORDER BY queued_at, profile_id
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ))
     RETURNING profile_id AS "profileId", changed_keys AS "changedKeys", fresh_keys AS "freshKeys"`,
    [size],
  );

  return new Map(
    rows.map((row) => [row.profileId, { changedKeys: row.changedKeys === null ? null : new Set(row.changedKeys), freshKeys: new Set(row.freshKeys ?? []) }]),
  );
}

/**
 * The values sources need to find each profile: the match properties only, unless a query
 * property may read any value through its placeholders.
 */
async function loadProfileValues(client: PoolClient, profileIds: number[], keys: Set<string> | 'all', properties: Map<string, PropertyDef>): Promise<FetchProfile[]> {
  if (profileIds.length === 0) {
    return [];
  }
  const columns = keys === 'all' ? [] : [...keys].map((key) => properties.get(key)).filter((def) => def !== undefined);
  const values =
    keys === 'all'
      ? `to_jsonb(p) - 'value_times' - 'revision'`
      : `jsonb_build_object(${columns.map((def) => `${quoteLiteral(def.key)}, p.${quoteIdent(def.columnName)}`).join(', ')})`;
  const { rows } = await client.query<{ id: number; values: Record<string, unknown> }>(
    `SELECT p.id, ${values} AS values
     FROM roster_core.profiles AS p
     WHERE p.id = ANY($1::bigint[])`,
    [profileIds],
  );

  return rows.map((row) => ({ id: String(row.id), values: row.values }));
}

/** Profile revisions by id; with `lock`, the rows stay locked against writers until commit. */
async function profileRevisions(client: PoolClient, profileIds: number[], lock: boolean): Promise<Map<number, number>> {
  const { rows } = await client.query<{ id: number; revision: number }>(
    `SELECT id, revision FROM roster_core.profiles WHERE id = ANY($1::bigint[]) ORDER BY id${lock ? ' FOR UPDATE' : ''}`,
    [profileIds],
  );

  return new Map(rows.map((row) => [row.id, row.revision]));
}

/** The source's properties a profile needs: all but those an import has just written. */
function neededFetches(own: PropertyFetchRow[], queued: QueuedProfile): PropertyFetchRow[] {
  return own.filter((fetch) => !queued.freshKeys.has(fetch.key));
}

async function hydrateBatch(deps: JobDeps, client: PoolClient, queued: Map<number, QueuedProfile>, sources: SourceRow[], fetches: PropertyFetchRow[], failedSources: Map<number, string>): Promise<number> {
  const profileIds = [...queued.keys()];
  const properties = await loadPropertyDefs(client);
  // Per source, the profiles that need the same properties fetch them in one request.
  const requests: Array<{ source: SourceRow; fetches: PropertyFetchRow[]; profileIds: number[] }> = [];
  const loadKeys = new Set<string>();
  let loadsAll = false;
  const toLoad = new Set<number>();
  for (const source of sources) {
    const own = fetches.filter((fetch) => fetch.sourceId === source.id);
    if (own.length === 0 || failedSources.has(source.id)) continue;
    const bySignature = new Map<string, { fetches: PropertyFetchRow[]; profileIds: number[] }>();
    for (const [profileId, entry] of queued) {
      const needed = neededFetches(own, entry);
      if (needed.length === 0) continue;
      const signature = needed.map((fetch) => fetch.key).join(',');
      const request = bySignature.get(signature) ?? { fetches: needed, profileIds: [] };
      request.profileIds.push(profileId);
      bySignature.set(signature, request);
      toLoad.add(profileId);
    }
    for (const request of bySignature.values()) {
      requests.push({ source, ...request });
      loadKeys.add(source.options.identity.property);
      loadsAll ||= request.fetches.some((fetch) => fetch.fetchOptions.kind === 'query');
    }
  }
  const revisionsRead = await profileRevisions(client, [...toLoad], false);
  const loaded = await loadProfileValues(client, [...toLoad], loadsAll ? 'all' : loadKeys, properties);
  const profileById = new Map(loaded.map((profile) => [profile.id, profile]));
  let rows: ProfileValuesRow[] = [];
  for (const request of requests) {
    const { source } = request;
    if (failedSources.has(source.id)) continue;
    const profiles = request.profileIds.map((id) => profileById.get(String(id))).filter((profile) => profile !== undefined);
    try {
      const result = await fetchSourceProperties(deps.log, source, profiles, request.fetches);
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
  // A writer (an import that read the source after us) may have stored newer values while the
  // sources answered: its profiles keep them and go back to the queue to be read again.
  const revisionsNow = await profileRevisions(client, [...toLoad], true);
  const overtaken = new Set([...revisionsNow].filter(([id, revision]) => revisionsRead.get(id) !== revision).map(([id]) => id));
  if (overtaken.size > 0) {
    rows = rows.filter((row) => row.sourceId === undefined || !overtaken.has(row.profileId));
    await queueHydration(client, [...overtaken]);
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
  for (const [profileId, { changedKeys: keys }] of queued) {
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
