import type { Queryable } from '../lib/db.js';

/**
 * One inbound event as `insertEvents` stores it. On the wire to Postgres each event is a JSON
 * array of these fields in this order (`eventRowJson`), not an object: without keys the text is
 * half as long, and Postgres skips sorting each object's keys when it parses the batch, which
 * measured a quarter faster for 500-event batches. The server writes that text directly, once
 * per event (server/segment-message.ts).
 */
export interface EventRow {
  message_id: string;
  type: string;
  event: string | null;
  user_id: string | null;
  anonymous_id: string | null;
  previous_id: string | null;
  group_id: string | null;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
  write_key_id: number | null;
  occurred_at: string;
  received_at: string;
  /** False when the server generated message_id: it is unique already and is not recorded. */
  dedup?: boolean;
}

/** One checked event: its row as JSON text (see `EventRow`), and the client's messageId or null. */
export interface PreparedEvent {
  json: string;
  messageId: string | null;
}

/** The JSON text of a row, fields in the order the insert reads them, times in epoch milliseconds. */
export function eventRowJson(row: EventRow): string {
  const fields: unknown[] = [
    row.message_id,
    row.type,
    row.event,
    row.user_id,
    row.anonymous_id,
    row.previous_id,
    row.group_id,
    row.properties,
    row.traits,
    row.context,
    row.write_key_id,
    Date.parse(row.occurred_at),
    Date.parse(row.received_at),
  ];
  if (row.dedup === false) fields.push(false);

  return JSON.stringify(fields);
}

/** Named, so each connection parses and plans it once. */
const INSERT_EVENTS = {
  name: 'roster-insert-events',
  text: `WITH input AS (
       SELECT
         x.ord,
         x.e ->> 0 AS message_id,
         x.e ->> 1 AS type,
         x.e ->> 2 AS event,
         x.e ->> 3 AS user_id,
         x.e ->> 4 AS anonymous_id,
         x.e ->> 5 AS previous_id,
         x.e ->> 6 AS group_id,
         x.e -> 7 AS properties,
         x.e -> 8 AS traits,
         x.e -> 9 AS context,
         (x.e ->> 10)::bigint AS write_key_id,
         -- Times come as milliseconds since 1970: adding them to the epoch costs a fifth of
         -- parsing ISO 8601 text.
         'epoch'::timestamptz + (x.e ->> 11)::bigint * interval '1 millisecond' AS occurred_at,
         'epoch'::timestamptz + (x.e ->> 12)::bigint * interval '1 millisecond' AS received_at,
         (x.e ->> 13)::boolean AS dedup
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, ord)
     ),
     fresh AS (
       INSERT INTO roster_core.event_message_ids (message_id, received_at)
       SELECT message_id, received_at
       FROM input
       WHERE dedup IS NOT FALSE
       ON CONFLICT (message_id) DO NOTHING
       RETURNING message_id
     )
     INSERT INTO roster_core.events (
       message_id, type, event, user_id, anonymous_id, previous_id, group_id,
       properties, traits, context, write_key_id, occurred_at, received_at
     )
     SELECT
       i.message_id, i.type, i.event, i.user_id, i.anonymous_id, i.previous_id, i.group_id,
       COALESCE(i.properties, '{}'), COALESCE(i.traits, '{}'), COALESCE(i.context, '{}'),
       i.write_key_id, i.occurred_at, i.received_at
     FROM input AS i
     WHERE i.dedup IS FALSE OR i.message_id IN (SELECT f.message_id FROM fresh AS f)
     ORDER BY i.ord`,
};

/**
 * Stores events whose messageId was not seen within the de-duplication window, in one
 * statement, and returns how many were stored. A messageId repeated among `events` is stored
 * once (the first occurrence wins); events without a client messageId are always stored. The
 * window is kept by purging old ids (jobs/event-maintenance.ts), so an id is remembered for at
 * least the window and at most until the next purge after it.
 */
export async function insertEvents(db: Queryable, events: readonly PreparedEvent[]): Promise<number> {
  // Repeats inside the batch are dropped here: a Set costs less than the sort that
  // DISTINCT ON needs in the statement. Repeats of earlier batches meet the unique key.
  const texts: string[] = [];
  const seen = new Set<string>();
  for (const event of events) {
    if (event.messageId !== null) {
      if (seen.has(event.messageId)) continue;
      seen.add(event.messageId);
    }
    texts.push(event.json);
  }
  if (texts.length === 0) return 0;
  // jsonb for the input array: Postgres parses the text once, and the object columns are then
  // taken as they are. With json, each object column is parsed a second time.
  const { rowCount } = await db.query({ ...INSERT_EVENTS, values: [`[${texts.join(',')}]`] });

  return rowCount ?? 0;
}
