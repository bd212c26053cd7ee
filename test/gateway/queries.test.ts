import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { codes, postGraphQL, startTestGateway, useStack, type GraphQLResponse } from '../helpers/stack.ts';

describe('queries against the emulator', () => {
  const stack = useStack();

  it('reads an account with camelCase fields, DateTime timestamps and null for unset ones', async () => {
    const account = stack.emulator.store.createAccount({
      email: 'jane@example.com',
      first_name: 'Jane',
      last_name: 'Doe',
      username: 'jane_1',
      created: 1_389_904_874,
      nb_messages: 42,
      nb_files: 7,
      sources: [{ label: 'jane::imap.example.com', server: 'imap.example.com', username: 'jane', port: 993, use_ssl: true, status: 'OK' }],
    });
    const res = await stack.gql(
      `query ($id: ID!) { account(id: $id) { id username createdAt suspendedAt passwordExpiredAt emailAddresses firstName lastName
         messageCount fileCount sources { label email username server port useSsl type status authenticationType } } }`,
      { id: account.id },
    );
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.errors, undefined);
    assert.deepEqual(res.body.data, {
      account: {
        id: account.id,
        username: 'jane_1',
        createdAt: '2014-01-16T20:41:14.000Z',
        suspendedAt: null,
        passwordExpiredAt: null,
        emailAddresses: ['jane@example.com'],
        firstName: 'Jane',
        lastName: 'Doe',
        messageCount: 42,
        fileCount: 7,
        sources: [
          {
            label: 'jane::imap.example.com',
            email: account.sources[0]!.email ?? null,
            username: 'jane',
            server: 'imap.example.com',
            port: 993,
            useSsl: true,
            type: 'imap',
            status: 'OK',
            authenticationType: account.sources[0]!.authentication_type ?? null,
          },
        ],
      },
    });
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${account.id}`]);
  });

  it('lists the address an account was created with, source or not, as emailAddresses and the email filter say', async () => {
    // A consumer reads the descriptions to know what to show: "the addresses of the account's sources" would
    // promise an empty list for an account created with createAccount, which starts with no source.
    const { id } = stack.emulator.store.createAccount({ email: 'sourceless@example.com' });
    const res = await stack.gql<{ account: unknown; accounts: { nodes: unknown[] }; account_t: { fields: { name: string; description: string }[] }; filter_t: { inputFields: { name: string; description: string }[] } }>(
      `query ($id: ID!) { account(id: $id) { emailAddresses sources { label } } accounts(filter: { email: "sourceless@example.com" }) { nodes { id } }
         account_t: __type(name: "Account") { fields { name description } } filter_t: __type(name: "AccountFilter") { inputFields { name description } } }`,
      { id },
    );
    assert.deepEqual(res.body.errors, undefined);
    assert.deepEqual(res.body.data?.account, { emailAddresses: ['sourceless@example.com'], sources: [] });
    assert.deepEqual(res.body.data?.accounts.nodes, [{ id }]);
    const emailAddresses = res.body.data!.account_t.fields.find((f) => f.name === 'emailAddresses')!.description;
    const emailFilter = res.body.data!.filter_t.inputFields.find((f) => f.name === 'email')!.description;
    assert.match(emailAddresses, /created with/);
    assert.doesNotMatch(emailFilter, /among their sources/);
  });

  it('answers null for names the account was given none of (the API sends ""), as connect tokens do', async () => {
    const account = stack.emulator.store.createAccount({ email: 'nameless@example.com' });
    const { token } = stack.emulator.store.createConnectToken(account.id, { callback_url: 'https://app.example.com/cb', first_name: '' });
    const res = await stack.gql(
      `query ($id: ID!, $t: ID!) { account(id: $id) { firstName lastName connectToken(token: $t) { firstName lastName } } }`,
      { id: account.id, t: token },
    );
    assert.deepEqual(res.body, { data: { account: { firstName: null, lastName: null, connectToken: { firstName: null, lastName: null } } } });
  });

  it('maps a source status it does not know to UNKNOWN instead of failing the response', async () => {
    const account = stack.emulator.store.createAccount({ email: 'x@example.com', sources: [{ label: 'x::a', status: 'SOMETHING_NEW' }] });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { sources { label status } } }`, { id: account.id });
    assert.deepEqual(res.body.data, { account: { sources: [{ label: 'x::a', status: 'UNKNOWN' }] } });
  });

  it('says why a source is not OK as the upstream says it (status_message), and null when it says nothing', async () => {
    const account = stack.emulator.store.createAccount({
      email: 'why@example.com',
      sources: [{ label: 'why::a', status: 'INVALID_CREDENTIALS', status_message: 'The IMAP server refused the password' }, { label: 'why::b', status: 'OK' }],
    });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { sources { label status statusMessage } } }`, { id: account.id });
    assert.deepEqual(res.body, {
      data: {
        account: {
          sources: [
            { label: 'why::a', status: 'INVALID_CREDENTIALS', statusMessage: 'The IMAP server refused the password' },
            { label: 'why::b', status: 'OK', statusMessage: null },
          ],
        },
      },
    });
  });

  it('shows a source whose upstream sends no status with status null, not UNKNOWN (a status it does not know)', async () => {
    const id = '52daabefcea6f9c35a4a0996';
    stack.emulator.addFault({ path: `/accounts/${id}`, method: 'GET', times: 1, body: { id, created: 1, email_addresses: [], sources: [{ label: 'x::a' }] } });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { sources { label status } } }`, { id });
    assert.deepEqual(res.body, { data: { account: { sources: [{ label: 'x::a', status: null }] } } });
  });

  it('answers an unknown account with NOT_FOUND and where the upstream said so', async () => {
    const res = await stack.gql(`{ account(id: "0123456789abcdef01234567") { id } }`);
    assert.equal(res.body.data?.['account'], null);
    assert.deepEqual(codes(res), ['NOT_FOUND']);
    assert.deepEqual(res.body.errors?.[0]?.extensions?.['upstream'], {
      status: 404,
      method: 'GET',
      path: '/accounts/0123456789abcdef01234567',
    });
  });

  it('pages through accounts with first+1 upstream items, opaque cursors and hasNextPage', async () => {
    const ids = Array.from({ length: 5 }, (_, i) => stack.emulator.store.createAccount({ email: `u${i}@example.com` }).id);
    const page = `query ($after: String) { accounts(first: 2, after: $after) {
      edges { cursor node { id } } nodes { id } pageInfo { hasNextPage endCursor hasPreviousPage startCursor } } }`;
    type PageInfo = { hasNextPage: boolean; endCursor: string | null; hasPreviousPage: boolean; startCursor: string | null };
    type Page = { accounts: { edges: { cursor: string; node: { id: string } }[]; nodes: { id: string }[]; pageInfo: PageInfo } };
    const seen: string[] = [];
    let after: string | null = null;
    const pages: boolean[] = [];
    for (;;) {
      const res: Awaited<ReturnType<typeof stack.gql<Page>>> = await stack.gql<Page>(page, { after });
      assert.equal(res.body.errors, undefined);
      const conn = res.body.data!.accounts;
      assert.deepEqual(conn.nodes, conn.edges.map((e) => e.node));
      seen.push(...conn.nodes.map((n) => n.id));
      pages.push(conn.pageInfo.hasNextPage);
      // Relay's other two: the first edge's cursor, and whether this page was asked for after another.
      assert.equal(conn.pageInfo.startCursor, conn.edges[0]!.cursor);
      assert.equal(conn.pageInfo.endCursor, conn.edges.at(-1)!.cursor);
      assert.equal(conn.pageInfo.hasPreviousPage, after !== null);
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    assert.deepEqual(seen, ids);
    assert.deepEqual(pages, [true, true, false]);
    const queries = stack.emulator.requests.map((r) => r.query);
    assert.deepEqual(queries.map((q) => new URLSearchParams(q).get('limit')), ['3', '3', '3']);
    assert.deepEqual(queries.map((q) => new URLSearchParams(q).get('offset')), ['0', '2', '4']);
  });

  it('asks for exactly 100 at first: 100 and calls a full page hasNextPage, even with none after it, as hasNextPage’s description says', async () => {
    for (let i = 0; i < 100; i++) stack.emulator.store.createAccount({ email: `p${i}@example.com` });
    type Page = { accounts: { nodes: unknown[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
    const res = await stack.gql<Page>(`{ accounts(first: 100) { nodes { id } pageInfo { hasNextPage endCursor } } }`);
    assert.equal(res.body.data?.accounts.nodes.length, 100);
    assert.equal(res.body.data?.accounts.pageInfo.hasNextPage, true);
    assert.equal(new URLSearchParams(stack.emulator.requests[0]!.query).get('limit'), '100');
    const next = await stack.gql<Page & { pageInfo_t: { fields: { name: string; description: string }[] } }>(
      `query ($after: String) { accounts(first: 100, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
         pageInfo_t: __type(name: "PageInfo") { fields { name description } } }`,
      { after: res.body.data!.accounts.pageInfo.endCursor },
    );
    assert.deepEqual(next.body.data?.accounts, { nodes: [], pageInfo: { hasNextPage: false, endCursor: null } });
    // A consumer told "true when another page follows" would show a "more" button that leads to nothing.
    const hasNextPage = next.body.data!.pageInfo_t.fields.find((f) => f.name === 'hasNextPage')!.description;
    assert.match(hasNextPage, /first: 100/);
    assert.match(hasNextPage, /empty/);
  });

  it('pages 20 at a time when first is omitted (the contract’s default), accounts and connect tokens alike', async () => {
    const { store } = stack.emulator;
    for (let i = 0; i < 25; i++) store.createAccount({ email: `d${i}@example.com` });
    for (let i = 0; i < 25; i++) store.createConnectToken(null, { callback_url: 'https://app.example/cb' });
    stack.emulator.clearRequests();
    type Page = { nodes: unknown[]; pageInfo: { hasNextPage: boolean } };
    const res = await stack.gql<{ accounts: Page; connectTokens: Page }>(
      `{ accounts { nodes { id } pageInfo { hasNextPage } } connectTokens { nodes { token } pageInfo { hasNextPage } } }`,
    );
    assert.deepEqual(res.body.errors, undefined);
    assert.deepEqual([res.body.data?.accounts.nodes.length, res.body.data?.accounts.pageInfo.hasNextPage], [20, true]);
    assert.deepEqual([res.body.data?.connectTokens.nodes.length, res.body.data?.connectTokens.pageInfo.hasNextPage], [20, true]);
    const listed = stack.emulator.requests.find((r) => r.path === '/accounts')!;
    assert.equal(new URLSearchParams(listed.query).get('limit'), '21');
  });

  it('takes a cursor with the filter as written: none and `{}` are one, an address spelt otherwise is another', async () => {
    for (const email of ['Case@example.com', 'other@example.com']) stack.emulator.store.createAccount({ email });
    const page = `query ($filter: AccountFilter, $after: String) { accounts(filter: $filter, first: 1, after: $after) { pageInfo { endCursor } } }`;
    type Page = { accounts: { pageInfo: { endCursor: string } } };
    const unfiltered = (await stack.gql<Page>(page, {})).body.data!.accounts.pageInfo.endCursor;
    assert.deepEqual(codes(await stack.gql(page, { filter: {}, after: unfiltered })), []);
    const spelt = (await stack.gql<Page>(page, { filter: { email: 'Case@example.com' } })).body.data!.accounts.pageInfo.endCursor;
    assert.deepEqual(codes(await stack.gql(page, { filter: { email: 'Case@example.com' }, after: spelt })), []);
    stack.emulator.clearRequests();
    assert.deepEqual(codes(await stack.gql(page, { filter: { email: 'case@example.com' }, after: spelt })), ['BAD_USER_INPUT']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('pages a filtered list by position: an account that comes to match before a cursor shows an account again, as the list’s description says', async () => {
    const { store } = stack.emulator;
    const [first, other, third, fourth] = ['shared', 'other', 'shared', 'shared'].map((name) => store.createAccount({ email: `${name}@example.com` }).id);
    const page = `query ($after: String) { accounts(filter: { email: "shared@example.com" }, first: 2, after: $after) { nodes { id } pageInfo { endCursor } } }`;
    type Page = { accounts: { nodes: { id: string }[]; pageInfo: { endCursor: string } } };
    const ids = (res: { body: { data?: Page | null } }) => res.body.data!.accounts.nodes.map((node) => node.id);
    const before = await stack.gql<Page>(page, {});
    assert.deepEqual(ids(before), [first, third]);
    // The account between them connects a mailbox of that address, and joins the list before the cursor.
    const { token } = store.createConnectToken(other!, { callback_url: 'https://app.example.com/cb', email: 'shared@example.com' });
    store.useConnectToken(token, { server: 'imap.example.com' });
    const next = await stack.gql<Page>(page, { after: before.body.data!.accounts.pageInfo.endCursor });
    assert.deepEqual(ids(next), [third, fourth]);
    // What a client paging such a list reads in the schema (and the IDE) tells it so, not of deletions alone.
    const described = await stack.gql<{ __type: { fields: { name: string; description: string }[] } }>(`{ __type(name: "Query") { fields { name description } } }`);
    const accounts = described.body.data!.__type.fields.find((field) => field.name === 'accounts')!.description;
    assert.match(accounts, /deleted/);
    assert.match(accounts, /join[^.]*show[^.]*again/s, 'the description says that accounts joining a filtered list before a cursor are shown again');
  });

  it('continues a filtered list only with its own cursors: another filter’s, or the unfiltered list’s, is BAD_USER_INPUT', async () => {
    for (let i = 0; i < 3; i++) {
      stack.emulator.store.createAccount({ email: `ok${i}@example.com`, sources: [{ label: 'a', status: 'OK' }] });
      stack.emulator.store.createAccount({ email: `bad${i}@example.com`, sources: [{ label: 'b', status: 'INVALID_CREDENTIALS' }] });
    }
    const page = `query ($filter: AccountFilter, $after: String) { accounts(filter: $filter, first: 1, after: $after) {
      nodes { emailAddresses } pageInfo { endCursor } } }`;
    type Page = { accounts: { nodes: { emailAddresses: string[] }[]; pageInfo: { endCursor: string } } };
    const failing = { status: 'INVALID_CREDENTIALS' };
    const first = await stack.gql<Page>(page, { filter: failing });
    const cursor = first.body.data!.accounts.pageInfo.endCursor;
    const unfiltered = (await stack.gql<Page>(page, {})).body.data!.accounts.pageInfo.endCursor;
    const next = await stack.gql<Page>(page, { filter: failing, after: cursor });
    assert.deepEqual(next.body.data?.accounts.nodes, [{ emailAddresses: ['bad1@example.com'] }]);
    assert.equal(stack.upstreamCalls().length, 3);
    for (const [filter, after] of [
      [{ status: 'OK' }, cursor],
      [{ status: 'INVALID_CREDENTIALS', statusOk: false }, cursor],
      [{}, cursor],
      [failing, unfiltered],
    ] as const) {
      const res = await stack.gql(page, { filter, after });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT'], JSON.stringify(filter));
      assert.match(res.body.errors![0]!.message, /not a cursor of this list with this filter/);
    }
    assert.deepEqual(stack.upstreamCalls(), [], 'refused before any upstream call');
    const kind = Buffer.from(cursor, 'base64url').toString();
    assert.doesNotMatch(kind, /INVALID/, 'the filter’s values stay out of the cursor');
    const guess = createHash('sha256').update(JSON.stringify([null, 'INVALID_CREDENTIALS', null])).digest('base64url').slice(0, 12);
    assert.ok(!kind.includes(guess), 'a guessed filter cannot be checked against the cursor without the gateway’s key');

    // Another instance with the same key pair (behind a load balancer, or after a restart) continues it.
    const other = await startTestGateway({ baseUrl: stack.emulator.url, consumerKey: stack.emulator.consumerKey, consumerSecret: stack.emulator.consumerSecret });
    try {
      const elsewhere = await postGraphQL<{ data: Page }>(other.url, page, { filter: failing, after: cursor });
      assert.deepEqual(elsewhere.data.accounts.nodes, [{ emailAddresses: ['bad1@example.com'] }]);
    } finally {
      await other.close();
    }
    // One with another secret does not: the key is the secret's, not one that anyone with the gateway's code knows.
    stack.upstreamCalls();
    const unkeyed = await startTestGateway({ baseUrl: stack.emulator.url, consumerKey: stack.emulator.consumerKey, consumerSecret: 'another secret' });
    try {
      const elsewhere = await postGraphQL<GraphQLResponse['body']>(unkeyed.url, page, { filter: failing, after: cursor });
      assert.deepEqual(elsewhere.errors?.map((error) => error.extensions?.['code']), ['BAD_USER_INPUT']);
      assert.match(elsewhere.errors![0]!.message, /not a cursor of this list with this filter/);
      assert.deepEqual(stack.upstreamCalls(), []);
    } finally {
      await unkeyed.close();
    }
  });

  // Either source filter: each lists an account with part of its sources, which must not stand for it elsewhere.
  for (const filter of ['status: INVALID_CREDENTIALS', 'statusOk: false']) {
    it(`lists an account filtered by ${filter} with its matching sources only, and shows it whole everywhere else in the operation`, async () => {
      const { store } = stack.emulator;
      const id = store.createAccount({ email: 'mixed@example.com', sources: [{ label: 'a', status: 'OK' }, { label: 'b', status: 'INVALID_CREDENTIALS' }] }).id;
      const token = store.createConnectToken(id, { callback_url: 'https://app.example/cb' }).token;
      store.useConnectToken(token, { email: 'third@example.com', server: 'imap.example.com', username: 'third' });
      stack.emulator.clearRequests();
      type Statuses = { status: string }[];
      const res = await stack.gql<{ accounts: { nodes: { sources: Statuses; connectTokens: { account: { username: string; sources: Statuses } }[] }[] } }>(
        `{ accounts(filter: { ${filter} }) { nodes { sources { status } connectTokens { account { username sources { status } } } } } }`,
      );
      const [node] = res.body.data!.accounts.nodes;
      assert.deepEqual(node!.sources, [{ status: 'INVALID_CREDENTIALS' }]);
      // The token's account needs a field its embedded copy lacks: the whole account is fetched, not the listed one reused.
      assert.deepEqual(node!.connectTokens[0]!.account.sources.map((s) => s.status), ['OK', 'INVALID_CREDENTIALS', 'OK']);
      assert.deepEqual(stack.upstreamCalls(), ['GET /accounts', `GET /accounts/${id}/connect_tokens`, `GET /accounts/${id}`]);
    });
  }

  it('reads a filter whose fields are all null as no filter: the unfiltered list, which its cursors continue', async () => {
    const ids = ['n1@example.com', 'n2@example.com'].map((email) => stack.emulator.store.createAccount({ email }).id);
    const first = await stack.gql<{ accounts: { pageInfo: { endCursor: string } } }>(`{ accounts(first: 1) { pageInfo { endCursor } } }`);
    const res = await stack.gql(`query ($after: String) { accounts(filter: { email: null, status: null, statusOk: null }, after: $after) { nodes { id } } }`, {
      after: first.body.data!.accounts.pageInfo.endCursor,
    });
    assert.deepEqual(res.body, { data: { accounts: { nodes: [{ id: ids[1] }] } } });
    assert.equal(new URLSearchParams(stack.emulator.requests.at(-1)!.query).has('email'), false);
  });

  it('passes the email filter upstream as email=', async () => {
    stack.emulator.store.createAccount({ email: 'other@example.com' });
    const wanted = stack.emulator.store.createAccount({ email: 'wanted@example.com' });
    const res = await stack.gql(`{ accounts(filter: { email: "wanted@example.com" }) { nodes { id } } }`);
    assert.deepEqual(res.body.data, { accounts: { nodes: [{ id: wanted.id }] } });
    assert.equal(new URLSearchParams(stack.emulator.requests[0]!.query).get('email'), 'wanted@example.com');
  });

  it('shows set suspension and password-expiry times as DateTimes', async () => {
    const id = stack.emulator.store.createAccount({ email: 'suspended@example.com', suspended: 1_700_000_000, password_expired: 1_700_000_060 }).id;
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { suspendedAt passwordExpiredAt } }`, { id });
    assert.deepEqual(res.body.data, { account: { suspendedAt: '2023-11-14T22:13:20.000Z', passwordExpiredAt: '2023-11-14T22:14:20.000Z' } });
  });

  it('shows a time within the last second of the year 9999 (fractional seconds) as that time, not read as milliseconds', async () => {
    const id = '52daabefcea6f9c35a4a0998';
    stack.emulator.addFault({
      path: `/accounts/${id}`,
      method: 'GET',
      times: 1,
      body: { id, created: 253_402_300_799.5, suspended: 253_402_300_800, email_addresses: [], sources: [] },
    });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { createdAt suspendedAt } }`, { id });
    // The first is 9999-12-31T23:59:59.5Z, a four-digit year as seconds; only the next whole second is not.
    assert.deepEqual(res.body, { data: { account: { createdAt: '9999-12-31T23:59:59.500Z', suspendedAt: '1978-01-11T21:31:40.800Z' } } });
  });

  it('shows a creation time the upstream leaves out (0 or none) as the Unix epoch, as createdAt’s description says: non-null, the rest kept', async () => {
    const id = '52daabefcea6f9c35a4a0997';
    stack.emulator.addFault({ path: `/accounts/${id}`, method: 'GET', times: 1, body: { id, email_addresses: ['e@example.com'], sources: [] } });
    stack.emulator.addFault({ path: '/connect_tokens/abc0123456', method: 'GET', times: 1, body: { token: 'abc0123456', created: 0, used: 0, expires: 0, callback_url: 'https://x.example/' } });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { createdAt emailAddresses } connectToken(token: "abc0123456") { createdAt } }`, { id });
    assert.deepEqual(res.body, {
      data: { account: { createdAt: '1970-01-01T00:00:00.000Z', emailAddresses: ['e@example.com'] }, connectToken: { createdAt: '1970-01-01T00:00:00.000Z' } },
    });
  });

  it('passes the account filter upstream', async () => {
    stack.emulator.store.createAccount({ email: 'ok@example.com', sources: [{ label: 'a', status: 'OK' }] });
    const bad = stack.emulator.store.createAccount({ email: 'bad@example.com', sources: [{ label: 'b', status: 'INVALID_CREDENTIALS' }] });
    const res = await stack.gql(`{ accounts(filter: { status: INVALID_CREDENTIALS, statusOk: false }) { nodes { id } } }`);
    assert.deepEqual(res.body.data, { accounts: { nodes: [{ id: bad.id }] } });
    const query = new URLSearchParams(stack.emulator.requests[0]!.query);
    assert.equal(query.get('status'), 'INVALID_CREDENTIALS');
    assert.equal(query.get('status_ok'), '0');
  });

  it('lists each filter of one operation on its own: pages that differ in one filter value are never taken for one another', async () => {
    const { store } = stack.emulator;
    const ok = store.createAccount({ email: 'ok@example.com', sources: [{ label: 'a', status: 'OK' }] }).id;
    const bad = store.createAccount({ email: 'bad@example.com', sources: [{ label: 'b', status: 'INVALID_CREDENTIALS' }] }).id;
    const res = await stack.gql(
      `{ all: accounts { nodes { id } } failing: accounts(filter: { statusOk: false }) { nodes { id } }
         invalid: accounts(filter: { status: INVALID_CREDENTIALS }) { nodes { id } } okAddress: accounts(filter: { email: "ok@example.com" }) { nodes { id } } }`,
    );
    assert.deepEqual(res.body, {
      data: { all: { nodes: [{ id: ok }, { id: bad }] }, failing: { nodes: [{ id: bad }] }, invalid: { nodes: [{ id: bad }] }, okAddress: { nodes: [{ id: ok }] } },
    });
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts', 'GET /accounts', 'GET /accounts', 'GET /accounts'], 'one request per filter');
  });

  it('lists each page of one operation on its own: the same list after another cursor, or longer, is another page', async () => {
    const ids = Array.from({ length: 3 }, (_, i) => stack.emulator.store.createAccount({ email: `page${i}@example.com` }).id);
    const first = await stack.gql<{ accounts: { pageInfo: { endCursor: string } } }>(`{ accounts(first: 1) { pageInfo { endCursor } } }`);
    stack.emulator.clearRequests();
    const res = await stack.gql(
      `query ($after: String) { head: accounts(first: 1) { nodes { id } pageInfo { hasNextPage } } next: accounts(first: 1, after: $after) { nodes { id } }
         two: accounts(first: 2) { nodes { id } pageInfo { hasNextPage } } }`,
      { after: first.body.data!.accounts.pageInfo.endCursor },
    );
    assert.deepEqual(res.body, {
      data: {
        head: { nodes: [{ id: ids[0] }], pageInfo: { hasNextPage: true } },
        next: { nodes: [{ id: ids[1] }] },
        two: { nodes: [{ id: ids[0] }, { id: ids[1] }], pageInfo: { hasNextPage: true } },
      },
    });
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts', 'GET /accounts', 'GET /accounts'], 'one request per page');
  });

  for (const [name, query] of [
    ['accounts first: 0', '{ accounts(first: 0) { nodes { id } } }'],
    ['accounts first: 101', '{ accounts(first: 101) { nodes { id } } }'],
    ['connectTokens first: -1', '{ connectTokens(first: -1) { nodes { token } } }'],
    ['a cursor of another list', `{ accounts(after: "${Buffer.from('connectTokens:3').toString('base64url')}") { nodes { id } } }`],
    ['a cursor that is not one', '{ connectTokens(after: "not-a-cursor") { nodes { token } } }'],
    ['a cursor with a leading zero', `{ accounts(after: "${Buffer.from('accounts:01').toString('base64url')}") { nodes { id } } }`],
    ['a cursor with padding', `{ accounts(after: "${Buffer.from('accounts:1').toString('base64url')}==") { nodes { id } } }`],
    ['a status filter of UNKNOWN', '{ accounts(filter: { status: UNKNOWN }) { nodes { id } } }'],
  ] as const) {
    it(`refuses ${name} with BAD_USER_INPUT before any upstream call`, async () => {
      const res = await stack.gql(query);
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      assert.deepEqual(stack.upstreamCalls(), []);
      // A filter is named only of the list that takes one.
      if (name === 'a cursor that is not one') assert.equal(res.body.errors![0]!.message, 'after is not a cursor of this list: "not-a-cursor"');
    });
  }

  it('reads connect tokens, used and unused, and pages over the full list with one upstream call per operation', async () => {
    const created = Math.floor(Date.now() / 1000) - 60;
    const tokens = Array.from({ length: 3 }, (_, i) =>
      stack.emulator.store.createConnectToken(null, { callback_url: `https://app.example.com/cb${i}`, email: `t${i}@example.com`, created }),
    );
    stack.emulator.store.useConnectToken(tokens[1]!.token, { email: 't1@example.com', server: 'imap.example.com', username: 't1' });
    const res = await stack.gql<{ connectTokens: { nodes: Array<Record<string, unknown>>; pageInfo: { hasNextPage: boolean; endCursor: string } } }>(
      `{ connectTokens(first: 2) { nodes { token email createdAt used usedAt expiresAt callbackUrl account { id emailAddresses } } pageInfo { hasNextPage endCursor } } }`,
    );
    assert.equal(res.body.errors, undefined);
    const [first, second] = res.body.data!.connectTokens.nodes;
    assert.equal(first!['token'], tokens[0]!.token);
    assert.equal(first!['used'], false);
    assert.equal(first!['usedAt'], null);
    assert.equal(first!['expiresAt'], new Date((created + 86_400) * 1000).toISOString());
    assert.equal(first!['account'], null);
    assert.equal(second!['used'], true);
    assert.equal(second!['expiresAt'], null);
    assert.equal(typeof second!['usedAt'], 'string');
    assert.deepEqual((second!['account'] as { emailAddresses: string[] }).emailAddresses, ['t1@example.com']);
    assert.equal(res.body.data!.connectTokens.pageInfo.hasNextPage, true);
    assert.deepEqual(stack.upstreamCalls(), ['GET /connect_tokens']);

    const next = await stack.gql<{ connectTokens: { nodes: { token: string }[]; pageInfo: { hasNextPage: boolean } } }>(
      `query ($after: String) { connectTokens(first: 2, after: $after) { nodes { token } pageInfo { hasNextPage } } }`,
      { after: res.body.data!.connectTokens.pageInfo.endCursor },
    );
    assert.deepEqual(next.body.data, { connectTokens: { nodes: [{ token: tokens[2]!.token }], pageInfo: { hasNextPage: false } } });
  });

  it('continues connect tokens after the token a cursor names, though tokens before it were deleted meanwhile', async () => {
    const { store } = stack.emulator;
    const created = Math.floor(Date.now() / 1000) - 60;
    const tokens = Array.from({ length: 5 }, (_, i) => store.createConnectToken(null, { callback_url: `https://app.example.com/cb${i}`, created: created + i }).token);
    type Page = { connectTokens: { edges: { cursor: string; node: { token: string } }[]; pageInfo: { endCursor: string } } };
    const page = `query ($after: String) { connectTokens(first: 2, after: $after) { edges { cursor node { token } } pageInfo { endCursor } } }`;
    const tokensOf = (body: { data?: Page | null }) => body.data!.connectTokens.edges.map((edge) => edge.node.token);
    const first = await stack.gql<Page>(page, {});
    assert.deepEqual(tokensOf(first.body), [tokens[0], tokens[1]]);
    const [, afterFirst] = first.body.data!.connectTokens.edges;
    // A cursor does not show the token it names (a credential): a keyed digest of it.
    assert.ok(!Buffer.from(afterFirst!.cursor, 'base64url').toString().includes(tokens[1]!), 'the cursor does not show the token it names');
    const deleted = await stack.gql(`mutation ($t: ID!) { deleteConnectToken(token: $t) { success } }`, { t: tokens[0] });
    assert.deepEqual(deleted.body.data, { deleteConnectToken: { success: true } });
    const second = await stack.gql<Page>(page, { after: afterFirst!.cursor });
    assert.deepEqual(tokensOf(second.body), [tokens[2], tokens[3]]);
    // The token a cursor names gone too, the page starts at the first created after it.
    store.deleteConnectToken(tokens[3]!, null);
    const third = await stack.gql<Page>(page, { after: second.body.data!.connectTokens.pageInfo.endCursor });
    assert.deepEqual(tokensOf(third.body), [tokens[4]]);
    // A cursor of the earlier kind (a position alone) still pages by position.
    const positional = Buffer.from('connectTokens:0').toString('base64url');
    assert.deepEqual(tokensOf((await stack.gql<Page>(page, { after: positional })).body), [tokens[2], tokens[4]]);
    // The accounts list pages by position: a cursor naming an item is none of its own.
    const anchored = Buffer.from(`accounts:0:${Buffer.from(afterFirst!.cursor, 'base64url').toString().split(':').slice(2).join(':')}`).toString('base64url');
    const refused = await stack.gql(`query ($after: String) { accounts(first: 1, after: $after) { nodes { id } } }`, { after: anchored });
    assert.deepEqual(refused.body.errors?.map((e) => e.extensions?.['code']), ['BAD_USER_INPUT']);
  });

  it('reads one connect token, and an account’s own tokens through nested fields', async () => {
    const account = stack.emulator.store.createAccount({ email: 'own@example.com' });
    const own = stack.emulator.store.createConnectToken(account.id, { callback_url: 'https://app.example.com/cb' });
    const top = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/top' });
    const res = await stack.gql(
      `query ($id: ID!, $own: ID!, $top: ID!) {
        connectToken(token: $top) { token callbackUrl }
        account(id: $id) { connectTokens { token } connectToken(token: $own) { token callbackUrl } }
      }`,
      { id: account.id, own: own.token, top: top.token },
    );
    assert.deepEqual(res.body.data, {
      connectToken: { token: top.token, callbackUrl: 'https://app.example.com/top' },
      account: { connectTokens: [{ token: own.token }], connectToken: { token: own.token, callbackUrl: 'https://app.example.com/cb' } },
    });
    // The account's token list and its connectToken(token) both need only the account's id: both loads
    // start beside the account's own (prefetchTokensOf), before the list can have been answered and primed
    // the token loader, so that token costs a request of its own, always. Each resource once.
    assert.deepEqual(
      stack.upstreamCalls().sort(),
      [
        `GET /accounts/${account.id}`,
        `GET /accounts/${account.id}/connect_tokens`,
        `GET /accounts/${account.id}/connect_tokens/${own.token}`,
        `GET /connect_tokens/${top.token}`,
      ].sort(),
    );
  });

  it('reads an account’s tokens under the id it was asked by when the upstream answers that id in another case: the prefetched list, no second one', async () => {
    const id = stack.emulator.store.createAccount({ email: 'case@example.com' }).id;
    const asked = id.toUpperCase(); // the client takes an answer differing in case alone as the account asked for
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${asked}`, body: { id, created: 1_700_000_000, suspended: 0, email_addresses: ['case@example.com'], sources: [] } });
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${asked}/connect_tokens`, body: [] });
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { emailAddresses connectTokens { token } } }`, { id: asked });
    assert.deepEqual(res.body, { data: { account: { emailAddresses: ['case@example.com'], connectTokens: [] } } });
    assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${asked}`, `GET /accounts/${asked}/connect_tokens`].sort(), 'the token list once, under the id asked by');
  });

  it('reads a used token’s account’s tokens under the id the token names when the upstream answers that id in another case: the prefetched list, no second one', async () => {
    const id = stack.emulator.store.createAccount({ email: 'case@example.com', username: 'cased' }).id;
    const named = id.toUpperCase(); // the client takes an answer differing in case alone as the account asked for
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${named}`, body: { id, username: 'cased', created: 1_700_000_000, suspended: 0, email_addresses: ['case@example.com'], sources: [] } });
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${named}/connect_tokens`, body: [] });
    const used = { created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb' };
    // One token names its account by id alone, the other embeds it: each loads it for `username`.
    const byId = { ...used, token: 'byid0123456789ab', account: named };
    const embedding = { ...used, token: 'embed0123456789a', account: { id: named, created: 1_700_000_000, suspended: 0, email_addresses: ['case@example.com'], sources: [] } };
    for (const token of [byId, embedding]) {
      stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
      stack.emulator.clearRequests();
      const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { account { username connectTokens { token } } } }`, { t: token.token });
      assert.deepEqual(res.body, { data: { connectToken: { account: { username: 'cased', connectTokens: [] } } } });
      assert.deepEqual(
        stack.upstreamCalls().sort(),
        [`GET /accounts/${named}`, `GET /accounts/${named}/connect_tokens`, `GET /connect_tokens/${token.token}`].sort(),
        `the token list once, under the id the token names (${token.token})`,
      );
    }
  });

  it('loads the account of a used token whose server sent only the account’s id (a bare string)', async () => {
    const id = stack.emulator.store.createAccount({ email: 'by.reference@example.com', username: 'byref' }).id;
    const token = { token: 'bareid0123456789', created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account: id };
    stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
    const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { used account { id username emailAddresses } } }`, { t: token.token });
    assert.deepEqual(res.body, { data: { connectToken: { used: true, account: { id, username: 'byref', emailAddresses: ['by.reference@example.com'] } } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`, `GET /accounts/${id}`]);
    // The id alone is in the reference: no load, which the cost estimate does not count on either.
    const idOnly = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { account { id __typename } } }`, { t: token.token });
    assert.deepEqual(idOnly.body, { data: { connectToken: { account: { id, __typename: 'Account' } } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`]);
    // Its tokens are fetched by the id too: the account itself is not needed for them.
    const tokens = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { account { id connectTokens { token } } } }`, { t: token.token });
    assert.deepEqual(tokens.body, { data: { connectToken: { account: { id, connectTokens: [] } } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`, `GET /accounts/${id}/connect_tokens`]);
  });

  it('loads the account of a used token whose server embedded its id without its other fields, as for a bare id', async () => {
    const id = stack.emulator.store.createAccount({ email: 'partial@example.com', created: 1_600_000_000, sources: [{ label: 'p::imap.example.com', status: 'OK' }] }).id;
    const token = { token: 'partial012345678', created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account: { id } };
    stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
    const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { account { id createdAt emailAddresses sources { label } } } }`, { t: token.token });
    assert.deepEqual(res.body, {
      data: { connectToken: { account: { id, createdAt: '2020-09-13T12:26:40.000Z', emailAddresses: ['partial@example.com'], sources: [{ label: 'p::imap.example.com' }] } } },
    });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`, `GET /accounts/${id}`]);
  });

  it('loads the account of a used token whose embedded account has a field it cannot read, rather than fail the token', async () => {
    const id = stack.emulator.store.createAccount({ email: 'garbled@example.com', first_name: 'Whole' }).id;
    const account = { id, created: 1_600_000_000, suspended: 'yes', email_addresses: ['garbled@example.com'], sources: [] };
    const token = { token: 'garbled012345678', created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account };
    stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
    const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { token used account { id firstName suspendedAt } } }`, { t: token.token });
    assert.deepEqual(res.body, { data: { connectToken: { token: token.token, used: true, account: { id, firstName: 'Whole', suspendedAt: null } } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${token.token}`, `GET /accounts/${id}`]);
  });

  it('shows a used token whose server sent its account as {} (or without an id) as used, with account null and no error', async () => {
    for (const [name, account] of [['emptyacct0123456', {}], ['noidacct01234567', { first_name: 'Nameless', email_addresses: [] }]] as const) {
      const token = { token: name, created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account };
      stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${name}`, body: token });
      const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { used usedAt account { id firstName } } }`, { t: name });
      assert.deepEqual(res.body, { data: { connectToken: { used: true, usedAt: '2023-11-14T22:15:00.000Z', account: null } } }, name);
      assert.deepEqual(stack.upstreamCalls(), [`GET /connect_tokens/${name}`], name);
    }
  });

  it('keeps the id of a used token’s account sent as a bare id when the account fails to load: only the fields that needed it fail', async () => {
    const id = stack.emulator.store.createAccount({ email: 'ref@example.com', first_name: 'Ref' }).id;
    const token = { token: 'bareid0123456789', created: 1_700_000_000, used: 1_700_000_100, expires: false, callback_url: 'https://app.example/cb', account: id };
    stack.emulator.addFault({ method: 'GET', path: `/connect_tokens/${token.token}`, body: token });
    stack.emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 500 });
    const res = await stack.gql(`query ($t: ID!) { connectToken(token: $t) { used account { id firstName lastName connectTokens { token } } } }`, { t: token.token });
    // The id is in the token's own answer, and the account's tokens are fetched by it; the embedded fields
    // come from the account, whose load failed (a stand-in's empty values are never shown).
    assert.deepEqual(res.body.data, { connectToken: { used: true, account: { id, firstName: null, lastName: null, connectTokens: [] } } });
    assert.deepEqual(res.body.errors?.map((e) => [e.path, e.extensions?.['code']]), [
      [['connectToken', 'account', 'firstName'], 'UPSTREAM_ERROR'],
      [['connectToken', 'account', 'lastName'], 'UPSTREAM_ERROR'],
    ]);
    assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`, `GET /connect_tokens/${token.token}`]);
  });

  it('answers a used token’s deleted account from its embed, as the account last was, and NOT_FOUND where it is loaded, as ConnectToken.account’s description says', async () => {
    const { store } = stack.emulator;
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'gone@example.com', first_name: 'Gone' });
    const { id } = store.useConnectToken(token, { server: 'imap.example.com' }).account;
    const deleted = await stack.gql(`mutation ($id: ID!) { deleteAccount(id: $id) { success } }`, { id });
    assert.deepEqual(deleted.body.data, { deleteAccount: { success: true } });
    const res = await stack.gql(`query ($t: ID!, $id: ID!) { connectToken(token: $t) { account { id firstName username } } account(id: $id) { id } }`, { t: token, id });
    // One operation, one account: shown by the token's embed, with no error of its own, and unknown where read.
    assert.deepEqual(res.body.data, { connectToken: { account: { id, firstName: 'Gone', username: null } }, account: null });
    assert.deepEqual(res.body.errors?.map((e) => [e.path?.join('.'), e.extensions?.['code']]).sort(), [
      ['account', 'NOT_FOUND'],
      ['connectToken.account.username', 'NOT_FOUND'],
    ]);
    assert.deepEqual(stack.upstreamCalls().filter((call) => call.startsWith('GET')), [`GET /connect_tokens/${token}`, `GET /accounts/${id}`]);
    const described = await stack.gql<{ __type: { fields: { name: string; description: string }[] } }>(`{ __type(name: "ConnectToken") { fields { name description } } }`);
    const account = described.body.data!.__type.fields.find((field) => field.name === 'account')!.description;
    assert.match(account, /outlive[^.]*embedding it as it last was/s, 'the description says that a used token may embed an account deleted since');
  });

  it('answers an unknown connect token with NOT_FOUND and leaves its siblings intact', async () => {
    const account = stack.emulator.store.createAccount({ email: 'sib@example.com' });
    const res = await stack.gql(`query ($id: ID!) { connectToken(token: "nope") { token } account(id: $id) { id } }`, { id: account.id });
    assert.deepEqual(res.body.data, { connectToken: null, account: { id: account.id } });
    assert.deepEqual(codes(res), ['NOT_FOUND']);
  });
});
