import { retryAfterSeconds } from '../support/retry-after.ts';
import type { Logger } from '../logging/logger.ts';
import type { CancelSignal } from './cancellation.ts';

/** Timers may fire a little early against the monotonic clock: a pause this close to its end is over. */
const PAUSE_SLACK_MS = 5;

/**
 * The pause a 429 puts on every call of the client's key. Context.IO limits a key, not an account (5,000
 * calls an hour), so every call waits for it, or fails at once when it would not end with more than a quarter
 * of UPSTREAM_TIMEOUT_MS still to go before the call's deadline (the client's `#waitOutPause`), instead of
 * spending a request on another 429.
 */
export class RateLimitPause {
  /**
   * Until when (`performance.now()`: monotonic, so a wall clock stepped back cannot lengthen a pause) the
   * upstream asked, with a 429's Retry-After, that no calls be made.
   */
  #until = 0;

  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** What is left of the pause, in ms; a few ms of timer slack count as none. */
  leftMs(): number {
    const left = this.#until - performance.now();
    return left > PAUSE_SLACK_MS ? left : 0;
  }

  /** A 429's Retry-After pauses every call of the key (see `#until`); said once when it begins. */
  begin(waitMs: number | undefined, signal: CancelSignal | undefined): void {
    if (waitMs === undefined || waitMs <= 0) return;
    const now = performance.now();
    if (this.#until <= now) {
      this.#logger.warn('the upstream rate limit was reached: calls wait until it says they may resume', {
        ...(signal?.requestId === undefined ? {} : { requestId: signal.requestId }),
        seconds: retryAfterSeconds(waitMs),
      });
    }
    this.#until = Math.max(this.#until, now + waitMs);
  }
}
