import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { api } from '../emulator/helpers.ts';
import { accessibleNode, browserTest, skipReason } from './browser.ts';

/** The emulator's connect page in a browser: what its form lets a person send is what the emulator takes. */

let emulator: Emulator;

before(async () => {
  if (skipReason) return;
  emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'none' });
});

after(async () => {
  await emulator?.close();
});

browserTest('the connect form sends a port only in the digits the emulator takes', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  const posts: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') posts.push(request.url());
  });
  await page.goto(String(body['browser_redirect_url']));
  await page.fill('#email', 'ada@example.com');

  // A number input takes 1e3 (a thousand) and its browser would send it as typed, which the emulator refuses.
  await page.fill('#port', '1e3');
  await page.locator('button#connect').click();
  assert.equal(await page.locator('#port:invalid').count(), 1, 'the browser finds the port invalid');
  assert.deepEqual(posts, [], 'the browser kept the form');

  await page.fill('#port', '993');
  await page.locator('button#connect').click();
  await page.waitForURL((url) => url.pathname.endsWith('/done') && url.searchParams.has('contextio_token'));
  assert.equal(posts.length, 1);
});

browserTest('the server and username follow the email typed, each until edited by hand', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  const values = () => Promise.all(['#server', '#username'].map((selector) => page.locator(selector).inputValue()));
  await page.fill('#email', 'ada@example.org');
  assert.deepEqual(await values(), ['imap.example.org', 'ada']);
  // Edited by hand, the server is the user's: another address typed after changes only the username.
  await page.fill('#server', 'mail.example.org');
  await page.fill('#email', 'ada.l@example.net');
  assert.deepEqual(await values(), ['mail.example.org', 'ada.l']);
  await page.fill('#username', 'lovelace');
  await page.fill('#email', 'ada@example.com');
  assert.deepEqual(await values(), ['mail.example.org', 'lovelace']);
});

browserTest('a refused form keeps the server and username typed by hand when the email is changed after', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  const values = () => Promise.all(['#server', '#username'].map((selector) => page.locator(selector).inputValue()));
  await page.fill('#email', 'ada@example.org');
  await page.fill('#server', 'mail.example.org');
  await page.fill('#username', 'lovelace');
  await page.fill('#port', '0');
  await page.locator('button#connect').click();
  await page.getByRole('alert').getByText('The port must be a number from 1 to 65535.').waitFor();
  assert.deepEqual(await values(), ['mail.example.org', 'lovelace'], 'the page came back with what was typed');
  // Typed by hand before the refusal, they stay the user's on the page that came back.
  await page.fill('#email', 'ada@example.net');
  assert.deepEqual(await values(), ['mail.example.org', 'lovelace']);
  // Left as the email made them, they still follow it.
  await page.fill('#port', '993');
  await page.locator('button#connect').click();
  await page.waitForURL((url) => url.pathname.endsWith('/done'));
  await page.goto(String((await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } })).body['browser_redirect_url']));
  await page.fill('#email', 'ada@example.org');
  await page.fill('#port', '0');
  await page.locator('button#connect').click();
  await page.getByRole('alert').waitFor();
  await page.fill('#email', 'grace@example.net');
  assert.deepEqual(await values(), ['imap.example.net', 'grace']);
});

browserTest('a form the emulator refuses comes back with its field in error focused, marked invalid and described by the problem', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  await page.getByLabel('Email address').fill('ada@example.com');
  // Neither is refused by the browser (no pattern on the server, five digits for the port): only the emulator says no.
  await page.getByLabel('IMAP server').fill('imap example com');
  await page.locator('button#connect').click();
  await page.getByRole('alert').getByText('Enter a valid IMAP server name.').waitFor();
  // The tab's title says so too, the first thing a screen reader reads of the page that came back.
  assert.equal(await page.title(), 'Error: Connect your mailbox · Context.IO emulator');
  assert.deepEqual(await accessibleNode(page, '#server'), {
    name: 'IMAP server',
    description: 'Enter a valid IMAP server name.',
    invalid: 'true',
    focused: true,
  });
  // The others are not in error, nor described by it.
  assert.equal((await accessibleNode(page, '#email')).invalid, 'false');
  assert.equal((await accessibleNode(page, '#port')).description, 'A port number: 1 to 65535');

  await page.getByLabel('IMAP server').fill('imap.example.com');
  await page.getByLabel('Port').fill('99999');
  await page.locator('button#connect').click();
  await page.getByRole('alert').getByText('The port must be a number from 1 to 65535.').waitFor();
  assert.deepEqual(await accessibleNode(page, '#port'), {
    name: 'Port',
    description: 'The port must be a number from 1 to 65535.',
    invalid: 'true',
    focused: true,
  });
  assert.equal((await accessibleNode(page, '#server')).invalid, 'false');
});

/** WCAG's contrast ratio of two `rgb(r, g, b)` colours, as getComputedStyle gives them. */
function contrastRatio(a: string, b: string): number {
  const luminance = (colour: string) => {
    const [r = 0, g = 0, bl = 0] = (colour.match(/\d+(\.\d+)?/g) ?? []).map(Number).map((c) => {
      const s = c / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

browserTest('the form\'s fields are outlined at 3:1 against the page at least (WCAG 1.4.11), a field in error in red', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  // Run in the page, where getComputedStyle is (these tests' types have no DOM).
  type InPage = { getComputedStyle(element: unknown): Record<'borderTopColor' | 'backgroundColor', string> };
  const styleOf = (selector: string, property: 'borderTopColor' | 'backgroundColor') =>
    page.locator(selector).evaluate((element, name) => (globalThis as unknown as InPage).getComputedStyle(element)[name], property);
  const borderOf = (selector: string) => styleOf(selector, 'borderTopColor');
  const background = await styleOf('main', 'backgroundColor');
  for (const selector of ['#email', '#first_name', '#server', '#port', '#username', '#password']) {
    const ratio = contrastRatio(await borderOf(selector), background);
    assert.ok(ratio >= 3, `${selector}'s border is at ${ratio.toFixed(2)}:1`);
  }
  await page.getByLabel('Email address').fill('ada@example.com');
  await page.getByLabel('Port').fill('99999');
  await page.locator('button#connect').click();
  await page.getByRole('alert').waitFor();
  assert.equal(await borderOf('#port'), 'rgb(185, 28, 28)');
  assert.notEqual(await borderOf('#server'), 'rgb(185, 28, 28)');
});

browserTest('the required fields say so where they are seen, the mark hidden from screen readers (which hear `required`)', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  const labelText = (name: string) => page.locator(`label[for=${name}]`).innerText();
  assert.deepEqual(
    await Promise.all(['email', 'port', 'first_name', 'server', 'username', 'password'].map(labelText)),
    ['Email address (required)', 'Port (required)', 'First name', 'IMAP server', 'Username', 'Password'],
  );
  // Their names stay the label's words: the required state is the input's own.
  assert.equal((await accessibleNode(page, '#email')).name, 'Email address');
  assert.equal((await accessibleNode(page, '#port')).name, 'Port');
  assert.equal(await page.locator('#port').evaluate((element) => (element as unknown as { required: boolean }).required), true);
});

browserTest('the page fits a phone\'s 320 px (WCAG 1.4.10) with a long address the token names, which has no space to break at', async (_context, page) => {
  const email = 'katherine.coleman.goble.johnson@langley-research-center.example.com';
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done`, email } });
  await page.setViewportSize({ width: 320, height: 640 });
  const widths = () => page.evaluate(() => {
    const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth };
  });
  await page.goto(String(body['browser_redirect_url']));
  await page.getByText(email).waitFor();
  const shown = await widths();
  assert.ok(shown.scrollWidth <= shown.clientWidth, `the page scrolls sideways: ${shown.scrollWidth} px wide in a ${shown.clientWidth} px window`);
  // The page the refused form comes back on says the address the same way.
  await page.getByLabel('Port').fill('0');
  await page.locator('button#connect').click();
  await page.getByRole('alert').waitFor();
  const refused = await widths();
  assert.ok(refused.scrollWidth <= refused.clientWidth, `the refused form's page scrolls sideways: ${refused.scrollWidth} px wide in a ${refused.clientWidth} px window`);
});

// Windows' contrast themes (forced colours) replace the button's blue with the page's own background: with no
// border, "Connect mailbox" showed as a line of text, nothing telling it for a button.
browserTest('the connect button keeps an edge in forced colours (a Windows contrast theme)', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.emulateMedia({ forcedColors: 'active', colorScheme: 'dark' });
  await page.goto(String(body['browser_redirect_url']));
  type InPage = { getComputedStyle(element: unknown): Record<'borderTopWidth' | 'borderTopStyle' | 'borderTopColor' | 'backgroundColor', string> };
  const style = await page.locator('button#connect').evaluate((element) => {
    const computed = (globalThis as unknown as InPage).getComputedStyle(element);
    return { width: computed.borderTopWidth, style: computed.borderTopStyle, colour: computed.borderTopColor, background: computed.backgroundColor };
  });
  assert.notEqual(style.style, 'none', `the button has a border: ${JSON.stringify(style)}`);
  assert.notEqual(style.width, '0px', `the button's border has a width: ${JSON.stringify(style)}`);
  assert.ok(contrastRatio(style.colour, style.background) >= 3, `the button's border shows against its background: ${JSON.stringify(style)}`);
});

// The note that the server and username may be left as they are came after the password field: a screen reader
// going from field to field (its forms mode reads the fields, their names and descriptions) never met it.
browserTest('the server and username fields are described by the note that they may be left as they are', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  const note = 'Leave the server and username as they are to use the defaults for your address.';
  assert.equal((await accessibleNode(page, '#server')).description, note);
  assert.equal((await accessibleNode(page, '#username')).description, note);
  assert.equal((await accessibleNode(page, '#email')).description, undefined, 'the note is not the address\'s');
  // A field in error is described by its problem.
  await page.getByLabel('Email address').fill('ada@example.com');
  await page.getByLabel('IMAP server').fill('imap example com');
  await page.locator('button#connect').click();
  await page.getByRole('alert').waitFor();
  assert.equal((await accessibleNode(page, '#server')).description, 'Enter a valid IMAP server name.');
  assert.equal((await accessibleNode(page, '#username')).description, note);
});

browserTest('an address with a non-ASCII local part or domain (RFC 6531, an IDN) is taken as typed, as the gateway takes it from a caller', async (_context, page) => {
  // An `<input type="email">` refused `zoë@…` ("A part followed by '@' should not contain the symbol 'ë'") and sent
  // `zoe@bücher.example` as `zoe@xn--bcher-kva.example`: an account the gateway's own `email` filter then missed.
  for (const typed of ['zoë@bücher.example', 'zoe@bücher.example']) {
    const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done`, email: '@bücher.example' } });
    await page.goto(String(body['browser_redirect_url']));
    await page.fill('#email', typed);
    await page.fill('#password', 'x');
    await page.locator('button#connect').click();
    await page.waitForURL((url) => url.pathname.endsWith('/done') && url.searchParams.has('contextio_token'));
    const { body: token } = await api(emulator, `/connect_tokens/${String(body['token'])}`);
    const account = token['account'] as { email_addresses: string[]; sources: Array<{ server: string }> };
    assert.deepEqual(account.email_addresses, [typed], 'the address is kept as typed');
    assert.equal(account.sources[0]?.server, 'imap.xn--bcher-kva.example', 'the server suggested is reached by its ASCII name');
  }
  // One without an `@` is still refused, on its field.
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  await page.goto(String(body['browser_redirect_url']));
  await page.fill('#email', 'zoë');
  await page.fill('#password', 'x');
  await page.locator('button#connect').click();
  await page.getByRole('alert').waitFor();
  assert.equal((await accessibleNode(page, '#email')).description, 'Enter a valid email address.');
});
