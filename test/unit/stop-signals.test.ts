import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitOnceSaved, FORCED_SAVE_WAIT_MS, REPEAT_SIGNAL_MS, StopSignals } from '../../src/support/stop-signals.ts';

/** A `StopSignals` on a clock the test moves: `at(ms)` sets it. */
function onClock(): { signals: StopSignals; at: (ms: number) => void } {
  let now = 1_000;
  return { signals: new StopSignals(() => now), at: (ms) => (now = 1_000 + ms) };
}

describe('StopSignals', () => {
  it('takes the first signal for a stop, the same one again within a second for the same request once, and any later one as forcing', () => {
    const { signals, at } = onClock();
    assert.equal(signals.stopping, false);
    assert.equal(signals.read('SIGINT'), 'stop');
    assert.equal(signals.stopping, true);
    at(REPEAT_SIGNAL_MS - 1);
    assert.equal(signals.read('SIGINT'), 'repeat', 'npm passing the terminal’s Ctrl-C on');
    assert.equal(signals.read('SIGINT'), 'force', 'a repeat is taken once');
  });

  it('forces on the same signal a second or more after the first, and on another signal at once', () => {
    const late = onClock();
    late.signals.read('SIGTERM');
    late.at(REPEAT_SIGNAL_MS);
    assert.equal(late.signals.read('SIGTERM'), 'force');

    const other = onClock();
    other.signals.read('SIGTERM');
    assert.equal(other.signals.read('SIGINT'), 'force');
  });
});

// A forced stop must end the process even when the embedded emulator's save never settles (a disk that hangs).
describe('exitOnceSaved', () => {
  it('exits once the save settles, failed or not, and after FORCED_SAVE_WAIT_MS when it never does', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const exits: (number | undefined)[] = [];
    t.mock.method(process, 'exit', (code?: number) => void exits.push(code));

    exitOnceSaved(Promise.reject(new Error('disk full')), 1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(exits, [1], 'a failed save, already reported, is waited for no longer');

    exits.length = 0;
    exitOnceSaved(new Promise(() => {}), 1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    t.mock.timers.tick(FORCED_SAVE_WAIT_MS - 1);
    assert.deepEqual(exits, [], 'the save still has its time');
    t.mock.timers.tick(1);
    // The first call's timer ends too: the process is gone by then, and exiting twice does no harm.
    assert.deepEqual(exits, [1, 1]);
  });
});
