// Bar: /v1/batch with 100 track events per request, events committed per second.
// Reference: multi-row INSERT into a plain table from the bench process.
import { scaled, type Benchmark } from './lib/context.js';
import { withBenchDatabase } from './lib/database.js';
import { basicAuth, runLoad } from './lib/http-load.js';
import { countEvents, explainEventInsert, measurePlainInsertCeiling, messageIdPrefix, prepareIngestion, trackEventPattern } from './lib/ingest-setup.js';
import { judge, type BarResult } from './lib/result.js';
import { newestCpuProfile, summariseCpuProfile } from './lib/cpu-profile.js';
import { saveEvidence } from './lib/evidence.js';

const EVENTS_PER_REQUEST = 100;
const CONNECTIONS = 16;

export const ingestBatch: Benchmark = {
  name: 'ingest-batch',
  async run(ctx) {
    const durationS = Math.min(20, scaled(60, ctx.scale, 3));

    return withBenchDatabase(ctx.adminUrl, 'ingest_batch', async (db) => {
      const ceiling = await measurePlainInsertCeiling(db.pool, { durationS: Math.min(durationS, 10), clients: 4, rowsPerStatement: 500 });
      const serverStartedAt = Date.now();
      const { server, writeKey } = await prepareIngestion(ctx, db);
      let results: BarResult[] = [];
      try {
        const load = await runLoad({
          url: server.url,
          path: '/v1/batch',
          connections: CONNECTIONS,
          durationS,
          headers: { authorization: basicAuth(writeKey), 'content-type': 'application/json' },
          bodyPattern: { before: '{"batch":[', item: trackEventPattern(messageIdPrefix()), items: EVENTS_PER_REQUEST, after: ']}' },
        });
        const stored = await countEvents(db.pool);
        if (ctx.evidenceDir) {
          // With the events of the run in place, as a writer flush would meet them.
          const plan = await explainEventInsert(db.pool, 500);
          await saveEvidence(ctx, 'ingest-insert-explain.txt', plan);
          ctx.note(`ingest-batch: plan of one 500-event flush:\n${plan}`);
        }
        ctx.note(`ingest-batch (${load.tool}, ${ctx.httpProcesses} HTTP processes): ${load.ok} ok and ${load.failed} failed requests in ${load.durationS} s, ${stored} events stored, p50 ${load.latencyP50Ms} ms, p99 ${load.latencyP99Ms} ms`);

        results = [
          judge(
            'ingest-batch',
            'ingest batch-100',
            { figure: stored / load.durationS, unit: 'ev/s' },
            { op: '>=', value: 50_000 },
            {
              reference: { label: 'multi-row insert', figure: ceiling, unit: 'rows/s' },
              details: { loadTool: load.tool, connections: CONNECTIONS, durationS: load.durationS, requestsOk: load.ok, requestsFailed: load.failed, eventsStored: stored, latencyP50Ms: load.latencyP50Ms, latencyP99Ms: load.latencyP99Ms },
            },
          ),
        ];
      } finally {
        await server.stop();
      }
      const profile = ctx.evidenceDir ? await newestCpuProfile(ctx.evidenceDir, serverStartedAt) : undefined;
      if (ctx.evidenceDir && profile) {
        const summary = await summariseCpuProfile(profile);
        await saveEvidence(ctx, 'ingest-batch-cpu-profile.txt', `${profile}\n${summary}\n`);
        for (const result of results) result.details = { ...result.details, cpuProfile: profile, cpuProfileSummary: summary };
        ctx.note(`ingest-batch server CPU profile:\n${summary}`);
      }

      return results;
    });
  },
};
