import type { Queryable } from '../lib/db.js';
import type { IdentityEvent } from './resolve-event-profiles.js';

/** A pending event as event processing reads it. */
export interface PendingEvent extends IdentityEvent {
  /** The track event name, or the page or screen name. */
  event: string | null;
  /** As text, so the partition key round-trips without losing microseconds. */
  receivedAt: string;
}

/**
 * Takes the oldest unprocessed events. The rows stay locked until commit, so a second
 * processor skips them, and a crash hands them back.
 */
export async function takePendingEvents(db: Queryable, limit: number): Promise<PendingEvent[]> {
  const { rows } = await db.query<PendingEvent>(
    `SELECT
       id,
       received_at::text AS "receivedAt",
       type,
       event,
       user_id AS "userId",
       anonymous_id AS "anonymousId",
       previous_id AS "previousId",
       traits,
       COALESCE(context -> 'traits', '{}') AS "contextTraits"
     FROM roster_core.events
     WHERE processed_at IS NULL
     ORDER BY received_at, id
     LIMIT $1
     FOR UPDATE SKIP LOCKED`,
    [limit],
  );

  return rows;
}

/** Stores the profile of each event and marks it processed. */
export async function markEventsProcessed(db: Queryable, events: PendingEvent[], profileIds: Array<number | null>): Promise<void> {
  if (events.length === 0) {
    return;
  }
  await db.query(
    `UPDATE roster_core.events AS e
     SET profile_id = n.profile_id,
       processed_at = now()
     FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) AS n (id, received_at, profile_id)
     WHERE e.id = n.id
       AND e.received_at = n.received_at`,
    [events.map((event) => event.id), events.map((event) => event.receivedAt), profileIds],
  );
}

/**
 * Queues each event for the destinations that subscribe to its name. Rows wait until
 * hydration has refreshed the profile; a re-run adds nothing twice.
 */
export async function queueOutboundEvents(db: Queryable, events: PendingEvent[], profileIds: Array<number | null>): Promise<number> {
  const named = events.flatMap((event, index) => {
    const profileId = profileIds[index];
    const isNamed = event.type === 'track' || event.type === 'page' || event.type === 'screen';

    return isNamed && event.event !== null && profileId !== null ? [{ id: event.id, profileId, name: event.event }] : [];
  });
  if (named.length === 0) {
    return 0;
  }
  const { rowCount } = await db.query(
    `INSERT INTO roster_core.outbound_events (destination_id, event_id, profile_id)
     SELECT d.id, n.event_id, n.profile_id
     FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS n (event_id, profile_id, name)
     JOIN roster_core.destinations AS d ON n.name = ANY (d.event_names)
     ON CONFLICT ON CONSTRAINT outbound_events_destination_id_event_id_key DO NOTHING`,
    [named.map((item) => item.id), named.map((item) => item.profileId), named.map((item) => item.name)],
  );

  return rowCount ?? 0;
}

/**
 * Outbound events of freshly hydrated profiles become ready to send. Runs in the hydration
 * batch's transaction, so an event never goes out with values older than itself.
 */
export async function markOutboundEventsReady(db: Queryable, profileIds: number[]): Promise<number> {
  if (profileIds.length === 0) {
    return 0;
  }
  const { rowCount } = await db.query(
    `UPDATE roster_core.outbound_events
     SET status = 'ready'
     WHERE profile_id = ANY($1::bigint[])
       AND status = 'waiting'`,
    [profileIds],
  );

  return rowCount ?? 0;
}
