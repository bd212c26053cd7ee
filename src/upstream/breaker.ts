/*
 * A circuit breaker for the upstream as a whole. While the upstream is down, every call would wait for its
 * deadline and add load to a server that is struggling; instead, after `failureThreshold` consecutive
 * failures that say "down" (no connection, timeouts, 502/504, a 503 without the API's own error body), calls
 * fail at once for `cooldownMs`. Then one probe at a time is let through (half-open): a success closes the
 * circuit, a failure opens it again. (A probe that has not answered within another cooldown stops holding the
 * way: see `tryAcquire`.) What a call's failure counts for, across its attempts and beside other calls: see
 * `CallVerdicts`.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * The half-open circuit's trial call. One object per probe, so that the breaker can tell a probe it has given
 * up waiting for (see {@link CircuitBreaker.tryAcquire}) from the one out now: the stale one's end must not
 * free the current one's slot.
 */
export class Probe {
  constructor(readonly startedAt: number) {}
}

/** What {@link CircuitBreaker.tryAcquire} let through: an ordinary call, or the half-open circuit's probe. */
export type BreakerPermit = 'call' | Probe;

/**
 * Probes out at once at most: the current one and one given up on. More would pile requests onto an upstream
 * that hangs, one each cooldown until the first reaches its deadline.
 */
const MAX_PROBES_OUT = 2;

/**
 * A failure within this long of a call served (a 2xx) is one path's, not the upstream down (see `CallVerdicts`).
 * Under load a whole outage serves nothing for a second soon enough: the circuit opens about a second later.
 */
const SERVED_RECENTLY_MS = 1_000;

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
  /** When the upstream last served a call: answered it with a success (2xx). */
  #lastServedAt = Number.NEGATIVE_INFINITY;
  /** The half-open circuit's probe holding the way now, if any. */
  #probe: Probe | undefined;
  /** Every probe not ended yet: the current one and those given up on (still waiting for their answer). */
  readonly #probesOut = new Set<Probe>();
  /** The probes still out when the circuit last closed: ordinary calls from then on (see `recordSuccess`). */
  readonly #outWhenClosed = new WeakSet<Probe>();
  readonly #options: Required<Omit<BreakerOptions, 'onChange'>> & Pick<BreakerOptions, 'onChange'>;

  constructor(options: BreakerOptions) {
    this.#options = { now: () => performance.now(), ...options };
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** The breaker's clock: monotonic unless a test gave it another. */
  now(): number {
    return this.#options.now();
  }

  /** Whether the upstream served a call (answered it with a success) after `time`. */
  servedSince(time: number): boolean {
    return this.#lastServedAt > time;
  }

  /** Milliseconds until an open circuit lets a probe through; 0 when it is not open. */
  retryInMs(): number {
    return this.#state === 'open' ? Math.max(0, this.#openedAt + this.#options.cooldownMs - this.#options.now()) : 0;
  }

  /**
   * Whether a call may go out now: `'call'` while closed, a {@link Probe} for the one call let through a
   * half-open circuit, undefined when it must fail at once. Hand the answer back to the breaker (a verdict,
   * or {@link release}).
   *
   * A probe out for longer than the cooldown is given up on, when no other is still out: the next call is
   * let through as the probe in its place (the one given up on runs on, to its answer or deadline). Else a
   * probe lost to a hanging connection would keep the circuit refusing an upstream that has recovered
   * meanwhile until the probe's deadline, and its timeout would then reopen it for another cooldown.
   */
  tryAcquire(): BreakerPermit | undefined {
    if (this.#state === 'closed') return 'call';
    const now = this.#options.now();
    if (this.#state === 'open') {
      if (this.retryInMs() > 0) return undefined;
      this.#set('half-open');
    }
    if (this.#probe !== undefined && now - this.#probe.startedAt < this.#options.cooldownMs) return undefined;
    if (this.#probesOut.size >= MAX_PROBES_OUT) return undefined;
    this.#probe = new Probe(now);
    this.#probesOut.add(this.#probe);
    return this.#probe;
  }

  /**
   * Whether `permit` is the probe holding the way now, whose failure is recorded at once, a retried one too.
   * One given up on, like a call, has a retried failure counted once, when its call fails for good.
   */
  isCurrentProbe(permit: BreakerPermit): boolean {
    return permit === this.#probe;
  }

  /**
   * Whether a request given `permit` may still go out once its turn for a connection comes: any while the circuit
   * is closed; else only the probe holding the way (whose answer the circuit waits for). A call let through
   * before the circuit opened, or a probe given up on while it waited for a connection (another let through in
   * its place), would add to the load of an upstream found failing, beside that probe.
   */
  mayGoOut(permit: BreakerPermit): boolean {
    return this.#state === 'closed' || permit === this.#probe;
  }

  /**
   * The upstream answered (any status that is not a sign of it being down), to a call with this permit.
   * `served`: with a success (2xx), which says the whole way to the API works; a 4xx or a 429 may come from
   * something in front of it.
   */
  recordSuccess(permit: BreakerPermit, served = true): void {
    if (served) this.#lastServedAt = this.#options.now();
    this.#failures = 0;
    this.#endProbe(permit);
    if (this.#state === 'closed') return;
    // Probes still out (given up on) are ordinary calls from now on: left counted, they would hold the next
    // half-open circuit's probe slots until their deadlines, and their failure would reopen it (`recordFailure`).
    for (const probe of this.#probesOut) this.#outWhenClosed.add(probe);
    this.#probesOut.clear();
    this.#probe = undefined;
    this.#set('closed', { openForMs: Math.round(this.#options.now() - this.#leftClosedAt) });
  }

  /**
   * The upstream looked down to a call with this permit: no connection, a timeout, a 502/504, or a 503 without
   * the API's own error body (what a load balancer answers for an API that is down; the client decides). While
   * half-open only a probe's failure reopens the circuit: a call let through before it opened, failing now,
   * tells of the outage already known. A probe given up on does (against an upstream that hangs longer than
   * the cooldown, every probe is given up on before it fails: the circuit would stay half-open for good);
   * the probe out now still closes it when it answers. One still out when the circuit last closed does not: let
   * through before the circuit opened again, it is an ordinary call.
   */
  recordFailure(permit: BreakerPermit, cause?: FailureCause): void {
    const decides = this.#state !== 'half-open' || (permit !== 'call' && !this.#outWhenClosed.has(permit));
    this.#endProbe(permit);
    this.#failures += 1;
    if (!decides) return;
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
   * Only the probe out now frees the probe's slot: a call let through before the circuit opened, or a probe
   * given up on, ending while a probe is out must not let a second probe out beside it.
   */
  #endProbe(permit: BreakerPermit): void {
    if (permit === 'call') return;
    this.#probesOut.delete(permit);
    if (permit === this.#probe) this.#probe = undefined;
  }

  #set(state: BreakerState, detail: ChangeDetail = {}): void {
    this.#state = state;
    this.#options.onChange?.(state, detail);
  }
}

/**
 * One call's verdicts on the upstream, across its attempts, handed to the breaker. A failure the call retries
 * (a broken connection, a proxy's 502) is owed until the call ends: its retry goes out on a fresh connection
 * or after a proxy's 502, and counted once per attempt, one stale keep-alive connection reset or one backend
 * of three down would open the breaker against an upstream that answers the retries (16 resets in a row did;
 * a partial outage opened it dozens of times a minute). An owed failure is recorded if the call ends without
 * a later verdict, as an ordinary call's (so an open or half-open circuit takes it for news of the outage it
 * knows: it cannot reopen a half-open circuit on no news of the upstream).
 *
 * Nor does a call's failure count when the upstream served other calls (answered them with a success) after its
 * first request went out, or in the second before it failed: that is one path or resource failing (one endpoint
 * resetting its connections, one account's answers lost behind a proxy), not the upstream down. Counted, a few
 * such calls out at once opened the circuit against an upstream answering everything else, the next answer
 * closed it again, and the calls asked in between were refused: 136 openings in 20 s of load with one path
 * failing, two error lines each. The second matters when that path carries most of the traffic: its calls
 * fail in milliseconds, between two successes, and with three in four calls on it the circuit opened and each
 * half-open trial, most likely one of its calls, reopened it, refusing the healthy calls for the whole fault.
 */
export class CallVerdicts {
  readonly #breaker: CircuitBreaker;
  #owed: FailureCause | undefined;
  /** When the call's first request went out, on the breaker's clock; undefined while none has. */
  #outSince: number | undefined;

  constructor(breaker: CircuitBreaker) {
    this.#breaker = breaker;
  }

  /** A request of the call's is going out now (the first one's time is kept). */
  wentOut(): void {
    this.#outSince ??= this.#breaker.now();
  }

  /** The upstream answered `status`, no sign of it being down: an owed failure is forgotten. */
  answered(permit: BreakerPermit, status: number): void {
    this.#owed = undefined;
    this.#breaker.recordSuccess(permit, status >= 200 && status < 300);
  }

  /** The upstream failing, counted now (an owed failure with it: once a call), unless it served others meanwhile. */
  failed(permit: BreakerPermit, cause: FailureCause): void {
    this.#owed = undefined;
    if (this.#othersServed()) this.#breaker.release(permit);
    else this.#breaker.recordFailure(permit, cause);
  }

  /** A failure: owed when the call retries it, unless this is the current trial, whose verdict it is. */
  failedRetrying(permit: BreakerPermit, cause: FailureCause, willRetry: boolean): void {
    if (!willRetry || this.#breaker.isCurrentProbe(permit)) return this.failed(permit, cause);
    this.#breaker.release(permit);
    this.#owed = cause;
  }

  /** No verdict on the upstream from this attempt, and the call has failed for good: an owed failure counts. */
  noVerdict(permit: BreakerPermit): void {
    this.#breaker.release(permit);
    this.settle();
  }

  /** The call ends without a verdict of this attempt's: an owed failure counts, unless others were served meanwhile. */
  settle(): void {
    if (this.#owed !== undefined && !this.#othersServed()) this.#breaker.recordFailure('call', this.#owed);
    this.#owed = undefined;
  }

  /**
   * Whether the upstream served another call after this one's first request went out, or in the last second.
   * (The half-open circuit's trial loses nothing by it: the circuit opened a second or more after the last
   * call served, so only an answer since it opened, which closed it, can excuse the trial's failure.)
   */
  #othersServed(): boolean {
    const recently = this.#breaker.now() - SERVED_RECENTLY_MS;
    return this.#breaker.servedSince(this.#outSince === undefined ? recently : Math.min(this.#outSince, recently));
  }
}
