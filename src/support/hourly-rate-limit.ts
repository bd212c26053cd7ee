/**
 * So many calls in any hour, over a sliding hour: Context.IO's limit on a key ("5,000 calls an hour a key at
 * the start"), which the emulator enforces, and the gateway's own budget of each caller's writes
 * (`CallerWriteBudget`). Past the limit each call is refused, with how long until enough of the hour's
 * oldest calls have left the window, until then.
 */
export class HourlyRateLimit {
  /** When each call was taken (ms), oldest first, from `#head` on: those before it are an hour old, dropped lazily. */
  #takenAt: number[] = [];
  #head = 0;

  constructor(readonly limit: number) {}

  /** Counts a call made at `now` (ms) and returns 0, or, past the limit, the ms until one may be made (not counted). */
  take(now: number): number {
    return this.takeMany(1, now);
  }

  /** Counts `count` calls made at `now` and returns 0, or, when they do not all fit, the ms until they would (none counted). */
  takeMany(count: number, now: number): number {
    const wait = this.waitFor(count, now);
    if (wait > 0) return wait;
    for (let i = 0; i < count; i += 1) this.#takenAt.push(now);
    return 0;
  }

  /** The ms from `now` until `count` calls could be made (0: at once; Infinity: never, more than the limit). Counts nothing. */
  waitFor(count: number, now: number): number {
    if (count > this.limit) return Infinity;
    this.#forget(now);
    // Calls that must leave the window first: the oldest `leaving` of those in it.
    const leaving = this.#takenAt.length - this.#head + count - this.limit;
    if (leaving <= 0) return 0;
    return this.#takenAt[this.#head + leaving - 1]! + HOUR_MS - now;
  }

  /** Moves a call taken at `takenAt` to `now` (a write reserved ahead, sent now): its hour starts now. */
  retake(takenAt: number, now: number): void {
    this.release(takenAt);
    this.#takenAt.push(now);
  }

  /** Uncounts a call taken at `takenAt` (a write that was never sent after all). */
  release(takenAt: number): void {
    // Given back soon after it was taken: looked for from the newest.
    const index = this.#takenAt.lastIndexOf(takenAt);
    if (index >= this.#head) this.#takenAt.splice(index, 1);
  }

  /** No call counted in the hour before `now`: forgetting this limit changes nothing. */
  idle(now: number): boolean {
    this.#forget(now);
    return this.#head === this.#takenAt.length;
  }

  /** Drops the calls an hour old; the array is copied down once the dropped ones are most of it. */
  #forget(now: number): void {
    while (this.#head < this.#takenAt.length && this.#takenAt[this.#head]! + HOUR_MS <= now) this.#head += 1;
    if (this.#head > 64 && this.#head * 2 >= this.#takenAt.length) {
      this.#takenAt = this.#takenAt.slice(this.#head);
      this.#head = 0;
    }
  }
}

const HOUR_MS = 60 * 60 * 1000;
