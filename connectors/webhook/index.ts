import { ConfigError, type Connector, type DestinationConnector, type RecordReject, type WriteResult } from '../sdk/index.js';
import { describeUrl, postJson, type WebhookConfig } from './client.js';
import { webhookSpec } from './spec.js';

export interface WebhookDestinationOptions {
  batchSize?: number;
}

const destination: DestinationConnector<WebhookConfig, WebhookDestinationOptions> = {
  async check(ctx, config) {
    // An empty batch is the least intrusive request that proves the URL and headers work.
    const { status } = await postJson(config, { records: [] }, ctx.signal);
    if (status === 401 || status === 403) {
      throw new ConfigError('CDP_CONNECTOR_AUTH_FAILED', `Webhook ${describeUrl(config.url)} refused the credentials (status ${status})`);
    }
    if (status >= 400) {
      throw new ConfigError('CDP_WEBHOOK_REJECTED', `Webhook ${describeUrl(config.url)} refused an empty batch (status ${status})`);
    }

    return { ok: true };
  },
  async write(ctx, req) {
    const batchSize = req.options.batchSize ?? Math.max(1, req.records.length);
    const result: WriteResult = { accepted: [], rejected: [] };
    // Batches go one after another; a transient failure part-way means the earlier ones are
    // sent again on retry, which receivers must treat as an upsert.
    for (let i = 0; i < req.records.length; i += batchSize) {
      const records = req.records.slice(i, i + batchSize).map(({ recordId, action, properties, groups }) => ({ recordId, action, properties, groups }));
      const started = Date.now();
      const { status, rejected } = await postJson(req.config, { records }, ctx.signal);
      let refused: RecordReject[] = rejected;
      if (status >= 400) {
        refused = records.map(({ recordId }) => ({
          recordId,
          code: 'CDP_WEBHOOK_REJECTED',
          message: `Webhook ${describeUrl(req.config.url)} refused the batch with status ${status}`,
          retryable: false,
        }));
      }
      const refusedIds = new Set(refused.map((r) => r.recordId));
      result.rejected.push(...refused);
      result.accepted.push(...records.map((r) => r.recordId).filter((id) => !refusedIds.has(id)));
      ctx.log.debug({ status, records: records.length, rejected: refused.length, durationMs: Date.now() - started }, 'webhook batch sent');
    }

    return result;
  },
};

/** Sends export records to an HTTP endpoint as JSON. */
export const webhookConnector: Connector = { spec: webhookSpec, destination };
