// Bench-only instrumentation: wraps pg.Client#query in this process to total the time spent
// waiting for each statement shape, so a slow run shows which SQL it waits on.
import pg from 'pg';

export interface StatementTime {
  statement: string;
  calls: number;
  totalMs: number;
}

export function startQueryTimer(): { top(n: number): StatementTime[] } {
  const totals = new Map<string, StatementTime>();
  const original = pg.Client.prototype.query;
  const shapeOf = (config: unknown): string => {
    const text = typeof config === 'string' ? config : ((config as { text?: string } | null)?.text ?? '?');

    return text.replace(/\s+/g, ' ').trim().slice(0, 120);
  };
  // The wrapper keeps every call form of query(); only promise-returning calls are timed.
  pg.Client.prototype.query = function timedQuery(this: pg.Client, ...args: unknown[]) {
    const startedAt = performance.now();
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      const shape = shapeOf(args[0]);
      const done = (): void => {
        const entry = totals.get(shape) ?? { statement: shape, calls: 0, totalMs: 0 };
        entry.calls += 1;
        entry.totalMs += performance.now() - startedAt;
        totals.set(shape, entry);
      };
      (result as Promise<unknown>).then(done, done);
    }

    return result;
  } as typeof pg.Client.prototype.query;

  return {
    top: (n) => [...totals.values()].sort((a, b) => b.totalMs - a.totalMs).slice(0, n).map((entry) => ({ ...entry, totalMs: Math.round(entry.totalMs) })),
  };
}
