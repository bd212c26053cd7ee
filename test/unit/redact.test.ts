import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactedErrorBody } from '../../src/upstream/redact.ts';

const info = { status: 400, method: 'GET', path: '/connect_tokens/tok3n0001' };
const signature = 'ab+cd/ef==';
const authorization = `OAuth oauth_consumer_key="k", oauth_signature="${encodeURIComponent(signature)}"`;

describe('the logged excerpt of an upstream error body', () => {
  it('leaves no part of a secret that straddled the cut, however many were cut out before it', () => {
    const secret = 'S3CRET-0123456789';
    const body = `${'x'.repeat(3)}${` ${secret}`.repeat(60)}`;
    const shown = redactedErrorBody(body, secret, authorization, info);
    assert.ok(shown.length <= 500);
    assert.doesNotMatch(shown, /S3C|0123/);
  });

  it('cuts out a secret the upstream echoed as a JSON number, which writing the JSON out again would have changed', () => {
    const secret = '12345678901234567890123';
    const shown = redactedErrorBody(`{"type":"error","value":"bad","echo":${secret}}`, secret, authorization, info);
    assert.doesNotMatch(shown, /1234567890|e\+22/);
  });

  it('cuts out a labelled signature whose characters are \\u-escaped, in a body that is not JSON', () => {
    const shown = redactedErrorBody(`<p>"oauth_signature":"ab\\u002bcd\\/ef=="</p>`, 'secret-value', authorization, info);
    assert.doesNotMatch(shown, /cd|ef==/);
  });

  it('cuts out the connect token its path names, and shows nothing of a body too large to search', () => {
    assert.doesNotMatch(redactedErrorBody('{"value":"connect_token tok3n0001 is invalid"}', 'secret-value', authorization, info), /tok3n0001/);
    assert.equal(redactedErrorBody('y'.repeat(70_000), 'secret-value', authorization, info), '(70000 characters, not shown)');
  });
});
