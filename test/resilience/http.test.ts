import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { manualTimer, withClockAhead } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { exchange, rawGraphQLPost } from '../helpers/net.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { logEntries } from '../helpers/script.ts';
import { codes, leaveWhileUpstreamHangs, startLoggingStack, startSlowDownload, startSlowRead, startStack, useStack, type SlowRead, type Stack } from '../helpers/stack.ts';
import { LOAD_REFUSAL_LOG_INTERVAL_MS } from '../../src/http/load-refusals.ts';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, when it is JSON. */
  json: { errors?: Array<{ message: string; extensions?: Record<string, unknown> }>; data?: unknown } | undefined;
}

/** Sends anything at all to the gateway, as a misbehaving client would. */
async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000), ...init });
  const text = await response.text();
  let json: Answer['json'];
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const post = (stack: Stack, body: string, headers: Record<string, string> = JSON_HEADERS) =>
  send(stack.gateway.url, { method: 'POST', headers, body });
/** GET needs a header Apollo's CSRF protection accepts as proof the request is not a simple cross-site one. */
const get = (stack: Stack, query: string) =>
  send(`${stack.gateway.url}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });

const firstError = (answer: Answer) => answer.json?.errors?.[0];

/** Asserts a refusal with `status`, a GraphQL-shaped error with `code`, and a message matching `message`. */
function assertRefused(answer: Answer, status: number, code: string, message: RegExp): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(firstError(answer)?.extensions?.['code'], code);
  assert.match(firstError(answer)!.message, message);
}

/**
 * Asserts that the raw bytes `received` are one refusal answered before the request could be read (Node's parser
 * refused it, or it took too long to arrive): `status`, the headers every answer carries, a GraphQL-shaped error
 * with `code` and a message matching `message`, and the connection closed.
 */
function assertRawRefusal(received: string, status: number, code: string, message: RegExp): void {
  const [head = '', body = ''] = received.split('\r\n\r\n', 2);
  assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), received);
  const headers = new Map(head.split('\r\n').slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  assert.equal(headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(headers.get('cache-control'), 'private, no-store');
  assert.equal(headers.get('x-content-type-options'), 'nosniff');
  assert.equal(headers.get('connection'), 'close');
  assert.match(headers.get('x-request-id') ?? '', /^[\w-]{36}$/);
  // RFC 9110 §6.6.1: an origin server with a clock sends Date in every 4xx, as Node's own answers do.
  assert.match(headers.get('date') ?? '', /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/, received);
  assert.equal(Number(headers.get('content-length')), Buffer.byteLength(body));
  const { errors } = JSON.parse(body) as { errors: Array<{ message: string; extensions: { code: string } }> };
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.extensions.code, code);
  assert.match(errors[0]!.message, message);
}

/** Whether a response body carries a stack trace: Apollo's `stacktrace` extension, or V8's "at file:line:col" frames. */
const hasStackTrace = (text: string) => /stacktrace/i.test(text) || /\bat .+:\d+:\d+/.test(text);

/**
 * A logging stack whose emulator holds each `answerAfterMs` fault's answer until the test lets it go (`held`), and a
 * raw connection to its gateway, with what it has received so far and its close: for requests pipelined behind
 * answers held upstream. `close` lets every held answer go and stops both.
 */
async function heldUpstreamConnection() {
  const held = manualTimer();
  const stack = await startLoggingStack('debug', { emulator: { faultTimer: held.timer } });
  const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const closed = once(socket, 'close');
  const close = async () => {
    held.fireAll();
    socket.destroy();
    await stack.close();
  };
  return { held, stack, socket, closed, received: () => received, close };
}

describe('HTTP hygiene', () => {
  const stack = useStack();

  it('answers a 2 MB body with 413 before reading it whole, and keeps serving', async () => {
    const big = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    assertRefused(await post(stack, big), 413, 'PAYLOAD_TOO_LARGE', /exceeds 1048576 bytes/);
    // The same without a Content-Length: the limit is counted as the body streams in.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 32; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(64 * 1024)));
        controller.close();
      },
    });
    const streamed = await send(stack.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: chunks, duplex: 'half' } as RequestInit);
    assertRefused(streamed, 413, 'PAYLOAD_TOO_LARGE', /exceeds/);
    const after = await stack.gql('{ __typename }');
    assert.deepEqual(after.body, { data: { __typename: 'Query' } });
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers malformed JSON with 400 and what is wrong with it', async () => {
    assertRefused(await post(stack, '{"query": "{ __typename }"'), 400, 'BAD_REQUEST', /^The request body is not valid JSON: .+/);
  });

  it('answers an empty body, and JSON that is not an object, with 400', async () => {
    assertRefused(await post(stack, ''), 400, 'BAD_REQUEST', /^The request body is empty: send one JSON object/);
    assertRefused(await post(stack, ' \r\n\t'), 400, 'BAD_REQUEST', /^The request body is empty: send one JSON object/);
    assertRefused(await post(stack, '{}'), 400, 'BAD_REQUEST', /^The request body has no query/);
    assertRefused(await post(stack, '"{ __typename }"'), 400, 'BAD_REQUEST', /^The request body is not a JSON object/);
    assertRefused(await post(stack, 'null'), 400, 'BAD_REQUEST', /^The request body is not a JSON object/);
  });

  it('answers a body that is not JSON by its content type with 415', async () => {
    const text = await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': 'text/plain' });
    assertRefused(text, 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/);
    const form = await post(stack, 'query=%7B__typename%7D', { 'content-type': 'application/x-www-form-urlencoded' });
    assertRefused(form, 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/);
    // A charset parameter is fine when it says UTF-8.
    for (const contentType of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8', 'application/json; charset=US-ASCII']) {
      assert.equal((await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': contentType })).status, 200, contentType);
    }
  });

  it('tells a POST whose body is not typed JSON the header to send and the type it sent: curl -d and most languages’ HTTP clients send another by default', async () => {
    // curl -d, Python's urllib, Ruby's Net::HTTP.post and Perl's LWP type a body as a form, Perl's HTTP::Tiny as
    // application/octet-stream: each was told only that bodies must be application/json.
    const body = JSON.stringify({ query: '{ __typename }' });
    const form = await post(stack, body, { 'content-type': 'application/x-www-form-urlencoded' });
    assertRefused(form, 415, 'UNSUPPORTED_MEDIA_TYPE', /^POST bodies must be application\/json: send the header Content-Type: application\/json \(this request's is application\/x-www-form-urlencoded\)$/);
    const octets = await post(stack, body, { 'content-type': 'Application/Octet-Stream; foo=bar' });
    assertRefused(octets, 415, 'UNSUPPORTED_MEDIA_TYPE', /\(this request's is application\/octet-stream\)$/);
    const untyped = await exchange(stack.gateway.url, `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    assert.match(untyped, /^HTTP\/1\.1 415 .*"POST bodies must be application\/json: send the header Content-Type: application\/json \(this request has none\)"/s);
    // A type that is no media type is not quoted back.
    for (const contentType of ['json', `text/${'x'.repeat(200)}`, 'a b/c']) {
      const odd = await post(stack, body, { 'content-type': contentType });
      assertRefused(odd, 415, 'UNSUPPORTED_MEDIA_TYPE', /^POST bodies must be application\/json: send the header Content-Type: application\/json$/);
    }
  });

  it('answers a GET with a Content-Type other than JSON with the same 415 UNSUPPORTED_MEDIA_TYPE, not Apollo’s 415 BAD_REQUEST', async () => {
    const query = `${stack.gateway.url}?query=${encodeURIComponent('{ accounts { nodes { id } } }')}`;
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/graphql-response+json']) {
      const answer = await send(query, { headers: { 'content-type': contentType, 'apollo-require-preflight': 'true' } });
      assertRefused(answer, 415, 'UNSUPPORTED_MEDIA_TYPE', /^GET requests may not have a Content-Type other than application\/json/);
      // The type sent is named, as a POST's refusal names it: the caller may not know its client sent one.
      assert.ok(answer.text.includes(`(this request's is ${contentType})`), answer.text);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    // JSON's (some clients send it on every request), or none, is served as before.
    for (const headers of [{ 'content-type': 'application/json; charset=utf-8' }, {}] as Record<string, string>[]) {
      const answer = await send(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { ...headers, 'apollo-require-preflight': 'true' } });
      assert.deepEqual(answer.json, { data: { __typename: 'Query' } });
    }
  });

  it('reads JSON in UTF-8 only: another charset or a compressed body is 415, bytes that are not UTF-8 are 400, before any upstream call', async () => {
    // A Latin-1 `René` (0xE9) was decoded to `Ren\uFFFD` and sent upstream.
    const latin1 = Buffer.from('{"query":"mutation { updateAccount(id: \\"0123456789abcdef01234567\\", input: { firstName: \\"Ren\xe9\\" }) { success } }"}', 'latin1');
    const charset = await send(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json; charset=iso-8859-1' }, body: latin1 });
    assertRefused(charset, 415, 'UNSUPPORTED_MEDIA_TYPE', /^POST bodies must be JSON in UTF-8/);
    const undeclared = await send(stack.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: latin1 });
    assertRefused(undeclared, 400, 'BAD_REQUEST', /^The request body is not valid UTF-8$/);
    const gzipped = await send(stack.gateway.url, { method: 'POST', headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' }, body: gzipSync('{"query":"{ __typename }"}') });
    assertRefused(gzipped, 415, 'UNSUPPORTED_MEDIA_TYPE', /^Compressed request bodies are not supported/);
    // Compressed as a transfer coding: Node's parser undoes the chunks only, and the body reached the JSON
    // reader still gzipped ("not valid UTF-8").
    const zipped = gzipSync('{"query":"{ __typename }"}');
    const chunked = `${zipped.length.toString(16)}\r\n${zipped.toString('latin1')}\r\n0\r\n\r\n`;
    const transferGzip = await exchange(
      stack.gateway.url,
      `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n${chunked}`,
    );
    assert.match(transferGzip, /^HTTP\/1\.1 415 .*without a Transfer-Encoding other than chunked.*"code":"UNSUPPORTED_MEDIA_TYPE"/s);
    assert.deepEqual(stack.upstreamCalls(), []);
    // Nor over GET: a percent-escaped Latin-1 byte reached the upstream as U+FFFD.
    const latin1Get = await send(`${stack.gateway.url}?query=${encodeURIComponent('{ accounts(filter: { email: "ren')}%E9${encodeURIComponent('@example.com" }) { nodes { id } } }')}`, {
      headers: { accept: 'application/json', 'apollo-require-preflight': 'true' },
    });
    assertRefused(latin1Get, 400, 'BAD_REQUEST', /^The query string is not valid UTF-8 once percent-decoded$/);
    assert.deepEqual(stack.upstreamCalls(), []);
    assert.deepEqual((await get(stack, '{ __typename }')).json, { data: { __typename: 'Query' } });
    const utf8Get = await get(stack, '{ accounts(filter: { email: "rené@example.com" }) { nodes { id } } }');
    assert.deepEqual(utf8Get.json, { data: { accounts: { nodes: [] } } });
    // A byte order mark, which JSON lets a reader ignore, is.
    const bom = await send(stack.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"query":"{ __typename }"}')]) });
    assert.equal(bom.status, 200, bom.text);
    // Only one: a character whose UTF-8 begins as the mark's does (U+FEC0: EF BB 80) is text before the JSON.
    const notBom = await send(stack.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0x80]), Buffer.from('{"query":"{ __typename }"}')]) });
    assertRefused(notBom, 400, 'BAD_REQUEST', /^The request body is not valid JSON: .+/);
  });

  it('holds a body sent a byte per chunk in about its own size, not a buffer per byte (1 MiB once held ~220 MB, before any token was checked)', { timeout: 60_000 }, async () => {
    // A limit that lets this body come in 512 Ki pieces (past 1 MiB / 64, maxBodyPieces), as the default's 1 MiB does not.
    const roomy = await startStack({ gateway: { maxBodyBytes: 64 * 1024 * 1024 } });
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pad = 512 * 1024;
    const body = `{"query":"{ __typename } # ${'x'.repeat(pad)}"}`;
    // Watched by its socket's bytes read: a 'data' listener of the test's own would take the body's first
    // chunks before the gateway listens.
    let server: Socket | undefined;
    roomy.gateway.httpServer.once('connection', (socket: Socket) => (server = socket));
    const socket = connect(Number(new URL(roomy.gateway.url).port), '127.0.0.1');
    try {
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      const head = `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`;
      const chunks = [...body].map((c) => `1\r\n${c}\r\n`).join('');
      gc();
      const before = process.memoryUsage().heapUsed;
      socket.write(head + chunks);
      // Every byte in, the body not ended: what the gateway holds of it now is all it will hold.
      await eventually(() => server?.bytesRead === head.length + chunks.length, { timeoutMs: 30_000 });
      gc();
      const held = process.memoryUsage().heapUsed - before;
      assert.ok(held < 40 * 1024 * 1024, `${Math.round(held / 1024 / 1024)} MB held for a ${pad / 1024} KB body`);
      // Written, not ended: a client that half-closes after its request gets no answer from Node's server
      // (it ends the connection on the client's end), which would race the answer here. `connection: close`
      // has the gateway close it once answered.
      socket.write('0\r\n\r\n');
      await once(socket, 'close');
      assert.match(answer, /^HTTP\/1\.1 200 /);
    } finally {
      socket.destroy();
      await roomy.close();
    }
  });

  it('refuses a body in more pieces than 16,384 (MAX_BODY_BYTES / 64) with 413, reading no more of it (1 MiB a byte per chunk took ~280 ms of CPU)', async () => {
    const head = `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`;
    const inBytes = (text: string) => [...text].map((c) => `1\r\n${c}\r\n`).join('');
    const prefix = '{"query":"{ __typename }","pad":"';
    const body = (length: number) => `${prefix}${'x'.repeat(length - prefix.length - 2)}"}`;
    // As many as allowed: read, and run.
    const allowed = await exchange(stack.gateway.url, `${head.replace('\r\n\r\n', '\r\nconnection: close\r\n\r\n')}${inBytes(body(16_384))}0\r\n\r\n`);
    assert.match(allowed, /^HTTP\/1\.1 200 .*"__typename":"Query"/s);
    // One more, and the body (never ended here) is refused there, its connection closed.
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('error', () => {}); // the gateway may reset a connection it closed while the body still came
      socket.write(head + inBytes(body(16_385)));
      await once(socket, 'close');
      assert.match(received, /^HTTP\/1\.1 413 .*\r\nconnection: close\r\n/is);
      assert.match(received, /"message":"The request body came in more than 16384 pieces: send it in fewer, larger chunks".*"code":"PAYLOAD_TOO_LARGE"/);
    } finally {
      socket.destroy();
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('closes the connection of a request refused before its body is read, instead of reading an endless body until the deadline', { timeout: 20_000 }, async () => {
    for (const [method, path, contentType, status, framing] of [
      ['POST', '/graphql', 'text/plain', 415, 'chunked'],
      ['PUT', '/graphql', 'application/json', 405, 'chunked'],
      ['POST', '/nope', 'application/json', 404, 'chunked'],
      // A body declared by its length, a gigabyte: Node would read and discard it all, or wait for it to the deadline.
      ['POST', '/graphql', 'text/plain', 415, 'length'],
    ] as const) {
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('error', () => {}); // the gateway may reset a connection it closed while the body still came
      // The body never ends: only the gateway closing the connection ends the wait (the test's timeout otherwise).
      // Its first chunk in the same write as the head, and nothing after: a write the gateway's close (a reset,
      // the body unread) met failed with EPIPE, and Node destroyed the socket before it read the answer there.
      const chunk = framing === 'chunked' ? `${(16 * 1024).toString(16)}\r\n${'x'.repeat(16 * 1024)}\r\n` : 'x'.repeat(16 * 1024);
      const length = framing === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${1024 ** 3}`;
      socket.write(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\n${length}\r\n\r\n${chunk}`);
      // Not once(socket, 'close'): it rejects on the 'error' (ECONNRESET) that comes first when the gateway resets it.
      await new Promise((resolve) => socket.once('close', resolve));
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${path} (${framing}): ${received.slice(0, 200)}`);
      assert.match(received, /\r\nconnection: close\r\n/i);
    }
    // A request that declares an empty body (some clients send Content-Length: 0 on every request) has nothing
    // unread: answered at once (/healthz, a refusal), it keeps its connection for the next request.
    const kept = await exchange(stack.gateway.url, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\nPOST /nope HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    assert.deepEqual(kept.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 200'], kept);
  });

  it('refuses a batch (a JSON array of operations) with 400 and runs none of it', async () => {
    const batch = JSON.stringify([{ query: '{ accounts { nodes { id } } }' }, { query: '{ connectTokens { nodes { token } } }' }]);
    assertRefused(await post(stack, batch), 400, 'BAD_REQUEST', /^Batched requests .* are not supported/);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers methods /graphql does not serve with 405 and an Allow header naming those it does (OPTIONS too: it answers preflights)', async () => {
    const put = await send(stack.gateway.url, { method: 'PUT', headers: JSON_HEADERS, body: '{}' });
    // The message names what Allow names, OPTIONS too: a client reading only the message is not told a method is refused that is not.
    assertRefused(put, 405, 'METHOD_NOT_ALLOWED', /^Only GET and POST are supported on \/graphql \(and OPTIONS, the CORS preflight\)$/);
    assert.equal(put.headers.get('allow'), 'GET, POST, OPTIONS');
    const del = await send(stack.gateway.url, { method: 'DELETE' });
    assert.equal(del.status, 405);
  });

  it('answers CONNECT (a proxy\'s method, which Node hands to no request handler) with 405 in the envelope, not a connection dropped unanswered', async () => {
    for (const target of ['/graphql', '127.0.0.1:443']) {
      const received = await exchange(stack.gateway.url, `CONNECT ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      assertRawRefusal(received, 405, 'METHOD_NOT_ALLOWED', /^CONNECT is not supported: the gateway is no proxy/);
      assert.match(received, /\r\nAllow: GET, POST, OPTIONS\r\n/i, received);
    }
    // As every refusal of a request whose headers were read, in the media type its Accept prefers.
    const accepting = await exchange(stack.gateway.url, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: application/graphql-response+json\r\n\r\n');
    assert.match(accepting, /\r\nContent-Type: application\/graphql-response\+json; charset=utf-8\r\n/, accepting);
    // The gateway serves on.
    assert.equal((await stack.gql('{ __typename }')).status, 200);
  });

  it('tells a WebSocket handshake (graphql-ws, a subscription client) that the gateway serves none, its Upgrade passed on by the proxy or not, before asking for a token', async () => {
    const handshake = 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: graphql-transport-ws\r\n';
    const noWebSocket = /^The gateway serves no WebSocket: its schema has no subscriptions\. Send queries and mutations over HTTP, as a POST of JSON to \/graphql$/;
    // A browser's WebSocket sends no Authorization header (graphql-ws sends its token in a message once
    // connected): answered 401, it would be told to send one, which it cannot.
    const authenticated = await startStack({ gateway: { auth: { jwtSecret: SECRET } } });
    try {
      for (const url of [stack.gateway.url, authenticated.gateway.url]) {
        const path = new URL(url).pathname;
        // As a client sends it, and as nginx forwards it by default: HTTP/1.0, Upgrade and Connection dropped
        // (hop-by-hop), the Sec-WebSocket-* headers kept.
        const direct = await exchange(url, `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade, close\r\nupgrade: websocket\r\n${handshake}\r\n`);
        const proxied = await exchange(url, `GET ${path} HTTP/1.0\r\nhost: 127.0.0.1\r\n${handshake}\r\n`);
        for (const received of [direct, proxied]) {
          const { errors } = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { errors: Array<{ message: string; extensions: { code: string } }> };
          assert.match(received, /^HTTP\/1\.1 400 /, received);
          assert.equal(errors[0]?.extensions.code, 'BAD_REQUEST', received);
          assert.match(errors[0]?.message ?? '', noWebSocket, received);
        }
      }
      assert.deepEqual(stack.upstreamCalls(), []);
      // A GET that is no handshake is served as ever: /healthz, and the IDE's page, are not refused for it.
      const health = await exchange(stack.gateway.url, `GET /healthz HTTP/1.0\r\nhost: 127.0.0.1\r\n${handshake}\r\n`);
      assert.match(health, /^HTTP\/1\.1 200 /, health);
    } finally {
      await authenticated.close();
    }
  });

  it('refuses a mutation over GET with 405, runs queries over GET', async () => {
    const mutation = await get(stack, 'mutation { deleteAccount(id: "0123456789abcdef01234567") { success } }');
    assert.equal(mutation.status, 405);
    assert.equal(mutation.headers.get('allow'), 'POST');
    assert.match(firstError(mutation)!.message, /GET requests only support query operations/);
    assert.deepEqual(stack.upstreamCalls(), []);
    const query = await get(stack, '{ __typename }');
    assert.deepEqual(query.json, { data: { __typename: 'Query' } });
    // A Bearer token is proof enough against a cross-site request (no browser adds one by itself): a client
    // sending queries over GET with its token (urql, for one) needs no other header, in open mode too.
    const withToken = await send(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json', authorization: 'Bearer any-token' } });
    assert.deepEqual(withToken.json, { data: { __typename: 'Query' } });
    // The scheme alone too: what a frontend sends before it has a token (`Bearer ${getToken()}` of nothing) is
    // no more a header a browser adds by itself. Basic credentials are: a cached password goes with any request.
    const sendWith = (authorization: string) => send(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json', authorization } });
    for (const scheme of ['Bearer', 'bearer ']) assert.deepEqual((await sendWith(scheme)).json, { data: { __typename: 'Query' } }, scheme);
    const basic = await sendWith('Basic dXNlcjpwYXNz');
    assert.equal(basic.status, 400);
    assert.match(firstError(basic)!.message, /Cross-Site Request Forgery/);
    // The scheme is the header's first word, whole: not a word it begins with, nor a word further on (Digest
    // credentials, which a browser also sends by itself, with a user named so).
    for (const other of ['BearerToken abc', 'Digest username="Bearer ada", realm="gateway"']) {
      const refused = await sendWith(other);
      assert.equal(refused.status, 400, other);
      assert.match(firstError(refused)!.message, /Cross-Site Request Forgery/, other);
    }
    // The media type follows Accept: a cache must not hand a client the answer made for another's.
    assert.match(query.headers.get('vary') ?? '', /\bAccept\b/);
    // Nor keep one caller's answer for anyone (a proxy may have turned a cookie into the Bearer header), the
    // refusals included.
    assert.equal(query.headers.get('cache-control'), 'private, no-store');
    assert.equal(mutation.headers.get('cache-control'), 'private, no-store');
    // Nor be read as anything but the media type it says, as a security scanner checks.
    for (const answer of [query, mutation, await send(`${stack.gateway.origin}/healthz`), await send(`${stack.gateway.origin}/nope`)]) {
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    }
  });

  it('takes an empty operationName, variables or extensions of a GET as not sent, as the GraphQL-over-HTTP spec has it', async () => {
    // A client building its URL from every parameter (`operationName=` for an anonymous operation) was answered
    // `Unknown operation named ""`, or that its variables were not JSON.
    const getWith = (parameters: string) =>
      send(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}&${parameters}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    for (const parameters of ['operationName=', 'variables=', 'extensions=', 'operationName=&variables=&extensions=']) {
      const answer = await getWith(parameters);
      assert.deepEqual(answer.json, { data: { __typename: 'Query' } }, `${parameters}: ${answer.text}`);
    }
    // Each is still read when it holds something, and may still be sent only once.
    assertRefused(await getWith('variables=%7B'), 400, 'BAD_REQUEST', /variables search parameter contains invalid JSON/);
    assertRefused(await getWith('operationName=Named'), 400, 'OPERATION_RESOLUTION_FAILURE', /"Named"/);
    assertRefused(await getWith('operationName=&operationName='), 400, 'BAD_REQUEST', /'operationName' search parameter may only be specified once/);
    // What the spec's note says of the text `null`: the name of an operation, not the absence of one.
    const named = await send(`${stack.gateway.url}?query=${encodeURIComponent('query null { __typename }')}&operationName=null`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    assert.deepEqual(named.json, { data: { __typename: 'Query' } }, named.text);
  });

  it('takes a POST body’s empty operationName as not sent, as a GET’s: Go writes a string field it was never given as ""', async () => {
    // A Go client's request struct with `OperationName string \`json:"operationName"\`` (no omitempty) sends "" for
    // every anonymous operation: it was answered `Unknown operation named ""`, where the same request over GET ran.
    const anonymous = await post(stack, JSON.stringify({ query: '{ __typename }', variables: {}, operationName: '' }));
    assert.deepEqual(anonymous.json, { data: { __typename: 'Query' } }, anonymous.text);
    const onlyNamed = await post(stack, JSON.stringify({ query: 'query Only { __typename }', operationName: '' }));
    assert.deepEqual(onlyNamed.json, { data: { __typename: 'Query' } }, onlyNamed.text);
    // No name is empty, so it still picks none of several, as one left out does.
    const several = await post(stack, JSON.stringify({ query: 'query A { __typename } query B { __typename }', operationName: '' }));
    assertRefused(several, 400, 'OPERATION_RESOLUTION_FAILURE', /Must provide operation name/);
    assertRefused(await post(stack, JSON.stringify({ query: '{ __typename }', operationName: 'Named' })), 400, 'OPERATION_RESOLUTION_FAILURE', /"Named"/);
  });

  it('refuses an Accept header that allows no JSON answer with 406 before the operation runs: a mutation in it is not made', async () => {
    const mutation = JSON.stringify({ query: 'mutation { createAccount(input: { email: "accept@example.com" }) { id } }' });
    for (const accept of ['text/plain', 'application/json;q=0, application/graphql-response+json;q=0', 'image/png']) {
      // Apollo picks the answer's media type only once the operation has run: this made the account upstream,
      // then answered 406, the caller never told of it (a retry made another).
      assertRefused(await post(stack, mutation, { ...JSON_HEADERS, accept }), 406, 'BAD_REQUEST', /^An 'accept' header was provided for this request which does not accept application\/json/);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    assert.deepEqual(stack.emulator.store.listAccounts(), []);
    // Over GET too, before its upstream request.
    const query = await send(`${stack.gateway.url}?query=${encodeURIComponent('{ accounts { nodes { id } } }')}`, { headers: { accept: 'text/plain', 'apollo-require-preflight': 'true' } });
    assertRefused(query, 406, 'BAD_REQUEST', /does not accept application\/json/);
    assert.deepEqual(stack.upstreamCalls(), []);
    // Whatever allows one of the two is served as before; an empty Accept too, which Apollo answers in JSON.
    for (const accept of ['*/*', 'application/*', 'text/html, application/json;q=0.1', 'application/graphql-response+json', '']) {
      const answer = await post(stack, JSON.stringify({ query: '{ __typename }' }), { ...JSON_HEADERS, accept });
      assert.equal(answer.status, 200, `${accept}: ${answer.text}`);
    }
  });

  it('answers its own refusals in application/graphql-response+json to a client that accepts only that, as Apollo answers its own', async () => {
    const accept = 'application/graphql-response+json';
    const refusals = [
      [await post(stack, '{"query": ', { ...JSON_HEADERS, accept }), 400, 'BAD_REQUEST'],
      [await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': 'text/plain', accept }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [await send(stack.gateway.url, { method: 'PUT', headers: { ...JSON_HEADERS, accept }, body: '{}' }), 405, 'METHOD_NOT_ALLOWED'],
      [await post(stack, JSON.stringify({ query: `{\n${' __typename\n'.repeat(20_000)}}` }), { ...JSON_HEADERS, accept }), 400, 'QUERY_TOO_COMPLEX'],
      // Apollo's own refusal, for comparison: it always followed Accept.
      [await post(stack, JSON.stringify({ query: '{ nope }' }), { ...JSON_HEADERS, accept }), 400, 'GRAPHQL_VALIDATION_FAILED'],
    ] as const;
    for (const [answer, status, code] of refusals) {
      assert.equal(answer.status, status, answer.text);
      assert.equal(answer.headers.get('content-type'), 'application/graphql-response+json; charset=utf-8', code);
      assert.equal(firstError(answer)?.extensions?.['code'], code);
    }
    // So do those made before the path is looked at, or for a path that is none: their headers were read (unlike
    // the refusals of a request Node's parser could not read, always application/json).
    const unrouted = [
      [`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: ${accept}\r\nexpect: 200-ok\r\ncontent-length: 2\r\n\r\n`, 417, 'EXPECTATION_FAILED'],
      [`GET /graphql HTTP/1.1\r\naccept: ${accept}\r\n\r\n`, 400, 'BAD_REQUEST'],
      [`POST /graphql HTTP/1.1\r\nhost: rebind.attacker.example\r\naccept: ${accept}\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}`, 403, 'FORBIDDEN'],
      [`GET /nope HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: ${accept}\r\nconnection: close\r\n\r\n`, 404, 'NOT_FOUND'],
      [`POST /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: ${accept}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, 405, 'METHOD_NOT_ALLOWED'],
    ] as const;
    for (const [request, status, code] of unrouted) {
      const received = await exchange(stack.gateway.url, request);
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} `), received);
      assert.match(received, /\r\ncontent-type: application\/graphql-response\+json; charset=utf-8\r\n/i, received);
      assert.ok(received.includes(`"code":"${code}"`), received);
    }
    // Without a preference for it, they stay application/json.
    for (const headers of [JSON_HEADERS, { ...JSON_HEADERS, accept: '*/*' }, { ...JSON_HEADERS, accept: 'application/json, application/graphql-response+json' }]) {
      assertRefused(await post(stack, '{"query": ', headers), 400, 'BAD_REQUEST', /./);
    }
  });

  it('answers a GET whose query string takes the headers past 16 KiB with 431 in the envelope of every refusal, saying to POST it, and keeps serving', async () => {
    const long = `# ${'x'.repeat(20_000)}\n{ __typename }`;
    const answer = await exchange(stack.gateway.url, `GET /graphql?query=${encodeURIComponent(long)} HTTP/1.1\r\nhost: 127.0.0.1\r\napollo-require-preflight: true\r\n\r\n`);
    assertRawRefusal(answer, 431, 'REQUEST_HEADER_FIELDS_TOO_LARGE', /^The request line and headers exceed 16 KiB: send a long document by POST/);
    assert.ok(!answer.includes('xxxxxxxx'), 'nothing of the request is echoed');
    // The same document by POST is served.
    const posted = await post(stack, JSON.stringify({ query: long }));
    assert.equal(posted.status, 200, posted.text);
  });

  it('answers an Expect header other than 100-continue with 417 in the envelope of every refusal, and closes the connection', async () => {
    for (const path of ['/graphql', '/healthz']) {
      const answer = await exchange(stack.gateway.url, `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nexpect: 200-ok\r\ncontent-length: 26\r\n\r\n`);
      assertRawRefusal(answer, 417, 'EXPECTATION_FAILED', /^The gateway meets no expectation but 100-continue: send the request without its Expect header$/);
    }
    // 100-continue itself (any case) is met.
    const continued = await exchange(stack.gateway.url, 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nexpect: 100-Continue\r\nconnection: close\r\ncontent-length: 26\r\n\r\n{"query":"{ __typename }"}');
    assert.match(continued, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('answers a request Node cannot parse with 400 BAD_REQUEST in the envelope of every refusal, echoing none of it, and closes the connection', async () => {
    const requests = [
      // A method that is no token.
      'G(T /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer secret-token-1\r\n\r\n',
      // A request line whose HTTP version is none.
      'GET /graphql?query=secret-token-1 HTTP/1.x\r\nhost: 127.0.0.1\r\n\r\n',
      // Two lengths for one body.
      'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nsecret-token-1',
      // A header with no colon.
      'GET /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nsecret-token-1\r\n\r\n',
    ];
    for (const request of requests) {
      const answer = await exchange(stack.gateway.url, request);
      assertRawRefusal(answer, 400, 'BAD_REQUEST', /^The request is not valid HTTP/);
      assert.ok(!answer.includes('secret-token-1'), answer);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers a HEAD whose body Node cannot parse with the refusal’s head alone: a HEAD answer has no body (RFC 9110 9.3.2)', async () => {
    // Found by test/resilience/fuzz-requests.test.ts: the body after the head made Node's client fail the
    // request ("Data after `Connection: close`") instead of reading the 400.
    // (A HEAD of /healthz is answered before its body is read.)
    const answer = await exchange(stack.gateway.url, 'HEAD /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n');
    const [head = '', body] = answer.split('\r\n\r\n', 2);
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/, answer);
    assert.match(head, /\r\nContent-Type: application\/json; charset=utf-8\r\n[^]*\r\nConnection: close$/);
    assert.equal(body, '', answer);
    // Its Content-Length is the body a GET would have had (RFC 9110 §8.6: none other may be sent), not 0.
    const asGet = await exchange(stack.gateway.url, 'GET /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n');
    const [, getBody = ''] = asGet.split('\r\n\r\n', 2);
    assert.match(head, new RegExp(`\r\nContent-Length: ${Buffer.byteLength(getBody)}\r\n`), `${answer}\n${asGet}`);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers an HTTP/1.1 request without a Host header with 400 BAD_REQUEST in the envelope of every refusal, saying so, and closes the connection', async () => {
    for (const request of [
      'GET /graphql?query=%7B__typename%7D HTTP/1.1\r\napollo-require-preflight: true\r\n\r\n',
      'POST /graphql HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 26\r\n\r\n{"query":"{ __typename }"}',
      'GET /healthz HTTP/1.1\r\n\r\n',
    ]) {
      const answer = await exchange(stack.gateway.url, request);
      assertRawRefusal(answer, 400, 'BAD_REQUEST', /^An HTTP\/1\.1 request needs a Host header/);
    }
    // HTTP/1.0 has no Host requirement: served as before.
    const old = await exchange(stack.gateway.url, 'GET /graphql?query=%7B__typename%7D HTTP/1.0\r\napollo-require-preflight: true\r\n\r\n');
    assert.match(old, /^HTTP\/1\.1 200 /);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers a request with more than one Host header with 400 BAD_REQUEST and closes the connection, running nothing (RFC 9112 3.2)', async () => {
    // Node keeps the first Host and drops the others: open mode's loopback check read that one, where a proxy in
    // front (or any other reader) may take the last, so the request ran for a name the check never saw.
    for (const request of [
      'GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nhost: 127.0.0.1\r\nhost: rebound.example\r\napollo-require-preflight: true\r\n\r\n',
      'POST /graphql HTTP/1.1\r\nhost: rebound.example\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 26\r\n\r\n{"query":"{ __typename }"}',
      'GET /healthz HTTP/1.0\r\nhost: 127.0.0.1\r\nhost: 127.0.0.1\r\n\r\n',
    ]) {
      const answer = await exchange(stack.gateway.url, request);
      assertRawRefusal(answer, 400, 'BAD_REQUEST', /^A request may carry one Host header/);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses an HTTP/1.0 request with a Transfer-Encoding with 400 BAD_REQUEST and closes the connection, running neither it nor what follows it (RFC 9112 6.1)', async () => {
    // HTTP/1.0 has no Transfer-Encoding: a proxy in front may have framed this body otherwise (by its length, or to
    // the connection's end), so what the gateway would read as the next request may be part of it (smuggled).
    const body = JSON.stringify({ query: 'mutation { createAccount(input: { email: "smuggled@example.com" }) { id } }' });
    const chunked = `POST /graphql HTTP/1.0\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const answer = await exchange(stack.gateway.url, `${chunked}${rawGraphQLPost('{ accounts { nodes { id } } }')}GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    assertRawRefusal(answer, 400, 'BAD_REQUEST', /^An HTTP\/1\.0 request cannot carry a Transfer-Encoding/);
    assert.deepEqual(stack.upstreamCalls(), []);
    // Framed by its length, an HTTP/1.0 request is served as before.
    const framed = await exchange(stack.gateway.url, `POST /graphql HTTP/1.0\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 26\r\n\r\n{"query":"{ __typename }"}`);
    assert.match(framed, /^HTTP\/1\.1 200 [^]*\{"data":\{"__typename":"Query"\}\}/, framed);
  });

  it('reads every header of a request, not only Node\'s first thousand: a Transfer-Encoding of HTTP/1.0 or a second Host behind a thousand others is refused as in front of them', async () => {
    // Node keeps 1,000 headers of a request by default and drops the rest unsaid (its framing still obeys them):
    // behind 1,000 others (4 KB of `a:` lines, within the 16 KiB Node reads) an HTTP/1.0 request's
    // Transfer-Encoding went unseen, its body was read as chunked and the request behind it run (smuggled).
    const filler = 'a:\r\n'.repeat(1_000);
    const body = JSON.stringify({ query: 'mutation { createAccount(input: { email: "smuggled@example.com" }) { id } }' });
    const chunked = `POST /graphql HTTP/1.0\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\ncontent-type: application/json\r\n${filler}transfer-encoding: chunked\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const answer = await exchange(stack.gateway.url, `${chunked}${rawGraphQLPost('{ accounts { nodes { id } } }')}GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    assertRawRefusal(answer, 400, 'BAD_REQUEST', /^An HTTP\/1\.0 request cannot carry a Transfer-Encoding/);
    const twoHosts = await exchange(stack.gateway.url, `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nhost: 127.0.0.1\r\napollo-require-preflight: true\r\n${filler}host: rebound.example\r\n\r\n`);
    assertRawRefusal(twoHosts, 400, 'BAD_REQUEST', /^A request may carry one Host header/);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers a chunk extension past what Node accepts with 413 PAYLOAD_TOO_LARGE in the envelope of every refusal', async () => {
    const answer = await exchange(
      stack.gateway.url,
      `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n2;${'x'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`,
    );
    assertRawRefusal(answer, 413, 'PAYLOAD_TOO_LARGE', /chunk extension/);
    assert.ok(!answer.includes('xxxxxxxx'), 'nothing of the request is echoed');
  });

  it('answers a malformed request on a keep-alive connection after the first was answered, then closes it', async () => {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const closed = once(socket, 'close');
      socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
      // Its answer, with its length: whole once its body is in.
      const firstAnswerEnd = '{"status":"ok"}';
      await eventually(() => received.includes(firstAnswerEnd));
      socket.write('GET /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nno colon here\r\n\r\n');
      await closed;
      assert.match(received, /^HTTP\/1\.1 200 .*content-length: 15\r\n.*\r\n\r\n\{"status":"ok"\}/is);
      const second = received.slice(received.indexOf(firstAnswerEnd) + firstAnswerEnd.length);
      assertRawRefusal(second, 400, 'BAD_REQUEST', /^The request is not valid HTTP/);
    } finally {
      socket.destroy();
    }
  });

  it('answers a request pipelined before a malformed one, not with the refusal, then closes the connection', async () => {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const closed = once(socket, 'close');
      // In one write: Node reads the second while the first's operation has yet to be answered.
      socket.write(`${rawGraphQLPost('{ __typename }')}G(T /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      await closed;
      // The first answer on the connection is the client's answer to its first request: a refusal there would
      // tell it that request was not valid HTTP.
      assert.match(received, /^HTTP\/1\.1 200 /, received);
      assert.match(received, /\{"data":\{"__typename":"Query"\}\}/);
      assert.doesNotMatch(received, /HTTP\/1\.1 400/);
    } finally {
      socket.destroy();
    }
  });

  it('closes the connection after the answer owed before a request whose body Node cannot parse, without waiting for that request', { timeout: 15_000 }, async () => {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const closed = once(socket, 'close');
      // In one write: the second's headers are read, and its handler waits for its body, when its chunk's size
      // (not hex) fails the parser, while the first's answer is still owed. That body never comes: waited for,
      // its answer held the connection until the request's deadline.
      const broken = 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n';
      socket.write(`${rawGraphQLPost('{ __typename }')}${broken}`);
      await closed;
      assert.match(received, /^HTTP\/1\.1 200 /, received);
      assert.equal((received.match(/HTTP\/1\.1 /g) ?? []).length, 1, received);
    } finally {
      socket.destroy();
    }
  });

  it('answers each request pipelined before one Node cannot parse, the last made after the first is out, then closes the connection', async () => {
    // Each request's upstream answer is let go by the test: the first's, then, once its answer is out, the second's.
    // Told apart by the length of their waits.
    const { held, stack: logging, socket, closed, received, close } = await heldUpstreamConnection();
    try {
      const [first, second] = ['first@example.com', 'second@example.com'].map((email) => logging.emulator.store.createAccount({ email }).id);
      logging.emulator.addFault({ path: `/accounts/${first}`, answerAfterMs: 1 });
      logging.emulator.addFault({ path: `/accounts/${second}`, answerAfterMs: 2 });
      const query = (id: string | undefined) => rawGraphQLPost(`{ account(id: "${id}") { id } }`);
      socket.write(`${query(first)}${query(second)}G(T /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      await eventually(() => held.waiting().length === 2 && logging.lines.some((line) => line.includes('behind answers still owed on its connection')), {
        what: 'both requests held upstream, the third refused behind them',
      });
      held.fire(1);
      await eventually(() => received().includes(`"id":"${first}"`) || socket.destroyed, { what: "the first request's answer" });
      held.fire(2);
      await closed;
      const answers = received().split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, received());
      assert.match(answers[0]!, new RegExp(`^HTTP/1\\.1 200 [^]*"account":\\{"id":"${first}"\\}`));
      assert.match(answers[1]!, new RegExp(`^HTTP/1\\.1 200 [^]*"account":\\{"id":"${second}"\\}`));
    } finally {
      await close();
    }
  });

  it('says once, however much more its client sends, that a request Node cannot parse behind an answer still owed is closed after it', async () => {
    // The first request's upstream answer is let go by the test: until then its answer is owed.
    const { held, stack: logging, socket, closed, received, close } = await heldUpstreamConnection();
    try {
      const slow = logging.emulator.store.createAccount({ email: 'owed@example.com' }).id;
      logging.emulator.addFault({ path: `/accounts/${slow}`, answerAfterMs: 1 });
      const behind = () => logging.lines.filter((line) => line.includes('behind answers still owed on its connection'));
      socket.write(`${rawGraphQLPost(`{ account(id: "${slow}") { id } }`)}G(T /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      await eventually(() => held.waiting().length === 1 && behind().length > 0, { what: 'the first request held upstream, the second refused behind it' });
      // Node feeds its failed parser whatever else arrives, each time one more client error of the same request.
      for (let i = 0; i < 3; i++) {
        socket.write('more bytes of no request\r\n');
        await once(logging.gateway.httpServer, 'clientError');
      }
      held.fireAll();
      await closed;
      assert.match(received(), new RegExp(`^HTTP/1\\.1 200 [^]*"account":\\{"id":"${slow}"\\}`), received());
      assert.equal((received().match(/HTTP\/1\.1 /g) ?? []).length, 1, received());
      assert.equal(behind().length, 1, behind().join('\n'));
    } finally {
      await close();
    }
  });

  it('answers no client error on a connection that failed, nor on one whose answer has begun: it closes it', async () => {
    const { httpServer } = stack.gateway;
    const parseError = () => Object.assign(new Error('Parse Error: Invalid header token'), { code: 'HPE_INVALID_HEADER_TOKEN' });
    // A connection reset by its client (Node reports it as a client error too).
    const onConnection = (socket: Socket) => setImmediate(() => httpServer.emit('clientError', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), socket));
    httpServer.once('connection', onConnection);
    assert.equal(await exchange(stack.gateway.url, ''), '');
    // A request refused after the answer before it began (pipelined behind it): that answer alone is sent.
    const onRequest = (req: IncomingMessage) => httpServer.emit('clientError', parseError(), req.socket);
    httpServer.once('request', onRequest);
    const received = await exchange(stack.gateway.url, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    assert.match(received, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(received, /BAD_REQUEST|HTTP\/1\.1 400/);
  });

  it('answers nothing to a client that ends its side of the connection mid-body: it left, as one that drops the connection does', async () => {
    const client = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      client.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const closed = once(client, 'close');
      // 100 bytes declared, 9 sent, then the client's FIN: Node's parser reports HPE_INVALID_EOF_STATE.
      const refused = once(stack.gateway.httpServer, 'clientError') as Promise<[Error & { code?: string }]>;
      client.end('POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":');
      const [error] = await refused;
      assert.equal(error.code, 'HPE_INVALID_EOF_STATE');
      await closed;
      assert.equal(received, '');
    } finally {
      client.destroy();
    }
  });

  it('closes at once, as Node does, a connection it refused whose client takes nothing: waiting for its answer to flush held the connection past a shutdown\'s grace period', async () => {
    const { httpServer } = stack.gateway;
    const accepted = once(httpServer, 'connection') as Promise<[Socket]>;
    const client = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      client.on('error', () => {});
      client.pause();
      const [serverSide] = await accepted;
      // Bytes the client does not take, as of a large answer it stopped reading, until the kernel holds no more:
      // the refusal's answer cannot leave the process.
      // A last 64 MiB beyond what the kernel may still take as its buffers grow (here at most 4 MiB sent and
      // 32 MiB received): the connection's own queue stays non-empty whatever the machine's timing.
      while (serverSide.write(Buffer.alloc(1 << 20)));
      serverSide.write(Buffer.alloc(64 << 20));
      // This connection's refusal: a client error of an earlier test's connection (its reset, reported late on
      // a busy machine) is not it.
      const refused = new Promise<void>((resolve) => {
        const onClientError = (_error: Error, socket: Socket) => {
          if (socket !== serverSide) return;
          httpServer.off('clientError', onClientError);
          resolve();
        };
        httpServer.on('clientError', onClientError);
      });
      client.write('G(T /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
      await refused;
      assert.equal(serverSide.destroyed, true);
    } finally {
      client.destroy();
    }
  });

  it('reads a POST body labelled Content-Encoding: identity (no coding at all) as JSON', async () => {
    const identity = await post(stack, JSON.stringify({ query: '{ __typename }' }), { ...JSON_HEADERS, 'content-encoding': 'identity' });
    assert.equal(identity.status, 200, identity.text);
    assert.deepEqual(identity.json, { data: { __typename: 'Query' } });
  });

  it('reads no POST\'s query string for its operation: escapes there that are not UTF-8 (a tracking parameter) do not refuse it', async () => {
    const tracked = await send(`${stack.gateway.url}?from=caf%E9`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ query: '{ __typename }' }) });
    assert.equal(tracked.status, 200, tracked.text);
    assert.deepEqual(tracked.json, { data: { __typename: 'Query' } });
  });

  it('answers under the caller\'s own request id when it is a plain token of up to 64 characters, else under a fresh one', async () => {
    const idOf = async (given: string) =>
      (await send(stack.gateway.url, { method: 'POST', headers: { ...JSON_HEADERS, 'x-request-id': given }, body: JSON.stringify({ query: '{ __typename }' }) })).headers.get('x-request-id');
    for (const plain of ['a', 'trace.1:2-3_x', 'x'.repeat(64)]) assert.equal(await idOf(plain), plain);
    for (const refused of ['x'.repeat(65), 'two words', 'a/b', 'a,b', '<script>']) {
      const answered = await idOf(refused);
      assert.match(answered ?? '', /^[0-9a-f-]{36}$/, refused);
    }
  });

  it('reads a Content-Type\'s media type in any case (RFC 9110 §8.3.1): Application/JSON is JSON', async () => {
    const shouted = await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': 'Application/JSON; Charset=UTF-8' });
    assert.equal(shouted.status, 200, shouted.text);
    assert.deepEqual(shouted.json, { data: { __typename: 'Query' } });
  });

  it('reads a body labelled charset=us-ascii (or utf8, or quoted) as JSON: ASCII is UTF-8\'s first 128 characters', async () => {
    for (const charset of ['us-ascii', 'US-ASCII', 'utf8', '"utf-8"']) {
      const labelled = await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': `application/json; charset=${charset}` });
      assert.equal(labelled.status, 200, `${charset}: ${labelled.text}`);
      assert.deepEqual(labelled.json, { data: { __typename: 'Query' } });
    }
  });

  it('takes application/graphql-response+json bodies as JSON', async () => {
    const answer = await post(stack, JSON.stringify({ query: '{ __typename }' }), { 'content-type': 'application/graphql-response+json' });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json, { data: { __typename: 'Query' } });
  });

  it('answers /healthz to GET and HEAD, and 405 with an Allow header to anything else', async () => {
    const health = `${stack.gateway.origin}/healthz`;
    const ok = await send(health);
    assert.deepEqual(ok.json, { status: 'ok' });
    assert.equal(ok.headers.get('content-type'), 'application/json; charset=utf-8');
    const head = await send(health, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const post = await send(health, { method: 'POST' });
    assertRefused(post, 405, 'METHOD_NOT_ALLOWED', /GET and HEAD/);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('refuses an operation that cannot run with 400 and the code that says why, before any upstream call', async () => {
    assertRefused(await post(stack, JSON.stringify({ query: '{ account(' })), 400, 'GRAPHQL_PARSE_FAILED', /Syntax Error/);
    assertRefused(await post(stack, JSON.stringify({ query: '{ nope }' })), 400, 'GRAPHQL_VALIDATION_FAILED', /nope/);
    const two = 'query A { __typename } query B { __typename }';
    assertRefused(await post(stack, JSON.stringify({ query: two })), 400, 'OPERATION_RESOLUTION_FAILURE', /operation name/i);
    assertRefused(await post(stack, JSON.stringify({ query: two, operationName: 'C' })), 400, 'OPERATION_RESOLUTION_FAILURE', /"C"/);
    const badVariable = JSON.stringify({ query: 'query ($n: Int!) { accounts(first: $n) { nodes { id } } }', variables: { n: 'ten' } });
    assertRefused(await post(stack, badVariable), 400, 'BAD_USER_INPUT', /\$n/);
    // graphql-js validates a subscription against a schema that has none; executing it was an unexpected error.
    assertRefused(await post(stack, JSON.stringify({ query: 'subscription { __typename }' })), 400, 'GRAPHQL_VALIDATION_FAILED', /no subscriptions/);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses variables over 64 KB before GraphQL quotes them in its errors (a 1 MB object once answered 44 MB)', async () => {
    const query = 'query ($f: AccountFilter) { accounts(filter: $f, first: 1) { nodes { id } } }';
    const f = Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, 0]));
    const answer = await post(stack, JSON.stringify({ query, variables: { f } }));
    assertRefused(answer, 400, 'BAD_REQUEST', /^The variables take \d+ bytes as JSON, more than the 65536 accepted$/);
    assert.ok(answer.text.length < 1_000, `${answer.text.length} bytes answered`);
    // Counted in bytes, not characters: 60,000 '€' are 180,000 bytes in a body of under 65,536 characters.
    const euros = await post(stack, JSON.stringify({ query, variables: { f: { email: '€'.repeat(60_000) } } }));
    assertRefused(euros, 400, 'BAD_REQUEST', /^The variables take 180\d{3} bytes as JSON, more than the 65536 accepted$/);
    // And as JSON writes them: 4,000 × 1e20 is a 20 KB body, and 88 KB of variables. Three bytes a character
    // would put its variables under 64 KB, and they would go unmeasured: a number grows as it is written too.
    const large = await post(stack, JSON.stringify({ query, variables: { f: { email: 'x' } } }).replace('"x"', `[${Array(4_000).fill('1e20').join(',')}]`));
    assertRefused(large, 400, 'BAD_REQUEST', /^The variables take 880\d{2} bytes as JSON, more than the 65536 accepted$/);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses variables nested more than 32 levels deep with 400, not an unexpected error (a 10 KB body once overflowed the stack)', async () => {
    // The variables object is the first level, `v` and the lists within it the others.
    const nested = (lists: number) => `{"query":"{ __typename }","variables":{"v":${'['.repeat(lists)}${']'.repeat(lists)}}}`;
    for (const lists of [32, 62]) assertRefused(await post(stack, nested(lists)), 400, 'BAD_REQUEST', /^The variables nest deeper than the 32 levels accepted$/);
    // Deeper still, the whole body is refused before it is parsed (the next test).
    assertRefused(await post(stack, nested(5_000)), 400, 'BAD_REQUEST', /^The request body nests objects and lists deeper than the 64 levels accepted$/);
    assert.equal((await post(stack, nested(31))).status, 200);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses a body nesting deeper than 64 levels before parsing it, wherever the nesting is (JSON.parse of 1 MiB of nested arrays held the event loop ~220 ms)', async () => {
    // In a member the gateway and Apollo never read, which nothing after parsing would look at.
    const nested = (lists: number) => `{"query":"{ __typename }","extensions":{"x":${'['.repeat(lists)}${']'.repeat(lists)}}}`;
    // The body, `extensions` and the lists: 63 lists are 65 levels.
    assertRefused(await post(stack, nested(63)), 400, 'BAD_REQUEST', /^The request body nests objects and lists deeper than the 64 levels accepted$/);
    assertRefused(await post(stack, nested(500_000)), 400, 'BAD_REQUEST', /^The request body nests objects and lists deeper than the 64 levels accepted$/);
    assert.equal((await post(stack, nested(62))).status, 200);
    // Brackets inside strings are text, not nesting.
    assert.equal((await post(stack, JSON.stringify({ query: `{ __typename } # ${'['.repeat(100)}`, extensions: { x: '{'.repeat(100), y: '\\"['.repeat(100) } }))).status, 200);
    // An escaped quote does not end its string: the brackets after it are still text.
    assert.equal((await post(stack, JSON.stringify({ query: '{ __typename }', extensions: { z: `"${'['.repeat(100)}` } }))).status, 200);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers many bad variable values as the caller’s mistake, each message kept short', async () => {
    const query = 'query ($f: AccountFilter) { accounts(filter: $f, first: 1) { nodes { id } } }';
    const f = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`unknownFieldNumber${i}`, 'x'.repeat(500)]));
    const answer = await post(stack, JSON.stringify({ query, variables: { f } }));
    assert.equal(answer.status, 400);
    const errors = answer.json!.errors!;
    assert.deepEqual([...new Set(errors.map((error) => error.extensions?.['code']))], ['BAD_USER_INPUT'], 'not INTERNAL_SERVER_ERROR past graphql-js’s 50 errors');
    assert.ok(errors.every((error) => error.message.length < 1_100), 'each message cut to a readable length');
    assert.match(errors[0]!.message, /… \(\d+ more characters\)$/);
    // Cut past 1,000 characters, not at them: a misspelt field's message is its name and 38 characters more.
    const misspelt = async (length: number) => (await post(stack, JSON.stringify({ query: `{ ${'z'.repeat(length - 38)} }` }))).json!.errors![0]!.message;
    assert.equal((await misspelt(1_000)).length, 1_000);
    assert.match(await misspelt(1_001), /^Cannot query field "z+" on type "Query"… \(1 more characters\)$/);
  });

  it('cuts a long message between characters, never inside a surrogate pair (an emoji), whichever code unit the cut falls on', async () => {
    const query = 'query ($n: Int) { accounts(first: $n) { nodes { id } } }';
    // graphql-js quotes the whole value: one pad character or none puts the 1,000th code unit on each half of a pair.
    for (const pad of ['', 'x']) {
      const value = `${pad}${'😀'.repeat(700)}`;
      const answer = await post(stack, JSON.stringify({ query, variables: { n: value } }));
      const message = answer.json!.errors![0]!.message;
      const cut = /^(.*)… \((\d+) more characters\)$/su.exec(message);
      assert.ok(cut, `the message is cut (pad ${JSON.stringify(pad)}): ${message.slice(0, 80)}`);
      assert.ok(!/\p{Cs}/u.test(message), `no half of a surrogate pair is left in the message (pad ${JSON.stringify(pad)})`);
      assert.ok(cut[1]!.length <= 1_000, 'at most 1,000 code units kept');
      // The characters left out are the rest of graphql-js's message, whose quoted value is the whole one sent.
      assert.ok(message.startsWith(`Variable "$n" got invalid value "${pad}😀`), 'the message quotes the value');
      assert.equal(cut[1]!.length + Number(cut[2]), `Variable "$n" got invalid value "${value}"; Int cannot represent non-integer value: "${value}"`.length, 'the count says what was left out');
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses a malformed persisted query with 400 BAD_REQUEST, not as an unexpected error', async () => {
    const query = '{ __typename }';
    for (const [persistedQuery, message] of [
      [{ version: 1, sha256Hash: 'abc' }, /provided sha does not match query/],
      [{ version: 2, sha256Hash: 'abc' }, /Unsupported persisted query version/],
      ['x', /Unsupported persisted query version/],
    ] as const) {
      assertRefused(await post(stack, JSON.stringify({ query, extensions: { persistedQuery } })), 400, 'BAD_REQUEST', message);
    }
  });

  it('keeps Cache-Control private, no-store on a persisted query’s miss, where Apollo answers its own, as on its hit', async () => {
    const query = '{ cacheControlOfPersistedQuery: __typename }';
    const persistedQuery = { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') };
    const byGet = () =>
      send(`${stack.gateway.url}?extensions=${encodeURIComponent(JSON.stringify({ persistedQuery }))}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    // Apollo's `private, no-cache, must-revalidate` let a browser keep the miss; docs/auth.md promises every answer no-store.
    for (const miss of [await byGet(), await post(stack, JSON.stringify({ extensions: { persistedQuery } }))]) {
      assert.equal(firstError(miss)?.extensions?.['code'], 'PERSISTED_QUERY_NOT_FOUND', miss.text);
      assert.equal(miss.headers.get('cache-control'), 'private, no-store');
    }
    assert.equal((await post(stack, JSON.stringify({ query, extensions: { persistedQuery } }))).headers.get('cache-control'), 'private, no-store');
    const hit = await byGet();
    assert.deepEqual(hit.json, { data: { cacheControlOfPersistedQuery: 'Query' } });
    assert.equal(hit.headers.get('cache-control'), 'private, no-store');
  });

  it('closes the connection after a 413, the rest of the body unread', async () => {
    const big = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    const answer = await post(stack, big);
    assert.equal(answer.status, 413);
    assert.equal(answer.headers.get('connection'), 'close');
  });

  it('asks for a body with 100 Continue only once it means to read it: one too large is refused before it is sent', async () => {
    // curl waits for it before bodies over 1 MiB; Node sent it at once, so the body was uploaded only to be refused.
    const head = (length: number) =>
      `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: ${length}\r\n\r\n`;
    assert.match(await exchange(stack.gateway.url, head(2 * 1024 * 1024)), /^HTTP\/1\.1 413 .*"code":"PAYLOAD_TOO_LARGE"/s);

    const body = JSON.stringify({ query: '{ __typename }' });
    const within = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      within.on('data', (chunk: Buffer) => {
        received += chunk.toString();
        if (received === 'HTTP/1.1 100 Continue\r\n\r\n') within.write(body);
      });
      within.write(head(Buffer.byteLength(body)));
      await eventually(() => received.includes('"__typename":"Query"'));
      assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    } finally {
      within.destroy();
    }
    // An HTTP/1.0 client knows no 100 Continue (RFC 9110, 10.1.1): it sends its body at once and gets none.
    const old = await exchange(stack.gateway.url, head(Buffer.byteLength(body)).replace('HTTP/1.1', 'HTTP/1.0') + body);
    assert.match(old, /^HTTP\/1\.1 200 .*"__typename":"Query"/s);
  });

  it('answers an unknown path with 404 NOT_FOUND in the envelope of every other refusal, naming the paths it serves', async () => {
    const answer = await send(`${stack.gateway.origin}/graphql/extra`);
    assertRefused(answer, 404, 'NOT_FOUND', /^No such endpoint: \/graphql\/extra\. GraphQL is served on \/graphql/);
    assert.equal(answer.headers.get('cache-control'), 'private, no-store');
    assertRefused(await send(`${stack.gateway.origin}/nope`, { method: 'POST', headers: JSON_HEADERS, body: '{}' }), 404, 'NOT_FOUND', /\/nope/);
    // A path that starts with two slashes is a path, not another host's: `//x/healthz` was served as /healthz.
    for (const target of ['//graphql', '//x/healthz', '//[']) {
      const received = await exchange(stack.gateway.url, `GET ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
      assert.match(received, /^HTTP\/1\.1 404 /, `${target}: ${received}`);
      assert.ok(received.includes(`"No such endpoint: ${target}.`), received);
    }
    // A long path is not echoed whole.
    const long = await send(`${stack.gateway.origin}/${'x'.repeat(5000)}`);
    assertRefused(long, 404, 'NOT_FOUND', /^No such endpoint: \/x+…/);
    assert.ok(long.text.length < 500, long.text);
  });

  it('answers a request target that is no path and no http(s) URL with 400 BAD_REQUEST: the client’s mistake, not an unexpected error', async () => {
    stack.upstreamCalls();
    // User information in a target is an error (RFC 9110 §4.2.4), another scheme names no resource of this server,
    // and an empty authority none at all (a URL parser reads `http:///graphql` as the host `graphql`): none was
    // served, as the emulator (which reads targets alike) serves none.
    for (const target of ['http://[', 'http://127.0.0.1:99999/graphql', 'http://user@127.0.0.1/graphql', 'ftp://127.0.0.1/graphql', 'http:///graphql']) {
      const received = await exchange(stack.gateway.url, `GET ${target}?query=%7B__typename%7D HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
      assert.match(received, /^HTTP\/1\.1 400 /, `${target}: ${received}`);
      const body = JSON.parse(received.slice(received.indexOf('{'), received.lastIndexOf('}') + 1)) as { errors: Array<{ message: string; extensions: { code: string } }> };
      assert.deepEqual(body.errors.map((error) => [error.message, error.extensions.code]), [['The request target is no path and no valid http(s) URL without user information: send a path, such as /graphql', 'BAD_REQUEST']], target);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('answers OPTIONS * (the server as a whole, RFC 9110 §9.3.7) with the methods it serves, and refuses * for any other method', async () => {
    const options = await exchange(stack.gateway.url, 'OPTIONS * HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    assert.match(options, /^HTTP\/1\.1 204 /, options);
    assert.match(options, /\r\nAllow: GET, HEAD, POST, OPTIONS\r\n/i, options);
    const get = await exchange(stack.gateway.url, 'GET * HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    assert.match(get, /^HTTP\/1\.1 400 /, get);
    assert.ok(get.includes('"The request target * is for OPTIONS only: send a path, such as /graphql"'), get);
  });

  it('never shows a stack trace outside development, whatever goes wrong', async () => {
    const answers = [
      await post(stack, '{"query": '),
      await post(stack, 'x'.repeat(2 * 1024 * 1024)),
      await post(stack, '{}', { 'content-type': 'text/plain' }),
      await post(stack, '[]'),
      await send(stack.gateway.url, { method: 'PATCH' }),
      await send(`${stack.gateway.origin}/nope`),
      await get(stack, 'mutation { deleteAccount(id: "x") { success } }'),
      await post(stack, JSON.stringify({ query: '{ nope }' })),
      await post(stack, JSON.stringify({ query: '{ account(' })),
      await post(stack, JSON.stringify({ query: '{ accounts(first: 0) { nodes { id } } }' })),
      await post(stack, JSON.stringify({ query: '{ account(id: "0123456789abcdef01234567") { id } }' })),
      await post(stack, JSON.stringify({ query: `{ ${Array.from({ length: 200 }, (_, i) => `a${i}: __typename`).join(' ')} }` })),
      await post(stack, JSON.stringify({ query: 'query ($n: Int!) { accounts(first: $n) { nodes { id } } }', variables: { n: 'ten' } })),
    ];
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [400, 413, 415, 400, 405, 404, 405, 400, 400, 200, 200, 400, 400],
    );
    for (const answer of answers) assert.ok(!hasStackTrace(answer.text), `stack trace in: ${answer.text.slice(0, 500)}`);
  });
});

describe('HTTP pipelining', () => {
  it('closes a connection that pipelines more than 32 requests at once, stopping their operations; other clients are served', { timeout: 30_000 }, async () => {
    const stack = await startLoggingStack('warn');
    try {
      const id = stack.emulator.store.createAccount({ email: 'piped@example.com' }).id;
      stack.emulator.addFault({ path: `/accounts/${id}`, answerAfterMs: 2_000 });
      // With the client's own request id: the line names the request it cut at by that id, which the client knows.
      const request = rawGraphQLPost(`{ account(id: "${id}") { id } }`).replace('\r\n\r\n', '\r\nx-request-id: piped-client\r\n\r\n');
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.resume();
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(request.repeat(500));
      await closed;
      const cut = logEntries(stack.lines).filter((entry) => String(entry['message']).includes('pipelined more requests than the gateway runs at once'));
      assert.deepEqual(cut.map((entry) => entry['requestId']), ['piped-client']);
      // The ones begun before the cut stop with it: no more than 32 went upstream, and none is left waiting.
      assert.ok(stack.upstreamCalls().length <= 32, 'no more than the 32 run at once went upstream');
      await eventually(() => stack.emulator.inFlight === 0, { timeoutMs: 10_000 });
      assert.deepEqual((await stack.gql('{ __typename }')).body, { data: { __typename: 'Query' } });
    } finally {
      await stack.close();
    }
  });

  it('runs exactly 32 requests pipelined at once on one connection, and closes it at the 33rd', { timeout: 30_000 }, async () => {
    const stack = await startLoggingStack('warn');
    try {
      const id = stack.emulator.store.createAccount({ email: 'piped32@example.com' }).id;
      // Slow enough that every request of the write is still open when the last of them arrives.
      stack.emulator.addFault({ path: `/accounts/${id}`, latencyMs: 500 });
      const pipeline = async (count: number) => {
        const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
        socket.on('error', () => {});
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        let closed = false;
        socket.once('close', () => (closed = true));
        socket.write(Array.from({ length: count }, (_, n) => rawGraphQLPost(`{ n${n}: account(id: "${id}") { id } }`)).join(''));
        return { socket, closed: () => closed, received: () => received };
      };
      const cutLines = () => logEntries(stack.lines).filter((entry) => String(entry['message']).includes('pipelined more requests than the gateway runs at once'));

      const full = await pipeline(32);
      await eventually(() => (full.received().match(/HTTP\/1\.1 200 /g) ?? []).length === 32, { timeoutMs: 15_000, what: 'the 32 answers' });
      assert.equal(full.socket.destroyed, false);
      assert.deepEqual(cutLines(), []);
      full.socket.destroy();

      const over = await pipeline(33);
      await eventually(over.closed, { timeoutMs: 10_000, what: 'the connection of 33 closed' });
      assert.equal(over.received(), '');
      assert.equal(cutLines().length, 1);
    } finally {
      await stack.close();
    }
  });

  it('runs no request that arrives behind an answer closing the connection (RFC 9112 §9.6): a mutation there was made, its answer never sent', async () => {
    // The first request's upstream answer is let go by the test.
    const { held, stack, socket, closed, received, close } = await heldUpstreamConnection();
    try {
      const { store } = stack.emulator;
      const slow = store.createAccount({ email: 'slow@example.com' }).id;
      const kept = store.createAccount({ email: 'kept@example.com', first_name: 'Kept' }).id;
      stack.emulator.addFault({ path: `/accounts/${slow}`, answerAfterMs: 1 });
      // A request whose answer waits upstream, then one refused at once with Connection: close (no Host),
      // its answer queued behind the first.
      socket.write(rawGraphQLPost(`{ account(id: "${slow}") { id } }`) + 'GET /healthz HTTP/1.1\r\n\r\n');
      await eventually(() => held.waiting().length === 1, { what: 'the first request held upstream' });
      // Then a mutation: no answer to it can follow that refusal's on this connection.
      socket.write(rawGraphQLPost(`mutation { updateAccount(id: "${kept}", input: { firstName: "Changed" }) { success } }`));
      await eventually(() => stack.emulator.requests.some((r) => r.method === 'POST') || stack.lines.some((line) => line.includes('not run: its connection closes')), {
        what: 'the mutation made upstream, or refused',
      });
      held.fireAll();
      await closed;
      assert.deepEqual(received().match(/^HTTP\/1\.1 \d+/gm), ['HTTP/1.1 200', 'HTTP/1.1 400'], received());
      assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${slow}`]);
      assert.equal(store.getAccount(kept)?.first_name, 'Kept');
      // Its line carries no request id: the client sent none, and one made up here would be in no answer.
      const notRun = logEntries(stack.lines).filter((entry) => String(entry['message']).startsWith('request not run'));
      assert.deepEqual(notRun.map((entry) => Object.hasOwn(entry, 'requestId')), [false], stack.lines.join('\n'));
    } finally {
      await close();
    }
  });

  it('runs no request pipelined behind a refusal that closed the connection before the request was read (its body unread, in the same write)', async () => {
    const stack = await startLoggingStack('debug');
    try {
      const { store } = stack.emulator;
      const kept = store.createAccount({ email: 'kept@example.com', first_name: 'Kept' }).id;
      // The refusal (415, its body unread) is made before Node parses that body and the mutation after it: its
      // answer has closed the connection, and is over, by the time the mutation arrives.
      const refused = 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n{}';
      const mutation = rawGraphQLPost(`mutation { updateAccount(id: "${kept}", input: { firstName: "Changed" }) { success } }`).replace('\r\n', '\r\nx-request-id: behind-the-refusal\r\n');
      const received = await exchange(stack.gateway.url, refused + mutation);
      assert.deepEqual(received.match(/^HTTP\/1\.1 \d+/gm), ['HTTP/1.1 415'], received);
      await eventually(() => stack.lines.some((line) => line.includes('behind-the-refusal')), { what: 'a line of the request behind the refusal' });
      const lines = logEntries(stack.lines).filter((entry) => entry['requestId'] === 'behind-the-refusal');
      assert.deepEqual(lines.map((entry) => entry['message']), ['request not run: its connection closes after an answer ahead of it'], stack.lines.join('\n'));
      assert.deepEqual(stack.upstreamCalls(), []);
      assert.equal(store.getAccount(kept)?.first_name, 'Kept');
    } finally {
      await stack.close();
    }
  });

  it('counts only the requests open at once on a connection: one kept alive serves any number of them one after another', async () => {
    const stack = await startStack();
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const answered = () => (received.match(/HTTP\/1\.1 200 /g) ?? []).length;
      // Each sent once the one before it is answered: never more than one open, 40 in all.
      for (let n = 0; n < 40; n++) {
        socket.write(rawGraphQLPost(`{ n${n}: __typename }`));
        await eventually(() => answered() === n + 1 || socket.destroyed, { what: `the answer to request ${n + 1}` });
        assert.equal(socket.destroyed, false, `the connection closed at request ${n + 1}`);
      }
    } finally {
      socket.destroy();
      await stack.close();
    }
  });

  it('serves a few pipelined requests on one connection, in order', async () => {
    const stack = await startStack();
    try {
      const request = (n: number) => rawGraphQLPost(`{ n${n}: __typename }`);
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.write(Array.from({ length: 20 }, (_, n) => request(n)).join(''));
      await eventually(() => (received.match(/HTTP\/1\.1 200 /g) ?? []).length === 20, { timeoutMs: 10_000 });
      assert.deepEqual([...received.matchAll(/"(n\d+)":"Query"/g)].map((m) => m[1]), Array.from({ length: 20 }, (_, n) => `n${n}`));
      socket.destroy();
    } finally {
      await stack.close();
    }
  });

  it('does not cut, as stalled, an operation still running behind an answer taken on its connection', async () => {
    const stack = await startStack({ gateway: { answerStallTimeoutMs: 200 } });
    try {
      const id = stack.emulator.store.createAccount({ email: 'behind@example.com' }).id;
      // Running far past the stall timeout of the answer ahead of it, which its client took at once.
      stack.emulator.addFault({ path: `/accounts/${id}`, answerAfterMs: 1_000 });
      const slow = rawGraphQLPost(`{ account(id: "${id}") { id } }`).replace('\r\n\r\n', '\r\nconnection: close\r\n\r\n');
      const received = await exchange(stack.gateway.url, rawGraphQLPost('{ __typename }') + slow);
      assert.equal((received.match(/HTTP\/1\.1 200 /g) ?? []).length, 2, received);
      assert.match(received, new RegExp(`"account":\\{"id":"${id}"\\}`));
    } finally {
      await stack.close();
    }
  });
});

describe('HTTP settings', () => {
  it('take the body limit from maxBodyBytes', async () => {
    const small = await startStack({ gateway: { maxBodyBytes: 1024 } });
    try {
      const over = await post(small, JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(2048) } }));
      assertRefused(over, 413, 'PAYLOAD_TOO_LARGE', /exceeds 1024 bytes/);
      assert.equal((await small.gql('{ __typename }')).status, 200);
    } finally {
      await small.close();
    }
  });

  it('refuse an operation past maxOperationsInFlight with 503 SERVICE_UNAVAILABLE and Retry-After, before it runs, warned of once; admit again once one ends', async () => {
    const stack = await startLoggingStack('info', { gateway: { maxOperationsInFlight: 2 } });
    const hung: AbortController[] = [];
    try {
      const ok = stack.emulator.store.createAccount({ email: 'ok@example.com' }).id;
      const stuck = stack.emulator.store.createAccount({ email: 'stuck@example.com' }).id;
      const read = (id: string) => JSON.stringify({ query: 'query ($id: ID!) { account(id: $id) { id } }', variables: { id } });
      // Answered operations are counted out: more of them, one after another, than the cap.
      for (let i = 0; i < 3; i++) assert.equal((await post(stack, read(ok))).status, 200);
      stack.emulator.addFault({ path: `/accounts/${stuck}`, hang: true });
      const pending = [0, 1].map(() => {
        const controller = new AbortController();
        hung.push(controller);
        return send(stack.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: read(stuck), signal: controller.signal }).catch(() => undefined);
      });
      await eventually(() => stack.emulator.inFlight === 2);
      stack.upstreamCalls();
      for (let i = 0; i < 2; i++) {
        const refused = await post(stack, read(ok));
        assertRefused(refused, 503, 'SERVICE_UNAVAILABLE', /as many operations as it may at once \(2\); retry shortly/);
        assert.equal(refused.headers.get('retry-after'), '1');
      }
      assert.deepEqual(stack.upstreamCalls(), []);
      assert.equal((await send(`${stack.gateway.origin}/healthz`)).status, 200, 'the health check is no operation');
      const warnings = stack.lines.filter((line) => line.includes('MAX_OPERATIONS_IN_FLIGHT'));
      assert.equal(warnings.length, 1, 'one warning for a burst of refusals, not one each');
      assert.equal(JSON.parse(warnings[0]!).maximum, 2);
      await eventually(() => stack.lines.filter((line) => line.includes('"SERVICE_UNAVAILABLE"')).length === 2, { what: 'each refusal in its operation line' });

      // A client that gives up frees its place.
      hung[0]!.abort();
      await pending[0];
      await eventually(async () => (await post(stack, read(ok))).status === 200, { what: 'an operation admitted once a running one ended' });
      // The refusals after the first went unsaid; the first operation admitted once they have been quiet for
      // LOAD_REFUSAL_LOG_INTERVAL_MS says how many, rather than leaving them to the next burst or to shutdown.
      assert.equal((await withClockAhead(LOAD_REFUSAL_LOG_INTERVAL_MS, () => post(stack, read(ok)))).status, 200);
      const unsaid = stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => String(entry['message']).startsWith('operations refused for load left unsaid'));
      assert.equal(unsaid.length, 1, stack.lines.join('\n'));
      assert.ok(Number(unsaid[0]!['sinceLastLine']) >= 1, JSON.stringify(unsaid));
    } finally {
      for (const controller of hung) controller.abort();
      await stack.close();
    }
  });

  it('refuse a body declared larger than maxBodyBytesInFlight for its size (413), not for load (503): retried, it would be refused again', async () => {
    const small = await startStack({ gateway: { maxBodyBytes: 1024, maxBodyBytesInFlight: 4096 } });
    try {
      // Its declared length alone: the refusal comes before any of the body is read.
      const received = await exchange(small.gateway.url, 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 8192\r\n\r\n');
      assert.match(received, /^HTTP\/1\.1 413 /);
      assert.match(received, /"PAYLOAD_TOO_LARGE"/);
      assert.doesNotMatch(received, /retry-after/i);
    } finally {
      await small.close();
    }
  });

  it('refuse a body past maxBodyBytesInFlight, counting those still arriving by their declared length, with 503 SERVICE_UNAVAILABLE and Retry-After before it is read, warned of once; admit again once one is in or its client left', async () => {
    const stack = await startLoggingStack('info', { gateway: { maxBodyBytes: 1024, maxBodyBytesInFlight: 3 * 1024 + 512 } });
    const port = Number(new URL(stack.gateway.url).port);
    /** A GraphQL body of exactly `bytes` bytes. */
    const sized = (bytes: number) => {
      const bare = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
      return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(bytes - bare.length) } });
    };
    const sockets: Socket[] = [];
    /** A POST of a 1,024-byte body sent but for its last byte, held until `finish` sends it. */
    const holdBody = () => {
      const body = sized(1024);
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1024\r\n\r\n${body.slice(0, -1)}`);
      return {
        socket,
        async finish(): Promise<string> {
          socket.write(body.slice(-1));
          await eventually(() => /\r\n\r\n\{.*\}\n?$/s.test(received), { what: 'the held body answered' });
          return received;
        },
      };
    };
    try {
      // Three such bodies hold 3,072 bytes: one more of 1,024 would pass the cap, one of 512 would not.
      const held = [holdBody(), holdBody(), holdBody()];
      await eventually(async () => (await post(stack, sized(1024))).status === 503, { what: 'a fourth body refused while three arrive' });
      const refused = await post(stack, sized(1024));
      assertRefused(refused, 503, 'SERVICE_UNAVAILABLE', /as many request bodies as it may hold at once \(3584 bytes\); retry shortly/);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal((await post(stack, sized(512))).status, 200, 'a body that fits beside them is read');
      // One of no declared length (chunked) may come to maxBodyBytes, and is counted so however small it turns out.
      const small = sized(100);
      const chunked = await exchange(
        stack.gateway.url,
        `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${small.length.toString(16)}\r\n${small}\r\n0\r\n\r\n`,
      );
      assert.match(chunked, /^HTTP\/1\.1 503 .*SERVICE_UNAVAILABLE/s, chunked);
      const warnings = stack.lines.filter((line) => line.includes('MAX_BODY_BYTES_IN_FLIGHT'));
      assert.equal(warnings.length, 1, 'one warning for a burst of refusals, not one each');
      assert.equal(JSON.parse(warnings[0]!).maximum, 3 * 1024 + 512);

      // A body all in gives its room back, and so does one whose client left before sending all of it.
      assert.match(await held[0]!.finish(), /^HTTP\/1\.1 200 .*"__typename":"Query"/s);
      held[1]!.socket.destroy();
      await eventually(async () => (await post(stack, sized(1024))).status === 200, { what: 'a body read once a held one is in' });
      const again = [holdBody(), holdBody()];
      await eventually(async () => (await post(stack, sized(1024))).status === 503, { what: 'a body refused once the cap is held again' });
      // Each of those two was read, as was the third held from the start: the room given back was not given twice.
      for (const body of [held[2]!, ...again]) assert.match(await body.finish(), /^HTTP\/1\.1 200 /);
    } finally {
      for (const socket of sockets) socket.destroy();
      await stack.close();
    }
  });

  it('refuse a programmatic start with maxBodyBytesInFlight below maxBodyBytes, as MAX_BODY_BYTES_IN_FLIGHT is refused: every chunked body would get 503', async () => {
    await assert.rejects(startStack({ gateway: { maxBodyBytes: 2048, maxBodyBytesInFlight: 2047 } }), /^Error: maxBodyBytesInFlight \(2047\) must be at least maxBodyBytes \(2048\)$/);
    // Beside the default maxBodyBytes, 1 MiB.
    await assert.rejects(startStack({ gateway: { maxBodyBytesInFlight: 1024 } }), /^Error: maxBodyBytesInFlight \(1024\) must be at least maxBodyBytes \(1048576\)$/);
    // Exactly maxBodyBytes holds one body of the largest size: allowed, as MAX_BODY_BYTES_IN_FLIGHT equal to MAX_BODY_BYTES is.
    const exact = await startStack({ gateway: { maxBodyBytes: 2048, maxBodyBytesInFlight: 2048 } });
    try {
      assert.equal((await exact.gql('{ __typename }')).status, 200);
    } finally {
      await exact.close();
    }
  });

  it('count an operation out of maxOperationsInFlight once its answer is made, while its client still takes it', { timeout: 30_000 }, async () => {
    const stack = await startStack({ gateway: { maxOperationsInFlight: 1 } });
    let download: SlowRead | undefined;
    try {
      // ~20 MB that its client does not read: it waits in the gateway for as long as the stall timeout allows.
      download = await startSlowDownload(stack.emulator, stack.gateway.url);
      assert.ok(download.received() < download.contentLength, 'the download is still unread when the next operation comes');
      assert.equal((await stack.gql('{ __typename }')).status, 200);
    } finally {
      download?.socket.destroy();
      await stack.close();
    }
  });

  describe('maxAnswerBytesInFlight', () => {
    /** The ~20 MB answer of startSlowDownload: more than loopback's socket buffers hold, so most of it waits in the gateway. */
    const BIG_ANSWER = '{ accounts(first: 100) { nodes { firstName } } }';
    /** An operation that calls the upstream once it runs, with a small answer. */
    const probe = (stack: Stack) => post(stack, JSON.stringify({ query: '{ accounts(first: 1) { nodes { id } } }' }));
    /** One such answer held stays below the cap; two pass it. */
    const gateway = { maxAnswerBytes: 24 * 1024 * 1024, maxAnswerBytesInFlight: 32 * 1024 * 1024 };
    /** Clients of `stack` asking for BIG_ANSWER and reading none of it; the first makes the accounts it lists. */
    const bigAnswers = (stack: Stack) => {
      const started: SlowRead[] = [];
      return {
        started,
        async start(): Promise<SlowRead> {
          const download = started.length === 0 ? await startSlowDownload(stack.emulator, stack.gateway.url) : await startSlowRead(stack.gateway.url, rawGraphQLPost(BIG_ANSWER));
          started.push(download);
          return download;
        },
        /** Drops every client started, then stops the stack. */
        async close(): Promise<void> {
          for (const download of started) download.socket.destroy();
          await stack.close();
        },
      };
    };
    /** Reads the rest of `download`'s answer. */
    const readAll = async (download: SlowRead) => {
      download.socket.resume();
      await eventually(() => download.received() === download.contentLength || download.socket.destroyed, { timeoutMs: 20_000, what: 'the whole answer read' });
      assert.equal(download.received(), download.contentLength, 'the answer was not cut');
    };

    it('refuse a new operation with 503 SERVICE_UNAVAILABLE and Retry-After before it runs once the answers not taken pass it, warned of once; never cut those answers; admit again once one is taken or its client left, its room given back once', { timeout: 90_000 }, async () => {
      const stack = await startLoggingStack('info', { gateway });
      const answers = bigAnswers(stack);
      try {
        const [first, second] = [await answers.start(), await answers.start()];
        assert.ok(first.received() < first.contentLength && first.contentLength < gateway.maxAnswerBytesInFlight, 'the first answer is not yet taken and alone fits under the cap');
        stack.upstreamCalls();
        for (let i = 0; i < 2; i++) {
          const refused = await probe(stack);
          assertRefused(refused, 503, 'SERVICE_UNAVAILABLE', /as many bytes of answers not yet taken by their clients as it may \(33554432\); retry shortly/);
          assert.equal(refused.headers.get('retry-after'), '1');
        }
        assert.deepEqual(stack.upstreamCalls(), [], 'nothing of a refused operation ran');
        const warnings = stack.lines.filter((line) => line.includes('MAX_ANSWER_BYTES_IN_FLIGHT'));
        assert.equal(warnings.length, 1, 'one warning for a burst of refusals, not one each');
        assert.equal(JSON.parse(warnings[0]!).maximum, gateway.maxAnswerBytesInFlight);

        // An answer taken gives its room back; one more held takes it again.
        await readAll(first!);
        await eventually(async () => (await probe(stack)).status === 200, { what: 'an operation admitted once an answer was taken' });
        await answers.start();
        assert.equal((await probe(stack)).status, 503);
        // A client gone with its answer gives its room back; the one that took its answer leaving too gives none twice.
        first!.socket.destroy();
        second!.socket.destroy();
        await eventually(async () => (await probe(stack)).status === 200, { what: 'an operation admitted once a client left with its answer' });
        await answers.start();
        assert.equal((await probe(stack)).status, 503, 'two answers held pass the cap again: no room was given back twice');
        // Past the cap, the answers already made still go out whole.
        for (const download of answers.started.slice(2)) await readAll(download);
        await eventually(async () => (await probe(stack)).status === 200, { what: 'an operation admitted once every answer was taken' });
      } finally {
        await answers.close();
      }
    });

    it('give the room of an answer back when the connection drops with it queued behind another (pipelining)', { timeout: 60_000 }, async () => {
      const stack = await startStack({ gateway });
      const answers = bigAnswers(stack);
      try {
        // The first answer goes to the socket; the second, made behind it on the same connection, waits in the response.
        // A GET: Node stops reading the connection once its answer waits, so a body sent after might never be read.
        const pipelined = await answers.start();
        pipelined.socket.write(`GET /graphql?query=${encodeURIComponent(BIG_ANSWER)} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: application/json\r\napollo-require-preflight: true\r\n\r\n`);
        await eventually(async () => (await probe(stack)).status === 503, { timeoutMs: 20_000, what: 'the queued answer counted' });
        pipelined.socket.destroy();
        await eventually(async () => (await probe(stack)).status === 200, { what: 'an operation admitted once the connection dropped' });
        // Both gave their room back, once: two answers held pass the cap again.
        await answers.start();
        assert.equal((await probe(stack)).status, 200);
        await answers.start();
        assert.equal((await probe(stack)).status, 503);
      } finally {
        await answers.close();
      }
    });

    it('answer a request without a valid token 401 whatever the answers held, as docs/configuration.md says: it runs nothing to refuse for load', { timeout: 60_000 }, async () => {
      const stack = await startStack({ gateway: { ...gateway, auth: { jwtSecret: SECRET } } });
      const admin = await hsToken({ scope: 'contextio:admin' });
      const withToken = (request: string) => request.replace('\r\n\r\n', `\r\nauthorization: Bearer ${admin}\r\n\r\n`);
      const held: SlowRead[] = [];
      try {
        for (let i = 0; i < 100; i++) stack.emulator.store.createAccount({ email: `big${i}@example.com`, first_name: 'x'.repeat(200_000) });
        // Two answers of ~20 MB, neither read: the answers held pass the cap.
        for (let i = 0; i < 2; i++) held.push(await startSlowRead(stack.gateway.url, withToken(rawGraphQLPost(BIG_ANSWER))));
        const body = JSON.stringify({ query: '{ accounts(first: 1) { nodes { id } } }' });
        assertRefused(await post(stack, body, { ...JSON_HEADERS, authorization: `Bearer ${admin}` }), 503, 'SERVICE_UNAVAILABLE', /answers not yet taken/);
        for (const headers of [JSON_HEADERS, { ...JSON_HEADERS, authorization: 'Bearer not-a-token' }]) {
          assertRefused(await post(stack, body, headers), 401, 'UNAUTHENTICATED', /./);
        }
      } finally {
        for (const download of held) download.socket.destroy();
        await stack.close();
      }
    });

    it('refuse a programmatic start below maxAnswerBytes, as MAX_ANSWER_BYTES_IN_FLIGHT is refused; unset, it is at least maxAnswerBytes', async () => {
      await assert.rejects(startStack({ gateway: { maxAnswerBytes: 4096, maxAnswerBytesInFlight: 4095 } }), /^Error: maxAnswerBytesInFlight \(4095\) must be at least maxAnswerBytes \(4096\)$/);
      const large = await startStack({ gateway: { maxAnswerBytes: 512 * 1024 * 1024 } });
      try {
        assert.equal((await large.gql('{ __typename }')).status, 200);
      } finally {
        await large.close();
      }
    });

    it('count nothing for an answer made once its client had left, its response queued behind another on the connection too (pipelining)', { timeout: 60_000 }, async () => {
      // Any answer held takes a small cap: each of those below, had it been counted, would have stayed so.
      const stack = await startStack({ gateway: { maxAnswerBytes: 1024, maxAnswerBytesInFlight: 1024 } });
      try {
        for (let i = 0; i < 10; i++) {
          assert.equal(await leaveWhileUpstreamHangs(stack, `left${i}@example.com`), 'aborted');
          await eventually(() => stack.emulator.inFlight === 0, { what: 'the operation stopped once its client left' });
          assert.equal((await stack.gql('{ __typename }')).status, 200, `no room kept for the answers of the ${i + 1} clients gone`);
        }
        // A response queued behind another is closed by the gateway itself when its connection drops (Node 20
        // leaves it open), its operation's answer made after.
        for (let i = 0; i < 10; i++) {
          const ids = [0, 1].map((n) => stack.emulator.store.createAccount({ email: `queued${i}-${n}@example.com` }).id);
          for (const id of ids) stack.emulator.addFault({ path: `/accounts/${id}`, hang: true });
          const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
          socket.on('error', () => {});
          socket.write(ids.map((id) => rawGraphQLPost(`{ account(id: "${id}") { id } }`)).join(''));
          await eventually(() => stack.emulator.inFlight === 2, { what: 'both operations waiting upstream' });
          socket.destroy();
          await eventually(() => stack.emulator.inFlight === 0, { what: 'both operations stopped once their connection dropped' });
          assert.equal((await stack.gql('{ __typename }')).status, 200, `no room kept for the answers of the ${i + 1} connections gone`);
        }
      } finally {
        await stack.close();
      }
    });

    it('give the room of an answer cut for stalling back', { timeout: 60_000 }, async () => {
      // Long enough that the second download below is held while the operation after it is admitted or not.
      const stack = await startLoggingStack('info', { gateway: { ...gateway, answerStallTimeoutMs: 3_000 } });
      const answers = bigAnswers(stack);
      try {
        await answers.start();
        await eventually(() => stack.lines.some((line) => line.includes('"answerStalled":true')), { timeoutMs: 20_000, what: 'the answer cut for stalling' });
        // Its room kept, it and this one would pass the cap.
        await answers.start();
        assert.equal((await probe(stack)).status, 200);
      } finally {
        await answers.close();
      }
    });
  });

  it('accept a body of exactly maxBodyBytes, declared or streamed, and refuse one byte more', async () => {
    const small = await startStack({ gateway: { maxBodyBytes: 1024 } });
    /** A GraphQL body of exactly `bytes` bytes. */
    const sized = (bytes: number) => {
      const bare = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
      return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(bytes - bare.length) } });
    };
    const streamed = (body: string) =>
      send(small.gateway.url, { method: 'POST', headers: JSON_HEADERS, body: new Blob([body]).stream(), duplex: 'half' } as RequestInit);
    try {
      assert.equal(sized(1024).length, 1024);
      for (const answer of [await post(small, sized(1024)), await streamed(sized(1024))]) {
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(answer.json, { data: { __typename: 'Query' } });
      }
      for (const answer of [await post(small, sized(1025)), await streamed(sized(1025))]) assertRefused(answer, 413, 'PAYLOAD_TOO_LARGE', /exceeds 1024 bytes/);
    } finally {
      await small.close();
    }
  });

  it('answer 408 in the envelope of every refusal and close the connection when headers or a body trickle in past requestReceiveTimeoutMs', { timeout: 20_000 }, async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/logging/logger.ts');
    const slow = await startStack({ gateway: { requestReceiveTimeoutMs: 300, logger: createLogger('info', (line) => lines.push(line)) } });
    try {
      const trickledBody = await exchange(slow.gateway.url, 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":');
      assertRawRefusal(trickledBody, 408, 'REQUEST_TIMEOUT', /^The request did not arrive whole within 0\.3 s/);
      const trickledHeaders = await exchange(slow.gateway.url, 'GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nhost: 127.0.0.1\r\n');
      assertRawRefusal(trickledHeaders, 408, 'REQUEST_TIMEOUT', /^The request did not arrive whole within 0\.3 s/);
      assert.equal((await slow.gql('{ __typename }')).status, 200, 'and it keeps serving');
      assert.deepEqual(lines.filter((line) => line.includes('"level":"error"')), []);
      assert.deepEqual(slow.upstreamCalls(), []);
    } finally {
      await slow.close();
    }
  });

  it('answer the 408 of a body too slow under the request id its handler gave it (the client\'s own), as every line of it says', { timeout: 20_000 }, async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/logging/logger.ts');
    const slow = await startStack({ gateway: { requestReceiveTimeoutMs: 300, logger: createLogger('debug', (line) => lines.push(line)) } });
    try {
      const given = 'frontend-trace-7';
      const trickledBody = await exchange(
        slow.gateway.url,
        `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${given}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":`,
      );
      const head = trickledBody.split('\r\n\r\n', 1)[0] ?? '';
      assert.match(head, /^HTTP\/1\.1 408 /, trickledBody);
      assert.match(head, new RegExp(`\r\nx-request-id: ${given}\r\n`, 'i'), 'the id the client sent, not one made up for the refusal');
      await eventually(() => lines.some((line) => line.includes('refused before it could be read')), { what: "the refusal's line" });
      const ids = new Set(lines.map((line) => (JSON.parse(line) as { requestId?: string }).requestId).filter((id) => id !== undefined));
      assert.deepEqual([...ids], [given], 'one id across the request\'s lines');
    } finally {
      await slow.close();
    }
  });

  it('keep an idle connection open for keepAliveTimeoutMs (72 s by default, past a load balancer’s 60), and say so in Keep-Alive', { timeout: 20_000 }, async () => {
    // Node's own 5 s closed connections a load balancer still held open for its next request: a 502 each time.
    const usual = await startStack();
    try {
      assert.equal((await get(usual, '{ __typename }')).headers.get('keep-alive'), 'timeout=72');
    } finally {
      await usual.close();
    }
    const brief = await startStack({ gateway: { keepAliveTimeoutMs: 1_000 } });
    try {
      // Closed by the gateway, once the connection has been idle that long.
      const received = await exchange(brief.gateway.url, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
      assert.match(received, /^HTTP\/1\.1 200 /);
      assert.match(received, /\r\nKeep-Alive: timeout=1\r\n/i);
    } finally {
      await brief.close();
    }
  });

  it('keep a connection that has sent nothing (a load balancer’s, opened ahead of its requests) past requestReceiveTimeoutMs, as idle for keepAliveTimeoutMs', { timeout: 20_000 }, async () => {
    // Refused 408 and closed 30 s after its accept, a balancer holding it for its 60 s idle timeout raced its
    // first request against the close: a 502, as with a keep-alive timeout below the balancer's.
    const stack = await startStack({ gateway: { requestReceiveTimeoutMs: 300, keepAliveTimeoutMs: 60_000 } });
    try {
      const preconnected = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      await once(preconnected, 'connect');
      let received = '';
      preconnected.on('data', (chunk: Buffer) => (received += chunk.toString()));
      // Opened after it, and past its deadline once refused: the sweep that refuses it has reached the one opened first.
      const trickled = await exchange(stack.gateway.url, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n');
      assert.match(trickled, /^HTTP\/1\.1 408 /, 'a request begun and left unfinished is still refused');
      const closed = once(preconnected, 'close');
      preconnected.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
      await closed;
      assert.match(received, /^HTTP\/1\.1 200 /, `its first request is answered, nothing before it: ${received}`);
    } finally {
      await stack.close();
    }
    const brief = await startStack({ gateway: { requestReceiveTimeoutMs: 300, keepAliveTimeoutMs: 1_000 } });
    try {
      // Closed once idle that long, as a kept-alive connection is: without an answer to a request it never sent.
      assert.equal(await exchange(brief.gateway.url, ''), '', 'closed without a 408');
    } finally {
      await brief.close();
    }
  });

  it('replace an answer over maxAnswerBytes by QUERY_TOO_COMPLEX and data: null, in the media type asked for, logged with the request id', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/logging/logger.ts');
    const small = await startStack({ gateway: { maxAnswerBytes: 4096, logger: createLogger('info', (line) => lines.push(line)) } });
    try {
      for (let i = 0; i < 40; i++) small.emulator.store.createAccount({ email: `answer${i}@example.com`, first_name: 'F'.repeat(100) });
      const query = '{ accounts(first: 40) { nodes { id firstName } } }';
      const over = await post(small, JSON.stringify({ query }), { ...JSON_HEADERS, accept: 'application/graphql-response+json', 'x-request-id': 'too-large-1' });
      // The operation ran: GraphQL over HTTP answers it 200 with `data: null`.
      assert.equal(over.status, 200);
      assert.match(over.headers.get('content-type') ?? '', /^application\/graphql-response\+json/);
      const error = firstError(over)!;
      assert.equal(error.extensions?.['code'], 'QUERY_TOO_COMPLEX');
      assert.equal(error.extensions?.['limit'], 'MAX_ANSWER_BYTES');
      assert.equal(error.extensions?.['maximum'], 4096);
      const bytes = error.extensions?.['value'] as number;
      assert.ok(bytes > 40 * 100 && bytes < 10_000, `the answer's size: ${bytes}`);
      assert.match(error.message, new RegExp(`too large to send: ${bytes} bytes, more than the maximum of 4096 \\(MAX_ANSWER_BYTES\\)\\. The operation ran`));
      assert.equal(over.json?.data, null);
      const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['requestId'] === 'too-large-1');
      assert.deepEqual(logged.map((line) => line['msg'] ?? line['message']).sort(), ['answer too large to send', 'operation'].sort());
      const operationLine = logged.find((line) => (line['msg'] ?? line['message']) === 'operation')!;
      assert.deepEqual([operationLine['errors'], operationLine['limits']], [['QUERY_TOO_COMPLEX'], ['MAX_ANSWER_BYTES']]);
      // Within the limit: answered.
      const within = await small.gql<{ accounts: { nodes: unknown[] } }>('{ accounts(first: 10) { nodes { id firstName } } }');
      assert.equal(within.status, 200);
      assert.equal(within.body.data!.accounts.nodes.length, 10);
      // A refusal before execution over the limit (many long unknown field names) keeps its status, no data.
      const invalid = await post(small, JSON.stringify({ query: `{ ${Array.from({ length: 20 }, (_, i) => `f${i}${'x'.repeat(300)}`).join(' ')} }` }));
      assert.equal(invalid.status, 400);
      assert.equal(firstError(invalid)?.extensions?.['limit'], 'MAX_ANSWER_BYTES');
      assert.match(firstError(invalid)!.message, /Its errors were not sent\.$/);
      assert.ok(invalid.json && !('data' in invalid.json), 'the refusal has no data');
    } finally {
      await small.close();
    }
  });

  it('replace a mutation\'s answer over maxAnswerBytes keeping what its writes made, under extensions.writesMade', async () => {
    const small = await startStack({ gateway: { maxAnswerBytes: 4096 } });
    try {
      const long = small.emulator.store.createAccount({ email: 'long@example.com', first_name: 'F'.repeat(5_000) }).id;
      const res = await small.gql(
        `mutation ($long: ID!) {
          made: createAccount(input: { email: "made@example.com" }) { id }
          renamed: updateAccount(id: $long, input: { lastName: "L" }) { success account { firstName } }
        }`,
        { long },
      );
      assert.equal(res.status, 200);
      assert.equal(res.body.data, null);
      assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
      const made = small.emulator.store.listAccounts().find((account) => account.email_addresses.includes('made@example.com'));
      assert.ok(made !== undefined, 'the mutation made its account');
      assert.deepEqual(res.body.extensions?.['writesMade'], [
        { path: ['made'], field: 'createAccount', payload: { id: made.id, resourceUrl: `${small.emulator.url}/accounts/${made.id}` } },
        { path: ['renamed'], field: 'updateAccount', payload: { success: true } },
      ]);
    } finally {
      await small.close();
    }
  });

  it('count an answer against maxAnswerBytes in UTF-8 bytes, not characters', async () => {
    const small = await startStack({ gateway: { maxAnswerBytes: 4096 } });
    try {
      // 20 names of 100 euro signs: some 3,300 characters, 7,300 bytes.
      for (let i = 0; i < 20; i++) small.emulator.store.createAccount({ email: `euro${i}@example.com`, first_name: '€'.repeat(100) });
      const over = await post(small, JSON.stringify({ query: '{ accounts(first: 20) { nodes { id firstName } } }' }));
      assert.equal(over.status, 200);
      assert.equal(firstError(over)?.extensions?.['limit'], 'MAX_ANSWER_BYTES', over.text.slice(0, 200));
      // Each name is 300 bytes in 100 characters: measured in characters, the answer would fit.
      const bytes = firstError(over)?.extensions?.['value'] as number;
      assert.ok(bytes > 20 * 300 && bytes < 10_000, `the answer's size: ${bytes}`);
      assert.equal(over.json?.data, null);
      // Fewer characters than half the maximum, yet more bytes than it: measured in full all the same.
      const names = await post(small, JSON.stringify({ query: '{ accounts(first: 14) { nodes { firstName } } }' }));
      const namesBytes = firstError(names)?.extensions?.['value'] as number;
      assert.equal(firstError(names)?.extensions?.['limit'], 'MAX_ANSWER_BYTES', names.text.slice(0, 200));
      assert.ok(namesBytes > 14 * 300 && namesBytes < 4096 * 1.5, `the answer's size: ${namesBytes}`);
    } finally {
      await small.close();
    }
  });

  it('send an answer of exactly maxAnswerBytes bytes, and replace one a byte larger (docs/configuration.md: "a larger one is not sent")', async () => {
    const small = await startStack({ gateway: { maxAnswerBytes: 4096 } });
    try {
      const read = (firstName: string) => {
        const { id } = small.emulator.store.createAccount({ email: `sized${firstName.length}@example.com`, first_name: firstName });
        return post(small, JSON.stringify({ query: `{ account(id: "${id}") { firstName } }` }));
      };
      // The answer's bytes besides the name, from one of a single character.
      const around = Buffer.byteLength((await read('x')).text) - 1;
      const exact = await read('x'.repeat(4096 - around));
      assert.equal(Buffer.byteLength(exact.text), 4096, exact.text.slice(0, 200));
      assert.equal(exact.json?.errors, undefined, exact.text.slice(0, 200));
      const over = await read('x'.repeat(4097 - around));
      assert.equal(firstError(over)?.extensions?.['limit'], 'MAX_ANSWER_BYTES', over.text.slice(0, 200));
      assert.equal(firstError(over)?.extensions?.['value'], 4097);
    } finally {
      await small.close();
    }
  });

  it('refuse an answer larger than a JavaScript string can hold with QUERY_TOO_COMPLEX, not a masked 500', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/logging/logger.ts');
    const huge = await startStack({ gateway: { logger: createLogger('info', (line) => lines.push(line)) } });
    try {
      // An upstream page of 100 accounts with 280,000-character names (28 MB, within the 32 MiB a body may
      // have); twenty aliases of it, well within every limit, make 560 M characters, past V8's 2^29 − 24.
      const name = 'N'.repeat(280_000);
      const accounts = Array.from({ length: 100 }, (_, i) => ({ id: `a${String(i).padStart(23, '0')}`, created: 1, suspended: 0, email_addresses: [`n${i}@example.com`], first_name: name, sources: [] }));
      huge.emulator.addFault({ method: 'GET', path: '/accounts', body: accounts });
      const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: accounts(first: 99) { nodes { firstName } }`).join(' ');
      const res = await post(huge, JSON.stringify({ query: `{ ${aliases} }` }), { ...JSON_HEADERS, 'x-request-id': 'too-large-2' });
      assert.equal(res.status, 200);
      assert.equal(res.json?.data, null);
      const error = firstError(res)!;
      assert.equal(error.extensions?.['code'], 'QUERY_TOO_COMPLEX');
      assert.equal(error.extensions?.['limit'], 'MAX_ANSWER_BYTES');
      assert.match(error.message, /more than one JavaScript string can hold/);
      assert.equal(huge.upstreamCalls().length, 1, 'one page, shared by the aliases');
      const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['requestId'] === 'too-large-2');
      assert.ok(logged.some((line) => (line['msg'] ?? line['message']) === 'answer too large to send'), JSON.stringify(logged));
      const operationLine = logged.find((line) => (line['msg'] ?? line['message']) === 'operation')!;
      assert.deepEqual([operationLine['errors'], operationLine['limits']], [['QUERY_TOO_COMPLEX'], ['MAX_ANSWER_BYTES']]);
      assert.equal((await huge.gql('{ __typename }')).status, 200, 'and it keeps serving');
    } finally {
      await huge.close();
    }
  });

  it('refuse a mutation\'s answer larger than a JavaScript string can hold keeping what its writes made, under extensions.writesMade', { timeout: 120_000 }, async () => {
    const huge = await startStack();
    try {
      // 20 connect tokens of ~1.4 MB callback URLs (28 MB, one upstream list) under an account, selected 20 times
      // over in the payload of a write: 560 M characters, past V8's 2^29 − 24, as the query above.
      const { id } = huge.emulator.store.createAccount({ email: 'huge@example.com' });
      const callback = `https://app.example.com/${'c'.repeat(1_400_000)}`;
      for (let i = 0; i < 20; i++) huge.emulator.store.createConnectToken(id, { callback_url: callback });
      const lists = Array.from({ length: 20 }, (_, i) => `t${i}: connectTokens { callbackUrl }`).join(' ');
      const res = await huge.gql(`mutation ($id: ID!) { renamed: updateAccount(id: $id, input: { lastName: "L" }) { success account { ${lists} } } }`, { id });
      assert.equal(res.status, 200);
      assert.equal(res.body.data, null);
      const error = res.body.errors?.[0];
      assert.deepEqual([error?.extensions?.['code'], error?.extensions?.['limit']], ['QUERY_TOO_COMPLEX', 'MAX_ANSWER_BYTES']);
      assert.match(error!.message, /more than one JavaScript string can hold/);
      assert.deepEqual(res.body.extensions?.['writesMade'], [{ path: ['renamed'], field: 'updateAccount', payload: { success: true } }]);
      assert.equal(huge.emulator.store.getAccount(id)?.last_name, 'L', 'the write was made');
    } finally {
      await huge.close();
    }
  });

  it('include stack traces in development mode', async () => {
    const dev = await startStack({ gateway: { development: true } });
    try {
      const invalid = await post(dev, JSON.stringify({ query: '{ nope }' }));
      assert.equal(firstError(invalid)?.extensions?.['code'], 'GRAPHQL_VALIDATION_FAILED');
      assert.ok(Array.isArray(firstError(invalid)?.extensions?.['stacktrace']), 'the error carries a stacktrace in development mode');
      assert.ok(hasStackTrace(invalid.text), 'the answer holds a stack trace in development mode');
    } finally {
      await dev.close();
    }
  });
});

describe('a connection the gateway could not accept', () => {
  it('is logged (once a minute at most, with how many since), and the gateway goes on serving', async () => {
    const stack = await startLoggingStack('info');
    try {
      // What Node does when accept() fails (the process out of file descriptors, where libuv could not shed the
      // connection by itself): an error of the server. Unheard, the first would have ended the process.
      const outOfDescriptors = () => Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' });
      for (let i = 0; i < 3; i++) stack.gateway.httpServer.emit('error', outOfDescriptors());
      assert.equal((await stack.gql('{ __typename }')).status, 200);
      const said = stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'a connection could not be accepted');
      assert.deepEqual(said.map((line) => [line['level'], line['error'], line['hint']]), [['error', 'accept EMFILE', 'the process is out of file descriptors: raise its limit (ulimit -n, LimitNOFILE)']]);
      // Within the minute, another is counted, not said.
      await withClockAhead(30_000, async () => {
        stack.gateway.httpServer.emit('error', outOfDescriptors());
        await stack.gql('{ __typename }');
      });
      assert.equal(stack.lines.filter((line) => line.includes('"message":"a connection could not be accepted"')).length, 1, 'one line within the minute');
      await withClockAhead(60_000, async () => {
        stack.gateway.httpServer.emit('error', outOfDescriptors());
        await stack.gql('{ __typename }');
      });
      const again = stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'a connection could not be accepted');
      assert.deepEqual(again.map((line) => line['sinceLastLine']), [undefined, 3]);

      // A burst that ends unsaid (all three within the minute of the line just said): once it has stopped for a
      // minute, the next connection accepted gives its count.
      for (let i = 0; i < 3; i++) stack.gateway.httpServer.emit('error', outOfDescriptors());
      const unsaid = () => stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'connections not accepted left unsaid');
      await withClockAhead(120_000, async () => {
        // A connection of its own: fetch's would be one kept alive from before.
        const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
        await once(socket, 'connect');
        socket.destroy();
        await eventually(() => unsaid().length > 0, { what: 'the unsaid count said' });
      });
      assert.deepEqual(unsaid().map((line) => [line['level'], line['failure'], line['sinceLastLine']]), [['error', 'EMFILE', 3]]);
    } finally {
      await stack.close();
    }
  });

  it('has the count of a burst still unsaid when the gateway stops said as it stops', async () => {
    const stack = await startLoggingStack('info');
    const outOfDescriptors = () => Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' });
    for (let i = 0; i < 3; i++) stack.gateway.httpServer.emit('error', outOfDescriptors());
    // Another failure (the kernel out of memory) is said on its own, and with no hint of file descriptors.
    stack.gateway.httpServer.emit('error', Object.assign(new Error('accept ENOMEM'), { code: 'ENOMEM', errno: -12, syscall: 'accept' }));
    await stack.close();
    const said = stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'a connection could not be accepted');
    assert.deepEqual(said.map((line) => [line['error'], Object.hasOwn(line, 'hint')]), [['accept EMFILE', true], ['accept ENOMEM', false]]);
    const unsaid = stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'connections not accepted left unsaid');
    assert.deepEqual(unsaid.map((line) => [line['level'], line['failure'], line['sinceLastLine']]), [['error', 'EMFILE', 2]]);
  });
});
