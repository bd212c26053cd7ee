import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logging/logger.ts';
import { eventually } from '../helpers/eventually.ts';
import { closedPort } from '../helpers/net.ts';
import { codes, postGraphQL, startLoggingStack, startStack, startTestGateway, useStack } from '../helpers/stack.ts';

describe('errors quoting what the caller sent', () => {
  const stack = useStack();

  it('quote half a surrogate pair as U+FFFD: JSON spells it as an escape of no character, and strict readers (serde_json, jq 1.6) refuse the whole answer', async () => {
    // Spelt as a client's JSON may spell it: the gateway reads the name as that lone half, and quotes it.
    const body = '{"query":"query A { __typename }","operationName":"\\ud800x"}';
    const res = await fetch(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await res.text();
    assert.doesNotMatch(text, /\\ud[89a-f]/i, text);
    const answer = JSON.parse(text) as { errors: Array<{ message: string }> };
    assert.equal(answer.errors[0]!.message, 'Unknown operation named "\ufffdx".');
    assert.deepEqual(stack.upstreamCalls(), [], 'no upstream call');
  });
});

describe('upstream failures map to the contract’s codes', () => {
  const stack = useStack({ gateway: { upstreamTimeoutMs: 3_000 } });
  let id: string;
  beforeEach(() => {
    id = stack.emulator.store.createAccount({ email: 'e@example.com' }).id;
    stack.emulator.clearRequests();
  });

  for (const [status, code] of [
    [400, 'BAD_USER_INPUT'],
    [402, 'FORBIDDEN'],
    [403, 'FORBIDDEN'],
    [404, 'NOT_FOUND'],
    [429, 'RATE_LIMITED'],
    [500, 'UPSTREAM_ERROR'],
    [503, 'UPSTREAM_ERROR'],
  ] as const) {
    it(`upstream ${status} → ${code}, with the upstream's status, method and path, and no upstream body`, async () => {
      stack.emulator.addFault({ path: `/accounts/${id}`, status, retryAfter: 0 });
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.data, { account: null });
      assert.deepEqual(codes(res), [code]);
      const error = res.body.errors![0]!;
      assert.deepEqual(error.extensions?.['upstream'], { status, method: 'GET', path: `/accounts/${id}` });
      assert.doesNotMatch(JSON.stringify(res.body), /injected fault|stacktrace/);
    });
  }

  for (const status of [429, 502, 504]) {
    it(`retries an idempotent read on ${status} and succeeds when the upstream recovers`, async () => {
      stack.emulator.addFault({ path: `/accounts/${id}`, status, retryAfter: 0, times: 1 });
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
      assert.deepEqual(res.body, { data: { account: { id } } });
      assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${id}`, `GET /accounts/${id}`]);
    });
  }

  it('does not retry the API’s own 503 (a mailbox out of reach): one request, UPSTREAM_ERROR', async () => {
    stack.emulator.addFault({ path: `/accounts/${id}`, status: 503, retryAfter: 0, times: 1 });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
    assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
    // Said as what it is, so that a caller looks at the account's mail settings, not for an outage.
    assert.equal(res.body.errors![0]!.message, `The upstream could not reach a mail server (HTTP 503) while reading account "${id}"`);
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${id}`]);
  });

  it('gives the status of the attempt that failed it: null when the last retry got no answer, whatever an earlier one got', async () => {
    // The message says no answer came; a status of an earlier attempt beside it (a 502, a 429) said the contrary.
    for (const [earlier, last, code, said] of [
      [{ status: 502 }, { drop: 'before-handling' }, 'UPSTREAM_ERROR', /^The connection to the upstream broke before it answered while reading account "/],
      [{ status: 429, retryAfter: 0 }, { drop: 'before-handling' }, 'UPSTREAM_ERROR', /^The connection to the upstream broke before it answered while reading account "/],
      [{ status: 429, retryAfter: 0 }, { hang: true }, 'UPSTREAM_TIMEOUT', /^The upstream did not answer within 3000 ms while reading account "/],
    ] as const) {
      stack.emulator.clearFaults();
      stack.emulator.addFault({ path: `/accounts/${id}`, times: 1, ...earlier });
      stack.emulator.addFault({ path: `/accounts/${id}`, ...last });
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
      assert.deepEqual(codes(res), [code]);
      assert.match(res.body.errors![0]!.message, said);
      assert.deepEqual(res.body.errors![0]!.extensions?.['upstream'], { status: null, method: 'GET', path: `/accounts/${id}` }, JSON.stringify(earlier));
    }
    // The hung request, given up on, is logged by the emulator once its close reaches it: not in the next test's count.
    await eventually(() => stack.emulator.inFlight === 0, { what: 'the hung request closed' });
  });

  it('is RATE_LIMITED only after the retries: three attempts', async () => {
    stack.emulator.addFault({ path: `/accounts/${id}`, status: 429, retryAfter: 0 });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
    assert.deepEqual(codes(res), ['RATE_LIMITED']);
    assert.deepEqual(stack.upstreamCalls(), Array(3).fill(`GET /accounts/${id}`));
  });

  it('reports an answer naming another account or token than the one asked for as UPSTREAM_ERROR, its data unserved', async () => {
    const other = stack.emulator.store.createAccount({ email: 'other@example.com', first_name: 'Other' });
    stack.emulator.addFault({ path: `/accounts/${id}`, method: 'GET', body: { id: other.id, created: 1, first_name: 'Other', email_addresses: ['other@example.com'], sources: [] } });
    const account = await stack.gql(`query ($id: ID!) { account(id: $id) { id firstName emailAddresses } }`, { id });
    assert.deepEqual(codes(account), ['UPSTREAM_ERROR']);
    assert.match(account.body.errors![0]!.message, /another account than the one asked for/);
    assert.equal(JSON.stringify(account.body).includes('other@example.com'), false);

    const { token } = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    stack.emulator.addFault({ path: `/connect_tokens/${token}`, method: 'GET', body: { token: 'someoneElsesT0ken', created: 1, used: 0, expires: 0, callback_url: 'https://x.example/' } });
    const lookup = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { token } }`, { t: token });
    assert.deepEqual(codes(lookup), ['UPSTREAM_ERROR']);
    assert.equal(JSON.stringify(lookup.body).includes('someoneElsesT0ken'), false);

    // The same id in another case is the same account.
    stack.emulator.clearFaults();
    stack.emulator.addFault({ path: `/accounts/${id}`, method: 'GET', body: { id: id.toUpperCase(), created: 1, email_addresses: [], sources: [] } });
    assert.deepEqual(codes(await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id })), []);
  });

  it('reports a connect token listed or looked up under an account but naming another as UPSTREAM_ERROR, that account unserved', async () => {
    const other = stack.emulator.store.createAccount({ email: 'other@example.com', first_name: 'Other' });
    const usedBy = (accountId: string) => ({
      token: 'usedT0ken',
      created: 1,
      used: 2,
      expires: false,
      callback_url: 'https://app.example.com/cb',
      account: { id: accountId, created: 1, email_addresses: [`${accountId}@example.com`], sources: [] },
    });
    const list = `query ($id: ID!) { account(id: $id) { connectTokens { token account { emailAddresses } } } }`;
    const lookup = `query ($id: ID!) { account(id: $id) { connectToken(token: "usedT0ken") { token account { emailAddresses } } } }`;

    // In a list, after one of its own: named by its place, as a list item's other faults are.
    stack.emulator.addFault({ path: `/accounts/${id}/connect_tokens`, method: 'GET', body: [{ ...usedBy(id), token: 'ownT0ken' }, usedBy(other.id)] });
    stack.emulator.addFault({ path: `/accounts/${id}/connect_tokens/usedT0ken`, method: 'GET', body: usedBy(other.id) });
    for (const [query, place] of [[list, 'response\\[1\\]: '], [lookup, '']] as const) {
      const res = await stack.gql(query, { id });
      assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
      assert.match(res.body.errors![0]!.message, new RegExp(`: ${place}the upstream answered with a connect token of another account than the one asked for`));
      assert.equal(JSON.stringify(res.body).includes(other.id), false);
    }

    // Its own account, in another case, is served.
    stack.emulator.clearFaults();
    stack.emulator.addFault({ path: `/accounts/${id}/connect_tokens`, method: 'GET', body: [usedBy(id.toUpperCase())] });
    stack.emulator.addFault({ path: `/accounts/${id}/connect_tokens/usedT0ken`, method: 'GET', body: usedBy(id.toUpperCase()) });
    for (const query of [list, lookup]) assert.deepEqual(codes(await stack.gql(query, { id })), []);

    // A top-level token names whichever account its flow created.
    stack.emulator.clearFaults();
    stack.emulator.addFault({ path: '/connect_tokens/usedT0ken', method: 'GET', body: usedBy(other.id) });
    const topLevel = await stack.gql(`{ connectToken(token: "usedT0ken") { account { emailAddresses } } }`);
    assert.deepEqual(topLevel.body.data, { connectToken: { account: { emailAddresses: [`${other.id}@example.com`] } } });
  });

  it('reports a body that is not the JSON expected as UPSTREAM_ERROR', async () => {
    stack.emulator.addFault({ path: `/accounts/${id}`, status: 200 });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
    assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
    // The API's error body under a 200, said as such, not as the first field it lacks; its words not shown.
    assert.equal(res.body.errors![0]!.message, `The upstream answered with an unexpected body while reading account "${id}": the body is the API's error shape ({"type": "error", …}) under HTTP 200`);
  });

  it('stops reading an answer past 32 MiB: UPSTREAM_ERROR that says so, one request, no retry', async () => {
    // A stack of its own with a generous deadline: the in-process emulator takes seconds to serialise 33 MB on
    // a busy machine, and the suite's 3 s answered UPSTREAM_TIMEOUT before the size was ever seen.
    const big = await startStack({ gateway: { upstreamTimeoutMs: 60_000 } });
    try {
      const bigId = big.emulator.store.createAccount({ email: 'e@example.com' }).id;
      big.emulator.clearRequests();
      const huge = { id: bigId, created: 1, suspended: 0, password_expired: 0, email_addresses: [], sources: [], first_name: 'x'.repeat(33 * 1024 * 1024) };
      big.emulator.addFault({ path: `/accounts/${bigId}`, body: huge });
      const res = await big.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id: bigId });
      assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
      assert.match(res.body.errors![0]!.message, /larger than 32 MiB/);
      // Refused on its Content-Length, the connection closed: the emulator logs the request as that close reaches it.
      await eventually(() => big.emulator.requests.length > 0, { what: 'the emulator logging the request' });
      assert.deepEqual(big.upstreamCalls(), [`GET /accounts/${bigId}`]);
    } finally {
      await big.close();
    }
  });

  it('reports an unreachable upstream as UPSTREAM_ERROR without crashing', async () => {
    const dead = await startTestGateway({ baseUrl: `http://127.0.0.1:${await closedPort()}/2.0`, consumerKey: 'k', consumerSecret: 's' }, { upstreamTimeoutMs: 2_000, upstreamMaxInFlight: 4 });
    try {
      const body = await postGraphQL<{ errors: { extensions: { code: string; upstream: unknown } }[] }>(dead.url, '{ account(id: "0123456789abcdef01234567") { id } }');
      assert.equal(body.errors[0]!.extensions.code, 'UPSTREAM_ERROR');
      assert.deepEqual(body.errors[0]!.extensions.upstream, { status: null, method: 'GET', path: '/accounts/0123456789abcdef01234567' });
    } finally {
      await dead.close();
    }
  });
});

describe('an upstream failure’s message', () => {
  const stack = useStack({ gateway: { upstreamTimeoutMs: 1_500 } });
  const callbackUrl = 'https://app.example.com/cb';

  // Beside aliases and list items of the same type, `extensions.upstream.path` alone told which one failed: a
  // caller (or a person reading a log of answers) shown "The upstream failed with HTTP 500" had to decode a URL.
  it('names what was asked for, and the id, whatever failed: a status, a timeout, a broken connection, a body', async () => {
    const failing = stack.emulator.store.createAccount({ email: 'failing@example.com' }).id;
    const fine = stack.emulator.store.createAccount({ email: 'fine@example.com' }).id;
    const both = `{ x: account(id: "${failing}") { id } y: account(id: "${fine}") { id } }`;
    for (const [fault, code, said] of [
      [{ status: 400 }, 'BAD_USER_INPUT', `The upstream refused the request’s parameters as invalid while reading account "${failing}"`],
      [{ status: 429, retryAfter: 0 }, 'RATE_LIMITED', `The upstream rate limit was reached while reading account "${failing}"; try again later`],
      [{ status: 500 }, 'UPSTREAM_ERROR', `The upstream failed with HTTP 500 while reading account "${failing}"`],
      [{ status: 503, proxyPage: true }, 'UPSTREAM_ERROR', `The upstream failed with HTTP 503 while reading account "${failing}"`],
      [{ hang: true }, 'UPSTREAM_TIMEOUT', `The upstream did not answer within 1500 ms while reading account "${failing}"`],
      [{ drop: 'before-handling' }, 'UPSTREAM_ERROR', `The connection to the upstream broke before it answered while reading account "${failing}"`],
      [{ body: { id: failing, created: 'soon', email_addresses: [], sources: [] } }, 'UPSTREAM_ERROR', `The upstream answered with an unexpected body while reading account "${failing}": created is not a Unix time`],
    ] as const) {
      stack.emulator.clearFaults();
      stack.emulator.addFault({ path: `/accounts/${failing}`, ...fault });
      for (const accept of ['application/json', 'application/graphql-response+json']) {
        const res = await stack.gql(both, undefined, { accept });
        assert.deepEqual(res.body.data, { x: null, y: { id: fine } }, JSON.stringify(fault));
        assert.deepEqual(res.body.errors!.map((e) => [e.path, e.extensions!['code'], e.message]), [[['x'], code, said]]);
      }
    }
  });

  it('names the list, the token, the item’s own account and the write that failed', async () => {
    const id = stack.emulator.store.createAccount({ email: 'owner@example.com' }).id;
    const other = stack.emulator.store.createAccount({ email: 'other@example.com' }).id;
    const { token } = stack.emulator.store.createConnectToken(id, { callback_url: callbackUrl });
    const cases: { fault: Parameters<typeof stack.emulator.addFault>[0]; query: string; errors: [unknown[], string][] }[] = [
      {
        fault: { path: `/accounts/${id}/connect_tokens`, method: 'GET', status: 500 },
        query: `{ account(id: "${id}") { list: connectTokens { token } } }`,
        errors: [[['account', 'list'], `The upstream failed with HTTP 500 while listing the connect tokens of account "${id}"`]],
      },
      {
        fault: { path: `/accounts/${id}/connect_tokens/${token}`, status: 500 },
        query: `{ account(id: "${id}") { id one: connectToken(token: "${token}") { token } } }`,
        errors: [[['account', 'one'], `The upstream failed with HTTP 500 while reading connect token "${token}" of account "${id}"`]],
      },
      {
        fault: { path: `/accounts/${id}/connect_tokens`, method: 'POST', status: 500 },
        query: `mutation { made: createAccountConnectToken(accountId: "${id}", input: { callbackUrl: "${callbackUrl}" }) { token } }`,
        errors: [[['made'], `The upstream failed with HTTP 500 while creating a connect token for account "${id}": the request may have taken effect`]],
      },
    ];
    // A list whose one item is not what the API sends: which item, among up to 100 alike.
    const listed = (accountId: string, created: unknown) => ({ id: accountId, created, email_addresses: [], sources: [] });
    cases.push({
      fault: { path: '/accounts', method: 'GET', body: [listed(other, 1), listed(id, 'soon')] },
      query: '{ accounts { nodes { id } } }',
      errors: [[['accounts'], 'The upstream answered with an unexpected body while listing accounts: response[1]: created is not a Unix time']],
    });
    for (const { fault, query, errors } of cases) {
      stack.emulator.clearFaults();
      stack.emulator.addFault(fault);
      const res = await stack.gql(query);
      assert.deepEqual(res.body.errors!.map((e) => [e.path, e.message]), errors);
    }

    // Tokens of two accounts, one of which fails to load: each item's error names its own account, and the
    // other item keeps its data.
    stack.emulator.clearFaults();
    const usedBy = (t: string, accountId: string) => ({ token: t, created: 1, used: 2, expires: false, callback_url: callbackUrl, account: { id: accountId, created: 1, email_addresses: [], sources: [] } });
    stack.emulator.addFault({ path: '/connect_tokens', method: 'GET', body: [usedBy('tok0', other), usedBy('tok1', id)] });
    stack.emulator.addFault({ path: `/accounts/${id}`, method: 'GET', status: 500 });
    const res = await stack.gql('{ connectTokens { nodes { token account { id messageCount } } } }');
    assert.deepEqual(res.body.data, { connectTokens: { nodes: [{ token: 'tok0', account: { id: other, messageCount: 0 } }, { token: 'tok1', account: { id, messageCount: null } }] } });
    assert.deepEqual(res.body.errors!.map((e) => [e.path, e.message]), [[['connectTokens', 'nodes', 1, 'account', 'messageCount'], `The upstream failed with HTTP 500 while reading account "${id}"`]]);
  });
});

describe('the gateway’s own key refused upstream (401)', () => {
  it('is UPSTREAM_ERROR, never UNAUTHENTICATED, and the secret appears nowhere', async () => {
    const stack = await startLoggingStack('debug', { emulator: { consumerSecret: 'the-real-secret' } });
    const { lines } = stack;
    try {
      // Point the gateway at the emulator with a wrong secret by starting a second gateway.
      const wrong = await startTestGateway(
        { baseUrl: stack.emulator.url, consumerKey: stack.emulator.consumerKey, consumerSecret: 'a-wrong-secret-value' },
        { upstreamTimeoutMs: 2_000, upstreamMaxInFlight: 4, logger: createLogger('debug', (line) => lines.push(line)) },
      );
      try {
        const response = await fetch(wrong.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ connectTokens { nodes { token } } }' }),
        });
        const text = await response.text();
        const body = JSON.parse(text) as { errors: { extensions: { code: string; upstream: { status: number } } }[] };
        assert.equal(body.errors[0]!.extensions.code, 'UPSTREAM_ERROR');
        assert.equal(body.errors[0]!.extensions.upstream.status, 401);
        assert.ok(lines.some((l) => l.includes('"level":"error"') && l.includes('CONTEXTIO_CONSUMER_KEY')), 'an error line names CONTEXTIO_CONSUMER_KEY');
        for (const output of [text, ...lines]) {
          assert.doesNotMatch(output, /a-wrong-secret-value|the-real-secret|oauth_signature/);
        }
      } finally {
        await wrong.close();
      }
    } finally {
      await stack.close();
    }
  });
});

describe('the gateway’s own key refused with another status', () => {
  it('is still the key’s fault when the API’s body says so (code 105), not the caller being FORBIDDEN', async () => {
    const stack = await startLoggingStack('error');
    const { lines } = stack;
    try {
      const id = stack.emulator.store.createAccount({ email: 'signed@example.com' }).id;
      stack.emulator.addFault({ path: `/accounts/${id}`, status: 403, body: { type: 'error', code: 105, value: 'Invalid signature' }, times: 1 });
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id });
      assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
      assert.ok(lines.some((l) => l.includes('"level":"error"') && l.includes('CONTEXTIO_CONSUMER_KEY')), 'an error line names CONTEXTIO_CONSUMER_KEY');
      stack.emulator.addFault({ path: `/accounts/${id}`, status: 403, body: { type: 'error', value: 'not your account' } });
      assert.deepEqual(codes(await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id })), ['FORBIDDEN'], 'a plain 403 is still FORBIDDEN');
    } finally {
      await stack.close();
    }
  });
});

describe('the consumer secret in an upstream error body', () => {
  it('keeps the body out of the debug line when it quotes the secret, as is or percent-encoded', async () => {
    const stack = await startLoggingStack('debug', { emulator: { consumerSecret: 'sec ret/with+marks' } });
    const { lines } = stack;
    try {
      const id = stack.emulator.store.createAccount({ email: 'echo@example.com' }).id;
      const echoed = `key secret: sec ret/with+marks, signing key: ${encodeURIComponent('sec ret/with+marks')}&`;
      stack.emulator.addFault({ path: `/accounts/${id}`, status: 400, body: { type: 'error', value: echoed } });
      assert.deepEqual(codes(await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id })), ['BAD_USER_INPUT']);
      const logged = lines.find((line) => line.includes('upstream error response'));
      assert.ok(logged, 'the upstream error response is logged');
      assert.doesNotMatch(lines.join('\n'), /sec ret\/with\+marks|sec%20ret%2Fwith%2Bmarks/);
      assert.equal(JSON.parse(logged).body, '(not shown: it quotes the gateway’s credentials)');
    } finally {
      await stack.close();
    }
  });
});

describe('connect tokens in log lines', () => {
  it('are left out: a token is a bearer capability; the caller’s own error still names it', async () => {
    const stack = await startLoggingStack('debug');
    const { lines } = stack;
    try {
      const unknown = 'tok3nNobodyHas0001';
      const missing = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { token } }`, { t: unknown });
      assert.deepEqual(codes(missing), ['NOT_FOUND']);
      assert.equal((missing.body.errors![0]!.extensions!['upstream'] as { path: string }).path, `/connect_tokens/${unknown}`);

      const { token } = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
      stack.emulator.addFault({ path: `/connect_tokens/${token}`, status: 200 }); // a body that is not the JSON expected
      const garbled = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { token } }`, { t: token });
      assert.deepEqual(codes(garbled), ['UPSTREAM_ERROR']);

      // An account whose id is literally the collection's name: still the token that is left out. (The account
      // is found, so that the operation waits for its token's answer, whose 404 is logged.)
      stack.emulator.addFault({ path: '/accounts/connect_tokens', method: 'GET', body: { id: 'connect_tokens', created: 1, email_addresses: [], sources: [] } });
      const nested = await stack.gql(`{ account(id: "connect_tokens") { connectToken(token: "n3stedTok3n") { token } } }`);
      assert.deepEqual(nested.body.data, { account: { connectToken: null } });
      assert.deepEqual(codes(nested), ['NOT_FOUND']);

      const logged = lines.join('\n');
      assert.match(logged, /upstream error response.*"path":"\/connect_tokens\/\[token\]"/);
      assert.match(logged, /"path":"\/accounts\/connect_tokens\/connect_tokens\/\[token\]"/);
      assert.doesNotMatch(logged, /n3stedTok3n/);
      assert.match(logged, /unexpected body.*"path":"\/connect_tokens\/\[token\]"/);
      assert.doesNotMatch(logged, new RegExp(`${unknown}|${token}`));
    } finally {
      await stack.close();
    }
  });
});

describe('hostile ids stay one path segment', () => {
  const stack = useStack();

  // Refused before any call: dot segments, the empty id, and ids with a slash or a backslash, which no
  // Context.IO id has and which a proxy decoding %2F or %5C before routing would take for path separators.
  const refused = (id: string) => ['.', '..', ''].includes(id) || /[/\\]/.test(id);
  for (const hostile of ['../connect_tokens', 'a/b?x=1', '..\\accounts', '%2e%2e', '%2F..%2F', '%5C', 'x#frag', 'a?b', '.', '..', '']) {
    it(`never reaches another upstream path with id ${JSON.stringify(hostile)}`, async () => {
      stack.emulator.clearRequests();
      const res = await stack.gql(
        `query ($id: ID!) { account(id: $id) { id connectToken(token: $id) { token } } connectToken(token: $id) { token } }`,
        { id: hostile },
      );
      assert.deepEqual(res.body.data, { account: null, connectToken: null });
      const queries = stack.emulator.requests.map((r) => r.query);
      const calls = stack.upstreamCalls();
      if (refused(hostile)) {
        assert.deepEqual(codes(res), ['BAD_USER_INPUT', 'BAD_USER_INPUT']);
        assert.deepEqual(calls, []);
        return;
      }
      assert.deepEqual(codes(res), ['NOT_FOUND', 'NOT_FOUND']);
      // The account, the top-level token, and the account's token (requested beside the account, so it
      // goes out although the account then turns out not to exist).
      assert.equal(calls.length, 3);
      for (const call of calls) {
        // Each id one encoded segment after its collection, and the emulator saw no query string.
        const match = /^GET \/(?:accounts\/([^/?#]+)\/)?(?:accounts|connect_tokens)\/([^/?#]+)$/.exec(call);
        assert.ok(match, call);
        for (const segment of match.slice(1).filter((s) => s !== undefined)) assert.equal(decodeURIComponent(segment), hostile);
      }
      assert.deepEqual(queries, ['', '', '']);
    });
  }

  it('quotes an id holding a quote with it escaped: the message names the id sent, not another', async () => {
    const res = await stack.gql('query ($id: ID!) { account(id: $id) { id } }', { id: 'a"b' });
    assert.deepEqual(codes(res), ['NOT_FOUND']);
    assert.equal(res.body.errors?.[0]?.message, 'Not found: account "a\\"b"');
  });
});

describe('ids too long to name anything', () => {
  const stack = useStack();

  it('are BAD_USER_INPUT before any upstream call, without the id repeated', async () => {
    stack.emulator.clearRequests();
    const id = 'x'.repeat(20_000);
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } connectToken(token: $id) { token } }`, { id });
    assert.deepEqual(res.body.data, { account: null, connectToken: null });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT', 'BAD_USER_INPUT']);
    assert.match(res.body.errors![0]!.message, /at most 256 characters long \(got 20000\)/);
    assert.ok(JSON.stringify(res.body).length < 1_000, 'the answer does not repeat the 20,000-character id');
    assert.deepEqual(stack.upstreamCalls(), []);
  });
});

describe('ids sent as JSON numbers', () => {
  const stack = useStack();

  // graphql-js's ID takes an integer and uses its digits; past 2^53, JSON.parse has already rounded them, so
  // 12345678901234567891 went upstream as "12345678901234567000": another id, a delete of another token.
  for (const [name, value] of [
    ['2^64', 2 ** 64],
    ['1e21', 1e21],
    ['-(2^53)', -(2 ** 53)],
  ] as const) {
    it(`are refused whole past 2^53, as a variable whose value does not fit its type, before any upstream call: ${name}`, async () => {
      stack.emulator.clearRequests();
      const res = await stack.gql(`query ($id: ID!, $t: ID!) { account(id: $id) { id } connectToken(token: $t) { token } }`, { id: value, t: 'abcdef0123456789' });
      assert.equal(res.status, 400);
      assert.equal(res.body.data, undefined);
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      assert.equal(res.body.errors![0]!.message, `Variable "$id" got invalid value ${JSON.stringify(value)}; an ID sent as a number past 2^53 has lost digits to JSON's rounding: send it as a string.`);
      assert.deepEqual(stack.upstreamCalls(), []);
      const write = await stack.gql(`mutation ($t: ID!) { deleteConnectToken(token: $t) { success } }`, { t: value });
      assert.deepEqual(codes(write), ['BAD_USER_INPUT']);
      assert.deepEqual(stack.upstreamCalls(), [], 'no delete of whatever the rounded digits name');
    });
  }

  it('are read as their digits up to 2^53, as graphql-js reads an ID', async () => {
    stack.emulator.clearRequests();
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id: 2 ** 53 - 1 });
    assert.deepEqual(codes(res), ['NOT_FOUND']);
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts/9007199254740991']);
  });
});

describe('ids with a space, a control or an invisible character', () => {
  const stack = useStack();

  // No Context.IO id or token has one: a value copied with a line break or a space around it is told so,
  // where it cost a request and came back NOT_FOUND.
  for (const id of ['abcdef0123456789\n', ' abcdef0123456789', 'abcdef\t0123456789', 'abc\u0000def', '\u200babcdef0123456789', 'abcdef0123456789\u00a0']) {
    it(`are BAD_USER_INPUT before any upstream call: ${JSON.stringify(id)}`, async () => {
      stack.emulator.clearRequests();
      const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id } connectToken(token: $id) { token } }`, { id });
      assert.deepEqual(res.body.data, { account: null, connectToken: null });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT', 'BAD_USER_INPUT']);
      assert.match(res.body.errors![0]!.message, /^An id or token cannot contain a space, a line break, a control or an invisible character/);
      assert.deepEqual(stack.upstreamCalls(), []);
    });
  }
});

describe('a filter that is no email address', () => {
  const stack = useStack();

  for (const [what, email, said] of [
    // The upstream took an empty address for no filter at all, and answered every account.
    ['empty', '', /^filter\.email must be an email address$/],
    ['without its @', 'ada', /^filter\.email must be an email address$/],
    ['longer than an address may be', `${'x'.repeat(5_000)}@example.com`, /^filter\.email is 5012 UTF-16 code units long, more than the 254 accepted$/],
  ] as const) {
    it(`is BAD_USER_INPUT before any upstream call: ${what}`, async () => {
      stack.emulator.clearRequests();
      const res = await stack.gql(`query ($email: String) { accounts(filter: { email: $email }) { nodes { id } } }`, { email });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      assert.match(res.body.errors![0]!.message, said);
      assert.equal(res.body.errors![0]!.extensions!['field'], 'filter.email');
      assert.deepEqual(stack.upstreamCalls(), []);
    });
  }
});

describe('text that cannot be encoded for the upstream', () => {
  const stack = useStack({ gateway: { breakerFailureThreshold: 2 } });
  // Valid JSON, valid GraphQL variables, but no UTF-8 form: it cannot go in a URL or a form body.
  const unpaired = 'Ann\ud800';

  it('is BAD_USER_INPUT before any upstream call, in an id, a query parameter or a form field', async () => {
    stack.emulator.clearRequests();
    const read = await stack.gql(`query ($id: ID!) { account(id: $id) { id } }`, { id: unpaired });
    assert.deepEqual(codes(read), ['BAD_USER_INPUT']);
    const list = await stack.gql(`query ($email: String) { accounts(filter: { email: $email }) { nodes { id } } }`, { email: unpaired });
    assert.equal(list.body.data, null); // `accounts` is non-null: its error reaches the root
    assert.deepEqual(codes(list), ['BAD_USER_INPUT']);
    const write = await stack.gql(`mutation ($name: String) { createConnectToken(input: { callbackUrl: "https://app.example/cb", firstName: $name }) { token } }`, {
      name: unpaired,
    });
    assert.deepEqual(codes(write), ['BAD_USER_INPUT']);
    assert.match(write.body.errors![0]!.message, /unpaired UTF-16 surrogate/);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('never counts as the upstream failing: the circuit stays closed', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await stack.gql(`mutation ($name: String) { createConnectToken(input: { callbackUrl: "https://app.example/cb", firstName: $name }) { token } }`, {
        name: unpaired,
      });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    }
    const ok = await stack.gql(`mutation { createConnectToken(input: { callbackUrl: "https://app.example/cb", firstName: "Ann" }) { token } }`);
    assert.equal(ok.body.errors, undefined);
  });
});

describe('null for a non-null argument, through a variable whose default the caller overrode', () => {
  it('is BAD_USER_INPUT, not an unexpected error, before any upstream call; in a mutation of several writes, none is made', async () => {
    const stack = await startLoggingStack('info');
    try {
      const read = await stack.gql('query ($id: ID = "x") { account(id: $id) { id } }', { id: null });
      assert.deepEqual([read.status, codes(read)], [400, ['BAD_USER_INPUT']]);
      assert.equal(read.body.errors![0]!.message, 'Variable "$id" is null where the operation needs a value of type "ID!": send one, or leave the variable out to use its default.');
      const write = await stack.gql(
        `mutation ($t: ID = "x") {
          a: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }
          b: deleteConnectToken(token: $t) { success }
        }`,
        { t: null },
      );
      assert.equal(write.status, 400);
      assert.deepEqual(write.body.errors!.map((e) => [e.path, e.extensions!['code']]), [[['b'], 'BAD_USER_INPUT']]);
      assert.deepEqual(stack.upstreamCalls(), []);
      // The same through a directive's argument: refused as the fields are collected, before any runs.
      const skipped = await stack.gql(
        `mutation ($s: Boolean = false) {
          a: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }
          b: deleteConnectToken(token: "t1") @skip(if: $s) { success }
        }`,
        { s: null },
      );
      assert.deepEqual([skipped.status, codes(skipped)], [200, ['BAD_USER_INPUT']]);
      assert.match(skipped.body.errors![0]!.message, /^Argument "if" of non-null type "Boolean!" must not be null\.$/);
      assert.deepEqual(stack.upstreamCalls(), []);
      assert.deepEqual(stack.lines.filter((line) => line.includes('unexpected error')), []);
    } finally {
      await stack.close();
    }
  });

  it('refuses a query before it runs, once, however many fields would each have failed for it', async () => {
    const stack = await startStack();
    try {
      for (let i = 0; i < 30; i++) stack.emulator.store.createAccount({ email: `u${i}@example.com` });
      stack.upstreamCalls();
      // Each account's field would fail on its own, graphql-js locating each error in the text from its start.
      const document = `query ($t: ID = "x", $after: String) {
        accounts(first: 30, after: $after) { nodes { a: connectToken(token: $t) { token } b: connectToken(token: $t) { token } } }
      }`;
      const res = await stack.gql(document, { t: null, after: null });
      assert.equal(res.status, 400);
      assert.deepEqual(res.body, {
        errors: [
          {
            message: 'Variable "$t" is null where the operation needs a value of type "ID!": send one, or leave the variable out to use its default.',
            locations: [{ line: 2, column: 77 }],
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ],
      });
      assert.deepEqual(stack.upstreamCalls(), []);
      // In a directive's argument, through a fragment, in a list's item: the same.
      const elsewhere: Array<[string, Record<string, unknown>, string]> = [
        ['query ($x: Boolean = true) { accounts(first: 30) { nodes { ...F } } } fragment F on Account { id @include(if: $x) }', { x: null }, 'Boolean!'],
        ['query ($x: Boolean = true) { accounts(first: 30) { nodes { id @skip(if: $x) } } }', { x: null }, 'Boolean!'],
      ];
      for (const [query, variables, type] of elsewhere) {
        const refused = await stack.gql(query, variables);
        assert.deepEqual([refused.status, codes(refused)], [400, ['BAD_USER_INPUT']], query);
        assert.match(refused.body.errors![0]!.message, new RegExp(`^Variable "\\$x" is null where the operation needs a value of type "${type}"`), query);
        assert.deepEqual(stack.upstreamCalls(), [], query);
      }
      // Left out, the variable takes its default; null where null is allowed, it is only null.
      const answered = await stack.gql(document, { after: null });
      assert.equal(answered.status, 200);
      assert.equal(answered.body.errors?.length, 60);
      assert.deepEqual([...new Set(codes(answered))], ['NOT_FOUND']);
    } finally {
      await stack.close();
    }
  });

  it('refuses no query whose null reaches only selections @skip/@include leave out, which execution never reads', async () => {
    const stack = await startStack();
    try {
      const token = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }).token;
      stack.upstreamCalls();
      // graphql-js runs each of these without an error: the null argument is in a selection it does not read.
      const answered: Array<[string, Record<string, unknown>]> = [
        ['query ($t: ID = "x", $with: Boolean!) { __typename connectToken(token: $t) @include(if: $with) { token } }', { t: null, with: false }],
        ['query ($t: ID = "x") { __typename ... @skip(if: true) { connectToken(token: $t) { token } } }', { t: null }],
        ['query ($t: ID = "x", $skip: Boolean = false) { __typename ...F @skip(if: $skip) } fragment F on Query { connectToken(token: $t) { token } }', { t: null, skip: true }],
        // @skip is read first: true, the @include beside it (its argument null) is never read.
        ['query ($x: Boolean = true) { __typename connectToken(token: "a") @skip(if: true) @include(if: $x) { token } }', { x: null }],
      ];
      for (const [query, variables] of answered) {
        const res = await stack.gql(query, variables);
        assert.deepEqual([res.status, res.body], [200, { data: { __typename: 'Query' } }], query);
      }
      assert.deepEqual(stack.upstreamCalls(), []);
      // A use the selection keeps is still refused, located there, though an earlier one is left out.
      const document = `query ($t: ID = "x") {
        ... @include(if: false) { a: connectToken(token: $t) { token } }
        b: connectToken(token: $t) { token }
      }`;
      const refused = await stack.gql(document, { t: null });
      assert.equal(refused.status, 400);
      assert.deepEqual(refused.body.errors, [
        {
          message: 'Variable "$t" is null where the operation needs a value of type "ID!": send one, or leave the variable out to use its default.',
          locations: [{ line: 3, column: 32 }],
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ]);
      assert.deepEqual(stack.upstreamCalls(), []);
      // Sent, the same document runs.
      const sent = await stack.gql(document, { t: token });
      assert.deepEqual([sent.status, sent.body], [200, { data: { b: { token } } }]);
    } finally {
      await stack.close();
    }
  });

  // Both checks stand aside for variables that do not fit their types: execution refuses the operation itself,
  // naming the variable that does not fit, before any field runs.
  it('leaves a variable that does not fit its type to graphql-js’s own refusal, a null where a value is needed beside it or not', async () => {
    const stack = await startStack();
    try {
      const read = await stack.gql('query ($t: ID = "x", $n: Int) { connectToken(token: $t) { token } accounts(first: $n) { nodes { id } } }', { t: null, n: 'many' });
      assert.deepEqual([read.status, read.body.errors!.map((e) => [e.message, e.extensions!['code']])], [
        400,
        [['Variable "$n" got invalid value "many"; Int cannot represent non-integer value: "many"', 'BAD_USER_INPUT']],
      ]);
      const write = await stack.gql(
        `mutation ($t: ID = "x", $name: String) {
          a: createConnectToken(input: { callbackUrl: "https://app.example.com/cb", firstName: $name }) { token }
          b: deleteConnectToken(token: $t) { success }
        }`,
        { name: 5 },
      );
      assert.deepEqual([write.status, write.body.errors!.map((e) => [e.message, e.extensions!['code']])], [
        400,
        [['Variable "$name" got invalid value 5; String cannot represent a non string value: 5', 'BAD_USER_INPUT']],
      ]);
      assert.deepEqual(stack.upstreamCalls(), []);
    } finally {
      await stack.close();
    }
  });

  it('in a directive within a write’s selection, refuses the mutation before its write, whose result it would otherwise lose', async () => {
    const stack = await startStack();
    try {
      const refused = [
        { path: ['createAccount'], document: 'mutation ($x: Boolean = true) { createAccount(input: { email: "ann@example.com" }) { id @include(if: $x) } }' },
        // Execution merges the selections of one response key's nodes: the second's is read too.
        {
          path: ['made'],
          document: `mutation ($x: Boolean = true) {
            made: createAccount(input: { email: "ann@example.com" }) { id }
            made: createAccount(input: { email: "ann@example.com" }) { resourceUrl @include(if: $x) }
          }`,
        },
        {
          path: ['b'],
          document: `mutation ($x: Boolean = false) {
            a: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }
            b: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { ...Payload }
          }
          fragment Payload on CreateConnectTokenPayload { token connectToken { ... on ConnectToken { used @skip(if: $x) } } }`,
        },
      ];
      for (const { path, document } of refused) {
        const res = await stack.gql(document, { x: null });
        assert.equal(res.status, 400, document);
        assert.deepEqual(res.body.errors!.map((e) => [e.path, e.extensions!['code']]), [[path, 'BAD_USER_INPUT']]);
        assert.match(res.body.errors![0]!.message, /^Argument "if" of non-null type "Boolean!" must not be null\. \(no write of the operation was made\)$/);
        // Located at the write it refuses, as a field's error is: an IDE marks it.
        const [location, ...more] = (res.body.errors![0] as { locations?: Array<{ line: number; column: number }> }).locations ?? [];
        assert.deepEqual(more, []);
        assert.ok(location && document.split('\n')[location.line - 1]!.slice(location.column - 1).startsWith(path[0]!), JSON.stringify(location));
        assert.equal(res.body.data, undefined);
        assert.deepEqual(stack.upstreamCalls(), [], 'no write made');
      }
      // A selection that execution leaves out is not read, as execution does not read it.
      const leftOut = await stack.gql(
        'mutation ($x: Boolean = true) { createAccount(input: { email: "ann@example.com" }) { id account @include(if: false) { id @include(if: $x) } } }',
        { x: null },
      );
      assert.equal(leftOut.body.errors, undefined);
      assert.deepEqual(stack.upstreamCalls(), ['POST /accounts']);
    } finally {
      await stack.close();
    }
  });
});
