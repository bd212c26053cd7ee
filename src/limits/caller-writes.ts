import { HeaderMap } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import { ErrorCode, gatewayError } from '../errors.ts';
import { retryAfterSeconds as seconds } from '../support/retry-after.ts';
import { HourlyRateLimit } from '../support/hourly-rate-limit.ts';
import { PerCaller } from './per-caller.ts';

/**
 * How many upstream writes each caller without the admin scope may make in any hour (`CALLER_WRITES_PER_HOUR`).
 * The contract lets any caller with a valid token create and delete top-level connect tokens, and the API key's
 * quota and its unpaged list of connect tokens are shared by everyone: without a bound, one frontend user in a
 * loop could create tokens (4 KB values each) until `GET /connect_tokens` is larger than the gateway reads, and
 * the admins' `connectTokens` would fail until the tokens expired a day later. Admins (trusted back ends, and every
 * caller of a gateway running open) are not counted.
 *
 * Each gateway process counts on its own: behind N instances without sticky sessions a caller gets up to N
 * times the budget.
 */
export class CallerWriteBudget {
  /** Each caller's writes of the last hour; callers with none are forgotten. */
  readonly #callers: PerCaller<HourlyRateLimit>;
  readonly #now: () => number;

  /** `now`: ms on a clock that does not jump (the system clock may be set back). */
  constructor(
    readonly perHour: number,
    now: () => number = () => performance.now(),
  ) {
    this.#now = now;
    this.#callers = new PerCaller(
      () => new HourlyRateLimit(perHour),
      (writes, at) => writes.idle(at),
    );
  }

  /**
   * Takes at once the `count` writes an operation will make, before any of them is sent, or refuses it whole
   * when they do not all fit in what `caller` has left: run, it would make the first ones and fail the rest
   * (and, the payloads being non-null, answer `data: null`, the writes made unreported). Taken, they cannot
   * be taken by another operation of the caller meanwhile; each write spends one as it is sent, and what the
   * operation did not spend is given back when it ends (`WriteReservation.release`). HTTP 429 with
   * `Retry-After`, as a refusal of the whole request.
   */
  reserve(caller: string, count: number): WriteReservation {
    const now = this.#now();
    const writes = this.#callers.of(caller, now);
    const waitMs = writes.takeMany(count, now);
    if (waitMs === 0) return new WriteReservation(writes, this.#now, now, count);
    let message: string;
    if (waitMs === Infinity) {
      message = `The operation makes ${count} writes, more than the ${this.perHour} a caller may make in an hour (CALLER_WRITES_PER_HOUR): send them in several operations`;
    } else if (count === 1) {
      message = `The caller has made ${this.#allowed()}; the next may be made in ${seconds(waitMs)} s`;
    } else {
      message = `The operation makes ${count} writes, more than the caller has left of ${this.#allowed()}; they may be made in ${seconds(waitMs)} s`;
    }
    throw this.#refusal(message, waitMs);
  }

  #allowed(): string {
    return `the ${this.perHour} ${this.perHour === 1 ? 'write' : 'writes'} it may make in an hour (CALLER_WRITES_PER_HOUR)`;
  }

  /** The whole request refused (429), with when the writes may be made, unless never. */
  #refusal(message: string, waitMs: number): GraphQLError {
    const retryAfter = Number.isFinite(waitMs) ? seconds(waitMs) : undefined;
    return gatewayError(ErrorCode.RATE_LIMITED, message, undefined, {
      limit: 'CALLER_WRITES_PER_HOUR',
      maximum: this.perHour,
      ...(retryAfter === undefined ? {} : { retryAfter }),
      http: { status: 429, headers: new HeaderMap(retryAfter === undefined ? [] : [['retry-after', String(retryAfter)]]) },
    });
  }

  /** Callers counted now (for tests: memory follows the callers of the last hour). */
  get size(): number {
    return this.#callers.size;
  }
}

/**
 * The writes an operation took ahead (`CallerWriteBudget.reserve`): each spent as a write is sent, dated
 * then (its hour starts when it is made, not when the operation began), the rest given back when it ends.
 */
export class WriteReservation {
  readonly #writes: HourlyRateLimit;
  readonly #now: () => number;
  /** When each write not yet spent was taken. */
  readonly #unspent: number[];

  constructor(writes: HourlyRateLimit, now: () => number, takenAt: number, count: number) {
    this.#writes = writes;
    this.#now = now;
    this.#unspent = Array.from({ length: count }, () => takenAt);
  }

  /** One reserved write for a write about to be sent, and how to put it back; `undefined` when none is left. */
  spend(): (() => void) | undefined {
    const takenAt = this.#unspent.pop();
    if (takenAt === undefined) return undefined;
    const now = this.#now();
    this.#writes.retake(takenAt, now);
    return () => {
      this.#unspent.push(now);
    };
  }

  /** Gives back to the caller's budget the writes the operation did not spend. */
  release(): void {
    for (const takenAt of this.#unspent.splice(0)) this.#writes.release(takenAt);
  }
}
