import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { withClockAhead } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { codes, hsToken, SECRET, startAuthStack, useAuthStack, type GqlResponse } from './helpers.ts';

const CREATE = 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }';

/** `count` aliased top-level connect-token creations in one mutation. */
function creates(count: number): string {
  const fields = Array.from({ length: count }, (_, i) => `c${i}: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }`);
  return `mutation { ${fields.join(' ')} }`;
}

/** The refusal of a whole operation by the budget: HTTP 429 with Retry-After (unless never), nothing run. */
function assertRefusedWhole(response: GqlResponse, message: RegExp, retryAfter: 'soon' | 'never'): void {
  assert.equal(response.status, 429, JSON.stringify(response.body));
  assert.equal(response.body.data, undefined);
  const [error, ...more] = response.body.errors!;
  assert.equal(more.length, 0);
  assert.match(error!.message, message);
  const { code, limit, maximum, upstream, http } = error!.extensions!;
  assert.deepEqual({ code, limit, upstream, http }, { code: 'RATE_LIMITED', limit: 'CALLER_WRITES_PER_HOUR', upstream: undefined, http: undefined });
  assert.equal(typeof maximum, 'number');
  if (retryAfter === 'never') {
    assert.equal(response.headers.get('retry-after'), null);
    assert.equal(error!.extensions!['retryAfter'], undefined);
  } else {
    const seconds = error!.extensions!['retryAfter'] as number;
    assert.ok(seconds > 3500 && seconds <= 3600, String(seconds));
    assert.equal(response.headers.get('retry-after'), String(seconds));
  }
}

/**
 * CALLER_WRITES_PER_HOUR over real HTTP: each caller without the admin scope may make so many upstream writes
 * in an hour; past them a mutation is refused RATE_LIMITED before any upstream call, and other callers are not
 * affected.
 */
describe('the budget of writes of each caller', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 2 });
  let account: string;

  before(() => {
    account = stack.emulator.store.createAccount({ email: 'mine@example.com', first_name: 'Mina' }).id;
    stack.upstreamCalls();
  });

  async function create(token: string) {
    const response = await stack.gql(CREATE, token);
    return { response, calls: stack.upstreamCalls() };
  }

  test('refuses a caller its third write of the hour, HTTP 429 with Retry-After, without an upstream call; others still write', async () => {
    const user = await hsToken({ sub: 'user-1' });
    const first = await create(user);
    assert.deepEqual(codes(first.response), []);
    assert.deepEqual(first.calls, ['POST /connect_tokens']);
    const { token } = first.response.body.data!['createConnectToken'] as { token: string };
    // Deleting is a write too.
    const deleted = await stack.gql('mutation($t: ID!) { deleteConnectToken(token: $t) { success } }', user, { t: token });
    assert.deepEqual(deleted.body, { data: { deleteConnectToken: { success: true } } });
    stack.upstreamCalls();

    const refused = await create(user);
    assert.deepEqual(refused.calls, []);
    assertRefusedWhole(refused.response, /^The caller has made the 2 writes it may make in an hour \(CALLER_WRITES_PER_HOUR\); the next may be made in \d+ s$/, 'soon');

    // Another token of the same subject is the same caller; another subject is not.
    assert.deepEqual(codes((await create(await hsToken({ sub: 'user-1', accounts: [account] }))).response), ['RATE_LIMITED']);
    assert.deepEqual(codes((await create(await hsToken({ sub: 'user-2' }))).response), []);
  });

  test('refuses whole, before any write, an operation whose writes the caller has not all left', async () => {
    const user = await hsToken({ sub: 'user-3' });
    // More than the budget itself: never, so no Retry-After.
    const tooMany = await stack.gql(creates(3), user);
    assertRefusedWhole(tooMany, /^The operation makes 3 writes, more than the 2 a caller may make in an hour \(CALLER_WRITES_PER_HOUR\): send them in several operations$/, 'never');
    assert.deepEqual(stack.upstreamCalls(), []);

    // `__typename` at the root is no write: two creations fit.
    const two = await stack.gql(`mutation { __typename ${creates(2).slice('mutation { '.length)}`, user);
    assert.deepEqual(codes(two), []);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /connect_tokens']);
    const another = await hsToken({ sub: 'user-4' });
    assert.deepEqual(codes(await stack.gql(CREATE, another)), []);
    stack.upstreamCalls();
    const tokensBefore = stack.emulator.store.listConnectTokens().length;
    assertRefusedWhole(await stack.gql(creates(2), another), /^The operation makes 2 writes, more than the caller has left of the 2 writes it may make in an hour \(CALLER_WRITES_PER_HOUR\); they may be made in \d+ s$/, 'soon');
    assert.deepEqual(stack.upstreamCalls(), []);
    assert.equal(stack.emulator.store.listConnectTokens().length, tokensBefore);
    assert.deepEqual(codes(await stack.gql(CREATE, another)), []);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
  });

  test('counts the account mutations of a scoped caller; refusals before the upstream (scope, input, ids) are not counted', async () => {
    const owner = await hsToken({ sub: 'owner', accounts: [account] });
    const forbidden = await stack.gql('mutation($id: ID!) { updateAccount(id: $id, input: { firstName: "X" }) { success } }', owner, { id: 'someone-else' });
    assert.deepEqual(codes(forbidden), ['FORBIDDEN']);
    const invalid = await stack.gql('mutation($id: ID!) { updateAccount(id: $id, input: {}) { success } }', owner, { id: account });
    assert.deepEqual(codes(invalid), ['BAD_USER_INPUT']);
    // Ids the client refuses to put in a URL: no request goes out, so nothing is counted.
    for (const token of ['..', 'x'.repeat(257)]) {
      assert.deepEqual(codes(await stack.gql('mutation($t: ID!) { deleteConnectToken(token: $t) { success } }', owner, { t: token })), ['BAD_USER_INPUT']);
    }
    assert.deepEqual(stack.upstreamCalls(), []);

    const update = 'mutation($id: ID!, $name: String!) { updateAccount(id: $id, input: { firstName: $name }) { success } }';
    assert.deepEqual(codes(await stack.gql(update, owner, { id: account, name: 'Mia' })), []);
    assert.deepEqual(codes(await stack.gql(update, owner, { id: account, name: 'Mira' })), []);
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${account}`, `POST /accounts/${account}`]);
    const createToken = 'mutation($id: ID!) { createAccountConnectToken(accountId: $id, input: { callbackUrl: "https://app.example.com/cb" }) { token } }';
    assert.deepEqual(codes(await stack.gql(createToken, owner, { id: account })), ['RATE_LIMITED']);
    assert.deepEqual(codes(await stack.gql('mutation($id: ID!) { deleteAccount(id: $id) { success } }', owner, { id: account })), ['RATE_LIMITED']);
    assert.deepEqual(stack.upstreamCalls(), []);
    assert.equal(stack.emulator.store.getAccount(account)?.first_name, 'Mira');
  });

  test('counts a token without a subject on its own, however its signature is spelt, and never an admin', async () => {
    const anonymous = await hsToken({});
    const admin = await hsToken({ sub: 'ops', scope: 'contextio:admin' });
    const outcomes = [];
    // A trailing `=` still verifies: the same token, so the same caller.
    for (const token of [anonymous, `${anonymous}=`, anonymous, admin, admin, admin, admin]) {
      const { response, calls } = await create(token);
      outcomes.push([...codes(response), calls.length]);
    }
    assert.deepEqual(outcomes, [[1], [1], ['RATE_LIMITED', 0], [1], [1], [1], [1]]);
    // Another token without a subject (another `exp`) is another caller.
    assert.deepEqual(codes((await create(await hsToken({ exp: Math.floor(Date.now() / 1000) + 600 }))).response), []);
  });

  test('counts a token with an empty sub on its own, as one without (docs/auth.md): empty subjects are no one user', async () => {
    const exp = (minutes: number) => Math.floor(Date.now() / 1000) + minutes * 60;
    const outcomes = [];
    // Three tokens with an empty subject (each its own exp): three callers, each with its budget whole.
    for (const minutes of [31, 41, 51]) outcomes.push(codes((await create(await hsToken({ sub: '', exp: exp(minutes) }))).response));
    assert.deepEqual(outcomes, [[], [], []]);
  });

  test('counts a caller by issuer and subject: tokens refreshed for one user share a budget, one subject from two issuers is two callers', async () => {
    const exp = (minutes: number) => Math.floor(Date.now() / 1000) + minutes * 60;
    const outcomes = [];
    // Three tokens of one user, each refreshed (another exp), then the same subject from another issuer.
    for (const claims of [{ exp: exp(30) }, { exp: exp(40) }, { exp: exp(50) }]) {
      outcomes.push(codes((await create(await hsToken({ iss: 'https://idp-a.example.com', sub: 'same-user', ...claims }))).response));
    }
    outcomes.push(codes((await create(await hsToken({ iss: 'https://idp-b.example.com', sub: 'same-user' }))).response));
    assert.deepEqual(outcomes, [[], [], ['RATE_LIMITED'], []]);
  });

  test('counts tokens whose issuer is none as the log has it (no iss, an empty one, one not a string) as one caller', async () => {
    const outcomes = [];
    for (const iss of [undefined, '', 5]) outcomes.push(codes((await create(await hsToken({ sub: 'no-issuer-user', ...(iss === undefined ? {} : { iss }) } as never))).response));
    assert.deepEqual(outcomes, [[], [], ['RATE_LIMITED']]);
  });

  test('takes a numeric sub as that subject, and refuses a sub of another type', async () => {
    const outcomes = [];
    for (const sub of [42, '42', 42]) outcomes.push(codes((await create(await hsToken({ sub } as never))).response));
    assert.deepEqual(outcomes, [[], [], ['RATE_LIMITED']]);
    for (const sub of [['a'], { id: 'a' }, true, null]) {
      const refused = await create(await hsToken({ sub } as never));
      assert.equal(refused.response.status, 401, JSON.stringify(sub));
      assert.deepEqual(codes(refused.response), ['UNAUTHENTICATED']);
      assert.match(refused.response.body.errors![0]!.message, /"sub" claim must be a string/);
      assert.deepEqual(refused.calls, []);
    }
  });
});

describe('the budget of writes and the key-wide rate-limit pause', () => {
  // A short deadline: a call that meets the pause fails at once instead of waiting it out.
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 2, upstreamTimeoutMs: 1_000 });

  test('does not count writes the pause refused before they were sent', async () => {
    const user = await hsToken({ sub: 'user-1' });
    // A pause of a minute, ended below by moving the clock on: one of a second could be over, on a busy machine
    // or a gateway not yet warm, before the two writes it must keep back were made (as read-budget's did).
    stack.emulator.addFault({ method: 'POST', path: '/connect_tokens', status: 429, retryAfter: 60, times: 1 });
    const limited = await stack.gql(CREATE, user);
    assert.deepEqual(codes(limited), ['RATE_LIMITED']);
    assert.equal((limited.body.errors![0]!.extensions!['upstream'] as { status: number }).status, 429);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
    for (let i = 0; i < 2; i += 1) {
      const paused = await stack.gql(CREATE, user);
      assert.deepEqual(codes(paused), ['RATE_LIMITED']);
      assert.equal(paused.body.errors![0]!.extensions!['limit'], undefined, 'refused by the pause, not the budget');
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    // Past the pause: the 429'd write was sent, so it counted; the two the pause kept back did not.
    await withClockAhead(60_200, async () => {
      assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
      assert.deepEqual(codes(await stack.gql(CREATE, user)), ['RATE_LIMITED']);
    });
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
  });
});

describe('the budget of writes and the other checks of a mutation', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 2 });

  test('a mutation that can never succeed is told why, not to wait: the checks come before the budget', async () => {
    const user = await hsToken({ sub: 'checked' });
    assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
    // One write left: two writes, one of them admin-only, are refused for that (403), not for the budget (429).
    const forbidden = await stack.gql(`mutation { ${creates(1).slice('mutation { '.length, -2)} b: createAccount(input: { email: "x@example.com" }) { id } }`, user);
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.body.errors!.map((e) => [e.path, e.extensions!['code']]), [[['b'], 'FORBIDDEN']]);
    // A field @skip leaves out is no write: two fields, one write, and it fits.
    const skipped = await stack.gql(`mutation { ${creates(1).slice('mutation { '.length, -2)} b: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) @skip(if: true) { token } }`, user);
    assert.deepEqual(codes(skipped), []);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /connect_tokens']);
    // None left: one bad write is refused for its input, as a field error, not for the budget.
    const bad = await stack.gql('mutation { createConnectToken(input: { callbackUrl: "javascript:alert(1)" }) { token } }', user);
    assert.deepEqual([bad.status, codes(bad)], [200, ['BAD_USER_INPUT']]);
    assert.deepEqual(codes(await stack.gql(CREATE, user)), ['RATE_LIMITED']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });
  test('counts fields that share a response key as the one write execution merges them into', async () => {
    const user = await hsToken({ sub: 'merged' });
    assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
    stack.upstreamCalls();
    // One write left: the same field twice under one key is one write, so it runs instead of a 429.
    const field = 'a: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }';
    const merged = await stack.gql(`mutation { ${field} ${field} }`, user);
    assert.equal(merged.status, 200, JSON.stringify(merged.body));
    assert.deepEqual(codes(merged), []);
    assert.deepEqual(Object.keys(merged.body.data!), ['a']);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
    assert.deepEqual(codes(await stack.gql(CREATE, user)), ['RATE_LIMITED']);
  });
});

describe('the budget of writes and the operation limits', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 2, operationLimits: { maxRootFields: 1 } });

  test('a mutation the limits refuse while its writes are being checked keeps none of them', async () => {
    const user = await hsToken({ sub: 'limited' });
    const refused = await stack.gql(creates(2), user);
    assert.deepEqual([refused.status, codes(refused)], [400, ['QUERY_TOO_COMPLEX']]);
    assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
    assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /connect_tokens']);
  });
});

describe('the budget of writes under concurrency', () => {
  test('two operations of one caller racing for its last writes: one runs whole, the other is refused whole', async () => {
    const stack = await startAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 3 });
    try {
      const user = await hsToken({ sub: 'racer' });
      // Slow answers keep the two operations running side by side.
      stack.emulator.addFault({ method: 'POST', path: '/connect_tokens', answerAfterMs: 200 });
      const answers = await Promise.all([stack.gql(creates(2), user), stack.gql(creates(2), user)]);
      assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 429]);
      const ran = answers.find((answer) => answer.status === 200)!;
      assert.deepEqual(codes(ran), []);
      assert.equal(Object.keys(ran.body.data!).length, 2);
      assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /connect_tokens']);
      // What the refused one did not take is left: one write.
      assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
      assert.deepEqual(codes(await stack.gql(CREATE, user)), ['RATE_LIMITED']);
    } finally {
      await stack.close();
    }
  });

  test('gives back a write held back in the queue by a pause that began meanwhile: it was never sent', async () => {
    const stack = await startAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 1, upstreamMaxInFlight: 1 });
    try {
      const admin = await hsToken({ sub: 'ops', scope: 'contextio:admin' });
      const user = await hsToken({ sub: 'queued' });
      // The only upstream connection is taken by an admin's read, answered 429 (every call paused an hour) ...
      stack.emulator.addFault({ method: 'GET', path: '/accounts', status: 429, retryAfter: 3600, answerAfterMs: 500, times: 1 });
      const read = stack.gql('{ accounts(first: 1) { nodes { id } } }', admin);
      await eventually(() => stack.emulator.inFlight === 1);
      // ... while the user's write waits for it, then is held back by the pause.
      const write = await stack.gql(CREATE, user);
      await read;
      assert.deepEqual(codes(write), ['RATE_LIMITED']);
      assert.equal(write.body.errors![0]!.extensions!['limit'], undefined);
      assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
      // Its write was not counted: the next is refused by the pause again, not by the caller's budget.
      const next = await stack.gql(CREATE, user);
      assert.deepEqual(codes(next), ['RATE_LIMITED']);
      assert.equal(next.body.errors![0]!.extensions!['limit'], undefined, JSON.stringify(next.body.errors));
    } finally {
      await stack.close();
    }
  });
});

describe('a gateway whose writes are not counted (callerWritesPerHour: 0)', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 0 });

  test('lets a caller write as often as it asks', async () => {
    const user = await hsToken({ sub: 'user-1' });
    for (let i = 0; i < 5; i += 1) assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
    assert.deepEqual(codes(await stack.gql(creates(5), user)), []);
  });
});
