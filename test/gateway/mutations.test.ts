import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { Mutation } from '../../src/resolvers/Mutation.ts';
import { eventually } from '../helpers/eventually.ts';
import { codes, startLoggingStack, useStack } from '../helpers/stack.ts';

describe('mutations: one upstream request each, payload fields loaded only when selected', () => {
  const stack = useStack();

  it('createConnectToken sends the form once and returns the redirect URL', async () => {
    const res = await stack.gql<{ createConnectToken: { token: string; resourceUrl: string; browserRedirectUrl: string } }>(
      `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb", email: "new@example.com",
         firstName: "New", sourceSyncFlags: true }) { token resourceUrl browserRedirectUrl } }`,
    );
    assert.equal(res.body.errors, undefined);
    const { token, resourceUrl, browserRedirectUrl } = res.body.data!.createConnectToken;
    assert.equal(resourceUrl, `${stack.emulator.url}/connect_tokens/${token}`);
    assert.equal(browserRedirectUrl, `${stack.emulator.origin}/connect/${token}`);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
    const stored = stack.emulator.store.getConnectToken(token);
    assert.equal(stored?.email, 'new@example.com');
    assert.equal(stored?.first_name, 'New');
  });

  it('sends the callback URL as the gateway read it, not a form another parser might read differently', async () => {
    const res = await stack.gql<{ createConnectToken: { connectToken: { callbackUrl: string } } }>(
      `mutation { createConnectToken(input: { callbackUrl: "HTTPS://App.Example.com\\\\cb" }) { connectToken { callbackUrl } } }`,
    );
    assert.deepEqual(res.body.data?.createConnectToken.connectToken, { callbackUrl: 'https://app.example.com/cb' });
  });

  it('loads the new token only when the payload selects it', async () => {
    const res = await stack.gql<{ createConnectToken: { connectToken: { token: string; used: boolean; callbackUrl: string } } }>(
      `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token connectToken { token used callbackUrl } } }`,
    );
    assert.equal(res.body.errors, undefined);
    const token = res.body.data!.createConnectToken.connectToken.token;
    assert.deepEqual(res.body.data!.createConnectToken.connectToken, { token, used: false, callbackUrl: 'https://app.example.com/cb' });
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', `GET /connect_tokens/${token}`]);
  });

  it('createAccountConnectToken and deleteAccountConnectToken use the account’s path', async () => {
    const id = stack.emulator.store.createAccount({ email: 'owner@example.com' }).id;
    const created = await stack.gql<{ createAccountConnectToken: { token: string; connectToken: { token: string } } }>(
      `mutation ($id: ID!) { createAccountConnectToken(accountId: $id, input: { callbackUrl: "https://app.example.com/cb" }) { token connectToken { token } } }`,
      { id },
    );
    assert.equal(created.body.errors, undefined);
    const token = created.body.data!.createAccountConnectToken.token;
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${id}/connect_tokens`, `GET /accounts/${id}/connect_tokens/${token}`]);

    const deleted = await stack.gql(`mutation ($id: ID!, $t: ID!) { deleteAccountConnectToken(accountId: $id, token: $t) { success token } }`, { id, t: token });
    assert.deepEqual(deleted.body.data, { deleteAccountConnectToken: { success: true, token } });
    assert.deepEqual(stack.upstreamCalls(), [`DELETE /accounts/${id}/connect_tokens/${token}`]);
    assert.equal(stack.emulator.store.getConnectToken(token, id), undefined);
  });

  it('deleteConnectToken deletes a top-level token; a second delete is NOT_FOUND', async () => {
    const token = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }).token;
    const query = `mutation ($t: ID!) { deleteConnectToken(token: $t) { success token } }`;
    assert.deepEqual((await stack.gql(query, { t: token })).body.data, { deleteConnectToken: { success: true, token } });
    const again = await stack.gql(query, { t: token });
    assert.deepEqual(codes(again), ['NOT_FOUND']);
    assert.deepEqual(stack.upstreamCalls(), [`DELETE /connect_tokens/${token}`, `DELETE /connect_tokens/${token}`]);
  });

  it('answers success: false when the upstream declined an update or a delete, as each payload’s success says', async () => {
    const id = '0123456789abcdef01234567';
    const token = 'declined0123456789';
    stack.emulator.addFault({ path: /./, body: { success: false } });
    for (const [field, mutation] of [
      ['updateAccount', `mutation { updateAccount(id: "${id}", input: { firstName: "N" }) { success } }`],
      ['deleteAccount', `mutation { deleteAccount(id: "${id}") { success id } }`],
      ['deleteConnectToken', `mutation { deleteConnectToken(token: "${token}") { success token } }`],
      ['deleteAccountConnectToken', `mutation { deleteAccountConnectToken(accountId: "${id}", token: "${token}") { success token } }`],
    ] as const) {
      const res = await stack.gql<Record<string, { success: boolean }>>(mutation);
      assert.equal(res.body.errors, undefined, field);
      assert.equal(res.body.data![field]!.success, false, field);
    }
    assert.equal(stack.upstreamCalls().length, 4);
  });

  it('createAccount, updateAccount and deleteAccount change the upstream and return their payloads', async () => {
    const created = await stack.gql<{ createAccount: { id: string; resourceUrl: string; account: { emailAddresses: string[]; firstName: string } } }>(
      `mutation { createAccount(input: { email: "made@example.com", firstName: "Made" }) { id resourceUrl account { emailAddresses firstName } } }`,
    );
    assert.equal(created.body.errors, undefined);
    const { id, resourceUrl, account } = created.body.data!.createAccount;
    assert.equal(resourceUrl, `${stack.emulator.url}/accounts/${id}`);
    assert.deepEqual(account, { emailAddresses: ['made@example.com'], firstName: 'Made' });
    assert.deepEqual(stack.upstreamCalls(), ['POST /accounts', `GET /accounts/${id}`]);

    const updated = await stack.gql(
      `mutation ($id: ID!) { updateAccount(id: $id, input: { lastName: "Changed" }) { success account { firstName lastName } } }`,
      { id },
    );
    assert.deepEqual(updated.body.data, { updateAccount: { success: true, account: { firstName: 'Made', lastName: 'Changed' } } });
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${id}`, `GET /accounts/${id}`]);

    const deleted = await stack.gql(`mutation ($id: ID!) { deleteAccount(id: $id) { success id } }`, { id });
    assert.deepEqual(deleted.body.data, { deleteAccount: { success: true, id } });
    assert.deepEqual(stack.upstreamCalls(), [`DELETE /accounts/${id}`]);
    assert.equal(stack.emulator.store.getAccount(id), undefined);
  });

  it('reads an account changed earlier in the same operation afresh', async () => {
    const id = stack.emulator.store.createAccount({ email: 'twice@example.com', first_name: 'Old' }).id;
    const res = await stack.gql(
      `mutation ($id: ID!) {
        first: updateAccount(id: $id, input: { firstName: "Middle" }) { account { firstName } }
        second: updateAccount(id: $id, input: { firstName: "New" }) { account { firstName } } }`,
      { id },
    );
    assert.deepEqual(res.body.data, { first: { account: { firstName: 'Middle' } }, second: { account: { firstName: 'New' } } });
  });

  /**
   * One mutation updating an account twice (its first name Middle, then New), each payload selecting
   * `selection`; the account holds a used connect token, which embeds it (`$t` in the selection).
   */
  async function updateTwiceWithUsedToken(name: string, selection: string) {
    const { store } = stack.emulator;
    const id = store.createAccount({ email: `${name}@example.com`, first_name: 'Old' }).id;
    const { token } = store.createConnectToken(id, { callback_url: 'https://app.example.com/cb', email: `${name}@example.com` });
    store.useConnectToken(token, { server: 'imap.example.com', username: name });
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `mutation ($id: ID!${selection.includes('$t') ? ', $t: ID!' : ''}) {
        first: updateAccount(id: $id, input: { firstName: "Middle" }) { ${selection} }
        second: updateAccount(id: $id, input: { firstName: "New" }) { ${selection} } }`,
      { id, t: token },
    );
    return { id, token, res };
  }

  it('reads afresh the connect tokens that embed an account changed earlier in the same operation', async () => {
    const { id, res } = await updateTwiceWithUsedToken('embedded', `account { firstName connectTokens { account { firstName } } }`);
    const expected = (firstName: string) => ({ account: { firstName, connectTokens: [{ account: { firstName } }] } });
    assert.deepEqual(res.body.data, { first: expected('Middle'), second: expected('New') });
    // Each update: the write, the account, its tokens (the used one embeds the account, so no further read).
    const reads = [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`];
    assert.deepEqual(stack.upstreamCalls().sort(), [`POST /accounts/${id}`, ...reads, `POST /accounts/${id}`, ...reads].sort());
  });

  it('reads afresh a connect token asked for by name whose embedded account was changed earlier in the same operation', async () => {
    // The token loaded for the first update embeds the account as it was then: the second update must not reuse it.
    const { id, token, res } = await updateTwiceWithUsedToken('named', `account { connectToken(token: $t) { account { firstName } } }`);
    const expected = (firstName: string) => ({ account: { connectToken: { account: { firstName } } } });
    assert.deepEqual(res.body.data, { first: expected('Middle'), second: expected('New') });
    // The account itself is not read: its token, asked for by name, needs only its id.
    const read = `GET /accounts/${id}/connect_tokens/${token}`;
    assert.deepEqual(stack.upstreamCalls(), [`POST /accounts/${id}`, read, `POST /accounts/${id}`, read]);
  });

  for (const [name, mutation] of [
    ['a javascript: callback URL', 'mutation { createConnectToken(input: { callbackUrl: "javascript:alert(1)" }) { token } }'],
    ['a data: callback URL', 'mutation { createConnectToken(input: { callbackUrl: "data:text/html,<script>alert(1)</script>" }) { token } }'],
    ['a file: callback URL', 'mutation { createConnectToken(input: { callbackUrl: "file:///etc/passwd" }) { token } }'],
    ['a source callback URL that is not http(s)', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com", sourceCallbackUrl: "myapp://synced" }) { token } }'],
    ['an email that is only an @', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com", email: "@" }) { token } }'],
    ['an account whose email is only a domain', 'mutation { createAccount(input: { email: "@gmail.com" }) { id } }'],
    ['a relative callback URL', 'mutation { createConnectToken(input: { callbackUrl: "/cb" }) { token } }'],
    // The URL parser would strip these before judging; the raw string is what would be forwarded.
    ['a callback URL with a NUL first', 'mutation { createConnectToken(input: { callbackUrl: "\\u0000https://a.example.com" }) { token } }'],
    ['a callback URL with a leading space', 'mutation { createConnectToken(input: { callbackUrl: " https://a.example.com" }) { token } }'],
    ['a callback URL with a header-like line', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com/\\r\\nX-Injected: 1" }) { token } }'],
    ['a callback URL with a C1 control', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com/\\u0085" }) { token } }'],
    ['a callback URL with a no-break space', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com/\\u00a0x" }) { token } }'],
    ['a callback URL with a zero-width space in its host', 'mutation { createConnectToken(input: { callbackUrl: "https://exa\\u200bmple.com/cb" }) { token } }'],
    // The upstream lists back what it keeps: a few huge names once pushed the token list past what an answer may take.
    ['a first name over 256 characters', `mutation { createConnectToken(input: { callbackUrl: "https://a.example.com/cb", firstName: "${'n'.repeat(257)}" }) { token } }`],
    ['an account email over 254 characters', `mutation { createAccount(input: { email: "${'a'.repeat(243)}@example.com" }) { id } }`],
    ['an email that is not one', 'mutation { createConnectToken(input: { callbackUrl: "https://a.example.com", email: "nope" }) { token } }'],
    ['an account without an email address', 'mutation { createAccount(input: { email: "" }) { id } }'],
    ['an update that changes nothing', 'mutation { updateAccount(id: "0123456789abcdef01234567", input: {}) { success } }'],
    // null leaves a name as it is (the schema's word): an input of nulls only changes nothing either.
    ['an update whose names are null', 'mutation { updateAccount(id: "0123456789abcdef01234567", input: { firstName: null, lastName: null }) { success } }'],
    ['an id that is a dot segment', 'mutation { deleteAccount(id: "..") { success } }'],
    // Encoded it is one segment, but a proxy that decodes %2F before routing would send DELETE /accounts/….
    ['a connect token with a slash', 'mutation { deleteConnectToken(token: "../accounts/0123456789abcdef01234567") { success } }'],
    ['an id with a backslash', 'mutation { deleteAccount(id: "..\\\\0123456789abcdef01234567") { success } }'],
  ] as const) {
    it(`refuses ${name} with BAD_USER_INPUT and no upstream request`, async () => {
      const res = await stack.gql(mutation);
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      assert.deepEqual(stack.upstreamCalls(), []);
    });
  }

  for (const [name, input, said] of [
    // The URL parser turns it into U+FFFD, so what would be sent is not what was given.
    ['a callback URL with an unpaired surrogate', { callbackUrl: 'https://app.example.com/cb\ud800' }, /input\.callbackUrl is not valid text: it contains an unpaired UTF-16 surrogate/],
    ['a name with an unpaired surrogate', { callbackUrl: 'https://app.example.com/cb', lastName: 'x\udc00' }, /input\.lastName is not valid text/],
    ['a name with a NUL', { callbackUrl: 'https://app.example.com/cb', firstName: 'a\u0000b' }, /input\.firstName must not contain control characters/],
    ['a name with a line break', { callbackUrl: 'https://app.example.com/cb', lastName: 'Lovelace\nX-Injected: 1' }, /input\.lastName must not contain control characters/],
    ['a name with a terminal escape sequence', { callbackUrl: 'https://app.example.com/cb', lastName: '\u001b[2JAda' }, /input\.lastName must not contain control characters/],
    ['a name with a Unicode line separator', { callbackUrl: 'https://app.example.com/cb', firstName: 'Ada\u2028X-Injected: 1' }, /input\.firstName must not contain control characters/],
    ['a name with a right-to-left override', { callbackUrl: 'https://app.example.com/cb', firstName: 'Ada\u202eecilA' }, /input\.firstName must not contain control characters/],
    ['a name with a directional isolate', { callbackUrl: 'https://app.example.com/cb', lastName: 'Ada\u2067ecilA\u2069' }, /input\.lastName must not contain control characters/],
    ['an email with a control character', { callbackUrl: 'https://app.example.com/cb', email: 'a\u0000b@example.com' }, /input\.email must be an email address/],
    ['an email with a zero-width space', { callbackUrl: 'https://app.example.com/cb', email: 'a\u200bb@example.com' }, /input\.email must be an email address/],
    // An address copied from a page or a mail with the line break after it: told what is wrong with it, not that
    // ada@example.com is no email address (nor that it may be only @example.com, which it is not told to be).
    ['an email copied with a line break after it, saying so', { callbackUrl: 'https://app.example.com/cb', email: 'ada@example.com\n' }, /^input\.email must be an email address with no spaces, control or invisible characters \(copied with one around it\?\)$/],
    ['an email with a space before it, saying so', { callbackUrl: 'https://app.example.com/cb', email: ' ada@example.com' }, /^input\.email must be an email address with no spaces, control or invisible characters \(copied with one around it\?\)$/],
    // Named as the caller named it, not as the upstream's parameter.
    ['a first name over 256 characters, by its input name', { callbackUrl: 'https://app.example.com/cb', firstName: 'n'.repeat(257) }, /input\.firstName is 257 UTF-16 code units long, more than the 256 accepted/],
    ['an email over 254 characters', { callbackUrl: 'https://app.example.com/cb', email: `${'a'.repeat(243)}@example.com` }, /input\.email is 255 UTF-16 code units long, more than the 254 accepted/],
    // 1,029 characters given, 9,029 as the URL that would be sent.
    ['a callback URL that percent-encoding takes over 4096 characters', { callbackUrl: `https://app.example.com/cb?n=${'€'.repeat(1000)}` }, /input\.callbackUrl is 9029 characters once written as a URL/],
    // 4,092 characters given, one over 4,096 as the URL that would be sent (é as %C3%A9).
    ['a callback URL that percent-encoding takes one character over 4096', { callbackUrl: `https://app.example.com/cb?n=${'a'.repeat(4062)}é` }, /input\.callbackUrl is 4097 characters once written as a URL/],
    // An absolute URL all the same: told that its scheme is what is refused, not that it is no absolute URL.
    ['a javascript: callback URL, saying why', { callbackUrl: 'javascript:alert(1)' }, /^input\.callbackUrl must not be a URL a browser runs or reads locally \(javascript:\): send an http\(s\) URL or an app's own scheme$/],
    ['a data: callback URL, saying why', { callbackUrl: 'DATA:text/html,x' }, /^input\.callbackUrl must not be a URL a browser runs or reads locally \(data:\)/],
    ['a relative callback URL, saying why', { callbackUrl: '/cb' }, /^input\.callbackUrl must be an absolute URL \(http\(s\), or an app's own scheme\)$/],
  ] as const) {
    it(`refuses ${name} with BAD_USER_INPUT and no upstream request`, async () => {
      const res = await stack.gql(`mutation ($input: CreateConnectTokenInput!) { createConnectToken(input: $input) { token } }`, { input });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      assert.match(res.body.errors![0]!.message, said);
      // The input it names, for a form to mark without reading the message.
      assert.equal(res.body.errors![0]!.extensions!['field'], /^(input\.\w+)/.exec(res.body.errors![0]!.message)![1]);
      assert.deepEqual(stack.upstreamCalls(), []);
    });
  }

  it('keeps invisible joiners and direction marks in names (Persian and Indic scripts write names with them), and refuses control characters in an update too', async () => {
    const name = 'مهر\u200cناز \u200fRay';
    const created = await stack.gql<{ createConnectToken: { connectToken: { firstName: string } } }>(
      'mutation ($name: String) { createConnectToken(input: { callbackUrl: "https://app.example.com/cb", firstName: $name }) { connectToken { firstName } } }',
      { name },
    );
    assert.equal(created.body.errors, undefined);
    assert.equal(created.body.data!.createConnectToken.connectToken.firstName, name);
    stack.emulator.clearRequests();
    const update = await stack.gql('mutation { updateAccount(id: "0123456789abcdef01234567", input: { lastName: "a\\tb" }) { success } }');
    assert.deepEqual(codes(update), ['BAD_USER_INPUT']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('takes a name of 256 characters and an email address of 254, the longest each may be', async () => {
    const input = { callbackUrl: 'https://app.example.com/cb', firstName: 'n'.repeat(256), email: `${'a'.repeat(242)}@example.com` };
    const created = await stack.gql<{ createConnectToken: { connectToken: { firstName: string; email: string } } }>(
      'mutation ($input: CreateConnectTokenInput!) { createConnectToken(input: $input) { connectToken { firstName email } } }',
      { input },
    );
    assert.equal(created.body.errors, undefined);
    assert.deepEqual(created.body.data!.createConnectToken.connectToken, { firstName: input.firstName, email: input.email });
  });

  it('takes an app scheme callback and a domain hint as the email (@gmail.com, as the API documents), through to the connect page', async () => {
    const res = await stack.gql<{ createConnectToken: { token: string; browserRedirectUrl: string; connectToken: { email: string; callbackUrl: string } } }>(
      'mutation { createConnectToken(input: { callbackUrl: "cio-api-auth://connected", email: "@gmail.com" }) { token browserRedirectUrl connectToken { email callbackUrl } } }',
    );
    assert.equal(res.body.errors, undefined);
    const created = res.body.data!.createConnectToken;
    assert.deepEqual(created.connectToken, { email: '@gmail.com', callbackUrl: 'cio-api-auth://connected' });
    // The connect page asks for the address (the hint is no mailbox), suggesting the provider's server.
    const page = await (await fetch(created.browserRedirectUrl)).text();
    assert.match(page, /<input type="text" id="email" name="email" value="" required maxlength="254" inputmode="email" autocomplete="email" autocapitalize="none" spellcheck="false" placeholder="you@gmail.com">/);
    assert.match(page, /id="server" name="server" value="imap\.gmail\.com"/);
    const submission = /name="submission" value="([0-9a-f]+)"/.exec(page)![1]!;
    const done = await fetch(created.browserRedirectUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ submission, email: 'ada@gmail.com', server: 'imap.gmail.com', port: '993', use_ssl: '1', username: 'ada', password: 'x' }),
    });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), `cio-api-auth://connected?contextio_token=${created.token}`);
    const used = await stack.gql<{ connectToken: { used: boolean; account: { emailAddresses: string[] } } }>(`{ connectToken(token: "${created.token}") { used account { emailAddresses } } }`);
    assert.deepEqual(used.body.data!.connectToken, { used: true, account: { emailAddresses: ['ada@gmail.com'] } });
  });

  it('never retries a POST the upstream failed', async () => {
    stack.emulator.addFault({ method: 'POST', path: '/connect_tokens', status: 503, retryAfter: 0 });
    const res = await stack.gql(`mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }`);
    assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens']);
  });
});

describe('a mutation of several writes: all checked before the first is made', () => {
  const stack = useStack();

  /** Asserts the whole operation refused with `code` for the field at `key`, and nothing sent upstream. */
  function assertRefusedWhole(res: Awaited<ReturnType<typeof stack.gql>>, status: number, code: string, key: string, message: RegExp): void {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.data, undefined);
    assert.equal(res.body.errors!.length, 1);
    const [error] = res.body.errors!;
    assert.equal(error!.extensions!['code'], code);
    assert.deepEqual(error!.path, [key]);
    assert.match(error!.message, message);
    assert.match(error!.message, /\(no write of the operation was made\)$/);
    assert.equal(error!.extensions!['http'], undefined);
    assert.deepEqual(stack.upstreamCalls(), []);
  }

  it('refuses the whole operation, HTTP 400, when a later field has bad input: the earlier write is not made', async () => {
    stack.emulator.clearRequests();
    const accounts = stack.emulator.store.listAccounts().length;
    const res = await stack.gql(`mutation {
      a: createAccount(input: { email: "ok@example.com" }) { id }
      b: createAccount(input: { email: "not-an-email" }) { id }
    }`);
    assertRefusedWhole(res, 400, 'BAD_USER_INPUT', 'b', /^input\.email must be an email address/);
    assert.equal(res.body.errors![0]!.extensions!['field'], 'input.email');
    // Located at the write refused, as a field's error is: an IDE marks it.
    assert.deepEqual((res.body.errors![0] as { locations?: unknown }).locations, [{ line: 3, column: 7 }]);
    assert.equal(stack.emulator.store.listAccounts().length, accounts);
  });

  it('checks the ids each write puts in its URL, and the writes of fragments', async () => {
    stack.emulator.clearRequests();
    const res = await stack.gql(`mutation {
      ...Deletes
      c: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }
    }
    fragment Deletes on Mutation { a: deleteConnectToken(token: "abc") { success } b: deleteConnectToken(token: "..") { success } }`);
    assertRefusedWhole(res, 400, 'BAD_USER_INPUT', 'b', /^"\.\." is not a valid id or token/);
  });

  it('leaves out a field @skip leaves out, and lets every write run when all pass', async () => {
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `mutation ($bad: Boolean!) {
        a: createConnectToken(input: { callbackUrl: "https://app.example.com/a" }) { token }
        b: createAccount(input: { email: "nope" }) @skip(if: $bad) { id }
        c: createConnectToken(input: { callbackUrl: "https://app.example.com/c" }) { token }
      }`,
      { bad: true },
    );
    assert.deepEqual(codes(res), []);
    assert.deepEqual(Object.keys(res.body.data!), ['a', 'c']);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /connect_tokens']);
  });

  it("refuses the whole operation when a later field's own checks fail unexpectedly (a bug): the earlier write is not made", async (t) => {
    // The schema holds the resolvers it was built with; the precheck looks each up as it runs, so this
    // stands for a bug it meets before the operation, and the field would meet again as it ran.
    const deleteAccount = Mutation.deleteAccount;
    Mutation.deleteAccount = () => {
      throw new TypeError("Cannot read properties of undefined (reading 'fieldName')");
    };
    t.after(() => {
      Mutation.deleteAccount = deleteAccount;
    });
    stack.emulator.clearRequests();
    const res = await stack.gql(`mutation {
      a: createAccount(input: { email: "first@example.com" }) { id }
      b: deleteAccount(id: "some-account") { success }
    }`);
    assert.equal(res.status, 500, JSON.stringify(res.body));
    assert.equal(res.body.data, undefined, JSON.stringify(res.body));
    assert.deepEqual(res.body.errors, [{ message: 'Unexpected error.', locations: [{ line: 3, column: 7 }], path: ['b'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('logs such a failed check as any unexpected error, with the error the check met and its path; a GraphQLError of no gateway code, or of a code the contract does not name, is one too', async (t) => {
    const logging = await startLoggingStack('info');
    const deleteAccount = Mutation.deleteAccount;
    t.after(async () => {
      Mutation.deleteAccount = deleteAccount;
      await logging.close();
    });
    const foreignCode = new GraphQLError('a library that names its own codes', { extensions: { code: 'LIBRARY_SPECIFIC' } });
    for (const thrown of [new TypeError("Cannot read properties of undefined (reading 'fieldName')"), new GraphQLError('a check that went wrong'), foreignCode]) {
      Mutation.deleteAccount = () => {
        throw thrown;
      };
      logging.lines.length = 0;
      const res = await logging.gql(`mutation {
        a: createAccount(input: { email: "first@example.com" }) { id }
        b: deleteAccount(id: "some-account") { success }
      }`);
      assert.equal(res.status, 500, JSON.stringify(res.body));
      assert.deepEqual(res.body.errors, [{ message: 'Unexpected error.', locations: [{ line: 3, column: 9 }], path: ['b'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
      assert.deepEqual(logging.upstreamCalls(), []);
      await eventually(() => logging.lines.some((line) => line.includes('"message":"unexpected error"')));
      const logged = logging.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['message'] === 'unexpected error');
      assert.deepEqual(logged.map((entry) => [entry['path'], entry['error']]), [['b', `${thrown.name}: ${thrown.message}`]]);
    }
  });

  it('still runs the writes in order when the upstream fails one: that failure shows only as it runs', async () => {
    stack.emulator.clearRequests();
    stack.emulator.addFault({ method: 'POST', path: '/accounts', status: 400, times: 1 });
    const res = await stack.gql(`mutation {
      a: createConnectToken(input: { callbackUrl: "https://app.example.com/a" }) { token }
      b: createAccount(input: { email: "fine@example.com" }) { id }
    }`);
    assert.equal(res.status, 200);
    assert.equal(res.body.data, null); // the payloads are non-null: b's error blanks the answer
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', 'POST /accounts']);
  });

  it('reports the writes made before the one that failed when the answer loses them: each payload, under extensions.writesMade', async () => {
    stack.emulator.clearRequests();
    const account = stack.emulator.store.createAccount({ email: 'renamed@example.com' }).id;
    const tokensBefore = new Set(stack.emulator.store.listConnectTokens(null).map((t) => t.token));
    stack.emulator.addFault({ method: 'POST', path: '/accounts', status: 500, times: 1 });
    const res = await stack.gql(
      `mutation ($account: ID!) {
        link: createConnectToken(input: { callbackUrl: "https://app.example.com/a" }) { token connectToken { used } }
        rename: updateAccount(id: $account, input: { firstName: "Ada" }) { success }
        b: createAccount(input: { email: "fine@example.com" }) { id }
        c: createAccount(input: { email: "never@example.com" }) { id }
      }`,
      { account },
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.data, null);
    assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
    assert.deepEqual(res.body.errors![0]!.path, ['b']);
    // Every scalar of each payload, whatever was selected: a token's redirect URL is what a caller needs next.
    const created = stack.emulator.store.listConnectTokens(null).filter((t) => !tokensBefore.has(t.token));
    assert.equal(created.length, 1);
    const token = created[0]!.token;
    assert.deepEqual(res.body.extensions?.['writesMade'], [
      {
        path: ['link'],
        field: 'createConnectToken',
        payload: { token, resourceUrl: `${stack.emulator.url}/connect_tokens/${token}`, browserRedirectUrl: `${stack.emulator.origin}/connect/${token}` },
      },
      { path: ['rename'], field: 'updateAccount', payload: { success: true } },
    ]);
    assert.equal(stack.emulator.store.getAccount(account)?.first_name, 'Ada');
    // b's own failure says what it may have done; c never ran.
    assert.deepEqual(stack.upstreamCalls(), ['POST /connect_tokens', `GET /connect_tokens/${token}`, `POST /accounts/${account}`, 'POST /accounts']);
  });

  it('reports no writes when the answer keeps them: a later field read failing leaves data', async () => {
    stack.emulator.clearRequests();
    stack.emulator.addFault({ method: 'GET', path: /^\/connect_tokens\//, status: 500, times: 1 });
    const res = await stack.gql(`mutation { a: createConnectToken(input: { callbackUrl: "https://app.example.com/a" }) { token connectToken { used } } }`);
    assert.notEqual(res.body.data, null);
    assert.deepEqual(codes(res), ['UPSTREAM_ERROR']);
    assert.equal(res.body.extensions?.['writesMade'], undefined);
  });
});

describe('a write begun once its operation is out of time', () => {
  // The operation's deadline passes while the first write's payload is being read; the upstream's own deadline
  // for that read is later (it began once the write, held 300 ms, was answered).
  const stack = useStack({ gateway: { upstreamTimeoutMs: 2_000, operationTimeoutMs: 2_100 } });

  it('is not sent, and says so: not that it waited for a connection', async () => {
    const id = stack.emulator.store.createAccount({ email: 'late@example.com' }).id;
    stack.emulator.addFault({ method: 'POST', path: `/accounts/${id}`, answerAfterMs: 300 });
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${id}`, hang: true });
    stack.emulator.clearRequests();
    const res = await stack.gql(`mutation {
      a: updateAccount(id: "${id}", input: { firstName: "Late" }) { success account { firstName } }
      b: createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token }
    }`);
    const late = res.body.errors?.find((error) => error.path?.[0] === 'b');
    assert.equal(late?.extensions?.['code'], 'UPSTREAM_TIMEOUT', JSON.stringify(res.body));
    assert.equal(late?.message, 'The operation did not complete within 2100 ms (the request creating a connect token was not sent: the operation had been stopped before it began, so it did not take effect)');
    // The write was never made (the hung read is logged by the emulator only once the gateway has left it).
    assert.deepEqual(stack.emulator.store.listConnectTokens(), []);
    assert.equal(stack.upstreamCalls().includes('POST /connect_tokens'), false);
  });
});
