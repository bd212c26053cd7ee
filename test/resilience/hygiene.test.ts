import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ApolloServer } from '@apollo/server';
import { RequestApi } from '../../src/loaders/request-api.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { postGraphQL, startStack, startTestGateway } from '../helpers/stack.ts';

/**
 * A bug anywhere below a resolver must not reach a caller as anything but INTERNAL_SERVER_ERROR, and must
 * be logged once, with the request id that ties the log line to the response. The bug is simulated by
 * making one RequestApi method throw a TypeError for the length of a test.
 */
async function withBrokenAccountLookup(development: boolean, run: (ctx: Awaited<ReturnType<typeof setUp>>) => Promise<void>) {
  const ctx = await setUp(development);
  const original = RequestApi.prototype.account;
  RequestApi.prototype.account = () => {
    throw new TypeError('Cannot read properties of undefined (reading "secretInternalDetail")');
  };
  try {
    await run(ctx);
  } finally {
    RequestApi.prototype.account = original;
    await ctx.stack.close();
  }
}

async function setUp(development: boolean) {
  const lines: string[] = [];
  const stack = await startStack({ gateway: { development, logger: createLogger('info', (line) => lines.push(line)) } });
  return { stack, lines };
}

describe('unexpected errors', () => {
  it('become INTERNAL_SERVER_ERROR with no detail, logged once with the request id', async () => {
    await withBrokenAccountLookup(false, async ({ stack, lines }) => {
      const res = await stack.gql(`{ account(id: "0123456789abcdef01234567") { id } connectTokens { nodes { token } } }`, {}, { 'x-request-id': 'req-hygiene-1' });
      assert.equal(res.headers.get('x-request-id'), 'req-hygiene-1');
      assert.deepEqual(res.body.data, { account: null, connectTokens: { nodes: [] } });
      assert.deepEqual(res.body.errors, [
        { message: 'Unexpected error.', locations: [{ line: 1, column: 3 }], path: ['account'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      ]);
      const logged = lines.filter((l) => l.includes('secretInternalDetail'));
      assert.equal(logged.length, 1);
      assert.match(logged[0]!, /"requestId":"req-hygiene-1"/);
      assert.match(logged[0]!, /"path":"account"/);
      assert.match(logged[0]!, /"error":"TypeError: Cannot read properties/);
      // No stack trace in a log line outside development (the contract): no frame, no file.
      assert.doesNotMatch(logged[0]!, /"stack"|\bat \S+ \(|hygiene\.test\.ts/);
      // The operation's own line (written as its answer closes) counts it among the codes answered.
      const operationLine = () => lines.find((l) => l.includes('"message":"operation"') && l.includes('"requestId":"req-hygiene-1"'));
      await eventually(() => operationLine() !== undefined);
      assert.deepEqual(JSON.parse(operationLine()!)['errors'], ['INTERNAL_SERVER_ERROR']);
    });
  });

  it('carry the stack trace only in development mode, in the response and in the log', async () => {
    await withBrokenAccountLookup(true, async ({ stack, lines }) => {
      const res = await stack.gql(`{ account(id: "0123456789abcdef01234567") { id } }`);
      const error = res.body.errors![0]!;
      assert.equal(error.extensions!['code'], 'INTERNAL_SERVER_ERROR');
      assert.ok(Array.isArray(error.extensions!['stacktrace']), 'the error carries a stacktrace in development mode');
      const logged = lines.filter((l) => l.includes('secretInternalDetail'));
      assert.equal(logged.length, 1);
      assert.match(logged[0]!, /"stack":"TypeError: .*\\n +at .*hygiene\.test\.ts/);
    });
  });

  it('escaping the request handler (a bug outside any resolver) become a 500 INTERNAL_SERVER_ERROR with no detail, logged with the request id, counted in the operation line', async () => {
    const { stack, lines } = await setUp(false);
    const original = ApolloServer.prototype.executeHTTPGraphQLRequest;
    ApolloServer.prototype.executeHTTPGraphQLRequest = () => Promise.reject(new TypeError('Cannot read properties of undefined (reading "secretInternalDetail")'));
    try {
      const res = await stack.gql('{ __typename }', {}, { 'x-request-id': 'req-hygiene-500' });
      assert.equal(res.status, 500);
      assert.deepEqual(res.body, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      // Every answer's headers, a 500 included: its request id, and no cache may keep it.
      assert.deepEqual([res.headers.get('x-request-id'), res.headers.get('cache-control')], ['req-hygiene-500', 'private, no-store']);
      const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['requestId'] === 'req-hygiene-500');
      await eventually(() => entries().some((entry) => entry['message'] === 'operation'), { what: 'the operation line' });
      assert.deepEqual(
        entries().map((entry) => [entry['level'], entry['message'], entry['message'] === 'operation' ? entry['errors'] : entry['error']]),
        [
          ['error', 'request failed', 'Cannot read properties of undefined (reading "secretInternalDetail")'],
          ['info', 'operation', ['INTERNAL_SERVER_ERROR']],
        ],
      );
      // The gateway goes on serving.
      ApolloServer.prototype.executeHTTPGraphQLRequest = original;
      assert.deepEqual((await stack.gql('{ __typename }')).body, { data: { __typename: 'Query' } });
    } finally {
      ApolloServer.prototype.executeHTTPGraphQLRequest = original;
      await stack.close();
    }
  });

  it('an upstream timestamp no Date can hold is the upstream’s fault, not a crash', async () => {
    const { stack } = await setUp(false);
    try {
      // Answered by a fault: the store takes no time its data file would refuse (past the year 9999).
      const account = stack.emulator.store.createAccount({ email: 'future@example.com' });
      const id = account.id;
      stack.emulator.addFault({ method: 'GET', path: `/accounts/${id}`, body: { ...account, created: 1e15 } });
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { createdAt } }`, { id });
      assert.equal(res.body.errors?.[0]?.extensions?.['code'], 'UPSTREAM_ERROR');
    } finally {
      await stack.close();
    }
  });
});

describe('closing', () => {
  it('closes the upstream connections it keeps alive, not leaving them to the upstream’s keep-alive timeout', async () => {
    // An upstream that lets a connection idle for a minute: the pool would keep one that long, holding a process
    // that embeds the gateway open after close().
    const open = new Set<Socket>();
    const upstream = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('[]'));
    upstream.keepAliveTimeout = 60_000;
    upstream.on('connection', (socket: Socket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
    const port = await listenOnLoopback(upstream);
    const gateway = await startTestGateway({ baseUrl: `http://127.0.0.1:${port}/2.0`, consumerKey: 'key', consumerSecret: 'secret' });
    try {
      assert.deepEqual(await postGraphQL(gateway.url, '{ accounts(first: 1) { nodes { id } } }'), { data: { accounts: { nodes: [] } } });
      assert.equal(open.size, 1, 'the upstream connection kept alive');
      await gateway.close();
      await eventually(() => open.size === 0, { what: 'the upstream connection closed by the gateway' });
    } finally {
      await gateway.close();
      await closeServer(upstream);
    }
  });

  it('is one shutdown however often it is asked for: a later close() is the first one’s, not another run of it', async () => {
    // Not the sequence run again: the server closed, Apollo stopped and the upstream client closed a second time.
    const stack = await startStack();
    const first = stack.gateway.close();
    const second = stack.gateway.close();
    try {
      assert.equal(second, first);
      await first;
      assert.equal(stack.gateway.close(), first);
    } finally {
      await Promise.allSettled([first, second]);
      await stack.close();
    }
  });
});
