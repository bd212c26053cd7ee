import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizationHeader, parseAuthorizationHeader, percentEncode, protocolParams, sign, signatureBaseString, signaturesMatch } from '../../src/oauth/signature.ts';

describe('OAuth 1.0a HMAC-SHA1 signing', () => {
  it('signs the reference test vector', () => {
    const params = [...protocolParams('consumer_key', 'static-nonce-for-testing', '1456789012'), ['email', '@gmail.com'] as const];
    const signature = sign({ method: 'POST', baseUrl: 'https://api.context.io/2.0/connect_tokens', params, consumerSecret: 'consumer_secret' });
    assert.equal(signature, '2AaRHKvlFRrLVbRY7qFAJgP+zjk=');
  });

  it('compares signatures of any length: one cut short or padded does not match, and is no error', () => {
    // The emulator compares what a client sent, which may be any length: a throw would answer 500, not 401.
    const expected = '2AaRHKvlFRrLVbRY7qFAJgP+zjk=';
    assert.equal(signaturesMatch(expected, expected), true);
    assert.equal(signaturesMatch(expected, `${expected.slice(0, -2)}x=`), false);
    assert.equal(signaturesMatch(expected, expected.slice(0, -1)), false);
    assert.equal(signaturesMatch(expected, `${expected}=`), false);
    assert.equal(signaturesMatch(expected, ''), false);
  });

  it('percent-encodes as RFC 3986 says, including the characters encodeURIComponent leaves alone', () => {
    assert.equal(percentEncode("a b!'()*~._-é/"), 'a%20b%21%27%28%29%2A~._-%C3%A9%2F');
  });

  it('sorts parameters by encoded name then value, and normalizes scheme, host and default port', () => {
    const base = signatureBaseString({
      method: 'get',
      baseUrl: 'HTTPS://API.Example.COM:443/2.0/accounts',
      params: [['b', '2'], ['a', '2'], ['a', '1']],
    });
    assert.equal(base, 'GET&https%3A%2F%2Fapi.example.com%2F2.0%2Faccounts&a%3D1%26a%3D2%26b%3D2');
  });

  it('round-trips the Authorization header', () => {
    const header = authorizationHeader(protocolParams('key', 'n o', '1'), 'sig/+=');
    const parsed = parseAuthorizationHeader(header);
    assert.equal(parsed?.get('oauth_nonce'), 'n o');
    assert.equal(parsed?.get('oauth_signature'), 'sig/+=');
    assert.equal(parseAuthorizationHeader('Bearer x'), undefined);
  });
});
