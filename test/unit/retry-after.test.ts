import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryAfterSeconds } from '../../src/retry-after.ts';

describe('retryAfterSeconds', () => {
  it('rounds a wait up to whole seconds, so a client waiting that long is not refused again', () => {
    assert.equal(retryAfterSeconds(1000), 1);
    assert.equal(retryAfterSeconds(1001), 2);
    assert.equal(retryAfterSeconds(59_999.5), 60);
  });

  it('never tells a client to come back in 0 s, even for a wait of a few ms or one already over', () => {
    assert.equal(retryAfterSeconds(3), 1);
    assert.equal(retryAfterSeconds(0), 1);
    assert.equal(retryAfterSeconds(-5), 1);
  });
});
