import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realTimer } from '../../src/support/wait-timer.ts';

// Every test of the upstream client's waits (its backoffs, a rate-limit pause) and of the logger's passes a timer
// of its own, or waits a millisecond: the one they run on outside tests is checked here.
describe('realTimer', () => {
  it('calls back once the time asked has passed, not before, and never once cancelled', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const called: string[] = [];
    realTimer(() => called.push('kept'), 1_000);
    const cancel = realTimer(() => called.push('cancelled'), 1_000);
    t.mock.timers.tick(999);
    assert.deepEqual(called, [], 'a backoff of a second is not over after 999 ms');
    cancel();
    t.mock.timers.tick(1);
    assert.deepEqual(called, ['kept']);
    t.mock.timers.tick(60_000);
    assert.deepEqual(called, ['kept']);
  });
});
