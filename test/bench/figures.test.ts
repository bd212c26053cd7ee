import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median } from '../../bench/figures.ts';

/**
 * The interleaved scenario-1 table's median of each contender's runs. With an even BENCH_CPU_ROUNDS it took the
 * upper of the two middle runs: with 2 rounds, the "median" column showed the higher run, the max.
 */
test('the median of an odd number of runs is the middle one, of an even number the mean of the middle two', () => {
  assert.equal(median([300, 100, 200]), 200);
  assert.equal(median([400, 100]), 250);
  assert.equal(median([40, 10, 30, 20]), 25);
  assert.equal(median([7]), 7);
});
