// A loopback HTTP receiver for webhook destinations: answers 200 with nothing rejected and
// notes when each record or event arrived.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Receiver {
  url: string;
  records: number;
  requests: number;
  /** Arrival time (performance.now()) of each outbound event, by messageId. */
  eventArrivals: Map<string, number>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const state: Receiver = { url: '', records: 0, requests: 0, eventArrivals: new Map(), close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const arrivedAt = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { records?: unknown[]; events?: Array<{ messageId?: string }> };
      state.requests += 1;
      state.records += body.records?.length ?? 0;
      for (const event of body.events ?? []) if (event.messageId) state.eventArrivals.set(event.messageId, arrivedAt);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"rejected":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  return state;
}
