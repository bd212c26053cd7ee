import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { OAuthVerifier } from '../../src/emulator/index.ts';
import { TIMESTAMP_WINDOW_SECONDS } from '../../src/emulator/oauth.ts';
import { authorizationHeader, encodeFormPairs, protocolParams, sign } from '../../src/oauth/signature.ts';
import { exchange } from '../helpers/net.ts';
import { api, emulatorFor, rawRequest, signRequest } from './helpers.ts';

// The reference test vector (contextio-2.0.md, "Authentication").
const VECTOR = {
  key: 'consumer_key',
  secret: 'consumer_secret',
  nonce: 'static-nonce-for-testing',
  timestamp: 1456789012,
  signature: '2AaRHKvlFRrLVbRY7qFAJgP+zjk=',
};
const vectorHeader = authorizationHeader(
  protocolParams(VECTOR.key, VECTOR.nonce, String(VECTOR.timestamp)),
  VECTOR.signature,
);

describe('OAuth verification', () => {
  test('the verifier accepts the reference test vector', () => {
    const verifier = new OAuthVerifier({
      consumerKey: VECTOR.key,
      consumerSecret: VECTOR.secret,
      now: () => VECTOR.timestamp * 1000,
    });
    const request = {
      method: 'POST',
      baseUrls: ['https://api.context.io/2.0/connect_tokens'] as const,
      authorization: vectorHeader,
      query: '',
      form: 'email=%40gmail.com',
    };
    assert.deepEqual(verifier.verify(request), { ok: true, query: [], form: [['email', '@gmail.com']] });
    // The same nonce again is a replay.
    const replay = verifier.verify(request);
    assert.equal(replay.ok, false);
  });

  test('a signature that does not match is refused without the signature expected, the one received or the secret', () => {
    // The expected signature of a request is all a caller needs to send that request signed: told it, anyone
    // who reaches the emulator would forge any call without the secret.
    const nowSeconds = 1_700_000_000;
    const verifier = new OAuthVerifier({ consumerKey: VECTOR.key, consumerSecret: VECTOR.secret, now: () => nowSeconds * 1000 });
    const baseUrl = 'https://api.context.io/2.0/accounts';
    const protocol = protocolParams(VECTOR.key, 'refused-nonce', String(nowSeconds));
    const expected = sign({ method: 'GET', baseUrl, params: protocol, consumerSecret: VECTOR.secret });
    const received = sign({ method: 'GET', baseUrl, params: protocol, consumerSecret: 'wrong-secret' });
    const verdict = verifier.verify({ method: 'GET', baseUrls: [baseUrl], authorization: authorizationHeader(protocol, received), query: '', form: '' });
    assert.ok(!verdict.ok, 'refused');
    assert.match(verdict.reason, /signature does not match/);
    for (const [name, value] of Object.entries({ 'expected signature': expected, 'received signature': received, secret: VECTOR.secret })) {
      for (const written of [value, encodeURIComponent(value)]) assert.ok(!verdict.reason.includes(written), `the ${name} is in the reason`);
    }
  });

  test('the server accepts the test vector as sent to api.context.io behind TLS', async (t) => {
    const emu = await emulatorFor(t, {
      consumerKey: VECTOR.key,
      consumerSecret: VECTOR.secret,
      now: () => VECTOR.timestamp * 1000,
      allowedHosts: ['api.context.io'],
    });
    const body = encodeFormPairs([['email', '@gmail.com']]);
    const send = () =>
      rawRequest(emu.origin, {
        method: 'POST',
        path: '/2.0/connect_tokens',
        headers: {
          host: 'api.context.io',
          'x-forwarded-proto': 'https',
          'content-type': 'application/x-www-form-urlencoded',
          authorization: vectorHeader,
        },
        body,
      });
    const res = await send();
    // Verified: the request got past OAuth to the handler, which wants a callback_url.
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.text).value, /callback_url/);
    const replay = await send();
    assert.equal(replay.status, 401);
    assert.match(JSON.parse(replay.text).value, /nonce/);
  });

  test('X-Forwarded-Proto makes the signed URL https only when it says https (its first value, any case); any other value is ignored', async (t) => {
    const emu = await emulatorFor(t);
    const signedAs = (scheme: string) => signRequest('GET', `${emu.url.replace(/^http:/, `${scheme}:`)}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const status = async (forwarded: string, scheme: string) =>
      (await fetch(`${emu.url}/accounts`, { headers: { authorization: signedAs(scheme), 'x-forwarded-proto': forwarded } })).status;
    assert.equal(await status('HTTPS, http', 'https'), 200);
    for (const forwarded of ['http', 'ws', 'ftp']) {
      assert.equal(await status(forwarded, 'http'), 200, forwarded);
      assert.equal(await status(forwarded, forwarded), forwarded === 'http' ? 200 : 401, forwarded);
    }
  });

  test('rejections are 401 with code 105 and say why', async (t) => {
    const emu = await emulatorFor(t);
    const cases: Array<[string, Parameters<typeof api>[2], RegExp]> = [
      ['no header', { authorization: null }, /Authorization/],
      ['not OAuth', { authorization: 'Bearer abc' }, /Authorization/],
      ['bad signature', { secret: 'wrong-secret' }, /signature does not match/],
      ['wrong key', { key: 'someone-else' }, /consumer key/],
      ['stale timestamp', { timestamp: Math.floor(Date.now() / 1000) - 301 }, /timestamp/],
      ['future timestamp', { timestamp: Math.floor(Date.now() / 1000) + 400 }, /timestamp/],
    ];
    for (const [name, options, reason] of cases) {
      const res = await api(emu, '/accounts', options);
      assert.equal(res.status, 401, name);
      assert.equal(res.headers.get('www-authenticate'), `OAuth realm="${emu.url}"`, name);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.body.type, 'error', name);
      assert.equal(res.body.code, 105, name);
      assert.match(res.body.value, /^Invalid signature/, name);
      assert.match(res.body.value, reason, name);
      assert.ok(!res.text.includes(emu.consumerSecret), 'the secret never appears');
    }
  });

  test('a malformed query string or form body is answered 401, not 400: authentication comes first, and only a caller with a usable header is told what was malformed', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    const formPost = (authorization: string | undefined) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
        body: 'email=100%off@example.com',
      });
    // Without a usable Authorization header the answer is that header's 401, and nothing of the query or body.
    for (const res of [await api(emu, '/accounts?limit=%zz', { authorization: null }), await api(emu, '/accounts?limit=%zz', { authorization: 'OAuth x="y"' })]) {
      assert.equal(res.status, 401);
      assert.match(res.body.value, /Authorization header|missing oauth_/);
      assert.doesNotMatch(res.body.value, /query|malformed query/);
    }
    const unsignedForm = await formPost(undefined);
    assert.equal(unsignedForm.status, 401);
    assert.doesNotMatch(await unsignedForm.text(), /form body/);
    // Nor with a header that fails its own checks: its key is refused before the body is decoded.
    const unknownKey = await formPost(signRequest('POST', url, [], 'not-the-key', emu.consumerSecret));
    assert.equal(unknownKey.status, 401);
    assert.match(((await unknownKey.json()) as { value: string }).value, /^Invalid signature: unknown consumer key$/);
    // With one, no signature can match what cannot be decoded: a 401 that says why, as a bad signature's does.
    const query = await api(emu, '/accounts?limit=%zz', { authorization: signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret) });
    assert.equal(query.status, 401);
    assert.equal(query.body.code, 105);
    assert.match(query.body.value, /^Invalid signature: the query string is malformed/);
    // %E9 is well-formed percent-encoding of a byte that is no UTF-8 (é in Latin-1): said so, not "invalid percent-encoding".
    const latin1 = await api(emu, '/accounts?email=ren%E9', { authorization: signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret) });
    assert.equal(latin1.status, 401);
    assert.equal(latin1.body.value, 'Invalid signature: the query string is malformed (a % not followed by two hexadecimal digits, or bytes that are not UTF-8), so no signature can match it');
    const form = await formPost(signRequest('POST', url, [], emu.consumerKey, emu.consumerSecret));
    assert.equal(form.status, 401);
    assert.match(((await form.json()) as { value: string }).value, /^Invalid signature: the form body is malformed/);
  });

  test('an oauth_version other than 1.0, an oauth_timestamp that is no number and an empty oauth_nonce are refused, though correctly signed', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    /** A GET of /accounts signed with these protocol parameters in place of the usual ones. */
    const signedWith = (changed: Record<string, string>) => {
      const protocol = protocolParams(emu.consumerKey, randomBytes(12).toString('hex'), String(Math.floor(Date.now() / 1000)))
        .map(([name, value]) => [name, changed[name] ?? value] as [string, string]);
      return authorizationHeader(protocol, sign({ method: 'GET', baseUrl: url, params: protocol, consumerSecret: emu.consumerSecret }));
    };
    // The same signing, unchanged, is accepted: what follows is refused for the one parameter changed.
    assert.equal((await api(emu, '/accounts', { authorization: signedWith({}) })).status, 200);
    for (const [changed, reason] of [
      [{ oauth_version: '2.0' }, /oauth_version/],
      // Not a number: no distance from the clock can be measured, so it is no fresh request.
      [{ oauth_timestamp: 'abc' }, /timestamp/],
      // A number with more after it is no number either, though it starts as the clock's.
      [{ oauth_timestamp: `${Math.floor(Date.now() / 1000)}abc` }, /timestamp/],
      // An empty nonce is none: taken, a client sending it would pass once and then fail every request as a replay.
      [{ oauth_nonce: '' }, /^Invalid signature: missing oauth_nonce$/],
    ] as const) {
      const res = await api(emu, '/accounts', { authorization: signedWith(changed) });
      assert.equal(res.status, 401, JSON.stringify(changed));
      assert.equal(res.body.code, 105);
      assert.match(res.body.value, /^Invalid signature/);
      assert.match(res.body.value, reason);
    }
  });

  test('a request signed without a required protocol parameter is refused; oauth_version alone may be left out', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    /** A GET of /accounts whose header and signature both leave out `left`. */
    const signedWithout = (left: string) => {
      const protocol = protocolParams(emu.consumerKey, randomBytes(12).toString('hex'), String(Math.floor(Date.now() / 1000)))
        .filter(([name]) => name !== left);
      return authorizationHeader(protocol, sign({ method: 'GET', baseUrl: url, params: protocol, consumerSecret: emu.consumerSecret }));
    };
    // RFC 5849 §3.1: the version is optional.
    assert.equal((await api(emu, '/accounts', { authorization: signedWithout('oauth_version') })).status, 200);
    // Without a nonce, a replay could not be told from a fresh request.
    for (const left of ['oauth_consumer_key', 'oauth_nonce', 'oauth_signature_method', 'oauth_timestamp']) {
      const res = await api(emu, '/accounts', { authorization: signedWithout(left) });
      assert.equal(res.status, 401, left);
      assert.equal(res.body.code, 105, left);
      assert.equal(res.body.value, `Invalid signature: missing ${left}`);
    }
  });

  test('the signature method must be HMAC-SHA1', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret).replace('HMAC-SHA1', 'PLAINTEXT');
    const res = await api(emu, '/accounts', { authorization: header });
    assert.equal(res.status, 401);
    assert.match(res.body.value, /HMAC-SHA1/);
  });

  test('a protocol parameter given twice in the header is refused, whichever of the two the signature covers (RFC 5849 §3.1, §3.2)', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    for (const [name, other] of [['oauth_nonce', 'another-nonce'], ['oauth_timestamp', '1'], ['oauth_signature_method', 'PLAINTEXT'], ['oauth_version', '2.0']] as const) {
      const protocol = protocolParams(emu.consumerKey, randomBytes(12).toString('hex'), String(Math.floor(Date.now() / 1000)));
      const signature = sign({ method: 'GET', baseUrl: url, params: protocol, consumerSecret: emu.consumerSecret });
      const header = authorizationHeader(protocol, signature);
      // The signed value last, then first: read as a map, the last one given was taken and the other ignored.
      for (const written of [header.replace(/^OAuth /, `OAuth ${name}="${other}", `), `${header}, ${name}="${other}"`]) {
        const res = await api(emu, '/accounts', { authorization: written });
        assert.equal(res.status, 401, `${name}: ${written}`);
        assert.equal(res.body.code, 105);
        assert.equal(res.body.value, `Invalid signature: ${name} is given more than once in the Authorization header`);
      }
    }
    // The signature itself too: a second one is no second chance to match.
    const header = signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret);
    const twice = await api(emu, '/accounts', { authorization: header.replace(/^OAuth /, 'OAuth oauth_signature="AAAA", ') });
    assert.equal(twice.status, 401);
    assert.equal(twice.body.value, 'Invalid signature: oauth_signature is given more than once in the Authorization header');
  });

  test('two Authorization headers are refused, even each a valid signature: not the first taken and the other ignored (a proxy may add its own)', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    const twice = (first: string, second: string) =>
      exchange(emu.url, `GET /2.0/accounts HTTP/1.1\r\nhost: ${new URL(url).host}\r\nauthorization: ${first}\r\nauthorization: ${second}\r\nconnection: close\r\n\r\n`);
    const signed = () => signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret);
    for (const [first, second] of [
      [signed(), 'Basic dXNlcjpwYXNz'],
      [signed(), signRequest('GET', url, [], emu.consumerKey, 'another-secret')],
      [signed(), signed()],
    ]) {
      const received = await twice(first!, second!);
      assert.match(received, /^HTTP\/1\.1 401 /, `${first} then ${second}`);
      assert.match(received, /"code":105,"value":"Invalid signature: more than one Authorization header"/);
    }
  });

  test('a header with a parameter that does not decode (a % left unencoded) is refused as malformed, not read without it', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const res = await api(emu, '/accounts', { authorization: `${header}, oauth_token="100%"` });
    assert.equal(res.status, 401);
    assert.equal(res.body.value, 'Invalid signature: missing or malformed OAuth Authorization header');
  });

  test('a long malformed Authorization header is refused in time proportional to its length', { timeout: 60_000 }, () => {
    // Parsed before anything is verified, so anyone who reaches the emulator sends it. The parse was quadratic:
    // a 16 KB header (Node's limit) held the event loop ~150 ms, a 64 KB one 2.5 s; at 1 MiB it would take a
    // quarter of an hour, linear a few ms. A deadline 1000 times too long tells the two apart; run in a context
    // with a timeout, since no timer of the test runner can stop a loop that never yields.
    const verifier = new OAuthVerifier({ consumerKey: VECTOR.key, consumerSecret: VECTOR.secret });
    const long = 1024 * 1024;
    for (const shape of ['a'.repeat(long), `a=${' '.repeat(long)}`, `a="${'b'.repeat(long)}`, `a${' '.repeat(long)}`]) {
      const verify = () => verifier.verify({ method: 'GET', baseUrls: ['http://127.0.0.1/2.0/accounts'], authorization: `OAuth ${shape}`, query: '', form: '' });
      const verdict = runInNewContext('verify()', { verify }, { timeout: 10_000 }) as ReturnType<typeof verify>;
      assert.equal(verdict.ok, false);
    }
  });

  test('a reused nonce is refused', async (t) => {
    const emu = await emulatorFor(t);
    // The same request again, its timestamp too, whether or not the clock has passed a second since.
    const timestamp = Math.floor(Date.now() / 1000);
    assert.equal((await api(emu, '/accounts', { nonce: 'once-only', timestamp })).status, 200);
    const replay = await api(emu, '/accounts', { nonce: 'once-only', timestamp });
    assert.equal(replay.status, 401);
    assert.match(replay.body.value, /nonce already used/);
  });

  test('a nonce is a replay only with the timestamp it came with (RFC 5849 §3.3: unique among the requests of one timestamp)', () => {
    // A client may make its nonces unique per timestamp only (a counter started again each second, as the RFC
    // allows): its nonce sent again with another timestamp is a new request, which a server checking the RFC's
    // way takes.
    const nowSeconds = 1_700_000_000;
    const verifier = new OAuthVerifier({ consumerKey: VECTOR.key, consumerSecret: VECTOR.secret, now: () => nowSeconds * 1000 });
    const baseUrl = 'https://api.context.io/2.0/accounts';
    const request = (timestamp: number) => {
      const protocol = protocolParams(VECTOR.key, 'nonce-1', String(timestamp));
      const authorization = authorizationHeader(protocol, sign({ method: 'GET', baseUrl, params: protocol, consumerSecret: VECTOR.secret }));
      return { method: 'GET', baseUrls: [baseUrl] as const, authorization, query: '', form: '' };
    };
    assert.deepEqual(verifier.verify(request(nowSeconds - 1)), { ok: true, query: [], form: [] });
    assert.deepEqual(verifier.verify(request(nowSeconds)), { ok: true, query: [], form: [] }, 'the same nonce with the next timestamp');
    for (const timestamp of [nowSeconds - 1, nowSeconds]) {
      assert.deepEqual(verifier.verify(request(timestamp)), { ok: false, reason: 'Invalid signature: nonce already used' }, `replayed at ${timestamp}`);
    }
  });

  test('a nonce is remembered as long as its request passes the timestamp check, the window’s last instant included', () => {
    // The first use at a timestamp the window ahead of the clock: that request verifies again until the clock
    // is the window past its timestamp, twice the window after the first use.
    const first = 1_700_000_000;
    let nowMs = first * 1000;
    const verifier = new OAuthVerifier({ consumerKey: VECTOR.key, consumerSecret: VECTOR.secret, now: () => nowMs });
    const baseUrl = 'https://api.context.io/2.0/accounts';
    const protocol = protocolParams(VECTOR.key, 'edge-nonce', String(first + TIMESTAMP_WINDOW_SECONDS));
    const request = {
      method: 'GET',
      baseUrls: [baseUrl] as const,
      authorization: authorizationHeader(protocol, sign({ method: 'GET', baseUrl, params: protocol, consumerSecret: VECTOR.secret })),
      query: '',
      form: '',
    };
    assert.deepEqual(verifier.verify(request), { ok: true, query: [], form: [] });
    nowMs = (first + 2 * TIMESTAMP_WINDOW_SECONDS) * 1000;
    assert.deepEqual(verifier.verify(request), { ok: false, reason: 'Invalid signature: nonce already used' });
  });

  test('remembered nonces are bounded: past 100,000 the oldest is forgotten, though still within the window', () => {
    const nowSeconds = 1_700_000_000;
    const verifier = new OAuthVerifier({ consumerKey: VECTOR.key, consumerSecret: VECTOR.secret, now: () => nowSeconds * 1000 });
    const baseUrl = 'https://api.context.io/2.0/accounts';
    const request = (nonce: string) => {
      const protocol = protocolParams(VECTOR.key, nonce, String(nowSeconds));
      const authorization = authorizationHeader(protocol, sign({ method: 'GET', baseUrl, params: protocol, consumerSecret: VECTOR.secret }));
      return { method: 'GET', baseUrls: [baseUrl] as const, authorization, query: '', form: '' };
    };
    const oldest = request('nonce-0');
    assert.equal(verifier.verify(oldest).ok, true);
    for (let i = 1; i <= 100_000; i++) assert.equal(verifier.verify(request(`nonce-${i}`)).ok, true);
    assert.equal(verifier.verify(request('nonce-100000')).ok, false, 'the latest is remembered');
    assert.equal(verifier.verify(oldest).ok, true, 'the oldest was forgotten for the bound');
  });

  test('a realm in the Authorization header is not signed, as OAuth 1.0a has it', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const res = await fetch(`${emu.url}/accounts`, { headers: { authorization: header.replace(/^OAuth /, 'OAuth realm="https://api.context.io/", ') } });
    assert.equal(res.status, 200);
    // Nor percent-encoded: RFC 2617's quoted string, so a % in it is no malformed escape.
    const again = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const percent = await fetch(`${emu.url}/accounts`, { headers: { authorization: again.replace(/^OAuth /, 'OAuth realm="50% of %zz", ') } });
    assert.equal(percent.status, 200, await percent.text());
    // Whatever the case of its name, which an HTTP auth-param's is read in (RFC 9110 §11.2).
    const third = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const named = await fetch(`${emu.url}/accounts`, { headers: { authorization: third.replace(/^OAuth /, 'OAuth Realm="50% of %zz", ') } });
    assert.equal(named.status, 200, await named.text());
  });

  test('every parameter of the Authorization header but the realm is signed (RFC 5849 §3.4.1.3.1), not only the oauth_ ones', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    // An extension's parameter beside the protocol's (Google's two-legged xoauth_requestor_id), signed as the RFC
    // and its libraries (oauthlib) sign a header: with the others, sorted among them.
    const protocol = [...protocolParams(emu.consumerKey, randomBytes(12).toString('hex'), String(Math.floor(Date.now() / 1000))), ['xoauth_requestor_id', 'ada@example.com'] as const];
    const signature = sign({ method: 'GET', baseUrl: url, params: protocol, consumerSecret: emu.consumerSecret });
    const header = authorizationHeader(protocol, signature);
    const res = await api(emu, '/accounts', { authorization: header });
    assert.equal(res.status, 200, res.text);
    // And signed it is: changed after signing, the request is refused.
    const changed = await api(emu, '/accounts', { authorization: header.replace('xoauth_requestor_id="ada%40example.com"', 'xoauth_requestor_id="grace%40example.org"') });
    assert.equal(changed.status, 401);
    assert.match(changed.body.value, /signature does not match/);
    // The realm is not, however its name is written: an HTTP auth-param's name is read in any case (RFC 9110 §11.2).
    for (const realm of ['Realm', 'REALM']) {
      const again = signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret);
      const res = await api(emu, '/accounts', { authorization: again.replace(/^OAuth /, `OAuth ${realm}="https://api.context.io/", `) });
      assert.equal(res.status, 200, `${realm}: ${res.text}`);
    }
  });

  test('the signature must be the whole expected one: a valid signature with more after it, or cut short, is refused', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const signature = /oauth_signature="([^"]*)"/.exec(header)![1]!;
    for (const changed of [`${signature}AAAA`, signature.slice(0, -4)]) {
      const res = await api(emu, '/accounts', { authorization: header.replace(`oauth_signature="${signature}"`, `oauth_signature="${changed}"`) });
      assert.equal(res.status, 401);
      assert.match(res.body.value, /signature does not match/);
    }
  });

  test('the scheme name OAuth is read in any case (RFC 9110 §11.1)', async (t) => {
    const emu = await emulatorFor(t);
    for (const scheme of ['oauth', 'OAUTH']) {
      const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret).replace(/^OAuth /, `${scheme} `);
      assert.equal((await api(emu, '/accounts', { authorization: header })).status, 200, scheme);
    }
  });

  test('a header written with spaces around each = is read as one without (RFC 9110 §11.2: auth-param allows them)', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret).replaceAll('="', ' = "');
    assert.equal((await api(emu, '/accounts', { authorization: header })).status, 200);
  });

  test('form parameters are part of the signature', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/connect_tokens`;
    const header = signRequest('POST', url, [['callback_url', 'http://a.example/']], emu.consumerKey, emu.consumerSecret);
    const tampered = await fetch(url, {
      method: 'POST',
      headers: { authorization: header, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'callback_url=http%3A%2F%2Fevil.example%2F',
    });
    assert.equal(tampered.status, 401);
  });

  test('query parameters are part of the signature, and the path is signed as sent', async (t) => {
    const emu = await emulatorFor(t);
    const header = signRequest('GET', `${emu.url}/accounts?limit=1`, [], emu.consumerKey, emu.consumerSecret);
    const res = await fetch(`${emu.url}/accounts?limit=2`, { headers: { authorization: header } });
    assert.equal(res.status, 401);
    const slashHeader = signRequest('GET', `${emu.url}/accounts`, [], emu.consumerKey, emu.consumerSecret);
    const slash = await fetch(`${emu.url}/accounts/`, { headers: { authorization: slashHeader } });
    assert.equal(slash.status, 401, 'a path signed without the slash does not verify with it');
  });
});
