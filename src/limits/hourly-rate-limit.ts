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
    if (this.#takenAt.length < this.limit) {
      this.#takenAt.push(now);
      this.#newest = now;
      return 0;
    }
    const oldest = this.#takenAt[this.#oldest]!;
    const wait = oldest + HOUR_MS - now;
    if (wait > 0) return wait;
    // The oldest call is an hour old: its slot takes this one, and the next oldest becomes the oldest.
    this.#takenAt[this.#oldest] = now;
    this.#oldest = (this.#oldest + 1) % this.limit;
    this.#newest = now;
    return 0;
  }

  /** No call counted in the hour before `now`: forgetting this limit changes nothing. */
  idle(now: number): boolean {
    return this.#newest + HOUR_MS <= now;
  }
}

const HOUR_MS = 60 * 60 * 1000;
