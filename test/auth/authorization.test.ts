import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes, hsToken, SECRET, startAuthStack, type AuthStack, type GqlResponse } from './helpers.ts';

/**
 * The scope rules of the contract with real HS256 tokens against the emulator. Each refusal is checked
 * twice: the FORBIDDEN code on the field, and no upstream request for it.
 */
describe('per-account scope', () => {
  let stack: AuthStack;
  /** The caller's own account, with a source and an account-level connect token. */
  let mine: string;
  let mineToken: string;
  /** Someone else's account, created through the connect flow from a top-level connect token. */
  let other: string;
  let otherToken: string;
  let otherCreatedBy: string;
  /** Tokens: the caller's (accounts: [mine]), an admin's, and a valid one with no accounts at all. */
  let caller: string;
  let admin: string;
  let nobody: string;

  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET } });
    const { store } = stack.emulator;
    mine = store.createAccount({
      email: 'mine@example.com',
      first_name: 'Mina',
      username: 'mina',
      nb_messages: 7,
      sources: [{ label: 'mine::imap', email: 'mine@example.com', status: 'OK' }],
    }).id;
    mineToken = store.createConnectToken(mine, { callback_url: 'https://app.example.com/cb' }).token;
    otherCreatedBy = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'other@example.com' }).token;
    other = store.useConnectToken(otherCreatedBy, { first_name: 'Otto' }).account.id;
    otherToken = store.createConnectToken(other, { callback_url: 'https://app.example.com/cb' }).token;
    caller = await hsToken({ sub: 'mina', accounts: [mine] });
    admin = await hsToken({ sub: 'ops', scope: 'openid contextio:admin' });
    nobody = await hsToken({ sub: 'fresh-user' });
    stack.upstreamCalls();
  });
  after(() => stack.close());

  /** Asserts FORBIDDEN on exactly the given paths and that the upstream saw exactly `calls`. */
  function assertForbidden(response: GqlResponse, paths: string[][], calls: string[] = []): void {
    assert.equal(response.status, 200);
    assert.deepEqual(codes(response), paths.map(() => 'FORBIDDEN'), JSON.stringify(response.body.errors));
    assert.deepEqual(
      (response.body.errors ?? []).map((e) => e.path),
      paths,
    );
    assert.deepEqual(stack.upstreamCalls().sort(), [...calls].sort());
  }

  describe('a scoped caller on its own account', () => {
    test('reads the account, its sources and connect tokens through nested fields', async () => {
      const response = await stack.gql(
        `query($id: ID!, $token: ID!) {
          account(id: $id) {
            id firstName username messageCount
            sources { label status }
            connectTokens { token }
            connectToken(token: $token) { token account { id } }
          }
        }`,
        caller,
        { id: mine, token: mineToken },
      );
      assert.deepEqual(codes(response), []);
      assert.deepEqual(response.body.data, {
        account: {
          id: mine,
          firstName: 'Mina',
          username: 'mina',
          messageCount: 7,
          sources: [{ label: 'mine::imap', status: 'OK' }],
          connectTokens: [{ token: mineToken }],
          connectToken: { token: mineToken, account: null },
        },
      });
      for (const call of stack.upstreamCalls()) assert.match(call, new RegExp(`^GET /accounts/${mine}(/|$)`));
    });

    test('reads its tokens under the id it asked for when the upstream answers the account with that id in another case', async () => {
      // A server that matches ids ignoring case (as the client's answer checks allow) answers with its own spelling.
      const asked = mine.toUpperCase();
      const { store } = stack.emulator;
      stack.emulator.addFault({ method: 'GET', path: `/accounts/${asked}`, body: store.getAccount(mine) });
      stack.emulator.addFault({ method: 'GET', path: `/accounts/${asked}/connect_tokens`, body: store.listConnectTokens(mine) });
      try {
        const response = await stack.gql(
          `query($id: ID!) { account(id: $id) { id connectTokens { token } } }`,
          await hsToken({ sub: 'mina', accounts: [asked] }),
          { id: asked },
        );
        assert.deepEqual(response.body, { data: { account: { id: mine, connectTokens: [{ token: mineToken }] } } });
        // The tokens' prefetch and the field read the same list: one request.
        assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${asked}`, `GET /accounts/${asked}/connect_tokens`]);
      } finally {
        stack.emulator.clearFaults();
        stack.upstreamCalls();
      }
    });

    test('changes it: updateAccount with its payload, createAccountConnectToken, deleteAccountConnectToken', async () => {
      const update = await stack.gql(
        `mutation($id: ID!) { updateAccount(id: $id, input: { lastName: "Lovelace" }) { success account { lastName } } }`,
        caller,
        { id: mine },
      );
      assert.deepEqual(update.body, { data: { updateAccount: { success: true, account: { lastName: 'Lovelace' } } } });

      const created = await stack.gql(
        `mutation($id: ID!) {
          createAccountConnectToken(accountId: $id, input: { callbackUrl: "https://app.example.com/cb" }) {
            token connectToken { token callbackUrl }
          }
        }`,
        caller,
        { id: mine },
      );
      assert.deepEqual(codes(created), []);
      const token = (created.body.data!['createAccountConnectToken'] as { token: string }).token;

      const deleted = await stack.gql(
        `mutation($id: ID!, $token: ID!) { deleteAccountConnectToken(accountId: $id, token: $token) { success } }`,
        caller,
        { id: mine, token },
      );
      assert.deepEqual(deleted.body, { data: { deleteAccountConnectToken: { success: true } } });
      for (const call of stack.upstreamCalls()) assert.match(call, new RegExp(` /accounts/${mine}(/|$)`));
    });
  });

  describe('the same caller on another account', () => {
    test('account(id)', async () => {
      const response = await stack.gql('query($id: ID!) { account(id: $id) { id sources { label } } }', caller, { id: other });
      assertForbidden(response, [['account']]);
      assert.deepEqual(response.body.data, { account: null });
    });

    test('a refused sibling does not blank the caller\'s own account', async () => {
      const response = await stack.gql('query($a: ID!, $b: ID!) { mine: account(id: $a) { id } theirs: account(id: $b) { id } }', caller, {
        a: mine,
        b: other,
      });
      assertForbidden(response, [['theirs']], [`GET /accounts/${mine}`]);
      assert.deepEqual(response.body.data, { mine: { id: mine }, theirs: null });
    });

    test('connectToken(token).account.connectTokens / connectToken', async () => {
      const response = await stack.gql(
        `query($t: ID!, $other: ID!) {
          connectToken(token: $t) {
            account {
              id
              connectTokens { token }
              connectToken(token: $other) { token }
            }
          }
        }`,
        caller,
        { t: otherCreatedBy, other: otherToken },
      );
      // Account.connectTokens is non-null, so its refusal nulls the account; the token itself still resolves.
      assert.deepEqual(response.body.data, { connectToken: { account: null } });
      assert.deepEqual(codes(response).sort(), ['FORBIDDEN', 'FORBIDDEN']);
      assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${otherCreatedBy}`]);
    });

    test('every account mutation', async () => {
      const input = '{ callbackUrl: "https://app.example.com/cb" }';
      const cases: Array<[string, string]> = [
        ['createAccountConnectToken', `mutation($id: ID!) { createAccountConnectToken(accountId: $id, input: ${input}) { token } }`],
        ['updateAccount', 'mutation($id: ID!) { updateAccount(id: $id, input: { firstName: "Mallory" }) { success account { id } } }'],
        ['deleteAccount', 'mutation($id: ID!) { deleteAccount(id: $id) { success } }'],
        ['deleteAccountConnectToken', `mutation($id: ID!) { deleteAccountConnectToken(accountId: $id, token: "${otherToken}") { success } }`],
      ];
      for (const [field, query] of cases) {
        const response = await stack.gql(query, caller, { id: other });
        assertForbidden(response, [[field]]);
        assert.equal(response.body.data, null);
      }
      const { store } = stack.emulator;
      assert.equal(store.getAccount(other)?.first_name, 'Otto');
      assert.ok(store.getConnectToken(otherToken, other), 'the other account’s connect token is still there');
    });

    test('a mutation writing to its own account and to another is refused whole (403) before the first write', async () => {
      const tokens = stack.emulator.store.listConnectTokens(mine).length;
      const response = await stack.gql(
        `mutation($mine: ID!, $other: ID!) {
          a: createAccountConnectToken(accountId: $mine, input: { callbackUrl: "https://app.example.com/cb" }) { token }
          b: updateAccount(id: $other, input: { firstName: "Mallory" }) { success }
        }`,
        caller,
        { mine, other },
      );
      assert.equal(response.status, 403);
      assert.equal(response.body.data, undefined);
      assert.deepEqual(response.body.errors?.map((e) => [e.path, e.extensions?.['code']]), [[['b'], 'FORBIDDEN']]);
      assert.deepEqual(stack.upstreamCalls(), []);
      assert.equal(stack.emulator.store.listConnectTokens(mine).length, tokens);
    });
  });

  describe('knowing a connect token is the capability to read its account', () => {
    test('any valid caller reads the token and its account\'s own fields and sources', async () => {
      const response = await stack.gql(
        `query($t: ID!) {
          connectToken(token: $t) {
            used
            account { id firstName emailAddresses sources { email status } username messageCount }
          }
        }`,
        nobody,
        { t: otherCreatedBy },
      );
      const calls = stack.upstreamCalls();
      assert.deepEqual(codes(response), []);
      const { username, ...account } = (response.body.data!['connectToken'] as { account: Record<string, unknown> }).account;
      assert.deepEqual(account, {
        id: other,
        firstName: 'Otto',
        emailAddresses: ['other@example.com'],
        sources: [{ email: 'other@example.com', status: 'OK' }],
        messageCount: 0,
      });
      assert.equal(typeof username, 'string');
      // username and messageCount are not in the embed: the capability covers loading the full account.
      assert.deepEqual(calls.sort(), [`GET /accounts/${other}`, `GET /connect_tokens/${otherCreatedBy}`].sort());
    });

    test('but not its connect tokens, nor changing it, nor reading it by id', async () => {
      const tokens = await stack.gql(
        'query($t: ID!) { connectToken(token: $t) { account { connectTokens { token } } } }',
        nobody,
        { t: otherCreatedBy },
      );
      assertForbidden(tokens, [['connectToken', 'account', 'connectTokens']], [`GET /connect_tokens/${otherCreatedBy}`]);

      const byId = await stack.gql('query($id: ID!) { account(id: $id) { id } }', nobody, { id: other });
      assertForbidden(byId, [['account']]);

      const update = await stack.gql('mutation($id: ID!) { updateAccount(id: $id, input: { firstName: "X" }) { success } }', nobody, {
        id: other,
      });
      assertForbidden(update, [['updateAccount']]);
    });

    test('the capability is the top-level token\'s: someone else\'s account-level token is not one (its family is the account\'s)', async () => {
      const response = await stack.gql('query($t: ID!) { connectToken(token: $t) { token account { id } } }', nobody, { t: otherToken });
      const calls = stack.upstreamCalls();
      assert.deepEqual(response.body.data, { connectToken: null });
      assert.deepEqual(codes(response), ['NOT_FOUND']);
      assert.deepEqual(calls, [`GET /connect_tokens/${otherToken}`]);
    });
  });

  describe('what needs only a valid token', () => {
    test('createConnectToken with its payload, then deleteConnectToken', async () => {
      const created = await stack.gql(
        `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb", email: "new@example.com" }) {
            token connectToken { email used account { id } }
        } }`,
        nobody,
      );
      assert.deepEqual(codes(created), []);
      const { token, connectToken } = created.body.data!['createConnectToken'] as { token: string; connectToken: unknown };
      assert.deepEqual(connectToken, { email: 'new@example.com', used: false, account: null });
      assert.deepEqual(stack.upstreamCalls().sort(), ['GET /connect_tokens/' + token, 'POST /connect_tokens'].sort());

      const deleted = await stack.gql('mutation($t: ID!) { deleteConnectToken(token: $t) { success token } }', nobody, { t: token });
      assert.deepEqual(deleted.body, { data: { deleteConnectToken: { success: true, token } } });
      assert.deepEqual(stack.upstreamCalls(), [`DELETE /connect_tokens/${token}`]);
    });
  });

  describe('admin-only root fields', () => {
    test('accounts, connectTokens and createAccount are FORBIDDEN to a scoped caller', async () => {
      assertForbidden(await stack.gql('{ accounts { nodes { id } } }', caller), [['accounts']]);
      assertForbidden(await stack.gql('{ connectTokens { nodes { token } } }', caller), [['connectTokens']]);
      assertForbidden(await stack.gql('mutation { createAccount(input: { email: "x@example.com" }) { id } }', caller), [['createAccount']]);
      assert.equal(stack.emulator.store.listAccounts().length, 2);
    });

    test('the admin scope is one whole word of the space-separated scope: a scope that only contains its letters is not it', async () => {
      // An identity provider's other scopes (`contextio:admin-readonly`, say) must not grant what the word grants.
      for (const scope of ['contextio:admin-readonly', 'openid contextio:administrator', 'x-contextio:admin', 'contextio:admin,openid']) {
        const token = await hsToken({ sub: 'almost-admin', scope, accounts: [mine] });
        assertForbidden(await stack.gql('{ accounts { nodes { id } } }', token), [['accounts']]);
        assertForbidden(await stack.gql('query($id: ID!) { account(id: $id) { id } }', token, { id: other }), [['account']]);
      }
    });

    test('the admin scope named only in scp (as Okta and Azure AD write scopes) grants nothing, and the refusal says scp is not read', async () => {
      // Okta writes `scp` as an array, Azure AD as a space-separated string; the contract reads `scope` alone. Told
      // only that it "needs the contextio:admin scope", a caller whose token visibly holds it had nowhere to look.
      const hint = 'the token names contextio:admin in its "scp" claim, which this gateway does not read: it reads "scope"';
      for (const scp of [['openid', 'contextio:admin'], 'openid contextio:admin']) {
        const token = await hsToken({ sub: 'okta-admin', scp, accounts: [mine] });
        const list = await stack.gql('{ accounts { nodes { id } } }', token);
        assertForbidden(list, [['accounts']]);
        assert.ok(list.body.errors![0]!.message.endsWith(hint), `the refusal names scp: ${list.body.errors![0]!.message}`);
        const account = await stack.gql('query($id: ID!) { account(id: $id) { id } }', token, { id: other });
        assertForbidden(account, [['account']]);
        assert.ok(account.body.errors![0]!.message.endsWith(hint), `the refusal names scp: ${account.body.errors![0]!.message}`);
        // Its own account is read as any scoped caller's.
        assert.deepEqual(codes(await stack.gql('query($id: ID!) { account(id: $id) { id } }', token, { id: mine })), []);
        stack.upstreamCalls();
      }
      // A token whose scp holds other scopes, or whose `scope` is there (scp beside it is not looked at), is refused as ever.
      for (const claims of [{ scp: ['openid'] }, { scp: 'contextio:admin-readonly' }, { scope: 'openid', scp: ['contextio:admin'] }]) {
        const token = await hsToken({ sub: 'okta-user', ...claims });
        const list = await stack.gql('{ accounts { nodes { id } } }', token);
        assertForbidden(list, [['accounts']]);
        assert.equal(list.body.errors![0]!.message, 'accounts needs the contextio:admin scope');
      }
    });

    test('a field the caller may not use is FORBIDDEN before its arguments are judged: it learns nothing of what they would accept', async () => {
      const refusals = [
        '{ accounts(filter: { email: "" }) { nodes { id } } }',
        '{ accounts(filter: { status: UNKNOWN }) { nodes { id } } }',
        '{ accounts(first: 100000) { nodes { id } } }',
        '{ accounts(after: "not a cursor") { nodes { id } } }',
        '{ connectTokens(first: -1) { nodes { token } } }',
        '{ connectTokens(after: "not a cursor") { nodes { token } } }',
        'mutation { createAccount(input: { email: "not an address" }) { id } }',
        // Fields open to a scoped caller on its own accounts: on another's, the same.
        `mutation { updateAccount(id: "${other}", input: {}) { success } }`,
        `mutation { createAccountConnectToken(accountId: "${other}", input: { callbackUrl: "not a URL" }) { token } }`,
      ];
      for (const query of refusals) {
        const response = await stack.gql(query, caller);
        assert.deepEqual(codes(response), ['FORBIDDEN'], query);
      }
      // The same arguments from an admin are judged, and refused for what they are.
      for (const query of refusals) assert.deepEqual(codes(await stack.gql(query, admin)), ['BAD_USER_INPUT'], query);
      assert.equal(stack.upstreamCalls().length, 0);
    });

    test('a cursor an admin was given tells a scoped caller nothing of its filter: FORBIDDEN whatever filter it is tried with', async () => {
      // The cursor of a filtered list carries a keyed digest of its filter, so that one leaked into a log or a
      // URL does not say which address was looked up, nor that an account has it.
      const page = await stack.gql('{ accounts(filter: { email: "other@example.com" }, first: 1) { pageInfo { endCursor } } }', admin);
      const cursor = (page.body.data!['accounts'] as { pageInfo: { endCursor: string } }).pageInfo.endCursor;
      stack.upstreamCalls();
      const query = 'query($email: String, $after: String) { accounts(filter: { email: $email }, after: $after) { nodes { id } } }';
      const answers = [];
      for (const guess of ['other@example.com', 'nobody@example.com']) {
        const response = await stack.gql(query, caller, { email: guess, after: cursor });
        assertForbidden(response, [['accounts']]);
        answers.push(response.body);
      }
      assert.deepEqual(answers[0], answers[1]);
    });

    test('the admin scope reaches everything, payloads included', async () => {
      const lists = await stack.gql('{ accounts { nodes { id } } connectTokens { nodes { token } } }', admin);
      assert.deepEqual(codes(lists), []);
      const ids = (lists.body.data!['accounts'] as { nodes: Array<{ id: string }> }).nodes.map((n) => n.id).sort();
      assert.deepEqual(ids, [mine, other].sort());

      const created = await stack.gql('mutation { createAccount(input: { email: "admin-made@example.com" }) { id account { emailAddresses } } }', admin);
      assert.deepEqual(codes(created), []);
      const { id, account } = created.body.data!['createAccount'] as { id: string; account: unknown };
      assert.deepEqual(account, { emailAddresses: ['admin-made@example.com'] });

      const read = await stack.gql('query($a: ID!, $b: ID!) { a: account(id: $a) { id connectTokens { token } } b: account(id: $b) { id } }', admin, {
        a: other,
        b: id,
      });
      assert.deepEqual(codes(read), []);
      stack.upstreamCalls();
    });
  });
});
