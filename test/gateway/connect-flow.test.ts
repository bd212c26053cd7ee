import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useStack, type Stack } from '../helpers/stack.ts';

/**
 * What a browser does on the connect page: GET the form, read its fields (prefilled or hidden), fill in
 * what the user would, POST it, and follow the redirect to the app's callback.
 */
async function connectLikeABrowser(pageUrl: string, typed: Record<string, string>): Promise<URL> {
  const page = await fetch(pageUrl);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  const html = await page.text();
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  assert.ok(action, 'the page has a form');
  const fields = new URLSearchParams();
  for (const [, type, name, value] of html.matchAll(/<input type="(\w+)" id="\w+" name="(\w+)" value="([^"]*)"/g)) {
    if (type === 'checkbox' && !/checked/.test(html.slice(html.indexOf(`name="${name}"`), html.indexOf('>', html.indexOf(`name="${name}"`))))) continue;
    fields.set(name!, value!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
  }
  for (const [name, value] of Object.entries(typed)) fields.set(name, value);
  const submitted = await fetch(new URL(action, pageUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: fields.toString(),
    redirect: 'manual',
  });
  assert.equal(submitted.status, 303);
  return new URL(submitted.headers.get('location')!);
}

async function tokenThroughGateway(stack: Stack, token: string) {
  const res = await stack.gql<{ connectToken: { used: boolean; usedAt: string | null; expiresAt: string | null; account: { id: string; emailAddresses: string[]; sources: { label: string; server: string; status: string }[] } } }>(
    `query ($t: ID!) { connectToken(token: $t) { used usedAt expiresAt account { id emailAddresses sources { label server status } } } }`,
    { t: token },
  );
  assert.equal(res.body.errors, undefined);
  return res.body.data!.connectToken;
}

describe('the connect flow end to end, through the gateway and the emulator’s connect page', () => {
  const stack = useStack();

  it('createConnectToken → connect page → callback with contextio_token → a new account', async () => {
    const created = await stack.gql<{ createConnectToken: { token: string; browserRedirectUrl: string } }>(
      `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/connected?from=test", firstName: "Jane" }) { token browserRedirectUrl } }`,
    );
    const { token, browserRedirectUrl } = created.body.data!.createConnectToken;
    const before = await tokenThroughGateway(stack, token);
    assert.equal(before.used, false);
    assert.equal(before.account, null);

    const callback = await connectLikeABrowser(browserRedirectUrl, { email: 'jane@mail.example.org', password: 'pw' });
    assert.equal(callback.origin + callback.pathname, 'https://app.example.com/connected');
    assert.equal(callback.searchParams.get('from'), 'test');
    assert.equal(callback.searchParams.get('contextio_token'), token);

    const after = await tokenThroughGateway(stack, callback.searchParams.get('contextio_token')!);
    assert.equal(after.used, true);
    assert.equal(typeof after.usedAt, 'string');
    assert.equal(after.expiresAt, null);
    assert.deepEqual(after.account.emailAddresses, ['jane@mail.example.org']);
    assert.equal(after.account.sources[0]!.server, 'imap.mail.example.org');
    assert.equal(after.account.sources[0]!.status, 'OK');
    assert.ok(stack.emulator.store.getAccount(after.account.id), 'the account exists upstream');

    // The page cannot be used twice.
    const again = await fetch(browserRedirectUrl);
    assert.equal(again.status, 410);
  });

  it('completes the flow of a token made for an internationalized address (zoë@exämple.com), kept as given', async () => {
    const created = await stack.gql<{ createConnectToken: { token: string; browserRedirectUrl: string; connectToken: { email: string } } }>(
      `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/connected", email: "zoë@exämple.com" }) { token browserRedirectUrl connectToken { email } } }`,
    );
    assert.equal(created.body.errors, undefined);
    const { token, browserRedirectUrl, connectToken } = created.body.data!.createConnectToken;
    assert.equal(connectToken.email, 'zoë@exämple.com');

    // The page suggests the server from the address's domain, as for any other; left as it is, it is taken.
    const callback = await connectLikeABrowser(browserRedirectUrl, { password: 'pw' });
    assert.equal(callback.searchParams.get('contextio_token'), token);
    const after = await tokenThroughGateway(stack, token);
    assert.deepEqual(after.account.emailAddresses, ['zoë@exämple.com']);
    // An IMAP client connects to a name in its ASCII (IDNA) form.
    assert.equal(after.account.sources[0]!.server, 'imap.xn--exmple-cua.com');
  });

  it('createAccountConnectToken → connect page → a source added to the existing account', async () => {
    const account = stack.emulator.store.createAccount({ email: 'owner@example.com', sources: [{ label: 'owner::imap.example.com', status: 'OK' }] });
    const created = await stack.gql<{ createAccountConnectToken: { token: string; browserRedirectUrl: string } }>(
      `mutation ($id: ID!) { createAccountConnectToken(accountId: $id, input: { callbackUrl: "https://app.example.com/added", email: "second@work.example.net" }) { token browserRedirectUrl } }`,
      { id: account.id },
    );
    const { token, browserRedirectUrl } = created.body.data!.createAccountConnectToken;
    // The email was given, so the page does not ask for it: it is a hidden field.
    assert.match(await (await fetch(browserRedirectUrl)).text(), /type="hidden" id="email" name="email" value="second@work.example.net"/);

    const callback = await connectLikeABrowser(browserRedirectUrl, { password: 'pw' });
    assert.equal(callback.searchParams.get('contextio_token'), token);

    const res = await stack.gql<{ account: { connectToken: { used: boolean; account: { id: string } }; sources: { email: string }[] } }>(
      `query ($id: ID!, $t: ID!) { account(id: $id) { connectToken(token: $t) { used account { id } } sources { email } } }`,
      { id: account.id, t: token },
    );
    assert.equal(res.body.errors, undefined);
    assert.equal(res.body.data!.account.connectToken.used, true);
    assert.equal(res.body.data!.account.connectToken.account.id, account.id);
    assert.deepEqual(res.body.data!.account.sources.map((s) => s.email).sort(), ['owner@example.com', 'second@work.example.net'].sort());
  });
});
