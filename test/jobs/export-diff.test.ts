// Covers the incremental export diff: each successful run leaves a mark, the next run reads only
// changes after it, and a change committed late (its revision drawn before the mark was read)
// is still exported. Also the mark's rules on their own.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { runExport } from '../../jobs/export-run.js';
import { requestExportRun, type JobQueue } from '../../jobs/index.js';
import { addManualMembers, removeManualMembers } from '../../sql/group-membership.js';
import { loadExportMark, nextExportMark, type ExportMark } from '../../sql/export-queries.js';
import { applyYaml } from '../helpers/apply-yaml.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';

const queue: JobQueue = { send: async () => {} };

describe('nextExportMark', () => {
  const observed = { revision: 50, historyId: 9, vxids: [] as string[] };

  it('skips to the observed point when no other transaction was running', () => {
    expect(nextExportMark(null, null, observed, 'h')).toEqual({ configHash: 'h', revision: 50, historyId: 9, pending: null });
  });

  it('keeps the base and remembers the point while other transactions were running', () => {
    const mark = nextExportMark(null, { revision: 10, historyId: 2 }, { ...observed, vxids: ['3/7'] }, 'h');
    expect(mark).toEqual({ configHash: 'h', revision: 10, historyId: 2, pending: { revision: 50, historyId: 9, vxids: ['3/7'] } });
  });

  it('takes the pending point once the transactions it waited for have ended', () => {
    const previous: ExportMark = { configHash: 'h', revision: 10, historyId: 2, pending: { revision: 50, historyId: 9, vxids: ['3/7'] } };
    const later = { revision: 80, historyId: 12, vxids: ['4/1'] };
    expect(nextExportMark(previous, previous, later, 'h')).toEqual({ configHash: 'h', revision: 50, historyId: 9, pending: later });
    // Still running: the base stays.
    expect(nextExportMark(previous, previous, { ...later, vxids: ['3/7'] }, 'h').revision).toBe(10);
  });

  it('starts from zero after a full diff that other transactions overlapped', () => {
    expect(nextExportMark(null, null, { ...observed, vxids: ['5/5'] }, 'new').revision).toBe(0);
  });
});

describe('incremental export runs', () => {
  let db: TestDatabase;
  let hook: WebhookServer;
  let destinationId: number;
  let groupId: number;

  async function exportOnce(): Promise<Array<{ recordId: string; action: string; email: unknown }>> {
    const before = hook.received.length;
    const runId = await requestExportRun(db.pool, queue, destinationId, 'manual');
    await runExport({ pool: db.pool, log: pino({ level: 'silent' }), config: loadConfig({}), queue }, runId);
    const { rows } = await db.pool.query<{ status: string }>('SELECT status FROM roster_core.runs WHERE id = $1', [runId]);
    expect(rows[0].status).toBe('succeeded');

    return hook.received
      .slice(before)
      .flat()
      .map((record) => ({ recordId: record.recordId, action: record.action, email: record.properties.email }))
      .sort((a, b) => Number(a.recordId) - Number(b.recordId));
  }

  async function insertProfile(email: string): Promise<number> {
    const { rows } = await db.pool.query<{ id: number }>('INSERT INTO roster_core.profiles (email) VALUES ($1) RETURNING id', [email]);

    return rows[0].id;
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    hook = await startWebhookServer();
    await applyYaml(
      db.pool,
      `
apps:
  - { key: files, type: csv, options: {} }
  - { key: hook_app, type: webhook, options: { url: "${hook.url}" } }
sources:
  - { key: people, app: files, path: /nonexistent/people.csv, identity: { column: email, property: email } }
properties:
  - { key: email, type: email, unique: true, source: people, column: email }
groups:
  - { key: picked, type: manual }
destinations:
  - { key: hook, app: hook_app, groups: [picked], mapping: { email: email } }
`,
    );
    const { rows } = await db.pool.query<{ destinationId: number; groupId: number }>(
      `SELECT (SELECT id FROM roster_core.destinations WHERE key = 'hook') AS "destinationId", (SELECT id FROM roster_core.groups WHERE key = 'picked') AS "groupId"`,
    );
    ({ destinationId, groupId } = rows[0]);
  });

  afterEach(async () => {
    await hook.close();
    await db.drop();
  });

  it('exports joins, changes and removals after the mark, and nothing when nothing changed', async () => {
    const [a, b] = [await insertProfile('a@x.co'), await insertProfile('b@x.co')];
    await addManualMembers(db.pool, groupId, [a, b]);
    expect(await exportOnce()).toEqual([
      { recordId: String(a), action: 'create', email: 'a@x.co' },
      { recordId: String(b), action: 'create', email: 'b@x.co' },
    ]);
    expect((await loadExportMark(db.pool, destinationId))?.revision).toBeGreaterThan(0);
    expect(await exportOnce()).toEqual([]);

    await db.pool.query(`UPDATE roster_core.profiles SET email = 'a2@x.co', revision = nextval('roster_core.profile_revision_seq') WHERE id = $1`, [a]);
    await removeManualMembers(db.pool, groupId, [b]);
    expect(await exportOnce()).toEqual([
      { recordId: String(a), action: 'update', email: 'a2@x.co' },
      { recordId: String(b), action: 'remove', email: 'b@x.co' },
    ]);
    expect(await exportOnce()).toEqual([]);
  });

  it('exports a change whose revision was drawn before a run but committed after its diff', async () => {
    const a = await insertProfile('a@x.co');
    await addManualMembers(db.pool, groupId, [a]);
    await exportOnce();

    const late = await db.pool.connect();
    try {
      await late.query('BEGIN');
      await late.query(`UPDATE roster_core.profiles SET email = 'late@x.co', revision = nextval('roster_core.profile_revision_seq') WHERE id = $1`, [a]);
      // A run in between: it cannot see the change, and must not move its mark past it.
      const b = await insertProfile('b@x.co');
      await addManualMembers(db.pool, groupId, [b]);
      expect(await exportOnce()).toEqual([{ recordId: String(b), action: 'create', email: 'b@x.co' }]);
      await late.query('COMMIT');
    } finally {
      late.release();
    }

    expect(await exportOnce()).toEqual([{ recordId: String(a), action: 'update', email: 'late@x.co' }]);
    expect(await exportOnce()).toEqual([]);
  });

  it('sends a record the destination rejected again on the next run', async () => {
    const a = await insertProfile('a@x.co');
    await addManualMembers(db.pool, groupId, [a]);
    hook.respond = (records) => ({ status: 200, body: { rejected: records.map((r) => ({ recordId: r.recordId, code: 'busy', message: 'try later', retryable: true })) } });
    await exportOnce();
    hook.respond = () => ({ status: 200, body: { rejected: [] } });

    expect(await exportOnce()).toEqual([{ recordId: String(a), action: 'create', email: 'a@x.co' }]);
    expect(await exportOnce()).toEqual([]);
  });
  it('forgets a rejected profile that left the group before the next run', async () => {
    const a = await insertProfile('a@x.co');
    await addManualMembers(db.pool, groupId, [a]);
    hook.respond = (records) => ({ status: 200, body: { rejected: records.map((r) => ({ recordId: r.recordId, code: 'busy', message: 'try later' })) } });
    await exportOnce();
    hook.respond = () => ({ status: 200, body: { rejected: [] } });
    const due = async () => (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.export_due WHERE destination_id = $1', [destinationId])).rows[0].n;
    expect(await due()).toBe(1);

    await removeManualMembers(db.pool, groupId, [a]);
    expect(await exportOnce()).toEqual([]);
    expect(await due()).toBe(0);
  });
});
