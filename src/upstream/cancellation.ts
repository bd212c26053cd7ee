/**
 * What a caller cancels its upstream calls with: an `AbortSignal`, or the gateway's lighter
 * {@link OperationScope}, which also tells the client whose calls they are (for its log lines), counts
 * what they sent and bounds how many they may send. Only what the client uses of a signal, and `requests`, which
 * the request's loaders read back (`RequestApi.requestsSent`).
 */
export interface CancelSignal {
  /** The id of the request the calls serve: the client's log lines about them carry it. */
  readonly requestId?: string;
  /** The W3C trace context the request came with, passed on with each of its calls (see {@link TraceContext}). */
  readonly trace?: TraceContext;
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  /** Called for each request the client sends on the caller's behalf (retries included): its upstream cost. */
  countRequest?(): void;
  /** The requests counted by {@link countRequest} so far. */
  readonly requests?: number;
  /** Called for each call the circuit breaker fails at once (open, or half-open with its trial call out). */
  countBreakerRefusal?(): void;
  /**
   * Asked before each request (retries included): false when the caller may send no more, which fails that
   * call without sending it. Absent: no limit.
   */
  claimRequest?(): boolean;
  /** Gives back a claim whose request was never sent (refused by the breaker, cancelled while queued …). */
  releaseRequest?(): void;
  /** The claims left. */
  readonly requestsLeft?: number;
  /** The most requests {@link claimRequest} grants. */
  readonly maxRequests?: number;
  /**
   * The calls are only checked: each builds its request (its ids, query and form refused as they would be),
   * then ends in `CallChecked`, never sent (a mutation's writes, checked all before the first is made).
   */
  readonly checkOnly?: boolean;
}

/**
 * A caller's W3C Trace Context (https://www.w3.org/TR/trace-context/) headers, as received and checked: the gateway
 * records no spans of its own, so it passes them on unchanged, as the recommendation asks of a service that does not
 * take part in a trace, and a tracing backend links the upstream's spans to the caller's.
 */
export interface TraceContext {
  readonly traceparent: string;
  /** Left out when the caller sent none, or one that is not a valid list. */
  readonly tracestate?: string;
}

/**
 * What one GraphQL operation's upstream calls share: its request id (for the client's log lines), its
 * budget of upstream requests and their count, and its cancellation, aborted when its client goes away,
 * its deadline passes or the shutdown grace period ends. An `AbortController` would do the cancelling, but
 * it and its `EventTarget` listener cost ~3% of a one-account operation's CPU (profile in bench/README.md),
 * for features (events, propagation, weak listeners) nothing here uses.
 */
export class OperationScope implements CancelSignal {
  #aborted = false;
  #reason: unknown;
  #listeners: Array<() => void> = [];
  #requests = 0;
  #breakerRefusals = 0;
  #claimed = 0;

  /** `maxRequests`: the most upstream requests the operation may send, retries included. */
  constructor(
    readonly requestId?: string,
    readonly maxRequests = Infinity,
    readonly trace?: TraceContext,
  ) {}

  claimRequest(): boolean {
    if (this.#claimed >= this.maxRequests) return false;
    this.#claimed += 1;
    return true;
  }

  releaseRequest(): void {
    this.#claimed -= 1;
  }

  get requestsLeft(): number {
    return this.maxRequests - this.#claimed;
  }

  /** Upstream requests sent for the operation so far, retries included: what it cost of the key's quota. */
  get requests(): number {
    return this.#requests;
  }

  countRequest(): void {
    this.#requests += 1;
  }

  /** Calls the circuit breaker failed at once: what an operation line with no request sent failed on. */
  get breakerRefusals(): number {
    return this.#breakerRefusals;
  }

  countBreakerRefusal(): void {
    this.#breakerRefusals += 1;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** As AbortSignal's: the listener runs once, on abort; added after the abort, it never runs. */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.#aborted) this.#listeners.push(listener);
  }

  abort(reason: unknown = new Error('The operation was cancelled')): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    // Every listener runs, whatever one of them throws; the first error is rethrown after the last.
    let failure: { error: unknown } | undefined;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}

/**
 * The reason an operation is aborted with when it ran out of time (its deadline, or the shutdown grace
 * period): its upstream calls then fail as UPSTREAM_TIMEOUT, not as cancelled (RATE_LIMITED those waiting out a
 * rate-limit pause; one whose error status had arrived, its body still coming, as that status).
 */
export class OperationDeadlineExceeded extends Error {
  /** The setting whose time ran out, for the log. */
  readonly setting: 'OPERATION_TIMEOUT_MS' | 'SHUTDOWN_GRACE_MS';

  /**
   * `cause`: its deadline (`OPERATION_TIMEOUT_MS`), the end of the shutdown grace period, or that period over
   * before the operation began (a request whose body came after it).
   */
  constructor(
    readonly timeoutMs: number,
    cause: DeadlineCause = 'deadline',
  ) {
    super(DEADLINE_MESSAGES[cause](timeoutMs));
    this.setting = cause === 'deadline' ? 'OPERATION_TIMEOUT_MS' : 'SHUTDOWN_GRACE_MS';
  }
}

type DeadlineCause = 'deadline' | 'shutdown' | 'shutdown-over';

/** What an operation stopped by each of `OperationDeadlineExceeded`'s causes is told. */
const DEADLINE_MESSAGES: Record<DeadlineCause, (timeoutMs: number) => string> = {
  deadline: (timeoutMs) => `The operation did not complete within ${timeoutMs} ms`,
  shutdown: (timeoutMs) => `The gateway is shutting down: the operation was stopped at the end of the ${timeoutMs} ms it allows operations to finish`,
  'shutdown-over': (timeoutMs) => `The gateway is shutting down: the ${timeoutMs} ms it allows operations to finish were over when the operation began`,
};

/** Why a call stopped before its answer: its own deadline passed, or its caller's signal was aborted. */
type CancelReason = 'deadline' | 'caller';

/**
 * One call's cancellation. Whatever the call is doing when it is cancelled (a request on the wire or
 * waiting in the pool's queue for a connection, or a wait between attempts) registers in `onCancel` how to
 * stop, so the call settles at once. (An AbortSignal given to undici's `request()` settles a queued request
 * only once a connection frees up, which can be after the operation's deadline.)
 */
export class CallCancellation {
  reason: CancelReason | undefined;
  onCancel: (() => void) | undefined;

  cancel(reason: CancelReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    const stop = this.onCancel;
    this.onCancel = undefined;
    stop?.();
  }
}
