import { randomUUID } from 'node:crypto';
import { ConfigError } from '../lib/errors.js';
import type { PreparedEvent } from '../sql/event-queries.js';
import { coerceValue, type PropertyDef } from '../sql/property-types.js';

export const EVENT_TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Segment's limits: 32 KB per event, 500 KB per batch request. */
export const MAX_EVENT_BYTES = 32 * 1024;
export const MAX_BATCH_BYTES = 500 * 1024;

/** An input that breaks a size limit: HTTP 413. */
export class PayloadTooLargeError extends ConfigError {
  override readonly httpStatus = 413;
}

/** What a message is checked against, shared by every event of one request. */
export interface MessageContext {
  writeKeyId: number;
  receivedAt: Date;
  properties: Map<string, PropertyDef>;
  /** Fields of a batch envelope that its events inherit. */
  defaults?: { context?: Record<string, unknown>; sentAt?: unknown };
}

type Json = Record<string, unknown>;

const EMPTY: Json = Object.freeze({}) as Json;
// Postgres timestamptz starts in 4713 BC: an earlier time would fail the whole shared insert, so
// such an event is refused alone. The upper bound is where a JS Date ends (275760 AD), well
// before Postgres' end in 294276 AD, which skew correction could otherwise pass.
const MIN_STORABLE_MS = Date.UTC(-4712, 0, 1);
const MAX_STORABLE_MS = 8_640_000_000_000_000;

// An escape JSON.stringify writes for U+0000 or an unpaired surrogate (not one preceded by an
// escaped backslash).
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f])/i;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): ConfigError {
  return new ConfigError('CDP_EVENT_INVALID', message);
}

function readObject(message: Json, field: string): Json | undefined {
  const value = message[field];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(`Field ${field} must be an object`);

  return value;
}

/** Ids may come as strings or numbers (some SDKs send numeric user ids); empty means absent. */
function readId(message: Json, field: string): string | null {
  const value = message[field];
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw invalid(`Field ${field} must be a string`);
}

function readTime(value: unknown, field: string): number | null {
  if (value === undefined || value === null || value === '') return null;
  const ms = typeof value === 'string' || typeof value === 'number' ? new Date(value).getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(`Field ${field} must be an ISO 8601 date`);

  return ms;
}

/** A defined property's value that fails its type rejects the event; other keys pass. */
function checkTraits(traits: Json, properties: Map<string, PropertyDef>): void {
  if (properties.size === 0) return;
  for (const key of Object.keys(traits)) {
    const def = properties.get(key);
    if (!def) continue;
    const raw = traits[key];
    const values = def.isList && Array.isArray(raw) ? raw : [raw];
    for (const value of values) {
      const result = coerceValue(def.type, value);
      if (!result.ok) {
        throw new ConfigError('CDP_EVENT_TRAIT_INVALID', `Trait "${key}": ${result.reason}`, { details: { trait: key, type: def.type } });
      }
    }
  }
}

function jsonText(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function objectText(value: Json): string {
  return value === EMPTY ? '{}' : JSON.stringify(value);
}

/**
 * Checks one Segment message and returns the row to store, as `eventRowJson` writes it.
 * Throws a `ConfigError` (or `PayloadTooLargeError`) naming what is wrong. `type` is the route's
 * type, or undefined for an item of a batch, which names its own.
 */
export function prepareMessage(raw: unknown, routeType: EventType | undefined, ctx: MessageContext): PreparedEvent {
  if (!isObject(raw)) throw invalid('An event must be a JSON object');
  const type = routeType ?? raw.type;
  if (typeof type !== 'string' || !(EVENT_TYPES as readonly string[]).includes(type)) {
    throw invalid(`Event type must be one of ${EVENT_TYPES.join(', ')}`);
  }

  const userId = readId(raw, 'userId');
  const anonymousId = readId(raw, 'anonymousId');
  const previousId = type === 'alias' ? readId(raw, 'previousId') : null;
  if (type === 'alias' ? !userId || !previousId : !userId && !anonymousId) {
    throw new ConfigError(
      'CDP_EVENT_MISSING_IDENTITY',
      type === 'alias' ? 'An alias event needs userId and previousId' : `A ${type} event needs userId or anonymousId`,
    );
  }

  let event: string | null = null;
  if (type === 'track') {
    if (typeof raw.event !== 'string' || raw.event === '') throw invalid('A track event needs an event name');
    event = raw.event;
  } else if (type === 'page' || type === 'screen') {
    if (raw.name !== undefined && raw.name !== null && typeof raw.name !== 'string') throw invalid('Field name must be a string');
    event = (raw.name as string | null | undefined) || null;
  }
  const groupId = type === 'group' ? readId(raw, 'groupId') : null;
  if (type === 'group' && !groupId) throw invalid('A group event needs a groupId');

  const ownContext = readObject(raw, 'context');
  const context = ctx.defaults?.context ? { ...ctx.defaults.context, ...ownContext } : (ownContext ?? EMPTY);
  if (!isObject(context)) throw invalid('Field context must be an object');
  const contextTraits = context.traits === undefined || context.traits === null ? undefined : readObject(context, 'traits');
  const ownTraits = type === 'identify' || type === 'group' ? readObject(raw, 'traits') : undefined;
  const traits = contextTraits && ownTraits ? { ...contextTraits, ...ownTraits } : (ownTraits ?? contextTraits ?? EMPTY);
  checkTraits(traits, ctx.properties);
  const properties = type === 'track' || type === 'page' || type === 'screen' ? (readObject(raw, 'properties') ?? EMPTY) : EMPTY;

  // A messageId the server makes up is unique already; only the client's own ids are
  // recorded for de-duplication.
  const clientMessageId = readId(raw, 'messageId');
  const messageId = clientMessageId ?? randomUUID();

  // Segment's skew correction: the client's clock is off by (sentAt - receivedAt), so its
  // timestamp is moved by the same amount.
  // https://segment.com/docs/connections/spec/common/#timestamp-overview
  const receivedMs = ctx.receivedAt.getTime();
  const timestampMs = readTime(raw.timestamp ?? raw.originalTimestamp, 'timestamp');
  const sentAtMs = readTime(raw.sentAt ?? ctx.defaults?.sentAt, 'sentAt');
  let occurredMs = receivedMs;
  if (timestampMs !== null) {
    occurredMs = sentAtMs === null ? timestampMs : timestampMs + (receivedMs - sentAtMs);
  }
  if (!(occurredMs >= MIN_STORABLE_MS && occurredMs < MAX_STORABLE_MS)) throw invalid('Field timestamp is out of range');

  // The row as eventRowJson writes it, field by field: about twice as fast as building an array
  // and calling JSON.stringify on it.
  const json =
    `[${JSON.stringify(messageId)},"${type}",${jsonText(event)},${jsonText(userId)},${jsonText(anonymousId)}` +
    `,${jsonText(previousId)},${jsonText(groupId)},${objectText(properties)},${objectText(traits)},${objectText(context)}` +
    `,${ctx.writeKeyId},${occurredMs},${receivedMs}` +
    `${clientMessageId === null ? ',false' : ''}]`;
  // Characters are at most 3 UTF-8 bytes each here, so most events skip the exact count.
  if (json.length * 3 > MAX_EVENT_BYTES && Buffer.byteLength(json) > MAX_EVENT_BYTES) {
    throw new PayloadTooLargeError('CDP_EVENT_TOO_LARGE', `Event is larger than ${MAX_EVENT_BYTES / 1024} KB`);
  }

  // Postgres text and jsonb cannot hold NUL or a lone surrogate; one such event would fail the
  // whole shared insert, so it is refused here alone.
  if (json.includes('\\u') && UNSTORABLE_ESCAPE.test(json)) {
    throw invalid('Event contains a NUL character or an unpaired surrogate, which cannot be stored');
  }

  return { json, messageId: clientMessageId };
}
