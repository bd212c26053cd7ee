import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { withClockAhead } from '../helpers/clock.ts';
import { startStack } from '../helpers/stack.ts';
import { codes, hsToken, SECRET, useAuthStack, type GqlResponse } from './helpers.ts';

const ACCOUNT = 'query($id: ID!) { account(id: $id) { id } }';

/** The one error of a read refused by the budget: RATE_LIMITED naming the setting, with when to retry. */
function assertReadRefused(response: GqlResponse, maximum: number): void {
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const refused = (response.body.errors ?? []).filter((e) => e.extensions?.['limit'] === 'CALLER_READS_PER_HOUR');
  assert.ok(refused.length > 0, JSON.stringify(response.body));
  for (const error of refused) {
    const { code, limit, retryAfter, upstream } = error.extensions!;
    assert.deepEqual({ code, limit, max: error.extensions!['maximum'], upstream }, { code: 'RATE_LIMITED', limit: 'CALLER_READS_PER_HOUR', max: maximum, upstream: undefined });
    // A bucket of `maximum` refilled at `maximum` an hour: one read comes back every 3600 / maximum s.
    assert.ok(typeof retryAfter === 'number' && retryAfter >= 1 && retryAfter <= Math.ceil(3600 / maximum), String(retryAfter));
    assert.match(error.message, new RegExp(`^The caller has made the ${maximum} upstream ${maximum === 1 ? 'read' : 'reads'} it may make in an hour \\(CALLER_READS_PER_HOUR\\); the next may be made in ${retryAfter} s$`));
  }
}

/**
 * CALLER_READS_PER_HOUR over real HTTP: the API key's quota is everyone's, so each caller without the admin
 * scope may make so many upstream reads an hour; past them its reads fail RATE_LIMITED before any upstream
 * call, and other callers, admins included, still read.
 */
describe('the budget of reads of each caller', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerReadsPerHour: 3 });
  let account: string;

  before(() => {
    account = stack.emulator.store.createAccount({ email: 'mine@example.com' }).id;
    stack.upstreamCalls();
  });

  /** Spends the caller's 3 reads on connect tokens that do not exist, and forgets the calls. */
  async function spendReads(user: string): Promise<void> {
    for (let i = 0; i < 3; i += 1) codes(await stack.gql(`{ connectToken(token: "spent${i}abcdef") { token } }`, user));
    stack.upstreamCalls();
  }

  test('refuses a caller its fourth read, without an upstream call, while other callers and admins still read', async () => {
    const user = await hsToken({ sub: 'reader-1', accounts: [account] });
    for (let i = 0; i < 3; i += 1) assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), []);
    assert.equal(stack.upstreamCalls().length, 3);
    const refused = await stack.gql(ACCOUNT, user, { id: account });
    assertReadRefused(refused, 3);
    assert.deepEqual(refused.body.data, { account: null });
    assert.deepEqual(stack.upstreamCalls(), []);

    assert.deepEqual(codes(await stack.gql(ACCOUNT, await hsToken({ sub: 'reader-2', accounts: [account] }), { id: account })), []);
    const admin = await hsToken({ sub: 'ops', scope: 'contextio:admin' });
    for (let i = 0; i < 5; i += 1) assert.deepEqual(codes(await stack.gql(ACCOUNT, admin, { id: account })), []);
    assert.equal(stack.upstreamCalls().length, 6);
  });

  test('stops a token holder spending the key’s quota on guessed connect tokens: the reads past the budget are never sent', async () => {
    // Any valid token may look connect tokens up; fifty aliases an operation made 1,000 calls in seconds.
    const guesser = await hsToken({ sub: 'guesser' });
    const fields = Array.from({ length: 8 }, (_, i) => `g${i}: connectToken(token: "guess${i}abcdef") { token }`);
    const response = await stack.gql(`{ ${fields.join(' ')} }`, guesser);
    assert.equal(stack.upstreamCalls().length, 3);
    assert.deepEqual(
      codes(response).sort(),
      ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED'],
    );
    assertReadRefused(response, 3);
  });

  test('counts the read of an account’s token list as any other: the account and its tokens are two', async () => {
    const user = await hsToken({ sub: 'reader-4', accounts: [account] });
    const tokens = 'query($id: ID!) { account(id: $id) { id connectTokens { token } } }';
    assert.deepEqual(codes(await stack.gql(tokens, user, { id: account })), []);
    assert.equal(stack.upstreamCalls().length, 2);
    // The third read is the account's; the list would be the fourth.
    const refused = await stack.gql(tokens, user, { id: account });
    assertReadRefused(refused, 3);
    assert.deepEqual(refused.body.errors?.map((e) => [e.path, e.extensions?.['code']]), [[['account', 'connectTokens'], 'RATE_LIMITED']]);
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${account}`]);
  });

  test('does not count the read of what a write just made or changed (a new connect token’s connectToken, an updated account’s account): with no read left, each write still answers what it wrote', async () => {
    const user = await hsToken({ sub: 'reader-5', accounts: [account] });
    await spendReads(user);
    // A write refused its result would be made and not told: a caller making it again makes another.
    const created = await stack.gql('mutation { createConnectToken(input: { callbackUrl: "https://app.example/cb" }) { token connectToken { token callbackUrl } } }', user);
    assert.deepEqual(codes(created), [], JSON.stringify(created.body));
    const payload = (created.body.data as { createConnectToken: { token: string; connectToken: { token: string; callbackUrl: string } } }).createConnectToken;
    assert.deepEqual(payload.connectToken, { token: payload.token, callbackUrl: 'https://app.example/cb' });
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', `GET /connect_tokens/${payload.token}`]);
    const updated = await stack.gql(`mutation { updateAccount(id: "${account}", input: { firstName: "Renamed" }) { account { firstName } } }`, user);
    assert.deepEqual(updated.body, { data: { updateAccount: { account: { firstName: 'Renamed' } } } });
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${account}`, `GET /accounts/${account}`]);
    // Neither was taken from the budget, nor given to a read of anything else: the next read is still refused.
    assertReadRefused(await stack.gql(ACCOUNT, user, { id: account }), 3);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('counts the reads a write’s payload makes beyond what it wrote (an updated account’s token list)', async () => {
    const user = await hsToken({ sub: 'reader-6', accounts: [account] });
    await spendReads(user);
    const updated = await stack.gql(`mutation { updateAccount(id: "${account}", input: { firstName: "Again" }) { success account { firstName connectTokens { token } } } }`, user);
    assertReadRefused(updated, 3);
    assert.deepEqual(updated.body.errors?.map((e) => e.path), [['updateAccount', 'account', 'connectTokens']]);
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${account}`, `GET /accounts/${account}`]);
  });

  test('counts a read retried after a 502 once', async () => {
    const user = await hsToken({ sub: 'reader-3', accounts: [account] });
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${account}`, status: 502, times: 1 });
    assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), []);
    assert.equal(stack.upstreamCalls().length, 2, 'the read and its retry');
    assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), []);
    assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), []);
    assertReadRefused(await stack.gql(ACCOUNT, user, { id: account }), 3);
    assert.equal(stack.upstreamCalls().length, 2);
  });
});

describe('the budget of reads within one operation', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerReadsPerHour: 1 });

  test('gives the last read to the account asked for, not to the prefetch of a token field under it', async () => {
    const account = stack.emulator.store.createAccount({ email: 'last@example.com' }).id;
    const user = await hsToken({ sub: 'last-read', accounts: [account] });
    const response = await stack.gql('query($id: ID!) { account(id: $id) { id connectToken(token: "t0123456789") { token } } }', user, { id: account });
    assert.deepEqual(response.body.data, { account: { id: account, connectToken: null } });
    assert.deepEqual(response.body.errors?.map((e) => e.path), [['account', 'connectToken']]);
    assertReadRefused(response, 1);
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${account}`]);
  });
});

describe('the budget of reads within one operation, under a connect token', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerReadsPerHour: 2 });

  test('gives the read left after the token to the account it names by id alone, not to the prefetch of a token field under it', async () => {
    const account = stack.emulator.store.createAccount({ email: 'bare@example.com', first_name: 'Bare' }).id;
    // A used token naming its account by id alone: its account's data is a load of its own.
    const token = { token: 'bareidlast0123456', created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account };
    stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
    const user = await hsToken({ sub: 'last-read-token', accounts: [account] });
    const response = await stack.gql(
      'query($t: ID!) { connectToken(token: $t) { account { id firstName connectToken(token: "t0123456789") { token } } } }',
      user,
      { t: token.token },
    );
    assert.deepEqual(response.body.data, { connectToken: { account: { id: account, firstName: 'Bare', connectToken: null } } });
    assert.deepEqual(response.body.errors?.map((e) => e.path), [['connectToken', 'account', 'connectToken']]);
    assertReadRefused(response, 2);
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`, `GET /accounts/${account}`]);
  });
});

describe('the budget of reads and the key-wide rate-limit pause', () => {
  // A short deadline: a call that meets the pause fails at once instead of waiting it out.
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerReadsPerHour: 2, upstreamTimeoutMs: 1_000 });

  test('does not count reads the pause refused before they were sent', async () => {
    const account = stack.emulator.store.createAccount({ email: 'paused@example.com' }).id;
    const user = await hsToken({ sub: 'reader', accounts: [account] });
    // A pause of a minute, ended below by moving the clock on: one of a second, on a busy machine or a gateway
    // not yet warm, was sometimes over before the three reads it must keep back were made.
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${account}`, status: 429, retryAfter: 60, times: 1 });
    assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), ['RATE_LIMITED']);
    assert.equal(stack.upstreamCalls().length, 1);
    for (let i = 0; i < 3; i += 1) {
      const paused = await stack.gql(ACCOUNT, user, { id: account });
      assert.deepEqual(codes(paused), ['RATE_LIMITED']);
      assert.equal(paused.body.errors![0]!.extensions!['limit'], undefined, 'refused by the pause, not the budget');
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    // Past the pause: the 429'd read was sent, so it counted; the three the pause kept back did not: one is left.
    await withClockAhead(60_200, async () => {
      assert.deepEqual(codes(await stack.gql(ACCOUNT, user, { id: account })), []);
      assertReadRefused(await stack.gql(ACCOUNT, user, { id: account }), 2);
    });
    assert.equal(stack.upstreamCalls().length, 1);
  });
});

describe('the budget of reads, off', () => {
  test('counts nothing with CALLER_READS_PER_HOUR=0, nor anyone of a gateway running open (every caller an admin)', async () => {
    for (const gateway of [{ auth: { jwtSecret: SECRET }, callerReadsPerHour: 0 }, { callerReadsPerHour: 1 }]) {
      const stack = await startStack({ gateway });
      try {
        const account = stack.emulator.store.createAccount({ email: 'free@example.com' }).id;
        const headers: Record<string, string> = gateway.auth ? { authorization: `Bearer ${await hsToken({ sub: 'reader', accounts: [account] })}` } : {};
        for (let i = 0; i < 3; i += 1) assert.deepEqual(codes(await stack.gql(ACCOUNT, { id: account }, headers)), []);
        assert.equal(stack.upstreamCalls().length, 3);
      } finally {
        await stack.close();
      }
    }
  });
});
