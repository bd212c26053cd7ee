import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OperationScope } from '../../src/upstream/cancellation.ts';

describe('OperationScope', () => {
  it('runs each listener once, on the first abort, with the reason readable', () => {
    const cancellation = new OperationScope();
    const seen: unknown[] = [];
    cancellation.addEventListener('abort', () => seen.push(cancellation.reason));
    assert.equal(cancellation.aborted, false);
    const reason = new Error('deadline');
    cancellation.abort(reason);
    cancellation.abort(new Error('later'));
    assert.equal(cancellation.aborted, true);
    assert.deepEqual(seen, [reason]);
    // The first reason stands: calls still settling read it (a deadline stays a timeout when the response then closes).
    assert.equal(cancellation.reason, reason);
  });

  it('runs every listener even when one throws, then throws the first error', () => {
    const cancellation = new OperationScope();
    const ran: number[] = [];
    cancellation.addEventListener('abort', () => {
      ran.push(1);
      throw new Error('first');
    });
    cancellation.addEventListener('abort', () => ran.push(2));
    cancellation.addEventListener('abort', () => {
      ran.push(3);
      throw new Error('second');
    });
    assert.throws(() => cancellation.abort(), /first/);
    assert.deepEqual(ran, [1, 2, 3]);
  });

  it('never runs a listener added after the abort, as AbortSignal does not', () => {
    const cancellation = new OperationScope();
    cancellation.abort();
    assert.ok(cancellation.reason instanceof Error, 'the abort has an Error for its reason');
    let ran = false;
    cancellation.addEventListener('abort', () => (ran = true));
    assert.equal(ran, false);
  });
});
