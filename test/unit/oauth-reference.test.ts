import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/logging/logger.ts';
import { startEmulator } from '../../src/emulator/index.ts';
import { parseAuthorizationHeader, signatureBaseString, sign, type OAuthParam } from '../../src/oauth/signature.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';

/**
 * An independent reference of RFC 5849 §3.4 (HMAC-SHA1, two-legged), written from the RFC and not from
 * src/oauth/signature.ts: the gateway and the emulator share that module, so tests of one against the other
 * would pass with a base string no other server computes.
 */
const ref = {
  /** §3.6: UTF-8 first, then every byte outside ALPHA / DIGIT / "-" / "." / "_" / "~" as %XX, upper-case hex. */
  encode(text: string): string {
    let out = '';
    for (const byte of new TextEncoder().encode(text)) {
      const c = String.fromCharCode(byte);
      out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return out;
  },
  /** §3.4.1.3.1: a query or form body decoded as application/x-www-form-urlencoded (`+` is a space). */
  decodeForm(raw: string): [string, string][] {
    const bytesOf = (s: string) => {
      const bytes: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (s[i] === '%') {
          bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
          i += 2;
        } else if (s[i] === '+') bytes.push(0x20);
        else bytes.push(...new TextEncoder().encode(s[i]!));
      }
      return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
    };
    return raw === ''
      ? []
      : raw.split('&').filter((p) => p !== '').map((pair) => {
          const eq = pair.indexOf('=');
          return eq < 0 ? [bytesOf(pair), ''] : [bytesOf(pair.slice(0, eq)), bytesOf(pair.slice(eq + 1))];
        });
  },
  /** §3.4.1.2: scheme and host lower-cased, the scheme's default port left out, path as sent. */
  baseUri(scheme: string, hostHeader: string, path: string): string {
    const s = scheme.toLowerCase();
    let host = hostHeader.toLowerCase();
    if ((s === 'http' && host.endsWith(':80')) || (s === 'https' && host.endsWith(':443'))) host = host.replace(/:\d+$/, '');
    return `${s}://${host}${path === '' ? '/' : path}`;
  },
  /** §3.4.1.3.2: each name and value encoded, sorted by name then value (byte order), `=` and `&` joined. */
  normalize(params: readonly (readonly [string, string])[]): string {
    const encoded = params.map(([k, v]) => [ref.encode(k), ref.encode(v)] as const);
    encoded.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])) || Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1])));
    return encoded.map(([k, v]) => `${k}=${v}`).join('&');
  },
  baseString(method: string, baseUri: string, params: readonly (readonly [string, string])[]): string {
    return [method.toUpperCase(), ref.encode(baseUri), ref.encode(ref.normalize(params))].join('&');
  },
  sign(baseString: string, consumerSecret: string): string {
    return createHmac('sha1', `${ref.encode(consumerSecret)}&`).update(baseString).digest('base64');
  },
};

const TRICKY_VALUES = [
  'Zoë Ångström',
  'naïve+user@exämple.com',
  '𝒜stral 😀 user',
  "reserved !*'()~+ %/:?#[]@&=",
  '',
  'https://app.example.com/cb?a=1&b=2#frag',
  'tab\tand\nnewline',
  'percent %25 literal %zz',
];

describe('OAuth signing against an independent RFC 5849 reference', () => {
  it('passes the RFC 5849 §3.4.1 example base string through the reference itself (reference sanity)', () => {
    // The RFC's own example (§3.4.1.1), to trust the reference before comparing the project with it.
    const params: [string, string][] = [
      ...ref.decodeForm('b5=%3D%253D&a3=a&c%40=&a2=r%20b'),
      ...ref.decodeForm('c2&a3=2+q'),
      ['oauth_consumer_key', '9djdj82h48djs9d2'],
      ['oauth_token', 'kkk9d7dh3k39sjv7'],
      ['oauth_signature_method', 'HMAC-SHA1'],
      ['oauth_timestamp', '137131201'],
      ['oauth_nonce', '7d8f3e4a'],
    ];
    assert.equal(
      ref.baseString('POST', ref.baseUri('http', 'example.com', '/request'), params),
      'POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7',
    );
    // And the API document's test vector.
    const vector = ref.baseString('POST', 'https://api.context.io/2.0/connect_tokens', [
      ['email', '@gmail.com'],
      ['oauth_consumer_key', 'consumer_key'],
      ['oauth_nonce', 'static-nonce-for-testing'],
      ['oauth_signature_method', 'HMAC-SHA1'],
      ['oauth_timestamp', '1456789012'],
      ['oauth_version', '1.0'],
    ]);
    assert.equal(ref.sign(vector, 'consumer_secret'), '2AaRHKvlFRrLVbRY7qFAJgP+zjk=');
  });

  it('computes the same base string and signature as the project for tricky names, values and base URLs', () => {
    const paramSets: (readonly [string, string])[][] = [
      TRICKY_VALUES.map((v, i) => [`p${i}`, v] as const),
      // Same name repeated, values that sort differently encoded ('%' < 'A' < 'a', '~' last).
      [['a', 'b'], ['a', 'B'], ['a', '~'], ['a', '!'], ['a', ' '], ['a', 'é'], ['a', '']],
      // Names that sort differently before and after encoding: 'a b' < 'a-b' raw, 'a%20b' < 'a-b' encoded;
      // 'a~' > 'a_' both ways; 'é' (0xE9) > 'z' raw but '%C3%A9' < 'z' encoded; astral vs BMP.
      [['z', '1'], ['é', '2'], ['a-b', '3'], ['a b', '4'], ['a~', '5'], ['a_', '6'], ['\u{1F600}', '7'], ['\uFFFD', '8'], ['A', '9']],
      [['', ''], ['=', '&'], ['+', '%']],
    ];
    const baseUrls: [given: string, scheme: string, host: string, path: string][] = [
      ['HTTPS://API.Example.COM:443/2.0/accounts', 'https', 'API.Example.COM:443', '/2.0/accounts'],
      ['http://api.example.com:80/2.0/accounts', 'http', 'api.example.com:80', '/2.0/accounts'],
      ['http://api.example.com:443/2.0/accounts', 'http', 'api.example.com:443', '/2.0/accounts'],
      ['https://api.example.com:8443/prefix/2.0/accounts/me%3A%3Amail.example.com', 'https', 'api.example.com:8443', '/prefix/2.0/accounts/me%3A%3Amail.example.com'],
      ['https://api.example.com/2.0/accounts/me::mail.example.com/x@y', 'https', 'api.example.com', '/2.0/accounts/me::mail.example.com/x@y'],
      ['http://[::1]:4010/2.0/connect_tokens', 'http', '[::1]:4010', '/2.0/connect_tokens'],
      ['https://api.example.com', 'https', 'api.example.com', ''],
    ];
    const secrets = ['consumer_secret', "s&e=c+r é/t!*'()"];
    for (const params of paramSets) {
      for (const [baseUrl, scheme, host, path] of baseUrls) {
        for (const method of ['GET', 'post', 'DELETE']) {
          const expected = ref.baseString(method, ref.baseUri(scheme, host, path), params);
          assert.equal(signatureBaseString({ method, baseUrl, params }), expected, `${method} ${baseUrl} ${JSON.stringify(params)}`);
          for (const consumerSecret of secrets) {
            assert.equal(sign({ method, baseUrl, params, consumerSecret }), ref.sign(expected, consumerSecret));
          }
        }
      }
    }
  });

  it('sends on the wire exactly what it signed: the reference, from the raw request alone, computes the same signature', async (t) => {
    const consumerSecret = "s&e=c+r é/t!*'()";
    const seen: { method: string; host: string; url: string; body: string; contentType: string | undefined; authorization: string }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        seen.push({ method: req.method!, host: req.headers.host!, url: req.url!, body: Buffer.concat(chunks).toString('utf8'), contentType: req.headers['content-type'], authorization: req.headers.authorization! });
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"type":"error","value":"nope"}');
      });
    });
    const port = await listenOnLoopback(server);
    t.after(() => closeServer(server));
    const client = new UpstreamClient({
      baseUrl: `http://127.0.0.1:${port}/prefix/2.0/`,
      consumerKey: 'key with space',
      consumerSecret,
      timeoutMs: 5_000,
      maxInFlight: 1,
      logger: createLogger('error', () => {}),
      retryBaseDelayMs: 1,
    });
    t.after(() => client.close());

    const settle = (p: Promise<unknown>) => p.then(() => undefined, () => undefined);
    await settle(client.listAccounts({ limit: 5, offset: 0, email: TRICKY_VALUES[1], status: TRICKY_VALUES[3], status_ok: false }));
    await settle(client.createConnectToken(null, { callback_url: TRICKY_VALUES[5]!, email: TRICKY_VALUES[2], first_name: TRICKY_VALUES[0], last_name: TRICKY_VALUES[3], source_sync_flags: true }));
    await settle(client.createAccount({ email: 'a@b.c', first_name: '', last_name: TRICKY_VALUES[7] }));
    await settle(client.getAccount("me::mail.example.com@x!*'()~é"));
    await settle(client.deleteConnectToken('52daabefcea6f9c35a4a0997', 'tok:en@1'));
    assert.equal(seen.length, 5);

    for (const request of seen) {
      const q = request.url.indexOf('?');
      const path = q < 0 ? request.url : request.url.slice(0, q);
      const query = q < 0 ? '' : request.url.slice(q + 1);
      const form = request.contentType === 'application/x-www-form-urlencoded' ? request.body : '';
      const oauth = parseAuthorizationHeader(request.authorization)!;
      const protocol = [...oauth].filter(([k]) => k !== 'oauth_signature');
      const params: OAuthParam[] = [...ref.decodeForm(query), ...ref.decodeForm(form), ...protocol];
      const expected = ref.sign(ref.baseString(request.method, ref.baseUri('http', request.host, path), params), consumerSecret);
      assert.equal(oauth.get('oauth_signature'), expected, `${request.method} ${request.url} ${request.body}`);
      assert.equal(oauth.get('oauth_consumer_key'), 'key with space');
    }
    // And what arrived decodes to what was given.
    assert.deepEqual(ref.decodeForm(seen[0]!.url.split('?')[1]!), [['limit', '5'], ['offset', '0'], ['email', TRICKY_VALUES[1]], ['status', TRICKY_VALUES[3]], ['status_ok', '0']]);
    assert.deepEqual(ref.decodeForm(seen[1]!.body), [['callback_url', TRICKY_VALUES[5]], ['email', TRICKY_VALUES[2]], ['first_name', TRICKY_VALUES[0]], ['last_name', TRICKY_VALUES[3]], ['source_sync_flags', '1']]);
    assert.equal(decodeURIComponent(seen[3]!.url.split('/').pop()!), "me::mail.example.com@x!*'()~é");
  });

  it('has the emulator accept what the reference signs, sent as other clients send it (`+` for spaces, lower-case hex, upper-case host)', async (t) => {
    const consumerSecret = 'emulator secret';
    const emulator = await startEmulator({ port: 0, host: '127.0.0.1', consumerKey: 'k', consumerSecret });
    t.after(() => emulator.close());
    const { port } = new URL(emulator.url);

    const send = (method: string, hostHeader: string, target: string, body = '', signedPath = target.split('?')[0]!) => {
      const query = target.includes('?') ? target.slice(target.indexOf('?') + 1) : '';
      const protocol: [string, string][] = [
        ['oauth_consumer_key', 'k'],
        ['oauth_nonce', Math.random().toString(36).slice(2)],
        ['oauth_signature_method', 'HMAC-SHA1'],
        ['oauth_timestamp', String(Math.floor(Date.now() / 1000))],
        ['oauth_version', '1.0'],
      ];
      const params = [...ref.decodeForm(query), ...ref.decodeForm(body), ...protocol];
      const signature = ref.sign(ref.baseString(method, ref.baseUri('http', hostHeader, signedPath), params), consumerSecret);
      const authorization = `OAuth realm="x", ${[...protocol, ['oauth_signature', signature]].map(([k, v]) => `${ref.encode(k!)}="${ref.encode(v!)}"`).join(', ')}`;
      return new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path: target, headers: { host: hostHeader, authorization, ...(body ? { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } : {}) } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    };

    const created = await send('POST', `127.0.0.1:${port}`, '/2.0/connect_tokens', 'callback_url=https%3a%2f%2fapp.example.com%2Fcb%3Fa%3D1&first_name=Zo%C3%AB+%F0%9F%98%80&last_name=%21%2A%27%28%29%7E&email=a%2Bb%40ex%C3%A4mple.com&email=');
    assert.equal(created.status, 201, created.text);
    const listed = await send('GET', `LOCALHOST:${port}`, "/2.0/accounts?limit=5&offset=0&email=x+y%40z.com&status=!*'()~");
    assert.equal(listed.status, 200, listed.text);
    // Empty pairs (`&&`, a trailing `&`) are no parameters (RFC 5849 §3.4.1.3.1 reads the query as a form).
    const emptyPairs = await send('GET', `127.0.0.1:${port}`, '/2.0/accounts?limit=5&&offset=0&');
    assert.equal(emptyPairs.status, 200, emptyPairs.text);
    // A name without `=` is signed with an empty value, as the RFC's own example signs `c2`.
    const bare = await send('GET', `127.0.0.1:${port}`, '/2.0/accounts?limit=5&email');
    assert.notEqual(bare.status, 401, bare.text);
    const raw = await send('GET', `127.0.0.1:${port}`, '/2.0/accounts/me::mail.example.com');
    assert.notEqual(raw.status, 401, raw.text);
    // Signed for another path than the one sent: refused, so the checks above are not vacuous.
    const wrong = await send('GET', `127.0.0.1:${port}`, '/2.0/accounts', '', '/2.0/accounts/');
    assert.equal(wrong.status, 401, wrong.text);
  });
});
