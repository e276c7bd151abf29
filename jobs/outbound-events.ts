import { describeError, TransientError } from '../lib/errors.js';
import { getConnector } from '../connectors/index.js';
import type { Connector, OutboundEvent, WriteResult } from '../connectors/sdk/index.js';
import { loadMappedValues } from '../sql/export-queries.js';
import { loadDestinations, type DestinationRow } from '../sql/object-queries.js';
import {
  claimOutboundEvents,
  findDueOutboundDestinations,
  loadFollowedGroupKeys,
  recordOutboundOutcomes,
  type ClaimedOutboundEvent,
  type OutboundOutcome,
} from '../sql/outbound-event-queries.js';
import { loadPropertyDefs } from '../sql/property-queries.js';
import { resolveAppConfig } from '../sql/app-config.js';
import { connectorContext } from './connector-context.js';
import type { JobDeps } from './index.js';

/** After this many attempts an event that still could not be delivered is settled as failed. */
export const OUTBOUND_MAX_ATTEMPTS = 10;

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 3_600_000;

export interface OutboundOptions {
  /** Events per call to the destination (default 100). */
  batchSize?: number;
  /** How long one call to a destination may take before its events are retried (default 30 s). */
  timeoutMs?: number;
  /** Aborts calls in flight (their events are retried) and stops claiming new batches. */
  signal?: AbortSignal;
}

export interface OutboundCounts {
  sent: number;
  failed: number;
  skipped: number;
  retried: number;
}

export interface OutboundResult extends OutboundCounts {
  destinations: number;
}

const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_TIMEOUT_MS = 30_000;

/** Wait before the next attempt: 1 s doubling per attempt up to an hour, or longer if asked. */
export function outboundRetryDelayMs(attempts: number, retryAfterMs?: number): number {
  const backoff = Math.min(FIRST_RETRY_MS * 2 ** attempts, MAX_RETRY_MS);

  return Math.max(backoff, retryAfterMs ?? 0);
}

function emptyCounts(): OutboundCounts {
  return { sent: 0, failed: 0, skipped: 0, retried: 0 };
}

function addCounts(into: OutboundCounts, from: OutboundCounts): void {
  into.sent += from.sent;
  into.failed += from.failed;
  into.skipped += from.skipped;
  into.retried += from.retried;
}

function settled(row: ClaimedOutboundEvent, status: 'failed' | 'skipped', code: string, message: string, payload: unknown = null): OutboundOutcome {
  return { id: row.id, status, payload, errorCode: code, errorMessage: message, isAttempt: false, retryInMs: 0 };
}

/** A failed attempt: back to `ready` with backoff, or `failed` once attempts run out. */
function retried(row: ClaimedOutboundEvent, payload: OutboundEvent, error: { code: string; message: string; retryAfterMs?: number }): OutboundOutcome {
  const isLast = row.attempts + 1 >= OUTBOUND_MAX_ATTEMPTS;

  return {
    id: row.id,
    status: isLast ? 'failed' : 'ready',
    payload,
    errorCode: error.code,
    errorMessage: error.message,
    isAttempt: true,
    retryInMs: isLast ? 0 : outboundRetryDelayMs(row.attempts, error.retryAfterMs),
  };
}

/**
 * Calls the destination with its own deadline. The race stops waiting even if a connector
 * ignores the abort signal, so one slow destination holds only its own lane.
 */
async function callWithTimeout(destinationId: number, options: { timeoutMs: number; signal?: AbortSignal }, call: (signal: AbortSignal) => Promise<WriteResult>): Promise<WriteResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    const give = (err: TransientError) => {
      reject(err);
      controller.abort();
    };
    timer = setTimeout(() => give(new TransientError('CDP_DESTINATION_TIMEOUT', `Destination ${destinationId} did not answer events within ${options.timeoutMs} ms`)), options.timeoutMs);
    onStop = () => give(new TransientError('CDP_OUTBOUND_INTERRUPTED', `Sending events to destination ${destinationId} was interrupted by a shutdown`));
    if (options.signal?.aborted) onStop();
    options.signal?.addEventListener('abort', onStop, { once: true });
  });
  try {
    return await Promise.race([call(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    if (onStop) options.signal?.removeEventListener('abort', onStop);
  }
}

interface BatchContext {
  deps: JobDeps;
  destination: DestinationRow;
  connector: Connector | undefined;
  connectorError: { code: string; message: string } | undefined;
  columnOf: Map<string, string>;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

function toOutboundEvent(row: ClaimedOutboundEvent, profile: Record<string, unknown>, groups: string[]): OutboundEvent {
  // identify and group carry their data as traits; the others as properties.
  const isTraits = row.type === 'identify' || row.type === 'group';

  return {
    recordId: String(row.id),
    profileId: String(row.profileId),
    type: row.type!,
    event: row.event,
    messageId: row.messageId!,
    timestamp: row.occurredAt!.toISOString(),
    properties: (isTraits ? row.traits : row.properties) ?? {},
    profile,
    groups,
  };
}

async function sendBatch(ctx: BatchContext, rows: ClaimedOutboundEvent[]): Promise<{ outcomes: OutboundOutcome[]; batchError?: unknown }> {
  const { deps, destination } = ctx;
  const outcomes: OutboundOutcome[] = [];
  if (ctx.connectorError) {
    return { outcomes: rows.map((row) => settled(row, 'failed', ctx.connectorError!.code, ctx.connectorError!.message)) };
  }
  if (!ctx.connector?.spec.eventDelivery || !ctx.connector.destination?.sendEvents) {
    const message = `Destination ${destination.id} uses connector ${destination.app.type}, which cannot deliver events`;

    return { outcomes: rows.map((row) => settled(row, 'failed', 'CDP_OUTBOUND_UNSUPPORTED', message)) };
  }

  const present = rows.filter((row) => row.messageId !== null);
  for (const row of rows.filter((r) => r.messageId === null)) {
    outcomes.push(settled(row, 'failed', 'CDP_OUTBOUND_EVENT_MISSING', `Event ${row.eventId} no longer exists`));
  }
  const groupsOf = await loadFollowedGroupKeys(deps.pool, destination.id, [...new Set(present.map((row) => row.profileId))]);
  const members = present.filter((row) => groupsOf.has(row.profileId));
  for (const row of present.filter((r) => !groupsOf.has(r.profileId))) {
    outcomes.push(settled(row, 'skipped', 'CDP_OUTBOUND_NOT_IN_GROUPS', `Profile ${row.profileId} is in none of the groups destination ${destination.id} follows`));
  }
  if (members.length === 0) {
    return { outcomes };
  }

  const mapping = Object.entries(destination.mapping);
  const columns = [...new Set(mapping.map(([, key]) => ctx.columnOf.get(key) ?? key))];
  const values = await loadMappedValues(deps.pool, [...new Set(members.map((row) => row.profileId))], columns);
  const events = members.map((row) => {
    const current = values.get(row.profileId) ?? {};
    const profile = Object.fromEntries(mapping.map(([field, key]) => [field, current[ctx.columnOf.get(key) ?? key] ?? null]));

    return toOutboundEvent(row, profile, groupsOf.get(row.profileId) ?? []);
  });
  const byId = new Map(members.map((row, i) => [String(row.id), { row, event: events[i] }]));

  let result: WriteResult;
  try {
    result = await callWithTimeout(destination.id, { timeoutMs: ctx.timeoutMs, signal: ctx.signal }, (signal) =>
      ctx.connector!.destination!.sendEvents!(connectorContext(deps.log, destination.app, signal), {
        config: resolveAppConfig(destination.app),
        options: destination.options,
        events,
      }),
    );
  } catch (err) {
    const error = { ...describeError(err), retryAfterMs: err instanceof TransientError ? err.retryAfterMs : undefined };
    outcomes.push(...members.map((row, i) => retried(row, events[i], error)));

    return { outcomes, batchError: err };
  }

  for (const id of result.accepted) {
    const entry = byId.get(id);
    if (!entry) continue;
    byId.delete(id);
    outcomes.push({ id: entry.row.id, status: 'sent', payload: entry.event, errorCode: null, errorMessage: null, isAttempt: true, retryInMs: 0 });
  }
  for (const reject of result.rejected) {
    const entry = byId.get(reject.recordId);
    if (!entry) continue;
    byId.delete(reject.recordId);
    outcomes.push(
      reject.retryable
        ? retried(entry.row, entry.event, reject)
        : { id: entry.row.id, status: 'failed', payload: entry.event, errorCode: reject.code, errorMessage: reject.message, isAttempt: true, retryInMs: 0 },
    );
  }
  // A connector that neither accepted nor rejected an event said nothing about it: send again.
  for (const { row, event } of byId.values()) {
    outcomes.push(retried(row, event, { code: 'CDP_OUTBOUND_NO_ANSWER', message: `Destination ${destination.id} gave no answer for event ${row.id}` }));
  }

  return { outcomes };
}

function countOutcomes(outcomes: OutboundOutcome[]): OutboundCounts {
  const counts = emptyCounts();
  for (const outcome of outcomes) {
    if (outcome.status === 'ready') counts.retried += 1;
    else counts[outcome.status] += 1;
  }

  return counts;
}

// TODO: a destination that drops an event name from `events` still receives the rows already
// queued for it; checking `event_names` when sending would stop them.
/**
 * Delivers one destination's due events, a batch at a time, until none is due. A whole-batch
 * failure ends the lane: its events are backed off, so the next batch would only fail too.
 * Never throws; database errors are logged and leave claimed rows to come back after the lease.
 */
export async function deliverOutboundEvents(deps: JobDeps, destination: DestinationRow, options: OutboundOptions = {}): Promise<OutboundCounts> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The lease outlives the call's deadline by far, so a row is never claimed twice while its
  // first send is still in flight; after a crash it comes back once the lease ends.
  const leaseMs = Math.max(5 * 60_000, timeoutMs * 4);
  const log = deps.log.child({ destinationId: destination.id });
  const total = emptyCounts();
  try {
    const properties = await loadPropertyDefs(deps.pool);
    const ctx: BatchContext = {
      deps: { ...deps, log },
      destination,
      connector: undefined,
      connectorError: undefined,
      columnOf: new Map([...properties.values()].map((p) => [p.key, p.columnName])),
      timeoutMs,
      signal: options.signal,
    };
    try {
      ctx.connector = getConnector(destination.app.type, 'destination');
    } catch (err) {
      ctx.connectorError = describeError(err);
    }
    while (!options.signal?.aborted) {
      const rows = await claimOutboundEvents(deps.pool, { destinationId: destination.id, limit: batchSize, leaseMs });
      if (rows.length === 0) break;
      const startedAt = Date.now();
      const { outcomes, batchError } = await sendBatch(ctx, rows);
      await recordOutboundOutcomes(deps.pool, outcomes);
      const counts = countOutcomes(outcomes);
      addCounts(total, counts);
      const line = { destinationId: destination.id, events: rows.length, ...counts, durationMs: Date.now() - startedAt };
      if (batchError) {
        log.warn({ ...line, code: describeError(batchError).code }, 'outbound events batch failed; retry scheduled');
        break;
      }
      log.info(line, 'outbound events batch settled');
      if (rows.length < batchSize) break;
    }
  } catch (err) {
    log.error({ err, destinationId: destination.id }, 'outbound delivery stopped');
  }

  return total;
}

/**
 * Sends every due outbound event. Destinations are served concurrently and independently,
 * each with its own deadline: one that hangs or fails holds up only its own events.
 */
export async function sendOutboundEvents(deps: JobDeps, options: OutboundOptions = {}): Promise<OutboundResult> {
  const ids = await findDueOutboundDestinations(deps.pool);
  const result: OutboundResult = { destinations: ids.length, ...emptyCounts() };
  if (ids.length === 0) {
    return result;
  }
  const destinations = await loadDestinations(deps.pool, ids);
  const lanes = await Promise.all(destinations.map((destination) => deliverOutboundEvents(deps, destination, options)));
  for (const counts of lanes) addCounts(result, counts);

  return result;
}
