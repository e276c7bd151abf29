// Regressions: `roster run` picks up work that waits only in tables (stored events), and a
// windowed event property refreshes correctly however long it has been since the last refresh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { runOnce } from '../../cli/run.js';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertPendingEvents } from '../helpers/pending-events.js';

const CONFIG = `
events:
  userIdProperty: customer_id
properties:
  - { key: customer_id, type: integer, unique: true }
  - key: rentals_last_30_days
    type: integer
    event: { name: Film Rented, function: count, days: 30 }
groups:
  - key: frequent_renters
    rule: { ">=": [{ var: rentals_last_30_days }, 2] }
`;

describe('run and event windows', () => {
  let db: TestDatabase;
  let pinned: Pool | undefined;
  const log = pino({ level: 'silent' });
  const config = loadConfig({});

  async function pinClock(at: string): Promise<Pool> {
    await pinned?.end();
    await adminQuery(`ALTER DATABASE ${db.name} SET roster.clock = '${at}'`);
    pinned = createPool(db.url, 4);

    return pinned;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await applyYaml(db.pool, CONFIG);
  });

  afterAll(async () => {
    await pinned?.end();
    await db?.drop();
  });

  it('processes events that were stored while no job asked for them', async () => {
    const pool = await pinClock('2005-08-31 00:00:00+00');
    await insertPendingEvents(pool, [
      { type: 'track', event: 'Film Rented', userId: '7', occurredAt: '2005-08-20T10:00:00Z' },
      { type: 'track', event: 'Film Rented', userId: '7', occurredAt: '2005-08-25T10:00:00Z' },
    ]);
    const outcome = await runOnce({ config, log }, { pool, url: db.url });

    expect(outcome.failed).toBe(false);
    const { rows } = await pool.query('SELECT customer_id, rentals_last_30_days FROM roster.profiles');
    expect(rows).toEqual([{ customer_id: 7, rentals_last_30_days: 2 }]);
    const members = await pool.query(`SELECT count(*)::int AS n FROM roster.group_members WHERE group_key = 'frequent_renters'`);
    expect(members.rows[0].n).toBe(1);
  });

  it('refreshes a windowed count after a long gap since the last refresh', async () => {
    // Months later, both rentals have left the 30-day window with no new event.
    const pool = await pinClock('2005-12-31 00:00:00+00');
    const outcome = await runOnce({ config, log }, { pool, url: db.url });

    expect(outcome.failed).toBe(false);
    const { rows } = await pool.query('SELECT rentals_last_30_days FROM roster.profiles');
    expect(rows).toEqual([{ rentals_last_30_days: 0 }]);
    const history = await pool.query(`SELECT action FROM roster.group_membership_history WHERE group_key = 'frequent_renters' ORDER BY at`);
    expect(history.rows.map((row) => row.action)).toEqual(['enter', 'exit']);
  });
});
