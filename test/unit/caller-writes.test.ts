import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { CallerWriteBudget } from '../../src/limits/caller-writes.ts';
import { HourlyRateLimit } from '../../src/support/hourly-rate-limit.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The budget on a clock the test moves. */
function budgetAt(perHour: number) {
  const clock = { now: 0 };
  return { clock, budget: new CallerWriteBudget(perHour, () => clock.now) };
}

/** One write of `caller` sent now: reserved by its operation, then spent. */
function write(budget: CallerWriteBudget, caller: string): () => void {
  return budget.reserve(caller, 1).spend()!;
}

function refusal(take: () => void): GraphQLError {
  try {
    take();
  } catch (error) {
    assert.ok(error instanceof GraphQLError, `a GraphQLError, not ${String(error)}`);
    return error;
  }
  assert.fail('the write was not refused');
}

describe('CallerWriteBudget', () => {
  it('counts each caller apart and refuses past the budget, saying when the next write may be made', () => {
    const { clock, budget } = budgetAt(2);
    write(budget, 'alice');
    clock.now = 10 * MINUTE;
    write(budget, 'alice');
    write(budget, 'bob');
    clock.now = 20 * MINUTE;
    const error = refusal(() => write(budget, 'alice'));
    const { http, ...extensions } = error.extensions;
    assert.deepEqual(extensions, { code: 'RATE_LIMITED', limit: 'CALLER_WRITES_PER_HOUR', maximum: 2, retryAfter: 40 * 60 });
    assert.equal((http as { status: number }).status, 429);
    assert.match(error.message, /^The caller has made the 2 writes .*CALLER_WRITES_PER_HOUR.* 2400 s$/);
    write(budget, 'bob');
  });

  it('lets a write through again once the oldest of the hour is an hour old; a refused write is not counted', () => {
    const { clock, budget } = budgetAt(2);
    write(budget, 'alice');
    clock.now = 30 * MINUTE;
    write(budget, 'alice');
    clock.now = HOUR - 1;
    refusal(() => write(budget, 'alice'));
    clock.now = HOUR;
    write(budget, 'alice');
    // The window slid by one write: the one at 30 minutes is now the oldest.
    assert.equal(refusal(() => write(budget, 'alice')).extensions['retryAfter'], 30 * 60);
  });

  it('rounds a wait of part of a second up: a caller retrying after the seconds it is told is not refused again', () => {
    const { clock, budget } = budgetAt(1);
    write(budget, 'alice');
    clock.now = 600; // 3599.4 s left
    const error = refusal(() => write(budget, 'alice'));
    assert.equal(error.extensions['retryAfter'], 3600);
    assert.match(error.message, / 3600 s$/);
    clock.now = HOUR - 1; // 1 ms left: 1 s, never 0
    assert.equal(refusal(() => write(budget, 'alice')).extensions['retryAfter'], 1);
  });

  it('says a budget of one write in the singular', () => {
    const { budget } = budgetAt(1);
    write(budget, 'alice');
    assert.match(refusal(() => write(budget, 'alice')).message, /^The caller has made the 1 write it may make in an hour \(CALLER_WRITES_PER_HOUR\); /);
    assert.match(refusal(() => budget.reserve('bob', 2)).message, /more than the 1 a caller may make in an hour/);
  });

  it('forgets callers idle for an hour, so memory follows the callers of the last hour', () => {
    const { clock, budget } = budgetAt(5);
    for (let i = 0; i < 1_000; i += 1) write(budget, `caller ${i}`);
    assert.equal(budget.size, 1_000);
    clock.now = 30 * MINUTE;
    write(budget, 'late');
    assert.equal(budget.size, 1_001);
    clock.now = HOUR;
    write(budget, 'late');
    assert.equal(budget.size, 1);
    // A forgotten caller starts afresh: nothing it did before the hour counts.
    for (let i = 0; i < 5; i += 1) write(budget, 'caller 0');
    refusal(() => write(budget, 'caller 0'));
  });

  it('reserves an operation\'s writes whole or refuses them, spends them as they are sent, and gives back the rest', () => {
    const { clock, budget } = budgetAt(3);
    assert.equal(refusal(() => budget.reserve('alice', 4)).extensions['retryAfter'], undefined, 'more than the budget: never');
    write(budget, 'alice');
    clock.now = 10 * MINUTE;
    // Two are left: three fit once the write at 0 has left the window, at 60 minutes.
    const error = refusal(() => budget.reserve('alice', 3));
    assert.equal(error.extensions['retryAfter'], 50 * 60);
    assert.equal((error.extensions['http'] as { status: number }).status, 429);
    const reservation = budget.reserve('alice', 2);
    // Taken: another operation of the caller finds none left.
    assert.equal(refusal(() => write(budget, 'alice')).extensions['retryAfter'], 50 * 60);
    const giveBack = reservation.spend()!;
    giveBack(); // held back, never sent: back in the reservation
    reservation.spend();
    assert.ok(reservation.spend(), 'the second reserved write is spent');
    assert.equal(reservation.spend(), undefined, 'two reserved, two spent');
  });

  it('dates a reserved write when it is sent: its hour starts then, not when the operation began', () => {
    const { clock, budget } = budgetAt(2);
    const reservation = budget.reserve('carol', 2);
    reservation.spend();
    clock.now = 10 * MINUTE;
    reservation.spend();
    clock.now = HOUR;
    // The write sent at 10 minutes is still in the window: two more fit only at 70 minutes.
    assert.equal(refusal(() => budget.reserve('carol', 2)).extensions['retryAfter'], 10 * 60);
    budget.reserve('carol', 1).release();
  });

  it('gives back a write that was never sent', () => {
    const { budget } = budgetAt(2);
    const reservation = budget.reserve('bob', 2);
    reservation.spend();
    reservation.release(); // one unspent: back to the budget
    const next = budget.reserve('bob', 1);
    const giveBack = next.spend()!;
    refusal(() => write(budget, 'bob'));
    // Held back, never sent: back to its operation's reservation, and with it to the budget when it ends.
    giveBack();
    next.release();
    write(budget, 'bob');
  });
});

describe('HourlyRateLimit.waitFor', () => {
  it('is the time until the calls that must leave the window have, before and after the oldest leaves it', () => {
    const limit = new HourlyRateLimit(3);
    assert.equal(limit.waitFor(3, 0), 0);
    assert.equal(limit.waitFor(4, 0), Infinity);
    limit.take(0);
    limit.take(MINUTE);
    assert.equal(limit.waitFor(1, 2 * MINUTE), 0);
    assert.equal(limit.waitFor(2, 2 * MINUTE), HOUR - 2 * MINUTE);
    assert.equal(limit.waitFor(3, 2 * MINUTE), HOUR - MINUTE);
    limit.take(2 * MINUTE);
    assert.equal(limit.take(HOUR), 0); // the call at 0 leaves the window
    // In the window now: 1, 2 and 60 minutes.
    assert.equal(limit.waitFor(1, HOUR), MINUTE);
    assert.equal(limit.waitFor(2, HOUR), 2 * MINUTE);
    assert.equal(limit.waitFor(3, HOUR), HOUR);
  });

  it('counts the same once the calls an hour old are dropped and the rest copied down', () => {
    const SECOND = 1000;
    const limit = new HourlyRateLimit(200);
    for (let i = 0; i < 200; i += 1) assert.equal(limit.take(i * SECOND), 0);
    // 151 calls (0–150 s) leave the window: most of those kept, so the rest (151–199 s) are copied down.
    const now = HOUR + 150.5 * SECOND;
    assert.equal(limit.waitFor(151, now), 0);
    assert.equal(limit.waitFor(152, now), 0.5 * SECOND);
    assert.equal(limit.waitFor(200, now), 48.5 * SECOND); // until the call at 199 s leaves
    assert.equal(limit.takeMany(151, now), 0);
    assert.equal(limit.take(now), 0.5 * SECOND);
    // A call given back after the copy is found where it now is.
    limit.release(160 * SECOND);
    assert.equal(limit.take(now), 0);
    assert.equal(limit.take(now), 0.5 * SECOND);
    assert.equal(limit.idle(now + HOUR), true);
  });
});

describe('HourlyRateLimit.release', () => {
  it('uncounts nothing else for a call already an hour old, or never counted', () => {
    const limit = new HourlyRateLimit(3);
    limit.take(0);
    limit.take(MINUTE);
    limit.take(2 * MINUTE);
    // At an hour the call at 0 has left the window (dropped, not yet copied down): giving it back, or one
    // never taken, leaves the calls at 1 and 2 minutes counted.
    assert.equal(limit.waitFor(1, HOUR), 0);
    limit.release(0);
    limit.release(5 * MINUTE);
    assert.equal(limit.waitFor(2, HOUR), MINUTE);
    assert.equal(limit.waitFor(3, HOUR), 2 * MINUTE);
  });
});
