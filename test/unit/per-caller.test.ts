import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerCaller } from '../../src/limits/per-caller.ts';

const MINUTE = 60_000;

describe('PerCaller', () => {
  it('looks for idle callers at most once a minute, not on each call: a read on the hot path never walks every caller', () => {
    let asked = 0;
    const callers = new PerCaller<{ since: number }>(
      (now) => ({ since: now }),
      (state, now) => {
        asked += 1;
        return now - state.since >= MINUTE;
      },
    );
    for (let i = 0; i < 100; i += 1) callers.of(`caller-${i}`, i);
    assert.equal(asked, 0, 'the first call swept an empty map; the next within a minute do not sweep');
    callers.of('caller-0', MINUTE - 1);
    assert.equal(asked, 0);
    assert.equal(callers.size, 100);
    // A minute after the last sweep: each caller asked once, those idle a minute forgotten.
    callers.of('late', MINUTE + 50);
    assert.equal(asked, 100);
    assert.equal(callers.size, 50);
    callers.of('later', MINUTE + 51);
    assert.equal(asked, 100);
  });
});
