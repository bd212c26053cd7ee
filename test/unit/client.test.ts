import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, type TestContext } from 'node:test';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { Dispatcher, errors, MockAgent, type MockPool } from 'undici';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import { parseAuthorizationHeader, sign } from '../../src/oauth/signature.ts';
import { OperationDeadlineExceeded, OperationScope } from '../../src/upstream/cancellation.ts';
import { CallChecked, UpstreamClient, type UpstreamClientOptions } from '../../src/upstream/client.ts';
import { realTimer, type WaitTimer } from '../../src/support/wait-timer.ts';
import { manualTimer, onTestTime, withClockAhead } from '../helpers/clock.ts';
import { closedPort, closeServer, listenOnLoopback, startConnectProxy } from '../helpers/net.ts';
import { deferred } from '../helpers/deferred.ts';
import { eventually } from '../helpers/eventually.ts';
import { whileWatchingZlib } from '../helpers/zlib.ts';

const ORIGIN = 'https://api.example.com';
const JSON_HEADERS = { headers: { 'content-type': 'application/json' } };

/**
 * What happens, in turn (requests reaching a test's server, say): each `next()` is the next one, whether it
 * happened before or after it was asked for. A test waits for the event itself, not for a time by which it
 * should have come.
 */
function happenings<T = void>(): { push: (value: T) => void; next: () => Promise<T> } {
  const happened: T[] = [];
  const waiting: Array<(value: T) => void> = [];
  return {
    push: (value) => {
      const waiter = waiting.shift();
      if (waiter) waiter(value);
      else happened.push(value);
    },
    next: () => (happened.length > 0 ? Promise.resolve(happened.shift()!) : new Promise<T>((resolve) => waiting.push(resolve))),
  };
}

/**
 * Runs `use` while `onRead` is told of each answer of `status` whose headers the client has read (its handler runs
 * as undici's channel is told): a test waits for that, not for a time by which it should have come.
 */
async function whileHeadersRead<T>(status: number, onRead: () => void, use: () => Promise<T>): Promise<T> {
  const read = (message: unknown) => {
    if ((message as { response: { statusCode: number } }).response.statusCode === status) onRead();
  };
  subscribe('undici:request:headers', read);
  try {
    return await use();
  } finally {
    unsubscribe('undici:request:headers', read);
  }
}

/**
 * A dispatcher standing in for undici's pool: `dispatch` gets each request's options and handler, and plays the
 * exchange (or holds it) as the test needs.
 */
function fakeDispatcher(dispatch: (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => void): Dispatcher {
  return new (class extends Dispatcher {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      dispatch(options, handler);
      return true;
    }
    override async destroy(): Promise<void> {}
  })();
}
/** A response controller that does nothing, for the handler calls a fake dispatcher plays. */
const inertController = { abort: () => {}, pause: () => {}, resume: () => {}, aborted: false, paused: false, reason: null };

/**
 * The whole file runs in about a second: a suite still running after this long waits for something that will
 * not come (a regression that leaves a wait unanswered, or a retry loop against a refusing upstream), and fails
 * here instead of at the run's per-test limit of five minutes.
 */
const HUNG_SUITE_MS = 30_000;

/** The client alone, in front of an undici MockPool that refuses any request nobody expected. */
describe('UpstreamClient against a mocked upstream', { timeout: HUNG_SUITE_MS }, () => {
  let agent: MockAgent;
  let pool: MockPool;
  let logs: string[];
  let client: UpstreamClient;

  beforeEach(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
    pool = agent.get(ORIGIN);
    logs = [];
    client = new UpstreamClient({
      baseUrl: `${ORIGIN}/2.0`,
      consumerKey: 'key',
      consumerSecret: 'secret-value',
      timeoutMs: 2_000,
      maxInFlight: 4,
      logger: createLogger('debug', (line) => logs.push(line)),
      retryBaseDelayMs: 1,
      dispatcher: agent,
    });
  });
  afterEach(async () => {
    agent.assertNoPendingInterceptors();
    await agent.close();
  });
  /** Another client of the mocked upstream, with these options, logging nothing unless given a logger. */
  const mockedClient = (options: Partial<UpstreamClientOptions>) =>
    new UpstreamClient({ baseUrl: `${ORIGIN}/2.0`, consumerKey: 'key', consumerSecret: 's', timeoutMs: 2_000, maxInFlight: 4, logger: createLogger('error', () => {}), retryBaseDelayMs: 1, dispatcher: agent, ...options });

  it('signs query and form parameters, and sends the form url-encoded', async () => {
    let seen: { headers: Record<string, string>; body: string } | undefined;
    pool
      .intercept({ path: '/2.0/accounts/52daabefcea6f9c35a4a0997/connect_tokens', method: 'POST' })
      .reply(201, (opts) => {
        seen = { headers: opts.headers as Record<string, string>, body: String(opts.body) };
        return { success: true, token: 't0k3n', resource_url: 'r', browser_redirect_url: 'https://b.example/' };
      }, JSON_HEADERS);
    const result = await client.createConnectToken('52daabefcea6f9c35a4a0997', { callback_url: 'https://app.example.com/cb?a=1&b=2', source_sync_flags: true, email: undefined });
    assert.equal(result.token, 't0k3n');
    assert.equal(seen!.headers['content-type'], 'application/x-www-form-urlencoded');
    // The API answers in the format asked for: JSON, which is all the client reads.
    assert.equal(seen!.headers['accept'], 'application/json');
    assert.equal(seen!.body, 'callback_url=https%3A%2F%2Fapp.example.com%2Fcb%3Fa%3D1%26b%3D2&source_sync_flags=1');
    const oauth = parseAuthorizationHeader(seen!.headers['authorization']);
    assert.equal(oauth?.get('oauth_consumer_key'), 'key');
    const expected = sign({
      method: 'POST',
      baseUrl: `${ORIGIN}/2.0/accounts/52daabefcea6f9c35a4a0997/connect_tokens`,
      params: [
        ['callback_url', 'https://app.example.com/cb?a=1&b=2'],
        ['source_sync_flags', '1'],
        ...[...oauth!].filter(([k]) => k !== 'oauth_signature'),
      ],
      consumerSecret: 'secret-value',
    });
    assert.equal(oauth?.get('oauth_signature'), expected);
  });

  it('names itself and the operation it calls for: User-Agent, and X-Request-Id when the caller has one', async () => {
    // An upstream's operators see who sends what, and a request id finds the gateway's lines about a call.
    const seen: Array<Record<string, string>> = [];
    const account = { id: 'a', created: 1, email_addresses: [], sources: [] };
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, (opts) => (seen.push(opts.headers as Record<string, string>), account), JSON_HEADERS).times(2);
    await client.getAccount('a', new OperationScope('req-42'));
    await client.getAccount('a');
    assert.deepEqual(seen.map((headers) => [headers['user-agent'], headers['x-request-id']]), [['contextio-graphql', 'req-42'], ['contextio-graphql', undefined]]);
  });

  it('logs an upstream error body without any signature it echoes', async () => {
    const echoed = [
      'OAuth oauth_consumer_key="key", oauth_signature="c2lnbmF0dXJlLTE%3D"',
      'oauth_nonce=n&oauth_signature=c2lnbmF0dXJlLTI%3D&x=1',
      '{"oauth_signature": "c2lnbmF0dXJlLTM="}',
    ].join(' | ');
    pool.intercept({ path: '/2.0/accounts/abc', method: 'GET' }).reply(400, { type: 'error', value: `bad request: ${echoed}` }, JSON_HEADERS);
    await assert.rejects(client.getAccount('abc'), /refused the request/);
    const logged = logs.filter((line) => line.includes('upstream error response'));
    assert.equal(logged.length, 1);
    assert.match(logged[0]!, /bad request: OAuth oauth_consumer_key/);
    assert.equal(logged[0]!.match(/\[redacted\]/g)?.length, 3, logged[0]);
    assert.doesNotMatch(logged[0]!, /c2lnbmF0dXJl/);
  });

  it('keeps an upstream error body that quotes the request’s own signature out of the log, however it is quoted', async () => {
    let sent = '';
    pool.intercept({ path: '/2.0/accounts/abc', method: 'GET' }).reply(400, (opts) => {
      sent = parseAuthorizationHeader((opts.headers as Record<string, string>)['authorization'])!.get('oauth_signature')!;
      return { type: 'error', value: `<oauth_signature>${sent}</oauth_signature> &quot;${encodeURIComponent(sent)}&quot; [${JSON.stringify(sent)}]` };
    }, JSON_HEADERS);
    await assert.rejects(client.getAccount('abc'), /refused the request/);
    const logged = logs.filter((line) => line.includes('upstream error response'));
    assert.equal(logged.length, 1);
    assert.ok(sent.length > 10, 'a signature was sent');
    assert.ok(!logged[0]!.includes(sent) && !logged[0]!.includes(encodeURIComponent(sent)), logged[0]);
    assert.equal(JSON.parse(logged[0]!).body, '(not shown: it quotes the gateway’s credentials)');
  });

  it('logs an upstream error body without the secret or the signature when its JSON escapes them (`\\/`, `\\u002b`)', async () => {
    const secret = 'ab/cd+ef/GH-secret';
    const lines: string[] = [];
    const php = mockedClient({ consumerSecret: secret, logger: createLogger('debug', (line) => lines.push(line)), maxAttempts: 1 });
    let sent = '';
    // As PHP's json_encode writes it: every `/` as `\/`; and once with `+` as a \u escape, which any encoder may choose.
    const phpJson = (value: unknown) => JSON.stringify(value).replaceAll('/', '\\/');
    pool.intercept({ path: '/2.0/accounts/abc', method: 'GET' }).reply(400, (opts) => {
      sent = decodeURIComponent(parseAuthorizationHeader((opts.headers as Record<string, string>)['authorization'])!.get('oauth_signature')!);
      return phpJson({ type: 'error', value: `key ${secret} sig ${sent}`, oauth_signature: sent }).replaceAll('+', '\\u002b');
    }, JSON_HEADERS);
    pool.intercept({ path: '/2.0/accounts/def', method: 'GET' }).reply(400, (opts) => {
      sent = decodeURIComponent(parseAuthorizationHeader((opts.headers as Record<string, string>)['authorization'])!.get('oauth_signature')!);
      // Not JSON (cut short): searched as it is.
      return `<pre>${phpJson({ secret, sig: sent, oauth_signature: sent }).slice(0, -1)}</pre>`;
    });
    const signatures: string[] = [];
    for (const id of ['abc', 'def']) {
      await assert.rejects(php.getAccount(id), /refused the request/);
      signatures.push(sent);
    }
    const logged = lines.filter((line) => line.includes('upstream error response'));
    assert.equal(logged.length, 2);
    for (const line of logged) {
      const body = JSON.parse(line).body as string;
      for (const hidden of [secret, ...signatures]) {
        for (const part of hidden.split('/')) assert.ok(part.length < 4 || !body.includes(part), `${part} in ${body}`);
      }
    }
  });

  it('opens the circuit on 503s from something in front of the API, not on the API’s own 503 (a mailbox out of reach)', async () => {
    const guarded = (threshold: number) =>
      mockedClient({ maxAttempts: 1, breakerFailureThreshold: threshold });
    const api = guarded(2);
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(503, { type: 'error', value: 'could not reach the mail server' }, JSON_HEADERS).times(3);
    for (let i = 0; i < 3; i++) await assert.rejects(api.getAccount('a'), { message: 'The upstream could not reach a mail server (HTTP 503) while reading account "a"' });
    assert.equal(api.breakerState, 'closed');
    const proxied = guarded(2);
    pool.intercept({ path: '/2.0/accounts/b', method: 'GET' }).reply(503, '<html><body>Service Unavailable</body></html>', { headers: { 'content-type': 'text/html' } }).times(2);
    for (let i = 0; i < 2; i++) await assert.rejects(proxied.getAccount('b'), /The upstream failed with HTTP 503/);
    assert.equal(proxied.breakerState, 'open');
  });

  it('says the API’s 503 of a write as the call it failed, claiming no mail server the call needed: a connect token’s create needs none', async () => {
    const api = mockedClient({ maxAttempts: 1 });
    pool.intercept({ path: '/2.0/connect_tokens', method: 'POST' }).reply(503, { type: 'error', value: 'could not reach the mail server' }, JSON_HEADERS);
    await assert.rejects(api.createConnectToken(null, { callback_url: 'https://app.example/cb' }), (error: Error) => {
      assert.match(error.message, /^The upstream could not reach a mail server \(HTTP 503\) while creating a connect token: /, error.message);
      return true;
    });
  });

  it('says a half-open circuit is trying one call, not that calls are paused for 0 s', async () => {
    const guarded = mockedClient({ maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 300 });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
    await assert.rejects(guarded.getAccount('a'), /HTTP 502/);
    await assert.rejects(guarded.getAccount('a'), /paused for 1 s \(circuit open\)/);
    // Past the cooldown. The probe is answered when the test says, once the second call has been refused.
    await withClockAhead(320, async () => {
      const answer = deferred();
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, () => answer.promise.then(() => ({ id: 'a', created: 1, email_addresses: [], sources: [] })), JSON_HEADERS);
      const probe = guarded.getAccount('a');
      await assert.rejects(guarded.getAccount('a'), /one trial call is checking whether it has recovered, retry in a moment \(circuit half-open\)/);
      answer.resolve();
      assert.equal((await probe).id, 'a');
    });
  });

  describe('an operation’s request budget', () => {
    const budgeted = (options: { breakerFailureThreshold?: number; breakerCooldownMs?: number; maxAttempts?: number } = {}) =>
      mockedClient({ maxAttempts: 3, ...options });
    const codeOf = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'];

    it('refuses a call once it is spent, naming the limit, with no upstream request', async () => {
      const operation = new OperationScope('r1', 1);
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await budgeted().getAccount('a', operation)).id, 'a');
      await assert.rejects(budgeted().getAccount('b', operation), (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.deepEqual(e.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'UPSTREAM_REQUESTS', maximum: 1 });
        return true;
      });
      assert.equal(operation.requests, 1);
    });

    it('says in the log once for each operation that it ran out of requests, however many of its calls are refused', async () => {
      const operation = new OperationScope('r5', 1);
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await client.getAccount('a', operation)).id, 'a');
      for (const id of ['b', 'c', 'd']) await assert.rejects(client.getAccount(id, operation), /most upstream requests/);
      const said = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e['message'] === 'operation ran out of upstream requests: its further fields fail');
      assert.deepEqual(said.map((e) => [e['level'], e['requestId'], e['path'], e['maximum']]), [['warn', 'r5', '/accounts/b', 1]]);
    });

    it('refuses a call it has no request left for at once, not once a rate-limit pause has been waited out', async () => {
      const waits = manualTimer();
      const client = mockedClient({ maxAttempts: 1, timeoutMs: 4_000, waitTimer: waits.timer });
      const operation = new OperationScope('r4', 1);
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await client.getAccount('a', operation)).id, 'a'); // its one request spent
      // Another operation's 429 pauses the key for a second, which a call with time left would wait out.
      pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '1' } });
      await assert.rejects(client.getAccount('limited'), (e: Error & { extensions?: Record<string, unknown> }) => codeOf(e) === 'RATE_LIMITED');
      const refused = client.getAccount('b', operation);
      let settled = false;
      refused.catch(() => {}).finally(() => (settled = true));
      await eventually(() => settled || waits.waiting().length > 0);
      assert.deepEqual(waits.waiting(), [], 'it waited for the pause first');
      await assert.rejects(refused, (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.deepEqual(e.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'UPSTREAM_REQUESTS', maximum: 1 });
        return true;
      });
    });

    it('ends a call whose retry it refuses with the upstream’s own failure, not the limit', async () => {
      const operation = new OperationScope('r2', 1);
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
      await assert.rejects(budgeted().getAccount('a', operation), (e: Error & { extensions?: Record<string, unknown> }) => codeOf(e) === 'UPSTREAM_ERROR' && /HTTP 502/.test(e.message));
      assert.equal(operation.requests, 1);
    });

    it('takes back what a request never sent claimed (refused by an open breaker)', async () => {
      const operation = new OperationScope('r3', 2);
      const client = budgeted({ breakerFailureThreshold: 1, breakerCooldownMs: 100, maxAttempts: 1 });
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
      await assert.rejects(client.getAccount('a', operation), /HTTP 502/); // sent: one claim spent, the breaker opens
      for (let i = 0; i < 3; i++) await assert.rejects(client.getAccount('a', operation), /circuit open/);
      // Past the cooldown.
      await withClockAhead(120, async () => {
        pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
        assert.equal((await client.getAccount('a', operation)).id, 'a', 'the refused calls spent nothing');
      });
      assert.equal(operation.requests, 2);
    });
  });

  it('retries a 503 from something in front of the API, not the API’s own (a mailbox out of reach)', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(503, { type: 'error', value: 'could not reach the mail server' }, JSON_HEADERS);
    await assert.rejects(client.getAccount('a'), /HTTP 503/); // once: a second interceptor would be left pending
    pool.intercept({ path: '/2.0/accounts/b', method: 'GET' }).reply(503, '<html>Service Unavailable</html>');
    pool.intercept({ path: '/2.0/accounts/b', method: 'GET' }).reply(200, { id: 'b', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    assert.equal((await client.getAccount('b')).id, 'b');
    // A JSON body is not enough to be the API's own: a gateway in front may answer its 503 in JSON of its own shape.
    pool.intercept({ path: '/2.0/accounts/c', method: 'GET' }).reply(503, { message: 'Service Unavailable' }, JSON_HEADERS);
    pool.intercept({ path: '/2.0/accounts/c', method: 'GET' }).reply(200, { id: 'c', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    assert.equal((await client.getAccount('c')).id, 'c');
  });

  it('retries a connection that failed on the way: a name lookup failing for now (EAI_AGAIN), a network or host out of reach for now', async () => {
    for (const code of ['EAI_AGAIN', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH', 'EHOSTDOWN']) {
      pool.intercept({ path: `/2.0/accounts/${code}`, method: 'GET' }).replyWithError(Object.assign(new Error(code), { code }));
      pool.intercept({ path: `/2.0/accounts/${code}`, method: 'GET' }).reply(200, { id: code, created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await client.getAccount(code)).id, code);
    }
    // A name that does not exist is not retried: the resolver's answer would not change in a moment.
    pool.intercept({ path: '/2.0/accounts/nx', method: 'GET' }).replyWithError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
    pool.intercept({ path: '/2.0/accounts/nx', method: 'GET' }).reply(200, { id: 'nx', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    await assert.rejects(client.getAccount('nx'), /could not be reached/);
    // (The answer meant for a retry is left for the next call.)
    assert.equal((await client.getAccount('nx')).id, 'nx');
  });

  it('retries a connection whose opening timed out, or that broke or timed out once open (EPIPE, ETIMEDOUT, UND_ERR_CLOSED)', async () => {
    const failures = [new errors.ConnectTimeoutError(), Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' }), new errors.ClientClosedError()];
    for (const failure of failures) {
      const code = (failure as Error & { code: string }).code;
      pool.intercept({ path: `/2.0/accounts/${code}`, method: 'GET' }).replyWithError(failure);
      pool.intercept({ path: `/2.0/accounts/${code}`, method: 'GET' }).reply(200, { id: code, created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await client.getAccount(code)).id, code);
    }
  });

  it('answers a DELETE whose only earlier attempts were refused (429, a refused connection) and then 404 as NOT_FOUND', async () => {
    const notFound = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'NOT_FOUND';
    pool.intercept({ path: '/2.0/connect_tokens/abc', method: 'DELETE' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': '0' } });
    pool.intercept({ path: '/2.0/connect_tokens/abc', method: 'DELETE' }).reply(404, { type: 'error', value: 'unknown' }, JSON_HEADERS);
    await assert.rejects(client.deleteConnectToken(null, 'abc'), notFound);
    pool.intercept({ path: '/2.0/connect_tokens/def', method: 'DELETE' }).replyWithError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    pool.intercept({ path: '/2.0/connect_tokens/def', method: 'DELETE' }).reply(404, { type: 'error', value: 'unknown' }, JSON_HEADERS);
    await assert.rejects(client.deleteConnectToken(null, 'def'), notFound);
    // A proxy's 502/503/504 (sent after forwarding, for all the client knows) may have carried the delete: the
    // retry's 404 is then success (a connection broken after the request went out: the real-socket test below).
    for (const [token, status] of [['p502', 502], ['p503', 503], ['p504', 504]] as const) {
      pool.intercept({ path: `/2.0/connect_tokens/${token}`, method: 'DELETE' }).reply(status, 'upstream connect error or disconnect/reset before headers');
      pool.intercept({ path: `/2.0/connect_tokens/${token}`, method: 'DELETE' }).reply(404, { type: 'error', value: 'unknown' }, JSON_HEADERS);
      assert.deepEqual(await client.deleteConnectToken(null, token), { success: true }, String(status));
    }
    // A connection that failed before the request went out (the mock fails it so; a refused TLS handshake
    // does), whatever its code, carried nothing: the retry's 404 is the answer.
    pool.intercept({ path: '/2.0/connect_tokens/ghi', method: 'DELETE' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    pool.intercept({ path: '/2.0/connect_tokens/ghi', method: 'DELETE' }).reply(404, { type: 'error', value: 'unknown' }, JSON_HEADERS);
    await assert.rejects(client.deleteConnectToken(null, 'ghi'), notFound);
  });

  it('takes a create answered success: false (or naming nothing) as failed, not as a token or account to hand out', async () => {
    const failed = (message: RegExp, path: string) => (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
      assert.deepEqual(e.extensions?.['upstream'], { status: 201, method: 'POST', path });
      assert.match(e.message, message);
      return true;
    };
    const declined = { success: false, token: '', resource_url: '', browser_redirect_url: '' };
    pool.intercept({ path: '/2.0/connect_tokens', method: 'POST' }).reply(201, declined, JSON_HEADERS);
    await assert.rejects(client.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }), failed(/^The upstream answered success: false to creating a connect token: nothing was created$/, '/connect_tokens'));
    pool.intercept({ path: '/2.0/accounts/abcdef0123456789abcdef01/connect_tokens', method: 'POST' }).reply(201, declined, JSON_HEADERS);
    await assert.rejects(
      client.createConnectToken('abcdef0123456789abcdef01', { callback_url: 'https://app.example.com/cb' }),
      failed(/^The upstream answered success: false to creating a connect token for account "abcdef0123456789abcdef01": nothing was created$/, '/accounts/abcdef0123456789abcdef01/connect_tokens'),
    );
    pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(201, { success: 'false', id: 'abcdef0123456789abcdef01', resource_url: 'r' }, JSON_HEADERS);
    await assert.rejects(client.createAccount({ email: 'a@example.com' }), failed(/^The upstream answered success: false to creating an account: nothing was created$/, '/accounts'));
    pool.intercept({ path: '/2.0/connect_tokens', method: 'POST' }).reply(201, { ...declined, success: true }, JSON_HEADERS);
    await assert.rejects(client.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }), failed(/unexpected body while creating a connect token: response\.token is empty/, '/connect_tokens'));
    assert.equal(logs.filter((line) => line.includes('created nothing')).length, 3);
  });

  it('takes the gateway running out of file descriptors as its own fault: no retry, and the breaker stays closed', async () => {
    for (let i = 0; i < 8; i++) {
      // The process's limit (EMFILE) or the system's (ENFILE).
      const code = i % 2 === 0 ? 'EMFILE' : 'ENFILE';
      pool.intercept({ path: `/2.0/accounts/a${i}`, method: 'GET' }).replyWithError(Object.assign(new Error('too many open files'), { code }));
      await assert.rejects(client.getAccount(`a${i}`), (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        assert.match(e.message, /out of file descriptors/);
        return true;
      });
    }
    assert.equal(client.breakerState, 'closed');
    // Every call meets the shortage: one line for each code, not one a call.
    const shortages = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => String(line['message']).includes('ulimit -n'));
    assert.deepEqual(shortages.map((line) => [line['level'], line['code'], line['sinceLastLine']]), [['error', 'EMFILE', undefined], ['error', 'ENFILE', undefined]]);
    // After an attempt that reached the upstream, the shortage is still what failed; the earlier attempt may have landed.
    pool.intercept({ path: '/2.0/connect_tokens/t', method: 'DELETE' }).reply(502, 'upstream connect error or disconnect/reset before headers');
    pool.intercept({ path: '/2.0/connect_tokens/t', method: 'DELETE' }).replyWithError(Object.assign(new Error('too many open files'), { code: 'EMFILE' }));
    await assert.rejects(client.deleteConnectToken(null, 't'), /out of file descriptors\) while deleting connect token "t": an earlier attempt may have taken effect$/);
    // Not a rate limit the retry already waited out.
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '0' } });
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).replyWithError(Object.assign(new Error('too many open files'), { code: 'EMFILE' }));
    await assert.rejects(client.getAccount('limited'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_ERROR' && /out of file descriptors\) while reading account "limited"$/.test(e.message));
    // A failed name lookup is the upstream's unless the process cannot open a file either.
    pool.intercept({ path: '/2.0/accounts/dns', method: 'GET' }).replyWithError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
    await assert.rejects(client.getAccount('dns'), /could not be reached/);
  });

  it('maps a 421 (the upstream does not answer to the name it was addressed by) to UPSTREAM_ERROR, logged as a configuration error', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(421, { type: 'error', value: 'host "x" is not served' }, JSON_HEADERS);
    await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_ERROR' && /misdirected/.test(e.message));
    assert.ok(logs.some((line) => line.includes('"level":"error"') && line.includes('CONTEXTIO_API_URL')), 'an error line names CONTEXTIO_API_URL');
  });

  it('takes a redirect as an address that moved: UPSTREAM_ERROR, not followed, logged as a configuration error with where to, tokens cleared', async () => {
    const code = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'];
    pool.intercept({ path: '/2.0/connect_tokens/s3cr3tTok', method: 'GET' }).reply(301, '', { headers: { location: 'https://api.example.com/2.0/connect_tokens/s3cr3tTok' } });
    await assert.rejects(client.getConnectToken(null, 's3cr3tTok'), (e: Error) => code(e) === 'UPSTREAM_ERROR' && /no longer at the gateway’s configured address \(it redirects, HTTP 301\) while reading connect token "s3cr3tTok"$/.test(e.message));
    const faults = logs.filter((line) => line.includes('"level":"error"') && line.includes('set CONTEXTIO_API_URL'));
    assert.equal(faults.length, 1);
    assert.match(faults[0]!, /"status":301,"location":"https:\/\/api\.example\.com\/2\.0\/connect_tokens\/\[token\]"/);
    assert.equal(logs.join('\n').includes('s3cr3tTok'), false);
    // Said once a minute at most, whatever the redirect.
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(308, '', { headers: { location: 'https://api.example.com/2.0/accounts/a' } });
    await assert.rejects(client.getAccount('a'), (e: Error) => code(e) === 'UPSTREAM_ERROR' && /HTTP 308/.test(e.message));
    assert.equal(logs.filter((line) => line.includes('set CONTEXTIO_API_URL')).length, 1);
    // A write redirected elsewhere (307, 308, as an address that moved answers it) was not carried out; one
    // answered 303 See Other was, as a rule (RFC 9110 §15.4.4: the result of a POST is elsewhere): it may have
    // taken effect, and its caller must not take it for a refusal to try again.
    for (const status of [307, 303]) {
      pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(status, '', { headers: { location: 'https://api.example.com/2.0/accounts/new' } });
      const effect = status === 303 ? ': the request may have taken effect' : '';
      await assert.rejects(client.createAccount({ email: 'a@example.com' }), (e: Error) => {
        assert.equal(e.message, `The upstream is no longer at the gateway’s configured address (it redirects, HTTP ${status}) while creating an account${effect}`);
        return code(e) === 'UPSTREAM_ERROR';
      });
    }
  });

  it('takes only a 2xx for a success: a 300 carrying what would be the answer is an error, its body not used', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(300, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.message, 'The upstream failed with HTTP 300 while reading account "a"');
      assert.deepEqual(e.extensions?.['upstream'], { status: 300, method: 'GET', path: '/accounts/a' });
      return true;
    });
  });

  it('takes a 404 of the API’s own collections as a base URL that is not the API’s: UPSTREAM_ERROR, logged as a configuration error; an item’s 404 stays NOT_FOUND', async () => {
    const code = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'];
    pool.intercept({ path: '/2.0/accounts?limit=1&offset=0', method: 'GET' }).reply(404, { type: 'error', value: 'unknown resource' }, JSON_HEADERS);
    await assert.rejects(client.listAccounts({ limit: 1, offset: 0 }), (e: Error) => code(e) === 'UPSTREAM_ERROR' && /configured address/.test(e.message));
    pool.intercept({ path: '/2.0/connect_tokens', method: 'GET' }).reply(404, { type: 'error', value: 'unknown resource' }, JSON_HEADERS);
    await assert.rejects(client.listConnectTokens(null), (e: Error) => code(e) === 'UPSTREAM_ERROR');
    const faults = logs.filter((line) => line.includes('"level":"error"') && line.includes('version included'));
    assert.equal(faults.length, 1, 'once a minute at most');
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(404, { type: 'error', value: 'no such account' }, JSON_HEADERS);
    await assert.rejects(client.getAccount('a'), (e: Error) => code(e) === 'NOT_FOUND');
    pool.intercept({ path: '/2.0/accounts/a/connect_tokens', method: 'GET' }).reply(404, { type: 'error', value: 'no such account' }, JSON_HEADERS);
    await assert.rejects(client.listConnectTokens('a'), (e: Error) => code(e) === 'NOT_FOUND');
  });

  it('logs an upstream server error at warn, with its status and path, once a second at most for each status', async () => {
    for (const id of ['a', 'b']) {
      pool.intercept({ path: `/2.0/accounts/${id}`, method: 'GET' }).reply(500, { type: 'error', value: 'boom' }, JSON_HEADERS);
      await assert.rejects(client.getAccount(id), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_ERROR');
    }
    const warned = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'upstream answered with an error');
    assert.equal(warned.length, 1);
    assert.deepEqual([warned[0]!['level'], warned[0]!['status'], warned[0]!['path']], ['warn', 500, '/accounts/a']);
  });

  it('logs an upstream 400 at warn, with its path and the API’s code, never its words: the gateway’s own checks let the request through', async () => {
    for (const id of ['a', 'b']) {
      pool.intercept({ path: `/2.0/accounts/${id}`, method: 'POST' }).reply(400, { type: 'error', value: 'first_name ada@example.com is not valid', code: 23 }, JSON_HEADERS);
      await assert.rejects(client.updateAccount(id, { first_name: 'x' }), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'BAD_USER_INPUT');
    }
    const warned = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'upstream refused a request’s parameters as invalid: the gateway’s own checks let them through');
    assert.equal(warned.length, 1, `once a second at most: ${logs.join('\n')}`);
    assert.deepEqual([warned[0]!['level'], warned[0]!['status'], warned[0]!['path'], warned[0]!['upstreamCode']], ['warn', 400, '/accounts/a', 23]);
    assert.equal(logs.some((line) => line.includes('ada@example.com') && !line.includes('"level":"debug"')), false, 'the upstream’s words only at debug');
  });

  it('takes a Retry-After longer than an hour (or absurd) as an hour: a pause ends, and retryAfter stays a number', async () => {
    const limited = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED';
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': '9'.repeat(400) } });
    await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => limited(e) && e.extensions?.['retryAfter'] === 3600);
    // Every call of the key is paused now, without a request (none is intercepted).
    await assert.rejects(client.getAccount('b'), (e: Error & { extensions?: Record<string, unknown> }) => limited(e) && (e.extensions?.['retryAfter'] as number) <= 3600);
  });

  it('does not wait out a Retry-After that would end past the call’s deadline, even just past it: it ends RATE_LIMITED at once', async () => {
    const asked: number[] = [];
    const waitTimer: WaitTimer = (callback, ms) => (asked.push(ms), realTimer(callback, ms));
    // 3 s asked for, 2.5 s left: the retry could never go out.
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': '3' } });
    await assert.rejects(mockedClient({ maxAttempts: 3, timeoutMs: 2_500, waitTimer }).getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED' && e.extensions['retryAfter'] === 3);
    assert.deepEqual(asked, [], 'it waited for a retry it could not make');
  });

  it('does not wait out a Retry-After that would end exactly at the call’s deadline: the retry would have no time to go out', async () => {
    // The client's clock the test's, still: 3 s asked for, exactly the 3 s the call has left. A wait asked for
    // is recorded and ended at once.
    const asked: number[] = [];
    const waitTimer: WaitTimer = (callback, ms) => (asked.push(ms), realTimer(callback, 0));
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': '3' } });
    await onTestTime(
      undefined,
      async () => {
        await assert.rejects(mockedClient({ maxAttempts: 3, timeoutMs: 3_000, waitTimer }).getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.deepEqual([e.extensions?.['code'], e.extensions?.['retryAfter']], ['RATE_LIMITED', 3]);
          return true;
        });
      },
      { exact: true },
    );
    assert.deepEqual(asked, [], 'it waited for a retry whose wait ends as the call does');
  });

  it('reads a Retry-After date only in HTTP’s own forms: garbage with a year in it is no pause of an hour', async () => {
    const retryAfterOf = async (path: string, header: string) => {
      pool.intercept({ path: `/2.0/accounts/${path}`, method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': header } });
      // A client of its own each time: a pause would hold the next.
      const error = await mockedClient({ maxAttempts: 1 }).getAccount(path).then(() => undefined, (e: Error & { extensions?: Record<string, unknown> }) => e);
      assert.equal(error?.extensions?.['code'], 'RATE_LIMITED');
      return error.extensions['retryAfter'];
    };
    const inTenMinutes = new Date(Date.now() + 600_000);
    const near = (seconds: unknown) => typeof seconds === 'number' && seconds > 590 && seconds <= 601;
    assert.ok(near(await retryAfterOf('imf', inTenMinutes.toUTCString())), 'an IMF-fixdate ten minutes ahead is a pause of ten minutes');
    // RFC 850's form, and asctime's (in GMT, though it does not say so).
    const [weekday, day, month, year, time] = /^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/.exec(inTenMinutes.toUTCString())!.slice(1);
    const long = { Mon: 'Monday', Tue: 'Tuesday', Wed: 'Wednesday', Thu: 'Thursday', Fri: 'Friday', Sat: 'Saturday', Sun: 'Sunday' }[weekday!];
    assert.ok(near(await retryAfterOf('rfc850', `${long}, ${day}-${month}-${year!.slice(2)} ${time} GMT`)), 'an RFC 850 date ten minutes ahead is a pause of ten minutes');
    assert.ok(near(await retryAfterOf('asctime', `${weekday} ${month} ${String(Number(day)).padStart(2, ' ')} ${time} ${year}`)), 'an asctime date ten minutes ahead is a pause of ten minutes');
    // Not dates: unreadable, so no Retry-After to pass on (and no pause of the key).
    for (const garbage of ['x 2030', 'wait 2030', 'Retry in 2100', '120 (2 min)']) assert.equal(await retryAfterOf('garbage', garbage), undefined, garbage);
  });

  it('reads a Retry-After of decimal seconds as seconds (V8 would parse "30.5" as a date in 2001: no wait at all)', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'retry-after': '30.5' } });
    await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED' && e.extensions['retryAfter'] === 31);
  });

  it('takes a DELETE answered 204 No Content as done, as HTTP has it (not an unexpected body that may have taken effect)', async () => {
    pool.intercept({ path: '/2.0/accounts/x', method: 'DELETE' }).reply(204, '');
    assert.deepEqual(await client.deleteAccount('x'), { success: true });
    pool.intercept({ path: '/2.0/connect_tokens/t', method: 'DELETE' }).reply(204, '');
    assert.deepEqual(await client.deleteConnectToken(null, 't'), { success: true });
    // Another success without a body is still no answer to read: what it did is not known.
    pool.intercept({ path: '/2.0/accounts/y', method: 'DELETE' }).reply(200, '');
    await assert.rejects(client.deleteAccount('y'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_ERROR' && /may have taken effect/.test(e.message));
  });

  it('answers a first-attempt 404 on DELETE as NOT_FOUND', async () => {
    pool.intercept({ path: '/2.0/accounts/x', method: 'DELETE' }).reply(404, { type: 'error', value: 'account x is invalid' }, JSON_HEADERS);
    await assert.rejects(client.deleteAccount('x'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'NOT_FOUND');
  });

  it('tolerates the upstream quirks: an unused token’s account as [] or an id, success as a string', async () => {
    pool.intercept({ path: '/2.0/connect_tokens', method: 'GET' }).reply(200, [
      { token: 'a', created: 1, used: 0, expires: 86401, callback_url: 'https://x', account: [] },
      { token: 'b', created: 1, used: 0, expires: 86401, callback_url: 'https://x', account: '52daabefcea6f9c35a4a0997' },
    ], JSON_HEADERS);
    pool.intercept({ path: '/2.0/accounts/y', method: 'POST' }).reply(200, { success: 'true' }, JSON_HEADERS);
    const tokens = await client.listConnectTokens(null);
    assert.deepEqual(tokens.map((t) => t.account), [null, null]);
    assert.deepEqual(await client.updateAccount('y', { first_name: 'Y' }), { success: true });
  });

  it('reports the gateway’s own key being refused as UPSTREAM_ERROR, logged as a configuration fault without the secret', async () => {
    pool.intercept({ path: '/2.0/accounts/z', method: 'GET' }).reply(401, { type: 'error', code: 105, value: 'Invalid signature: timestamp is more than 300 seconds from the server clock' }, JSON_HEADERS);
    await assert.rejects(client.getAccount('z'), (e: Error & { extensions?: Record<string, unknown> }) =>
      e.extensions?.['code'] === 'UPSTREAM_ERROR' && JSON.stringify(e.extensions['upstream']) === '{"status":401,"method":"GET","path":"/accounts/z"}');
    const fault = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['level'] === 'error' && String(l['message']).includes('CONTEXTIO_CONSUMER_SECRET'));
    // The upstream's own words say which of the two it is (a key pair, or this machine's clock).
    assert.match(String(fault?.['message']), /and this machine’s clock/);
    assert.match(String(fault?.['upstreamSaid']), /timestamp is more than 300 seconds from the server clock/);
    assert.ok(logs.every((l) => !l.includes('secret-value') && !l.includes('oauth_signature')), 'no line holds the secret or a signature');
    // Every call meets it until it is fixed: said once a minute at most, not once a call (a busy gateway wrote
    // thousands of identical lines a second).
    for (let i = 0; i < 20; i++) {
      pool.intercept({ path: `/2.0/accounts/z${i}`, method: 'GET' }).reply(401, { type: 'error', code: 105, value: 'Invalid signature' }, JSON_HEADERS);
      await assert.rejects(client.getAccount(`z${i}`), /refused the gateway’s credentials/);
    }
    const refusals = () => logs.filter((l) => l.includes('"level":"error"') && l.includes('"message":"the upstream refused the gateway’s API key'));
    assert.equal(refusals().length, 1);
    const account = (id: string) => pool.intercept({ path: `/2.0/accounts/${id}`, method: 'GET' }).reply(200, { id, created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    const refused = (id: string) => pool.intercept({ path: `/2.0/accounts/${id}`, method: 'GET' }).reply(401, { type: 'error', code: 105, value: 'Invalid signature' }, JSON_HEADERS);
    // Some answers between refusals (a fault of some servers only): still throttled.
    for (let i = 0; i < 10; i++) {
      account(`ok${i}`);
      await client.getAccount(`ok${i}`);
      refused(`no${i}`);
      await assert.rejects(client.getAccount(`no${i}`));
    }
    assert.equal(refusals().length, 1);
    // Unseen for a minute, at the next successful answer: fixed, and the calls left unsaid are said; its
    // return logs at once.
    await withClockAhead(61_000, async () => {
      account('fixed');
      await client.getAccount('fixed');
      const fixed = logs.filter((l) => l.includes('no longer seen')).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(fixed.length, 1);
      assert.equal(fixed[0]!['sinceLastLine'], 30);
      assert.match(String(fixed[0]!['fault']), /CONTEXTIO_CONSUMER_SECRET/);
      refused('again');
      await assert.rejects(client.getAccount('again'), /refused the gateway’s credentials/);
      assert.equal(refusals().length, 2);
    });
  });

  it('says a DELETE may have taken effect when, after a 502, the breaker refuses its retry', async () => {
    // The DELETE's backoff (the first wait asked for) is the test's to end, once the GET has failed for good;
    // the GET's own short ones are waited out as usual.
    const held = manualTimer();
    let first = true;
    const waitTimer: WaitTimer = (callback, ms) => (first ? ((first = false), held.timer(callback, ms)) : realTimer(callback, ms));
    const breaking = mockedClient({ maxInFlight: 2, breakerFailureThreshold: 1, waitTimer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/2.0/accounts/g', method: 'GET' }).reply(504, 'gateway timeout').times(3);
    const deletion = breaking.deleteAccount('a');
    // Answered 502, the DELETE waits to retry, the retry already decided, when the GET begins.
    await eventually(() => held.waiting().length === 1);
    await assert.rejects(breaking.getAccount('g'), /HTTP 504/); // fails for good: the circuit opens
    assert.equal(breaking.breakerState, 'open');
    held.fireAll();
    await assert.rejects(deletion, /HTTP 502 while deleting account "a": the request may have taken effect$/);
  });

  it('counts a retried 502 once for its call, when the call fails for good: a retry that succeeds leaves nothing counted', async () => {
    const breaking = mockedClient({ maxInFlight: 2, breakerFailureThreshold: 2 });
    for (let i = 0; i < 3; i++) {
      pool.intercept({ path: `/2.0/accounts/a${i}`, method: 'GET' }).reply(502, 'bad gateway');
      pool.intercept({ path: `/2.0/accounts/a${i}`, method: 'GET' }).reply(200, { id: `a${i}`, created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    }
    for (let i = 0; i < 3; i++) assert.equal((await breaking.getAccount(`a${i}`)).id, `a${i}`);
    assert.equal(breaking.breakerState, 'closed');
    pool.intercept({ path: '/2.0/accounts/down', method: 'GET' }).reply(502, 'bad gateway').times(3);
    await assert.rejects(breaking.getAccount('down'), /HTTP 502/);
    assert.equal(breaking.breakerState, 'closed', 'one call failed for good: one failure of the two');
  });

  it('does not let a retried connection error from before the circuit opened reopen it half-open, when the call holding the probe is cancelled', async () => {
    // The backoff is the test's timer's to end, with the clock moved past the cooldown: not slept.
    const waits = manualTimer();
    const client2 = mockedClient({ maxAttempts: 3, breakerFailureThreshold: 1, breakerCooldownMs: 1_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    // The retry is never answered: it has gone out, so it took the probe.
    const retrySent = deferred();
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, () => {
      retrySent.resolve();
      return new Promise<never>(() => undefined);
    }, JSON_HEADERS);
    pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(502, 'bad gateway');
    const caller = new AbortController();
    const pending = client2.getAccount('a', caller.signal); // reset: owed, the circuit closed, a backoff
    await assert.rejects(client2.createAccount({ email: 'x@example.com' }), /HTTP 502/); // opens the circuit
    assert.equal(client2.breakerState, 'open');
    await eventually(() => waits.waiting().length === 1);
    await withClockAhead(1_000, async () => {
      waits.fireAll();
      await retrySent.promise; // the retry took the probe (half-open)
      assert.equal(client2.breakerState, 'half-open');
      caller.abort(); // the probe is released: nothing new about the upstream
      await assert.rejects(pending, /cancelled/);
      assert.equal(client2.breakerState, 'half-open');
    });
  });

  it('waits before a retry at most its base delay, then twice that: full jitter over a doubling ceiling', async (t) => {
    // The jitter drawn at its top: each wait is as long as its ceiling lets it be.
    t.mock.method(Math, 'random', () => 0.999);
    const waits = manualTimer();
    const retrying = mockedClient({ maxAttempts: 3, retryBaseDelayMs: 1_000, timeoutMs: 10_000, breakerFailureThreshold: 100, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway').times(2);
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    const pending = retrying.getAccount('a');
    const asked: number[] = [];
    for (let retry = 0; retry < 2; retry++) {
      await eventually(() => waits.waiting().length === 1);
      asked.push(...waits.waiting());
      waits.fireAll();
    }
    assert.equal((await pending).id, 'a');
    assert.deepEqual(asked, [999, 1_998]);
  });

  it('retries a 429 whose Retry-After says now (0) after a jittered wait, not at once: the calls it refused do not all come back together', async (t) => {
    t.mock.method(Math, 'random', () => 0.5);
    const waits = manualTimer();
    const retrying = mockedClient({ maxAttempts: 2, retryBaseDelayMs: 1_000, timeoutMs: 10_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '0' } });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    const pending = retrying.getAccount('a');
    await eventually(() => waits.waiting().length === 1);
    assert.deepEqual(waits.waiting(), [500]);
    waits.fireAll();
    assert.equal((await pending).id, 'a');
  });

  it('retries a 429 with a Retry-After after that long and a little jitter past it, as a pause is waited out: the calls of a fan-out refused together do not all come back at once', async (t) => {
    t.mock.method(Math, 'random', () => 0.999);
    const waits = manualTimer();
    const retrying = mockedClient({ maxAttempts: 2, timeoutMs: 30_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '10' } });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    const pending = retrying.getAccount('a');
    await eventually(() => waits.waiting().length === 1);
    // The 10 s asked and 499.5 ms.
    assert.deepEqual(waits.waiting(), [10_499.5]);
    await withClockAhead(10_500, async () => {
      waits.fireAll();
      assert.equal((await pending).id, 'a');
    });
  });

  it('tells a call cut while it waits to retry after its own 429 the time left of the pause, not the Retry-After it was answered long before', async () => {
    const waits = manualTimer();
    const retrying = mockedClient({ maxAttempts: 2, timeoutMs: 30_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '10' } });
    const operation = new OperationScope('r12', 10);
    const pending = retrying.getAccount('a', operation);
    await eventually(() => waits.waiting().length === 1);
    // 6 s of the 10 gone when its operation's deadline stops it: calls resume in 4 s, as a call waiting out the
    // same pause is told at that moment; 10 would keep its client away for 6 s more than the limit does.
    await withClockAhead(6_000, async () => {
      operation.abort(new OperationDeadlineExceeded(6_000));
      await assert.rejects(pending, (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.deepEqual([e.extensions?.['code'], e.extensions?.['retryAfter']], ['RATE_LIMITED', 4]);
        assert.match(e.message, /try again in 4 s$/);
        return true;
      });
    });
  });

  it('ends a call whose last attempt is answered 429 with Retry-After: 0 RATE_LIMITED without a retryAfter: the upstream said now, not in a second', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '0' } });
    await assert.rejects(mockedClient({ maxAttempts: 1 }).getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.message, 'The upstream rate limit was reached while reading account "a"; try again later');
      assert.equal(e.extensions?.['code'], 'RATE_LIMITED');
      assert.equal(e.extensions?.['retryAfter'], undefined);
      return true;
    });
  });

  it('calls the API under a base URL given with a trailing slash as under one without', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    assert.equal((await mockedClient({ baseUrl: `${ORIGIN}/2.0/` }).getAccount('a')).id, 'a');
  });

  it('waits out a rate-limit pause with a little jitter past its end, so that the calls it holds do not all leave at the same instant', async (t) => {
    // The jitter drawn at its top: a tenth of the pause, 500 ms at most.
    t.mock.method(Math, 'random', () => 0.999);
    const waits = manualTimer();
    const paused = mockedClient({ maxAttempts: 1, timeoutMs: 30_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '10' } });
    await assert.rejects(paused.getAccount('limited'), /rate limit/);
    const operation = new OperationScope('r10', 10);
    const waiting = paused.getAccount('a', operation);
    await eventually(() => waits.waiting().length === 1);
    const [wait] = waits.waiting();
    // The pause's 10 s (less the few ms since it began) and 499.5 ms.
    assert.ok(wait! > 10_000 && wait! <= 10_499.5, `a wait of ${wait} ms`);
    operation.abort(new OperationDeadlineExceeded(300));
    await assert.rejects(waiting, /waiting out the upstream rate limit/);
  });

  it('does not wait out a rate-limit pause that would leave the call a quarter of its time after it, not more: it ends RATE_LIMITED at once', async (t) => {
    // No jitter, and the client's clock the test's, still: the pause asks exactly 1.5 s of the call's 2 s, leaving
    // exactly 0.5 s, a quarter. Set free then, calls would time out together and open the breaker as the limit lifts.
    t.mock.method(Math, 'random', () => 0);
    const asked: number[] = [];
    const waitTimer: WaitTimer = (callback, ms) => (asked.push(ms), realTimer(callback, ms));
    const paused = mockedClient({ maxAttempts: 1, timeoutMs: 2_000, waitTimer });
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '1.5' } });
    await onTestTime(
      undefined,
      async () => {
        await assert.rejects(paused.getAccount('limited'), /rate limit/);
        await assert.rejects(paused.getAccount('refused'), (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.message, 'The upstream rate limit was reached while reading account "refused"; calls resume in 2 s');
          assert.deepEqual([e.extensions?.['code'], e.extensions?.['retryAfter']], ['RATE_LIMITED', 2]);
          return true;
        });
      },
      { exact: true },
    );
    assert.deepEqual(asked, [], 'it waited out a pause that would leave it no more than a quarter of its time');
  });

  /**
   * A client of 2 s calls, without jitter, its waits on a timer the test fires, whose call of account "limited"
   * is answered 429 with a pause of 1.5 s; account "waited" is answered once the pause is over. `callInThePause`
   * (within `onTestTime`) makes both calls, the second 1 ms into the pause, and returns it waiting.
   */
  const pausedOneAndAHalfSeconds = (t: TestContext) => {
    t.mock.method(Math, 'random', () => 0);
    const waits = manualTimer();
    const paused = mockedClient({ maxAttempts: 1, timeoutMs: 2_000, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '1.5' } });
    pool.intercept({ path: '/2.0/accounts/waited', method: 'GET' }).reply(200, { id: 'waited', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    const callInThePause = async (advance: (ms: number) => void) => {
      await assert.rejects(paused.getAccount('limited'), /rate limit/);
      advance(1);
      const waited = paused.getAccount('waited');
      await waits.asked();
      assert.deepEqual(waits.waiting(), [1_499]);
      return { waited };
    };
    return { waits, callInThePause };
  };

  it('waits out a rate-limit pause that leaves the call more than a quarter of its time after it, by a millisecond', async (t) => {
    // As above, but the call begins 1 ms into the pause: 1,499 ms of its 2,000 are asked, leaving 501.
    const { waits, callInThePause } = pausedOneAndAHalfSeconds(t);
    await onTestTime(
      undefined,
      async (advance) => {
        const { waited } = await callInThePause(advance);
        advance(1_499);
        waits.fireAll();
        assert.equal((await waited).id, 'waited');
      },
      { exact: true },
    );
  });

  it('takes a rate-limit pause whose wait ended a few milliseconds early (a timer firing ahead of the clock) as over: the call goes out, no second wait', async (t) => {
    const { waits, callInThePause } = pausedOneAndAHalfSeconds(t);
    await onTestTime(
      undefined,
      async (advance) => {
        // Begun 1 ms into the pause, the call has more than a quarter of its time left after it (see above).
        const { waited } = await callInThePause(advance);
        // Its timer fires 3 ms before the clock says the pause is over.
        advance(1_496);
        waits.fireAll();
        const next = await Promise.race([waited.then(() => 'sent'), waits.asked().then(() => 'waited again')]);
        assert.equal(next, 'sent');
      },
      { exact: true },
    );
  });

  it('does not count a call its operation’s deadline or its caller cut toward opening the breaker: only its own deadline', async () => {
    // Out of time before its own UPSTREAM_TIMEOUT_MS, a hung upstream says nothing yet (docs/configuration.md: OPERATION_TIMEOUT_MS).
    const breaking = mockedClient({ maxAttempts: 1, breakerFailureThreshold: 1 });
    const arrived = happenings();
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, () => {
      arrived.push();
      return new Promise<never>(() => undefined);
    }, JSON_HEADERS).times(2);
    const operation = new OperationScope('req-1');
    const cut = breaking.getAccount('a', operation);
    await arrived.next();
    operation.abort(new OperationDeadlineExceeded(600));
    await assert.rejects(cut, (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_TIMEOUT');
    assert.equal(breaking.breakerState, 'closed');
    const caller = new AbortController();
    const gone = breaking.getAccount('a', caller.signal);
    await arrived.next();
    caller.abort();
    await assert.rejects(gone, /cancelled/);
    assert.equal(breaking.breakerState, 'closed');
  });

  it('says a write may have taken effect after a proxy’s 504, or when it timed out once sent', async () => {
    pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(504, 'gateway timeout');
    await assert.rejects(client.createAccount({ email: 'a@example.com' }), /^The upstream failed with HTTP 504 while creating an account: the request may have taken effect$/);
    // A GET says nothing of the kind.
    for (let i = 0; i < 3; i++) pool.intercept({ path: '/2.0/accounts/g', method: 'GET' }).reply(504, 'gateway timeout');
    await assert.rejects(client.getAccount('g'), /^The upstream failed with HTTP 504 while reading account "g"$/);
  });

  it('says a write answered with any server error may have taken effect (a 500 can come after the API acted); a 4xx, not', async () => {
    pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(500, '{"type":"error","value":"internal error"}');
    await assert.rejects(client.createAccount({ email: 'a@example.com' }), /^The upstream failed with HTTP 500 while creating an account: the request may have taken effect$/);
    pool.intercept({ path: '/2.0/accounts/a/connect_tokens/t', method: 'DELETE' }).reply(500, 'oops');
    await assert.rejects(client.deleteConnectToken('a', 't'), /^The upstream failed with HTTP 500 while deleting connect token "t" of account "a": the request may have taken effect$/);
    pool.intercept({ path: '/2.0/accounts', method: 'POST' }).reply(409, 'conflict');
    await assert.rejects(client.createAccount({ email: 'a@example.com' }), /^The upstream failed with HTTP 409 while creating an account$/);
    pool.intercept({ path: '/2.0/accounts/g', method: 'GET' }).reply(500, 'oops');
    await assert.rejects(client.getAccount('g'), /^The upstream failed with HTTP 500 while reading account "g"$/);
  });

  it('says a retried DELETE refused after an earlier attempt that may have landed (a 502) that the earlier one may have taken effect', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(429, { type: 'error', value: 'slow down' }, JSON_HEADERS).times(2);
    await assert.rejects(client.deleteAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.extensions?.['code'], 'RATE_LIMITED');
      assert.equal(e.message, 'The upstream rate limit was reached while deleting account "a"; try again later: an earlier attempt may have taken effect');
      return true;
    });
    pool.intercept({ path: '/2.0/accounts/b', method: 'DELETE' }).reply(504, 'gateway timeout');
    pool.intercept({ path: '/2.0/accounts/b', method: 'DELETE' }).reply(403, { type: 'error', value: 'no' }, JSON_HEADERS);
    await assert.rejects(client.deleteAccount('b'), /^The upstream does not allow access to .*: an earlier attempt may have taken effect$/);
    // After only refusals, nothing can have landed.
    pool.intercept({ path: '/2.0/accounts/c', method: 'DELETE' }).reply(429, { type: 'error', value: 'slow down' }, JSON_HEADERS).times(3);
    await assert.rejects(client.deleteAccount('c'), /^The upstream rate limit was reached while deleting account "c"; try again later$/);
  });

  it('sends a POST its form body and type even when the form is empty', async () => {
    // The update form leaves out what is not set: a POST with nothing to change still says what it sends.
    let seen: { headers: Record<string, string>; body: string } | undefined;
    pool.intercept({ path: '/2.0/accounts/a', method: 'POST' }).reply(200, (opts) => {
      seen = { headers: opts.headers as Record<string, string>, body: String(opts.body) };
      return { success: true };
    }, JSON_HEADERS);
    assert.deepEqual(await client.updateAccount('a', { first_name: undefined }), { success: true });
    assert.equal(seen!.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(seen!.body, '');
  });

  it('closes a half-open circuit on a trial answered 404: the upstream answered, whatever it said of the resource', async () => {
    const client = mockedClient({ maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 100 });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
    await assert.rejects(client.getAccount('a'), /HTTP 502/); // the circuit opens
    await withClockAhead(120, async () => {
      pool.intercept({ path: '/2.0/accounts/gone', method: 'GET' }).reply(404, { type: 'error', value: 'no such account' }, JSON_HEADERS);
      await assert.rejects(client.getAccount('gone'), /Not found: account "gone"/);
      assert.equal(client.breakerState, 'closed');
    });
  });

  it('counts each call an open circuit refuses on its operation, for its log line; not one the upstream failed', async () => {
    const client = mockedClient({ maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 60_000 });
    const operation = new OperationScope('r-refused');
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
    await assert.rejects(client.getAccount('a', operation), /HTTP 502/); // the circuit opens
    assert.equal(operation.breakerRefusals, 0);
    for (let i = 0; i < 2; i++) await assert.rejects(client.getAccount('b', operation), /circuit open/);
    assert.equal(operation.breakerRefusals, 2);
  });

  it('frees the slot of a half-open trial given up on and then held back unsent: the next trial after a cooldown is let through', async (t) => {
    // Requests wait in this dispatcher's queue until the test starts them: as in a pool whose connections are all in use.
    const queued: Array<{ path: string; handler: Dispatcher.DispatchHandler }> = [];
    const start = (path: string, status: number, body: string) => {
      const { handler } = queued.splice(queued.findIndex((q) => q.path.endsWith(path)), 1)[0]!;
      try {
        handler.onRequestStart?.(inertController, {});
      } catch (error) {
        return handler.onResponseError?.(inertController, error as Error);
      }
      handler.onResponseStart?.(inertController, status, { 'content-type': 'application/json' }, '');
      handler.onResponseData?.(inertController, Buffer.from(body));
      handler.onResponseEnd?.(inertController, {});
    };
    const queue = fakeDispatcher((options, handler) => queued.push({ path: options.path, handler }));
    const account = (id: string) => JSON.stringify({ id, created: 1, email_addresses: [], sources: [] });
    await onTestTime(t, async (advance) => {
      const client = mockedClient({ maxAttempts: 1, timeoutMs: 10_000, breakerFailureThreshold: 1, breakerCooldownMs: 100, dispatcher: queue });
      const opening = client.getAccount('down');
      await eventually(() => queued.length === 1);
      start('/down', 502, 'bad gateway');
      await assert.rejects(opening, /HTTP 502/);
      advance(120);
      const first = client.getAccount('first'); // the trial, its request queued
      await eventually(() => queued.length === 1);
      advance(120);
      const second = client.getAccount('second'); // the first given up on: this is the trial now
      await eventually(() => queued.length === 2);
      // The first's turn comes: no longer the trial, it is held back, and refused as the second is out.
      start('/first', 200, account('first'));
      await assert.rejects(first, /circuit half-open/);
      advance(120);
      // The second given up on in turn: a third trial may go, the first's slot freed when it was held back.
      const third = client.getAccount('third');
      await eventually(() => queued.length === 2);
      start('/third', 200, account('third'));
      assert.equal((await third).id, 'third');
      assert.equal(client.breakerState, 'closed');
      start('/second', 200, account('second'));
      assert.equal((await second).id, 'second');
    });
  });

  it('gives back what a claim refused took: the operation’s request, and the half-open circuit’s trial', async () => {
    const client = mockedClient({ maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 100 });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
    await assert.rejects(client.getAccount('a'), /HTTP 502/); // the circuit opens
    const operation = new OperationScope('r8', 1);
    const refusal = new Error('the caller has no reads left');
    await withClockAhead(120, async () => {
      // Past the cooldown: the call is the trial, until its claim is refused.
      await assert.rejects(
        client.getAccount('a', operation, () => {
          throw refusal;
        }),
        (e) => e === refusal,
      );
      assert.equal(operation.requestsLeft, 1, 'the operation’s request is given back');
      assert.equal(operation.requests, 0);
      pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(200, { id: 'a', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
      assert.equal((await client.getAccount('a')).id, 'a', 'the next call is let through as the trial');
      assert.equal(client.breakerState, 'closed');
    });
  });

  it('claims a call once, at its first request, however often it is retried, and gives nothing back once a request went out', async () => {
    // A caller's budget is spent a write (or read) a call: a DELETE retried after a 502 and a connection reset is one write.
    let claims = 0;
    let givenBack = 0;
    const claim = () => {
      claims++;
      return () => void givenBack++;
    };
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(200, { success: true }, JSON_HEADERS);
    assert.deepEqual(await mockedClient({ maxAttempts: 3 }).deleteAccount('a', undefined, claim), { success: true });
    assert.deepEqual([claims, givenBack], [1, 0]);
  });

  it('ends a call of a check-only signal once its request could be built, sending nothing and claiming nothing', async () => {
    // A mutation's writes are all checked before the first is made: a check that sent its write would make it.
    let claims = 0;
    const checkOnly = { aborted: false, reason: undefined, checkOnly: true, addEventListener: () => {} };
    // No interceptor: a request that went out would fail as one nobody expected, not as checked.
    await assert.rejects(
      client.deleteAccount('a', checkOnly, () => (claims++, undefined)),
      (e) => e instanceof CallChecked,
    );
    assert.equal(claims, 0);
    // A request that could not be built is refused all the same: the check is of everything before sending.
    await assert.rejects(client.deleteAccount('', checkOnly), (e) => !(e instanceof CallChecked));
  });

  it('ends a call whose operation was stopped before it began without sending or claiming anything, saying so', async () => {
    for (const [reason, expected] of [
      [new OperationDeadlineExceeded(2_100), 'The operation did not complete within 2100 ms (the request deleting account "a" was not sent: the operation had been stopped before it began, so it did not take effect)'],
      [undefined, 'The request deleting account "a" was cancelled before it was sent, so it did not take effect'],
    ] as const) {
      const operation = new OperationScope('r-stopped', 1);
      operation.abort(reason);
      let claims = 0;
      await assert.rejects(
        client.deleteAccount('a', operation, () => (claims++, undefined)),
        (e: Error) => e.message === expected,
      );
      assert.deepEqual([claims, operation.requestsLeft, operation.requests], [0, 1, 0]);
    }
  });

  it('takes a TLS error after the request went out (a record that fails its check) for a connection broken, not a handshake refused', async () => {
    // No certificate or handshake is at fault once a request is on its way, and a write may have taken effect.
    const brokenOnceSent = fakeDispatcher((_options, handler) =>
      queueMicrotask(() => {
        handler.onRequestStart?.(inertController, {});
        handler.onResponseError?.(inertController, Object.assign(new Error('decryption failed or bad record mac'), { code: 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC' }));
      }),
    );
    await assert.rejects(mockedClient({ maxAttempts: 1, dispatcher: brokenOnceSent }).deleteAccount('a'), (e: Error) => {
      assert.equal(e.message, 'The connection to the upstream broke before it answered while deleting account "a": the request may have taken effect');
      return true;
    });
  });

  it('says no status for a call whose last attempt got no answer, whatever an earlier attempt was answered', async () => {
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/2.0/accounts/a', method: 'DELETE' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    await assert.rejects(mockedClient({ maxAttempts: 2 }).deleteAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.message, 'The upstream could not be reached while deleting account "a": the request may have taken effect');
      // The 502 is not this error's answer: a status beside "could not be reached" would say one came.
      assert.deepEqual(e.extensions?.['upstream'], { status: null, method: 'DELETE', path: '/accounts/a' });
      return true;
    });
  });

  it('records a retried connection error when the retry fails on the gateway’s own shortage of file descriptors', async () => {
    const client = mockedClient({ maxAttempts: 3, breakerFailureThreshold: 1 });
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).replyWithError(Object.assign(new Error('too many open files'), { code: 'EMFILE' }));
    await assert.rejects(client.getAccount('a'), /out of file descriptors/);
    // The shortage says nothing of the upstream; the reset before it does, counted once the call has failed for good.
    assert.equal(client.breakerState, 'open');
  });

  it('records a retried failure whose caller leaves while it waits to retry', async () => {
    for (const [id, fail] of [
      ['reset', (i: ReturnType<MockPool['intercept']>) => i.replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))],
      ['proxy', (i: ReturnType<MockPool['intercept']>) => i.reply(502, 'bad gateway')],
    ] as const) {
      const waits = manualTimer();
      const client = mockedClient({ maxAttempts: 3, breakerFailureThreshold: 1, waitTimer: waits.timer });
      fail(pool.intercept({ path: `/2.0/accounts/${id}`, method: 'GET' }));
      const operation = new OperationScope('r9');
      const call = client.getAccount(id, operation);
      await eventually(() => waits.waiting().length === 1); // its backoff
      operation.abort();
      await assert.rejects(call, /could not be reached|HTTP 502/);
      assert.equal(client.breakerState, 'open', id);
    }
  });

  it('records a retried 502 whose retry the operation’s budget refuses once a rate-limit pause is waited out', async () => {
    const waits = manualTimer();
    const client = mockedClient({ maxAttempts: 3, timeoutMs: 4_000, breakerFailureThreshold: 1, waitTimer: waits.timer });
    const operation = new OperationScope('r10', 2);
    pool.intercept({ path: '/2.0/accounts/a', method: 'GET' }).reply(502, 'bad gateway');
    const call = client.getAccount('a', operation);
    await eventually(() => waits.waiting().length === 1); // its backoff, a request left for its retry
    // Another caller's 429 pauses the key for a second: the retry waits it out...
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '1' } });
    await assert.rejects(client.getAccount('limited', new OperationScope('other', 1)), /rate limit/);
    waits.fireAll();
    await eventually(() => waits.waiting().length === 1);
    // ... while another call of its operation spends the last request.
    assert.equal(operation.claimRequest(), true);
    await withClockAhead(1_600, async () => {
      waits.fireAll();
      await assert.rejects(call, /HTTP 502/);
    });
    assert.equal(client.breakerState, 'open');
  });

  it('ends a call answered 429 whose operation has no request left for a retry at once, without waiting its Retry-After first', async () => {
    const waits = manualTimer();
    const client = mockedClient({ maxAttempts: 3, breakerFailureThreshold: 100, waitTimer: waits.timer });
    pool.intercept({ path: '/2.0/accounts/limited', method: 'GET' }).reply(429, { type: 'error', value: 'slow down' }, { headers: { 'content-type': 'application/json', 'retry-after': '2' } });
    const call = client.getAccount('limited', new OperationScope('r12', 1));
    let settled = false;
    call.catch(() => {}).finally(() => (settled = true));
    await eventually(() => settled || waits.waiting().length > 0);
    assert.deepEqual(waits.waiting(), [], 'it waited for a retry it could not send');
    await assert.rejects(call, /rate limit/);
  });

  it('reports a body that is not JSON as UPSTREAM_ERROR', async () => {
    pool.intercept({ path: '/2.0/accounts/q', method: 'GET' }).reply(200, '<html>maintenance</html>');
    await assert.rejects(client.getAccount('q'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'UPSTREAM_ERROR');
  });

  it('clears each call’s deadline timer as the call ends, answered, failed or cancelled: none is held for its full timeout', async (t) => {
    // A timeout no other timer of the test has, so that the calls' deadline timers are told apart from undici's.
    const timeoutMs = 2_345;
    const made = t.mock.method(globalThis, 'setTimeout');
    const cleared = t.mock.method(globalThis, 'clearTimeout');
    const timed = mockedClient({ maxAttempts: 1, timeoutMs });
    pool.intercept({ path: '/2.0/accounts/ok', method: 'GET' }).reply(200, { id: 'ok', created: 1, email_addresses: [], sources: [] }, JSON_HEADERS);
    pool.intercept({ path: '/2.0/accounts/gone', method: 'GET' }).reply(404, { type: 'error', value: 'no such account' }, JSON_HEADERS);
    const left = new OperationScope();
    left.abort();
    assert.equal((await timed.getAccount('ok')).id, 'ok');
    await assert.rejects(timed.getAccount('gone'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'NOT_FOUND');
    await assert.rejects(timed.getAccount('left', left));
    const deadlines = made.mock.calls.filter((call) => call.arguments[1] === timeoutMs).map((call) => call.result);
    assert.equal(deadlines.length, 3, 'one deadline timer per call');
    const clearedTimers = new Set(cleared.mock.calls.map((call) => call.arguments[0]));
    assert.deepEqual(
      deadlines.map((timer) => clearedTimers.has(timer)),
      [true, true, true],
      'a call’s deadline timer was left running after the call ended',
    );
  });
});

/** The client against servers of this test's own, for what only real sockets show: connections, handshakes. */
describe('UpstreamClient against a local server', { timeout: HUNG_SUITE_MS }, () => {
  /** The account the local upstream answers a request for `url` with: the one asked for (the client checks). */
  const accountAt = (url: string | undefined) =>
    JSON.stringify({ id: decodeURIComponent((url ?? '').split('?')[0]!.split('/').pop()!), created: 1, email_addresses: [], sources: [] });
  type LocalClientOptions = Omit<UpstreamClientOptions, 'baseUrl' | 'consumerKey' | 'consumerSecret' | 'logger'> & { logger?: Logger };
  /**
   * What each test's servers and clients are closed by. A test closes its own; one cut short (by the suite's
   * time limit, say) leaves them open, and an open socket would keep the file's process alive, until the run's
   * limit for the whole file, after its tests have failed: they are closed after each test however it ended.
   */
  const closers = new Set<() => Promise<void>>();
  afterEach(async () => {
    await Promise.all([...closers].map((close) => close()));
    closers.clear();
  });

  /** A client of the local server at `baseUrl`, logging nothing unless given a logger. */
  const localClient = (baseUrl: string, options: LocalClientOptions) => {
    const client = new UpstreamClient({ baseUrl, consumerKey: 'key', consumerSecret: 'secret', logger: createLogger('error', () => {}), ...options });
    closers.add(() => client.close().catch(() => undefined));
    return client;
  };

  /** `server` on a free loopback port, and how to close it with every connection still open to it. */
  const serve = async (server: NetServer | HttpServer): Promise<{ port: number; close(): Promise<void> }> => {
    const sockets = new Set<Socket>();
    server.on('connection', (socket: Socket) => sockets.add(socket));
    const port = await listenOnLoopback(server);
    const close = async () => {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    };
    closers.add(close);
    return { port, close };
  };

  /**
   * A request the local upstream holds: its handler calls `hold(answer)`, which resolves `arrived`, and the
   * request stays unanswered until the test calls `answer()`.
   */
  const heldRequest = () => {
    let answer: (() => void) | undefined;
    let arrive: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    return {
      hold: (answerLater: () => void) => {
        answer = answerLater;
        arrive();
      },
      arrived,
      answer: () => answer!(),
    };
  };

  /**
   * An upstream that holds 'limited' (answered 429 with `Retry-After: retryAfter`) and 'down' (answered 502) until
   * `openWithPause` answers them in that order: the other way round, the 429 would close the circuit again (the
   * upstream answered). Any other id is `answerOther`'s.
   */
  const pausedThenDown = (retryAfter: number, answerOther: (id: string, req: IncomingMessage, res: ServerResponse) => void) => {
    const limitedHeld = heldRequest();
    const downHeld = heldRequest();
    const server = createHttpServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      if (id === 'limited') limitedHeld.hold(() => res.writeHead(429, { 'retry-after': String(retryAfter), 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}'));
      else if (id === 'down') downHeld.hold(() => res.writeHead(502).end('bad gateway'));
      else answerOther(id, req, res);
    });
    /** A rate-limit pause begun, then the circuit opened (a breaker threshold of 1). */
    const openWithPause = async (client: UpstreamClient) => {
      const [limited, down] = [client.getAccount('limited'), client.getAccount('down')];
      await Promise.all([limitedHeld.arrived, downHeld.arrived]);
      limitedHeld.answer();
      await assert.rejects(limited, /rate limit/);
      downHeld.answer();
      await assert.rejects(down, /HTTP 502/);
      assert.equal(client.breakerState, 'open');
    };
    return { server, openWithPause };
  };

  /**
   * `server` on a free loopback port and a client of it with these options (over `https:` for `scheme: 'https'`),
   * handed to `use`; both closed after, the client first, however `use` ends.
   */
  const withLocalUpstream = async (
    server: NetServer | HttpServer,
    { scheme = 'http', ...options }: LocalClientOptions & { scheme?: 'http' | 'https' },
    use: (client: UpstreamClient) => Promise<void>,
  ): Promise<void> => {
    const upstream = await serve(server);
    try {
      const client = localClient(`${scheme}://127.0.0.1:${upstream.port}/2.0`, options);
      try {
        await use(client);
      } finally {
        await client.close().catch(() => undefined);
      }
    } finally {
      await upstream.close();
    }
  };

  it('counts a connection that never completes (a TLS handshake that hangs) toward opening the breaker', async (t) => {
    // Accepted, and never a word of TLS: each call's deadline passes, on the test's time, once its connection is in.
    const connected = happenings();
    const server = createNetServer(() => connected.push());
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { scheme: 'https', timeoutMs: 300, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 2 }, async (client) => {
        const code = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'];
        for (let i = 0; i < 2; i++) {
          const call = client.getAccount(`a${i}`);
          await connected.next();
          advance(300);
          await assert.rejects(call, (e: Error & { extensions?: Record<string, unknown> }) => code(e) === 'UPSTREAM_TIMEOUT');
        }
        assert.equal(client.breakerState, 'open');
        await assert.rejects(client.getAccount('b'), /circuit open/);
      });
    });
  });

  it('says a write that went out and got no answer before its deadline may have taken effect; a read says nothing of the kind', async (t) => {
    // Each request arrives and is never answered: its call's deadline passes, on the test's time, once it is in.
    const arrived = happenings();
    const server = createHttpServer(() => arrived.push());
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 300, maxInFlight: 2, maxAttempts: 1, breakerFailureThreshold: 100 }, async (client) => {
        const timedOut = (message: string) => (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.deepEqual([e.message, e.extensions?.['code']], [message, 'UPSTREAM_TIMEOUT']);
          return true;
        };
        const write = client.createAccount({ email: 'a@example.com' });
        await arrived.next();
        advance(300);
        await assert.rejects(write, timedOut('The upstream did not answer within 300 ms while creating an account: the request may have taken effect'));
        const read = client.getAccount('a');
        await arrived.next();
        advance(300);
        await assert.rejects(read, timedOut('The upstream did not answer within 300 ms while reading account "a"'));
      });
    });
  });

  it('stops reading an answer streamed past 32 MiB without a Content-Length, and closes its connection', async () => {
    // Chunked: the size is known only as it arrives.
    const { server, sent } = sixtyFourMiBAnswer({ 'content-type': 'application/json' }, Buffer.alloc(1024 * 1024, 0x20));
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
      await assert.rejects(client.getAccount('big'), /larger than 32 MiB/);
      assert.ok(sent.bytes < SIXTY_FOUR_MIB, `the server wrote all ${sent.bytes} bytes: the client read on`);
    });
  });

  it('reads an answer of exactly 32 MiB announced by its Content-Length, and refuses one announced a byte longer unread', async () => {
    const limit = 32 * 1024 * 1024;
    const account = Buffer.from(JSON.stringify({ id: 'a', created: 1, email_addresses: [], sources: [] }));
    // The account, padded with the whitespace JSON allows after it to the limit itself.
    const body = Buffer.concat([account, Buffer.alloc(limit - account.length, 0x20)]);
    const server = createHttpServer((req, res) => {
      if (req.url!.endsWith('/over')) return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(limit + 1) }).write('{');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(limit) }).end(body);
    });
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1 }, async (client) => {
      assert.equal((await client.getAccount('a')).id, 'a');
      await assert.rejects(client.getAccount('over'), /larger than 32 MiB/);
    });
  });

  describe('compressed answers', () => {
    const account = { id: 'a', created: 1, email_addresses: [], sources: [] };
    /** A server answering every request with `status`, this body and `content-encoding`, counting requests and what they accepted. */
    const compressingServer = (status: number, contentEncoding: string | string[], body: Buffer, headers: Record<string, string> = {}) => {
      const seen = { requests: 0, acceptEncoding: [] as (string | undefined)[] };
      const server = createHttpServer((req, res) => {
        seen.requests++;
        seen.acceptEncoding.push(req.headers['accept-encoding']);
        // Set apart: a list is sent as that many header lines, which writeHead's types do not allow this header.
        res.setHeader('content-encoding', contentEncoding);
        res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      });
      return { server, seen };
    };
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    const upstreamError = (message: RegExp, status: number) => (e: Error & { extensions?: Record<string, unknown> }) => {
      assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
      assert.match(e.message, message);
      assert.equal((e.extensions?.['upstream'] as { status: unknown }).status, status);
      return true;
    };

    it('asks for gzip, deflate or br, and reads an answer in each, in a list of them, or in none', async () => {
      const codings: [string | string[], Buffer][] = [
        ['gzip', gzipSync(json(account))],
        ['X-GZIP', gzipSync(json(account))],
        ['deflate', deflateSync(json(account))],
        // Without zlib's wrapper, as some servers send it (and browsers read it).
        ['deflate', deflateRawSync(json(account))],
        ['br', brotliCompressSync(json(account))],
        // Applied in the order listed: gzip first, then br, so undone br first.
        ['gzip, br', brotliCompressSync(gzipSync(json(account)))],
        // The same list in two header lines.
        [['gzip', 'br'], brotliCompressSync(gzipSync(json(account)))],
        ['identity', json(account)],
      ];
      for (const [coding, body] of codings) {
        const { server, seen } = compressingServer(200, coding, body);
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
          assert.equal((await client.getAccount('a')).id, 'a', String(coding));
          assert.deepEqual(seen.acceptEncoding, ['gzip, deflate, br']);
        });
      }
    });

    it('reads a compressed error answer: its API error code still says what failed', async () => {
      // The signature error (code 105) under a 400: read as the credentials refused, which only its body says.
      const { server, seen } = compressingServer(400, 'gzip', gzipSync(json({ type: 'error', value: 'Invalid signature', code: 105 })));
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
        await assert.rejects(client.getAccount('a'), /refused the gateway’s credentials/);
        assert.equal(seen.requests, 1);
      });
      // An empty body under a coding's header (a proxy's bare error kept it): read as empty, its status saying what failed.
      const empty = compressingServer(404, 'gzip', Buffer.alloc(0));
      await withLocalUpstream(empty.server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
        await assert.rejects(client.getAccount('a'), /^Not found: account "a"$/);
        assert.equal(empty.seen.requests, 1);
      });
    });

    it('fails an answer in a coding it cannot read, naming the coding, without retrying', async () => {
      for (const coding of ['zstd', 'compress', 'gzip, zstd']) {
        const { server, seen } = compressingServer(200, coding, Buffer.from('whatever'));
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
          await assert.rejects(client.getAccount('a'), upstreamError(/^The upstream answered in a content coding the gateway cannot read \((zstd|compress)\) while reading account "a"$/, 200));
          assert.equal(seen.requests, 1);
          // A POST: the write was carried out, whatever its answer.
          await assert.rejects(client.createAccount({ email: 'a@example.com' }), upstreamError(/cannot read \((zstd|compress)\) while creating an account: the request may have taken effect$/, 200));
          assert.equal(seen.requests, 2);
          // A fault of this answer, not the upstream down.
          assert.equal(client.breakerState, 'closed');
        });
      }
    });

    it('names a coding it cannot read cut short, in the error and the log line alike: the upstream writes it, of any length', async () => {
      const coding = `x-${'z'.repeat(5_000)}`;
      const { server } = compressingServer(200, coding, Buffer.from('whatever'));
      const lines: string[] = [];
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, logger: createLogger('debug', (line) => lines.push(line)) }, async (client) => {
        await assert.rejects(client.getAccount('a'), (e: Error) => {
          assert.match(e.message, /^The upstream answered in a content coding the gateway cannot read \(x-z{98}…\) while reading account "a"$/);
          return true;
        });
      });
      const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['message'] === 'upstream answered with an unexpected body');
      assert.equal(logged?.['reason'], `content coding x-${'z'.repeat(98)}… not supported`, lines.join('\n'));
    });

    it('does not name a coding it cannot read that quotes the secret or the signature, in the error or the log line', async () => {
      // An upstream echoing what it was sent, or its key, as a header's value: the words are the upstream's, as its error bodies' are.
      for (const quote of [(signature: string) => `x-${signature}`, (signature: string) => `x-${encodeURIComponent(signature)}`, () => 'x-secret']) {
        const server = createHttpServer((req, res) => {
          const sent = decodeURIComponent(/oauth_signature="([^"]+)"/.exec(req.headers.authorization ?? '')?.[1] ?? '');
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': quote(sent) });
          res.end('{}');
        });
        const lines: string[] = [];
        let said = '';
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, logger: createLogger('debug', (line) => lines.push(line)) }, async (client) => {
          await assert.rejects(client.getAccount('a'), (e: Error) => {
            said = e.message;
            assert.match(e.message, /^The upstream answered in a content coding the gateway cannot read \(.*\) while reading account "a"$/);
            return true;
          });
        });
        const logged = lines.find((line) => line.includes('upstream answered with an unexpected body'));
        assert.ok(logged !== undefined, lines.join('\n'));
        for (const text of [said, logged]) {
          assert.ok(!/secret|x-[a-z0-9%]{20}/i.test(text), `the coding is named with the secret or the signature in it: ${text}`);
        }
        // Said as withheld in words that read: the withholding note was set where the coding's name goes.
        assert.equal(said, 'The upstream answered in a content coding the gateway cannot read (its name not shown: it quotes the gateway’s credentials) while reading account "a"');
        assert.equal((JSON.parse(logged) as Record<string, unknown>)['reason'], 'content coding not supported (its name not shown: it quotes the gateway’s credentials)');
      }
      // An error answer's body unread for it: its debug line says why, without the coding's words either.
      const server = createHttpServer((req, res) => {
        res.writeHead(502, { 'content-encoding': `x-${/oauth_signature="([^"]+)"/.exec(req.headers.authorization ?? '')?.[1] ?? ''}` });
        res.end('{}');
      });
      const lines: string[] = [];
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, logger: createLogger('debug', (line) => lines.push(line)) }, async (client) => {
        await assert.rejects(client.getAccount('a'), /HTTP 502/);
      });
      const logged = lines.find((line) => line.includes('upstream error response'));
      assert.ok(logged !== undefined && !/x-[a-z0-9%]{20}/i.test(logged), `the unread body's reason names the signature: ${lines.join('\n')}`);
    });

    it('fails an answer that does not decode, naming its coding, without retrying', async () => {
      const gzipped = gzipSync(json(account));
      const answers: [string, Buffer][] = [
        ['gzip', Buffer.from('not gzip at all')],
        // Cut short: its last bytes (the checksum and size) missing.
        ['gzip', gzipped.subarray(0, gzipped.length - 4)],
        ['br', Buffer.from('not brotli either')],
        ['deflate', gzipped],
        // Cut short, with zlib's wrapper and without.
        ['deflate', deflateSync(json(account)).subarray(0, 10)],
        ['deflate', deflateRawSync(json(account)).subarray(0, 10)],
      ];
      for (const [coding, body] of answers) {
        const { server, seen } = compressingServer(200, coding, body);
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
          await assert.rejects(client.getAccount('a'), upstreamError(new RegExp(`^The upstream's ${coding} answer could not be decoded while reading account "a"$`), 200));
          assert.equal(seen.requests, 1);
          assert.equal(client.breakerState, 'closed');
        });
      }
    });

    it('lets an error answer whose body cannot be read say what failed by its status: a 429 still rate-limits, a 404 is not found', async () => {
      // Each body unreadable in its own way: not gzip, in a coding not read, inflating past the cap.
      const bodies: [string, Buffer][] = [
        ['gzip', Buffer.from('not gzip at all')],
        ['zstd', Buffer.from('whatever')],
        ['gzip', gzipSync(Buffer.alloc(40 * 1024 * 1024, 0x20))],
      ];
      for (const [coding, body] of bodies) {
        const limited = compressingServer(429, coding, body, { 'retry-after': '7' });
        await withLocalUpstream(limited.server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 1 }, async (client) => {
          await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'RATE_LIMITED', `${coding}: ${e.message}`);
            // The pause left when the call ends (it began as the 429's headers came): 7 s less the time its body
            // took to fail, which inflating 40 MB on a busy machine can make over a second.
            const retryAfter = e.extensions?.['retryAfter'];
            assert.ok(typeof retryAfter === 'number' && retryAfter >= 1 && retryAfter <= 7, `${coding}: retryAfter ${String(retryAfter)}, the pause left of Retry-After: 7`);
            return true;
          });
          assert.equal(client.breakerState, 'closed');
        });
        const missing = compressingServer(404, coding, body);
        const lines: string[] = [];
        await withLocalUpstream(missing.server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, logger: createLogger('debug', (line) => lines.push(line)) }, async (client) => {
          await assert.rejects(client.getAccount('a'), /^Not found: account "a"$/);
          assert.equal(missing.seen.requests, 1);
        });
        // Its debug line says why the body is not there.
        const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['message'] === 'upstream error response');
        assert.match(String(logged?.['unread']), /could not be decoded|not supported|larger than 32 MiB/, coding);
        // A redirect is still an address that moved, not an answer the gateway could not use (after which a
        // write would be said to have maybe taken effect).
        const moved = compressingServer(301, coding, body, { location: 'https://elsewhere.example.com/2.0/accounts' });
        await withLocalUpstream(moved.server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1 }, async (client) => {
          await assert.rejects(client.createAccount({ email: 'a@example.com' }), /^The upstream is no longer at the gateway’s configured address \(it redirects, HTTP 301\) while creating an account$/);
        });
      }
    });

    it('reads an empty body as empty whatever coding its header names (a proxy’s error page kept it): nothing to decode', async () => {
      for (const coding of ['gzip', 'br']) {
        const { server } = compressingServer(404, coding, Buffer.alloc(0));
        const lines: string[] = [];
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, logger: createLogger('debug', (line) => lines.push(line)) }, async (client) => {
          await assert.rejects(client.getAccount('a'), /^Not found: account "a"$/);
        });
        const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['message'] === 'upstream error response');
        assert.equal(logged?.['body'], '', coding);
        assert.equal(logged?.['unread'], undefined, `${coding}: ${String(logged?.['unread'])}`);
      }
    });

    it('stops reading a compressed answer past 32 MiB of its encoded bytes, though they decode to nothing', async () => {
      // Empty stored deflate blocks (raw deflate, 5 bytes each), streamed without end: 64 MiB of them decode to
      // no byte at all, so only the count of the bytes received stops the read.
      const emptyBlocks = Buffer.from('000000ffff'.repeat(209_715), 'hex');
      const { server, sent } = sixtyFourMiBAnswer({ 'content-type': 'application/json', 'content-encoding': 'deflate' }, emptyBlocks);
      await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
        await assert.rejects(client.getAccount('a'), upstreamError(/^The upstream answered with an unexpected body while reading account "a": The upstream's answer is larger than 32 MiB$/, 200));
        assert.ok(sent.bytes < SIXTY_FOUR_MIB, `the server wrote all ${sent.bytes} bytes: the client read on`);
      });
    });

    it('stops inflating an answer at 32 MiB: a small gzip "bomb" is not decoded into memory', async () => {
      // 40 MiB of spaces, ~40 KB gzipped.
      const bomb = gzipSync(Buffer.alloc(40 * 1024 * 1024, 0x20));
      assert.ok(bomb.length < 100 * 1024, 'the bomb is under 100 KiB gzipped');
      const { server, seen } = compressingServer(200, 'gzip', bomb);
      await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 3 }, async (client) => {
        await assert.rejects(client.getAccount('a'), upstreamError(/^The upstream answered with an unexpected body while reading account "a": The upstream's answer is larger than 32 MiB$/, 200));
        assert.equal(seen.requests, 1);
      });
    });

    it('destroys the decoder of an answer refused past 32 MiB as the call fails: a bomb is not inflated on', async () => {
      // 40 MiB of spaces, ~40 KB gzipped: refused at 32 MiB with 8 MiB still to inflate from what has arrived.
      const { server } = compressingServer(200, 'gzip', gzipSync(Buffer.alloc(40 * 1024 * 1024, 0x20)));
      await whileWatchingZlib('createGunzip', async (made) => {
        await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1 }, async (client) => {
          await assert.rejects(client.getAccount('a'), /larger than 32 MiB/);
          assert.equal(made.length, 1);
          // Left alone, it would go on inflating the rest into nothing, on the thread pool every zlib and file
          // system call of the process shares.
          assert.equal(made[0]!.destroyed, true);
        });
      });
    });

    it('destroys the decoder of a compressed answer whose call is cancelled mid-body', async () => {
      const gzipped = gzipSync(json(account));
      const server = createHttpServer((_req, res) => {
        // Its first half only, then nothing: the call waits for the rest.
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length });
        res.write(gzipped.subarray(0, gzipped.length / 2));
      });
      await whileWatchingZlib('createGunzip', async (made) => {
        await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1 }, async (client) => {
          const operation = new OperationScope('r-gone');
          const call = client.getAccount('a', operation);
          // Its decoder made as its headers came, its body under way.
          await eventually(() => made.length === 1);
          operation.abort(new Error('the caller left'));
          await assert.rejects(call, /cancelled/);
          assert.equal(made[0]!.destroyed, true);
        });
      });
    });
  });

  it('says the upstream answered with broken HTTP, not that it could not be reached, and does not retry', async () => {
    // A success whose chunked body breaks off at a chunk size that is not hexadecimal: its status came.
    const brokenChunks = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"id"\r\nZZ\r\n';
    // Headers past undici's limit (16 KiB by default): said so, as what an operator can look for.
    const tooLargeHeaders = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${Array.from({ length: 400 }, (_, i) => `x-filler-${i}: ${'y'.repeat(60)}\r\n`).join('')}\r\n`;
    const answers = [
      tooLargeHeaders,
      // No status line at all.
      'hello, this is not HTTP\r\n\r\n',
      // Both a length and chunked encoding (a request-smuggling shape): undici reports it as a length mismatch.
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      // An unsolicited 100 Continue before the answer: undici reports a socket error ("bad response").
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
      // An unsolicited 101 Switching Protocols, to a request that asked for no upgrade: a socket error too ("bad upgrade").
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      // A status under 100, which llhttp reads and undici then refuses with an assertion of its own.
      'HTTP/1.1 000 Nothing\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
      brokenChunks,
    ];
    for (const answer of answers) {
      let requests = 0;
      const server = createNetServer((socket) => {
        socket.once('data', () => {
          requests++;
          socket.end(answer);
        });
      });
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
        await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
          const detail = answer === tooLargeHeaders ? ' (its headers were too large)' : '';
          assert.equal(e.message, `The upstream's answer was not valid HTTP${detail} while reading account "a"`);
          // `extensions.upstream.status` is null only when no answer arrived at all.
          assert.equal((e.extensions?.['upstream'] as { status: unknown }).status, answer === brokenChunks ? 200 : null);
          return true;
        });
        assert.equal(requests, 1);
        // A fault of this answer, not a sign of the upstream being down: the breaker does not count it.
        assert.equal(client.breakerState, 'closed');
      });
    }
  });

  it('retries an answer cut short (its connection closed before the announced body was in) as a broken connection, saying so', async () => {
    let requests = 0;
    const server = createNetServer((socket) => {
      socket.once('data', () => {
        requests++;
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{"id":');
      });
    });
    // Seven broken answers in a row: the breaker is not what this is about.
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 100 }, async (client) => {
      // Each says what broke: its status came, its body did not (`extensions.upstream.status` is that status).
      const cutShort = (message: RegExp) => (error: Error & { extensions: Record<string, unknown> }) => message.test(error.message) && (error.extensions['upstream'] as { status: unknown }).status === 200;
      await assert.rejects(client.getAccount('a'), cutShort(/^The connection to the upstream broke during its answer \(HTTP 200\) while reading account "a"$/));
      assert.equal(requests, 3);
      // A POST is sent once, and may have been carried out: the message says so.
      await assert.rejects(client.createAccount({ email: 'a@example.com' }), cutShort(/during its answer \(HTTP 200\) while (creating an account|deleting connect token "t"): the request may have taken effect$/));
      assert.equal(requests, 4);
      // So may a DELETE, retried as it is.
      await assert.rejects(client.deleteConnectToken(null, 't'), cutShort(/during its answer \(HTTP 200\) while (creating an account|deleting connect token "t"): the request may have taken effect$/));
      assert.equal(requests, 7);
    });
  });

  it('takes a DELETE retried after its connection broke once the request went out, then answered 404, as done', async () => {
    let requests = 0;
    const server = createNetServer((socket) => {
      socket.once('data', () => {
        requests++;
        // The first attempt's connection breaks after the request arrived; the retry finds the token gone.
        if (requests === 1) socket.destroy();
        else socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 45\r\nconnection: close\r\n\r\n{"type":"error","value":"connect_token gone!"}');
      });
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100 }, async (client) => {
      assert.deepEqual(await client.deleteConnectToken(null, 't'), { success: true });
      assert.equal(requests, 2);
    });
  });

  /** What `broken(status, headers)` answered each call ends with: its status's error, as if its body had come whole. */
  const readsBrokenErrorAnswersByStatus = async (broken: (status: string, headers?: string) => string) => {
    const answers: string[] = [];
    let requests = 0;
    const server = createNetServer((socket) => {
      socket.once('data', () => {
        requests++;
        socket.end(answers.shift() ?? '');
      });
      socket.on('error', () => undefined);
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 100 }, async (client) => {
      const failsWith = (code: string, upstream: Record<string, unknown>, message: RegExp) => (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], code);
        assert.deepEqual(e.extensions?.['upstream'], upstream);
        assert.match(e.message, message);
        return true;
      };
      // A DELETE of a token that does not exist: its 404 is not a lost answer after which a retry's whole 404
      // would mean "deleted".
      answers.splice(0, Infinity, broken('404 Not Found'), 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      await assert.rejects(client.deleteConnectToken(null, 'never-was'), failsWith('NOT_FOUND', { status: 404, method: 'DELETE', path: '/connect_tokens/never-was' }, /^Not found: connect token "never-was"$/));
      assert.equal(requests, 1);
      // A refused write took no effect, whatever became of the refusal's body.
      answers.splice(0, Infinity, broken('400 Bad Request'));
      await assert.rejects(client.createAccount({ email: 'a@example.com' }), failsWith('BAD_USER_INPUT', { status: 400, method: 'POST', path: '/accounts' }, /^The upstream refused the request’s parameters as invalid while creating an account$/));
      assert.equal(requests, 2);
      // A redirect is an address that moved, said as one, whatever became of its body: not a broken connection
      // after which the write may have taken effect.
      answers.splice(0, Infinity, broken('301 Moved Permanently', 'location: https://elsewhere.example.com/2.0/accounts\r\n'));
      await assert.rejects(client.createAccount({ email: 'a@example.com' }), failsWith('UPSTREAM_ERROR', { status: 301, method: 'POST', path: '/accounts' }, /^The upstream is no longer at the gateway’s configured address \(it redirects, HTTP 301\) while creating an account$/));
      assert.equal(requests, 3);
      // A 429's Retry-After is kept to, not retried at once (its wait is past the deadline: no retry at all).
      answers.splice(0, Infinity, ...Array<string>(3).fill(broken('429 Too Many Requests', 'retry-after: 30\r\n')));
      await assert.rejects(client.getAccount('a'), failsWith('RATE_LIMITED', { status: 429, method: 'GET', path: '/accounts/a' }, /try again in 30 s$/));
      assert.equal(requests, 4);
    });
  };

  it('reads an error answer whose body broke (its connection closed, or its chunks did not parse) by its status: not as no answer at all, nor as one not HTTP', async () => {
    // Each answer's status line and headers arrive whole, then the connection closes before the body it announced,
    // or a chunk size comes that is not hexadecimal (llhttp's HPE_INVALID_CHUNK_SIZE: undici closes the connection).
    const cutShort = (status: string, headers = '') =>
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: 60\r\nconnection: close\r\n${headers}\r\n{"type":"error","val`;
    const brokenChunk = (status: string, headers = '') =>
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n${headers}\r\n5\r\n{"typ\r\nZZ\r\n`;
    for (const broken of [cutShort, brokenChunk]) await readsBrokenErrorAnswersByStatus(broken);
  });

  it('pauses the key on a 429’s headers, its body still to come, and ends a call whose 429 body stalls RATE_LIMITED, not timed out', async (t) => {
    const arrivals: string[] = [];
    const server = createHttpServer((req, res) => {
      arrivals.push(req.url!.split('/').pop()!);
      // Status and Retry-After, then a body that never comes whole.
      if (req.url!.endsWith('/limited')) res.writeHead(429, { 'retry-after': '30', 'content-type': 'application/json', 'content-length': '100' }).write('{"type":"er');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    // The client has read the 429's headers.
    const headersRead = happenings();
    await whileHeadersRead(429, headersRead.push, async () => {
      await onTestTime(t, async (advance) => {
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 2, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
          const limited = client.getAccount('limited');
          limited.catch(() => undefined); // checked below; should a check before fail, that failure is the one reported
          await headersRead.next();
          // The key is paused from then on: another call does not spend a request on another 429.
          await assert.rejects(client.getAccount('other'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED' && e.extensions['retryAfter'] === 30);
          assert.deepEqual(arrivals, ['limited']);
          advance(5_000);
          // Its status came: the rate limit, with what is left of its Retry-After (30 s less the 5 its body took),
          // not an upstream that did not answer.
          await assert.rejects(limited, (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'RATE_LIMITED');
            assert.equal(e.extensions['retryAfter'], 25);
            assert.deepEqual(e.extensions['upstream'], { status: 429, method: 'GET', path: '/accounts/limited' });
            return true;
          });
          assert.deepEqual(arrivals, ['limited']);
          assert.equal(client.breakerState, 'closed', 'a 429 is no sign of the upstream down');
        });
      });
    });
  });

  it('ends a call whose redirect’s body stalls as the address that moved, not as an upstream that did not answer', async (t) => {
    const server = createHttpServer((_req, res) => {
      // Status and Location, then a body that never comes whole.
      res.writeHead(301, { location: 'https://elsewhere.example.com/2.0/accounts/a', 'content-type': 'text/html', 'content-length': '100' }).write('<html>');
    });
    const headersRead = happenings();
    await whileHeadersRead(301, headersRead.push, async () => {
      await onTestTime(t, async (advance) => {
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
          const moved = client.getAccount('a');
          moved.catch(() => undefined); // checked below
          await headersRead.next();
          advance(5_000);
          await assert.rejects(moved, (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
            assert.match(e.message, /^The upstream is no longer at the gateway’s configured address \(it redirects, HTTP 301\) while reading account "a"$/);
            assert.deepEqual(e.extensions['upstream'], { status: 301, method: 'GET', path: '/accounts/a' });
            return true;
          });
          assert.equal(client.breakerState, 'closed', 'a redirect is no sign of the upstream down');
        });
      });
    });
  });

  it('ends a call whose success’s body stalls UPSTREAM_TIMEOUT with that success’s status: an answer came, and a write answered so was made', async (t) => {
    const server = createHttpServer((_req, res) => {
      // Status and headers, then a body that never comes whole.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }).write('{"success":');
    });
    const headersRead = happenings();
    await whileHeadersRead(200, headersRead.push, async () => {
      await onTestTime(t, async (advance) => {
        await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100 }, async (client) => {
          const update = client.updateAccount('a', { first_name: 'Ada' });
          update.catch(() => undefined); // checked below
          await headersRead.next();
          advance(5_000);
          await assert.rejects(update, (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'UPSTREAM_TIMEOUT');
            assert.deepEqual(e.extensions['upstream'], { status: 200, method: 'POST', path: '/accounts/a' });
            assert.equal(e.message, 'The upstream’s HTTP 200 answer did not arrive whole within 5000 ms while updating account "a": the request may have taken effect');
            return true;
          });
        });
      });
    });
  });

  it('says of a call whose success’s body stalls past its operation’s deadline or the shutdown that that answer did not arrive whole, as its own deadline does', async () => {
    const server = createHttpServer((_req, res) => {
      // Status and headers, then a body that never comes whole.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }).write('{"success":');
    });
    await withLocalUpstream(server, { timeoutMs: 60_000, maxInFlight: 2, maxAttempts: 3, breakerFailureThreshold: 100 }, async (client) => {
      const stoppers: Array<[OperationDeadlineExceeded, RegExp]> = [
        [new OperationDeadlineExceeded(1_000), /^The operation did not complete within 1000 ms while updating account "a" \(the upstream’s HTTP 200 answer had not arrived whole\): the request may have taken effect$/],
        [new OperationDeadlineExceeded(500, 'shutdown'), /^The gateway is shutting down: the operation was stopped at the end of the 500 ms it allows operations to finish while updating account "a" \(the upstream’s HTTP 200 answer had not arrived whole\): the request may have taken effect$/],
      ];
      for (const [stopper, said] of stoppers) {
        const headersRead = happenings();
        await whileHeadersRead(200, headersRead.push, async () => {
          const operation = new OperationScope('req-stalled', 10);
          const update = client.updateAccount('a', { first_name: 'Ada' }, operation);
          update.catch(() => undefined); // checked below
          await headersRead.next();
          operation.abort(stopper);
          await assert.rejects(update, (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'UPSTREAM_TIMEOUT');
            assert.deepEqual(e.extensions['upstream'], { status: 200, method: 'POST', path: '/accounts/a' });
            assert.match(e.message, said);
            return true;
          });
        });
      }
    });
  });

  it('ends a call whose caller leaves during a 502’s stalled body with that 502 at once: no backoff is waited for a retry that cannot go out', async () => {
    // The caller leaves once the 502's headers are in, its body still to come: the 502 is the attempt's answer, a
    // retry would be due, but the call was cancelled before its backoff began, so nothing would end that wait.
    const server = createHttpServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html', 'content-length': '100' }).write('<html>');
    });
    const asked: number[] = [];
    const waitTimer: WaitTimer = (callback, ms) => (asked.push(ms), realTimer(callback, ms));
    const headersRead = happenings();
    await whileHeadersRead(502, headersRead.push, async () => {
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100, waitTimer }, async (client) => {
        const operation = new OperationScope('r502');
        const call = client.getAccount('a', operation);
        call.catch(() => undefined); // checked below
        await headersRead.next();
        operation.abort();
        await assert.rejects(call, (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.message, 'The upstream failed with HTTP 502 while reading account "a"');
          assert.deepEqual(e.extensions?.['upstream'], { status: 502, method: 'GET', path: '/accounts/a' });
          return true;
        });
        assert.deepEqual(asked, [], 'it waited for a retry its caller had left');
      });
    });
  });

  it('does not open the breaker for calls that timed out queued behind its own, sent with too little time left', async (t) => {
    // The upstream answers every request in 600 ms; one connection, 2 s a call: of six calls at once, the
    // first three are answered at 0.6, 1.2 and 1.8 s, the fourth goes out at 1.8 s and is cut at 2, and the
    // rest never go out. None says the upstream is down. The time is the test's, so that a busy machine cannot
    // change which calls are answered: the client's clock (`performance.now`) moves on as each request
    // arrives (and by a microsecond at each reading, as time does between two events), and its calls' 2 s
    // deadlines (timers, mocked) pass once the fourth has arrived.
    await onTestTime(t, async (advance) => {
      let arrived = 0;
      const server = createHttpServer((req, res) => {
        if (++arrived <= 3) {
          advance(600);
          res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
        } else {
          advance(200); // 2 s since the calls began: their deadlines pass
        }
      });
      const lines: string[] = [];
      await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 1, logger: createLogger('info', (line) => lines.push(line)) }, async (client) => {
        const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => client.getAccount(`a${i}`)));
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? 'answered' : (r.reason as Error).message)),
          [
            ...Array<string>(3).fill('answered'),
            'The upstream did not answer within 2000 ms while reading account "a3"',
            // The upstream never had these: said so, rather than that it did not answer.
            ...[4, 5].map((i) => `No connection to the upstream became free or could be opened within 2000 ms while reading account "a${i}": the request never went out`),
          ],
        );
        assert.equal(arrived, 4, 'the fifth and sixth never went out');
        assert.equal(client.breakerState, 'closed', lines.join('\n'));
      });
    });
  });

  it('does not open the breaker for a call that went out late from its own queue and timed out, though no answer ended after it went out', async (t) => {
    // One connection, 10 s a call. The first call is answered at 6 s, and with a 404: nothing served, so the
    // "served recently" rule (CallVerdicts) excuses nothing. The second, queued behind it all along, goes out
    // with 4 s of its 10 left and is cut at 10 s: it spent most of its time waiting for one of the gateway's
    // own connections, while the upstream answered, which says nothing of the upstream being down.
    await onTestTime(t, async (advance) => {
      const slowArrived = happenings();
      const server = createHttpServer((req, res) => {
        if (req.url?.endsWith('/gone')) {
          advance(6_000);
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"type":"error","value":"no such account"}');
        } else slowArrived.push(); // never answered
      });
      await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 1 }, async (client) => {
        const gone = client.getAccount('gone');
        const slow = client.getAccount('slow');
        await assert.rejects(gone, (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'NOT_FOUND');
        await slowArrived.next();
        advance(4_000);
        await assert.rejects(slow, /did not answer within 10000 ms/);
        assert.equal(client.breakerState, 'closed');
      });
    });
  });

  it('gives back the claim of a call cancelled while it waited in the pool’s queue, its request never sent', async () => {
    // One connection, held by another call: the claimed call waits for it, and its caller leaves meanwhile.
    const slow = heldRequest();
    const server = createHttpServer((req, res) => {
      slow.hold(() => res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url)));
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1 }, async (client) => {
      const first = client.getAccount('first');
      await slow.arrived;
      let claims = 0;
      let givenBack = 0;
      const operation = new OperationScope('r-queued');
      const queued = client.getAccount('queued', operation, () => {
        claims++;
        return () => void givenBack++;
      });
      operation.abort();
      await assert.rejects(queued, /cancelled/);
      assert.deepEqual([claims, givenBack, operation.requests], [1, 1, 0]);
      slow.answer();
      assert.equal((await first).id, 'first');
    });
  });

  it('says in the log once that a pause began, not for each 429 during it, and nothing for a 429 that asks for none', async () => {
    // Two calls out at once, both refused for a minute, after one told to retry now.
    const held: ServerResponse[] = [];
    const bothArrived = deferred();
    const limited = (res: ServerResponse, seconds: number) =>
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(seconds) }).end('{"type":"error","value":"slow down"}');
    const server = createHttpServer((req, res) => {
      if (req.url!.endsWith('/now')) return void limited(res, 0);
      held.push(res);
      if (held.length === 2) bothArrived.resolve();
    });
    const lines: string[] = [];
    const paused = () => lines.filter((line) => line.includes('the upstream rate limit was reached: calls wait')).length;
    await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 2, maxAttempts: 1, logger: createLogger('warn', (line) => lines.push(line)) }, async (client) => {
      await assert.rejects(client.getAccount('now'), /rate limit/);
      assert.equal(paused(), 0, 'Retry-After: 0 pauses nothing');
      const calls = Promise.allSettled([client.getAccount('a', new OperationScope('req-a')), client.getAccount('b', new OperationScope('req-b'))]);
      await bothArrived.promise;
      for (const res of held) limited(res, 60);
      assert.deepEqual((await calls).map((r) => r.status), ['rejected', 'rejected']);
      assert.equal(paused(), 1, lines.join('\n'));
      // Said with how long calls wait, in seconds as the Retry-After gave it, and the request whose 429 began it.
      const line = JSON.parse(lines.find((text) => text.includes('the upstream rate limit was reached: calls wait'))!) as Record<string, unknown>;
      assert.equal(line['seconds'], 60);
      assert.ok(['req-a', 'req-b'].includes(line['requestId'] as string), `named by one of the calls refused: ${JSON.stringify(line)}`);
    });
  });

  it('keeps the longer pause when a shorter 429 arrives during it: a later Retry-After never shortens the key’s pause', async () => {
    // Two calls out at once, both refused: the first for a minute, then the second for a second.
    const held = new Map<string, ServerResponse>();
    const bothArrived = deferred();
    const server = createHttpServer((req, res) => {
      const id = (req.url ?? '').split('/').pop()!;
      if (id !== 'a' && id !== 'b') return void res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
      held.set(id, res);
      if (held.size === 2) bothArrived.resolve();
    });
    const refuse = (id: string, seconds: number) => held.get(id)!.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(seconds) }).end('{"type":"error","value":"slow down"}');
    await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 2, maxAttempts: 1 }, async (client) => {
      const limited = (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED';
      const a = client.getAccount('a');
      const b = client.getAccount('b');
      await bothArrived.promise;
      const aRead = deferred();
      await whileHeadersRead(429, aRead.resolve, async () => {
        refuse('a', 60);
        await aRead.promise;
      });
      refuse('b', 1);
      await assert.rejects(a, limited);
      await assert.rejects(b, limited);
      // The key is paused for the minute: a call made now fails at once, unsent, told to come back in a
      // minute, not in a second.
      await assert.rejects(client.getAccount('c'), (e: Error & { extensions?: Record<string, unknown> }) => limited(e) && (e.extensions?.['retryAfter'] as number) >= 59);
    });
  });

  it('opens the breaker for an upstream that stops answering under a standing queue, or answers only 1xx', async (t) => {
    for (const interim of [false, true]) {
      // Accepts, reads, never answers (or only `103 Early Hints`): each call freed from the queue goes out
      // with little of its time left, and the queue never empties; no answer came while they waited.
      // A request a connection: each cut closes its own.
      const arrived = happenings();
      const server = createNetServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => {
          if (interim) socket.write('HTTP/1.1 103 Early Hints\r\n\r\n');
          else arrived.push();
        });
      });
      // With a 103, the call counts as out once the client has read it: a cut before would not test it.
      await whileHeadersRead(103, arrived.push, async () => {
        await onTestTime(t, async (advance) => {
          await withLocalUpstream(server, { timeoutMs: 400, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 3 }, async (client) => {
            // A call every 100 ms while the circuit is closed, each with 400 ms: from the fifth on, as each is
            // made, the one made 400 ms before it is cut, and the next in the queue goes out.
            const calls: Array<Promise<unknown>> = [];
            for (let i = 0; i < 20; i++) {
              if (i >= 4) {
                await calls[i - 4];
                if (client.breakerState !== 'closed') break;
              }
              calls.push(client.getAccount(`a${i}`).catch(() => undefined));
              if (i === 0 || i >= 4) await arrived.next();
              advance(100);
            }
            advance(400); // what is left, cut
            await Promise.all(calls);
            assert.equal(client.breakerState, 'open', interim ? 'after 1xx only' : 'after no answer');
          });
        });
      });
    }
  });

  it('does not open the breaker for one resource hanging while the others are answered (one caller could pause every caller)', async (t) => {
    const hanging = happenings();
    const server = createHttpServer((req, res) => {
      if (req.url?.startsWith('/2.0/accounts/bad')) return void hanging.push(); // never answered
      res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 500, maxInFlight: 16, maxAttempts: 1, breakerFailureThreshold: 5 }, async (client) => {
        const bad = Array.from({ length: 5 }, (_, i) => client.getAccount(`bad${i}`));
        for (let i = 0; i < 5; i++) await hanging.next();
        // While they hang, another caller's call is answered whole.
        advance(100);
        assert.equal((await client.getAccount('good')).id, 'good');
        advance(400);
        assert.ok((await Promise.allSettled(bad)).every((r) => r.status === 'rejected'), 'every hanging call failed');
        assert.equal(client.breakerState, 'closed');
      });
      // With nothing answered at all, the same timeouts open it.
      const down = happenings();
      await withLocalUpstream(createHttpServer(() => down.push()), { timeoutMs: 300, maxInFlight: 16, maxAttempts: 1, breakerFailureThreshold: 5 }, async (client) => {
        const calls = Array.from({ length: 5 }, (_, i) => client.getAccount(`a${i}`));
        for (let i = 0; i < 5; i++) await down.next();
        advance(300);
        await Promise.allSettled(calls);
        assert.equal(client.breakerState, 'open');
      });
    });
  });

  it('does not open the breaker for one resource hanging while others are answered whole, though with an error (a 404), not a success', async (t) => {
    const hanging = happenings();
    const server = createHttpServer((req, res) => {
      if (req.url?.startsWith('/2.0/accounts/bad')) return void hanging.push(); // never answered
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"type":"error","value":"no such account"}');
    });
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 500, maxInFlight: 16, maxAttempts: 1, breakerFailureThreshold: 5 }, async (client) => {
        const bad = Array.from({ length: 5 }, (_, i) => client.getAccount(`bad${i}`));
        for (let i = 0; i < 5; i++) await hanging.next();
        // While they hang, the upstream answers another call whole: it is up, one resource is not.
        advance(100);
        await assert.rejects(client.getAccount('missing'), /Not found/);
        advance(400);
        assert.ok((await Promise.allSettled(bad)).every((r) => r.status === 'rejected'), 'every hanging call failed');
        assert.equal(client.breakerState, 'closed');
      });
    });
  });

  it('takes a call that went out with exactly half its time left and timed out, an answer ending whole while it was out, for one resource hanging: the breaker stays closed', async (t) => {
    // 'slow' is answered 404 at once, its body held; 'limited' 429 (a 1 s pause). 'hang', begun then with 2 s,
    // waits the pause out and goes out with exactly 1 s left, which is half: it had its time. 'slow' then ends
    // whole while 'hang' is out: the upstream answers, one resource hangs. (Taken for a call sent with under
    // half its time, 'hang' would be judged by answers begun since it began to wait, and 'slow' began before.)
    const slowBody = '{"type":"error","value":"no such account"}';
    let slowRest: (() => void) | undefined;
    const hangArrived = deferred();
    const server = createHttpServer((req, res) => {
      const id = req.url!.split('/').pop();
      if (id === 'slow') {
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': String(slowBody.length) }).write(slowBody.slice(0, 5));
        slowRest = () => res.end(slowBody.slice(5));
      } else if (id === 'limited') res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
      else if (id === 'hang') hangArrived.resolve(); // never answered
    });
    t.mock.method(Math, 'random', () => 0);
    const waits = manualTimer();
    const slowRead = happenings();
    await whileHeadersRead(404, slowRead.push, async () => {
      await onTestTime(
        t,
        async (advance) => {
          await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 1, waitTimer: waits.timer }, async (client) => {
            const slow = client.getAccount('slow');
            slow.catch(() => undefined); // checked below
            await slowRead.next();
            await assert.rejects(client.getAccount('limited'), /rate limit/);
            const hang = client.getAccount('hang');
            await waits.asked();
            assert.deepEqual(waits.waiting(), [1_000]);
            advance(1_000);
            waits.fireAll();
            await hangArrived.promise;
            advance(500);
            slowRest!();
            await assert.rejects(slow, /Not found/);
            advance(500);
            await assert.rejects(hang, /did not answer within 2000 ms/);
            assert.equal(client.breakerState, 'closed');
          });
        },
        { exact: true },
      );
    });
  });

  it('retries a request whose kept-alive connection was reset without opening the breaker', async () => {
    // Each connection's first request is answered; a later one is reset once written (a middlebox that forgot
    // the connection). The retry goes out on a fresh connection.
    const server = createNetServer((socket) => {
      let requests = 0;
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        requests++;
        if (requests > 1) return void socket.resetAndDestroy();
        const account = accountAt(/^\S+ (\S+)/.exec(chunk.toString('latin1'))?.[1]);
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${account.length}\r\nkeep-alive: timeout=30\r\n\r\n${account}`);
      });
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1 }, async (client) => {
      await client.getAccount('warm');
      assert.equal((await client.getAccount('again')).id, 'again');
      assert.equal(client.breakerState, 'closed');
    });
  });

  it('records a retried connection error when the call then fails for good another way (its operation out of requests)', async () => {
    // A closed port: every connection refused. The backoff is the test's timer's, ended once asked for: not slept.
    const waits = manualTimer();
    const client = localClient(`http://127.0.0.1:${await closedPort()}/2.0`, { timeoutMs: 2_000, maxInFlight: 2, maxAttempts: 3, breakerFailureThreshold: 1, waitTimer: waits.timer });
    try {
      const operation = new OperationScope('r', 2);
      // Sibling fields spend the operation's requests while the call waits to retry. Not at a set time: a
      // timer could fire while the first attempt is still out, and the call would then retry until its
      // attempts ran out, failing for good on a connection error. The refused attempt gives its request
      // back, then decides to retry and begins its backoff without awaiting anything in between: a microtask
      // queued as it gives the request back runs once the backoff has begun.
      const giveBack = operation.releaseRequest.bind(operation);
      let spent = false;
      operation.releaseRequest = () => {
        giveBack();
        queueMicrotask(() => (spent ||= operation.claimRequest() && operation.claimRequest()));
      };
      const failed = assert.rejects(client.getAccount('a', operation), /could not be reached/);
      failed.catch(() => undefined); // checked below; should a check before fail, that failure is the one reported
      await eventually(() => waits.waiting().length === 1);
      waits.fireAll();
      await failed;
      assert.ok(spent, 'the siblings spent the operation’s two requests');
      assert.equal(client.breakerState, 'open');
    } finally {
      await client.close().catch(() => undefined);
    }
  });

  it('says a DELETE may have taken effect when, after a 502, its retry is refused by a rate-limit pause; the breaker counts the 502', async () => {
    // The DELETE is answered 502 once the GET's 429 has paused the key.
    const deletion = heldRequest();
    const server = createHttpServer((req, res) => {
      if (req.method === 'DELETE') deletion.hold(() => res.writeHead(502).end('bad gateway'));
      else res.writeHead(429, { 'retry-after': '60', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
    });
    await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 4, retryBaseDelayMs: 1, breakerFailureThreshold: 1 }, async (client) => {
      const deleted = client.deleteAccount('a');
      await deletion.arrived;
      await client.getAccount('b').catch(() => undefined); // its 429 pauses the key for 60 s
      assert.equal(client.breakerState, 'closed');
      deletion.answer();
      await assert.rejects(deleted, /HTTP 502 while deleting account "a": the request may have taken effect$/);
      assert.equal(client.breakerState, 'open');
    });
  });

  it('says a write whose connection failed before it went out (a TLS handshake refused) could not be reached, never that it may have taken effect', async () => {
    // A plain HTTP server behind an https: base URL: the TLS handshake fails before any request is written.
    const server = createNetServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'));
    await withLocalUpstream(server, { scheme: 'https', timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100 }, async (client) => {
      for (const write of [() => client.createAccount({ email: 'a@example.com' }), () => client.deleteConnectToken(null, 't')]) {
        await assert.rejects(write(), (e: Error) => {
          assert.match(e.message, /^The TLS handshake with the upstream failed while (creating an account|deleting connect token "t")$/);
          return true;
        });
      }
    });
  });

  it('takes an upstream TLS certificate it cannot verify for a configuration fault: said so, not retried, not counted by the breaker, logged once at error with its code', async () => {
    // Self-signed, so trusted by no process: its refusal needs no authority of the tests' (the others are
    // test/gateway/https-upstream.test.ts's, whose gateway trusts one).
    const tls = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url)));
    const server = createHttpsServer({ key: tls('key.pem'), cert: tls('self-signed.pem') }, (req, res) => res.end(accountAt(req.url)));
    let connections = 0;
    server.on('connection', () => connections++);
    const lines: string[] = [];
    const logger = createLogger('warn', (line) => lines.push(line));
    // Never answered, the upstream would open the circuit at its first counted failure.
    await withLocalUpstream(server, { scheme: 'https', timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1, logger }, async (client) => {
      for (const call of [() => client.getAccount('a'), () => client.getAccount('b'), () => client.deleteAccount('c')]) {
        await assert.rejects(call(), (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
          assert.match(e.message, /^The upstream’s TLS certificate could not be verified, so the gateway refused the connection while (reading|deleting) account "[abc]"$/);
          return true;
        });
      }
      // The same on every attempt: one connection a call, where a retried GET or DELETE makes three.
      assert.equal(connections, 3);
      assert.equal(client.breakerState, 'closed');
    });
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    // The two calls after the first left unsaid, and said so as the client closed.
    assert.deepEqual(entries.map((e) => [e['level'], e['code'], e['sinceLastLine']]), [
      ['error', 'DEPTH_ZERO_SELF_SIGNED_CERT', undefined],
      ['error', undefined, 2],
    ]);
    // The reason is Node's own wording: Node 24 adds a hint to it (`self-signed certificate; if the root CA is
    // installed locally, try running Node.js with --use-system-ca`), which holds there and is kept.
    assert.match(String(entries[0]!['reason']), /^self-signed certificate(;|$)/);
    assert.equal(entries[1]!['reason'], undefined);
    assert.match(String(entries[0]!['message']), /^the upstream’s TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT\): .*NODE_EXTRA_CA_CERTS/);
    assert.deepEqual([entries[1]!['message'], entries[1]!['fault']], ['an upstream configuration fault left unsaid', entries[0]!['message']]);
  });

  describe('behind an egress proxy', () => {
    const CREDENTIALS = `Basic ${Buffer.from('proxy-user:proxy-pass').toString('base64')}`;
    /** A CONNECT proxy that leads `upstream.test:80` to `server`, and a client of `http://upstream.test/2.0` through it. */
    const throughProxy = async (server: HttpServer, options: Partial<LocalClientOptions> = {}) => {
      const upstream = await serve(server);
      const proxy = await startConnectProxy((authority) => (authority === 'upstream.test:80' ? upstream.port : undefined));
      closers.add(() => proxy.close());
      const shown = proxy.hostPort;
      const client = localClient('http://upstream.test/2.0', { timeoutMs: 5_000, maxInFlight: 4, retryBaseDelayMs: 1, ...options, proxy: { origin: proxy.url, authorization: CREDENTIALS, variable: 'HTTP_PROXY', shown } });
      return { proxy, client };
    };
    /**
     * A client through a proxy answering every CONNECT `status`, its `warn` lines kept, and the requests its
     * upstream got (none, as no tunnel opens).
     */
    const throughRefusingProxy = async (status: number) => {
      const upstream = { requests: 0 };
      const server = createHttpServer((req, res) => {
        upstream.requests++;
        res.end(accountAt(req.url));
      });
      const lines: string[] = [];
      const { proxy, client } = await throughProxy(server, { maxAttempts: 3, breakerFailureThreshold: 1, logger: createLogger('warn', (line) => lines.push(line)) });
      await proxy.refuseWith(status);
      return { proxy, client, lines, upstream };
    };

    it('sends every call down a CONNECT tunnel with the proxy’s credentials, signed for the upstream’s own URL, tunnels kept alive', async () => {
      const seen: Array<{ host: string | undefined; authorization: string | undefined; proxyAuthorization: string | undefined }> = [];
      const server = createHttpServer((req, res) => {
        seen.push({ host: req.headers.host, authorization: req.headers.authorization, proxyAuthorization: req.headers['proxy-authorization'] });
        res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
      });
      const { proxy, client } = await throughProxy(server);
      for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal((await client.getAccount(id)).id, id);
      assert.equal(seen.length, 5);
      // The upstream sees the request as sent to it directly: its own Host, the OAuth header, nothing of the proxy's.
      assert.ok(seen.every((request) => request.host === 'upstream.test' && request.authorization?.startsWith('OAuth ') && request.proxyAuthorization === undefined), 'the upstream saw its own Host and the OAuth header, no proxy credentials');
      // Kept alive: calls one after another reuse their tunnel (a second at most, opened while the first ends its answer).
      assert.ok(proxy.counts.tunnels >= 1 && proxy.counts.tunnels <= 2, `${proxy.counts.tunnels} tunnels for 5 calls`);
      assert.equal(proxy.counts.connects, proxy.counts.tunnels);
      assert.deepEqual(new Set(proxy.authorizations), new Set([CREDENTIALS]));
    });

    for (const status of [407, 403]) {
      it(`takes a tunnel the proxy refuses (HTTP ${status}) for a configuration fault, not the call's cancellation: said so, not retried, not counted by the breaker, logged once at error`, async () => {
        const { proxy, client, lines, upstream } = await throughRefusingProxy(status);
        for (const [call, action] of [[() => client.getAccount('a'), 'reading account "a"'], [() => client.getAccount('b'), 'reading account "b"'], [() => client.deleteAccount('c'), 'deleting account "c"']] as const) {
          await assert.rejects(call(), (e: Error & { extensions?: Record<string, unknown> }) => {
            assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
            assert.equal(e.message, `The egress proxy ${proxy.hostPort} refused to open a tunnel to the upstream (HTTP ${status}) while ${action}`);
            return true;
          });
        }
        // The same on every attempt: one CONNECT a call, where a retried GET or DELETE makes three.
        assert.equal(proxy.counts.connects, 3);
        assert.equal(upstream.requests, 0);
        assert.equal(client.breakerState, 'closed');
        const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.deepEqual(entries.map((e) => [e['level'], e['status'], e['proxy']]), [['error', status, proxy.hostPort]]);
        assert.match(String(entries[0]!['message']), new RegExp(`^the egress proxy refused to open a tunnel to the upstream \\(HTTP ${status}\\): ${status === 407 ? '.*HTTP_PROXY' : '.*CONNECT'}`));
        assert.ok(lines.every((line) => !line.includes('proxy-pass') && !line.includes(CREDENTIALS.slice(6))), 'no line holds the proxy’s credentials');
      });
    }

    it('takes a proxy that answers a tunnel 5xx (500 the least) for the upstream out of reach through it: retried, counted by the breaker, said so', async () => {
      for (const status of [500, 502, 504]) {
        const { proxy, client, lines, upstream } = await throughRefusingProxy(status);
        await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
          assert.equal(e.message, `The upstream could not be reached through the egress proxy ${proxy.hostPort} (it answered the tunnel HTTP ${status}) while reading account "a"`);
          return true;
        });
        // Retried as a connection that failed (three CONNECTs), and the upstream's failure for the breaker.
        assert.equal(proxy.counts.connects, 3);
        assert.equal(upstream.requests, 0);
        assert.equal(client.breakerState, 'open');
        const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.ok(entries.some((e) => e['level'] === 'warn' && e['message'] === 'egress proxy connection failed' && e['status'] === status && e['proxy'] === proxy.hostPort), lines.join('\n'));
      }
    });

    it('takes a CONNECT the proxy closes unanswered for a connection that failed: retried, said so, not connected to again in a loop until the deadline', async () => {
      // A proxy at its connection limit, or refusing by closing: undici's code for it (UND_ERR_SOCKET) had its
      // client connect again at once, the request kept, hundreds of times a second until the call's deadline.
      let connections = 0;
      const proxy = createNetServer((socket) => {
        connections++;
        socket.once('data', () => socket.end());
      });
      const { port } = await serve(proxy);
      const lines: string[] = [];
      const client = localClient('http://upstream.test/2.0', {
        timeoutMs: 30_000, maxInFlight: 4, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 100, logger: createLogger('warn', (line) => lines.push(line)),
        proxy: { origin: `http://127.0.0.1:${port}`, authorization: CREDENTIALS, variable: 'HTTP_PROXY', shown: `127.0.0.1:${port}` },
      });
      await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        assert.equal(e.message, `The egress proxy 127.0.0.1:${port} closed the connection without answering the request for a tunnel to the upstream while reading account "a"`);
        return true;
      });
      // One connection an attempt.
      assert.equal(connections, 3);
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(entries.map((e) => [e['message'], e['code'], e['proxy']]), [['egress proxy connection failed', 'TUNNEL_CLOSED_UNANSWERED', `127.0.0.1:${port}`]]);
    });

    it('retries a call whose tunnel the proxy did not open in time as a connection that could not be opened, and says so', async () => {
      // What each request waiting on a CONNECT given up meets: undici's headers timeout, before it went out.
      let dispatches = 0;
      const tunnelGivenUp = fakeDispatcher((_options, handler) => {
        dispatches++;
        queueMicrotask(() => handler.onResponseError?.(undefined as never, new errors.HeadersTimeoutError()));
      });
      const client = localClient('http://upstream.test/2.0', {
        timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, retryBaseDelayMs: 1, dispatcher: tunnelGivenUp,
        proxy: { origin: 'http://127.0.0.1:3128', authorization: CREDENTIALS, variable: 'HTTP_PROXY', shown: '127.0.0.1:3128' },
      });
      await assert.rejects(client.deleteAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        // Never sent: nothing of the delete may have taken effect.
        assert.equal(e.message, 'The egress proxy 127.0.0.1:3128 did not open a tunnel to the upstream in time while deleting account "a"');
        return true;
      });
      assert.equal(dispatches, 3);
    });

    it('says a certificate refused behind an https:// proxy is the proxy’s, for an https:// upstream too (its TLS comes after the tunnel), not the upstream’s', async () => {
      const tls = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url)));
      // Self-signed, so trusted by no process; never asked to CONNECT, as the handshake fails first.
      const server = createHttpsServer({ key: tls('key.pem'), cert: tls('self-signed.pem') });
      let connections = 0;
      server.on('connection', () => connections++);
      const { port } = await serve(server);
      const lines: string[] = [];
      const proxy = { origin: `https://localhost:${port}`, authorization: undefined, variable: 'HTTPS_PROXY', shown: `localhost:${port}` };
      for (const [baseUrl, peer] of [['http://upstream.test/2.0', `the egress proxy localhost:${port}`], ['https://upstream.test/2.0', `the egress proxy localhost:${port}`]] as const) {
        const client = localClient(baseUrl, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 1, proxy, logger: createLogger('warn', (line) => lines.push(line)) });
        await assert.rejects(client.getAccount('a'), (e: Error) => {
          assert.equal(e.message, `The TLS certificate of ${peer} could not be verified, so the gateway refused the connection while reading account "a"`);
          return true;
        });
        assert.equal(client.breakerState, 'closed');
      }
      // Not retried: one handshake a call.
      assert.equal(connections, 2);
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(entries.map((e) => [e['level'], e['code'], e['proxy']]), [['error', 'DEPTH_ZERO_SELF_SIGNED_CERT', `localhost:${port}`], ['error', 'DEPTH_ZERO_SELF_SIGNED_CERT', `localhost:${port}`]]);
      assert.match(String(entries[0]!['message']), new RegExp(`^the TLS certificate of the egress proxy localhost:${port} was refused \\(DEPTH_ZERO_SELF_SIGNED_CERT\\): .*HTTPS_PROXY`));
    });

    it('says a proxy that cannot be reached could not be, naming it, and retries as for any connection that failed', async () => {
      const port = await closedPort();
      const lines: string[] = [];
      const waits: number[] = [];
      const waitTimer: WaitTimer = (callback, ms) => (waits.push(ms), realTimer(callback, ms));
      const client = localClient('http://upstream.test/2.0', {
        timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, retryBaseDelayMs: 1, waitTimer, logger: createLogger('warn', (line) => lines.push(line)),
        proxy: { origin: `http://127.0.0.1:${port}`, authorization: CREDENTIALS, variable: 'HTTP_PROXY', shown: `127.0.0.1:${port}` },
      });
      await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        assert.equal(e.message, `The egress proxy 127.0.0.1:${port} could not be reached while reading account "a"`);
        return true;
      });
      // Three attempts: two waits between them.
      assert.equal(waits.length, 2);
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(entries.map((e) => [e['level'], e['message'], e['code'], e['proxy']]), [['warn', 'egress proxy connection failed', 'ECONNREFUSED', `127.0.0.1:${port}`]]);
    });
  });

  it('lets a call through as the half-open probe in place of one lost to a hanging connection, once the cooldown has passed', async (t) => {
    const hanging = happenings();
    const server = createHttpServer((req, res) => {
      if (req.url!.includes('/hang')) hanging.push();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 1_000, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 200 }, async (client) => {
        const first = client.getAccount('hang-1');
        await hanging.next();
        advance(1_000);
        await assert.rejects(first, /did not answer/);
        assert.equal(client.breakerState, 'open');
        advance(250);
        const lost = client.getAccount('hang-2'); // the probe, which will hang
        lost.catch(() => undefined); // checked below; should a check before fail, that failure is the one reported
        await hanging.next();
        advance(50);
        await assert.rejects(client.getAccount('early'), /circuit half-open/);
        advance(200);
        assert.equal((await client.getAccount('recovered')).id, 'recovered');
        assert.equal(client.breakerState, 'closed');
        advance(750); // the lost probe's deadline
        await assert.rejects(lost, /did not answer/);
        assert.equal(client.breakerState, 'closed', 'the lost probe’s timeout does not reopen it: the upstream answered after it went out');
      });
    });
  });

  it('does not let a probe given up on open the circuit again once it has closed, when its hung connection is reset', async () => {
    const hung = happenings<ServerResponse>();
    let failing = true;
    const server = createHttpServer((req, res) => {
      if (req.url!.includes('/hang')) return void hung.push(res);
      if (failing) return void res.writeHead(502).end('bad gateway');
      res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    // The cooldowns pass on the test's clock; the retries' backoffs (1 ms at most) are waited out.
    await onTestTime(undefined, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 16, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 2, breakerCooldownMs: 100 }, async (client) => {
        /** Resets the connection of the next request to hang, once it has arrived. */
        const resetNextHung = async () => (await hung.next()).socket!.destroy();
        // Two calls failing for good open the circuit (a call's retried 502s count once).
        for (const id of ['down-1', 'down-2']) await assert.rejects(client.getAccount(id), /HTTP 502/);
        assert.equal(client.breakerState, 'open');
        failing = false;
        advance(120);
        const lost = client.getAccount('hang'); // the probe, which hangs
        lost.catch(() => undefined); // checked below; should a check before fail, that failure is the one reported
        const lostRequest = await hung.next();
        advance(120);
        assert.equal((await client.getAccount('recovered')).id, 'recovered', 'the probe in its place');
        assert.equal(client.breakerState, 'closed');
        // The lost probe's connection is reset, and its retries' too: one call's connection failures, counted
        // once (as any call's), not one for the probe it was and one more for the call.
        lostRequest.socket!.destroy();
        await resetNextHung();
        await resetNextHung();
        await assert.rejects(lost, /connection to the upstream broke/);
        assert.equal(client.breakerState, 'closed');
      });
    });
  });

  it('says of a call whose request never went out (waiting for a connection) that it never did, and of a write that it did not take effect', async (t) => {
    await onTestTime(t, async (advance) => {
      const arrived: string[] = [];
      const heldArrived = deferred();
      const server = createHttpServer((req) => {
        arrived.push(`${req.method} ${req.url}`);
        if (req.url!.endsWith('/hanging')) advance(300); // its deadline, and the queued write's, pass
        if (req.url!.endsWith('/held')) heldArrived.resolve();
      });
      await withLocalUpstream(server, { timeoutMs: 300, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 100 }, async (client) => {
        // One connection, held by a call that is never answered: the write waits behind it, by its own deadline…
        const hanging = client.getAccount('hanging');
        const write = client.createAccount({ email: 'a@example.com' });
        await assert.rejects(hanging, /The upstream did not answer within 300 ms while reading account "hanging"$/);
        await assert.rejects(write, /No connection to the upstream became free or could be opened within 300 ms while creating an account: the request never went out, so it did not take effect$/);
        // …and by its operation's.
        const operation = new OperationScope('req-8', 10);
        const held = client.getAccount('held');
        await heldArrived.promise;
        const cut = client.deleteAccount('0123456789abcdef01234567', operation);
        operation.abort(new OperationDeadlineExceeded(100));
        await assert.rejects(cut, /did not complete within 100 ms while deleting account "0123456789abcdef01234567" \(the request never went out: no connection to the upstream became free or could be opened in time, so it did not take effect\)$/);
        advance(300);
        await assert.rejects(held, /did not answer within 300 ms/);
        assert.deepEqual(arrived, ['GET /2.0/accounts/hanging', 'GET /2.0/accounts/held']);
      });
    });
  });

  it('logs a call that timed out with its path, whose time ran out, whether it went out and how long it queued; each kind once a second at most', async (t) => {
    // The client's clock (`performance.now`) is the test's, moved on by hand, and exactly: how long a call
    // queued, and whether a second has passed, are then known exactly, however loaded the machine. The calls'
    // deadlines (timers, mocked) pass with it.
    await onTestTime(
      t,
      async (advance) => {
        // Answers only /ok. The first call, gone out, waits out its time: on the clock, it queued for none of it.
        const cutArrived = deferred();
        const stoppedArrived = deferred();
        const server = createHttpServer((req, res) => {
          if (req.url!.endsWith('/ok')) res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
          else if (req.url!.endsWith('/hanging')) advance(300);
          else if (req.url!.endsWith('/cut')) cutArrived.resolve();
          else if (req.url!.endsWith('/stopped')) stoppedArrived.resolve();
        });
        const lines: string[] = [];
        await withLocalUpstream(server, { timeoutMs: 300, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 100, logger: createLogger('warn', (line) => lines.push(line)) }, async (client) => {
          const logged = (message: string) => lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === message);
          // One connection: the second and third calls wait behind the first, and time out with it, unsaid.
          const calls = [client.getAccount('hanging'), client.getAccount('queued'), client.getAccount('queued-too')];
          await assert.rejects(calls[0]!, /The upstream did not answer within 300 ms while reading account "hanging"$/);
          for (const call of calls.slice(1)) await assert.rejects(call, /within 300 ms while reading account "queued(-too)?": the request never went out$/);
          const [first, ...others] = logged('upstream call timed out');
          assert.deepEqual(others, []);
          assert.deepEqual(first, { ...first, path: '/accounts/hanging', method: 'GET', timeout: 'UPSTREAM_TIMEOUT_MS', sent: true, queuedMs: 0, countedByBreaker: true });
          // Another kind (cut by its operation's deadline, not counted) has its own line at once.
          const operation = new OperationScope('req-7', 10);
          const call = client.getAccount('cut', operation);
          await cutArrived.promise;
          operation.abort(new OperationDeadlineExceeded(100));
          await assert.rejects(call, /did not complete within 100 ms/);
          const cut = logged('upstream call timed out')[1];
          assert.equal(cut!['sinceLastLine'], undefined);
          assert.deepEqual(cut, { ...cut, path: '/accounts/cut', requestId: 'req-7', timeout: 'OPERATION_TIMEOUT_MS', countedByBreaker: false });
          // Cut by the end of the shutdown's grace period: its line names that setting, not the operation's deadline.
          const stopping = new OperationScope('req-8', 10);
          const stopped = client.getAccount('stopped', stopping);
          await stoppedArrived.promise;
          stopping.abort(new OperationDeadlineExceeded(200, 'shutdown'));
          await assert.rejects(stopped, /shutting down/);
          const stop = logged('upstream call timed out')[2];
          assert.deepEqual(stop, { ...stop, path: '/accounts/stopped', requestId: 'req-8', timeout: 'SHUTDOWN_GRACE_MS', countedByBreaker: false });
          // Unseen for a second, a kind's calls left unsaid are said at the next answer.
          advance(1_000);
          await client.getAccount('ok');
          assert.deepEqual(
            logged('upstream call failures left unsaid').map((line) => [line['failure'], line['sinceLastLine']]),
            [['upstream call timed out (UPSTREAM_TIMEOUT_MS, counted by the breaker)', 2]],
          );
        });
      },
      { exact: true },
    );
  });

  /**
   * An upstream for the breaker's queued trials: ids `answered` names are answered at once, every other request
   * is held for the test (`nextArrival`: 'reset' to reset when the test says, the rest never answered); the
   * retry's backoff is the test's to end (`waits`), asked for once the reset has been seen (`backoffAsked`).
   */
  function queuedTrialUpstream(answered: (id: string) => boolean) {
    const arrived = happenings<{ id: string; req: IncomingMessage }>();
    const arrivals: string[] = [];
    const server = createHttpServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      arrivals.push(id);
      if (answered(id)) res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
      else arrived.push({ id, req });
    });
    const waits = manualTimer();
    const backoffAsked = deferred();
    const waitTimer: WaitTimer = (callback, ms) => (backoffAsked.resolve(), waits.timer(callback, ms));
    /** The next request to reach the upstream, which must be `id`'s. */
    const nextArrival = async (id: string) => {
      const arrival = await arrived.next();
      assert.equal(arrival.id, id);
      return arrival.req;
    };
    return { server, arrivals, waits, backoffAsked, waitTimer, nextArrival };
  }

  it('does not let a half-open trial that began with under half its time left (held back in the queue) reopen the circuit by timing out', async (t) => {
    const { server, waits, backoffAsked, waitTimer, nextArrival } = queuedTrialUpstream((id) => id === 'ok');
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 3_000, maxInFlight: 1, maxAttempts: 2, breakerFailureThreshold: 1, breakerCooldownMs: 300, waitTimer }, async (client) => {
        const reset = client.getAccount('reset'); // reset at 900 ms; its retry queues and times out at 3 s: the circuit opens
        const resetRequest = await nextArrival('reset');
        advance(600);
        const hang = client.getAccount('hang'); // out at 900 ms, hangs until 3.6 s
        advance(50);
        const late = client.getAccount('late'); // its turn at 3.6 s, after the cooldown, with 50 ms left
        advance(250);
        resetRequest.socket.destroy(); // after the request went out
        await backoffAsked.promise;
        await nextArrival('hang');
        waits.fireAll(); // the retry queues behind 'late'
        advance(2_100);
        await assert.rejects(reset, /did not answer within/);
        assert.equal(client.breakerState, 'open');
        advance(600);
        await assert.rejects(hang, /did not answer within/);
        await nextArrival('late'); // the trial
        advance(50);
        await assert.rejects(late, /did not answer within/);
        assert.equal((await client.getAccount('ok')).id, 'ok');
        assert.equal(client.breakerState, 'closed');
      });
    });
  });

  it('lets a half-open trial that began with exactly half its time left reopen the circuit by timing out: only one with under half is let off', async (t) => {
    // 'limited' is answered 429 (a 1 s pause), then 'down' 502, which opens the circuit; 'trial', begun then with
    // 2 s, waits the pause out, and is let through as the trial once it is over, with exactly 1 s of its 2 left.
    // It goes out at once and hangs, nothing else answered: an upstream still down, as far as it can tell.
    const trialArrived = deferred();
    const { server, openWithPause } = pausedThenDown(1, (id) => {
      if (id === 'trial') trialArrived.resolve(); // never answered
    });
    // No jitter: the pause is waited out for exactly its length, on the test's timer.
    t.mock.method(Math, 'random', () => 0);
    const waits = manualTimer();
    await onTestTime(
      t,
      async (advance) => {
        await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 100, waitTimer: waits.timer }, async (client) => {
          await openWithPause(client);
          const trial = client.getAccount('trial');
          await waits.asked();
          assert.deepEqual(waits.waiting(), [1_000]);
          advance(1_000);
          waits.fireAll();
          await trialArrived.promise;
          assert.equal(client.breakerState, 'half-open');
          advance(1_000);
          await assert.rejects(trial, /did not answer within 2000 ms/);
          assert.equal(client.breakerState, 'open');
        });
      },
      { exact: true },
    );
  });

  it('holds back a half-open probe given up on while it waited for a connection: only the probe in its place goes out', async (t) => {
    const { server, arrivals, waits, backoffAsked, waitTimer, nextArrival } = queuedTrialUpstream((id) => id.startsWith('probe'));
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 3_000, maxInFlight: 1, maxAttempts: 2, breakerFailureThreshold: 1, breakerCooldownMs: 200, waitTimer }, async (client) => {
        const reset = client.getAccount('reset'); // reset at 900 ms; its retry queues and times out at 3 s: the circuit opens
        const resetRequest = await nextArrival('reset');
        advance(600);
        const hang = client.getAccount('hang'); // out at 900 ms, holds the one connection until 3.6 s
        advance(300);
        resetRequest.socket.destroy(); // after the request went out
        await backoffAsked.promise;
        await nextArrival('hang');
        waits.fireAll(); // the retry queues behind 'hang'
        advance(2_100);
        await assert.rejects(reset, /did not answer within/);
        assert.equal(client.breakerState, 'open');
        advance(250);
        const givenUp = client.getAccount('probe-1'); // the half-open trial, queued behind 'hang'
        givenUp.catch(() => undefined); // checked below; should a check before fail, that failure is the one reported
        advance(250);
        const inItsPlace = client.getAccount('probe-2'); // the trial in place of the first, out longer than the cooldown
        inItsPlace.catch(() => undefined); // checked below, as the first
        advance(100);
        await assert.rejects(hang, /did not answer within/); // the connection is free: the queued trials' turns come
        await assert.rejects(givenUp, /one trial call is checking whether it has recovered/);
        assert.equal((await inItsPlace).id, 'probe-2');
        assert.equal(client.breakerState, 'closed');
        assert.deepEqual(arrivals, ['reset', 'hang', 'probe-2'], 'one trial went out, not two');
      });
    });
  });

  it('says a write may have taken effect when its answer could not be used: too large, not valid HTTP once sent, or a success not understood', async () => {
    const answers: Record<string, (res: ServerResponse) => void> = {
      large: (res) => void res.writeHead(500, { 'content-length': String(40 * 1024 * 1024) }).write('x'),
      broken: (res) => void res.socket!.end('HTTP/1.1 2OO OK\r\n\r\n'),
      garbled: (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"success": tru'),
      refused: (res) => void res.writeHead(400, { 'content-length': String(40 * 1024 * 1024) }).write('x'),
    };
    const server = createHttpServer((req, res) => {
      req.resume();
      answers[req.url!.split('/').pop()!]?.(res);
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 100 }, async (client) => {
      for (const [answer, landed] of [['large', true], ['broken', true], ['garbled', true], ['refused', false]] as const) {
        await assert.rejects(client.updateAccount(answer, { first_name: 'x' }), (e: Error) => {
          assert.equal(/: the request may have taken effect$/.test(e.message), landed, `${answer}: ${e.message}`);
          return true;
        });
      }
    });
  });

  it('fails requests queued for a connection at once when the circuit opens before their turn, unsent', async () => {
    let requests = 0;
    // The first is answered 502 once the others are queued behind it.
    const firstHeld = heldRequest();
    const server = createHttpServer((_req, res) => {
      requests++;
      firstHeld.hold(() => res.writeHead(502).end('bad gateway'));
    });
    // One connection: the later calls wait in the pool's queue behind the first when its 502 opens the circuit.
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 1 }, async (client) => {
      // Each call is handed to the pool as it is made: the first takes the connection, the others queue.
      const first = client.getAccount('first');
      const queued = ['q1', 'q2', 'q3'].map((id) => client.getAccount(id));
      await firstHeld.arrived;
      firstHeld.answer();
      await assert.rejects(first, /HTTP 502/);
      for (const call of queued) await assert.rejects(call, /circuit open/);
      assert.equal(requests, 1);
    });
  });

  it('refuses unsent the retries of calls still retrying when the circuit opens: each ends with its own last failure, counted no more', async () => {
    // Every request is answered 502 at once, but 'sent''s second (its retry), held until the circuit has opened.
    const requests = new Map<string, number>();
    const sentRetry = heldRequest();
    const server = createHttpServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      const count = (requests.get(id) ?? 0) + 1;
      requests.set(id, count);
      if (id === 'sent' && count === 2) sentRetry.hold(() => res.writeHead(502).end('bad gateway'));
      else res.writeHead(502).end('bad gateway');
    });
    // 'waiting''s backoff after its first 502 (the first wait asked for) is the test's to end; the others' are slept
    // (a base delay of 1 ms).
    const held = manualTimer();
    let first = true;
    const waitTimer: WaitTimer = (callback, ms) => (first ? ((first = false), held.timer(callback, ms)) : realTimer(callback, ms));
    const lines: string[] = [];
    const options = { timeoutMs: 10_000, maxInFlight: 4, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 2, waitTimer, logger: createLogger('error', (line) => lines.push(line)) };
    await withLocalUpstream(server, options, async (client) => {
      const waiting = client.getAccount('waiting');
      await eventually(() => held.waiting().length === 1); // answered 502, its failure owed, waiting to retry
      const sent = client.getAccount('sent');
      await sentRetry.arrived; // answered 502, its retry out and unanswered
      // Two calls fail for good, all three attempts each: two failures, the threshold, and the circuit opens.
      await Promise.all(['a', 'b'].map((id) => assert.rejects(client.getAccount(id), /HTTP 502/)));
      assert.equal(client.breakerState, 'open');
      held.fireAll();
      sentRetry.answer();
      // Neither's next attempt goes out; each ends with the 502 it met, not "circuit open" (the request it made
      // was sent and failed), and its owed failure is not recorded: the circuit it would open is open.
      await assert.rejects(waiting, (e: Error) => /HTTP 502/.test(e.message) && !/circuit/.test(e.message));
      await assert.rejects(sent, (e: Error) => /HTTP 502/.test(e.message) && !/circuit/.test(e.message));
      assert.deepEqual(Object.fromEntries(requests), { waiting: 1, sent: 2, a: 3, b: 3 });
      assert.equal(lines.filter((line) => line.includes('circuit breaker opened')).length, 1);
      assert.equal(client.breakerState, 'open');
    });
  });

  it('lets a call that waited out a rate-limit pause be the half-open trial; one cut by its operation while it waits is logged, and ends RATE_LIMITED', async () => {
    const { server, openWithPause } = pausedThenDown(3, (_id, req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url)));
    const lines: string[] = [];
    // The pause is waited out on the test's timer, fired with the clock moved past its end: not slept.
    const waits = manualTimer();
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, maxAttempts: 1, breakerFailureThreshold: 1, breakerCooldownMs: 100, logger: createLogger('warn', (line) => lines.push(line)), waitTimer: waits.timer }, async (client) => {
      const sentAt = performance.now();
      await openWithPause(client);
      // Both wait the pause out (3 s of their 5: no less than 3 s less the time since the 429 was asked for);
      // the first is cut by its operation's deadline meanwhile.
      const operation = new OperationScope('req-9', 10);
      const cut = client.getAccount('cut', operation);
      const waited = client.getAccount('waited');
      await eventually(() => waits.waiting().length >= 2);
      const left = 3_000 - (performance.now() - sentAt);
      for (const ms of waits.waiting()) assert.ok(ms >= left, `waits ${ms} ms of a pause with ${left} ms or more left`);
      operation.abort(new OperationDeadlineExceeded(300));
      // The rate limit kept it: its caller learns when calls resume, not that the upstream was slow.
      await assert.rejects(cut, (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.match(e.message, /^The operation did not complete within 300 ms while reading account "cut" \(it was waiting out the upstream rate limit\); calls resume in 3 s$/);
        assert.deepEqual([e.extensions?.['code'], e.extensions?.['retryAfter']], ['RATE_LIMITED', 3]);
        return true;
      });
      const timedOut = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'upstream call timed out');
      assert.deepEqual(timedOut.map((line) => [line['path'], line['timeout'], line['sent'], line['waitedForRateLimit']]), [['/accounts/cut', 'OPERATION_TIMEOUT_MS', false, true]]);
      // With 2 s of its 5 left, the other is the trial; the upstream answers, and the circuit closes.
      assert.equal(waits.waiting().length, 1, 'the cut call’s wait was given up');
      await withClockAhead(3_000, async () => {
        waits.fireAll();
        assert.equal((await waited).id, 'waited');
        assert.equal(client.breakerState, 'closed');
      });
    });
  });

  it('ends a retried call cut by its operation while it waits out another call’s pause with its own earlier failure (a 502 after which a DELETE may have taken effect)', async () => {
    const deletionHeld = heldRequest();
    const server = createHttpServer((req, res) => {
      if (req.method === 'DELETE') deletionHeld.hold(() => res.writeHead(502).end('bad gateway'));
      else res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
    });
    // The waits (the retries' backoffs, the pause) are the test's timer's, ended or cut when it says; on the
    // test's clock, held still, the pause always leaves the DELETE time enough to wait it out.
    const waits = manualTimer();
    await onTestTime(undefined, () => withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, maxAttempts: 2, retryBaseDelayMs: 10, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const operation = new OperationScope('req-11', 10);
      // Its first attempt out; then another call's 429 pauses the key for 3 s; then its 502 asks for a retry.
      const deletion = client.deleteAccount('a', operation);
      await deletionHeld.arrived;
      const limiter = new OperationScope('req-12', 10);
      const limited = client.getAccount('limited', limiter);
      await eventually(() => waits.waiting().length === 1); // the 429's Retry-After, waited out to retry
      deletionHeld.answer();
      await eventually(() => waits.waiting().length === 2); // and the DELETE's backoff
      // Both retries then wait out what is left of the pause; the DELETE is cut meanwhile.
      waits.fireAll();
      await eventually(() => waits.waiting().length === 2);
      assert.ok(waits.waiting().every((ms) => ms > 2_000), `the pause waited out: ${waits.waiting().join(', ')} ms`);
      operation.abort(new OperationDeadlineExceeded(600));
      await assert.rejects(deletion, (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.deepEqual([e.extensions?.['code'], e.message], ['UPSTREAM_ERROR', 'The upstream failed with HTTP 502 while deleting account "a": the request may have taken effect']);
        return true;
      });
      limiter.abort(new OperationDeadlineExceeded(600));
      await assert.rejects(limited, (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'RATE_LIMITED');
    }));
  });

  it('reads an answer sent a byte per chunk whole (each chunk copied into one buffer as it comes)', async () => {
    const padded = JSON.stringify({ id: 'x', created: 1, email_addresses: [], sources: [], first_name: 'p'.repeat(50_000) });
    const server = createNetServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
        socket.end(`${[...padded].map((c) => `1\r\n${c}\r\n`).join('')}0\r\n\r\n`);
      });
    });
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 2, maxAttempts: 1 }, async (client) => {
      assert.equal((await client.getAccount('x')).first_name, 'p'.repeat(50_000));
    });
  });

  it('reads JSON sent after a byte order mark, as RFC 8259 lets a reader: a success, and an error body that says what failed', async () => {
    // A server that writes a file saved with a BOM before its JSON (PHP's, say) sends it before every answer.
    const answers: [number, unknown][] = [];
    let requests = 0;
    const server = createHttpServer((req, res) => {
      requests++;
      const [status, body] = answers.shift()!;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`\uFEFF${JSON.stringify(body ?? JSON.parse(accountAt(req.url)))}`);
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 100 }, async (client) => {
      answers.push([200, undefined]);
      assert.equal((await client.getAccount('a')).id, 'a');
      // The API's own 503: one mailbox out of reach, not retried as the API down.
      answers.push([503, { type: 'error', value: 'could not connect to the mail server' }]);
      await assert.rejects(client.getAccount('a'), /could not reach a mail server \(HTTP 503\) while reading account "a"$/);
      assert.equal(requests, 2);
      // A refused signature under a 400: the gateway's credentials, not the caller's parameters.
      answers.push([400, { type: 'error', code: 105, value: 'Invalid signature' }]);
      await assert.rejects(client.getAccount('a'), /refused the gateway’s credentials/);
      assert.equal(requests, 3);
    });
  });

  it('refuses a success whose body is not UTF-8 (a Latin-1 é), plain or gzipped, rather than read it with U+FFFD for the byte; an error body so is still its status', async () => {
    // A server writing Latin-1 (and saying so in its Content-Type, which the API's never names) sends René as 52 65 6E E9.
    const latin1 = Buffer.from(JSON.stringify({ ...JSON.parse(accountAt('/2.0/accounts/a')), first_name: 'René' }), 'latin1');
    const answers: [number, Buffer, Record<string, string>][] = [];
    const server = createHttpServer((req, res) => {
      req.resume();
      const [status, body, headers] = answers.shift()!;
      res.writeHead(status, { 'content-type': 'application/json; charset=iso-8859-1', ...headers }).end(body);
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 100 }, async (client) => {
      const notUtf8 = (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        assert.equal(e.message, 'The upstream answered with an unexpected body while reading account "a": its body is not UTF-8');
        assert.equal((e.extensions?.['upstream'] as { status: unknown }).status, 200);
        return true;
      };
      answers.push([200, latin1, {}]);
      await assert.rejects(client.getAccount('a'), notUtf8);
      answers.push([200, gzipSync(latin1), { 'content-encoding': 'gzip' }]);
      await assert.rejects(client.getAccount('a'), notUtf8);
      answers.push([404, Buffer.from('{"type":"error","value":"no account \xe9"}', 'latin1'), {}]);
      await assert.rejects(client.getAccount('a'), (e: Error & { extensions?: Record<string, unknown> }) => e.extensions?.['code'] === 'NOT_FOUND');
      // The same name in UTF-8 is read as written.
      answers.push([200, Buffer.from(latin1.toString('latin1')), {}]);
      assert.equal((await client.getAccount('a')).first_name, 'René');
    });
  });

  it('ends a call whose retry another call’s longer pause keeps back with that pause, not its own earlier 429', async (t) => {
    // Each is answered 429 when the test says: 'short' first, then 'long'. No jitter past the 2 s.
    t.mock.method(Math, 'random', () => 0);
    const shortHeld = heldRequest();
    const longHeld = heldRequest();
    const server = createHttpServer((req, res) => {
      const limited = (seconds: number) => () => res.writeHead(429, { 'retry-after': String(seconds), 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
      if (req.url!.endsWith('/short')) shortHeld.hold(limited(2));
      else longHeld.hold(limited(60));
    });
    // The short wait is the test's timer's to end, with the clock moved past it: not slept.
    const waits = manualTimer();
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const short = client.getAccount('short'); // its 429 says 2 s: it waits to retry…
      const long = client.getAccount('long'); // …and meanwhile this one's 429 pauses the key for 60 s
      await Promise.all([shortHeld.arrived, longHeld.arrived]);
      shortHeld.answer();
      await eventually(() => waits.waiting().length >= 1);
      longHeld.answer();
      await assert.rejects(long, /rate limit/);
      assert.deepEqual(waits.waiting(), [2_000], 'the short one waits its own 2 s (the long one, past its deadline, none)');
      await withClockAhead(2_000, async () => {
        waits.fireAll();
        await assert.rejects(short, (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'RATE_LIMITED');
          assert.ok((e.extensions?.['retryAfter'] as number) > 30, `${e.message} (retryAfter ${String(e.extensions?.['retryAfter'])})`);
          return true;
        });
      });
    });
  });

  it('forgets a retried 502 when the retry is a success it cannot use (too large): the upstream answered, as with a 404 after it', async () => {
    let requests = 0;
    const server = createHttpServer((req, res) => {
      req.resume();
      if (++requests === 1) res.writeHead(502).end('bad gateway');
      else res.writeHead(200, { 'content-length': String(64 * 1024 * 1024) }).write('x');
    });
    await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 2, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 1 }, async (client) => {
      await assert.rejects(client.getAccount('a'), /larger than 32 MiB/);
      // At a threshold of one failure: the 502 counted would have opened it.
      assert.equal(client.breakerState, 'closed');
    });
  });

  it('holds back requests queued for a connection when a 429 pauses the key: they go out when the pause ends, not onto another 429', async () => {
    const arrivals: string[] = [];
    // The upstream's limit, from the first call's arrival until the test lifts it as the pause ends.
    let limited = false;
    // The first is answered 429 once the others are queued behind it.
    const firstHeld = heldRequest();
    const server = createHttpServer((req, res) => {
      arrivals.push(req.url!.split('/').pop()!);
      if (req.url!.endsWith('/first')) {
        limited = true;
        firstHeld.hold(() => res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}'));
      } else if (limited) res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    // The pause is waited out on the test's timer, fired with the clock moved past its end: not slept.
    const waits = manualTimer();
    // One connection: the three later calls wait in the pool's queue behind the first when its 429 comes.
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      // Each call is handed to the pool as it is made: the first takes the connection, the others queue.
      const sentAt = performance.now();
      const first = client.getAccount('first');
      const queued = ['q1', 'q2', 'q3'].map((id) => client.getAccount(id));
      await firstHeld.arrived;
      firstHeld.answer();
      await assert.rejects(first, /rate limit/);
      // Their turns came during the pause: held back unsent, each waits out what is left of it at least (no
      // less than its 1 s less the time since the first was sent).
      await eventually(() => waits.waiting().length >= 3);
      const left = 1_000 - (performance.now() - sentAt);
      for (const ms of waits.waiting()) assert.ok(ms >= left, `waits ${ms} ms of a pause with ${left} ms or more left`);
      assert.deepEqual(arrivals, ['first']);
      limited = false;
      const answers = await withClockAhead(1_000, async () => {
        waits.fireAll();
        return Promise.all(queued);
      });
      assert.deepEqual(answers.map((a) => a.id), ['q1', 'q2', 'q3']);
      // Each queued call went out once, after the pause (one sent during it is answered 429, and fails): none
      // spent a request of the key's quota on a 429.
      assert.deepEqual(arrivals.sort(), ['first', 'q1', 'q2', 'q3']);
    });
  });

  it('drops a request cancelled while it waited for a connection without closing the connection it is given', async () => {
    let connections = 0;
    // /hold keeps the one connection from its arrival until the test answers it.
    const hold = heldRequest();
    const server = createHttpServer((req, res) => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(accountAt(req.url));
      };
      if (req.url?.endsWith('/hold')) hold.hold(answer);
      else answer();
    });
    server.on('connection', () => connections++);
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1 }, async (client) => {
      const held = client.getAccount('hold');
      const caller = new AbortController();
      const queued = client.getAccount('queued', caller.signal);
      await hold.arrived;
      caller.abort();
      await assert.rejects(queued, /cancelled/);
      hold.answer();
      assert.equal((await held).id, 'hold');
      // The cancelled request's turn has come and gone: the next call still finds the first connection.
      assert.equal((await client.getAccount('next')).id, 'next');
      assert.equal(connections, 1);
    });
  });

  it('does not spend an attempt on a request held back by a rate-limit pause: it is retried as often once sent', async () => {
    const firstHeld = heldRequest();
    const arrivals: string[] = [];
    const server = createHttpServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      arrivals.push(id);
      if (id === 'first') firstHeld.hold(() => res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}'));
      else if (arrivals.filter((each) => each === id).length === 1) res.writeHead(502).end('bad gateway');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    const waits = manualTimer();
    // One connection: the second call queues behind the first, and its turn comes in the first's pause.
    await withLocalUpstream(server, { timeoutMs: 10_000, maxInFlight: 1, maxAttempts: 2, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const first = client.getAccount('first', new OperationScope('first', 1)); // no request left to retry its 429
      let settled = false;
      const queued = client.getAccount('queued').then((account) => account.id, (e: Error) => e.message).finally(() => (settled = true));
      await firstHeld.arrived;
      firstHeld.answer();
      await assert.rejects(first, /rate limit/);
      await eventually(() => waits.waiting().length === 1); // held back: it waits the pause out
      assert.deepEqual(arrivals, ['first']);
      await withClockAhead(1_000, async () => {
        waits.fireAll();
        await eventually(() => settled || waits.waiting().length === 1); // sent, answered 502: its backoff
        waits.fireAll();
        assert.equal(await queued, 'queued');
      });
      assert.deepEqual(arrivals, ['first', 'queued', 'queued']);
    });
  });

  it('says a DELETE may have taken effect when a rate-limit pause refuses its retry after a 502 and then a 429', async () => {
    const retryHeld = heldRequest();
    const longHeld = heldRequest();
    let deletes = 0;
    const server = createHttpServer((req, res) => {
      const limited = (seconds: number) => () => res.writeHead(429, { 'retry-after': String(seconds), 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
      if (req.method === 'DELETE' && ++deletes === 1) res.writeHead(502).end('bad gateway');
      else if (req.method === 'DELETE') retryHeld.hold(limited(2));
      else longHeld.hold(limited(60));
    });
    const waits = manualTimer();
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const deleted = client.deleteAccount('a');
      await eventually(() => waits.waiting().length === 1); // the 502's backoff
      waits.fireAll();
      const long = client.getAccount('long');
      await Promise.all([retryHeld.arrived, longHeld.arrived]);
      retryHeld.answer(); // 429, 2 s: it waits to retry…
      await eventually(() => waits.waiting().length === 1);
      longHeld.answer(); // …and meanwhile this one's 429 pauses the key for 60 s
      await assert.rejects(long, /rate limit/);
      await withClockAhead(2_000, async () => {
        waits.fireAll();
        await assert.rejects(deleted, (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'RATE_LIMITED');
          assert.match(e.message, /^The upstream rate limit was reached while deleting account "a"; calls resume in \d+ s: an earlier attempt may have taken effect$/);
          return true;
        });
      });
    });
  });

  it('says a DELETE whose connection broke once sent may have taken effect when its retry cannot connect', async () => {
    // The first connection is closed once the request is in, and the server then stops listening: the retry is refused.
    const server: NetServer = createNetServer((socket) => {
      socket.once('data', () => {
        socket.destroy();
        server.close();
      });
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 2, retryBaseDelayMs: 1, breakerFailureThreshold: 100 }, async (client) => {
      await assert.rejects(client.deleteAccount('a'), (e: Error) => {
        assert.equal(e.message, 'The upstream could not be reached while deleting account "a": the request may have taken effect');
        return true;
      });
    });
  });

  it('ends a call whose connection broke after a 429, its retry refused by a pause, with the broken connection, not the rate limit', async () => {
    const retryHeld = heldRequest();
    const longHeld = heldRequest();
    let requests = 0;
    const server = createHttpServer((req, res) => {
      const limited = (seconds: number) => res.writeHead(429, { 'retry-after': String(seconds), 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
      if (req.url!.endsWith('/long')) longHeld.hold(() => limited(60));
      else if (++requests === 1) limited(1);
      else retryHeld.hold(() => res.socket!.destroy()); // broken once the request is in
    });
    const waits = manualTimer();
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 4, maxAttempts: 3, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const call = client.getAccount('x');
      await eventually(() => waits.waiting().length === 1); // its 429's Retry-After
      await withClockAhead(1_100, async () => {
        waits.fireAll();
        await retryHeld.arrived;
        const long = client.getAccount('long'); // its 429 pauses the key for 60 s
        await longHeld.arrived;
        longHeld.answer();
        await assert.rejects(long, /rate limit/);
        retryHeld.answer();
        await eventually(() => waits.waiting().length === 1); // the broken connection's backoff
        waits.fireAll();
        await assert.rejects(call, (e: Error & { extensions?: Record<string, unknown> }) => {
          assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
          assert.equal(e.message, 'The connection to the upstream broke before it answered while reading account "x"');
          return true;
        });
      });
    });
  });

  it('counts an error answer too large to read as the upstream down when its status says so: a 503 from in front of the API', async () => {
    const server = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(503, { 'content-length': String(64 * 1024 * 1024) }).write('x');
    });
    await withLocalUpstream(server, { timeoutMs: 2_000, maxInFlight: 2, maxAttempts: 1, breakerFailureThreshold: 1 }, async (client) => {
      await assert.rejects(client.getAccount('a'), /^The upstream failed with HTTP 503 while reading account "a"$/);
      assert.equal(client.breakerState, 'open');
    });
  });

  it('says a DELETE refused with an answer too large may have taken effect when an earlier attempt was answered 502', async () => {
    let deletes = 0;
    const server = createHttpServer((req, res) => {
      req.resume();
      if (++deletes === 1) res.writeHead(502).end('bad gateway');
      else res.writeHead(400, { 'content-length': String(40 * 1024 * 1024) }).write('x');
    });
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 2, maxAttempts: 3, retryBaseDelayMs: 1, breakerFailureThreshold: 100 }, async (client) => {
      // Refused by its status, its body too large to read: the first attempt's 502 may still have carried it out.
      await assert.rejects(client.deleteAccount('a'), /^The upstream refused the request’s parameters as invalid while deleting account "a": an earlier attempt may have taken effect$/);
    });
  });

  it('says a DELETE cut while its retry waited for a connection may have taken effect, after a 502', async () => {
    const hold = heldRequest();
    let deletes = 0;
    const server = createHttpServer((req, res) => {
      req.resume();
      if (req.method === 'DELETE' && ++deletes === 1) res.writeHead(502).end('bad gateway');
      else if (req.method === 'GET') hold.hold(() => res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url)));
    });
    const waits = manualTimer();
    // One connection: the DELETE's retry queues behind the GET, which the upstream holds.
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const operation = new OperationScope('r11');
      const deleted = client.deleteAccount('a', operation);
      await eventually(() => waits.waiting().length === 1); // the 502's backoff
      const held = client.getAccount('held');
      await hold.arrived;
      waits.fireAll();
      await new Promise((resolve) => setImmediate(resolve));
      operation.abort();
      await assert.rejects(deleted, (e: Error & { extensions?: Record<string, unknown> }) => {
        assert.equal(e.message, 'The request was cancelled: the request may have taken effect');
        // Cut by its caller, not by any deadline: no timeout.
        assert.equal(e.extensions?.['code'], 'UPSTREAM_ERROR');
        return true;
      });
      hold.answer();
      assert.equal((await held).id, 'held');
      assert.equal(deletes, 1);
    });
  });

  it('ends a call whose connection broke once sent at once when its operation has no request left for a retry, without a backoff', async () => {
    const server = createNetServer((socket) => socket.once('data', () => socket.destroy()));
    const waits = manualTimer();
    await withLocalUpstream(server, { timeoutMs: 5_000, maxInFlight: 1, maxAttempts: 3, breakerFailureThreshold: 100, waitTimer: waits.timer }, async (client) => {
      const call = client.getAccount('a', new OperationScope('r13', 1));
      let settled = false;
      call.catch(() => {}).finally(() => (settled = true));
      await eventually(() => settled || waits.waiting().length > 0);
      assert.deepEqual(waits.waiting(), [], 'it waited for a retry it could not send');
      await assert.rejects(call, /connection to the upstream broke/);
    });
  });

  it('counts a call timed out in the queue toward opening the breaker when nothing was answered since it began to wait, earlier answers notwithstanding', async (t) => {
    const hanging = happenings();
    const server = createHttpServer((req, res) => {
      if (req.url!.endsWith('/hang')) hanging.push();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(accountAt(req.url));
    });
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 1_000, maxInFlight: 1, maxAttempts: 1, breakerFailureThreshold: 2 }, async (client) => {
        assert.equal((await client.getAccount('ok')).id, 'ok');
        const hang = client.getAccount('hang');
        await hanging.next();
        const queued = client.getAccount('queued'); // behind 'hang', never sent
        advance(1_000);
        await assert.rejects(hang, /did not answer/);
        await assert.rejects(queued, /the request never went out/);
        assert.equal(client.breakerState, 'open');
      });
    });
  });

  it('counts a call sent late, after waiting out a rate-limit pause, that timed out with nothing answered meanwhile toward opening the breaker: only a half-open trial sent late is let off', async (t) => {
    const hanging = happenings();
    const server = createHttpServer((req, res) => {
      if (req.url!.endsWith('/hang')) hanging.push();
      else res.writeHead(429, { 'retry-after': '2', 'content-type': 'application/json' }).end('{"type":"error","value":"slow down"}');
    });
    const waits = manualTimer();
    await onTestTime(t, async (advance) => {
      await withLocalUpstream(server, { timeoutMs: 4_000, maxInFlight: 2, maxAttempts: 1, breakerFailureThreshold: 1, waitTimer: waits.timer }, async (client) => {
        await assert.rejects(client.getAccount('limited'), /rate limit/); // the key paused for 2 s
        const hang = client.getAccount('hang');
        await eventually(() => waits.waiting().length === 1);
        // The pause waited out, 'hang' goes out with 1.7 s of its 4 left, and the upstream answers nothing more.
        advance(2_300);
        waits.fireAll();
        await hanging.next();
        advance(1_700);
        await assert.rejects(hang, /did not answer within/);
        assert.equal(client.breakerState, 'open');
      });
    });
  });

  it('counts calls timed out while the upstream begins answers but finishes none toward opening the breaker', async (t) => {
    const arrived = happenings();
    const server = createHttpServer((req, res) => {
      // Headers, and a body that never comes whole.
      if (req.url!.endsWith('/slow')) res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' }).write('{');
      arrived.push();
    });
    // The client has read the slow answer's headers.
    const begun = happenings();
    await whileHeadersRead(200, begun.push, async () => {
      await onTestTime(t, async (advance) => {
        await withLocalUpstream(server, { timeoutMs: 1_000, maxInFlight: 2, maxAttempts: 1, breakerFailureThreshold: 1 }, async (client) => {
          const hang = client.getAccount('hang');
          await arrived.next();
          const slow = client.getAccount('slow');
          await arrived.next();
          await begun.next();
          advance(1_000);
          await assert.rejects(hang, /did not answer/);
          await assert.rejects(slow, /^The upstream’s HTTP 200 answer did not arrive whole within 1000 ms/);
          assert.equal(client.breakerState, 'open');
        });
      });
    });
  });
});

const SIXTY_FOUR_MIB = 64 * 1024 * 1024;

/** A server answering 200 with `chunk` written over and over up to 64 MiB, as fast as its reader takes it; `sent.bytes` so far. */
function sixtyFourMiBAnswer(headers: Record<string, string>, chunk: Buffer): { server: HttpServer; sent: { bytes: number } } {
  const sent = { bytes: 0 };
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, headers);
    const more = () => {
      while (sent.bytes < SIXTY_FOUR_MIB) {
        sent.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  return { server, sent };
}
