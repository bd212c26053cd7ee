/** Figures drawn from several runs (bench/run.ts): the operations alone, the interleaved scenario-1 rounds; and how a figure is shown against a target. */

/** The middle run, or the mean of the middle two of an even number (the upper one made the median of two runs their max). */
export const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};

/**
 * `value` with `digits` decimals for a target's line, rounded away from the bound it is judged against: up for a
 * figure that must stay at most that bound, down for one that must reach at least it, so the figure shown never says
 * the opposite of the verdict beside it. Rounded to the nearest, a throughput of 1.248 × the naive baseline's read
 * "1.25 ×" beside the "no" of a target of at least 1.25 ×.
 */
export function shownAgainstBound(value: number, bound: 'at most' | 'at least', digits: number): string {
  const scale = 10 ** digits;
  // The epsilon keeps a value whose scaled product is a hair off a whole number (0.29 × 100 = 28.999…) where it is.
  const scaled = bound === 'at most' ? Math.ceil(value * scale - 1e-9) : Math.floor(value * scale + 1e-9);
  return (scaled / scale).toFixed(digits);
}
