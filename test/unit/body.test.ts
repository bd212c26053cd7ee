import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { discardBody, readBody } from '../../src/http/body.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback, rawGraphQLPost } from '../helpers/net.ts';

/**
 * A request whose body has all arrived, unread, and whose client then closed its connection: what a handler
 * holds when the connection drops while it waits before reading (a pipelined request's token being verified).
 */
async function requestGoneUnread(): Promise<{ req: IncomingMessage; close(): Promise<void> }> {
  let received: ((exchange: { req: IncomingMessage; res: ServerResponse }) => void) | undefined;
  const arrived = new Promise<{ req: IncomingMessage; res: ServerResponse }>((resolve) => (received = resolve));
  const server = createServer((req, res) => received!({ req, res }));
  const socket = connect(await listenOnLoopback(server), '127.0.0.1');
  socket.write(rawGraphQLPost('{ accounts { id } }'));
  const { req, res } = await arrived;
  await eventually(() => req.complete);
  socket.destroy();
  await once(res, 'close');
  assert.equal(req.destroyed, true);
  return { req, close: () => closeServer(server) };
}

describe('reading a request body', { timeout: 30_000 }, () => {
  it('fails, rather than waits for ever, for a body that arrived whole but whose client left before it was read', async () => {
    // Waiting for ever, it held its place among the bodies arriving (MAX_BODY_BYTES_IN_FLIGHT) for good.
    for (const read of [(req: IncomingMessage) => readBody(req, 1024), (req: IncomingMessage) => discardBody(req, 1024)]) {
      const { req, close } = await requestGoneUnread();
      try {
        await assert.rejects(read(req), /the connection closed before the request body was read/);
      } finally {
        await close();
      }
    }
  });

  it('discards a body of exactly its limit as read whole, one a byte larger as too large, declared or chunked', async () => {
    // Read whole, a refused request's connection serves the next; too large, it is closed (graphql-endpoint.ts).
    let received: ((req: IncomingMessage) => void) | undefined;
    const server = createServer((req) => received!(req));
    const port = await listenOnLoopback(server);
    try {
      for (const size of [16, 17]) {
        const body = 'x'.repeat(size);
        const head = 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n';
        for (const request of [`${head}content-length: ${size}\r\n\r\n${body}`, `${head}transfer-encoding: chunked\r\n\r\n${size.toString(16)}\r\n${body}\r\n0\r\n\r\n`]) {
          const arrived = new Promise<IncomingMessage>((resolve) => (received = resolve));
          const socket = connect(port, '127.0.0.1');
          try {
            socket.write(request);
            assert.equal(await discardBody(await arrived, 16), size <= 16, `${size} bytes within 16: ${request.split('\r\n')[3]}`);
          } finally {
            socket.destroy();
          }
        }
      }
    } finally {
      await closeServer(server);
    }
  });

  it('once read, whole or refused, leaves nothing listening for the request\'s close: every request closes once answered, and that is no client gone', async () => {
    // Left listening, each request's close after its answer made an Error (its stack trace captured) for a
    // promise long settled: ~2% of a simple operation's CPU.
    let received: ((req: IncomingMessage) => void) | undefined;
    const server = createServer((req) => received!(req));
    const port = await listenOnLoopback(server);
    // Chunked, its length declared nowhere: a body refused for its size is then refused by the bytes read, with the
    // read's listeners at work, not by its declared length before any is added.
    const body = JSON.stringify({ query: '{ accounts { id } }' });
    const request = `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    try {
      for (const [read, limit] of [
        [readBody, 1024],
        [readBody, 8],
        [discardBody, 1024],
        [discardBody, 8],
      ] as const) {
        const arrived = new Promise<IncomingMessage>((resolve) => (received = resolve));
        const socket = connect(port, '127.0.0.1');
        try {
          socket.write(request);
          const req = await arrived;
          const before = req.listenerCount('close');
          await read(req, limit);
          assert.equal(req.listenerCount('close'), before, `${read.name} within ${limit} bytes`);
        } finally {
          socket.destroy();
        }
      }
    } finally {
      await closeServer(server);
    }
  });
});
