// Runs autocannon against the bench server and condenses its result.
import autocannon from 'autocannon';

export interface LoadResult {
  durationS: number;
  ok: number;
  failed: number;
  reqPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface LoadOptions {
  url: string;
  path: string;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  /** A new body for every request (unique messageIds); omitted for a fixed body. */
  makeBody?: () => string;
  body?: string;
  method?: 'GET' | 'POST';
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const method = options.method ?? 'POST';
  const makeBody = options.makeBody;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationS,
    timeout: 30,
    headers: options.headers,
    requests: [
      {
        method,
        path: options.path,
        body: makeBody ? makeBody() : options.body,
        ...(makeBody ? { setupRequest: (request: { body?: string }) => ({ ...request, body: makeBody() }) } : {}),
      },
    ],
  });
  const ok = result['2xx'];
  const failed = result.non2xx + result.errors + result.timeouts;

  return {
    durationS: result.duration,
    ok,
    failed,
    reqPerS: ok / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

export function basicAuth(writeKey: string): string {
  return `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
}
