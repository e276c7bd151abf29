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
 * Queues for hydration the profiles whose windowed event properties may have aged since the
 * last pass: those with matching events inside the window plus one day.
 */
export async function queueWindowedEventProfiles(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO roster_core.hydration_queue (profile_id)
     SELECT DISTINCT e.profile_id
     FROM roster_core.properties AS p
     JOIN roster_core.events AS e
       ON e.type = COALESCE(p.fetch_options ->> 'type', 'track')
      AND (p.fetch_options ->> 'name' IS NULL OR e.event = p.fetch_options ->> 'name')
     WHERE p.fetch_options ->> 'kind' = 'event'
       AND p.fetch_options ? 'days'
       AND e.profile_id IS NOT NULL
       AND e.occurred_at > roster_core.clock() - make_interval(days => (p.fetch_options ->> 'days')::int + 1)
     ON CONFLICT (profile_id) DO NOTHING`,
  );

  return rowCount ?? 0;
}
