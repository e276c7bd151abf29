import type { Queryable } from '../lib/db.js';
import type { PropertyType } from './property-types.js';

/** fetch_options of a property computed from events (docs/config.md, "Event properties"). */
export interface EventPropertyOptions {
  kind: 'event';
  type?: string;
  name?: string;
  function: 'count' | 'sum' | 'min' | 'max' | 'first' | 'last';
  field?: string;
  days?: number;
}

export interface EventProperty {
  key: string;
  type: PropertyType;
  fetchOptions: EventPropertyOptions;
}

// Only text that Postgres casts without an error reaches a cast: one bad event must not fail
// the whole hydration batch. Anything else counts as missing.
const NUMBER_TEXT = String.raw`^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$`;
const DATE_TEXT = String.raw`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$`;

export async function loadEventProperties(db: Queryable): Promise<EventProperty[]> {
  const { rows } = await db.query<EventProperty>(
    `SELECT
       key,
       type,
       fetch_options AS "fetchOptions"
     FROM roster_core.properties
     WHERE fetch_options ->> 'kind' = 'event'
     ORDER BY key`,
  );

  return rows;
}

/** The SQL expression of the field an event property reads; `$5` is the properties path. */
function fieldExpression(options: EventPropertyOptions, type: PropertyType): string {
  if (options.field === 'occurred_at') {
    return 'e.occurred_at';
  }
  const text = 'e.properties #>> $5::text[]';
  if (options.function === 'first' || options.function === 'last') {
    // Cast later, by the property type, so a value that does not fit is set aside, not lost.
    return text;
  }
  if (type === 'date') {
    // TODO: a well-formed but impossible date (2021-02-30) still fails the cast and the batch;
    // Postgres 16's pg_input_is_valid would let it count as missing instead.
    return `CASE WHEN ${text} ~ '${DATE_TEXT}' THEN (${text})::timestamptz END`;
  }

  return `CASE WHEN ${text} ~ '${NUMBER_TEXT}' THEN (${text})::double precision END`;
}

/**
 * Computes one event property for many profiles in one query: its function over the profile's
 * events of one type and name, within the last `days` of roster_core.clock() when given. A
 * profile without matching events gets 0 for count and null otherwise.
 */
export async function computeEventProperty(db: Queryable, property: EventProperty, profileIds: number[]): Promise<Map<number, unknown>> {
  const options = property.fetchOptions;
  const value = options.function === 'count' ? '' : fieldExpression(options, property.type);
  const aggregate = {
    count: 'count(*)',
    sum: `sum(${value})`,
    min: `min(${value})`,
    max: `max(${value})`,
    first: `(array_agg(${value} ORDER BY e.occurred_at, e.id) FILTER (WHERE ${value} IS NOT NULL))[1]`,
    last: `(array_agg(${value} ORDER BY e.occurred_at DESC, e.id DESC) FILTER (WHERE ${value} IS NOT NULL))[1]`,
  }[options.function];
  const path = options.field && options.field !== 'occurred_at' ? options.field.split('.').slice(1) : null;
  const { rows } = await db.query<{ profileId: number; value: unknown }>(
    `SELECT
       e.profile_id AS "profileId",
       ${aggregate} AS value
     FROM roster_core.events AS e
     WHERE e.profile_id = ANY($1::bigint[])
       AND e.type = $2
       AND ($3::text IS NULL OR e.event = $3)
       AND ($4::int IS NULL OR (e.occurred_at > roster_core.clock() - make_interval(days => $4::int) AND e.occurred_at <= roster_core.clock()))
     GROUP BY e.profile_id`,
    [profileIds, options.type ?? 'track', options.name ?? null, options.days ?? null, ...(value.includes('$5') ? [path] : [])],
  );
  const values = new Map<number, unknown>(rows.map((row) => [row.profileId, row.value]));
  const missing = options.function === 'count' ? 0 : null;

  return new Map(profileIds.map((id) => [id, values.get(id) ?? missing]));
}

/**
 * Windowed event properties ("in the last 30 days") change as time passes, with no new event.
 * Between the clock of the last refresh (c0, kept in roster_core.settings) and now (c1), an
 * event left a window of D days when c0 - D < occurred_at <= c1 - D, and entered it when
 * c0 < occurred_at <= c1 (it was dated ahead of the clock). Only profiles with such events are
 * queued for hydration, however long it has been since the last refresh. With no earlier
 * refresh, or a clock that went backwards, every profile with events of those kinds is queued.
 */
export async function queueWindowedEventProfiles(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `WITH bounds AS (
       SELECT
         roster_core.clock() AS c1,
         (SELECT (value ->> 'clock')::timestamptz FROM roster_core.settings WHERE key = 'event_window_refresh') AS c0
     ),
     windowed AS (
       SELECT
         COALESCE(p.fetch_options ->> 'type', 'track') AS type,
         p.fetch_options ->> 'name' AS name,
         make_interval(days => (p.fetch_options ->> 'days')::int) AS span
       FROM roster_core.properties AS p
       WHERE p.fetch_options ->> 'kind' = 'event'
         AND p.fetch_options ? 'days'
     )
     INSERT INTO roster_core.hydration_queue (profile_id)
     SELECT DISTINCT e.profile_id
     FROM windowed AS w
     CROSS JOIN bounds AS b
     JOIN roster_core.events AS e
       ON e.type = w.type
      AND (w.name IS NULL OR e.event = w.name)
     WHERE e.profile_id IS NOT NULL
       AND (
         b.c0 IS NULL
         OR b.c1 < b.c0
         OR (e.occurred_at > b.c0 - w.span AND e.occurred_at <= b.c1 - w.span)
         OR (e.occurred_at > b.c0 AND e.occurred_at <= b.c1)
       )
     ON CONFLICT (profile_id) DO NOTHING`,
  );
  await db.query(
    `INSERT INTO roster_core.settings (key, value, updated_at)
     VALUES ('event_window_refresh', jsonb_build_object('clock', roster_core.clock()), now())
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
  );

  return rowCount ?? 0;
}
