// Bar: on an idle system, the time from a track call's acknowledgement to its arrival at a
// subscribed webhook (server with the event pump, as `roster start` runs it), p95.
// Reference: the acknowledgement latency of the same calls (ingestion alone, no processing).
import { type Benchmark } from './lib/context.js';
import { withBenchDatabase } from './lib/database.js';
import { applyConfigText } from './lib/apply-config-text.js';
import { basicAuth } from './lib/http-load.js';
import { messageIdPrefix, prepareIngestion } from './lib/ingest-setup.js';
import { startReceiver } from './lib/receiver.js';
import { judge } from './lib/result.js';
import { percentile, sleep } from './lib/timing.js';

const SPACING_MS = 20;

function deliveryYaml(url: string): string {
  return `
apps:
  - { key: hook_app, type: webhook, options: { url: "${url}/records" } }
properties:
  - { key: user_id, type: string, unique: true }
  - { key: plan, type: string }
groups:
  - { key: pro, rule: { "==": [{ var: plan }, "pro"] } }
destinations:
  - { key: hook, app: hook_app, options: { eventsUrl: "${url}/events" }, groups: [pro], mapping: { tier: plan }, events: [Order Completed] }
events:
  userIdProperty: user_id
`;
}

export const deliveryLatency: Benchmark = {
  name: 'delivery-latency',
  async run(ctx) {
    const count = ctx.scale >= 0.1 ? 200 : 60;
    const receiver = await startReceiver();
    try {
      return await withBenchDatabase(ctx.adminUrl, 'delivery', async (db) => {
        await applyConfigText(db.pool, deliveryYaml(receiver.url));
        const { server, writeKey } = await prepareIngestion(ctx, db, { pump: true });
        try {
          const headers = { authorization: basicAuth(writeKey), 'content-type': 'application/json' };
          const post = async (path: string, body: unknown): Promise<void> => {
            const response = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
            await response.arrayBuffer();
            if (response.status !== 200) throw new Error(`POST ${path} answered ${response.status}`);
          };

          // One profile in the destination's group, then wait (bounded) until it is a member.
          await post('/v1/identify', { userId: 'u1', traits: { plan: 'pro' } });
          const deadline = Date.now() + 15_000;
          for (;;) {
            const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM roster_core.group_memberships');
            if (rows[0].n > 0) break;
            if (Date.now() > deadline) throw new Error('The profile did not join the group within 15 s');
            await sleep(20);
          }

          const prefix = messageIdPrefix();
          const ackedAt = new Map<string, number>();
          const ackMs: number[] = [];
          for (let i = 0; i < count; i += 1) {
            const messageId = `${prefix}-${i}`;
            const sentAt = performance.now();
            await post('/v1/track', { userId: 'u1', event: 'Order Completed', messageId, properties: { i } });
            const acked = performance.now();
            ackedAt.set(messageId, acked);
            ackMs.push(acked - sentAt);
            await sleep(SPACING_MS);
          }
          const waitUntil = Date.now() + 10_000;
          while (receiver.eventArrivals.size < count && Date.now() < waitUntil) await sleep(10);

          const deliveryMs = [...ackedAt].flatMap(([messageId, acked]) => {
            const arrived = receiver.eventArrivals.get(messageId);

            return arrived === undefined ? [] : [arrived - acked];
          });
          const missing = count - deliveryMs.length;
          const p = (values: number[], q: number): number => Number(percentile(values, q).toFixed(1));
          ctx.note(`delivery-latency: ${deliveryMs.length}/${count} delivered; ack to arrival p50 ${p(deliveryMs, 50)} ms, p95 ${p(deliveryMs, 95)} ms, p99 ${p(deliveryMs, 99)} ms; ack p50 ${p(ackMs, 50)} ms, p95 ${p(ackMs, 95)} ms`);
          // Undelivered events count as infinitely late.
          const figure = missing > 0 ? Number.POSITIVE_INFINITY : percentile(deliveryMs, 95);

          return [
            judge('delivery-latency', 'event to delivery p95 (idle)', { figure, unit: 'ms' }, { op: '<', value: 1000 }, {
              reference: { label: 'ack p95', figure: percentile(ackMs, 95), unit: 'ms' },
              details: {
                events: count,
                delivered: deliveryMs.length,
                spacingMs: SPACING_MS,
                deliveryP50Ms: percentile(deliveryMs, 50),
                deliveryP95Ms: percentile(deliveryMs, 95),
                deliveryP99Ms: percentile(deliveryMs, 99),
                deliveryMaxMs: Math.max(...deliveryMs),
                ackP50Ms: percentile(ackMs, 50),
                ackP95Ms: percentile(ackMs, 95),
                ackP99Ms: percentile(ackMs, 99),
              },
            }),
          ];
        } finally {
          await server.stop();
        }
      });
    } finally {
      await receiver.close();
    }
  },
};
