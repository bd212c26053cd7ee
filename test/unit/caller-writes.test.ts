import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { CallerWriteBudget } from '../../src/limits/caller-writes.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The budget on a clock the test moves. */
function budgetAt(perHour: number) {
  const clock = { now: 0 };
  return { clock, budget: new CallerWriteBudget(perHour, () => clock.now) };
}

function refusal(take: () => void): GraphQLError {
  try {
    take();
  } catch (error) {
    assert.ok(error instanceof GraphQLError);
    return error;
  }
  assert.fail('the write was not refused');
}

describe('CallerWriteBudget', () => {
  it('counts each caller apart and refuses past the budget, saying when the next write may be made', () => {
    const { clock, budget } = budgetAt(2);
    budget.take('alice', 'createConnectToken');
    clock.now = 10 * MINUTE;
    budget.take('alice', 'createConnectToken');
    budget.take('bob', 'createConnectToken');
    clock.now = 20 * MINUTE;
    const error = refusal(() => budget.take('alice', 'deleteConnectToken'));
    assert.deepEqual(error.extensions, { code: 'RATE_LIMITED', limit: 'CALLER_WRITES_PER_HOUR', maximum: 2, retryAfter: 40 * 60 });
    assert.match(error.message, /^deleteConnectToken: .*2 writes.*CALLER_WRITES_PER_HOUR.* 2400 s$/);
    budget.take('bob', 'createConnectToken');
  });

  it('lets a write through again once the oldest of the hour is an hour old; a refused write is not counted', () => {
    const { clock, budget } = budgetAt(2);
    budget.take('alice', 'w');
    clock.now = 30 * MINUTE;
    budget.take('alice', 'w');
    clock.now = HOUR - 1;
    refusal(() => budget.take('alice', 'w'));
    clock.now = HOUR;
    budget.take('alice', 'w');
    // The window slid by one write: the one at 30 minutes is now the oldest.
    assert.equal(refusal(() => budget.take('alice', 'w')).extensions['retryAfter'], 30 * 60);
  });

  it('forgets callers idle for an hour, so memory follows the callers of the last hour', () => {
    const { clock, budget } = budgetAt(5);
    for (let i = 0; i < 1_000; i += 1) budget.take(`caller ${i}`, 'w');
    assert.equal(budget.size, 1_000);
    clock.now = 30 * MINUTE;
    budget.take('late', 'w');
    assert.equal(budget.size, 1_001);
    clock.now = HOUR;
    budget.take('late', 'w');
    assert.equal(budget.size, 1);
    // A forgotten caller starts afresh: nothing it did before the hour counts.
    for (let i = 0; i < 5; i += 1) budget.take('caller 0', 'w');
    refusal(() => budget.take('caller 0', 'w'));
  });
});
