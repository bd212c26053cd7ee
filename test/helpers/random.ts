/**
 * A seeded pseudo-random source for the randomized tests (random operations, fuzzed requests): mulberry32, a
 * tiny PRNG whose sequence depends only on its seed, identical on every machine, so that a failure's seed
 * replays it.
 */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  /** `items` in an order drawn at random (one draw each, in their order). */
  shuffled<T>(items: readonly T[]): T[] {
    return items
      .map((item) => ({ item, key: this.next() }))
      .sort((x, y) => x.key - y.key)
      .map(({ item }) => item);
  }
  /** Each of `items` with probability `p`, in their order; one of them at least when `nonEmpty`. */
  subset<T>(items: readonly T[], p: number, nonEmpty = true): T[] {
    const chosen = items.filter(() => this.chance(p));
    return chosen.length === 0 && nonEmpty ? [this.pick(items)] : chosen;
  }
}
