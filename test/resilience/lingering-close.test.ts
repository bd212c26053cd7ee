import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { LINGER_BODY_MULTIPLE, LINGER_MS } from '../../src/http/linger.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

/*
 * An answer given before its request's body has all arrived (a 413, 415, 401 …) closes the connection. Closed at
 * once, the kernel reset it with the body's bytes still unread, and a client still sending (nginx sends a body
 * whole before it reads the answer) got ECONNRESET or EPIPE instead of the answer: nginx answered 502. The
 * gateway now half-closes after the answer and reads and drops what still comes, within bounds of bytes and time.
 */

const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** The head of a request of `length` declared bytes (`POST /graphql` of JSON, unless told). */
const postHead = (length: number, { method = 'POST', path = '/graphql', contentType = 'application/json', host = '127.0.0.1', more = '' } = {}) =>
  `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: ${contentType}\r\ncontent-length: ${length}\r\n${more}\r\n`;

/** A connection to the gateway whose errors are kept rather than thrown (`allowHalfOpen`: it does not end its half when the gateway ends its own). */
function open(stack: Stack, allowHalfOpen = false): { socket: Socket; errors: string[]; closed: Promise<void> } {
  const socket = connect({ port: Number(new URL(stack.gateway.url).port), host: '127.0.0.1', allowHalfOpen });
  const errors: string[] = [];
  socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  // Not once(socket, 'close'): it rejects on an 'error' that comes first.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, errors, closed };
}

/**
 * Writes `bytes` whole and only then reads, as nginx does towards its upstream: what came back (the socket paused
 * meanwhile, nothing is taken from the kernel) and the errors met, once the gateway has closed the connection.
 */
async function writeWholeThenRead(stack: Stack, bytes: Buffer): Promise<{ received: string; errors: string[] }> {
  const { socket, errors, closed } = open(stack);
  socket.pause();
  await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.resume();
  await closed;
  return { received, errors };
}

describe('lingering close of a connection answered before its request body arrived', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ gateway: { maxBodyBytes: MAX_BODY_BYTES } });
  });
  after(() => stack.close());

  it('delivers the 413 whole to a client that writes a body of 3 × MAX_BODY_BYTES before it reads (as nginx), every time', async () => {
    const length = 3 * MAX_BODY_BYTES;
    for (let attempt = 0; attempt < 8; attempt++) {
      const { received, errors } = await writeWholeThenRead(stack, Buffer.concat([Buffer.from(postHead(length)), Buffer.alloc(length, 0x20)]));
      assertAnsweredWhole(received, errors, 413, `attempt ${attempt}`);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('delivers every refusal made before the body arrived whole to such a client: each lingers the same way', async () => {
    const length = 3 * MAX_BODY_BYTES;
    const body = Buffer.alloc(length, 0x20);
    const chunked = (head: string) => head.replace(`content-length: ${length}`, 'transfer-encoding: chunked');
    const cases: Array<[string, number, Buffer]> = [
      ['a body counted past MAX_BODY_BYTES as it streams (chunked)', 413, Buffer.concat([Buffer.from(chunked(postHead(length))), Buffer.from(`${length.toString(16)}\r\n`), body])],
      ['a content type refused', 415, Buffer.concat([Buffer.from(postHead(length, { contentType: 'text/plain' })), body])],
      ['a method refused', 405, Buffer.concat([Buffer.from(postHead(length, { method: 'PUT' })), body])],
      ['an unknown path', 404, Buffer.concat([Buffer.from(postHead(length, { path: '/nope' })), body])],
      ['a Host open mode does not answer', 403, Buffer.concat([Buffer.from(postHead(length, { host: 'example.com' })), body])],
      ['an expectation not met', 417, Buffer.concat([Buffer.from(postHead(length, { more: 'expect: something-else\r\n' })), body])],
      // Refused by Node's parser mid-body (clientError): a chunk whose size is no number, then the rest.
      ['a broken chunked body', 400, Buffer.concat([Buffer.from(chunked(postHead(length))), Buffer.from('2\r\n{}\r\nzz\r\n'), body])],
    ];
    for (const [what, status, bytes] of cases) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const { received, errors } = await writeWholeThenRead(stack, bytes);
        assertAnsweredWhole(received, errors, status, `${what}, attempt ${attempt}`);
      }
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('delivers a 401 (a token refused before the body is read) whole to such a client, with authentication on', async () => {
    const secured = await startStack({ gateway: { maxBodyBytes: MAX_BODY_BYTES, auth: { jwtSecret: 'lingering-close-test-secret-of-32-bytes!' } } });
    try {
      const length = 3 * MAX_BODY_BYTES;
      const bytes = Buffer.concat([Buffer.from(postHead(length, { more: 'authorization: Bearer not-a-jwt\r\n' })), Buffer.alloc(length, 0x20)]);
      for (let attempt = 0; attempt < 2; attempt++) {
        const { received, errors } = await writeWholeThenRead(secured, bytes);
        assertAnsweredWhole(received, errors, 401, `attempt ${attempt}`);
      }
      assert.deepEqual(secured.upstreamCalls(), []);
    } finally {
      await secured.close();
    }
  });

  it('cuts a client that keeps sending past the bound, and goes on serving', async () => {
    // Half-open allowed: the gateway's end (after its answer) does not end the client's sending.
    const { socket, errors, closed } = open(stack, true);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.write(postHead(1024 ** 3));
    // Sent as fast as the connection takes it, and never ended: only the gateway's cut ends it.
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    let sent = 0;
    let cut = false;
    void closed.then(() => (cut = true));
    while (!cut && socket.writable) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await closed;
    assert.ok(sent > LINGER_BODY_MULTIPLE * MAX_BODY_BYTES, `the client sent past the bound before it was cut (${sent} bytes)`);
    assert.ok(sent < 1024 ** 3, `the client was cut before its body's end (${sent} bytes sent)`);
    assert.ok(errors.length > 0 || received.startsWith('HTTP/1.1 413 '), `the client was answered or reset: ${errors.join(', ')} ${received.slice(0, 100)}`);
    const health = await fetch(`${stack.gateway.origin}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }]);
  });
});

describe('the bounds of a lingering close in time, and shutdown', () => {
  it('ends a linger at its time bound, and at once when the client closes its half', async () => {
    const lingerTimer = manualTimer();
    const stack = await startStack({ gateway: { maxBodyBytes: MAX_BODY_BYTES, lingerTimer: lingerTimer.timer } });
    try {
      for (const clientCloses of [false, true]) {
        const { socket, closed } = await refusedMidBody(stack);
        assert.deepEqual(lingerTimer.waiting(), [LINGER_MS], 'the linger waits for its time bound');
        assert.ok(!socket.destroyed, 'the connection lingers, the client still sending');
        if (clientCloses) socket.end();
        else {
          lingerTimer.fire(LINGER_MS);
          await writeUntilCut(socket);
        }
        await closed;
        // Its end cancelled once the gateway's side has closed too, which comes after the client's.
        await eventually(() => lingerTimer.waiting().length === 0, { what: 'the linger\'s end cancelled' });
      }
    } finally {
      await stack.close();
    }
  });

  it('ends a linger at shutdown\'s cut, as any connection still open then', async () => {
    const lingerTimer = manualTimer();
    const shutdownTimer = manualTimer();
    const stack = await startStack({ gateway: { maxBodyBytes: MAX_BODY_BYTES, lingerTimer: lingerTimer.timer, shutdownTimer: shutdownTimer.timer, shutdownGraceMs: 10_000 } });
    try {
      const { socket, closed } = await refusedMidBody(stack);
      let closedServer = false;
      // The server's close waits for every connection: it ends only once the linger has.
      const closing = stack.gateway.close().then(() => (closedServer = true));
      // The grace period, then the cut a second after it.
      await shutdownTimer.asked();
      shutdownTimer.fire(10_000);
      await shutdownTimer.asked();
      assert.ok(!closedServer, 'the linger outlasts the grace period');
      shutdownTimer.fire(1_000);
      await closing;
      await writeUntilCut(socket);
      await closed;
      await eventually(() => lingerTimer.waiting().length === 0, { what: 'the linger\'s end cancelled' });
    } finally {
      await stack.close();
    }
  });
});

/**
 * A connection whose request (a 415, its body still arriving) has been answered whole, the gateway's half closed
 * after it: lingering, as the client (allowing half-open connections) has not closed its own.
 */
async function refusedMidBody(stack: Stack): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { socket, closed } = open(stack, true);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const ended = once(socket, 'end');
  socket.write(postHead(MAX_BODY_BYTES, { contentType: 'text/plain' }) + 'x'.repeat(1024));
  await ended;
  assert.match(received, /^HTTP\/1\.1 415 .*\r\nconnection: close\r\n/is, received.slice(0, 200));
  return { socket, closed };
}

/**
 * Writes on `socket` until the gateway's reset breaks it: its half closed after the answer, the gateway's end of the
 * connection says nothing more, and a write after it is answered with a reset, which the write after that meets.
 */
async function writeUntilCut(socket: Socket): Promise<void> {
  while (!socket.destroyed) await new Promise<void>((resolve) => socket.write('x', () => setImmediate(resolve)));
}

/** Asserts that `received` is one answer of `status`, whole, and that its client met no error. */
function assertAnsweredWhole(received: string, errors: string[], status: number, what: string): void {
  assert.deepEqual(errors, [], `${what}: the client met no reset or broken pipe`);
  assert.match(received, new RegExp(`^HTTP/1\\.1 ${status} .*\\r\\nconnection: close\\r\\n`, 'is'), `${what}: ${received.slice(0, 200)}`);
  const [head = '', body = ''] = received.split('\r\n\r\n');
  assert.equal(Buffer.byteLength(body), Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]), `${what}: the answer's body came whole: ${body}`);
}
