// Sets up webhook destinations that follow a manual group, and writes profiles, memberships,
// events and ready outbound events with plain SQL, as event processing would leave them.
import { randomUUID } from 'node:crypto';
import type { Pool } from '../../lib/db.js';
import { quoteIdent } from '../../lib/db.js';
import { applyYaml } from './apply-yaml.js';

export interface OutboundDestinationSpec {
  key: string;
  url: string;
  timeoutMs?: number;
  /** Defaults to the manual group `vip`. */
  groups?: string[];
}

/**
 * Properties email and plan, manual groups vip and staff, one webhook app and destination
 * each, and with `csvPath` a CSV destination `csv_log` (which cannot deliver events).
 */
export async function applyOutboundConfig(pool: Pool, destinations: OutboundDestinationSpec[], options: { csvPath?: string } = {}): Promise<void> {
  const apps = destinations.map((d) => `  - { key: app_${d.key}, type: webhook, options: { url: "${d.url}", timeoutMs: ${d.timeoutMs ?? 5000} } }`);
  const dests = destinations.map((d) => `  - { key: ${d.key}, app: app_${d.key}, groups: [${(d.groups ?? ['vip']).join(', ')}], mapping: { mail: email, tier: plan } }`);
  if (options.csvPath) {
    apps.push('  - { key: files, type: csv, options: {} }');
    dests.push(`  - { key: csv_log, app: files, options: { path: "${options.csvPath}" }, groups: [vip], mapping: { mail: email } }`);
  }
  await applyYaml(
    pool,
    `
apps:
${apps.join('\n')}
properties:
  - { key: email, type: email, unique: true }
  - { key: plan, type: string }
groups:
  - { key: vip, type: manual }
  - { key: staff, type: manual }
destinations:
${dests.join('\n')}
`,
  );
}

async function columnOf(pool: Pool, key: string): Promise<string> {
  const { rows } = await pool.query<{ columnName: string }>('SELECT column_name AS "columnName" FROM roster_core.properties WHERE key = $1', [key]);

  return rows[0].columnName;
}

/** A profile with the given email and plan, a member of `groups`. */
export async function insertProfile(pool: Pool, values: { email: string; plan: string }, groups: string[]): Promise<number> {
  const emailColumn = quoteIdent(await columnOf(pool, 'email'));
  const planColumn = quoteIdent(await columnOf(pool, 'plan'));
  const { rows } = await pool.query<{ id: number }>(`INSERT INTO roster_core.profiles (${emailColumn}, ${planColumn}) VALUES ($1, $2) RETURNING id`, [values.email, values.plan]);
  const profileId = rows[0].id;
  await pool.query(
    `INSERT INTO roster_core.group_memberships (group_id, profile_id)
     SELECT id, $2 FROM roster_core.groups WHERE key = ANY($1::text[])`,
    [groups, profileId],
  );

  return profileId;
}

/** A processed track event of the profile plus a ready outbound event for each destination. */
export async function insertReadyEvent(pool: Pool, options: { profileId: number; destinations: string[]; event?: string; properties?: Record<string, unknown> }): Promise<{ eventId: number; messageId: string }> {
  const messageId = randomUUID();
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO roster_core.events (message_id, type, event, properties, occurred_at, profile_id, processed_at)
     VALUES ($1, 'track', $2, $3, now(), $4, now())
     RETURNING id`,
    [messageId, options.event ?? 'Order Completed', JSON.stringify(options.properties ?? {}), options.profileId],
  );
  await pool.query(
    `INSERT INTO roster_core.outbound_events (destination_id, event_id, profile_id, status)
     SELECT id, $2, $3, 'ready' FROM roster_core.destinations WHERE key = ANY($1::text[])`,
    [options.destinations, rows[0].id, options.profileId],
  );

  return { eventId: rows[0].id, messageId };
}

export interface OutboundRow {
  destination: string;
  status: string;
  attempts: number;
  errorCode: string | null;
  /** Seconds from now to the next attempt. */
  dueInS: number;
  sentAt: Date | null;
  payload: unknown;
}

/** The outbound rows of an event, by destination key. */
export async function loadOutboundRows(pool: Pool, eventId: number): Promise<Record<string, OutboundRow>> {
  const { rows } = await pool.query<OutboundRow>(
    `SELECT
       d.key AS destination,
       o.status,
       o.attempts,
       o.error_code AS "errorCode",
       extract(epoch FROM o.next_attempt_at - now())::float8 AS "dueInS",
       o.sent_at AS "sentAt",
       o.payload
     FROM roster_core.outbound_events AS o
     JOIN roster_core.destinations AS d ON d.id = o.destination_id
     WHERE o.event_id = $1`,
    [eventId],
  );

  return Object.fromEntries(rows.map((row) => [row.destination, row]));
}

/** Makes every waiting retry due now, instead of sleeping through its backoff. */
export async function makeRetriesDue(pool: Pool): Promise<void> {
  await pool.query(`UPDATE roster_core.outbound_events SET next_attempt_at = now() WHERE status = 'ready'`);
}
