import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { codes, useStack, type Stack } from '../helpers/stack.ts';

/** 20 accounts, and 100 top-level tokens used by them in turn: 5 tokens per account. */
function seedFanOut(stack: Stack): string[] {
  const { store } = stack.emulator;
  const ids = Array.from({ length: 20 }, (_, i) =>
    store.createAccount({ email: `user${i}@example.com`, first_name: `User${i}`, username: `user${i}`, nb_messages: i }).id,
  );
  for (let i = 0; i < 100; i++) {
    const token = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: `user${i % 20}@example.com` });
    store.useConnectToken(token.token, { server: 'imap.example.com', username: `u${i}`, existingAccountId: ids[i % 20]! });
  }
  return ids;
}

describe('batching: each upstream resource once per operation', () => {
  const stack = useStack();

  it('answers the fields a used token embeds with no account request', async () => {
    seedFanOut(stack);
    stack.emulator.clearRequests();
    const res = await stack.gql<{ connectTokens: { nodes: { account: { id: string; firstName: string } }[] } }>(
      `{ connectTokens(first: 100) { nodes { token account { id firstName createdAt suspendedAt emailAddresses lastName sources { label } } } } }`,
    );
    assert.equal(res.body.errors, undefined);
    assert.equal(res.body.data!.connectTokens.nodes.length, 100);
    assert.deepEqual(stack.upstreamCalls(), ['GET /connect_tokens']);
  });

  it('loads each distinct account once when a field the embed lacks is selected: 1 + 20 requests', async () => {
    const ids = seedFanOut(stack);
    // Latency makes requests that go out together visibly overlap at the emulator, even on a busy machine.
    stack.emulator.addFault({ path: /^\/accounts\/[0-9a-f]{24}$/, latencyMs: 300 });
    stack.emulator.clearRequests();
    stack.emulator.resetPeak();
    const res = await stack.gql<{ connectTokens: { nodes: { account: { id: string; username: string; messageCount: number } }[] } }>(
      `{ connectTokens(first: 100) { nodes { account { id username messageCount } } } }`,
    );
    assert.equal(res.body.errors, undefined);
    const accounts = res.body.data!.connectTokens.nodes.map((n) => n.account);
    assert.equal(accounts.length, 100);
    assert.ok(accounts.every((a) => a.username === `user${ids.indexOf(a.id)}` && a.messageCount === ids.indexOf(a.id)), 'each account has its own username and message count');
    const calls = stack.upstreamCalls();
    assert.equal(calls.length, 21);
    assert.equal(calls[0], 'GET /connect_tokens');
    assert.deepEqual(calls.slice(1).sort(), ids.map((id) => `GET /accounts/${id}`).sort());
    // The 20 account requests went out together, not one after another.
    assert.equal(stack.emulator.peakInFlight, 20);
  });

  it('loads the accounts of the page’s tokens only, not of every token the whole list holds: 1 + 5 requests for a page of 5', async () => {
    seedFanOut(stack);
    stack.emulator.clearRequests();
    const res = await stack.gql<{ connectTokens: { nodes: { account: { id: string; username: string } }[] } }>(
      `{ connectTokens(first: 5) { nodes { account { id username } } } }`,
    );
    assert.equal(res.body.errors, undefined);
    const ids = res.body.data!.connectTokens.nodes.map((n) => n.account.id);
    assert.equal(new Set(ids).size, 5);
    const calls = stack.upstreamCalls();
    assert.equal(calls[0], 'GET /connect_tokens');
    assert.deepEqual(calls.slice(1).sort(), ids.map((id) => `GET /accounts/${id}`).sort());
  });

  // The page's accounts are requested as soon as the list is in: an unused token, which has none, is passed over.
  it('loads the accounts of the page’s used tokens only when unused ones are among them: their account null, no error', async () => {
    const { store } = stack.emulator;
    const id = store.createAccount({ email: 'used@example.com', username: 'used', nb_messages: 3 }).id;
    const unused = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }).token;
    const used = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'used@example.com' }).token;
    store.useConnectToken(used, { server: 'imap.example.com', username: 'u', existingAccountId: id });
    stack.emulator.clearRequests();
    const res = await stack.gql<{ connectTokens: { nodes: { token: string; account: { id: string; messageCount: number } | null }[] } }>(
      `{ connectTokens(first: 5) { nodes { token account { id messageCount } } } }`,
    );
    assert.equal(res.body.errors, undefined);
    assert.deepEqual(
      res.body.data!.connectTokens.nodes.map((n) => [n.token, n.account]).sort(),
      [[unused, null], [used, { id, messageCount: 3 }]].sort(),
    );
    assert.deepEqual(stack.upstreamCalls(), ['GET /connect_tokens', `GET /accounts/${id}`]);
  });

  it('lists a used token’s account’s connect tokens without loading the account, as ConnectToken.account’s description says', async () => {
    const ids = seedFanOut(stack);
    stack.emulator.clearRequests();
    const res = await stack.gql<{ connectTokens: { nodes: unknown[] }; token_t: { fields: { name: string; description: string }[] } }>(
      `{ connectTokens(first: 5) { nodes { account { id connectTokens { token } } } }
         token_t: __type(name: "ConnectToken") { fields { name description } } }`,
    );
    assert.equal(res.body.errors, undefined);
    assert.deepEqual(stack.upstreamCalls().sort(), ['GET /connect_tokens', ...ids.slice(0, 5).map((id) => `GET /accounts/${id}/connect_tokens`)].sort());
    // "Any other field loads the full account" would have a consumer count one account request more per token.
    const account = res.body.data!.token_t.fields.find((f) => f.name === 'account')!.description;
    assert.doesNotMatch(account, /any other field loads/);
    assert.match(account, /`connectTokens`.*own request/s);
  });

  it('fetches an account once for 30 aliases of the same account(id:)', async () => {
    const id = stack.emulator.store.createAccount({ email: 'alias@example.com' }).id;
    stack.emulator.clearRequests();
    const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: account(id: $id) { id username }`).join('\n');
    const res = await stack.gql(`query ($id: ID!) { ${aliases} }`, { id });
    assert.equal(Object.keys(res.body.data ?? {}).length, 30);
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${id}`]);
  });

  it('fails only the field of an id that failed, and fetches the others concurrently', async () => {
    const good = stack.emulator.store.createAccount({ email: 'good@example.com' }).id;
    const broken = stack.emulator.store.createAccount({ email: 'broken@example.com' }).id;
    stack.emulator.addFault({ path: `/accounts/${broken}`, status: 500 });
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `query ($good: ID!, $broken: ID!, $missing: ID!) {
        good: account(id: $good) { id } broken: account(id: $broken) { id } missing: account(id: $missing) { id } }`,
      { good, broken, missing: 'ffffffffffffffffffffffff' },
    );
    stack.emulator.clearFaults();
    assert.deepEqual(res.body.data, { good: { id: good }, broken: null, missing: null });
    const byPath = Object.fromEntries((res.body.errors ?? []).map((e) => [e.path?.[0], e.extensions?.['code']]));
    assert.deepEqual(byPath, { broken: 'UPSTREAM_ERROR', missing: 'NOT_FOUND' });
    assert.equal(stack.upstreamCalls().filter((c) => c === `GET /accounts/${good}`).length, 1);
  });

  it('primes the account loader with a listed page: nested full-account fields cost nothing more', async () => {
    for (let i = 0; i < 3; i++) stack.emulator.store.createAccount({ email: `l${i}@example.com`, username: `l${i}` });
    const listed = await stack.gql<{ accounts: { nodes: { id: string }[] } }>(`{ accounts(first: 3) { nodes { id } } }`);
    const [first] = listed.body.data!.accounts.nodes;
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `query ($id: ID!) { accounts(first: 3) { nodes { username messageCount } } again: account(id: $id) { username } }`,
      { id: first!.id },
    );
    assert.equal(res.body.errors, undefined);
    // Both root fields start in the same pass, so `again` has asked for its account before the list can
    // have been answered (and primed the loader): it costs one request whichever answer comes first. The
    // listed accounts' nested fields cost none.
    assert.deepEqual(stack.upstreamCalls().sort(), ['GET /accounts', `GET /accounts/${first!.id}`]);
  });

  it('primes the account loader with a listed page: an account reached again through its used token costs no request', async () => {
    const { store } = stack.emulator;
    for (let i = 0; i < 3; i++) {
      const id = store.createAccount({ email: `p${i}@example.com`, username: `p${i}` }).id;
      const { token } = store.createConnectToken(id, { callback_url: 'https://app.example.com/cb', email: `p${i}@example.com` });
      store.useConnectToken(token, { server: 'imap.example.com', username: `p${i}` });
    }
    stack.emulator.clearRequests();
    // `username` is not in the token's embed: each token's account is loaded whole, which the page already was.
    const res = await stack.gql<{ accounts: { nodes: { connectTokens: { account: { username: string } }[] }[] } }>(
      `{ accounts(first: 3) { nodes { connectTokens { account { username } } } } }`,
    );
    assert.equal(res.body.errors, undefined);
    const usernames = res.body.data!.accounts.nodes.map((n) => n.connectTokens.map((t) => t.account.username));
    assert.deepEqual(usernames.sort(), [['p0'], ['p1'], ['p2']]);
    const ids = store.listAccounts().map((a) => a.id);
    assert.deepEqual(stack.upstreamCalls().sort(), ['GET /accounts', ...ids.map((id) => `GET /accounts/${id}/connect_tokens`)].sort());
  });

  it('shares one token list between a connection and a nested lookup of the same account', async () => {
    const id = stack.emulator.store.createAccount({ email: 'n@example.com' }).id;
    const token = stack.emulator.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' }).token;
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `query ($id: ID!) { account(id: $id) { connectTokens { token } again: connectTokens { token } } }`,
      { id },
    );
    assert.equal(res.body.errors, undefined);
    assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`].sort());
    void token;
    assert.deepEqual(codes(res), []);
  });

  it('never takes one account’s or token’s load for another’s, however the ids are spelt', async () => {
    const { token } = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    stack.emulator.clearRequests();
    // account(id: "") once shared the top-level tokens' loads: its token list fetched GET /connect_tokens
    // (every token of the key) for an id refused as invalid, and its connectToken's refusal failed the sibling.
    const res = await stack.gql<{ connectToken: { token: string } | null }>(
      `query ($t: ID!) { account(id: "") { connectTokens { token } connectToken(token: $t) { token } } connectToken(token: $t) { token } }`,
      { t: token },
    );
    assert.deepEqual(res.body.data?.connectToken, { token });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token}`]);
  });

  it('fetches an account and its token list side by side: one round trip, not two', async () => {
    const id = stack.emulator.store.createAccount({ email: 'side@example.com' }).id;
    stack.emulator.addFault({ path: new RegExp(`^/accounts/${id}`), latencyMs: 300 });
    stack.emulator.clearRequests();
    stack.emulator.resetPeak();
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { ... on Account { connectTokens { token } } } }`, { id });
    assert.equal(res.body.errors, undefined);
    assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`]);
    assert.equal(stack.emulator.peakInFlight, 2);
  });

  it('answers a written account’s id from its write: no read of the account for the id alone', async () => {
    const created = await stack.gql<{ createAccount: { id: string; account: { id: string } } }>(
      `mutation { createAccount(input: { email: "made@example.com" }) { id account { id } } }`,
    );
    assert.equal(created.body.errors, undefined);
    const { id, account } = created.body.data!.createAccount;
    assert.equal(account.id, id);
    assert.deepEqual(stack.upstreamCalls(), ['POST /accounts']);

    const { token } = stack.emulator.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    const updated = await stack.gql(
      `mutation ($id: ID!) { updateAccount(id: $id, input: { firstName: "W" }) { account { __typename id connectTokens { token } } } }`,
      { id },
    );
    assert.deepEqual(updated.body.data, { updateAccount: { account: { __typename: 'Account', id, connectTokens: [{ token }] } } });
    // The tokens need only the id: the account itself is not read.
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${id}`, `GET /accounts/${id}/connect_tokens`]);
    // Nor for one token of it, looked up by the account's id.
    const one = await stack.gql(
      `mutation ($id: ID!, $t: ID!) { updateAccount(id: $id, input: { firstName: "V" }) { account { id connectToken(token: $t) { token } } } }`,
      { id, t: token },
    );
    assert.deepEqual(one.body.data, { updateAccount: { account: { id, connectToken: { token } } } });
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${id}`, `GET /accounts/${id}/connect_tokens/${token}`]);
  });

  /** Runs `query` with every upstream answer 300 ms late; its upstream calls, sorted, and the most at once. */
  async function slowly(query: string, variables: Record<string, unknown>): Promise<{ calls: string[]; peak: number }> {
    stack.emulator.addFault({ path: /.*/, answerAfterMs: 300 });
    stack.emulator.clearRequests();
    stack.emulator.resetPeak();
    try {
      const res = await stack.gql(query, variables);
      assert.deepEqual(codes(res), [], JSON.stringify(res.body));
      return { calls: stack.upstreamCalls().sort(), peak: stack.emulator.peakInFlight };
    } finally {
      stack.emulator.clearFaults();
    }
  }

  it('fetches an account and one of its tokens by the token given side by side', async () => {
    const id = stack.emulator.store.createAccount({ email: 'one@example.com' }).id;
    const { token } = stack.emulator.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    const { calls, peak } = await slowly(`query ($id: ID!, $t: ID!) { account(id: $id) { firstName connectToken(token: $t) { token } } }`, { id, t: token });
    assert.deepEqual(calls, [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens/${token}`]);
    assert.equal(peak, 2);
  });

  it('fetches an account, its token list and one of its tokens by the token given side by side: one round trip, not two', async () => {
    const id = stack.emulator.store.createAccount({ email: 'both@example.com' }).id;
    const { token } = stack.emulator.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    const { calls, peak } = await slowly(
      `query ($id: ID!, $t: ID!) { account(id: $id) { firstName connectTokens { token } connectToken(token: $t) { token } } }`,
      { id, t: token },
    );
    assert.deepEqual(calls, [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`, `GET /accounts/${id}/connect_tokens/${token}`]);
    assert.equal(peak, 3);
  });

  it('answers an account’s token by the token given from that account’s token list once it is in: no request of its own', async () => {
    const { store } = stack.emulator;
    const id = store.createAccount({ email: 'listed@example.com' }).id;
    const { token } = store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    store.useConnectToken(token, { email: 'second@example.com', server: 'imap.example.com', username: 'listed' });
    stack.emulator.clearRequests();
    // The token's account asks for the token only once the list holding it has been answered.
    const res = await stack.gql(`query ($id: ID!, $t: ID!) { account(id: $id) { connectTokens { account { connectToken(token: $t) { token } } } } }`, { id, t: token });
    assert.deepEqual(res.body, { data: { account: { connectTokens: [{ account: { connectToken: { token } } }] } } });
    assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`]);
  });

  it('reads a written account and its tokens side by side after the write: two round trips, not three', async () => {
    const id = stack.emulator.store.createAccount({ email: 'written@example.com' }).id;
    const { calls, peak } = await slowly(
      `mutation ($id: ID!) { updateAccount(id: $id, input: { firstName: "W" }) { account { firstName connectTokens { token } } } }`,
      { id },
    );
    assert.deepEqual(calls, [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`, `POST /accounts/${id}`]);
    assert.equal(peak, 2);
  });

  it('reads a used token’s full account and that account’s tokens side by side: two round trips, not three', async () => {
    const { store } = stack.emulator;
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'capability@example.com' });
    const { account } = store.useConnectToken(token, { server: 'imap.example.com', username: 'capability' });
    const { calls, peak } = await slowly(`query ($t: ID!) { connectToken(token: $t) { account { username connectTokens { token } } } }`, { t: token });
    assert.deepEqual(calls, [`GET /accounts/${account.id}`, `GET /accounts/${account.id}/connect_tokens`, `GET /connect_tokens/${token}`]);
    assert.equal(peak, 2);
  });
});

describe('batching: a request waits only for those it depends on', () => {
  // Held answers are let go by the test (the emulator's fault waits run on this timer), not by time.
  const held = manualTimer();
  const stack = useStack({ emulator: { faultTimer: held.timer } });

  it('sends a used token’s account request once that token is in, while another token asked beside it is unanswered', async () => {
    const { store } = stack.emulator;
    const account = store.createAccount({ email: 'quick@example.com', username: 'quick' }).id;
    const quick = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'quick@example.com' }).token;
    store.useConnectToken(quick, { server: 'imap.example.com', username: 'quick', existingAccountId: account });
    const slow = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }).token;
    stack.emulator.addFault({ path: `/connect_tokens/${slow}`, answerAfterMs: 1 });
    stack.emulator.clearRequests();
    const pending = stack.gql<{ quick: { account: { username: string } }; slow: { token: string } }>(
      `query ($quick: ID!, $slow: ID!) { quick: connectToken(token: $quick) { account { username } } slow: connectToken(token: $slow) { token } }`,
      { quick, slow },
    );
    try {
      await eventually(() => held.waiting().length === 1, { what: 'the slow token’s request held' });
      // Both token requests left together; the account depends on the quick one alone. (Well within the
      // gateway's 5 s upstream deadline, which would end the held request.)
      await eventually(() => stack.emulator.requests.some((r) => r.path === `/accounts/${account}`), {
        timeoutMs: 3_000,
        what: 'the account requested while the slow token is still unanswered',
      });
      assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${quick}`, `GET /accounts/${account}`]);
    } finally {
      held.fireAll();
    }
    const res = await pending;
    assert.deepEqual(res.body, { data: { quick: { account: { username: 'quick' } }, slow: { token: slow } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${slow}`]);
  });
});
