// Bar: the export diff (findExportCandidates) for a destination following a group of N members,
// all exported before, after 1% of them changed. Then the push rate of those records to a local
// webhook through a real export run (no bar).
// Reference: a full scan of export_state.
import { runExport } from '../jobs/export-run.js';
import { requestExportRun, type JobQueue } from '../jobs/index.js';
import { diffBase, findExportCandidates, loadExportMark, observeChangePoint, saveExportMark } from '../sql/export-queries.js';
import { scaled, type Benchmark } from './lib/context.js';
import { analyze, withBenchDatabase } from './lib/database.js';
import { saveEvidence } from './lib/evidence.js';
import { explainProductQueries } from './lib/explain.js';
import { applyProfileSchema, fillProfiles } from './lib/profiles-fixture.js';
import { startReceiver } from './lib/receiver.js';
import { judge } from './lib/result.js';
import { percentile, timeMs } from './lib/timing.js';

const CHANGED_EVERY = 100;

function exportYaml(url: string): string {
  return `
apps:
  - { key: hook_app, type: webhook, options: { url: "${url}/records", timeoutMs: 30000 } }
groups:
  - { key: everyone, type: manual }
destinations:
  - { key: hook, app: hook_app, groups: [everyone], mapping: { email: email, country: country, ltv: ltv } }
`;
}

export const exportDiff: Benchmark = {
  name: 'export-diff',
  async run(ctx) {
    const members = scaled(1_000_000, ctx.scale, 1000);
    const barMs = 2000 * Math.min(1, members / 1_000_000);
    const receiver = await startReceiver();
    try {
      return await withBenchDatabase(ctx.adminUrl, 'export_diff', async (db) => {
        await applyProfileSchema(db.pool, exportYaml(receiver.url));
        await fillProfiles(db.pool, members);
        const { rows } = await db.pool.query<{ id: number; configHash: string }>(`SELECT id, config_hash AS "configHash" FROM roster_core.destinations WHERE key = 'hook'`);
        const destination = rows[0];
        // As if every member had joined the group and been exported once.
        await db.pool.query(
          `INSERT INTO roster_core.group_memberships (group_id, profile_id)
           SELECT (SELECT id FROM roster_core.groups WHERE key = 'everyone'), id FROM roster_core.profiles`,
        );
        await db.pool.query(
          `INSERT INTO roster_core.export_state (destination_id, profile_id, revision, payload_hash, config_hash)
           SELECT $1, id, revision, 'bench', $2 FROM roster_core.profiles`,
          [destination.id, destination.configHash],
        );
        // ... and as if that export's diff had run then: its mark is the change point of now.
        const seeded = await observeChangePoint(db.pool);
        await saveExportMark(db.pool, destination.id, { configHash: destination.configHash, revision: seeded.revision, historyId: seeded.historyId, pending: null });
        await db.pool.query(`UPDATE roster_core.profiles SET revision = nextval('roster_core.profile_revision_seq') WHERE id % $1 = 0`, [CHANGED_EVERY]);
        await db.pool.query('VACUUM ANALYZE roster_core.profiles');
        await analyze(db.pool);

        const scanMs: number[] = [];
        const diffMs: number[] = [];
        let candidates = 0;
        for (let i = 0; i < 3; i += 1) {
          scanMs.push((await timeMs(() => db.pool.query('SELECT count(*), max(revision) FROM roster_core.export_state'))).ms);
          // What an export run does before sending: read the change point and the mark, then diff.
          const diff = await timeMs(async () => {
            await observeChangePoint(db.pool);
            const base = diffBase(await loadExportMark(db.pool, destination.id), destination.configHash);

            return findExportCandidates(db.pool, destination.id, base);
          });
          diffMs.push(diff.ms);
          candidates = diff.value.length;
        }

        const queue: JobQueue = { send: async () => {} };
        const runId = await requestExportRun(db.pool, queue, destination.id, 'manual');
        const push = await timeMs(() => runExport({ pool: db.pool, log: ctx.log, config: ctx.config, queue }, runId));
        const pushRate = receiver.records / (push.ms / 1000);
        ctx.note(`export-diff: ${candidates} candidates; export run sent ${receiver.records} records in ${receiver.requests} requests in ${Math.round(push.ms)} ms`);

        const size = members.toLocaleString('en-US');
        const diff = judge('export-diff', `export diff ${size} members 1%`, { figure: percentile(diffMs, 50), unit: 'ms' }, { op: '<', value: barMs }, {
          reference: { label: 'export_state full scan', figure: percentile(scanMs, 50), unit: 'ms' },
          details: { members, candidates, diffMs, scanMs },
        });
        const pushResult = judge('export-diff', `export push ${receiver.records.toLocaleString('en-US')} records`, { figure: pushRate, unit: 'rec/s' }, undefined, {
          details: { records: receiver.records, requests: receiver.requests, runMs: push.ms, batchSize: ctx.config.exportBatchSize },
        });
        if (!diff.met || ctx.evidenceDir) {
          const base = diffBase(await loadExportMark(db.pool, destination.id), destination.configHash);
          const [plan = ''] = await explainProductQueries(db.pool, /WITH\s+followed AS/, (client) => findExportCandidates(client, destination.id, base));
          await saveEvidence(ctx, 'export-diff-explain.txt', plan);
          diff.details = { ...diff.details, plan };
        }

        return [diff, pushResult];
      });
    } finally {
      await receiver.close();
    }
  },
};

