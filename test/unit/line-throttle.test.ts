import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineThrottle } from '../../src/logging/line-throttle.ts';

describe('LineThrottle', () => {
  it('says a message at most once an interval, then how many went unsaid since its last line', () => {
    const throttle = new LineThrottle(1_000);
    assert.deepEqual(throttle.admit('refused', 0), {});
    assert.equal(throttle.admit('refused', 1), undefined);
    assert.equal(throttle.admit('refused', 999), undefined);
    // Another message is throttled on its own.
    assert.deepEqual(throttle.admit('other', 500), {});
    // A whole interval after its last line, it is said again.
    assert.deepEqual(throttle.admit('refused', 1_000), { sinceLastLine: 2 });
    // The next interval runs from that line, not from the first: still throttled half an interval on.
    assert.equal(throttle.admit('refused', 1_500), undefined);
    assert.deepEqual(throttle.admit('refused', 2_000), { sinceLastLine: 1 });
    assert.deepEqual(throttle.admit('refused', 3_000), {});
  });

  it('forgets a message only once it has not been seen for an interval, unsaid or not', () => {
    const throttle = new LineThrottle(1_000);
    throttle.admit('busy', 0);
    throttle.admit('busy', 900);
    throttle.admit('said once', 0);
    // `busy` was seen 600 ms ago: still in its burst, kept and still throttled.
    assert.deepEqual([...throttle.forgetQuiet(1_500)], [['said once', 0]]);
    assert.equal(throttle.size, 1);
    assert.deepEqual([...throttle.unsaidOnceQuiet(1_500)], []);
    assert.deepEqual([...throttle.unsaidOnceQuiet(1_900)], [['busy', 1]]);
    assert.equal(throttle.size, 0);
  });

  it('owes a line at the end, or once quiet, only to the messages with occurrences unsaid', () => {
    const throttle = new LineThrottle(1_000);
    throttle.admit('said once', 0);
    throttle.admit('burst', 0);
    throttle.admit('burst', 10);
    throttle.admit('burst', 20);
    assert.deepEqual([...throttle.unsaidAtEnd()], [['burst', 2]]);
    assert.equal(throttle.size, 0);
    throttle.admit('said once', 0);
    assert.deepEqual([...throttle.unsaidOnceQuiet(5_000)], []);
    assert.equal(throttle.size, 0);
  });
});
