/**
 * A circuit breaker for the upstream as a whole. While the upstream is down, every call would wait for its
 * deadline and add load to a server that is struggling; instead, after `failureThreshold` consecutive
 * failures that say "down" (no connection, timeouts, 502/504), calls fail at once for `cooldownMs`. Then one
 * probe at a time is let through (half-open): a success closes the circuit, a failure opens it again.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** What {@link CircuitBreaker.tryAcquire} let through: an ordinary call, or the half-open circuit's probe. */
export type BreakerPermit = 'call' | 'probe';

/** What a failure was, for the line saying the circuit opened: the call that made it open. */
type FailureCause = Record<string, unknown>;

/** What a change of state tells: on opening, the failure that opened it; on closing, how long it was not closed. */
interface ChangeDetail {
  cause?: FailureCause;
  openForMs?: number;
}

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  /** Monotonic by default (`performance.now`): a wall clock stepped back must not hold the circuit open. */
  now?: () => number;
  onChange?: (state: BreakerState, detail: ChangeDetail) => void;
}

export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  /** When the circuit last left `closed` (a reopening from half-open keeps it). */
  #leftClosedAt = 0;
  #probing = false;
  readonly #options: Required<Omit<BreakerOptions, 'onChange'>> & Pick<BreakerOptions, 'onChange'>;

  constructor(options: BreakerOptions) {
    this.#options = { now: () => performance.now(), ...options };
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Milliseconds until an open circuit lets a probe through; 0 when it is not open. */
  retryInMs(): number {
    return this.#state === 'open' ? Math.max(0, this.#openedAt + this.#options.cooldownMs - this.#options.now()) : 0;
  }

  /**
   * Whether a call may go out now: `'call'` while closed, `'probe'` for the one call let through a
   * half-open circuit, undefined when it must fail at once. Hand the answer back to {@link release}.
   */
  tryAcquire(): BreakerPermit | undefined {
    if (this.#state === 'closed') return 'call';
    if (this.#state === 'open') {
      if (this.retryInMs() > 0) return undefined;
      this.#set('half-open');
    }
    if (this.#probing) return undefined;
    this.#probing = true;
    return 'probe';
  }

  /** The upstream answered (any status that is not a sign of it being down), to a call with this permit. */
  recordSuccess(permit: BreakerPermit): void {
    this.#failures = 0;
    this.#endProbe(permit);
    if (this.#state !== 'closed') this.#set('closed', { openForMs: Math.round(this.#options.now() - this.#leftClosedAt) });
  }

  /** The upstream looked down to a call with this permit: no connection, a timeout, or a 502/504. */
  recordFailure(permit: BreakerPermit, cause?: FailureCause): void {
    this.#endProbe(permit);
    this.#failures += 1;
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#failures >= this.#options.failureThreshold)) {
      this.#openedAt = this.#options.now();
      if (this.#state === 'closed') this.#leftClosedAt = this.#openedAt;
      this.#set('open', cause === undefined ? {} : { cause });
    }
  }

  /** A call given the go-ahead ended without telling anything about the upstream (e.g. the caller left). */
  release(permit: BreakerPermit): void {
    this.#endProbe(permit);
  }

  /**
   * Only the probe frees the probe's slot: a call let through before the circuit opened, ending while a
   * probe is out, must not let a second probe out beside it.
   */
  #endProbe(permit: BreakerPermit): void {
    if (permit === 'probe') this.#probing = false;
  }

  #set(state: BreakerState, detail: ChangeDetail = {}): void {
    this.#state = state;
    this.#options.onChange?.(state, detail);
  }
}
