import { withTransaction } from '../lib/db.js';
import { loadEventsSettings } from '../sql/event-identity-queries.js';
import { markEventsProcessed, queueOutboundEvents, takePendingEvents } from '../sql/event-processing-queries.js';
import { lockIdentities } from '../sql/identity-queries.js';
import { changedKeysForQueue, queueHydration, writeProfileValues } from '../sql/profile-values.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import { resolveEventProfiles, type EventIdentityCounts } from '../sql/resolve-event-profiles.js';
import { requestHydration, type JobDeps } from './index.js';

const DEFAULT_BATCH_SIZE = 1000;

export interface ProcessEventsResult extends EventIdentityCounts {
  events: number;
  batches: number;
  /** Events that named nobody (no usable userId, anonymousId or unique trait). */
  unresolved: number;
  profilesTouched: number;
  invalidValues: number;
  identityConflicts: number;
  outboundQueued: number;
}

export interface ProcessEventsOptions {
  batchSize?: number;
}

function emptyResult(): ProcessEventsResult {
  return {
    events: 0,
    batches: 0,
    unresolved: 0,
    profilesTouched: 0,
    invalidValues: 0,
    identityConflicts: 0,
    outboundQueued: 0,
    profilesCreated: 0,
    profilesMerged: 0,
    anonymousIdsMoved: 0,
    anonymousIdsNotLinked: 0,
    junkIdentifiers: 0,
    userIdsIgnored: 0,
    keptApart: 0,
  };
}

/**
 * Resolves pending events to profiles, a batch per transaction: identity (new profiles,
 * merges of anonymous profiles, anonymous ids), typed trait values, the hydration queue and
 * outbound events all commit together with `processed_at`, so a crash redoes a whole batch
 * or nothing. Identity rules: docs/identity.md.
 */
export async function processPendingEvents(deps: JobDeps, options: ProcessEventsOptions = {}): Promise<ProcessEventsResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const result = emptyResult();
  const startedAt = Date.now();
  for (;;) {
    const batch = await withTransaction(deps.pool, async (client) => {
      // Taken before the events, so a processor that waited here sees the rows the other
      // one has just committed as processed.
      await lockIdentities(client);
      const events = await takePendingEvents(client, batchSize);
      if (events.length === 0) {
        return null;
      }
      const settings = await loadEventsSettings(client);
      const properties = await loadPropertyDefs(client);
      const resolved = await resolveEventProfiles(client, events, { properties, ...settings });
      const written = await writeProfileValues(client, { properties, sourceId: null, runId: null }, resolved.valueRows);
      await markEventsProcessed(client, events, resolved.profileIds);
      const touched = [...new Set(resolved.profileIds.filter((id): id is number => id !== null))];
      const unknown = [...resolved.createdProfileIds, ...resolved.merges.map((merge) => merge.intoProfileId)];
      await queueHydration(client, touched, { changedKeys: changedKeysForQueue(touched, written, unknown) });
      const outboundQueued = await queueOutboundEvents(client, events, resolved.profileIds);
      for (const merge of resolved.merges) {
        deps.log.info({ fromProfileId: merge.fromProfileId, intoProfileId: merge.intoProfileId, reason: merge.reason }, 'profiles merged');
      }
      for (const move of resolved.moves) {
        deps.log.info({ profileId: move.profileId, otherProfileId: move.otherProfileId, resolution: move.resolution }, 'profiles kept apart');
      }

      return { events: events.length, resolved, written, touched: touched.length, outboundQueued, unresolved: resolved.profileIds.filter((id) => id === null).length };
    });
    if (batch === null) break;
    result.events += batch.events;
    result.batches += 1;
    result.unresolved += batch.unresolved;
    result.profilesTouched += batch.touched;
    result.invalidValues += batch.written.invalidValues;
    result.identityConflicts += batch.written.conflicts;
    result.outboundQueued += batch.outboundQueued;
    for (const [key, value] of Object.entries(batch.resolved.counts) as Array<[keyof EventIdentityCounts, number]>) {
      result[key] += value;
    }
    deps.log.debug({ events: batch.events, profiles: batch.touched }, 'event batch processed');
  }
  if (result.profilesTouched > 0) {
    await requestHydration(deps.queue);
  }
  if (result.events > 0) {
    if (result.userIdsIgnored > 0) {
      deps.log.warn({ events: result.userIdsIgnored }, 'userId ignored: no events.userIdProperty is configured');
    }
    deps.log.info({ ...result, durationMs: Date.now() - startedAt }, 'events processed');
  }

  return result;
}
