import type { Queryable } from '../lib/db.js';

/**
 * A ready outbound event claimed for sending, with the inbound event it forwards. The event
 * fields are null when the inbound event no longer exists.
 */
export interface ClaimedOutboundEvent {
  id: number;
  eventId: number;
  profileId: number;
  attempts: number;
  type: 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias' | null;
  event: string | null;
  messageId: string | null;
  occurredAt: Date | null;
  properties: Record<string, unknown> | null;
  traits: Record<string, unknown> | null;
}

/** Destinations with at least one ready outbound event whose next attempt is due. */
export async function findDueOutboundDestinations(db: Queryable): Promise<number[]> {
  const { rows } = await db.query<{ destinationId: number }>(
    `SELECT DISTINCT destination_id AS "destinationId"
     FROM roster_core.outbound_events
     WHERE status = 'ready'
       AND next_attempt_at <= now()
     ORDER BY destination_id`,
  );

  return rows.map((row) => row.destinationId);
}

/**
 * Claims up to `limit` due events of one destination, oldest first, by pushing their next
 * attempt `leaseMs` into the future. The statement commits on its own, so no lock is held
 * while the destination is called; SKIP LOCKED plus the lease keep every other claimant (the
 * event pump, pg-boss workers in other processes) off these rows until they are recorded, or
 * until the lease runs out after a crash.
 */
export async function claimOutboundEvents(db: Queryable, options: { destinationId: number; limit: number; leaseMs: number }): Promise<ClaimedOutboundEvent[]> {
  const { rows } = await db.query<ClaimedOutboundEvent>(
    `WITH claimed AS (
       UPDATE roster_core.outbound_events AS o
       SET next_attempt_at = now() + make_interval(secs => $3::double precision / 1000)
       WHERE o.id IN (
         SELECT id
         FROM roster_core.outbound_events
         WHERE destination_id = $1
           AND status = 'ready'
           AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       )
       RETURNING o.id, o.event_id, o.profile_id, o.attempts
     )
     SELECT
       c.id,
       c.event_id AS "eventId",
       c.profile_id AS "profileId",
       c.attempts,
       e.type,
       e.event,
       e.message_id AS "messageId",
       e.occurred_at AS "occurredAt",
       e.properties,
       e.traits
     FROM claimed AS c
     -- LEFT: an event deleted by retention still comes back, so it can be settled as failed.
     LEFT JOIN roster_core.events AS e ON e.id = c.event_id
     ORDER BY e.occurred_at, c.id`,
    [options.destinationId, options.limit, options.leaseMs],
  );

  return rows;
}

/** For each profile, the keys of the destination's followed groups it is a member of now. */
export async function loadFollowedGroupKeys(db: Queryable, destinationId: number, profileIds: number[]): Promise<Map<number, string[]>> {
  const { rows } = await db.query<{ profileId: number; groupKeys: string[] }>(
    `SELECT gm.profile_id AS "profileId", array_agg(g.key ORDER BY g.key) AS "groupKeys"
     FROM roster_core.group_memberships AS gm
     JOIN roster_core.destination_groups AS dg ON dg.group_id = gm.group_id
     JOIN roster_core.groups AS g ON g.id = gm.group_id
     WHERE dg.destination_id = $1
       AND gm.profile_id = ANY($2::bigint[])
     GROUP BY gm.profile_id`,
    [destinationId, profileIds],
  );

  return new Map(rows.map((row) => [row.profileId, row.groupKeys]));
}

export interface OutboundOutcome {
  id: number;
  status: 'sent' | 'failed' | 'skipped' | 'ready';
  /** The event as sent (or as it would have been sent). */
  payload: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  /** Whether this outcome used up an attempt (a call to the destination was made). */
  isAttempt: boolean;
  /** For `ready`: milliseconds until the next attempt. */
  retryInMs: number;
}

/**
 * Records what became of claimed events in one statement. Only rows still `ready` change, so
 * a late answer for a row someone else already settled cannot overwrite it.
 */
export async function recordOutboundOutcomes(db: Queryable, outcomes: OutboundOutcome[]): Promise<void> {
  if (outcomes.length === 0) {
    return;
  }
  await db.query(
    `UPDATE roster_core.outbound_events AS o
     SET
       status = u.status,
       payload = u.payload,
       error_code = u.error_code,
       error_message = u.error_message,
       attempts = o.attempts + CASE WHEN u.is_attempt THEN 1 ELSE 0 END,
       sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE o.sent_at END,
       next_attempt_at = CASE WHEN u.status = 'ready' THEN now() + make_interval(secs => u.retry_in_ms / 1000) ELSE o.next_attempt_at END
     FROM unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::boolean[], $7::double precision[])
       AS u (id, status, payload, error_code, error_message, is_attempt, retry_in_ms)
     WHERE o.id = u.id
       AND o.status = 'ready'`,
    [
      outcomes.map((o) => o.id),
      outcomes.map((o) => o.status),
      outcomes.map((o) => (o.payload === undefined ? null : JSON.stringify(o.payload))),
      outcomes.map((o) => o.errorCode),
      outcomes.map((o) => o.errorMessage),
      outcomes.map((o) => o.isAttempt),
      outcomes.map((o) => o.retryInMs),
    ],
  );
}
