import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { asError, failureReason } from '../../src/support/failure-reason.ts';
import { closedPort } from '../helpers/net.ts';

describe('failureReason', () => {
  it('gives fetch’s own failure by its cause, and any other error by its own message, a cause or not', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    assert.equal(failureReason(new TypeError('fetch failed', { cause: refused })), 'connect ECONNREFUSED 127.0.0.1:9');
    // Another TypeError of fetch's, whose message already says what failed (its cause only repeats a part of it).
    assert.equal(failureReason(new TypeError('Failed to parse URL from ht!tp://x', { cause: new TypeError('Invalid URL') })), 'Failed to parse URL from ht!tp://x');
    assert.equal(failureReason(new Error('Expected 200 OK', { cause: new Error('inner') })), 'Expected 200 OK');
    assert.equal(failureReason(new TypeError('fetch failed')), 'fetch failed');
    assert.equal(failureReason('a string thrown'), 'a string thrown');
  });

  it('gives a connection refused on every address of a name (localhost: ::1 and 127.0.0.1) by each address’s reason', async () => {
    // What Node itself fails with: an AggregateError whose own message is empty.
    const port = await closedPort();
    const failure = await new Promise<Error>((resolve) => {
      const socket = connect({
        host: 'localhost',
        port,
        autoSelectFamily: true,
        lookup: (_host, _options, callback) => callback(null, [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }]),
      });
      socket.on('error', resolve);
    });
    assert.equal(failure.message, '');
    assert.match(failureReason(new TypeError('fetch failed', { cause: failure })), /^connect E[A-Z]+ ::1:\d+; connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    // The same reason on every address is said once; an aggregate of no errors, by its own name.
    const timedOut = () => Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
    assert.equal(failureReason(new AggregateError([timedOut(), timedOut()], '')), 'connect ETIMEDOUT');
    assert.equal(failureReason(new AggregateError([], '')), 'AggregateError');
    assert.equal(failureReason(Object.assign(new Error(''), { code: 'ECONNRESET' })), 'ECONNRESET');
    assert.equal(failureReason(new RangeError('')), 'RangeError');
  });

  it('asError keeps an error as it is and makes one of anything else thrown', () => {
    const error = new RangeError('out of range');
    assert.equal(asError(error), error);
    const made = asError('a string thrown');
    assert.ok(made instanceof Error, 'a string thrown is made an Error');
    assert.equal(made.message, 'a string thrown');
    assert.equal(asError(undefined).message, 'undefined');
  });
});
