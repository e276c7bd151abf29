import type { Pool } from '../lib/db.js';
import { TransientError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { insertEvents, type PreparedEvent } from '../sql/event-queries.js';

export interface EventWriterOptions {
  pool: Pool;
  log: Pick<Logger, 'debug' | 'warn' | 'error'>;
  /** A flush starts once this many events wait. */
  maxBatchEvents?: number;
  /** ...or once the oldest waiting event has waited this long. */
  maxDelayMs?: number;
  /** Flushes running at once; more events wait and go out together. */
  maxConcurrentFlushes?: number;
  /** Called after each committed flush with the number of events stored. */
  onEventsStored?: (count: number) => void;
}

export interface EventWriter {
  /**
   * Queues checked events and resolves once they are committed, or rejects with
   * `CDP_EVENT_STORE_UNAVAILABLE`. Events of one call are always committed together.
   */
  write(events: PreparedEvent[]): Promise<void>;
  /** Flushes what is waiting and waits for every flush to end. */
  close(): Promise<void>;
}

interface Pending {
  events: PreparedEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for the ingestion routes: requests append to a buffer that is written as one
 * multi-row statement, so many concurrent single-event requests cost one round trip and one
 * commit between them, and each request is still acknowledged only after its commit.
 */
export function createEventWriter(options: EventWriterOptions): EventWriter {
  const maxBatchEvents = options.maxBatchEvents ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 3;
  const maxConcurrentFlushes = options.maxConcurrentFlushes ?? 2;
  let waiting: Pending[] = [];
  let waitingEvents = 0;
  let timer: NodeJS.Timeout | undefined;
  const running = new Set<Promise<void>>();

  function takeBatch(): Pending[] {
    let count = 0;
    let taken = 0;
    while (taken < waiting.length && count < maxBatchEvents) {
      count += waiting[taken].events.length;
      taken += 1;
    }
    const batch = waiting.slice(0, taken);
    waiting = waiting.slice(taken);
    waitingEvents -= count;

    return batch;
  }

  async function flushBatch(batch: Pending[]): Promise<void> {
    const events = batch.length === 1 ? batch[0].events : batch.flatMap((pending) => pending.events);
    const startedAt = performance.now();
    try {
      const stored = await insertEvents(options.pool, events);
      options.log.debug({ events: events.length, stored, durationMs: Math.round(performance.now() - startedAt) }, 'events written');
      for (const pending of batch) pending.resolve();
      if (stored > 0 && options.onEventsStored) {
        try {
          options.onEventsStored(stored);
        } catch (err) {
          options.log.warn({ err }, 'events stored hook failed');
        }
      }
    } catch (err) {
      options.log.error({ err, events: events.length }, 'event write failed');
      const failure = new TransientError('CDP_EVENT_STORE_UNAVAILABLE', 'Events could not be stored; send them again', { cause: err });
      for (const pending of batch) pending.reject(failure);
    }
  }

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    while (waiting.length > 0 && running.size < maxConcurrentFlushes) {
      const done = flushBatch(takeBatch()).finally(() => {
        running.delete(done);
        // Whatever piled up while every flush slot was busy goes out now, batched.
        if (waiting.length > 0 && !timer) flush();
      });
      running.add(done);
    }
  }

  return {
    write(events) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ events, resolve, reject });
        waitingEvents += events.length;
        if (waitingEvents >= maxBatchEvents) {
          flush();
        } else if (!timer && running.size < maxConcurrentFlushes) {
          timer = setTimeout(flush, maxDelayMs);
        }
      });
    },
    async close() {
      flush();
      while (running.size > 0 || waiting.length > 0) {
        await Promise.all(running);
        flush();
      }
    },
  };
}
