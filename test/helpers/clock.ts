import type { WaitTimer } from '../../src/wait-timer.ts';

/**
 * Runs `body` with `performance.now()` (the monotonic clock the upstream client, its breaker and the callers'
 * budgets keep time by) `ms` ahead: a test waits out a pause or a cooldown at once, where a sleep would cost
 * its length and, on a busy machine, might not be long enough. With `wallClock`, `Date.now()` too: jose times
 * the key set's refetch cooldown by it (a token's own claims it checks against `new Date()`, which stays). The
 * clocks are put back after `body`, so nothing that keeps time by them may still be running then.
 */
export async function withClockAhead<T>(ms: number, body: () => Promise<T>, { wallClock = false }: { wallClock?: boolean } = {}): Promise<T> {
  const realNow = performance.now.bind(performance);
  const realDateNow = Date.now;
  performance.now = () => realNow() + ms;
  if (wallClock) Date.now = () => realDateNow() + ms;
  try {
    return await body();
  } finally {
    performance.now = realNow;
    Date.now = realDateNow;
  }
}

/**
 * A `WaitTimer` (the emulator's `faultTimer`, the gateway's `upstreamWaitTimer`) that the test runs by hand:
 * each wait asked for is kept, with its length, until the test fires it (or its owner cancels it). Time itself
 * never ends one.
 */
export function manualTimer(): { timer: WaitTimer; waiting: () => number[]; fireAll: () => void } {
  let waits: Array<{ ms: number; fire: () => void }> = [];
  return {
    timer: (callback, ms) => {
      const wait = { ms, fire: callback };
      waits.push(wait);
      return () => {
        waits = waits.filter((w) => w !== wait);
      };
    },
    /** The lengths of the waits asked for and not yet fired or cancelled, in the order asked. */
    waiting: () => waits.map((w) => w.ms),
    fireAll: () => {
      const due = waits;
      waits = [];
      for (const wait of due) wait.fire();
    },
  };
}
