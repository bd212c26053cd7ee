import type { TestContext } from 'node:test';
import type { WaitTimer } from '../../src/support/wait-timer.ts';

/**
 * Runs `body` with `performance.now()` (the monotonic clock the upstream client, its breaker, the callers'
 * budgets and the key set's refetches keep time by) `ms` ahead: a test waits out a pause or a cooldown at once,
 * where a sleep would cost its length and, on a busy machine, might not be long enough. With `wallClock`, the
 * wall clock too (`withWallClockAhead`): jose checks a token's `exp` against `new Date()`, and the tokens
 * remembered end by it. The clocks are put back after `body`, so nothing that keeps time by them may still be
 * running then.
 */
export async function withClockAhead<T>(ms: number, body: () => Promise<T>, { wallClock = false }: { wallClock?: boolean } = {}): Promise<T> {
  const realNow = performance.now.bind(performance);
  performance.now = () => realNow() + ms;
  try {
    return await (wallClock ? withWallClockAhead(ms, body) : body());
  } finally {
    performance.now = realNow;
  }
}

/**
 * Runs `body` with the wall clock `ms` ahead (behind, for a negative `ms`), the whole of it: `Date.now()`,
 * `new Date()` and `Date()`. The global `Date` is replaced by a proxy of itself that reads the time moved on
 * (as `t.mock.timers` does with `Date`, but the clock keeps running); a date of a given time is made as ever,
 * and every date, made before or after, is still `instanceof Date`. Put back after `body`.
 */
export async function withWallClockAhead<T>(ms: number, body: () => Promise<T>): Promise<T> {
  const RealDate = Date;
  const now = () => RealDate.now() + ms;
  globalThis.Date = new Proxy(RealDate, {
    construct: (target, args: unknown[], newTarget: NewableFunction) => Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget) as object,
    apply: () => new RealDate(now()).toString(),
    get: (target, key, receiver) => (key === 'now' ? now : Reflect.get(target, key, receiver)),
  });
  try {
    return await body();
  } finally {
    globalThis.Date = RealDate;
  }
}

/**
 * Runs `body` on the test's own time: the monotonic clock (`performance.now`, the upstream client's) held still,
 * but for a microsecond at each reading (as time moves on between two events), until `advance(ms)` moves it on;
 * and, given the test's context `t`, `setTimeout` too (the calls' deadlines), mocked and moved on with it. A busy
 * machine then cannot change which call runs out of time, or when it went out. Both put back after `body`. (No
 * `eventually()` inside with `t`: it waits on `setTimeout`.) `exact`: the clock moves only by `advance`, from a
 * whole number, so that a difference of two readings is exactly the time advanced between them (moved on by
 * 1,000 from a fraction like 901.718266, the clock read 999.9999999999 ms later, short of a second).
 */
export async function onTestTime(
  t: TestContext | undefined,
  body: (advance: (ms: number) => void) => Promise<void>,
  { exact = false }: { exact?: boolean } = {},
): Promise<void> {
  const realNow = performance.now.bind(performance);
  let now = exact ? Math.ceil(realNow()) : realNow();
  const eachReading = exact ? 0 : 0.001;
  performance.now = () => (now += eachReading);
  t?.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    await body((ms) => {
      now += ms;
      t?.mock.timers.tick(ms);
    });
  } finally {
    performance.now = realNow;
    t?.mock.timers.reset();
  }
}

/**
 * A `WaitTimer` (the emulator's `faultTimer`, the gateway's `upstreamWaitTimer`) that the test runs by hand:
 * each wait asked for is kept, with its length, until the test fires it (or its owner cancels it). Time itself
 * never ends one.
 */
export function manualTimer(): { timer: WaitTimer; waiting: () => number[]; asked: () => Promise<void>; fireFirst: () => void; fire: (ms: number) => void; fireAll: () => void } {
  let waits: Array<{ ms: number; fire: () => void }> = [];
  let onAsked: (() => void) | undefined;
  return {
    timer: (callback, ms) => {
      const wait = { ms, fire: callback };
      waits.push(wait);
      onAsked?.();
      onAsked = undefined;
      return () => {
        waits = waits.filter((w) => w !== wait);
      };
    },
    /** The lengths of the waits asked for and not yet fired or cancelled, in the order asked. */
    waiting: () => waits.map((w) => w.ms),
    /** Settles once a wait is asked for and not yet fired or cancelled (at once if one is): no polling, so it works with timers mocked. */
    asked: () => (waits.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (onAsked = resolve))),
    /** Fires the wait asked for first of those still waiting, if any. */
    fireFirst: () => waits.shift()?.fire(),
    /** Fires the waits of `ms` still waiting: waits asked for in no set order, told apart by their lengths. */
    fire: (ms) => {
      const due = waits.filter((w) => w.ms === ms);
      waits = waits.filter((w) => w.ms !== ms);
      for (const wait of due) wait.fire();
    },
    fireAll: () => {
      const due = waits;
      waits = [];
      for (const wait of due) wait.fire();
    },
  };
}

/**
 * Runs `body` with the wall clock (`Date`, as in `withWallClockAhead`) and the monotonic clock (`performance.now`)
 * both held still, from `wallStartMs` and the monotonic clock's reading now, until `advance(ms)` moves both on by
 * `ms`: a model of rules timed by both (a token's `exp` by `Date.now()`; the key set's refetch cooldown, its age and
 * its back-off after a failure by `performance.now()`) then knows to the millisecond how far apart two events
 * were, however long the machine took between them. Real timers (`setTimeout`, `AbortSignal.timeout`) still run.
 * Both put back after `body`, so nothing that keeps time by them may still be running then.
 */
export async function onHeldClocks<T>(wallStartMs: number, body: (advance: (ms: number) => void, wallNow: () => number) => Promise<T>): Promise<T> {
  const RealDate = Date;
  const realNow = performance.now.bind(performance);
  let wall = wallStartMs;
  let monotonic = Math.ceil(realNow());
  globalThis.Date = new Proxy(RealDate, {
    construct: (target, args: unknown[], newTarget: NewableFunction) => Reflect.construct(target, args.length === 0 ? [wall] : args, newTarget) as object,
    apply: () => new RealDate(wall).toString(),
    get: (target, key, receiver) => (key === 'now' ? () => wall : Reflect.get(target, key, receiver)),
  });
  performance.now = () => monotonic;
  try {
    return await body(
      (ms) => {
        wall += ms;
        monotonic += ms;
      },
      () => wall,
    );
  } finally {
    globalThis.Date = RealDate;
    performance.now = realNow;
  }
}
