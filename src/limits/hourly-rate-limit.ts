/**
 * So many calls in any hour, over a sliding hour: Context.IO's limit on a key ("5,000 calls an hour a key at
 * the start"), which the emulator enforces, and the gateway's own budget of each caller's writes
 * (`CallerWriteBudget`). Past the limit each call is refused, with how long until the hour's oldest call
 * leaves the window, until then.
 */
export class HourlyRateLimit {
  /** When each call of the last hour was taken (ms), oldest first, as a ring of `limit` slots. */
  readonly #takenAt: number[] = [];
  #oldest = 0;
  #newest = -Infinity;

  constructor(readonly limit: number) {}

  /** Counts a call made at `now` (ms) and returns 0, or, past the limit, the ms until one may be made (not counted). */
  take(now: number): number {
    const wait = this.waitFor(1, now);
    if (wait > 0) return wait;
    if (this.#takenAt.length < this.limit) {
      this.#takenAt.push(now);
    } else {
      // The oldest call is an hour old: its slot takes this one, and the next oldest becomes the oldest.
      this.#takenAt[this.#oldest] = now;
      this.#oldest = (this.#oldest + 1) % this.limit;
    }
    this.#newest = now;
    return 0;
  }

  /** The ms from `now` until `count` calls could be made (0: at once; Infinity: never, more than the limit). Counts nothing. */
  waitFor(count: number, now: number): number {
    if (count > this.limit) return Infinity;
    // Calls that must leave the window first: the oldest `leaving` of those counted (the ring wraps only once full).
    const leaving = this.#takenAt.length + count - this.limit;
    if (leaving <= 0) return 0;
    const last = this.#takenAt[(this.#oldest + leaving - 1) % this.#takenAt.length]!;
    return Math.max(0, last + HOUR_MS - now);
  }

  /** No call counted in the hour before `now`: forgetting this limit changes nothing. */
  idle(now: number): boolean {
    return this.#newest + HOUR_MS <= now;
  }
}

const HOUR_MS = 60 * 60 * 1000;
