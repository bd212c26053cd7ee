/**
 * Runs `body` with `performance.now()` (the monotonic clock the upstream client, its breaker and the callers'
 * budgets keep time by) `ms` ahead: a test waits out a pause or a cooldown at once, where a sleep would cost
 * its length and, on a busy machine, might not be long enough. The clock is put back after `body`, so nothing
 * that keeps time by it may still be running then.
 */
export async function withClockAhead<T>(ms: number, body: () => Promise<T>): Promise<T> {
  const realNow = performance.now.bind(performance);
  performance.now = () => realNow() + ms;
  try {
    return await body();
  } finally {
    performance.now = realNow;
  }
}
