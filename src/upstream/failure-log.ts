import type { Logger } from '../logging/logger.ts';
import { LineThrottle } from '../logging/line-throttle.ts';

/**
 * How often a configuration fault every call meets (the key refused) is logged at most; and how long it must
 * go unseen to count as fixed at the next successful answer, so that a fault coming back now and then is
 * still said once a minute at most.
 */
const CONFIGURATION_FAULT_LOG_INTERVAL_MS = 60_000;
/** How often one kind of call failure (a timeout, a connection failed) is logged at most. */
const CALL_FAILURE_LOG_INTERVAL_MS = 1_000;

/**
 * The client's log lines that come by the call: a configuration fault every call meets, one call's failure.
 * Each is said at most once a while, with how many went unsaid since, and told when it is no longer seen.
 */
export class FailureLog {
  /** When each configuration fault was last logged, and how many calls met it since (see `configurationFault`). */
  readonly #faultsLogged = new LineThrottle(CONFIGURATION_FAULT_LOG_INTERVAL_MS);
  /**
   * One call's failures (a timeout, a connection failed) come by the thousand in an outage: see `callFailure`.
   * By the level of their lines: the count left unsaid is said at that level too (at `warn`, an `error` kind's
   * count would be missing from a log kept at `error`, which has its lines).
   */
  readonly #callFailuresLogged = { warn: new LineThrottle(CALL_FAILURE_LOG_INTERVAL_MS), error: new LineThrottle(CALL_FAILURE_LOG_INTERVAL_MS) };
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * A fault of the gateway's own configuration that every call meets until it is fixed (its key refused):
   * logged at `error` once a minute at most, with how many calls met it since the last line, rather than once
   * a call (a busy gateway would write thousands of identical lines a second).
   */
  configurationFault(message: string, fields: Record<string, unknown> | (() => Record<string, unknown>)): void {
    const due = this.#faultsLogged.admit(message, performance.now());
    if (due) this.#logger.error(message, { ...(typeof fields === 'function' ? fields() : fields), ...due });
  }

  /**
   * One call's failure (it timed out, its connection failed), at `warn`: once a second at most for each
   * `kind` of it (whose time ran out and whether the breaker counted it; the connection's error code), with
   * the calls left unsaid since the last line of that kind. In an outage every call in flight and queued
   * fails within one `UPSTREAM_TIMEOUT_MS` (5,000 lines a second were seen); a kind apart, the line telling
   * the upstream stopped answering is not hidden by one telling an operation ran out of time. `level`: `error`
   * for an answer the gateway could not use (an upstream answering every call with a body not the API's comes
   * by the call as an outage does: five lines an operation, at error, for an operation reading five accounts).
   */
  callFailure(message: string, kind: string, fields: Record<string, unknown>, level: 'warn' | 'error' = 'warn'): void {
    const due = this.#callFailuresLogged[level].admit(`${message} (${kind})`, performance.now());
    if (due) this.#logger[level](message, { ...fields, ...due });
  }

  /**
   * An answer came: a fault not seen for a while is fixed. Its calls left unsaid are said now, and a return
   * logs at once. One still seen now and then (a fault of some paths or servers only) stays throttled. So
   * are the call failures of a kind unseen for a second: their count left unsaid, which no later line of
   * theirs would carry until the next outage.
   */
  answered(): void {
    const { warn, error } = this.#callFailuresLogged;
    if (this.#faultsLogged.size === 0 && warn.size === 0 && error.size === 0) return;
    const now = performance.now();
    for (const [message, unsaid] of this.#faultsLogged.forgetQuiet(now)) {
      this.#logger.error('an upstream configuration fault is no longer seen', { fault: message, sinceLastLine: unsaid });
    }
    for (const level of ['warn', 'error'] as const) {
      for (const [failure, unsaid] of this.#callFailuresLogged[level].unsaidOnceQuiet(now)) {
        this.#logger[level]('upstream call failures left unsaid', { failure, sinceLastLine: unsaid });
      }
    }
  }

  /**
   * The client is closed: the counts still left unsaid are said now or never (a burst's end, with no answer
   * since, or one within its interval, which `answered` leaves for its next line).
   */
  ended(): void {
    for (const [fault, unsaid] of this.#faultsLogged.unsaidAtEnd()) {
      this.#logger.error('an upstream configuration fault left unsaid', { fault, sinceLastLine: unsaid });
    }
    for (const level of ['warn', 'error'] as const) {
      for (const [failure, unsaid] of this.#callFailuresLogged[level].unsaidAtEnd()) {
        this.#logger[level]('upstream call failures left unsaid', { failure, sinceLastLine: unsaid });
      }
    }
  }
}
