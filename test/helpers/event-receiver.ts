// A real HTTP receiver of outbound events on loopback, scriptable per request, that notes the
// order of what it saw so tests can compare destinations without timing thresholds.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OutboundEvent } from '../../connectors/sdk/index.js';

/** An answer to send, or 'hang' to keep the request open until the client gives up. */
export type ReceiverAnswer = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

export interface EventReceiver {
  name: string;
  url: string;
  /** Events of every request answered with a 2xx, in arrival order. */
  delivered: OutboundEvent[];
  /** Every request's events, whatever the answer. */
  requests: OutboundEvent[][];
  /** When each delivered event arrived (Date.now()), by messageId. */
  arrivedAt: Map<string, number>;
  respond: (events: OutboundEvent[]) => ReceiverAnswer;
  close(): Promise<void>;
}

/**
 * Starts a receiver. `journal`, shared between receivers, gets `<name>:received` for each
 * request and `<name>:abandoned` when a client closes a hanging request.
 */
export async function startEventReceiver(name: string, journal: string[] = []): Promise<EventReceiver> {
  const state: EventReceiver = {
    name,
    url: '',
    delivered: [],
    requests: [],
    arrivedAt: new Map(),
    respond: () => ({ status: 200, body: { rejected: [] } }),
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const events = (JSON.parse(text || '{}').events ?? []) as OutboundEvent[];
      journal.push(`${name}:received`);
      state.requests.push(events);
      const answer = state.respond(events);
      if (answer === 'hang') {
        res.on('close', () => journal.push(`${name}:abandoned`));

        return;
      }
      if (answer.status < 300) {
        state.delivered.push(...events);
        for (const event of events) state.arrivedAt.set(event.messageId, Date.now());
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  return state;
}
