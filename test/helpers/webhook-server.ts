// A real HTTP receiver on loopback whose answers a test can script.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRecord {
  recordId: string;
  action: string;
  properties: Record<string, unknown>;
  groups: string[];
}

export interface WebhookServer {
  url: string;
  received: ReceivedRecord[][];
  /** Decides the answer to each request; default 200 with nothing rejected. */
  respond: (records: ReceivedRecord[]) => { status: number; body?: unknown };
  close(): Promise<void>;
}

export async function startWebhookServer(): Promise<WebhookServer> {
  const state: WebhookServer = {
    url: '',
    received: [],
    respond: () => ({ status: 200, body: { rejected: [] } }),
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const records = (JSON.parse(body || '{}').records ?? []) as ReceivedRecord[];
      const answer = state.respond(records);
      if (answer.status < 300) state.received.push(records);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));

  return state;
}
