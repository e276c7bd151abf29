// Inserts raw events with processed_at NULL, as the ingestion routes leave them.
import { randomUUID } from 'node:crypto';
import type { Pool } from '../../lib/db.js';

export interface TestEvent {
  type: 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias';
  event?: string;
  userId?: string;
  anonymousId?: string;
  previousId?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  context?: Record<string, unknown>;
  /** ISO time; defaults to now. */
  occurredAt?: string;
}

/** Inserts events in the given order (each received a microsecond after the previous). */
export async function insertPendingEvents(pool: Pool, events: TestEvent[]): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO roster_core.events (message_id, type, event, user_id, anonymous_id, previous_id, properties, traits, context, occurred_at, received_at)
     SELECT message_id, type, event, user_id, anonymous_id, previous_id, properties, traits, context,
       COALESCE(occurred_at, now()), clock_timestamp() + make_interval(secs => ord / 1e6)
     FROM ROWS FROM (
       jsonb_to_recordset($1::jsonb) AS (
         message_id text, type text, event text, user_id text, anonymous_id text, previous_id text,
         properties jsonb, traits jsonb, context jsonb, occurred_at timestamptz
       )
     ) WITH ORDINALITY AS r (message_id, type, event, user_id, anonymous_id, previous_id, properties, traits, context, occurred_at, ord)
     ORDER BY ord
     RETURNING id`,
    [
      JSON.stringify(
        events.map((event) => ({
          message_id: randomUUID(),
          type: event.type,
          event: event.event ?? null,
          user_id: event.userId ?? null,
          anonymous_id: event.anonymousId ?? null,
          previous_id: event.previousId ?? null,
          properties: event.properties ?? {},
          traits: event.traits ?? {},
          context: event.context ?? {},
          occurred_at: event.occurredAt ?? null,
        })),
      ),
    ],
  );

  return rows.map((row) => row.id);
}

/** The profile each event was resolved to, by event id. */
export async function eventProfiles(pool: Pool, ids: number[]): Promise<Array<number | null>> {
  const { rows } = await pool.query<{ id: number; profileId: number | null }>(
    `SELECT id, profile_id AS "profileId" FROM roster_core.events WHERE id = ANY($1::bigint[])`,
    [ids],
  );
  const byId = new Map(rows.map((row) => [row.id, row.profileId]));

  return ids.map((id) => byId.get(id) ?? null);
}
