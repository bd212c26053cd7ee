import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes, hsToken, SECRET, startAuthStack, type AuthStack } from './helpers.ts';

const CREATE = 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }';

/**
 * CALLER_WRITES_PER_HOUR over real HTTP: each caller without the admin scope may make so many upstream writes
 * in an hour; past them a write is RATE_LIMITED before any upstream call, and other callers are not affected.
 */
describe('the budget of writes of each caller', () => {
  let stack: AuthStack;
  let account: string;

  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 2 });
    account = stack.emulator.store.createAccount({ email: 'mine@example.com', first_name: 'Mina' }).id;
    stack.upstreamCalls();
  });
  after(() => stack.close());

  async function create(token: string) {
    const response = await stack.gql(CREATE, token);
    return { response, calls: stack.upstreamCalls() };
  }

  test('refuses a caller its third write of the hour, RATE_LIMITED, without an upstream call; others still write', async () => {
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
    // The payload is non-null in the schema: its error blanks `data`.
    assert.equal(refused.response.body.data, null);
    const [error] = refused.response.body.errors!;
    assert.equal(error!.extensions!['code'], 'RATE_LIMITED');
    assert.equal(error!.extensions!['limit'], 'CALLER_WRITES_PER_HOUR');
    assert.equal(error!.extensions!['maximum'], 2);
    const retryAfter = error!.extensions!['retryAfter'] as number;
    assert.ok(retryAfter > 3500 && retryAfter <= 3600, String(retryAfter));
    assert.equal(error!.extensions!['upstream'], undefined);
    assert.match(error!.message, /^createConnectToken: the caller has made the 2 writes it may make in an hour/);

    // Another token of the same subject is the same caller; another subject is not.
    assert.deepEqual(codes((await create(await hsToken({ sub: 'user-1', accounts: [account] }))).response), ['RATE_LIMITED']);
    assert.deepEqual(codes((await create(await hsToken({ sub: 'user-2' }))).response), []);
  });

  test('counts the account mutations of a scoped caller; refusals before the upstream (scope, input) are not counted', async () => {
    const owner = await hsToken({ sub: 'owner', accounts: [account] });
    const forbidden = await stack.gql('mutation($id: ID!) { updateAccount(id: $id, input: { firstName: "X" }) { success } }', owner, { id: 'someone-else' });
    assert.deepEqual(codes(forbidden), ['FORBIDDEN']);
    const invalid = await stack.gql('mutation($id: ID!) { updateAccount(id: $id, input: {}) { success } }', owner, { id: account });
    assert.deepEqual(codes(invalid), ['BAD_USER_INPUT']);
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

  test('counts a token without a subject on its own, and never an admin', async () => {
    const anonymous = await hsToken({});
    const admin = await hsToken({ sub: 'ops', scope: 'contextio:admin' });
    const outcomes = [];
    for (const token of [anonymous, anonymous, anonymous, admin, admin, admin, admin]) {
      const { response, calls } = await create(token);
      outcomes.push([...codes(response), calls.length]);
    }
    assert.deepEqual(outcomes, [[1], [1], ['RATE_LIMITED', 0], [1], [1], [1], [1]]);
    // Another token without a subject (another `exp`) is another caller.
    assert.deepEqual(codes((await create(await hsToken({ exp: Math.floor(Date.now() / 1000) + 600 }))).response), []);
  });
});

describe('a gateway whose writes are not counted (callerWritesPerHour: 0)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET }, callerWritesPerHour: 0 });
  });
  after(() => stack.close());

  test('lets a caller write as often as it asks', async () => {
    const user = await hsToken({ sub: 'user-1' });
    for (let i = 0; i < 5; i += 1) assert.deepEqual(codes(await stack.gql(CREATE, user)), []);
  });
});
