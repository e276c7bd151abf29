import { ConfigError, type Connector, type DestinationConnector, type RecordReject, type WriteResult } from '../sdk/index.js';
import { describeUrl, postJson, type WebhookConfig } from './client.js';
import { webhookSpec } from './spec.js';

export interface WebhookDestinationOptions {
  batchSize?: number;
  /** Where outbound events go; the app URL when absent. */
  eventsUrl?: string;
}

/** A 4xx other than 429 refuses every record of the request; sending it again cannot help. */
function refuseAll(ids: string[], url: string, status: number): RecordReject[] {
  return ids.map((recordId) => ({
    recordId,
    code: 'CDP_WEBHOOK_REJECTED',
    message: `Webhook ${describeUrl(url)} refused the batch with status ${status}`,
    retryable: false,
  }));
}

function settle(ids: string[], status: number, rejected: RecordReject[], url: string): WriteResult {
  const refused = status >= 400 ? refuseAll(ids, url, status) : rejected;
  const refusedIds = new Set(refused.map((r) => r.recordId));

  return { accepted: ids.filter((id) => !refusedIds.has(id)), rejected: refused };
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
      const settled = settle(records.map((r) => r.recordId), status, rejected, req.config.url);
      result.rejected.push(...settled.rejected);
      result.accepted.push(...settled.accepted);
      ctx.log.debug({ status, records: records.length, rejected: settled.rejected.length, durationMs: Date.now() - started }, 'webhook batch sent');
    }

    return result;
  },
  async sendEvents(ctx, req) {
    // Events go in one request: the caller already sends them in batches of its own.
    const url = req.options.eventsUrl ?? req.config.url;
    const started = Date.now();
    const { status, rejected } = await postJson(req.config, { events: req.events }, ctx.signal, url);
    const result = settle(req.events.map((e) => e.recordId), status, rejected, url);
    ctx.log.debug({ status, events: req.events.length, rejected: result.rejected.length, durationMs: Date.now() - started }, 'webhook events sent');

    return result;
  },
};

/** Sends export records to an HTTP endpoint as JSON. */
export const webhookConnector: Connector = { spec: webhookSpec, destination };
