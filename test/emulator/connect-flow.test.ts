import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { handleConnectPage, type ConnectPageContext } from '../../src/emulator/connect-page.ts';
import { EmulatorStore, UnknownAccountError } from '../../src/emulator/store.ts';
import { api, emulatorFor, manualClock, rawRequest, startSilentServer, submitConnectForm as submit } from './helpers.ts';

const GRACE = '5f3c1e9a2b4d6f8071a3c5e7';

/** A tiny receiver for the source callback, closed when the test ends. */
async function callbackReceiver(t: TestContext) {
  const received: Array<{ method: string; contentType: string; body: URLSearchParams }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        contentType: req.headers['content-type'] ?? '',
        body: new URLSearchParams(Buffer.concat(chunks).toString()),
      });
      res.end('ok');
    });
  });
  const port = await listenOnLoopback(server);
  t.after(() => closeServer(server));
  return { url: `http://127.0.0.1:${port}/source-done`, received };
}

describe('connect flow', () => {
  test('top-level token: page, form, 303 to the callback, token used with the new account', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const created = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done?step=2', first_name: 'Ada' } });
    const { token, browser_redirect_url: browserUrl } = created.body;

    const page = await fetch(browserUrl);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    for (const name of ['email', 'first_name', 'last_name', 'server', 'port', 'username', 'password', 'use_ssl']) {
      assert.match(html, new RegExp(`<label for="${name}"`), `label for ${name}`);
      assert.match(html, new RegExp(`id="${name}" name="${name}"`), `input ${name}`);
    }
    assert.match(html, /<button type="submit" id="connect">/);
    assert.match(html, /id="first_name" name="first_name" value="Ada"/);
    assert.match(html, /id="port" name="port" value="993"/);
    assert.match(html, /id="use_ssl" name="use_ssl" value="1" checked/);
    // Self-contained: nothing it loads comes from anywhere (its empty icon is a data: URL, so no /favicon.ico 404).
    assert.doesNotMatch(html, /<img\b|src=|<link\b(?![^>]*href="data:,")/, 'self-contained');
    assert.equal(emu.requests.length, 1, 'connect pages are not in the API log');

    const submission = /name="submission" value="([0-9a-f]{24})"/.exec(html)?.[1];
    assert.ok(submission, 'the form carries its page’s mark');
    const res = await submit(emu.origin, token, {
      submission,
      email: 'ada@lovelace.example',
      first_name: 'Ada',
      last_name: 'Lovelace',
      server: '',
      port: '993',
      username: '',
      password: 'secret',
      use_ssl: '1',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, `https://app.example.com/done?step=2&contextio_token=${token}`);

    const used = await api(emu, `/connect_tokens/${token}`);
    assert.ok(used.body.used > 0, 'the token is used');
    assert.equal(used.body.expires, false);
    const account = used.body.account;
    assert.match(account.id, /^[0-9a-f]{24}$/);
    assert.deepEqual(account.email_addresses, ['ada@lovelace.example']);
    assert.equal(account.first_name, 'Ada');
    assert.equal(account.last_name, 'Lovelace');
    assert.equal(account.sources.length, 1);
    assert.equal(account.sources[0].label, 'ada::imap.lovelace.example');
    assert.equal(account.sources[0].status, 'OK');
    assert.equal(account.sources[0].use_ssl, true);
    assert.ok(!JSON.stringify(used.body).includes('secret'), 'the password is not kept');
    assert.equal((await api(emu, `/accounts/${account.id}`)).status, 200);

    const again = await fetch(browserUrl);
    assert.equal(again.status, 410);
    assert.match(await again.text(), /already been used/);
    // The same page's form sent again (a double click, a slow first answer) leads where the first one did,
    // not to "already used"; the token is not used twice.
    const resent = await submit(emu.origin, token, { submission, email: 'x@y.z' });
    assert.equal(resent.status, 303);
    assert.equal(resent.headers.location, `https://app.example.com/done?step=2&contextio_token=${token}`);
    assert.equal((await api(emu, `/connect_tokens/${token}`)).body.account.id, account.id);
    assert.equal((await api(emu, '/accounts')).body.length, 1);
    // Anyone else holding the link (no mark, or another page's) learns nothing of the app's callback.
    for (const other of [{}, { submission: 'f'.repeat(24) }] as Record<string, string>[]) {
      const stranger = await submit(emu.origin, token, { ...other, email: 'x@y.z' });
      assert.equal(stranger.status, 410);
      assert.equal(stranger.headers.location, undefined);
    }
  });

  test('the names typed on the form are the new account\'s, in place of the token\'s or where it has none', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const named = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', first_name: 'Ada', last_name: 'Byron' });
    const unnamed = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done' });
    assert.equal((await submit(emu.origin, named.token, { email: 'ada@example.com', first_name: 'Augusta', last_name: 'Lovelace' })).status, 303);
    assert.equal((await submit(emu.origin, unnamed.token, { email: 'grace@example.com', first_name: ' Grace ', last_name: 'Hopper' })).status, 303);
    const names = emu.store.listAccounts().map((a) => [a.first_name, a.last_name]);
    assert.deepEqual(names, [['Augusta', 'Lovelace'], ['Grace', 'Hopper']]);
  });

  test('the form sent again while the first submission waits for its save leads to the callback too', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const created = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example' } });
    const { token } = created.body;
    const html = await (await fetch(created.body.browser_redirect_url)).text();
    const submission = /name="submission" value="([0-9a-f]{24})"/.exec(html)![1]!;
    // A slow disk: the first submission's save has not finished when the second one arrives.
    let finishSave!: () => void;
    const saved = new Promise<undefined>((resolve) => (finishSave = () => resolve(undefined)));
    const flush = emu.store.flush.bind(emu.store);
    emu.store.flush = () => saved.then(flush);
    t.after(finishSave);
    const first = submit(emu.origin, token, { submission });
    await eventually(() => emu.store.connectTokenState(token) === 'used');
    const second = await submit(emu.origin, token, { submission });
    finishSave();
    assert.equal((await first).status, 303);
    assert.equal(second.status, 303, 'a double click is not told the link was already used');
    assert.equal(second.headers.location, `https://app.example.com/done?contextio_token=${token}`);
  });

  test('the redirect to the app waits for the connection to be saved', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example' });
    let finishSave!: () => void;
    const saved = new Promise<undefined>((resolve) => (finishSave = () => resolve(undefined)));
    let saveAwaited = false;
    const flush = emu.store.flush.bind(emu.store);
    emu.store.flush = () => {
      saveAwaited = true;
      return saved.then(flush);
    };
    t.after(finishSave);
    let answered = false;
    const response = submit(emu.origin, token, { port: '993' }).then((res) => {
      answered = true;
      return res;
    });
    await eventually(() => saveAwaited);
    assert.equal(emu.store.connectTokenState(token), 'used');
    assert.equal(answered, false, 'not sent the app before the save');
    finishSave();
    assert.equal((await response).status, 303);
  });

  test('closing the emulator stops a source callback under way, and says its failure to nobody', async (t) => {
    const silent = await startSilentServer();
    t.after(() => silent.close());
    const { requests } = silent;
    const failures: Error[] = [];
    const emu = await emulatorFor(t, { seed: 'none', onSourceCallbackFailed: (error) => failures.push(error) });
    const sourceCallbackUrl = `http://127.0.0.1:${silent.port}/cb`;
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example', source_callback_url: sourceCallbackUrl });
    assert.equal((await submit(emu.origin, token, { port: '993' })).status, 303);
    await eventually(() => requests.length === 1);
    await emu.close();
    // Left to its own 5 s deadline, the call would end later, said to onSourceCallbackFailed as unanswered.
    await eventually(() => requests[0]!.closed);
    assert.deepEqual(failures, []);
  });

  test('the same form sent again more than ten minutes after its use, by the clock the emulator was given, is told the link was used', async (t) => {
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const emu = await emulatorFor(t, { seed: 'none', now: clock.now });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example' });
    const html = (await rawRequest(emu.origin, { path: `/connect/${token}` })).text;
    const submission = /name="submission" value="([0-9a-f]{24})"/.exec(html)![1]!;
    assert.equal((await submit(emu.origin, token, { submission })).status, 303);
    clock.advance(10 * 60 - 1);
    assert.equal((await submit(emu.origin, token, { submission })).status, 303, 'within the ten minutes');
    clock.advance(1);
    const late = await submit(emu.origin, token, { submission });
    assert.equal(late.status, 410);
    assert.equal(late.headers.location, undefined);
  });

  test('the same form sent again after its used token was deleted is told the link is unknown, not led to the callback', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example' });
    const html = (await rawRequest(emu.origin, { path: `/connect/${token}` })).text;
    const submission = /name="submission" value="([0-9a-f]{24})"/.exec(html)![1]!;
    assert.equal((await submit(emu.origin, token, { submission })).status, 303);
    // The app deleted it: its link is gone, a double click within the ten minutes included.
    assert.equal((await api(emu, `/connect_tokens/${token}`, { method: 'DELETE' })).status, 200);
    const resent = await submit(emu.origin, token, { submission });
    assert.equal(resent.status, 404);
    assert.equal(resent.headers.location, undefined);
    assert.match(resent.text, /does not exist/);
  });

  test('the used tokens remembered for a form sent again are bounded: the expired are forgotten, then the oldest', async (t) => {
    // Years before the wall clock: by it, every entry would have expired long ago.
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const store = new EmulatorStore({ seed: 'none', now: clock.now });
    t.after(() => store.close());
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email: 'ada@lovelace.example' });
    const entry = (until: number) => ({ submission: 'f'.repeat(24), redirectUrl: 'https://app.example.com/done', until });
    const recentlyUsed = new Map([['expired', entry(clock.now() - 1)], ...Array.from({ length: 10_000 }, (_, i) => [`fresh${i}`, entry(clock.now() + 600_000)] as const)]);
    const ctx: ConnectPageContext = { store, now: clock.now, notifySourceCallback: () => {}, onInternalError: (error) => assert.fail(String(error)), recentlyUsed };
    const server = createServer((req, res) => void handleConnectPage(ctx, req, res, token));
    const port = await listenOnLoopback(server);
    t.after(() => closeServer(server));
    const origin = `http://127.0.0.1:${port}`;
    assert.equal((await submit(origin, token, { submission: 'a'.repeat(24) })).status, 303);
    assert.equal(recentlyUsed.size, 10_000);
    assert.deepEqual([...recentlyUsed.keys()].slice(0, 1), ['fresh1']);
    assert.ok(recentlyUsed.has(token), 'the token just used is remembered');
  });

  test('the store completes a token given only an address with the defaults the connect page suggests: an IMAP source on 993 with SSL, status OK', (t) => {
    const store = new EmulatorStore({ seed: 'none' });
    t.after(() => store.close());
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/done' });
    // The username is the address's local part as typed: a mail server may tell Ada from ada.
    const { source } = store.useConnectToken(token, { email: 'Ada@example.com' });
    assert.deepEqual([source.server, source.username, source.port, source.use_ssl, source.type, source.status], ['imap.example.com', 'Ada', 993, true, 'imap', 'OK']);
  });

  test('the store refuses to complete a token onto an account it does not know, blaming the account, and the token stays usable', (t) => {
    const store = new EmulatorStore({ seed: 'none' });
    t.after(() => store.close());
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/done' });
    // The token is fine: the caller's existingAccountId is what is wrong, said as every store call given an unknown account says it.
    assert.throws(
      () => store.useConnectToken(token, { email: 'a@example.com', existingAccountId: 'nobody' }),
      (error) => error instanceof UnknownAccountError && error.accountId === 'nobody' && error.message === 'account nobody is invalid',
    );
    assert.equal(store.connectTokenState(token), 'usable');
    assert.deepEqual(store.listAccounts(), []);
  });

  test('the store refuses an account-level token for an account it does not know, which the data file would refuse at the next start', (t) => {
    const store = new EmulatorStore({ seed: 'none' });
    t.after(() => store.close());
    assert.throws(
      () => store.createConnectToken('nobody', { callback_url: 'https://app.example.com/done' }),
      (error) => error instanceof UnknownAccountError && error.accountId === 'nobody',
    );
    assert.deepEqual(store.listConnectTokens('nobody'), []);
  });


  test('the store refuses a callback the API refuses (a scheme a browser runs or reads locally, no URL at all): the connect page would send the browser there', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (const callback of ['javascript:alert(document.domain)//', 'JavaScript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'not a url', 'x\ny']) {
      assert.equal((await api(emu, '/connect_tokens', { form: { callback_url: callback } })).status, 400, `the API refuses ${JSON.stringify(callback)}`);
      assert.throws(
        () => emu.store.createConnectToken(null, { callback_url: callback, email: 'ada@example.com' }),
        (error) => error instanceof TypeError && /^connect token not created: callback_url must be an absolute URL, http\(s\) or an app's own scheme/.test(error.message),
        JSON.stringify(callback),
      );
    }
    assert.deepEqual(emu.store.listConnectTokens(null), []);
    // An app's own scheme is a callback, as the API takes it.
    const app = emu.store.createConnectToken(null, { callback_url: 'myapp://connected', email: 'ada@example.com' });
    const res = await submit(emu.origin, app.token, { port: '993' });
    assert.deepEqual([res.status, res.headers.location], [303, `myapp://connected?contextio_token=${app.token}`]);
  });
  test("the store refuses a token's address the API refuses: the connect page shows it as the mailbox, to be used as it is, and refused every form sent with it", async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (const email of ['nobody', 'a b@example.com', '@']) {
      assert.equal((await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done', email } })).status, 400, `the API refuses ${JSON.stringify(email)}`);
      assert.throws(
        () => emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email }),
        (error) => error instanceof TypeError && /^connect token not created: email must be an email address or a domain such as @gmail\.com, as the API takes one$/.test(error.message),
        JSON.stringify(email),
      );
    }
    assert.deepEqual(emu.store.listConnectTokens(null), []);
    // What the API takes, the store takes: an address, a domain, or none (empty).
    for (const email of ['ada@example.com', '@gmail.com', '']) {
      const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/done', email });
      const res = await submit(emu.origin, token, { email: 'ada@example.com', port: '993' });
      assert.equal(res.status, 303, `a token with the address ${JSON.stringify(email)} is used`);
    }
  });
  test('a mailbox connected with another address adds it to the account\'s addresses, found by the email filter; the same address in other case adds none', async (t) => {
    const emu = await emulatorFor(t);
    const addresses = async () => (await api(emu, `/accounts/${GRACE}`)).body.email_addresses;
    const before = await addresses();
    assert.deepEqual(before, ['grace@example.org', 'grace.hopper@gmail.com']);
    const connect = async (email: string) => {
      const { token } = (await api(emu, `/accounts/${GRACE}/connect_tokens`, { form: { callback_url: 'http://localhost:3000/added' } })).body;
      assert.equal((await submit(emu.origin, token, { email, server: 'imap.example.org', password: 'pw' })).status, 303, email);
    };
    await connect('Grace@Example.ORG');
    assert.deepEqual(await addresses(), before, 'an address the account has, in other case, is not added again');
    await connect('grace@work.example');
    assert.deepEqual(await addresses(), [...before, 'grace@work.example']);
    assert.deepEqual((await api(emu, '/accounts?email=grace%40work.example')).body.map((a: { id: string }) => a.id), [GRACE]);
  });

  test("the store's answers are copies: changing an account it returned, or the account a used token keeps of a deleted one, changes nothing it holds", (t) => {
    const store = new EmulatorStore({ seed: 'none' });
    t.after(() => store.close());
    const { id } = store.createAccount({ email: 'ada@example.com' });
    store.getAccount(id)!.email_addresses.push('intruder@example.com');
    assert.deepEqual(store.getAccount(id)?.email_addresses, ['ada@example.com']);
    assert.deepEqual(store.listAccounts({ email: 'intruder@example.com' }), []);
    const { token } = store.createConnectToken(null, { callback_url: 'https://app.example.com/done' });
    const { account } = store.useConnectToken(token, { email: 'lin@example.com' });
    store.deleteAccount(account.id);
    const kept = () => store.getConnectToken(token)?.account as { email_addresses: string[] } | null | undefined;
    kept()!.email_addresses.push('intruder@example.com');
    assert.deepEqual(kept()?.email_addresses, ['lin@example.com']);
  });

  test('the store refuses an existingAccountId that is not the account-level token\'s own account, which it would silently ignore', (t) => {
    const store = new EmulatorStore({ seed: 'none' });
    t.after(() => store.close());
    const owner = store.createAccount({ email: 'owner@example.com' }).id;
    const other = store.createAccount({ email: 'other@example.com' }).id;
    const { token } = store.createConnectToken(owner, { callback_url: 'https://app.example.com/done' });
    assert.throws(() => store.useConnectToken(token, { email: 'a@example.com', existingAccountId: other }), /account-level token of account/);
    assert.equal(store.connectTokenState(token), 'usable');
    // Naming the token's own account is no contradiction.
    assert.equal(store.useConnectToken(token, { email: 'a@example.com', existingAccountId: owner }).account.id, owner);
  });

  test('a token with an email skips it; the callback gets ?contextio_token', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost:3000/cb', email: 'ben@mail.example.org' });
    const html = await (await fetch(`${emu.origin}/connect/${token.token}`)).text();
    assert.match(html, /type="hidden" id="email" name="email" value="ben@mail.example.org"/);
    assert.match(html, /id="server" name="server" value="imap.mail.example.org"/);
    assert.match(html, /id="username" name="username" value="ben"/);

    const res = await submit(emu.origin, token.token, { server: 'imap.mail.example.org', port: '993', username: 'ben', password: 'pw' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, `http://localhost:3000/cb?contextio_token=${token.token}`);
    assert.equal(emu.store.listAccounts({ email: 'ben@mail.example.org' }).length, 1);
  });

  test('a callback URL with non-ASCII characters or line breaks still ends in a redirect, however the token was made', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const callback = 'http://app.example/✓\r\nx-evil: 1';
    const created = await api(emu, '/connect_tokens', { form: { callback_url: callback, email: 'zoe@mail.example.org' } });
    assert.equal(created.status, 201);
    const viaApi = (created.body as { token: string }).token;
    const viaStore = emu.store.createConnectToken(null, { callback_url: callback, email: 'zed@mail.example.org' }).token;
    for (const [token, user] of [[viaApi, 'zoe'], [viaStore, 'zed']] as const) {
      const res = await submit(emu.origin, token, { server: 'imap.mail.example.org', port: '993', username: user, password: 'pw' });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, `http://app.example/%E2%9C%93x-evil:%201?contextio_token=${token}`);
      assert.equal(res.headers['x-evil'], undefined);
    }
  });

  test('account-level token adds a source to the account and posts the source callback', async (t) => {
    const emu = await emulatorFor(t);
    const receiver = await callbackReceiver(t);
    const created = await api(emu, `/accounts/${GRACE}/connect_tokens`, {
      form: { callback_url: 'http://localhost:3000/added', source_callback_url: receiver.url },
    });
    const { token } = created.body;
    const before = emu.store.listAccounts().length;
    // The page asks only for the mailbox: the account has its names, which the flow leaves as they are.
    const page = (await rawRequest(emu.origin, { path: `/connect/${token}` })).text;
    assert.match(page, /<h1>Add a mailbox to your account<\/h1>/);
    assert.doesNotMatch(page, /name="(first|last)_name"/);

    const res = await submit(emu.origin, token, {
      email: 'grace@work.example', server: 'imap.work.example', port: '143', username: 'ghopper', password: 'pw',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, `http://localhost:3000/added?contextio_token=${token}`);
    assert.equal(emu.store.listAccounts().length, before, 'no new account');

    const sources = (await api(emu, `/accounts/${GRACE}/sources`)).body;
    assert.equal(sources.length, 3);
    const added = sources[2];
    assert.deepEqual(
      { label: added.label, port: added.port, use_ssl: added.use_ssl, status: added.status, email: added.email },
      { label: 'ghopper::imap.work.example', port: 143, use_ssl: false, status: 'OK', email: 'grace@work.example' },
    );
    const tokenJson = (await api(emu, `/accounts/${GRACE}/connect_tokens/${token}`)).body;
    assert.equal(tokenJson.account.id, GRACE);
    assert.equal(tokenJson.account.sources.length, 3);

    await eventually(() => receiver.received.length === 1);
    const [call] = receiver.received;
    assert.equal(call!.method, 'POST');
    assert.match(call!.contentType, /^application\/x-www-form-urlencoded/);
    assert.equal(call!.body.get('account_id'), GRACE);
    assert.equal(call!.body.get('source_label'), 'ghopper::imap.work.example');
    assert.equal(call!.body.get('token'), token);
    assert.equal(call!.body.get('status'), 'OK');
    assert.equal(call!.body.get('email'), 'grace@work.example');
  });

  test('an emulator open to other machines does not POST a source callback to this machine, and says so', async (t) => {
    // Whoever reaches its connect page could otherwise make it (in `npm start`, the gateway's process) POST
    // to the machine's own services.
    const failures: Error[] = [];
    const emu = await emulatorFor(t, { seed: 'none', publicUrl: 'http://devbox.lan:4010', onSourceCallbackFailed: (error) => failures.push(error) });
    const receiver = await callbackReceiver(t);
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb', source_callback_url: receiver.url });
    const res = await submit(emu.origin, token.token, { email: 'x@example.com', port: '993' });
    assert.equal(res.status, 303);
    await eventually(() => failures.length === 1);
    assert.match(failures[0]!.message, /^source callback to 127\.0\.0\.1:\d+ refused: /);
    assert.deepEqual(receiver.received, []);
  });

  test('an unreachable source callback does not break the flow', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb', source_callback_url: 'http://127.0.0.1:1/nothing' });
    const res = await submit(emu.origin, token.token, { email: 'x@example.com', port: '993' });
    assert.equal(res.status, 303);
  });

  test('unknown and deleted tokens show an error page', async (t) => {
    const emu = await emulatorFor(t);
    const unknown = await rawRequest(emu.origin, { path: '/connect/doesnotexist0000' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers['content-type'] ?? '', /^text\/html/);
    assert.match(unknown.text, /does not exist/);
    // A link whose percent-encoding is broken names no token: an unknown link too, not a bad request.
    const malformed = await rawRequest(emu.origin, { path: '/connect/%zz' });
    assert.equal(malformed.status, 404);
    assert.match(malformed.text, /This connect link is not valid/);
    // So does a link cut short or run on (copied from a mail, say): a page for the person, not the API's JSON.
    for (const path of ['/connect', '/connect/', '/connect/demounused000001/extra']) {
      const cut = await rawRequest(emu.origin, { path });
      assert.equal(cut.status, 404, path);
      assert.match(cut.headers['content-type'] ?? '', /^text\/html/, path);
      assert.match(cut.text, /This connect link is not valid/, path);
    }
    await api(emu, '/connect_tokens/demounused000001', { method: 'DELETE' });
    assert.equal((await rawRequest(emu.origin, { path: '/connect/demounused000001' })).status, 404);
    assert.equal((await rawRequest(emu.origin, { path: '/connect/adaconnected0001' })).status, 410);
    // An account's deletion takes its account-level tokens with it: their links no longer lead to a form.
    const orphan = emu.store.createConnectToken(GRACE, { callback_url: 'http://localhost/cb' });
    assert.equal((await api(emu, `/accounts/${GRACE}`, { method: 'DELETE' })).status, 200);
    assert.equal((await rawRequest(emu.origin, { path: `/connect/${orphan.token}` })).status, 404);
  });

  test('the page answers HEAD, and forbids framing and sniffing', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    const head = await rawRequest(emu.origin, { method: 'HEAD', path: `/connect/${token.token}` });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const policy = String(head.headers['content-security-policy']);
    assert.match(policy, /frame-ancestors 'none'/);
    // Its one script by its hash (the browser tests see it run), so no script an escaping mistake let in would; no <base>.
    assert.match(policy, /script-src 'sha256-[A-Za-z0-9+/]{43}='; /);
    assert.match(policy, /base-uri 'none'/);
    assert.equal(head.headers['x-frame-options'], 'DENY');
    assert.equal(head.headers['x-content-type-options'], 'nosniff');
  });

  test('a domain hint is no address: the one typed is connected; use_ssl=0 is off; a callback ending in ? or & gets no extra &', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb?', email: '@gmail.com' });
    const res = await submit(emu.origin, token.token, { email: 'lin@gmail.com', port: '993', use_ssl: '0' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, `http://localhost/cb?contextio_token=${token.token}`);
    const [account] = emu.store.listAccounts({ email: 'lin@gmail.com' });
    assert.equal(account?.sources[0]?.use_ssl, false);
    // Nor one ending in & (its pairs left open for one more).
    const open = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb?step=2&' });
    const next = await submit(emu.origin, open.token, { email: 'kai@example.com' });
    assert.equal(next.headers.location, `http://localhost/cb?step=2&contextio_token=${open.token}`);
  });

  test('an address of an internationalized domain, its server left blank, connects to imap. and the domain in its ASCII form', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    const res = await submit(emu.origin, token, { email: 'zoë@exämple.com', server: '', port: '993' });
    assert.equal(res.status, 303);
    const [account] = emu.store.listAccounts({ email: 'zoë@exämple.com' });
    assert.equal(account?.sources[0]?.server, 'imap.xn--exmple-cua.com');
  });

  test('a callback URL that already carries contextio_token gets only the real one, the rest of it as given', async (t) => {
    // An app that reuses the URL it was last called back on (or a copied link) must not be handed two tokens:
    // URLSearchParams.get would read the stale one.
    const emu = await emulatorFor(t, { seed: 'none' });
    const callback = 'http://localhost/cb?contextio_token=stale&step=2&contextio%5Ftoken=x&a=b+c&%zz=1#top';
    const token = emu.store.createConnectToken(null, { callback_url: callback, email: 'lin@example.com' });
    const res = await submit(emu.origin, token.token, { port: '993' });
    assert.equal(res.status, 303);
    // A pair whose name is a malformed escape names no token: kept as written.
    assert.equal(res.headers.location, `http://localhost/cb?step=2&a=b+c&%zz=1&contextio_token=${token.token}#top`);
    assert.deepEqual(new URL(res.headers.location!).searchParams.getAll('contextio_token'), [token.token]);
  });

  test('a port left blank or spaces (a form a script sends; the page asks for one) connects on 993, as one left out does', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (const port of ['', '  ']) {
      const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
      const email = `blank${port.length}@example.com`;
      assert.equal((await submit(emu.origin, token.token, { email, port })).status, 303, JSON.stringify(port));
      assert.equal(emu.store.listAccounts({ email })[0]?.sources[0]?.port, 993, JSON.stringify(port));
    }
  });

  test('the username and server typed are read without the spaces around them (a pasted value), and spaces alone leave the defaults, as the names are', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const typed: Array<[Record<string, string>, string]> = [
      [{ email: 'ada@example.com', username: ' ada.l ', server: ' mail.example.com ' }, 'ada.l::mail.example.com'],
      [{ email: 'lin@example.com', username: '  ', server: '  ' }, 'lin::imap.example.com'],
    ];
    for (const [form, label] of typed) {
      const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
      assert.equal((await submit(emu.origin, token.token, { ...form, port: '993' })).status, 303, JSON.stringify(form));
      const source = emu.store.listAccounts({ email: form.email! })[0]?.sources[0];
      assert.deepEqual([source?.label, source?.username, source?.server], [label, ...label.split('::')], JSON.stringify(form));
    }
  });

  test('a form re-shown for a mistake keeps use_ssl=0 off, as its submission would have connected it', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    const bad = await submit(emu.origin, token.token, { email: 'lin@example.com', port: '0', use_ssl: '0' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /id="use_ssl" name="use_ssl" value="1">/, 'sent again as shown, the mailbox would otherwise be connected with SSL');
    const checked = await submit(emu.origin, token.token, { email: 'lin@example.com', port: '0', use_ssl: '1' });
    assert.match(checked.text, /id="use_ssl" name="use_ssl" value="1" checked>/);
  });

  test('invalid form input re-shows the form with a message and escapes everything', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, {
      callback_url: 'http://localhost/cb',
      first_name: '<script>alert("x")</script>',
    });
    const page = await (await fetch(`${emu.origin}/connect/${token.token}`)).text();
    assert.ok(!page.includes('<script>alert'), 'token values are escaped');
    assert.match(page, /&#60;script&#62;alert\(&#34;x&#34;\)/);

    const bad = await submit(emu.origin, token.token, { email: 'not-an-email"><b>', port: '993', password: 'hunter2' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /valid email/);
    assert.ok(!bad.text.includes('"><b>'), 'submitted values are escaped');
    assert.ok(!bad.text.includes('hunter2'), 'the password is never echoed');
    // Text that reads as a character reference comes back as typed, not as the character it names.
    const typed = await submit(emu.origin, token.token, { email: 'not-an-email', last_name: 'Smith &lt;b&gt; &amp;', port: '993' });
    assert.match(typed.text, /id="last_name" name="last_name" value="Smith &#38;lt;b&#38;gt; &#38;amp;"/);
    assert.equal((await submit(emu.origin, token.token, { email: 'a@b.example', port: '99999' })).status, 400);
    // One past the last port is the form's mistake too, said as such (not a store's refusal).
    const past = await submit(emu.origin, token.token, { email: 'a@b.example', port: '65536' });
    assert.deepEqual([past.status, /The port must be a number from 1 to 65535\./.test(past.text)], [400, true]);
    assert.equal((await submit(emu.origin, token.token, { email: 'a@b.example', port: '0' })).status, 400);
    // Digits only: a hexadecimal form that Number() would read is no port as typed.
    assert.equal((await submit(emu.origin, token.token, { email: 'a@b.example', port: '0x3e1' })).status, 400);
    assert.equal((await submit(emu.origin, token.token, { email: 'a@b.example', port: '993', server: 'imap.b.example/x' })).status, 400);
    // Dots and hyphens alone, or where a host name has none, are no server's name either: only its labels of 1 to 63.
    for (const server of ['.', '-', 'imap..b.example', '.imap.b.example', '-imap.b.example', 'imap-.b.example', `${'a'.repeat(64)}.b.example`]) {
      const refused = await submit(emu.origin, token.token, { email: 'a@b.example', port: '993', server });
      assert.deepEqual([refused.status, /Enter a valid IMAP server name\./.test(refused.text)], [400, true], server);
    }
    const json = await rawRequest(emu.origin, { method: 'POST', path: `/connect/${token.token}`, headers: { 'content-type': 'application/json' }, body: '{"email":"a@b.example"}' });
    assert.equal(json.status, 415);
    // No body and no type is no form either.
    assert.equal((await rawRequest(emu.origin, { method: 'POST', path: `/connect/${token.token}` })).status, 415);
    const malformed = await rawRequest(emu.origin, { method: 'POST', path: `/connect/${token.token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%zz' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.text, /malformed form body/);
    assert.equal(emu.store.connectTokenState(token.token), 'usable');
  });

  test('the form takes names, an address and a username no longer than the gateway lets a caller send: a longer one re-shows the form on that field', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    // Whoever holds a link reaches the page: a megabyte of names a flow, kept in the account and its used token,
    // which never expires, put the API's unpaged token list past the 32 MiB the gateway reads within 34 flows.
    const longest = { first_name: 'f'.repeat(256), last_name: 'l'.repeat(256), username: 'u'.repeat(256) };
    const address = `${'a'.repeat(254 - '@b.example'.length)}@b.example`;
    for (const [field, value, message] of [
      ['first_name', 'f'.repeat(257), /The first name is at most 256 characters long\./],
      ['last_name', 'l'.repeat(257), /The last name is at most 256 characters long\./],
      ['username', 'u'.repeat(257), /The username is at most 256 characters long\./],
      ['email', `a${address}`, /The email address is at most 254 characters long\./],
    ] as const) {
      const refused = await submit(emu.origin, token.token, { ...longest, email: address, port: '993', [field]: value });
      assert.deepEqual([refused.status, message.test(refused.text)], [400, true], field);
      assert.match(refused.text, new RegExp(`id="${field}" name="${field}" value="[^"]*" [^>]*aria-invalid="true"`), `${field} is marked as the field in error`);
      assert.equal(emu.store.connectTokenState(token.token), 'usable', `${field}: the token stays usable`);
    }
    const accepted = await submit(emu.origin, token.token, { ...longest, email: address, port: '993' });
    assert.equal(accepted.status, 303);
    const [account] = emu.store.listAccounts();
    assert.deepEqual([account?.first_name, account?.email_addresses, account?.sources[0]?.username], [longest.first_name, [address], longest.username]);
  });

  test('the form refuses, on its field, the characters the gateway refuses in what a caller sends: control and directional ones in names and usernames, invisible ones in addresses', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    const valid = { email: 'ada@b.example', first_name: 'Ada', last_name: 'Lovelace', username: 'ada', port: '993' };
    for (const [field, value, message] of [
      ['first_name', 'Ada\u001b[2J', /The first name must not contain control characters/],
      ['last_name', 'Love\nlace', /The last name must not contain control characters/],
      ['last_name', 'Lovelace\u202egpj.exe', /The last name must not contain control characters/],
      ['username', 'ada\u0000', /The username must not contain control characters/],
      ['email', 'ada\u200b@b.example', /Enter a valid email address\./],
      ['email', '\u0000@b.example', /Enter a valid email address\./],
    ] as const) {
      const refused = await submit(emu.origin, token.token, { ...valid, [field]: value });
      assert.deepEqual([refused.status, message.test(refused.text)], [400, true], `${field}: ${JSON.stringify(value)}`);
      assert.equal(emu.store.connectTokenState(token.token), 'usable', `${field}: the token stays usable`);
    }
    // What names are written with stays: joiners (Persian, Indic scripts) and direction marks of mixed-direction names.
    const accepted = await submit(emu.origin, token.token, { ...valid, first_name: 'می\u200cخواهم', last_name: 'Lovelace \u200fשלום' });
    assert.equal(accepted.status, 303);
  });

  test('unused tokens expire after 24 hours by the injected clock', async (t) => {
    // Half a second past the second: a time is the whole seconds the clock has passed, never the next.
    const clock = manualClock(Date.UTC(2024, 0, 1) + 500);
    const emu = await emulatorFor(t, { seed: 'none', now: clock.now });
    const ts = () => Math.floor(clock.now() / 1000);
    const created = await api(emu, '/connect_tokens', { form: { callback_url: 'http://localhost/cb' }, timestamp: ts() });
    const { token } = created.body;
    const usedToken = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    // Used now, by the clock given: `used`, and the new account's `created`, are that second (contextio-2.0.md: Unix seconds).
    const { token: usedNow, account } = emu.store.useConnectToken(usedToken.token, { email: 'kept@example.com' });
    assert.deepEqual([usedNow.used, account.created, usedNow.created], [ts(), ts(), ts()]);

    clock.advance(86_399);
    const fresh = await api(emu, `/connect_tokens/${token}`, { timestamp: ts() });
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.expires, Date.UTC(2024, 0, 1) / 1000 + 86_400);

    clock.advance(1);
    const page = await rawRequest(emu.origin, { path: `/connect/${token}` });
    assert.equal(page.status, 410);
    assert.match(page.text, /expired/);
    assert.equal((await api(emu, `/connect_tokens/${token}`, { timestamp: ts() })).status, 404);
    const list = await api(emu, '/connect_tokens', { timestamp: ts() });
    assert.deepEqual(list.body.map((x: { token: string }) => x.token), [usedToken.token], 'used tokens never expire');
    // Purged from the API by now, the link still says why it does not work, however often it is opened.
    for (let i = 0; i < 2; i++) {
      const again = await rawRequest(emu.origin, { path: `/connect/${token}` });
      assert.equal(again.status, 410);
      assert.match(again.text, /expired/);
    }
  });

  test('a token the store is given an earlier creation time for is unused, and usable until a day after that time', (t) => {
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const store = new EmulatorStore({ seed: 'none', now: clock.now });
    t.after(() => store.close());
    const now = Math.floor(clock.now() / 1000);
    const { token, used, expires } = store.createConnectToken(null, { callback_url: 'http://localhost/cb', created: now - 3_600 });
    assert.deepEqual([used, expires], [0, now - 3_600 + 86_400]);
    assert.equal(store.connectTokenState(token), 'usable');
    clock.advance(82_799);
    assert.equal(store.connectTokenState(token), 'usable');
    clock.advance(1);
    assert.equal(store.connectTokenState(token), 'expired');
  });

  test('the purged tokens remembered as expired are bounded: the oldest are forgotten first', (t) => {
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const store = new EmulatorStore({ seed: 'none', now: clock.now });
    t.after(() => store.close());
    const tokens = Array.from({ length: 10_001 }, () => store.createConnectToken(null, { callback_url: 'http://localhost/cb' }).token);
    clock.advance(86_400);
    store.purgeExpired();
    assert.equal(store.connectTokenState(tokens[0]!), 'missing');
    assert.equal(store.connectTokenState(tokens[1]!), 'expired');
    assert.equal(store.connectTokenState(tokens[10_000]!), 'expired');
  });

  test('a reset forgets the tokens purged as expired too: their links are unknown to the emptied store', (t) => {
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const store = new EmulatorStore({ seed: 'none', now: clock.now });
    t.after(() => store.close());
    const { token } = store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    clock.advance(86_400);
    store.purgeExpired();
    assert.equal(store.connectTokenState(token), 'expired');
    store.reset();
    assert.equal(store.connectTokenState(token), 'missing');
  });

  test('a token expired before any access is purged from the API, and its link says it expired', async (t) => {
    const clock = manualClock();
    const emu = await emulatorFor(t, { seed: 'none', now: clock.now });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    const deleted = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
    clock.advance(86_400);
    // Deleted first, before any other call purges it: gone already, as contextio-2.0.md has it, so a 404 too.
    assert.equal((await api(emu, `/connect_tokens/${deleted.token}`, { method: 'DELETE', timestamp: Math.floor(clock.now() / 1000) })).status, 404);
    assert.equal((await api(emu, `/connect_tokens/${token.token}`, { timestamp: Math.floor(clock.now() / 1000) })).status, 404);
    const page = await rawRequest(emu.origin, { path: `/connect/${token.token}` });
    assert.equal(page.status, 410);
    assert.match(page.text, /expired/);
    assert.equal((await rawRequest(emu.origin, { path: '/connect/neverIssued0001' })).status, 404, 'an unknown link is still unknown');
  });
});
