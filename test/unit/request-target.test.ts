import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { requestTarget } from '../../src/upstream/request.ts';

/** The last check before a request is signed: what no argument check of the resolvers lets through today. */
describe('requestTarget', () => {
  const refused = (run: () => unknown, message: RegExp) =>
    assert.throws(run, (error: unknown) => error instanceof GraphQLError && error.extensions['code'] === 'BAD_USER_INPUT' && message.test(error.message));

  it('refuses a query string that makes the URL longer than servers accept', () => {
    refused(() => requestTarget('/2.0', ['accounts'], { email: 'x'.repeat(5_000) }, undefined), /upstream URL of \d+ characters, more than the 4096/);
    assert.equal(requestTarget('/2.0', ['accounts'], { email: 'x'.repeat(4_000) }, undefined).relativePath, '/accounts');
    // `/2.0/accounts?email=` is 20 characters: a URL of exactly 4096 goes, one more is refused.
    assert.equal(requestTarget('/2.0', ['accounts'], { email: 'x'.repeat(4_076) }, undefined).queryString.length, 4_083);
    refused(() => requestTarget('/2.0', ['accounts'], { email: 'x'.repeat(4_077) }, undefined), /upstream URL of 4097 characters, more than the 4096/);
  });

  it('refuses an id with a slash or a backslash, and encodes every other character it reserves', () => {
    for (const id of ['../accounts/x', 'a\\b']) {
      refused(() => requestTarget('/2.0', ['connect_tokens', id], undefined, undefined), /cannot contain "\/" or "\\": none does/);
    }
    assert.equal(requestTarget('/2.0', ['connect_tokens', '%2F?#:@'], undefined, undefined).relativePath, '/connect_tokens/%252F%3F%23%3A%40');
  });

  it('refuses a form value longer than 4096 characters', () => {
    refused(() => requestTarget('/2.0', ['accounts'], undefined, { first_name: 'n'.repeat(4_097) }), /first_name is 4097 characters, more than the 4096/);
    assert.deepEqual(requestTarget('/2.0', ['accounts'], undefined, { first_name: 'n'.repeat(4_096) }).form, [['first_name', 'n'.repeat(4_096)]]);
  });
});
