import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, shownAgainstBound } from '../../bench/figures.ts';

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

test('a figure shown against a bound is rounded away from it, and a whole figure kept as it is', () => {
  assert.equal(shownAgainstBound(1.2481, 'at least', 2), '1.24');
  assert.equal(shownAgainstBound(1.5013, 'at most', 2), '1.51');
  assert.equal(shownAgainstBound(1.25, 'at least', 2), '1.25');
  assert.equal(shownAgainstBound(0.29, 'at least', 2), '0.29');
  assert.equal(shownAgainstBound(1.5, 'at most', 2), '1.50');
  assert.equal(shownAgainstBound(50.04, 'at most', 1), '50.1');
});
