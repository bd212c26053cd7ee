import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createGzip } from 'node:zlib';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import type { Gateway } from '../../src/http/server.ts';
import { closeServer, forward, listenOnLoopback } from '../helpers/net.ts';
import { postGraphQL, startTestGateway } from '../helpers/stack.ts';

/**
 * A CDN in front of the API that gzips what it forwards to a client accepting gzip (the emulator itself never
 * compresses): each answer's `Accept-Encoding` asked for and its body gzipped as it streams through.
 */
async function startGzipFront(emulator: Emulator) {
  const acceptEncoding: (string | undefined)[] = [];
  const gzipped = (answer: IncomingMessage, res: ServerResponse) => {
    const { 'content-length': _length, ...headers } = answer.headers;
    res.writeHead(answer.statusCode!, { ...headers, 'content-encoding': 'gzip', vary: 'accept-encoding' });
    answer.pipe(createGzip()).pipe(res);
  };
  const server = createServer((req, res) => {
    acceptEncoding.push(req.headers['accept-encoding']);
    forward(req, res, `${emulator.origin}${req.url}`, { answer: gzipped });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/2.0`,
    acceptEncoding,
    close: () => closeServer(server),
  };
}

describe('a gateway behind a compressing front of the upstream', () => {
  let emulator: Emulator;
  let front: Awaited<ReturnType<typeof startGzipFront>>;
  let gateway: Gateway;

  before(async () => {
    emulator = await startEmulator({ port: 0, seed: 'none' });
    front = await startGzipFront(emulator);
    gateway = await startTestGateway({ baseUrl: front.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret });
  });

  after(async () => {
    await gateway?.close();
    await front?.close();
    await emulator?.close();
  });

  it('asks for compressed answers and reads them gzipped, one request a call', async () => {
    const account = emulator.store.createAccount({ email: 'jane@example.com' });
    emulator.clearRequests();
    const body = await postGraphQL<{ data?: unknown; errors?: unknown }>(gateway.url, '{ accounts(first: 10) { nodes { id emailAddresses } } }');
    assert.deepEqual(body, { data: { accounts: { nodes: [{ id: account.id, emailAddresses: ['jane@example.com'] }] } } });
    assert.deepEqual(emulator.requests.map((r) => [r.method, r.path, r.status]), [['GET', '/accounts', 200]]);
    assert.ok(front.acceptEncoding.length > 0 && front.acceptEncoding.every((value) => value === 'gzip, deflate, br'), String(front.acceptEncoding));
  });
});
