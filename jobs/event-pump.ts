import { randomUUID } from 'node:crypto';
import type { PoolClient } from '../lib/db.js';
import { loadDestinations, type DestinationRow } from '../sql/object-queries.js';
import { findDueOutboundDestinations } from '../sql/outbound-event-queries.js';
import { runHydration } from './hydrate.js';
import type { JobDeps } from './index.js';
import { deliverOutboundEvents, type OutboundOptions } from './outbound-events.js';
import { processPendingEvents } from './process-events.js';

/** The Postgres channel a `NOTIFY` on which wakes every event pump listening to the database. */
export const EVENTS_CHANNEL = 'roster_events';

export interface EventPump {
  /** Runs a round soon, here and (through NOTIFY) in every other process's pump. */
  wake(): void;
  /** Stops listening, waits for the round in progress and aborts deliveries in flight. */
  stop(): Promise<void>;
}

export interface EventPumpOptions extends Omit<OutboundOptions, 'signal'> {
  /** A round runs at least this often even with no wake (default 1 s). */
  fallbackMs?: number;
  /** Wait before listening again after the listening connection is lost (default 1 s). */
  reconnectMs?: number;
}

export interface EventNotifier {
  /** Sends a NOTIFY soon; wakes during one in flight coalesce into one more. */
  notify(): void;
  /** Waits for the NOTIFY in flight, if any. */
  settle(): Promise<unknown>;
}

/**
 * Tells every event pump listening to the database that events were stored. At most one
 * NOTIFY is in flight: a burst of wakes (one per ingested request) costs two. `senderId` is
 * the payload, so a pump can ignore its own wakes.
 */
export function createEventNotifier(pool: JobDeps['pool'], log: JobDeps['log'], senderId: string, signal?: AbortSignal): EventNotifier {
  let notifying: Promise<void> | undefined;
  let isNotifyDueAgain = false;
  const notify = (): void => {
    if (notifying) {
      isNotifyDueAgain = true;

      return;
    }
    isNotifyDueAgain = false;
    notifying = pool
      .query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, senderId])
      .then(() => undefined)
      .catch((err: unknown) => log.warn({ err }, 'could not notify event pumps'))
      .finally(() => {
        notifying = undefined;
        if (isNotifyDueAgain && !signal?.aborted) notify();
      });
  };

  return { notify, settle: async () => notifying };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Moves fresh events to their destinations without waiting for pg-boss, whose polling costs at
 * least half a second per hop across three hops (process, hydrate, deliver). A round resolves
 * pending events, hydrates the profiles they touched and starts delivery to every destination
 * with due events. Rounds never overlap: wakes during a round coalesce into one more round.
 *
 * Delivery runs in one lane per destination, not awaited by the round, so a destination that
 * hangs until its timeout delays neither the next round nor any other destination.
 *
 * The pump shares its tables with the pg-boss handlers of the same steps, in this process and
 * others: every step claims rows with FOR UPDATE SKIP LOCKED (outbound rows also with a lease),
 * so running both never sends an event twice.
 */
export function startEventPump(deps: JobDeps, options: EventPumpOptions = {}): EventPump {
  const instanceId = randomUUID();
  const log = deps.log.child({ component: 'event-pump' });
  const stopping = new AbortController();
  const lanes = new Map<number, Promise<void>>();
  const lanesDueAgain = new Set<number>();
  let round: Promise<void> | undefined;
  let isRoundDueAgain = false;

  async function step(name: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      // One failing step must not keep the others from running; the next round tries again.
      log.warn({ err, step: name }, 'event pump step failed');
    }
  }

  function startLane(destination: DestinationRow): void {
    const lane = (async () => {
      do {
        lanesDueAgain.delete(destination.id);
        await deliverOutboundEvents(deps, destination, { ...options, signal: stopping.signal });
      } while (lanesDueAgain.has(destination.id) && !stopping.signal.aborted);
    })().finally(() => lanes.delete(destination.id));
    lanes.set(destination.id, lane);
  }

  async function dispatchDeliveries(): Promise<void> {
    const due = await findDueOutboundDestinations(deps.pool);
    const idle = due.filter((id) => {
      if (lanes.has(id)) {
        lanesDueAgain.add(id);

        return false;
      }

      return true;
    });
    if (idle.length > 0 && !stopping.signal.aborted) {
      for (const destination of await loadDestinations(deps.pool, idle)) startLane(destination);
    }
  }

  async function runRounds(): Promise<void> {
    do {
      isRoundDueAgain = false;
      const startedAt = Date.now();
      log.trace('event pump round started');
      await step('process', () => processPendingEvents(deps));
      await step('hydrate', () => runHydration(deps));
      await step('deliver', dispatchDeliveries);
      log.trace({ durationMs: Date.now() - startedAt }, 'event pump round finished');
    } while (isRoundDueAgain && !stopping.signal.aborted);
  }

  function schedule(): void {
    if (stopping.signal.aborted) return;
    if (round) {
      isRoundDueAgain = true;

      return;
    }
    round = runRounds().finally(() => {
      round = undefined;
      if (isRoundDueAgain) schedule();
    });
  }

  const notifier = createEventNotifier(deps.pool, log, instanceId, stopping.signal);

  async function listen(): Promise<void> {
    while (!stopping.signal.aborted) {
      let client: PoolClient | undefined;
      try {
        client = await deps.pool.connect();
        const lost = new Promise<unknown>((resolve) => {
          client!.once('error', resolve);
          client!.once('end', () => resolve(new Error('connection ended')));
          stopping.signal.addEventListener('abort', () => resolve(undefined), { once: true });
        });
        client.on('notification', (message) => {
          // Our own wakes were already scheduled locally.
          if (message.channel === EVENTS_CHANNEL && message.payload !== instanceId) schedule();
        });
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        // Events stored while nobody listened would otherwise wait for the fallback timer.
        schedule();
        const err = await lost;
        if (err) log.warn({ err }, 'event pump lost its listening connection; reconnecting');
      } catch (err) {
        log.warn({ err }, 'event pump could not listen; retrying');
      } finally {
        // Destroyed rather than returned: a pooled connection must not keep listening.
        client?.release(true);
      }
      await pause(options.reconnectMs ?? 1_000, stopping.signal);
    }
  }

  const listening = listen();
  const timer = setInterval(schedule, options.fallbackMs ?? 1_000);
  log.info({ channel: EVENTS_CHANNEL }, 'event pump started');

  return {
    wake() {
      schedule();
      notifier.notify();
    },
    async stop() {
      stopping.abort();
      clearInterval(timer);
      await Promise.allSettled([round, listening, notifier.settle(), ...lanes.values()]);
      log.info('event pump stopped');
    },
  };
}
