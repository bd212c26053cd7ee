import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logging/logger.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { doublingDocument } from '../helpers/documents.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, exchange, listenOnLoopback, rawGraphQLPost } from '../helpers/net.ts';
import { codes, leaveWhileUpstreamHangs, postGraphQL, startLoggingStack, startSlowDownload, startStack, startTestGateway, type GraphQLResponse, type SlowRead, type Stack } from '../helpers/stack.ts';

/** The gateway's one line per operation, read back from its log as an operator's log search would. */
describe('the operation log line', () => {
  const lines: string[] = [];
  let stack: Stack;
  before(async () => {
    // At debug: a request that never arrived whole is told by its debug line alone.
    stack = await startStack({ gateway: { logger: createLogger('debug', (line) => lines.push(line)) } });
  });
  after(() => stack.close());
  beforeEach(() => {
    lines.length = 0;
    stack.emulator.clearRequests();
    stack.emulator.clearFaults();
  });

  /** The operation lines logged so far, markers' left out: each is written when its response closes, just after the client read it. */
  const loggedOperations = (from: string[]) =>
    from
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry['message'] === 'operation' && !String(entry['requestId']).startsWith(MARKER));

  /** The operation lines logged so far, once there are at least `count` (or after 10 s). */
  async function operationLines(count: number, from = lines): Promise<Array<Record<string, unknown>>> {
    // Not there in time, what there is goes back all the same: the callers' checks of it say more than a timeout.
    await eventually(() => loggedOperations(from).length >= count, { timeoutMs: 10_000 }).catch(() => {});
    return loggedOperations(from);
  }

  const MARKER = 'operation-log-marker-';
  let markers = 0;
  /**
   * Exactly `count` operation lines, checked to be all: once they are there, a marker operation is sent to
   * `gateway` (the one logging into `from`) and its line must come next, and last. A line more for the requests
   * before it (written twice, or late, as its connection closed) is in by the time the marker's answer has
   * gone a whole round trip, where `operationLines` alone returns before it and misses it.
   */
  async function exactOperationLines(count: number, gateway: { url: string } = stack.gateway, from = lines): Promise<Array<Record<string, unknown>>> {
    const found = await operationLines(count, from);
    const marker = `${MARKER}${++markers}`;
    await (await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': marker }, body: '{"query":"{ __typename }"}' })).text();
    await eventually(() => from.some((line) => line.includes(marker)));
    assert.equal(JSON.parse(from.at(-1)!)['requestId'], marker, 'the marker’s line is the last');
    assert.equal(loggedOperations(from).length, count, JSON.stringify(loggedOperations(from)));
    return found;
  }

  it('names the request id, operation, status, duration, upstream requests and the error codes answered', async () => {
    const found = stack.emulator.store.createAccount({ email: 'logged@example.com' }).id;
    const res = await stack.gql(`query Dashboard($found: ID!, $missing: ID!) { found: account(id: $found) { id } missing: account(id: $missing) { id } }`, {
      found,
      missing: '0123456789abcdef01234567',
    });
    assert.deepEqual(res.body.errors?.map((e) => e.extensions?.['code']), ['NOT_FOUND']);
    const [entry] = await exactOperationLines(1);
    assert.equal(entry!['level'], 'info');
    assert.equal(entry!['requestId'], res.headers.get('x-request-id'));
    assert.equal(entry!['operationName'], 'Dashboard');
    assert.equal(entry!['status'], 200);
    assert.equal(typeof entry!['ms'], 'number');
    assert.equal(entry!['upstreamRequests'], stack.upstreamCalls().length);
    assert.equal(entry!['upstreamRequests'], 2);
    assert.deepEqual(entry!['errors'], ['NOT_FOUND']);
    assert.equal(entry!['caller'], 'open');
    assert.equal('subject' in entry!, false);
  });

  it('names the writes an operation made, in order, those before a field that failed included; never their values', async () => {
    const id = stack.emulator.store.createAccount({ email: 'written@example.com' }).id;
    const res = await stack.gql(
      `mutation Writes($id: ID!) {
        renamed: updateAccount(id: $id, input: { firstName: "Ada" }) { success }
        linked: createAccountConnectToken(accountId: $id, input: { callbackUrl: "https://app.example.com/cb" }) { token }
        gone: deleteAccount(id: "0123456789abcdef01234567") { success }
      }`,
      { id },
    );
    assert.equal(res.body.data, null, JSON.stringify(res.body));
    const token = (res.body.extensions?.['writesMade'] as Array<{ payload: { token?: string } }>)[1]!.payload.token!;
    const [entry] = await exactOperationLines(1);
    assert.deepEqual(entry!['writes'], ['updateAccount', 'createAccountConnectToken']);
    assert.equal(JSON.stringify(entry).includes(token), false, 'no value of a write');
    // A query makes none, and says so by leaving the field out.
    lines.length = 0;
    await stack.gql('{ __typename }');
    assert.equal('writes' in (await exactOperationLines(1))[0]!, false);
  });

  it('names the writes whose outcome is unknown: one that failed after its request went out, one its client left while it was out', async () => {
    const broken = stack.emulator.store.createAccount({ email: 'broken@example.com' }).id;
    const left = stack.emulator.store.createAccount({ email: 'left@example.com' }).id;
    const kept = stack.emulator.store.createAccount({ email: 'kept@example.com' }).id;
    // Deleted upstream, its answer lost on the way back: the caller is told it may have taken effect.
    stack.emulator.addFault({ method: 'DELETE', path: `/accounts/${broken}`, drop: 'after-handling' });
    const failed = await stack.gql('mutation Broken($id: ID!) { deleteAccount(id: $id) { success } }', { id: broken });
    assert.match(failed.body.errors?.[0]?.message ?? '', /may have taken effect/, JSON.stringify(failed.body));
    // Deleted upstream as it arrives, its answer held back; the client leaves meanwhile.
    stack.emulator.addFault({ method: 'DELETE', path: `/accounts/${left}`, answerAfterMs: 60_000 });
    const controller = new AbortController();
    const pending = fetch(stack.gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `mutation Left { deleteAccount(id: "${left}") { success } }` }),
      signal: controller.signal,
    }).catch(() => undefined);
    await eventually(() => stack.emulator.store.getAccount(left) === undefined, { what: 'the delete made upstream' });
    controller.abort();
    await pending;
    // Refused for sure (a 404), and refused before any request (bad input): neither may have changed anything.
    await stack.gql('mutation Missing { deleteAccount(id: "0123456789abcdef01234567") { success } }');
    await stack.gql('mutation Refused($id: ID!) { updateAccount(id: $id, input: {}) { success } }', { id: kept });
    const entries = await exactOperationLines(4);
    const said = (name: string) => entries.find((entry) => entry['operationName'] === name)!;
    assert.deepEqual([said('Broken')['writesMaybeMade'], said('Broken')['writes'], said('Broken')['errors']], [['deleteAccount'], undefined, ['UPSTREAM_ERROR']]);
    assert.deepEqual([said('Left')['writesMaybeMade'], said('Left')['clientWentAway']], [['deleteAccount'], true]);
    for (const name of ['Missing', 'Refused']) assert.equal('writesMaybeMade' in said(name), false, `${name}: ${JSON.stringify(said(name))}`);
  });

  it('names an operation by at most 100 characters of its name: one name may be a whole body long', async () => {
    const name = `Q${'x'.repeat(5_000)}`;
    const res = await stack.gql(`query ${name} { __typename }`);
    assert.equal(res.status, 200);
    const [entry] = await exactOperationLines(1);
    assert.equal(entry!['operationName'], `${name.slice(0, 100)}…`);
  });

  it('names an operation its caller named with half a surrogate pair in it by U+FFFD there: the line, an escape of no character, was refused whole by strict JSON readers (jq 1.6)', async () => {
    // Spelt as a client's JSON may spell it: the gateway reads the name as that lone half.
    const body = '{"query":"{ __typename }","operationName":"\\ud800x"}';
    const res = await fetch(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400, await res.text());
    const [entry] = await exactOperationLines(1);
    assert.equal(entry!['operationName'], '\ufffdx');
    const line = lines.find((written) => written.includes(String(entry!['requestId'])))!;
    assert.doesNotMatch(line, /\\ud800/, line);
  });

  it('names an operation refused before it ran as the operation its document or its caller named (one its document lacks included): it was logged as null', async () => {
    const post = async (body: Record<string, unknown>) =>
      (await fetch(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).text();
    await post({ query: 'query Misspelt { acount(id: "x") { id } }' });
    await post({ query: 'query First { __typename } query Second { nope }', operationName: 'Second' });
    await post({ query: 'query Unparsed { account(id: ', operationName: 'Unparsed' });
    await post({ query: '{ nope }' });
    // An operationName naming none of the document's operations: it was logged as null, the name asked for lost.
    await post({ query: 'query First { __typename } query Second { __typename }', operationName: 'Third' });
    await post({ query: '{ nope }', operationName: 'Sent' });
    await post({ query: 'query First { __typename } query Second { __typename }' });
    const entries = await exactOperationLines(7);
    assert.deepEqual(
      entries.map((entry) => [entry['operationName'], entry['errors']]),
      [
        ['Misspelt', ['GRAPHQL_VALIDATION_FAILED']],
        ['Second', ['GRAPHQL_VALIDATION_FAILED']],
        ['Unparsed', ['GRAPHQL_PARSE_FAILED']],
        [null, ['GRAPHQL_VALIDATION_FAILED']],
        ['Third', ['OPERATION_RESOLUTION_FAILURE']],
        ['Sent', ['GRAPHQL_VALIDATION_FAILED']],
        [null, ['OPERATION_RESOLUTION_FAILURE']],
      ],
    );
  });

  it('counts every request sent, retries included: the operation’s cost of the key’s quota', async () => {
    const id = stack.emulator.store.createAccount({ email: 'retried@example.com' }).id;
    stack.emulator.addFault({ path: `/accounts/${id}`, status: 429, retryAfter: 0, times: 1 });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
    assert.deepEqual(res.body, { data: { account: { id } } });
    const [entry] = await exactOperationLines(1);
    assert.equal(entry!['upstreamRequests'], 2);
    assert.equal(entry!['operationName'], null);
    assert.equal(entry!['errors'], undefined);
  });

  it('logs refusals before any upstream call with their status and code, and never the variables', async () => {
    const token = 'tok3nInAVariable0001';
    await stack.gql('{ account(id: ', {});
    await stack.gql(`query Lookup($t: ID!) { connectToken(token: $t) { token } }`, { t: token });
    const [parse, lookup] = await operationLines(2);
    assert.deepEqual([parse!['status'], parse!['errors'], parse!['upstreamRequests']], [400, ['GRAPHQL_PARSE_FAILED'], 0]);
    assert.deepEqual([lookup!['operationName'], lookup!['errors'], lookup!['upstreamRequests']], ['Lookup', ['NOT_FOUND'], 1]);
    assert.doesNotMatch(lines.join('\n'), new RegExp(token));
    await fetch(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    const unsupported = (await exactOperationLines(3))[2];
    assert.deepEqual([unsupported!['status'], unsupported!['errors']], [415, ['UNSUPPORTED_MEDIA_TYPE']]);
  });

  it('says the caller is open in open mode even for a request refused before any token is looked at', async () => {
    assert.equal((await fetch(stack.gateway.url, { method: 'PUT' })).status, 405);
    assert.equal((await fetch(`${stack.gateway.url}?query=%E9`, { headers: { accept: 'application/json' } })).status, 400);
    const entries = await exactOperationLines(2);
    assert.deepEqual(
      entries.map((entry) => [entry['status'], entry['errors'], entry['caller']]),
      [
        [405, ['METHOD_NOT_ALLOWED'], 'open'],
        [400, ['BAD_REQUEST'], 'open'],
      ],
    );
  });

  it('logs a refused token as UNAUTHENTICATED with why it was refused, and never the token', async () => {
    const authed = await startLoggingStack('info', { gateway: { auth: { jwtSecret: SECRET } } });
    const authLines = authed.lines;
    try {
      const expired = await hsToken({ scope: 'contextio:admin', exp: Math.floor(Date.now() / 1000) - 3600 });
      const wronglySigned = await hsToken({ scope: 'contextio:admin' }, 'another-secret-of-at-least-32-characters!!');
      for (const token of ['not.a.jwt', expired, wronglySigned]) {
        assert.equal((await authed.gql('{ __typename }', {}, { authorization: `Bearer ${token}` })).status, 401);
      }
      assert.equal((await authed.gql('{ __typename }', {})).status, 401);
      const entries = await exactOperationLines(4, authed.gateway, authLines);
      for (const entry of entries) {
        assert.deepEqual([entry['status'], entry['errors'], entry['upstreamRequests']], [401, ['UNAUTHENTICATED'], 0]);
        assert.equal('caller' in entry, false, 'a refused token names nobody');
      }
      // What the caller was told, so that an operator looking up a 401 by its request id learns the cause (an
      // expired token, a key the gateway lacks, a clock off) without asking the caller for it.
      assert.deepEqual(
        entries.map((entry) => entry['authFailure']),
        [
          'The bearer token is not a well-formed JWT',
          'The token has expired',
          'The token\'s signature is not valid',
          'Authentication required: send Authorization: Bearer <token>',
        ],
      );
      assert.doesNotMatch(authLines.join('\n'), /not\.a\.jwt/);
      for (const token of [expired, wronglySigned]) assert.equal(authLines.join('\n').includes(token.split('.')[2]!), false);
    } finally {
      await authed.close();
    }
  });

  it('names a token’s issuer and subject, or for a scoped token without a subject the digest its budgets count it by; never the token', async () => {
    const authed = await startLoggingStack('info', { gateway: { auth: { jwtSecret: SECRET } } });
    try {
      const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
      const admin = await hsToken({ iss: 'https://id.example.com', sub: 'ops-1', scope: 'contextio:admin' });
      const user = await hsToken({ iss: 'https://id.example.com', sub: 'user-1', accounts: [] });
      const service = await hsToken({ accounts: ['0123456789abcdef01234567'] });
      const otherService = await hsToken({ accounts: ['76543210fedcba9876543210'] });
      for (const token of [admin, user, service, service, otherService]) assert.equal((await authed.gql('{ __typename }', {}, bearer(token))).status, 200);
      const entries = await exactOperationLines(5, authed.gateway, authed.lines);
      const said = entries.map((entry) => [entry['caller'], entry['issuer'], entry['subject'], entry['tokenDigest']]);
      const digest = (token: string) => createHash('sha256').update(token.slice(0, token.lastIndexOf('.'))).digest('base64url');
      assert.deepEqual(said, [
        ['admin', 'https://id.example.com', 'ops-1', undefined],
        ['scoped', 'https://id.example.com', 'user-1', undefined],
        ['scoped', undefined, undefined, digest(service)],
        ['scoped', undefined, undefined, digest(service)],
        ['scoped', undefined, undefined, digest(otherService)],
      ]);
      assert.notEqual(digest(service), digest(otherService));
      for (const token of [admin, user, service, otherService]) assert.equal(authed.lines.join('\n').includes(token.split('.')[2]!), false);
    } finally {
      await authed.close();
    }
  });

  it('names an admin token without a subject by its digest: the back ends holding such tokens are told apart in an audit of their writes', async () => {
    const authed = await startLoggingStack('info', { gateway: { auth: { jwtSecret: SECRET } } });
    try {
      // As `npm run token -- --admin` mints them: an admin scope, no `sub`.
      const billing = await hsToken({ scope: 'contextio:admin', svc: 'billing' });
      const support = await hsToken({ scope: 'contextio:admin', svc: 'support' });
      for (const token of [billing, support, billing]) assert.equal((await authed.gql('{ __typename }', {}, { authorization: `Bearer ${token}` })).status, 200);
      const entries = await exactOperationLines(3, authed.gateway, authed.lines);
      const digest = (token: string) => createHash('sha256').update(token.slice(0, token.lastIndexOf('.'))).digest('base64url');
      assert.deepEqual(
        entries.map((entry) => [entry['caller'], entry['subject'], entry['tokenDigest']]),
        [
          ['admin', undefined, digest(billing)],
          ['admin', undefined, digest(support)],
          ['admin', undefined, digest(billing)],
        ],
      );
      for (const token of [billing, support]) assert.equal(authed.lines.join('\n').includes(token.split('.')[2]!), false, 'never the signature');
    } finally {
      await authed.close();
    }
  });

  it('names the limit that refused a document whose fields merge in too many ways, before validating it', async () => {
    // Refused once measured (MERGED_SELECTIONS, its cost `unbounded`) until the check before validation, which
    // counts the pairs graphql-js's merge check compares, came first: no line says an unmeasured cost now.
    const res = await stack.gql(doublingDocument(15), {});
    assert.equal(res.status, 400);
    const [entry] = await exactOperationLines(1);
    assert.deepEqual([entry!['status'], entry!['errors'], entry!['limits']], [400, ['QUERY_TOO_COMPLEX'], ['MERGED_PAIRS']]);
  });

  it('says how often an operation refused for asking for the schema more than once asked for it', async () => {
    const res = await stack.gql('{ __schema { queryType { name } } again: __schema { queryType { name } } }', {});
    assert.equal(res.status, 400);
    const refused = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry['message'] === 'operation refused as too complex');
    assert.deepEqual([refused?.['limit'], refused?.['schemaFields']], ['SCHEMA_FIELDS', 2]);
  });

  it('names the setting of the limit that refused an operation, where its code alone does not say which', async () => {
    await stack.gql(`{ ${'__typename '.repeat(3_001)}}`, {});
    const tokens = (depth: number): string => (depth === 0 ? 'token' : `account { connectTokens { ${tokens(depth - 1)} } }`);
    await stack.gql(`{ connectToken(token: "t0123456789") { ${tokens(6)} } }`, {});
    // Refused before Apollo reads it, for its line breaks (as many as MAX_QUERY_TOKENS).
    await stack.gql(`${'\n'.repeat(3_001)}{ __typename }`, {});
    const [long, depth, lined] = await exactOperationLines(3);
    assert.deepEqual([long!['status'], long!['errors'], long!['limits']], [400, ['QUERY_TOO_COMPLEX'], ['MAX_QUERY_TOKENS']]);
    assert.deepEqual([depth!['status'], depth!['errors'], depth!['limits']], [400, ['QUERY_TOO_COMPLEX'], ['MAX_QUERY_DEPTH']]);
    assert.deepEqual([lined!['status'], lined!['errors'], lined!['limits']], [400, ['QUERY_TOO_COMPLEX'], ['DOCUMENT_LINES']]);

    // RATE_LIMITED is the upstream's 429 (no limit of the gateway's) or the caller's budget of writes.
    const budgeted = await startLoggingStack('info', { gateway: { auth: { jwtSecret: SECRET }, callerWritesPerHour: 1 } });
    try {
      const caller = { authorization: `Bearer ${await hsToken({ sub: 'user-1' })}` };
      const create = 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }';
      const { token } = (await budgeted.gql(create, {}, caller)).body.data!['createConnectToken'] as { token: string };
      assert.equal((await budgeted.gql(create, {}, caller)).status, 429);
      budgeted.emulator.addFault({ path: `/connect_tokens/${token}`, status: 429, retryAfter: 0 });
      const upstream = await budgeted.gql('query ($t: ID!) { connectToken(token: $t) { token } }', { t: token }, caller);
      assert.deepEqual(upstream.body.errors?.map((e) => e.extensions?.['code']), ['RATE_LIMITED']);
      const [made, refused, limited] = await exactOperationLines(3, budgeted.gateway, budgeted.lines);
      assert.deepEqual([made!['status'], made!['errors'], made!['limits']], [200, undefined, undefined]);
      assert.deepEqual([refused!['status'], refused!['errors'], refused!['limits']], [429, ['RATE_LIMITED'], ['CALLER_WRITES_PER_HOUR']]);
      // Who spent the budget: the token's kind and subject, never the token.
      assert.deepEqual([refused!['caller'], refused!['subject']], ['scoped', 'user-1']);
      assert.equal(budgeted.lines.join('\n').includes(caller.authorization.split('.')[2]!), false);
      assert.deepEqual([limited!['status'], limited!['errors'], limited!['limits']], [200, ['RATE_LIMITED'], undefined]);
    } finally {
      await budgeted.close();
    }
  });

  it('says when the client went away before its answer', async () => {
    assert.equal(await leaveWhileUpstreamHangs(stack, 'hung@example.com'), 'aborted');
    const [entry] = await exactOperationLines(1);
    assert.deepEqual([entry!['status'], entry!['clientWentAway'], entry!['upstreamRequests']], [null, true, 1]);
  });

  it('is written for requests queued behind another on a connection that drops: none of them is left running', async () => {
    // Node 20 never closes a response still queued behind another (pipelining) when the connection drops.
    const id = stack.emulator.store.createAccount({ email: 'queue@example.com' }).id;
    stack.emulator.addFault({ path: `/accounts/${id}`, hang: true });
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    socket.write(rawGraphQLPost(`{ account(id: "${id}") { id } }`) + rawGraphQLPost('{ __typename }').repeat(20));
    await once(socket, 'connect');
    // The first request has reached the upstream, and hangs there: the 20 behind it wait for it.
    await eventually(() => stack.emulator.inFlight === 1);
    socket.destroy();
    const found = await exactOperationLines(21);
    assert.ok(found.every((entry) => entry['clientWentAway'] === true), JSON.stringify(found));
  });

  it('says when shutdown cut an answer its client had stopped reading, rather than that the client left', { timeout: 20_000 }, async () => {
    const cut = await startLoggingStack('info', { gateway: { shutdownGraceMs: 200 } });
    const cutLines = cut.lines;
    let download: SlowRead | undefined;
    try {
      download = await startSlowDownload(cut.emulator, cut.gateway.url);
      await cut.gateway.close();
      // The line is written as the connection's close reaches the response, just after close() returns.
      const entries = await operationLines(1, cutLines);
      assert.deepEqual(
        entries.map((entry) => [entry['status'], entry['cutAtShutdown'], entry['clientWentAway']]),
        [[null, true, undefined]],
      );
    } finally {
      download?.socket.destroy();
      await cut.close();
    }
  });

  it('takes the code of a refusal Apollo answers before its plugins run: a GET failing the CSRF check', async () => {
    const res = await fetch(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400);
    const [entry] = await exactOperationLines(1);
    assert.deepEqual([entry!['status'], entry!['errors']], [400, ['BAD_REQUEST']]);
  });

  it('is not written for a request that never arrived whole (no operation ran); a refused Host gets its own line', async () => {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    await once(socket, 'connect');
    await new Promise((resolve) => {
      socket.write('POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: left-midway-1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":', resolve);
    });
    socket.destroy();
    // The gateway saw it, and its client leave: its debug line (not an operation line) says so, by its request id.
    const leftLine = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry['message'] === 'the client left before its request was complete');
    await eventually(() => leftLine() !== undefined);
    assert.equal(leftLine()!['requestId'], 'left-midway-1');
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(stack.gateway.url, { method: 'POST', headers: { host: 'rebound.attacker.example', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{"query":"{ __typename }"}');
    });
    assert.equal(rebound, 403);
    await stack.gql('{ __typename }');
    const entries = await exactOperationLines(1);
    assert.deepEqual(entries.map((entry) => entry['status']), [200], 'only the complete request');
    const refused = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => String(entry['message']).startsWith('request refused'));
    assert.deepEqual(refused.map((entry) => entry['host']), ['rebound.attacker.example']);
  });

  it('keeps a refused Host holding a byte 0x85 on one line: read as Latin-1 it is U+0085, where Python\'s splitlines breaks a line', async () => {
    const answer = await exchange(stack.gateway.url, `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: evil\u0085{"level":"error","message":"forged"}\r\nConnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 403 /, answer);
    const refusedLine = () => lines.find((line) => line.includes('request refused: open mode answers loopback host names only'));
    await eventually(() => refusedLine() !== undefined);
    assert.doesNotMatch(refusedLine()!, /\u0085/, refusedLine());
    assert.match(String((JSON.parse(refusedLine()!) as Record<string, unknown>)['host']), /^evil.*\u0085\{"level":"error","message":"forged"\}$/, 'the host as it came, escaped');
  });

  it('logs a refused Host sent in UTF-8 as it was written, not its bytes read one by one as Latin-1', async () => {
    // Node reads a header's bytes as Latin-1: `bücher.example` (the ü two bytes, C3 BC) was logged `bÃ¼cher.example`.
    const answer = await exchange(stack.gateway.url, 'GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: bücher.example:4000\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 403 /, answer);
    const refusedLine = () => lines.find((line) => line.includes('request refused: open mode answers loopback host names only') && line.includes('cher.example'));
    await eventually(() => refusedLine() !== undefined);
    assert.equal((JSON.parse(refusedLine()!) as Record<string, unknown>)['host'], 'bücher.example:4000', refusedLine());
  });

  it('keeps a refused Host holding C1 control bytes escaped: read as Latin-1, a byte 0x9b is U+009B, the one-character escape sequence opener (CSI) of terminals', async () => {
    // JSON escapes ESC (\u001b) but not U+009B: `less -R`, xterm and other terminals showing the log acted on it
    // (a line recoloured, hidden or rewritten by the sender of a request).
    const answer = await exchange(stack.gateway.url, `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: evil\u009b2K\u009b1Aforged\u0090\r\nConnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 403 /, answer);
    const refusedLine = () => lines.find((line) => line.includes('request refused: open mode answers loopback host names only') && line.includes('forged'));
    await eventually(() => refusedLine() !== undefined);
    assert.doesNotMatch(refusedLine()!, /[\u007f-\u009f]/, refusedLine());
    assert.match(String((JSON.parse(refusedLine()!) as Record<string, unknown>)['host']), /^evil.*\u009b2K.*\u009b1Aforged.*\u0090$/, 'the host as it came, escaped');
  });

  it('lists the codes of the answer sent, not of the one it replaced, when the answer was too large to send', async () => {
    // Below the ~200 bytes of a limit's refusal too.
    const capped = await startLoggingStack('info', { gateway: { maxAnswerBytes: 150 } });
    try {
      // A field failing NOT_FOUND, in an answer replaced whole by the one error saying it is too large.
      const res = await capped.gql('{ missing: account(id: "0123456789abcdef01234567") { id } schema: __schema { types { name } } }', {});
      assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
      const [entry] = await exactOperationLines(1, capped.gateway, capped.lines);
      assert.deepEqual([entry!['status'], entry!['errors'], entry!['limits']], [200, ['QUERY_TOO_COMPLEX'], ['MAX_ANSWER_BYTES']]);
      // A refusal for another limit (MAX_QUERY_TOKENS), its answer too large too: the limit named is the one answered.
      capped.lines.length = 0;
      const refused = await capped.gql(`{ ${'__typename '.repeat(3_001)}}`, {});
      assert.deepEqual([refused.status, refused.body.errors?.map((e) => e.extensions?.['limit'])], [400, ['MAX_ANSWER_BYTES']]);
      const [refusal] = await exactOperationLines(1, capped.gateway, capped.lines);
      assert.deepEqual([refusal!['status'], refusal!['errors'], refusal!['limits']], [400, ['QUERY_TOO_COMPLEX'], ['MAX_ANSWER_BYTES']]);
    } finally {
      await capped.close();
    }
  });

  it('is not written for a request refused before its path is looked at, which its debug line names by its request id', async () => {
    const refused = [
      'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: a-sandwich\r\ncontent-length: 2\r\n\r\n{}',
      'POST /graphql HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
    ];
    const answered: Array<[status: string, requestId: string]> = [];
    for (const bytes of refused) {
      const answer = await exchange(stack.gateway.url, bytes);
      answered.push([answer.split(' ')[1]!, /^x-request-id: (.+)$/im.exec(answer)![1]!.trim()]);
    }
    assert.deepEqual(answered.map(([status]) => status), ['417', '400']);
    assert.deepEqual(await exactOperationLines(0), []);
    const said = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['message'] === 'request refused before its path was looked at');
    assert.deepEqual(said.map((entry) => [entry['level'], String(entry['status']), entry['requestId']]), answered.map(([status, requestId]) => ['debug', status, requestId]));
  });

  it('says, as the gateway stops, how many of its throttled lines went unsaid since their last line', { timeout: 20_000 }, async () => {
    const stopping = await startLoggingStack('info', { gateway: { maxOperationsInFlight: 1, shutdownGraceMs: 200 } });
    try {
      // Three calls answered 500 in one operation: one warning, two left unsaid.
      const ids = ['a', 'b', 'c'].map((name) => stopping.emulator.store.createAccount({ email: `${name}@example.com` }).id);
      stopping.emulator.addFault({ path: /^\/accounts\//, status: 500 });
      const failed = await stopping.gql(`{ ${ids.map((id, i) => `a${i}: account(id: "${id}") { id }`).join(' ')} }`);
      assert.deepEqual(codes(failed), Array(3).fill('UPSTREAM_ERROR'));
      // Three operations refused for load behind one that hangs: one warning, two left unsaid.
      stopping.emulator.clearFaults();
      stopping.emulator.addFault({ path: `/accounts/${ids[0]}`, hang: true });
      const hanging = stopping.gql(`{ account(id: "${ids[0]}") { id } }`).catch(() => undefined);
      await eventually(() => stopping.emulator.inFlight === 1);
      for (let i = 0; i < 3; i++) assert.equal((await stopping.gql('{ __typename }')).status, 503);
      await stopping.gateway.close();
      await hanging;
    } finally {
      await stopping.close();
    }
    const entries = stopping.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const counts = (said: string, unsaid: string) => [
      entries.filter((entry) => entry['message'] === said).map((entry) => entry['sinceLastLine']),
      entries.filter((entry) => String(entry['message']).startsWith(unsaid)).map((entry) => entry['sinceLastLine']),
    ];
    assert.deepEqual(counts('upstream answered with an error', 'upstream call failures left unsaid'), [[undefined], [2]]);
    assert.deepEqual(counts('operation refused: as many run as MAX_OPERATIONS_IN_FLIGHT allows', 'operations refused for load left unsaid'), [[undefined], [2]]);
  });

  it('says how many of its calls the circuit breaker failed at once, where no request was sent', async () => {
    const breaking: string[] = [];
    const guarded = await startStack({ gateway: { breakerFailureThreshold: 1, logger: createLogger('info', (line) => breaking.push(line)) } });
    try {
      const { id } = guarded.emulator.store.createAccount({ email: 'down@example.com' });
      guarded.emulator.addFault({ path: `/accounts/${id}`, status: 502 });
      const query = `{ account(id: "${id}") { id } }`;
      // The first fails at the upstream (its retries included) and opens the circuit; the second is failed at once.
      for (let i = 0; i < 2; i++) assert.deepEqual(codes(await guarded.gql(query)), ['UPSTREAM_ERROR']);
      const [failed, refused] = await exactOperationLines(2, guarded.gateway, breaking);
      assert.equal(failed!['breakerRefusals'], undefined);
      assert.ok(Number(failed!['upstreamRequests']) > 0, 'the failed operation’s calls went upstream');
      assert.deepEqual([refused!['errors'], refused!['upstreamRequests'], refused!['breakerRefusals']], [['UPSTREAM_ERROR'], 0, 1]);
    } finally {
      await guarded.close();
    }
  });

  it('shares its request id with the upstream client’s lines about the same operation', async () => {
    const debugStack = await startLoggingStack('debug');
    const debugLines = debugStack.lines;
    try {
      const res = await debugStack.gql('{ account(id: "0123456789abcdef01234567") { id } }', {}, { 'x-request-id': 'trace-me-42' });
      assert.equal(res.headers.get('x-request-id'), 'trace-me-42');
      const upstream = debugLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['message'] === 'upstream error response');
      assert.deepEqual(upstream.map((entry) => [entry['requestId'], entry['status']]), [['trace-me-42', 404]]);
    } finally {
      await debugStack.close();
    }
  });

  describe('with a W3C trace context', () => {
    const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
    const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
    /** Sends one operation of two upstream calls with `headers`; its line and what the upstream received. */
    async function traced(headers: Record<string, string>) {
      const [one, two] = ['traced1@example.com', 'traced2@example.com'].map((email) => stack.emulator.store.createAccount({ email }).id);
      const res = await stack.gql('query Traced($one: ID!, $two: ID!) { one: account(id: $one) { id } two: account(id: $two) { id } }', { one, two }, headers);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body));
      const [entry] = await exactOperationLines(1);
      const upstream = stack.emulator.requests.map(({ traceparent, tracestate }) => ({ traceparent, tracestate }));
      assert.equal(upstream.length, 2, JSON.stringify(stack.emulator.requests));
      return { entry: entry!, upstream };
    }

    it('names its trace id in the line and passes it upstream unchanged with every call', async () => {
      const { entry, upstream } = await traced({ traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7' });
      assert.equal(entry['traceId'], TRACE_ID);
      assert.deepEqual(upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' })));
    });

    it('leaves out a tracestate that is not a valid list, and with a traceparent that is not valid, both', async () => {
      const badState = await traced({ traceparent: TRACEPARENT, tracestate: 'Congo=upper-case key' });
      assert.equal(badState.entry['traceId'], TRACE_ID);
      assert.deepEqual(badState.upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: undefined })));
      for (const traceparent of [
        `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
        `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
        `ff-${TRACE_ID}-00f067aa0ba902b7-01`,
        `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`,
        `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
        `${TRACEPARENT}, ${TRACEPARENT}`,
        `00-${TRACE_ID}-00f067aa0ba902b7-0g`,
        // A later version's further fields are passed on only as visible ASCII: a tab or a byte beyond it could fail the call.
        `01-${TRACE_ID}-00f067aa0ba902b7-01-a\tb`,
        `01-${TRACE_ID}-00f067aa0ba902b7-01-caf\u00e9`,
      ]) {
        lines.length = 0;
        stack.emulator.clearRequests();
        const refused = await traced({ traceparent, tracestate: 'congo=t61rcWkgMzE' });
        assert.equal('traceId' in refused.entry, false, traceparent);
        assert.deepEqual(refused.upstream, [0, 1].map(() => ({ traceparent: undefined, tracestate: undefined })), traceparent);
      }
    });

    it('reads a later version by its first four fields, and keeps tracestate to 512 characters by whole members', async () => {
      const later = `01-${TRACE_ID}-00f067aa0ba902b7-01-what-comes-next`;
      const members = Array.from({ length: 32 }, (_, i) => `k${i}=${'v'.repeat(20)}`);
      const { entry, upstream } = await traced({ traceparent: later, tracestate: members.join(',') });
      assert.equal(entry['traceId'], TRACE_ID);
      const kept = members.slice(0, 20).join(',');
      assert.ok(kept.length <= 512 && `${kept},${members[20]}`.length > 512, 'the kept members are as many as 512 characters hold');
      assert.deepEqual(upstream, [0, 1].map(() => ({ traceparent: later, tracestate: kept })));
    });

    it('takes the keys of Trace Context Level 2 (a digit first, an @ anywhere), which Level 1 keys are some of', async () => {
      // Level 2's key: a lower-case letter or digit, then up to 255 of those, _ - * / and @. Read by Level 1's
      // grammar alone, one such member dropped the caller's whole tracestate.
      const tracestate = `1vendor=a,tenant@sys@v2=b,t@${'s'.repeat(20)}=c,${'k'.repeat(256)}=d,fw529a3039@dt=e,congo=t61rcWkgMzE`;
      assert.ok(tracestate.length <= 512, 'the list is short enough to be passed on whole');
      const { upstream } = await traced({ traceparent: TRACEPARENT, tracestate });
      assert.deepEqual(upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate })));
      for (const refused of ['@vendor=a', 'Vendor=a', `${'k'.repeat(257)}=a`, 've ndor=a']) {
        stack.emulator.clearRequests();
        lines.length = 0;
        const { upstream: left } = await traced({ traceparent: TRACEPARENT, tracestate: `congo=t61rcWkgMzE,${refused}` });
        assert.deepEqual(left, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: undefined })), refused);
      }
    });

    it('keeps tracestate to 512 characters by dropping its members over 128 characters first, then members from the end, as the recommendation asks', async () => {
      // One long member first: dropping from the end alone lost the short members after it and kept it.
      const long = `big=${'x'.repeat(200)}`;
      const short = Array.from({ length: 14 }, (_, i) => `k${i}=${'v'.repeat(20)}`);
      const first = await traced({ traceparent: TRACEPARENT, tracestate: [long, ...short].join(',') });
      assert.ok([long, ...short].join(',').length > 512 && short.join(',').length <= 512, 'the short members alone fit, with the long one they do not');
      assert.deepEqual(first.upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: short.join(',') })));
      // Only as many long members go as the length needs, the last first; past them, short ones go from the end.
      stack.emulator.clearRequests();
      lines.length = 0;
      const longs = [0, 1, 2].map((i) => `long${i}=${'y'.repeat(140)}`);
      const second = await traced({ traceparent: TRACEPARENT, tracestate: [longs[0], ...short.slice(0, 4), longs[1], longs[2], ...short.slice(4)].join(',') });
      assert.ok([longs[0], ...short].join(',').length <= 512, 'one long member and the short ones fit');
      assert.deepEqual(second.upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: [longs[0], ...short].join(',') })));
      stack.emulator.clearRequests();
      lines.length = 0;
      const many = Array.from({ length: 30 }, (_, i) => `m${i}=${'w'.repeat(20)}`);
      const third = await traced({ traceparent: TRACEPARENT, tracestate: [...many.slice(0, 10), long, ...many.slice(10)].join(',') });
      const kept = many.slice(0, 20).join(',');
      assert.ok(kept.length <= 512 && `${kept},${many[20]}`.length > 512, 'twenty short members are as many as 512 characters hold');
      assert.deepEqual(third.upstream, [0, 1].map(() => ({ traceparent: TRACEPARENT, tracestate: kept })));
    });
  });

  it('is not joined by an error line for each upstream call of an upstream answering bodies it cannot use', async () => {
    const garbling = await startLoggingStack('info');
    try {
      const ids = ['a', 'b', 'c', 'd', 'e'].map((name) => garbling.emulator.store.createAccount({ email: `${name}@example.com` }).id);
      garbling.emulator.addFault({ path: /^\/accounts\//, body: 'not an account' });
      const res = await garbling.gql(`{ ${ids.map((id, i) => `a${i}: account(id: "${id}") { id }`).join(' ')} }`);
      assert.deepEqual(codes(res), Array(5).fill('UPSTREAM_ERROR'));
      assert.equal(garbling.upstreamCalls().length, 5);
      const [entry] = await exactOperationLines(1, garbling.gateway, garbling.lines);
      assert.deepEqual(entry!['errors'], ['UPSTREAM_ERROR']);
      // Its five calls, met within the same few milliseconds, are one error line, not five.
      const unusable = garbling.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'upstream answered with an unexpected body');
      assert.deepEqual(unusable.map((line) => [line['level'], line['reason']]), [['error', 'account is not an object']]);
    } finally {
      await garbling.close();
    }
  });

  it('is not joined by a warning for each upstream call of an upstream whose answers are not valid HTTP', async () => {
    const broken = createNetServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n'));
    });
    const port = await listenOnLoopback(broken);
    const brokenLines: string[] = [];
    const gateway = await startTestGateway({ baseUrl: `http://127.0.0.1:${port}/2.0`, consumerKey: 'key', consumerSecret: 'secret' }, { logger: createLogger('info', (line) => brokenLines.push(line)) });
    try {
      const ids = ['1', '2', '3', '4', '5'].map((digit) => `0123456789abcdef0123456${digit}`);
      const res = await postGraphQL<GraphQLResponse['body']>(gateway.url, `{ ${ids.map((id, i) => `a${i}: account(id: "${id}") { id }`).join(' ')} }`);
      assert.equal(res.errors?.length, 5);
      const [entry] = await exactOperationLines(1, gateway, brokenLines);
      assert.equal(entry!['upstreamRequests'], 5);
      // Its five calls, met within the same few milliseconds, are one warning, not five.
      const invalid = brokenLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'upstream answer was not valid HTTP');
      assert.deepEqual(invalid.map((line) => [line['level'], line['sinceLastLine']]), [['warn', undefined]]);
    } finally {
      await gateway.close();
      await closeServer(broken);
    }
  });

  it('is not written for /healthz, which load balancers ask every few seconds', async () => {
    await fetch(new URL('/healthz', stack.gateway.url));
    await stack.gql('{ __typename }');
    const entries = await exactOperationLines(1);
    assert.deepEqual(entries.map((entry) => entry['status']), [200]);
    assert.equal(lines.length, 2, 'the operation’s line and the marker’s');
  });
});
