import { ConfigError, TransientError, type RecordReject } from '../sdk/index.js';

export interface WebhookConfig {
  url: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface PostResult {
  status: number;
  /** Per-record rejects the receiver listed in a 2xx body. */
  rejected: RecordReject[];
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_MESSAGE_LENGTH = 300;

/** The URL without credentials, query or fragment, safe for messages. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);

    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return 'the configured URL';
  }
}

/** Milliseconds from a Retry-After header (seconds or an HTTP date). */
export function parseRetryAfter(header: string | null): number | undefined {
  if (!header) {
    return undefined;
  }
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) {
    return Math.round(seconds * 1000);
  }
  const date = Date.parse(header);

  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function readRejects(body: unknown, sentIds: Set<string>): RecordReject[] {
  const list = (body as { rejected?: unknown } | null)?.rejected;
  if (!Array.isArray(list)) {
    return [];
  }

  return list
    .filter((item): item is { recordId: string; code?: unknown; message?: unknown } => typeof item?.recordId === 'string' && sentIds.has(item.recordId))
    .map((item) => ({
      recordId: item.recordId,
      code: typeof item.code === 'string' && item.code !== '' ? item.code : 'CDP_WEBHOOK_REJECTED',
      message: typeof item.message === 'string' ? item.message.slice(0, MAX_MESSAGE_LENGTH) : 'Webhook receiver rejected the record',
      retryable: false,
    }));
}

/** Export records or outbound events; both are identified by `recordId`. */
export type PostBody = { records: Array<{ recordId: string }> } | { events: Array<{ recordId: string }> };

/**
 * POSTs one JSON body to `url` (the app's URL unless given). Throws TransientError for 429,
 * 5xx, timeouts and network errors; returns the status otherwise, so the caller decides what a
 * 4xx means for its records.
 */
export async function postJson(config: WebhookConfig, body: PostBody, signal: AbortSignal, url: string = config.url): Promise<PostResult> {
  const target = describeUrl(url);
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...config.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
  } catch (err) {
    if (signal.aborted) {
      throw err;
    }
    if ((err as Error).name === 'TimeoutError') {
      throw new TransientError('CDP_DESTINATION_TIMEOUT', `Webhook ${target} did not answer within ${timeoutMs} ms`, { cause: err });
    }
    const code = ((err as Error).cause as { code?: string } | undefined)?.code;
    if (code === 'ENOTFOUND') {
      throw new ConfigError('CDP_CONNECTOR_UNREACHABLE', `Webhook host of ${target} does not resolve`, { cause: err });
    }
    throw new TransientError('CDP_DESTINATION_UNAVAILABLE', `Webhook ${target} could not be reached (${code ?? 'network error'})`, { cause: err });
  }

  const text = await response.text().catch(() => '');
  if (response.status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    throw new TransientError('CDP_DESTINATION_RATE_LIMITED', `Webhook ${target} is rate limiting requests (status 429)`, { retryAfterMs, details: { status: 429 } });
  }
  if (response.status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    throw new TransientError('CDP_DESTINATION_UNAVAILABLE', `Webhook ${target} answered with status ${response.status}`, { retryAfterMs, details: { status: response.status } });
  }
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // A 2xx with a non-JSON body accepts everything; there is nothing to read.
  }

  const sent = 'records' in body ? body.records : body.events;

  return { status: response.status, rejected: response.ok ? readRejects(parsed, new Set(sent.map((r) => r.recordId))) : [] };
}
