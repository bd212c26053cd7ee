import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Mutation } from '../../src/resolvers/Mutation.ts';
import { assertEveryPlaceFree, holdOperations } from '../helpers/admission.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { withClockAhead } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { rawGraphQLPost } from '../helpers/net.ts';
import { leaveWhileUpstreamHangs, startArrivingPost, startLoggingStack, startSlowRead, startStack, type ArrivingPost, type SlowRead, type Stack } from '../helpers/stack.ts';

/**
 * MAX_OPERATIONS_IN_FLIGHT's places (src/http/admission.ts) along every way a request to /graphql can end: a
 * place taken and never given back would, one request at a time, leave the gateway answering 503 to everyone;
 * one given back twice would let more run than the cap. Each test drives many requests of one kind through a
 * gateway with a small cap, then checks that exactly the cap's operations can run at once.
 */

const CAP = 2;
const ORIGIN = 'https://app.example.com';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The `extensions.code` of each error, when the body is a GraphQL answer. */
  codes: unknown[];
}

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000), ...init });
  const text = await response.text();
  let codes: unknown[] = [];
  try {
    const body = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: unknown } }> };
    codes = (body.errors ?? []).map((error) => error.extensions?.code);
  } catch {
    // Not JSON (a preflight's empty answer).
  }
  return { status: response.status, headers: response.headers, text, codes };
}

const JSON_HEADERS = { 'content-type': 'application/json' };
/** A header Apollo's CSRF check takes as proof that a GET is no simple cross-site request. */
const PREFLIGHTED = { 'apollo-require-preflight': 'true' };
const postBody = (stack: Stack, body: string, headers: Record<string, string> = JSON_HEADERS) => send(stack.gateway.url, { method: 'POST', headers, body });
const postQuery = (stack: Stack, request: Record<string, unknown>) => postBody(stack, JSON.stringify(request));
const getQuery = (stack: Stack, params: Record<string, string>, headers: Record<string, string> = PREFLIGHTED) =>
  send(`${stack.gateway.url}?${new URLSearchParams(params)}`, { headers });
const readAccount = (id: string) => ({ query: 'query ($id: ID!) { account(id: $id) { id } }', variables: { id } });

function assertAnswered(answer: Answer, status: number, code: string | undefined, what: string): void {
  assert.equal(answer.status, status, `${what}: ${answer.text}`);
  if (code !== undefined) assert.ok(answer.codes.includes(code), `${what}: ${answer.text}`);
}

/** Sends raw HTTP/1.1 `head` and the start of a body, then closes the connection, as a client giving up mid-body. */
async function leaveMidBody(stack: Stack, head: string, partialBody: string): Promise<void> {
  const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  // Ended, not destroyed: what was written goes before the close on the connection, so the gateway reads it.
  await new Promise<void>((resolve) => socket.end(`${head}\r\n\r\n${partialBody}`, resolve));
  socket.destroy();
}

describe('MAX_OPERATIONS_IN_FLIGHT: every place taken is given back', () => {
  // A gateway of its own for each test, so that a place one kind of request fails to give back fails that test
  // alone; with deadlines far beyond any wait of the test's, so that only what the test checks can end an
  // operation hanging upstream, never its deadline.
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack({ gateway: { maxOperationsInFlight: CAP, corsOrigins: [ORIGIN], upstreamTimeoutMs: 120_000, operationTimeoutMs: 300_000 } });
  });
  afterEach(() => stack.close());

  it('after operations answered, over POST and GET, one after another and CAP at a time', async () => {
    const ok = stack.emulator.store.createAccount({ email: 'ok@example.com' }).id;
    for (let i = 0; i <= CAP; i++) {
      assertAnswered(await postQuery(stack, readAccount(ok)), 200, undefined, 'POST');
      assertAnswered(await getQuery(stack, { query: readAccount(ok).query, variables: JSON.stringify({ id: ok }) }), 200, undefined, 'GET');
    }
    for (let i = 0; i <= CAP; i++) {
      const answers = await Promise.all(Array.from({ length: CAP }, () => postQuery(stack, readAccount(ok))));
      for (const answer of answers) assertAnswered(answer, 200, undefined, 'CAP at once');
    }
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after Apollo refused requests itself, once admitted: parse, validation, operation limits, a subscription, a persisted query it lacks or whose hash is wrong, a mutation over GET, its CSRF check, variables that do not fit', async () => {
    const refusals: Array<[string, () => Promise<Answer>, number, string]> = [
      ['a document that does not parse', () => postQuery(stack, { query: '{' }), 400, 'GRAPHQL_PARSE_FAILED'],
      ['a field the schema lacks', () => postQuery(stack, { query: '{ nope }' }), 400, 'GRAPHQL_VALIDATION_FAILED'],
      ['an operation name the document lacks', () => postQuery(stack, { query: 'query A { __typename }', operationName: 'B' }), 400, 'OPERATION_RESOLUTION_FAILURE'],
      ['a document with more aliases than MAX_ALIASES', () => postQuery(stack, { query: `{ ${Array.from({ length: 101 }, (_, i) => `a${i}: __typename`).join(' ')} }` }), 400, 'QUERY_TOO_COMPLEX'],
      ['a subscription', () => postQuery(stack, { query: 'subscription { __typename }' }), 400, 'GRAPHQL_VALIDATION_FAILED'],
      ['variables that do not fit', () => postQuery(stack, { query: 'query ($id: ID!) { account(id: $id) { id } }', variables: { id: { not: 'an id' } } }), 400, 'BAD_USER_INPUT'],
      [
        'a persisted query the gateway does not have',
        () => postQuery(stack, { extensions: { persistedQuery: { version: 1, sha256Hash: 'ab'.repeat(32) } } }),
        200,
        'PERSISTED_QUERY_NOT_FOUND',
      ],
      ['a persisted query whose hash is wrong', () => postQuery(stack, { query: '{ __typename }', extensions: { persistedQuery: { version: 1, sha256Hash: 'ab'.repeat(32) } } }), 400, 'BAD_REQUEST'],
      ['a mutation over GET', () => getQuery(stack, { query: 'mutation { deleteAccount(id: "a") { success } }' }), 405, 'BAD_REQUEST'],
      ['a GET without a header that proves a preflight (CSRF)', () => getQuery(stack, { query: '{ __typename }' }, {}), 400, 'BAD_REQUEST'],
    ];
    for (const [what, request, status, code] of refusals) {
      for (let i = 0; i <= CAP; i++) assertAnswered(await request(), status, code, what);
    }
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after mutations refused whole by their precheck, refused as they ran, or failing unexpectedly (500)', async (t) => {
    for (let i = 0; i <= CAP; i++) {
      const refusedWhole = await postQuery(stack, {
        query: 'mutation { a: createAccount(input: { email: "ok@example.com" }) { id } b: createAccount(input: { email: "not-an-email" }) { id } }',
      });
      assertAnswered(refusedWhole, 400, 'BAD_USER_INPUT', 'a mutation refused whole');
      const refusedAsItRan = await postQuery(stack, { query: 'mutation { createAccount(input: { email: "not-an-email" }) { id } }' });
      assertAnswered(refusedAsItRan, 200, 'BAD_USER_INPUT', 'a one-field mutation refused as it ran');
    }
    // A bug the precheck meets: Apollo answers 500 (as mutations.test.ts has it).
    const deleteAccount = Mutation.deleteAccount;
    Mutation.deleteAccount = () => {
      throw new TypeError("Cannot read properties of undefined (reading 'fieldName')");
    };
    t.after(() => {
      Mutation.deleteAccount = deleteAccount;
    });
    for (let i = 0; i <= CAP; i++) {
      const failed = await postQuery(stack, { query: 'mutation { a: createAccount(input: { email: "first@example.com" }) { id } b: deleteAccount(id: "some-account") { success } }' });
      assertAnswered(failed, 500, 'INTERNAL_SERVER_ERROR', 'a mutation whose precheck failed unexpectedly');
    }
    Mutation.deleteAccount = deleteAccount;
    assert.deepEqual(stack.emulator.store.listAccounts().length, 0, 'nothing was written');
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after clients that left while their operation ran, one after another and every place at once', async () => {
    for (let i = 0; i <= CAP; i++) {
      assert.equal(await leaveWhileUpstreamHangs(stack, `left${i}@example.com`), 'aborted');
      await eventually(() => stack.emulator.inFlight === 0, { what: 'its upstream request cancelled' });
    }
    for (let i = 0; i <= CAP; i++) {
      const held = await holdOperations(stack, CAP);
      await held.release();
    }
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after clients that left with operations pipelined on one connection, each running', async () => {
    // Node 20 never closes a response queued behind another on a connection that drops (connections.ts closes
    // them): without that, each operation behind the first would hold its place until its deadline.
    for (let i = 0; i <= CAP; i++) {
      const stuck = stack.emulator.store.createAccount({ email: `piped${i}@example.com` }).id;
      const removeFault = stack.emulator.addFault({ path: `/accounts/${stuck}`, hang: true });
      const request = rawGraphQLPost(readAccount(stuck));
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(request.repeat(CAP));
      await eventually(() => stack.emulator.inFlight === CAP, { what: `the ${CAP} pipelined operations running` });
      socket.destroy();
      await eventually(() => stack.emulator.inFlight === 0, { what: 'their upstream requests cancelled' });
      removeFault();
    }
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after clients that left while their body arrived, or before they sent it', async () => {
    let arrived = 0;
    stack.gateway.httpServer.on('request', () => (arrived += 1));
    const head = (length: number) => `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}`;
    for (let i = 0; i <= CAP; i++) {
      await leaveMidBody(stack, head(100), '{"query":"{ __typ');
      await leaveMidBody(stack, head(100), '');
      await leaveMidBody(stack, `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked`, '5\r\n{"que');
    }
    await eventually(() => arrived === 3 * (CAP + 1), { what: 'every request reached the gateway' });
    await assertEveryPlaceFree(stack, CAP);
  });

  it('after clients that left while their answer was on its way, and while more than the cap of them still hold theirs', { timeout: 60_000 }, async () => {
    // ~20 MB an answer, more than loopback's socket buffers take: each waits in the gateway while its client reads nothing.
    for (let i = 0; i < 100; i++) stack.emulator.store.createAccount({ email: `big${i}@example.com`, first_name: 'x'.repeat(200_000) });
    const request = rawGraphQLPost('{ accounts(first: 100) { nodes { firstName } } }');
    const downloads: SlowRead[] = [];
    try {
      for (let i = 0; i <= CAP; i++) {
        const download = await startSlowRead(stack.gateway.url, request);
        downloads.push(download);
        assert.ok(download.received() < download.contentLength, 'the answer is still on its way');
      }
      assertAnswered(await postQuery(stack, { query: '{ __typename }' }), 200, undefined, 'an operation while answers wait for their clients');
      for (const download of downloads) download.socket.destroy();
      await assertEveryPlaceFree(stack, CAP);
    } finally {
      for (const download of downloads) download.socket.destroy();
    }
  });

  it('after requests refused before they ran, which take no place and get their own answer while every place is taken', async () => {
    const refusals: Array<[string, () => Promise<Answer>, number, string | undefined]> = [
      ['a CORS preflight', () => send(stack.gateway.url, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } }), 204, undefined],
      ['another method', () => send(stack.gateway.url, { method: 'PUT', headers: JSON_HEADERS, body: '{}' }), 405, 'METHOD_NOT_ALLOWED'],
      ['a POST body that is not JSON by its type', () => postBody(stack, '{"query":"{ __typename }"}', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['a body over MAX_BODY_BYTES', () => postBody(stack, JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(2 * 1024 * 1024) } })), 413, 'PAYLOAD_TOO_LARGE'],
      ['malformed JSON', () => postBody(stack, '{"query"'), 400, 'BAD_REQUEST'],
      ['a batch', () => postBody(stack, '[{"query":"{ __typename }"}]'), 400, 'BAD_REQUEST'],
      ['an Accept the gateway cannot answer', () => postBody(stack, '{"query":"{ __typename }"}', { ...JSON_HEADERS, accept: 'text/html' }), 406, 'BAD_REQUEST'],
      ['a GET with no query', () => send(stack.gateway.url, { headers: { accept: 'application/json' } }), 400, 'BAD_REQUEST'],
      ['a GET whose Content-Type is not JSON', () => send(`${stack.gateway.url}?query=%7B__typename%7D`, { headers: { 'content-type': 'text/plain', ...PREFLIGHTED } }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['a GET whose query string is not UTF-8', () => send(`${stack.gateway.url}?query=%E9`, { headers: PREFLIGHTED }), 400, 'BAD_REQUEST'],
      ['another path', () => send(`${stack.gateway.origin}/graphq`), 404, 'NOT_FOUND'],
      ['the health check', () => send(`${stack.gateway.origin}/healthz`), 200, undefined],
    ];
    const held = await holdOperations(stack, CAP);
    try {
      for (const [what, request, status, code] of refusals) {
        for (let i = 0; i <= CAP; i++) assertAnswered(await request(), status, code, what);
      }
      // Apollo's own refusals come once an operation is admitted: at the cap, they are told to come back too.
      assertAnswered(await postQuery(stack, { query: '{' }), 503, 'SERVICE_UNAVAILABLE', 'a document that does not parse, at the cap');
    } finally {
      await held.release();
    }
    await assertEveryPlaceFree(stack, CAP);
  });
});

/** The listen backlog of the socket listening on `port`, as `ss` (iproute2) reports it: its Send-Q. */
function listenBacklog(port: number): number {
  return Number(execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/)[2]);
}

/** Why a test reading a backlog is skipped: no `ss` on this machine. */
function withoutSs(): string | false {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs ss (iproute2) to read a socket’s backlog';
  }
}

describe('MAX_OPERATIONS_IN_FLIGHT and the listen backlog', () => {
  // A burst of new connections the cap would let in (or answer 503 at once) waited past Node's backlog of 511 for
  // the system to retry their handshakes, a second or more later, before the gateway saw them at all.
  it('listens with a backlog as large as the operations let in at once, Node’s 511 at least', { skip: withoutSs() }, async () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    for (const [cap, backlog] of [[undefined, 1_000], [3_000, 3_000], [10, 511]] as const) {
      const stack = await startStack({ gateway: cap === undefined ? {} : { maxOperationsInFlight: cap } });
      try {
        assert.equal(listenBacklog(Number(new URL(stack.gateway.origin).port)), Math.min(backlog, somaxconn), `MAX_OPERATIONS_IN_FLIGHT ${cap ?? 'default'}`);
      } finally {
        await stack.close();
      }
    }
  });
});

describe('MAX_OPERATIONS_IN_FLIGHT with authentication on', () => {
  it('answers a request without a valid token 401 while every place is taken: it would run nothing, and needs a token before a retry', async () => {
    const stack = await startStack({ gateway: { auth: { jwtSecret: SECRET }, maxOperationsInFlight: CAP } });
    try {
      const admin = `Bearer ${await hsToken({ scope: 'contextio:admin' })}`;
      const held = await holdOperations(stack, CAP, { authorization: admin });
      try {
        assertAnswered(await postQuery(stack, { query: '{ __typename }' }), 401, 'UNAUTHENTICATED', 'no token');
        assertAnswered(await send(stack.gateway.url, { method: 'POST', headers: { ...JSON_HEADERS, authorization: 'Bearer x.y.z' }, body: '{"query":"{ __typename }"}' }), 401, 'UNAUTHENTICATED', 'a bad token');
        // One with a valid token is told to come back.
        assertAnswered(await send(stack.gateway.url, { method: 'POST', headers: { ...JSON_HEADERS, authorization: admin }, body: '{"query":"{ __typename }"}' }), 503, 'SERVICE_UNAVAILABLE', 'a valid token');
      } finally {
        await held.release();
      }
    } finally {
      await stack.close();
    }
  });
});

describe('MAX_OPERATIONS_IN_FLIGHT and OPERATION_TIMEOUT_MS', () => {
  it('gives back the place of each operation stopped at its deadline', { timeout: 60_000 }, async () => {
    const operationTimeoutMs = 300;
    const stack = await startStack({ gateway: { maxOperationsInFlight: CAP, operationTimeoutMs } });
    try {
      const stuck = stack.emulator.store.createAccount({ email: 'stuck@example.com' }).id;
      stack.emulator.addFault({ path: `/accounts/${stuck}`, hang: true });
      for (let i = 0; i <= CAP; i++) {
        const answers = await Promise.all(Array.from({ length: CAP }, () => postQuery(stack, readAccount(stuck))));
        for (const answer of answers) assertAnswered(answer, 200, 'UPSTREAM_TIMEOUT', 'an operation past its deadline');
      }
      // Every place free, and no more: of CAP + 1 sent at once, CAP run (until their deadline) and one is
      // refused. Should one of them reach its deadline before the last arrives, the last is admitted: asked again.
      await eventually(
        async () => {
          const answers = await Promise.all(Array.from({ length: CAP + 1 }, () => postQuery(stack, readAccount(stuck))));
          const statuses = answers.map((answer) => answer.status).sort();
          assert.ok(statuses.filter((status) => status === 503).length <= 1, `more than one refused: a place was never given back (${statuses.join(', ')})`);
          return statuses.join() === [...Array<number>(CAP).fill(200), 503].join();
        },
        { timeoutMs: 20_000, what: `${CAP} of ${CAP + 1} operations sent at once admitted, the last refused` },
      );
    } finally {
      await stack.close();
    }
  });
});

describe('MAX_OPERATIONS_IN_FLIGHT at shutdown', () => {
  it('gives back the place of an operation stopped at the end of the grace period: a request completed afterwards runs', { timeout: 20_000 }, async () => {
    const stack = await startStack({ gateway: { maxOperationsInFlight: 1, shutdownGraceMs: 0 } });
    let arriving: ArrivingPost | undefined;
    try {
      const id = stack.emulator.store.createAccount({ email: 'arriving@example.com' }).id;
      const hung = stack.emulator.store.createAccount({ email: 'hung@example.com' }).id;
      stack.emulator.addFault({ path: `/accounts/${hung}`, hang: true });
      const running = postQuery(stack, readAccount(hung));
      await eventually(() => stack.emulator.inFlight === 1);
      // A request still arriving when the grace period ends (its connection opened before the listener closed).
      arriving = await startArrivingPost(stack.gateway.url, JSON.stringify(readAccount(id)));
      const closing = stack.gateway.close();
      // Answered once Apollo has returned, so its place is given back by then.
      assertAnswered(await running, 200, 'UPSTREAM_TIMEOUT', 'the operation stopped at the end of the grace period');
      arriving.finish();
      const { answer } = arriving;
      await eventually(() => answer().includes('"data"') || answer().includes('"errors"'));
      // Admitted, not 503; its operation, starting after the grace period, is stopped as it starts (faults.test.ts'
      // 'shutdown with a request whose body is still arriving …'), its account not read.
      assert.match(answer(), /HTTP\/1\.1 200 [\s\S]*"code":"UPSTREAM_TIMEOUT"/, 'admitted, not 503');
      await closing;
    } finally {
      arriving?.socket.destroy();
      await stack.close();
    }
  });
});

describe('MAX_OPERATIONS_IN_FLIGHT refusals in the log', () => {
  /** A gateway logging warnings that admits one operation at a time, and has just refused three. */
  async function afterThreeRefusals() {
    const stack = await startLoggingStack('warn', { gateway: { maxOperationsInFlight: 1 } });
    const said = () => stack.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => String(line['message']).startsWith('operation'));
    try {
      const held = await holdOperations(stack, 1);
      try {
        for (let i = 0; i < 3; i++) assert.equal((await stack.gql('{ __typename }')).status, 503);
      } finally {
        await held.release();
      }
    } catch (error) {
      await stack.close();
      throw error;
    }
    return { stack, said };
  }

  it('are warned of once an interval, and once they stop, the next operation admitted says how many went unsaid', async () => {
    const { stack, said } = await afterThreeRefusals();
    try {
      assert.equal((await stack.gql('{ __typename }')).status, 200, 'admitted again, within the interval: nothing to say yet');
      assert.deepEqual(said().map((line) => [line['message'], line['sinceLastLine']]), [['operation refused: as many run as MAX_OPERATIONS_IN_FLIGHT allows', undefined]]);
      // The refusals stopped for an interval: the next operation admitted gives the count of the burst's end.
      await withClockAhead(10_000, async () => assert.equal((await stack.gql('{ __typename }')).status, 200));
      assert.deepEqual(said().map((line) => [line['level'], line['sinceLastLine']]).slice(1), [['warn', 2]]);
      assert.match(String(said()[1]!['message']), /^operations refused for load left unsaid/);
      assert.equal((await stack.gql('{ __typename }')).status, 200);
      assert.equal(said().length, 2, 'said once');
    } finally {
      await stack.close();
    }
  });

  it('have the count of a burst still unsaid when the gateway stops said as it stops', async () => {
    const { stack, said } = await afterThreeRefusals();
    await stack.close();
    // No later refusal and no quiet interval will come: the two left unsaid are said at the stop.
    assert.deepEqual(said().map((line) => [line['level'], line['sinceLastLine']]), [['warn', undefined], ['warn', 2]]);
    assert.match(String(said()[1]!['message']), /^operations refused for load left unsaid/);
  });
});
