// Bar: single /v1/track calls, events committed per second (each acknowledged after commit).
// References: a no-op POST route and GET /health of the same server, same connections.
import { scaled, type Benchmark } from './lib/context.js';
import { withBenchDatabase } from './lib/database.js';
import { basicAuth, runLoad, type LoadResult } from './lib/http-load.js';
import { countEvents, messageIdPrefix, prepareIngestion, trackEventPattern } from './lib/ingest-setup.js';
import { startServerChild } from './lib/server-child.js';
import { judge, type BarResult } from './lib/result.js';
import { newestCpuProfile, summariseCpuProfile } from './lib/cpu-profile.js';
import { saveEvidence } from './lib/evidence.js';

const CONNECTIONS = 128;

export const ingestSingle: Benchmark = {
  name: 'ingest-single',
  async run(ctx) {
    const durationS = Math.min(20, scaled(60, ctx.scale, 3));
    const referenceS = Math.min(10, durationS);

    return withBenchDatabase(ctx.adminUrl, 'ingest_single', async (db) => {
      const serverStartedAt = Date.now();
      const { server, writeKey } = await prepareIngestion(ctx, db);
      let results: BarResult[] = [];
      try {
        const headers = { authorization: basicAuth(writeKey), 'content-type': 'application/json' };
        const bodyPattern = { item: trackEventPattern(messageIdPrefix()) };
        // The references run on a second, unprofiled server process, so a CPU profile of the
        // first one shows the track route alone.
        const referenceServer = await startServerChild({ databaseUrl: db.url, processes: ctx.httpProcesses });
        let noop: LoadResult;
        let health: LoadResult;
        try {
          noop = await runLoad({ url: referenceServer.url, path: '/bench/noop', connections: CONNECTIONS, durationS: referenceS, headers, bodyPattern });
          health = await runLoad({ url: referenceServer.url, path: '/health', method: 'GET', connections: CONNECTIONS, durationS: referenceS });
        } finally {
          await referenceServer.stop();
        }
        const load = await runLoad({ url: server.url, path: '/v1/track', connections: CONNECTIONS, durationS, headers, bodyPattern });
        const stored = await countEvents(db.pool);
        ctx.note(`ingest-single (${load.tool}, ${ctx.httpProcesses} HTTP processes): ${load.ok} ok and ${load.failed} failed requests in ${load.durationS} s, ${stored} events stored, p50 ${load.latencyP50Ms} ms, p99 ${load.latencyP99Ms} ms; no-op ${Math.round(noop.reqPerS)} req/s, health ${Math.round(health.reqPerS)} req/s`);

        results = [
          judge(
            'ingest-single',
            'ingest single track',
            { figure: stored / load.durationS, unit: 'ev/s' },
            { op: '>=', value: 10_000 },
            {
              reference: { label: 'no-op route', figure: noop.reqPerS, unit: 'req/s', also: `GET /health ${Math.round(health.reqPerS).toLocaleString('en-US')} req/s` },
              details: {
                loadTool: load.tool,
                connections: CONNECTIONS,
                durationS: load.durationS,
                requestsOk: load.ok,
                requestsFailed: load.failed,
                eventsStored: stored,
                latencyP50Ms: load.latencyP50Ms,
                latencyP99Ms: load.latencyP99Ms,
                healthReqPerS: health.reqPerS,
                healthLatencyP50Ms: health.latencyP50Ms,
                noopLatencyP50Ms: noop.latencyP50Ms,
              },
            },
          ),
        ];
      } finally {
        await server.stop();
      }
      const profile = ctx.evidenceDir ? await newestCpuProfile(ctx.evidenceDir, serverStartedAt) : undefined;
      if (ctx.evidenceDir && profile) {
        const summary = await summariseCpuProfile(profile);
        await saveEvidence(ctx, 'ingest-single-cpu-profile.txt', `${profile}\n${summary}\n`);
        for (const result of results) result.details = { ...result.details, cpuProfile: profile, cpuProfileSummary: summary };
        ctx.note(`ingest-single server CPU profile:\n${summary}`);
      }

      return results;
    });
  },
};
