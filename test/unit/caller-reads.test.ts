import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { CallerReadBudget } from '../../src/limits/caller-reads.ts';

const MINUTE = 60_000;

/** The budget on a clock the test moves. */
function budgetAt(perHour: number) {
  const clock = { now: 0 };
  return { clock, budget: new CallerReadBudget(perHour, () => clock.now) };
}

function retryAfterOf(take: () => void): number {
  try {
    take();
  } catch (error) {
    assert.ok(error instanceof GraphQLError, `a GraphQLError, not ${String(error)}`);
    assert.equal(error.extensions['code'], 'RATE_LIMITED');
    assert.equal(error.extensions['limit'], 'CALLER_READS_PER_HOUR');
    return error.extensions['retryAfter'] as number;
  }
  assert.fail('the read was not refused');
}

describe('CallerReadBudget', () => {
  it('lets a caller make its whole budget at once, then one more each 1/perHour of an hour; callers apart', () => {
    const { clock, budget } = budgetAt(60);
    for (let i = 0; i < 60; i += 1) budget.take('alice');
    assert.equal(retryAfterOf(() => budget.take('alice')), 60);
    budget.take('bob');
    clock.now = 30_000;
    assert.equal(retryAfterOf(() => budget.take('alice')), 30);
    clock.now = MINUTE;
    budget.take('alice');
    assert.equal(retryAfterOf(() => budget.take('alice')), 60);
    // An hour idle refills the bucket, never past the budget.
    clock.now = 10 * 60 * MINUTE;
    for (let i = 0; i < 60; i += 1) budget.take('alice');
    assert.equal(retryAfterOf(() => budget.take('alice')), 60);
  });

  it('never fills a bucket past the budget, though the caller is still counted: refilled a minute past full between two sweeps', () => {
    // 600 an hour: one read each 6 s. Drained at 0; 59 min 54 s later 599 are back, and the sweep another caller's
    // read runs keeps alice; 59 s later her bucket would hold 608.8 uncapped, but holds 600.
    const { clock, budget } = budgetAt(600);
    for (let i = 0; i < 600; i += 1) budget.take('alice');
    clock.now = 59 * MINUTE + 54_000;
    budget.take('bob');
    assert.equal(budget.size, 2);
    clock.now += 59_000;
    for (let i = 0; i < 600; i += 1) budget.take('alice');
    assert.equal(retryAfterOf(() => budget.take('alice')), 6);
  });

  it('takes back a read given back (held back before it was sent), never past the budget', () => {
    const { budget } = budgetAt(2);
    const giveBack = budget.take('alice');
    budget.take('alice');
    retryAfterOf(() => budget.take('alice'));
    giveBack();
    budget.take('alice');
    retryAfterOf(() => budget.take('alice'));
    const fresh = budgetAt(2).budget;
    const back = fresh.take('carol');
    back();
    back();
    fresh.take('carol');
    fresh.take('carol');
    retryAfterOf(() => fresh.take('carol'));
  });

  it('tells a drained caller the wait to the second, and lets it read once it has waited that long', () => {
    // Budgets whose read comes back each 3600 / perHour s, a whole number: through an inexact rate per ms, those
    // of 1, 2, 4 … were told a second too many, and an hour later had not quite regained their read.
    for (const perHour of [1, 2, 4, 16, 60, 1_000]) {
      const { clock, budget } = budgetAt(perHour);
      for (let i = 0; i < perHour; i += 1) budget.take('alice');
      assert.equal(retryAfterOf(() => budget.take('alice')), Math.ceil(3600 / perHour), `${perHour} an hour`);
      clock.now = (60 * MINUTE) / perHour;
      budget.take('alice');
    }
  });

  it('says a budget of one read in the singular, as the budget of writes says one write', () => {
    const { budget } = budgetAt(1);
    budget.take('alice');
    try {
      budget.take('alice');
      assert.fail('the read was not refused');
    } catch (error) {
      assert.ok(error instanceof GraphQLError, `a GraphQLError, not ${String(error)}`);
      assert.match(error.message, /^The caller has made the 1 upstream read it may make in an hour \(CALLER_READS_PER_HOUR\); the next may be made in \d+ s$/);
    }
  });

  it('forgets the callers whose budget has filled up again, so memory follows the callers of the last hour', () => {
    const { clock, budget } = budgetAt(60);
    for (let i = 0; i < 1_000; i += 1) budget.take(`caller-${i}`);
    assert.equal(budget.size, 1_000);
    // A minute later each has its read back: all forgotten at the next read, which counts only its own caller.
    clock.now = MINUTE;
    budget.take('late');
    assert.equal(budget.size, 1);
    // Still refilling: kept.
    for (let i = 0; i < 60; i += 1) budget.take('busy');
    clock.now = 3 * MINUTE;
    budget.take('other');
    assert.equal(budget.size, 2);
    assert.equal(retryAfterOf(() => {
      for (let i = 0; i < 3; i += 1) budget.take('busy');
    }), 60);
  });
});
