import type { GraphQLError } from 'graphql';
import { ErrorCode, gatewayError } from '../errors.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import { PerCaller } from './per-caller.ts';

/**
 * How many upstream reads each caller without the admin scope may make an hour (`CALLER_READS_PER_HOUR`).
 * The API key's quota (5,000 calls an hour at the start) is shared by every caller, and a key that reached it
 * is paused for everyone: without a bound, any valid token (a user who just signed up) spent it in seconds
 * with operations of 50 aliased `connectToken` lookups, and the admins' next query answered RATE_LIMITED for
 * the rest of the hour. Admins (trusted back ends, and every caller of a gateway running open) are not counted.
 *
 * A token bucket, not the sliding hour of the budget of writes: a caller may make up to `perHour` reads at
 * once and regains them at `perHour` an hour, in constant memory and time per caller (reads come by the
 * thousand, each on the hot path). Each read counts once, whatever its retries; one held back before it was
 * sent is given back. Each gateway process counts on its own.
 */
export class CallerReadBudget {
  /** Each caller's reads left and when that was counted; one whose bucket has filled up again is forgotten. */
  readonly #callers: PerCaller<Bucket>;
  readonly #now: () => number;

  /** `now`: ms on a clock that does not jump (the system clock may be set back). */
  constructor(
    readonly perHour: number,
    now: () => number = () => performance.now(),
  ) {
    this.#now = now;
    this.#callers = new PerCaller(
      (at): Bucket => ({ left: perHour, at }),
      (bucket, at) => {
        this.#refill(bucket, at);
        return bucket.left >= perHour;
      },
    );
  }

  /**
   * Takes one read of `caller`'s for a request about to be sent, and returns how to give it back (a request
   * held back after all); throws the RATE_LIMITED refusal, with when the next read may be made, when none is left.
   */
  take(caller: string): () => void {
    const now = this.#now();
    const bucket = this.#callers.of(caller, now);
    this.#refill(bucket, now);
    if (bucket.left < 1) throw this.#refusal(((1 - bucket.left) * HOUR_MS) / this.perHour);
    bucket.left -= 1;
    return () => {
      this.#refill(bucket, this.#now());
      bucket.left = Math.min(this.perHour, bucket.left + 1);
    };
  }

  /** Callers counted now (for tests: memory follows the callers who read in the last hour). */
  get size(): number {
    return this.#callers.size;
  }

  #refill(bucket: Bucket, now: number): void {
    // Multiplied before it is divided: through a rate per ms (1 / 3,600,000, inexact), a budget of 1, 2, 4 … told
    // its caller a second too many (3601 s), and waited out exactly, the hour gave back 0.9999999999999999 reads.
    bucket.left = Math.min(this.perHour, bucket.left + ((now - bucket.at) * this.perHour) / HOUR_MS);
    bucket.at = now;
  }

  /** A field error, as for the upstream's own 429, with the setting to tell them apart. */
  #refusal(waitMs: number): GraphQLError {
    const retryAfter = retryAfterSeconds(waitMs);
    return gatewayError(
      ErrorCode.RATE_LIMITED,
      `The caller has made the ${this.perHour} upstream ${this.perHour === 1 ? 'read' : 'reads'} it may make in an hour (CALLER_READS_PER_HOUR); the next may be made in ${retryAfter} s`,
      undefined,
      { limit: 'CALLER_READS_PER_HOUR', maximum: this.perHour, retryAfter },
    );
  }
}

/** A caller's reads left (fractions refill) and when that was counted (ms). */
interface Bucket {
  left: number;
  at: number;
}

const HOUR_MS = 60 * 60 * 1000;
