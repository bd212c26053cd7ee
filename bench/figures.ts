/** Figures drawn from several runs (bench/run.ts): the operations alone, the interleaved scenario-1 rounds. */

/** The middle run, or the mean of the middle two of an even number (the upper one made the median of two runs their max). */
export const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};
