/**
 * Wraps `fn` so it runs at most once per `intervalMs`. A call inside the interval is not lost:
 * one trailing run happens when the interval ends, so the last signal always gets through.
 */
export function throttle(fn: () => void, intervalMs: number): () => void {
  let lastRunMs = Number.NEGATIVE_INFINITY;
  let trailing: NodeJS.Timeout | undefined;

  const run = () => {
    trailing = undefined;
    lastRunMs = Date.now();
    fn();
  };

  return () => {
    const waitMs = lastRunMs + intervalMs - Date.now();
    if (waitMs <= 0) {
      run();
    } else if (!trailing) {
      trailing = setTimeout(run, waitMs);
      trailing.unref();
    }
  };
}
