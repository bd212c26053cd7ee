import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { Page } from 'playwright-core';
import { startExample, type ExampleServer } from '../../examples/frontend/serve.ts';
import { closedPort } from '../helpers/net.ts';
import { accessibleNode, browserTest, skipReason } from './browser.ts';

/**
 * The example frontend end to end, as a user goes through it: its typed mutation creates a connect token,
 * the browser goes to the emulator's connect page, the form is filled in and submitted, Context.IO's
 * redirect brings the browser back to the example's callback page, which shows the new account.
 */

let example: ExampleServer;

before(async () => {
  if (skipReason) return;
  example = await startExample();
});

after(async () => {
  await example?.close();
});

browserTest('the frontend example connects a mailbox through the connect page and shows the account', async (_context, page) => {
  const emulatorOrigin = new URL(example.emulator!.url).origin;
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // What a developer sees in the console: a 404 for /favicon.ico on every page, or a CSP refusal, would show here.
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${message.text()} (${page.url()})`);
  });

  await page.goto(example.url);
  await page.locator('#connect-mailbox').click();

  // The emulator's connect page, reached through the mutation's browserRedirectUrl.
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));
  await page.fill('input[name="email"]', 'katherine@example.com');
  await page.fill('input[name="first_name"]', 'Katherine');
  await page.fill('input[name="last_name"]', 'Johnson');
  await page.fill('input[name="server"]', 'imap.example.com');
  await page.fill('input[name="port"]', '993');
  await page.fill('input[name="username"]', 'katherine');
  await page.fill('input[name="password"]', 'not-kept-by-the-emulator');
  await page.check('input[name="use_ssl"]');
  const callback = page.waitForRequest((request) => new URL(request.url()).pathname === '/callback');
  await page.locator('button#connect').click();

  // Back on the example's own callback page, with the token in the address it was sent to.
  const token = new URL((await callback).url()).searchParams.get('contextio_token');
  assert.ok(token, 'the callback URL carries contextio_token');

  await page.locator('#status').getByText('Mailbox connected.').waitFor();
  // The title says how the flow ended too: what a browser tab and a screen reader show first.
  assert.equal(await page.title(), 'Mailbox connected · Context.IO GraphQL example');
  assert.equal(await page.locator('#account-emails').textContent(), 'katherine@example.com');
  assert.equal(await page.locator('#account-name').textContent(), 'Katherine Johnson');
  const accountId = await page.locator('#account-id').textContent();
  assert.match(accountId ?? '', /\S/);
  const cells = await page.locator('#sources tbody tr').first().locator('td').allTextContents();
  assert.equal(cells[1], 'katherine@example.com');
  assert.equal(cells[2], 'imap.example.com');
  assert.equal(cells[3], 'OK');

  // The account the page shows is the one the emulator created for this token.
  const created = example.emulator!.store.getConnectToken(token);
  assert.equal(created?.account?.id, accountId);
  // The token, which reads that account, is taken out of the address (history, a shared link, a Referer); a
  // reload of the tab still shows the account.
  assert.equal(new URL(page.url()).pathname, '/callback');
  assert.ok(!page.url().includes(token), `the token is no longer in the address: ${page.url()}`);
  await page.reload();
  await page.locator('#status').getByText('Mailbox connected.').waitFor();
  assert.equal(await page.locator('#account-id').textContent(), accountId);

  // The account deleted since (by its owner, or an admin), the token goes on embedding it as it was: the page
  // showed it as connected, from those embedded fields alone.
  assert.equal(example.emulator!.store.deleteAccount(accountId!), true, 'the account existed');
  await page.reload();
  await page.locator('#status').getByText('The mailbox was connected, but its account has been deleted since.').waitFor();
  assert.equal(await page.title(), 'Account not loaded · Context.IO GraphQL example');
  assert.equal(await page.locator('#account').isHidden(), true, 'the deleted account is not shown');

  // A token that does not exist is told as such (the gateway's NOT_FOUND), not as a failure to load.
  await page.goto(`${example.url.replace(/\/$/, '')}/callback?contextio_token=bogustoken000001`);
  await page.locator('#status').getByText('This connect token does not exist (or has expired).').waitFor();
  assert.equal(await page.title(), 'Mailbox not connected · Context.IO GraphQL example');
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
});

browserTest('a start the gateway refuses says why and leaves the keyboard focus on the button, for another try', async (_context, page) => {
  await page.goto(example.url);
  await page.getByLabel(/Email address/).fill('not-an-address');
  const button = page.getByRole('button', { name: 'Connect a mailbox' });
  await button.focus();
  await page.keyboard.press('Enter');
  await page.getByRole('status').getByText(/^Could not start: /).waitFor();
  assert.equal(await button.isEnabled(), true);
  // Disabled while the mutation ran, the button lost the focus to the page: Tab then went on from nowhere.
  assert.equal(await page.locator('#connect-mailbox:focus').count(), 1, 'the button has the focus');
});

// The gateway names the input field it refuses (extensions.field): the page said why in its status alone, the
// address field itself not marked, so a screen reader going back to it heard nothing wrong with it (WCAG 3.3.1).
browserTest('a start refused for its address marks the address field invalid, described by the reason, until the next start', async (_context, page) => {
  await page.goto(example.url);
  // Over the 254 characters an address may have: the gateway refuses it (the field itself checks nothing, so
  // the mark is the gateway's).
  await page.getByLabel(/Email address/).fill(`${'a'.repeat(64)}@${`${'b'.repeat(63)}.`.repeat(3)}com`);
  await page.getByLabel(/Email address/).press('Enter');
  const reason = await page.getByRole('status').getByText(/^Could not start: input\.email /).textContent();
  assert.deepEqual(await accessibleNode(page, '#email'), {
    name: 'Email address (optional, pre-fills the connect page)',
    description: reason,
    invalid: 'true',
    focused: true,
  });
  // Refused for another reason (the gateway out of reach), the address is no longer the field in error.
  await page.route(example.gatewayUrl, (route) => route.abort());
  await page.getByLabel(/Email address/).fill('grace@example.com');
  await page.getByLabel(/Email address/).press('Enter');
  await page.getByRole('status').getByText(/could not be reached/).waitFor();
  const after = await accessibleNode(page, '#email');
  assert.equal(after.invalid, 'false', 'the address is not marked in error');
  assert.equal(after.description, undefined, 'the address is not described by the status');
});

// The gateway takes the part of an address from its `@` on (`@gmail.com`, which picks the provider on the connect
// page): a `type=email` field, which calls that invalid, told a screen reader the field was in error before any start.
browserTest('a provider alone (@gmail.com) is not marked invalid, and starts the flow pre-filled with it', async (_context, page) => {
  await page.goto(example.url);
  const emulatorOrigin = new URL(example.emulator!.url).origin;
  await page.getByLabel(/Email address/).fill('@gmail.com');
  assert.equal((await accessibleNode(page, '#email')).invalid, 'false', 'the field is not marked invalid');
  await page.getByLabel(/Email address/).press('Enter');
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));
  const token = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
  assert.equal(example.emulator!.store.getConnectToken(token)?.email, '@gmail.com');
});

browserTest('Enter in the address field starts the flow, as the button does', async (_context, page) => {
  await page.goto(example.url);
  const emulatorOrigin = new URL(example.emulator!.url).origin;
  await page.getByLabel(/Email address/).fill('grace@example.com');
  await page.getByLabel(/Email address/).press('Enter');
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));
  // The connect page is pre-filled with the address typed here.
  assert.equal(await page.locator('input[name="email"]').inputValue(), 'grace@example.com');
});

// The user who goes Back from the connect page (another mailbox in mind, a typo in the address) gets the start
// page from the browser's back/forward cache, as it was left: it said "Redirecting to the connect page…" with
// its button disabled, and nothing but a reload started again.
browserTest('Back from the connect page finds the start page ready for another try', async (_context, page) => {
  const emulatorOrigin = new URL(example.emulator!.url).origin;
  await page.goto(example.url);
  await page.getByLabel(/Email address/).fill('grace@example.com');
  // A page reloaded would not have it: the test is about the page the cache keeps.
  await page.evaluate(() => Object.assign(globalThis, { leftByTheTest: true }));
  await page.getByRole('button', { name: 'Connect a mailbox' }).click();
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));

  // 'commit': a page restored from the cache fires no load event.
  await page.goBack({ waitUntil: 'commit' });
  assert.equal(page.url(), example.url);
  assert.equal(await page.evaluate(() => 'leftByTheTest' in globalThis), true, 'the start page came back from the back/forward cache');
  await page.getByRole('button', { name: 'Connect a mailbox' }).waitFor({ state: 'visible' });
  assert.equal(await page.getByRole('button', { name: 'Connect a mailbox' }).isEnabled(), true, 'the button can start again');
  assert.equal(await page.getByRole('status').textContent(), '');
  assert.equal(await page.getByLabel(/Email address/).inputValue(), 'grace@example.com');

  // And it starts again.
  await page.getByRole('button', { name: 'Connect a mailbox' }).click();
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));
}, { backForwardCache: true });

// A page on another origin than the gateway's learns nothing from a failed fetch but "Failed to fetch" (a
// TypeError: the gateway down and its CORS refusing the page's origin look alike), which is all the page said.
browserTest('a gateway that cannot be reached is said as such, naming its URL, the page\'s origin and CORS_ORIGINS', async (_context, page) => {
  const gatewayUrl = `http://127.0.0.1:${await closedPort()}/graphql`;
  const down = await startExample({ port: 0, gatewayUrl });
  try {
    await page.goto(down.url);
    await page.getByRole('button', { name: 'Connect a mailbox' }).click();
    const said = await page.getByRole('status').getByText(/^Could not start: /).textContent();
    assert.equal(
      said,
      `Could not start: The gateway at ${gatewayUrl} could not be reached: it is not running, or its CORS_ORIGINS does not list this page's origin, ${down.origin}`,
    );
    await page.goto(`${down.url}callback?contextio_token=e40v3tkgoaa4hggo`);
    await page.getByRole('status').getByText(/^Could not load the account: The gateway at /).waitFor();
  } finally {
    await down.close();
  }
});

// Vite, whose port (5173) the example takes, prints its app as http://localhost:5173/, so that is the address a
// frontend developer types: the page loaded, but the gateway allowed only http://127.0.0.1:5173.
browserTest('the app opened at localhost, not the printed 127.0.0.1, connects a mailbox all the same', async (_context, page) => {
  const emulatorOrigin = new URL(example.emulator!.url).origin;
  const atLocalhost = example.url.replace('//127.0.0.1:', '//localhost:');
  assert.notEqual(atLocalhost, example.url, 'the printed address names 127.0.0.1');
  await page.goto(atLocalhost);
  await page.getByRole('button', { name: 'Connect a mailbox' }).click();
  await page.waitForURL((url) => url.origin === emulatorOrigin && url.pathname.startsWith('/connect/'));
  await page.fill('input[name="email"]', 'mary@example.com');
  await page.fill('input[name="password"]', 'not-kept-by-the-emulator');
  await page.locator('button#connect').click();
  await page.waitForURL((url) => url.origin === new URL(atLocalhost).origin && url.pathname === '/callback');
  await page.getByRole('status').getByText('Mailbox connected.').waitFor();
});

// A used token's account the upstream sends as its id alone is loaded for its other fields (GET /accounts/{id});
// that load's NOT_FOUND (the account deleted since) is the account's, at connectToken.account…, not the token's,
// which the page, branching on the code alone, told as "This connect token does not exist". The emulator always
// embeds the account, so the gateway's answer for that case is given to the page here, as the gateway words it.
/** Opens the callback page for `token` with the gateway's answer to its query replaced by `answer`, and waits for its outcome. */
async function callbackAnswered(page: Page, token: string, answer: unknown): Promise<void> {
  await page.route(example.gatewayUrl, (route) =>
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'application/graphql-response+json; charset=utf-8', 'access-control-allow-origin': example.origin },
      body: JSON.stringify(answer),
    }),
  );
  await page.goto(`${example.url}callback?contextio_token=${token}`);
  await page.getByRole('status').getByText(/^(?!Loading)/).waitFor();
}

// Answers the gateway never gives, but a proxy or a broken deployment in front of it may: said as what they are,
// not as a raw TypeError (a JSON `null`) or a bare "HTTP 200" (no data and no error).
browserTest('an answer that is no GraphQL response, or one with neither data nor errors, is said as such', async (_context, page) => {
  const token = 'e40v3tkgoaa4hggo';
  for (const [answer, said] of [
    [null, 'Could not load the account: The gateway answered HTTP 200 without a GraphQL response'],
    [[], 'Could not load the account: The gateway answered HTTP 200 without a GraphQL response'],
    [{ data: null }, 'Could not load the account: The gateway answered HTTP 200 with neither data nor an error'],
  ] as const) {
    await page.unrouteAll();
    await callbackAnswered(page, token, answer);
    assert.equal(await page.getByRole('status').textContent(), said, JSON.stringify(answer));
  }
});

browserTest('a NOT_FOUND below the connect token is not told as the token not existing', async (_context, page) => {
  const token = 'e40v3tkgoaa4hggo';
  const accountId = '9001650a171091e47adb92f0';
  await callbackAnswered(page, token, {
    errors: [
      {
        message: `Not found: account "${accountId}"`,
        path: ['connectToken', 'account', 'emailAddresses'],
        extensions: { code: 'NOT_FOUND', upstream: { status: 404, method: 'GET', path: `/accounts/${accountId}` } },
      },
    ],
    data: { connectToken: { token, used: true, email: 'kat@example.com', account: null } },
  });
  assert.equal(await page.getByRole('status').textContent(), 'The mailbox was connected, but its account has been deleted since.');
  assert.equal(await page.title(), 'Account not loaded · Context.IO GraphQL example');
});

// The schema tells a source whose status the upstream did not send (null) from one it sent and the gateway does
// not know (UNKNOWN): the page showed both as UNKNOWN (and a missing address or server as nothing, a missing name
// as '—'). The emulator always sends them, so the answer is given here.
browserTest('a source without a status is shown without one, not as UNKNOWN, which is another status', async (_context, page) => {
  const token = 'e40v3tkgoaa4hggo';
  await callbackAnswered(page, token, {
    data: {
      connectToken: {
        token,
        used: true,
        email: 'kat@example.com',
        account: {
          id: '9001650a171091e47adb92f0',
          emailAddresses: ['kat@example.com'],
          firstName: null,
          lastName: null,
          sources: [
            { label: 'kat::imap.example.com', email: null, server: null, status: null },
            { label: 'kat::imap2.example.com', email: 'kat@example.com', server: 'imap.example.com', status: 'UNKNOWN' },
          ],
        },
      },
    },
  });
  assert.equal(await page.getByRole('status').textContent(), 'Mailbox connected.');
  const rows = page.locator('#sources tbody tr');
  assert.deepEqual(await rows.nth(0).locator('td').allTextContents(), ['kat::imap.example.com', '—', '—', '—']);
  assert.deepEqual(await rows.nth(1).locator('td').allTextContents(), ['kat::imap2.example.com', 'kat@example.com', 'imap.example.com', 'UNKNOWN']);
});

// A used token whose upstream names no account (`account: {}`) has a null account (the schema says so): the page
// told it as a flow not completed, which it was, sending the user to connect the same mailbox again.
browserTest('a used token that names no account is not told as a flow not completed', async (_context, page) => {
  const token = 'e40v3tkgoaa4hggo';
  await callbackAnswered(page, token, { data: { connectToken: { token, used: true, email: 'kat@example.com', account: null } } });
  assert.equal(await page.getByRole('status').textContent(), 'The connect flow was completed, but Context.IO names no account for this token.');
  assert.equal(await page.title(), 'Account not loaded · Context.IO GraphQL example');
  assert.equal(await page.locator('#account').isHidden(), true, 'no account is shown');
});

// The connect flow is often finished on a phone. At 375 px a source's long address and server, which a table
// cell breaks only at spaces and hyphens, made the callback page over 1,200 px wide: the table ran out of its
// card and the whole page scrolled sideways.
browserTest('the callback page fits a phone\'s width, long addresses and all', async (_context, page) => {
  await page.setViewportSize({ width: 375, height: 700 });
  const token = 'e40v3tkgoaa4hggo';
  const email = 'katherine.johnson.longname@subdomain.example-university.edu';
  await callbackAnswered(page, token, {
    data: {
      connectToken: {
        token,
        used: true,
        email,
        account: {
          id: '9001650a171091e47adb92f0',
          emailAddresses: [email],
          firstName: 'Katherine',
          lastName: 'Johnson',
          sources: [{ label: 'katherine.johnson.longname::imap.subdomain.example-university.edu', email, server: 'imap.subdomain.example-university.edu', status: 'OK' }],
        },
      },
    },
  });
  assert.equal(await page.getByRole('status').textContent(), 'Mailbox connected.');
  assert.equal(await page.evaluate('document.documentElement.scrollWidth'), 375, 'nothing wider than the window');
  const card = await page.locator('main').boundingBox();
  const table = await page.locator('#sources').boundingBox();
  assert.ok(card && table, 'the card and the table are shown');
  assert.ok(table.x + table.width <= card.x + card.width, `the table (to ${table.x + table.width} px) stays in its card (to ${card.x + card.width} px)`);
});
