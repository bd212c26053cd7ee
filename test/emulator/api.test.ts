import assert from 'node:assert/strict';
import { connect, Server } from 'node:net';
import { describe, test } from 'node:test';
import { onTestTime } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { api, emulatorFor, rawRequest, signRequest } from './helpers.ts';

const ADA = '52daabefcea6f9c35a4a0997';
const GRACE = '5f3c1e9a2b4d6f8071a3c5e7';

describe('accounts', () => {
  test('GET /accounts lists the demo accounts with the upstream shape', async (t) => {
    const emu = await emulatorFor(t);
    const res = await api(emu, '/accounts');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.ok(Array.isArray(res.body), 'the accounts come as an array');
    assert.equal(res.body.length, 3);
    const ada = res.body[0];
    assert.deepEqual(Object.keys(ada).sort(), [
      'created', 'email_addresses', 'first_name', 'id', 'last_name', 'nb_files', 'nb_messages',
      'password_expired', 'resource_url', 'sources', 'suspended', 'username',
    ]);
    assert.equal(ada.id, ADA);
    assert.match(ada.id, /^[0-9a-f]{24}$/);
    assert.equal(ada.suspended, 0);
    assert.equal(ada.password_expired, 0);
    assert.equal(typeof ada.nb_messages, 'number');
    assert.equal(ada.resource_url, `${emu.url}/accounts/${ADA}`);
    assert.deepEqual(ada.email_addresses, ['ada@example.com']);
    const source = ada.sources[0];
    assert.equal(source.label, 'ada::imap.example.com');
    assert.equal(source.port, 993);
    assert.equal(source.use_ssl, true);
    assert.equal(source.type, 'imap');
    assert.equal(source.status, 'OK');
    assert.equal(source.resource_url, `${emu.url}/accounts/${ADA}/sources/ada%3A%3Aimap.example.com`);
  });

  test('filters: email, status, status_ok; the source filters list each account with its matching sources only', async (t) => {
    const emu = await emulatorFor(t);
    type Listed = Array<{ id: string; sources: Array<{ status: string }> }>;
    /** Each listed account's id with the statuses of the sources it is listed with. */
    const listed = async (query: string) => ((await api(emu, `/accounts?${query}`)).body as Listed).map((a) => [a.id, a.sources.map((s) => s.status)]);
    assert.deepEqual(await listed('email=GRACE%40example.org'), [[GRACE, ['OK', 'INVALID_CREDENTIALS']]]);
    assert.deepEqual(await listed('status=INVALID_CREDENTIALS'), [[GRACE, ['INVALID_CREDENTIALS']]]);
    assert.deepEqual(await listed('status_ok=1'), [
      [ADA, ['OK']],
      [GRACE, ['OK']],
    ]);
    const broken = await listed('status_ok=0');
    assert.deepEqual(broken.map(([, statuses]) => statuses), [['INVALID_CREDENTIALS'], ['CONNECTION_IMPOSSIBLE']]);
    assert.deepEqual(await listed('status=OK&status_ok=0'), [], 'both filters apply to the same source');
    emu.store.createAccount({ email: 'no.sources@example.com' });
    assert.equal((await listed('status_ok=1')).length, 2, 'an account without sources has none that works');
    assert.equal((await api(emu, '/accounts?status_ok=yes')).status, 400);
    assert.equal((await api(emu, '/accounts?service_level=pro')).status, 200, 'unknown parameters are ignored');
  });

  test('paging with limit and offset; limit over 100 or malformed numbers are 400', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (let i = 0; i < 25; i++) emu.store.createAccount({ email: `user${i}@example.com` });
    const first = await api(emu, '/accounts?limit=10');
    assert.equal(first.body.length, 10);
    // Zero-based: offset 0 is the first page.
    assert.deepEqual((await api(emu, '/accounts?limit=10&offset=0')).body, first.body);
    const third = await api(emu, '/accounts?limit=10&offset=20');
    assert.deepEqual(third.body.map((a: { email_addresses: string[] }) => a.email_addresses[0]), [
      'user20@example.com', 'user21@example.com', 'user22@example.com', 'user23@example.com', 'user24@example.com',
    ]);
    assert.equal((await api(emu, '/accounts?limit=10&offset=30')).body.length, 0);
    assert.equal((await api(emu, '/accounts?limit=100')).status, 200);
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'limit=1.5', 'offset=x', 'offset=-3']) {
      const res = await api(emu, `/accounts?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.type, 'error');
      assert.equal(typeof res.body.value, 'string');
    }
  });

  test('create, read, update, delete', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const created = await api(emu, '/accounts', { form: { email: 'new@example.com', first_name: 'New', last_name: 'Person' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.success, true);
    assert.match(created.body.id, /^[0-9a-f]{24}$/);
    assert.equal(created.body.resource_url, `${emu.url}/accounts/${created.body.id}`);
    const id: string = created.body.id;

    const got = await api(emu, `/accounts/${id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.first_name, 'New');
    assert.deepEqual(got.body.email_addresses, ['new@example.com']);
    assert.deepEqual(got.body.sources, []);
    // 0 is "not set" (contextio-2.0.md): a new account is neither suspended nor has its password expired.
    assert.deepEqual([got.body.suspended, got.body.password_expired, got.body.nb_messages, got.body.nb_files], [0, 0, 0, 0]);

    const updated = await api(emu, `/accounts/${id}`, { form: { first_name: 'Renamed', last_name: 'Surname' } });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body, { success: true });
    const renamed = (await api(emu, `/accounts/${id}`)).body;
    assert.deepEqual([renamed.first_name, renamed.last_name], ['Renamed', 'Surname']);

    const deleted = await api(emu, `/accounts/${id}`, { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.body, { success: true });
    const gone = await api(emu, `/accounts/${id}`);
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, { type: 'error', value: `account ${id} is invalid` });
    assert.equal((await api(emu, `/accounts/${id}`, { method: 'DELETE' })).status, 404);
  });

  test('a used token embeds its account as it is, and goes on embedding it as it last was once that account is deleted', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    const { account } = emu.store.useConnectToken(token, { email: 'ada@example.com', first_name: 'Ada' });
    assert.equal((await api(emu, `/accounts/${account.id}`, { form: { first_name: 'Renamed' } })).status, 200);
    // While the account lives, the token embeds it as it is now.
    assert.equal((await api(emu, `/connect_tokens/${token}`)).body.account.first_name, 'Renamed');
    assert.equal((await api(emu, `/accounts/${account.id}`, { method: 'DELETE' })).status, 200);
    const embedded = (await api(emu, `/connect_tokens/${token}`)).body.account;
    assert.equal(embedded.id, account.id);
    assert.equal(embedded.first_name, 'Renamed', 'not the name it had when the token was used');
  });

  test('POST /accounts with a first source', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const created = await api(emu, '/accounts', {
      form: { email: 'me@mail.example.com', server: 'mail.example.com', username: 'me', port: '993', use_ssl: '1' },
    });
    assert.equal(created.status, 201);
    const account = emu.store.getAccount(created.body.id)!;
    assert.equal(account.sources[0]?.label, 'me::mail.example.com');
    // A server left blank (a form sending its every field) is no first source.
    const blank = await api(emu, '/accounts', { form: { email: 'blank@example.com', server: '' } });
    assert.equal(blank.status, 201);
    assert.deepEqual(emu.store.getAccount(blank.body.id)!.sources, []);
    // Each parameter is the source's, not the default the address gives (its local part, 993, SSL).
    const given = await api(emu, '/accounts', {
      form: { email: 'ada@example.com', server: 'mail.example.com', username: 'ada.l', port: '143', use_ssl: '0' },
    });
    const source = emu.store.getAccount(given.body.id)!.sources[0];
    assert.deepEqual([source?.label, source?.username, source?.server, source?.port, source?.use_ssl], ['ada.l::mail.example.com', 'ada.l', 'mail.example.com', 143, false]);
  });

  test('POST /accounts: a first source of type IMAP, in any case, is shown as "imap"; another type is 400', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (const type of ['IMAP', 'Imap']) {
      const created = await api(emu, '/accounts', { form: { email: 'me@mail.example.com', server: 'mail.example.com', type } });
      assert.equal(created.status, 201, type);
      const sources = await api(emu, `/accounts/${created.body.id}/sources`);
      assert.deepEqual(sources.body.map((s: { type: string }) => s.type), ['imap'], type);
    }
    const pop = await api(emu, '/accounts', { form: { email: 'pop@mail.example.com', server: 'mail.example.com', type: 'pop3' } });
    assert.deepEqual([pop.status, pop.body.type], [400, 'error']);
    assert.equal(emu.store.listAccounts().length, 2, 'the refused account is not made');
  });

  test('a form value wins over the query string’s of the same name; of a repeated name the first counts', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const created = await api(emu, '/accounts?email=query%40example.com', { form: { email: 'form@example.com' } });
    assert.equal(created.status, 201);
    assert.deepEqual(emu.store.getAccount(created.body.id)?.email_addresses, ['form@example.com']);
    emu.store.createAccount({ email: 'other@example.com' });
    const listed = await api(emu, '/accounts?email=other%40example.com&email=form%40example.com');
    assert.deepEqual(listed.body.map((a: { email_addresses: string[] }) => a.email_addresses[0]), ['other@example.com']);
  });

  test('the email filter ignores case; an empty filter (email, status, status_ok) filters nothing, for accounts as for sources', async (t) => {
    const emu = await emulatorFor(t);
    assert.deepEqual((await api(emu, '/accounts?email=ADA%40Example.COM')).body.map((a: { id: string }) => a.id), [ADA]);
    const mixed = emu.store.createAccount({ email: 'Mixed.Case@Example.com' });
    assert.deepEqual((await api(emu, '/accounts?email=mixed.case%40example.com')).body.map((a: { id: string }) => a.id), [mixed.id]);
    // A form that sends every field, those left blank too.
    for (const query of ['status_ok=', 'status=', 'email=', 'email=&status=&status_ok=']) {
      const empty = await api(emu, `/accounts?${query}`);
      assert.equal(empty.status, 200, query);
      assert.equal(empty.body.length, 4, query);
    }
    for (const query of ['status=', 'status_ok=']) {
      assert.equal((await api(emu, `/accounts/${GRACE}/sources?${query}`)).body.length, 2, query);
    }
  });

  test('POST /accounts takes a first source\'s server as the connect page does: trimmed, in ASCII, a host name or 400', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const made = async (server: string) => {
      const res = await api(emu, '/accounts', { form: { email: 'me@example.com', server } });
      assert.equal(res.status, 201, server);
      return emu.store.getAccount(res.body.id)!.sources.map((s) => [s.server, s.label]);
    };
    assert.deepEqual(await made(' mail.example.com '), [['mail.example.com', 'me::mail.example.com']]);
    assert.deepEqual(await made('imap.exämple.com'), [['imap.xn--exmple-cua.com', 'me::imap.xn--exmple-cua.com']]);
    // Blank, as a form sending its every field sends it: no first source.
    assert.deepEqual(await made('   '), []);
    // No host name: a label `me::mail example.com` or `me::a/b` would be none either.
    for (const server of ['mail example.com', 'mail.example.com/inbox', 'mail.example.com:993', '<b>x</b>']) {
      const res = await api(emu, '/accounts', { form: { email: 'other@example.com', server } });
      assert.deepEqual(
        [res.status, res.body.value],
        [400, `server ${server} is invalid: a mail server's host name is letters, digits, dots and hyphens`],
        server,
      );
    }
    assert.deepEqual(emu.store.listAccounts({ email: 'other@example.com' }), [], 'no account made for a refused source');
  });

  test('the email filter is trimmed, as the address POST /accounts keeps is', async (t) => {
    const emu = await emulatorFor(t);
    const created = await api(emu, '/accounts', { form: { email: ' spaced@example.com ' } });
    assert.equal(created.status, 201);
    for (const query of ['email=%20spaced%40example.com%20', 'email=spaced%40example.com', 'email=%09Spaced%40Example.com']) {
      assert.deepEqual((await api(emu, `/accounts?${query}`)).body.map((a: { id: string }) => a.id), [created.body.id], query);
    }
    assert.equal((await api(emu, '/accounts?email=%20%20')).body.length, emu.store.listAccounts().length, 'a blank filter filters nothing');
  });

  test('POST /accounts with a first source on port 0 is 400', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const res = await api(emu, '/accounts', { form: { email: 'new@example.com', server: 'imap.example.com', port: '0' } });
    assert.deepEqual([res.status, res.body.value], [400, 'invalid parameter port: must be an integer from 1 to 65535']);
  });

  test('POST /accounts without email, or with a bad one, is 400', async (t) => {
    const emu = await emulatorFor(t);
    const missing = await api(emu, '/accounts', { form: { first_name: 'X' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.type, 'error');
    assert.equal((await api(emu, '/accounts', { form: { email: 'not-an-email' } })).status, 400);
    // The whole value is the address: a space inside it, or a second @, is no email, whatever ends it.
    for (const email of ['ada lovelace@example.com', 'ada@example.com@example.org', 'x\tada@example.com']) {
      const res = await api(emu, '/accounts', { form: { email } });
      assert.deepEqual([res.status, res.body.value], [400, `email ${email} is invalid`], email);
    }
  });

  test('an error quotes what was sent cut to 100 characters, whatever its length: a 1 MiB body is not echoed whole', async (t) => {
    const emu = await emulatorFor(t);
    const quoted = (value: string) => `${value.slice(0, 100)}…`;
    const email = `${'a'.repeat(200_000)} x@example.com`;
    const server = `${'a'.repeat(200_000)}_`;
    const [account, source, token] = ['b', 'c', 'd'].map((letter) => letter.repeat(5000));
    const cases: Array<[string, () => Promise<{ status: number; body: { value: string } }>, number, string]> = [
      ['POST /accounts email', () => api(emu, '/accounts', { form: { email } }), 400, `email ${quoted(email)} is invalid`],
      ['POST /accounts server', () => api(emu, '/accounts', { form: { email: 'x@example.com', server } }), 400, `server ${quoted(server)} is invalid: a mail server's host name is letters, digits, dots and hyphens`],
      ['POST /connect_tokens email', () => api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example/cb', email } }), 400, `email ${quoted(email)} is invalid`],
      ['GET an unknown account', () => api(emu, `/accounts/${account}`), 404, `account ${quoted(account!)} is invalid`],
      ['GET an unknown source', () => api(emu, `/accounts/${ADA}/sources/${source}`), 404, `source ${quoted(source!)} is invalid`],
      ['GET an unknown token', () => api(emu, `/connect_tokens/${token}`), 404, `connect_token ${quoted(token!)} is invalid`],
    ];
    for (const [name, answer, status, value] of cases) {
      const res = await answer();
      assert.deepEqual([res.status, res.body.value], [status, value], name);
    }
  });

  test('an account made without a username gets one shaped like the upstream sample’s: its address with the @ as a dot, _ and 16 hex digits', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const res = await api(emu, '/accounts', { form: { email: 'me@example.com' } });
    assert.equal(res.status, 201);
    assert.match((await api(emu, `/accounts/${String(res.body.id)}`)).body.username, /^me\.example\.com_[0-9a-f]{16}$/);
  });

  test('POST /accounts and POST /connect_tokens read an email without the spaces around it; spaces alone are no email', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const account = await api(emu, '/accounts', { form: { email: '  ada@example.com\t' } });
    assert.equal(account.status, 201);
    const created = await api(emu, `/accounts/${String(account.body.id)}`);
    assert.deepEqual(created.body.email_addresses, ['ada@example.com']);
    // The store's own API (tests, benchmarks) reads it so too.
    assert.deepEqual(emu.store.createAccount({ email: ' zoe@example.com\n' }).email_addresses, ['zoe@example.com']);
    const blank = await api(emu, '/accounts', { form: { email: '   ' } });
    assert.deepEqual([blank.status, blank.body.value], [400, 'missing required parameter: email']);

    const token = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done', email: ' grace@example.com ' } });
    assert.equal(token.status, 201);
    assert.equal((await api(emu, `/connect_tokens/${String(token.body.token)}`)).body.email, 'grace@example.com');
    const noEmail = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done', email: '  ' } });
    assert.equal((await api(emu, `/connect_tokens/${String(noEmail.body.token)}`)).body.email, '');
    // A domain hint, as the reference's own test vector sends: no address, but a token's email may be one.
    const hinted = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/done', email: '@gmail.com' } });
    assert.equal(hinted.status, 201);
    assert.equal((await api(emu, `/connect_tokens/${String(hinted.body.token)}`)).body.email, '@gmail.com');
  });

  test('unknown account, unknown route, wrong method, trailing slash', async (t) => {
    const emu = await emulatorFor(t);
    const unknownId = '0123456789abcdef01234567';
    assert.deepEqual((await api(emu, `/accounts/${unknownId}`)).body, { type: 'error', value: `account ${unknownId} is invalid` });
    assert.equal((await api(emu, '/nothing-here')).status, 404);
    // A segment that decodes to nothing (a lone %) is the client's mistake, not a resource that is not there.
    const malformed = await api(emu, '/accounts/%zz');
    assert.deepEqual([malformed.status, malformed.body], [400, { type: 'error', value: 'malformed path' }]);
    assert.equal((await api(emu, '/accounts/x/messages')).status, 404);
    // A known resource with a segment more is no route: not the resource, its last segment ignored.
    assert.equal((await api(emu, `/accounts/${ADA}/sources/0/extra`)).status, 404);
    assert.equal((await api(emu, '/connect_tokens/adaconnected0001')).status, 200);
    assert.equal((await api(emu, '/connect_tokens/adaconnected0001/extra')).status, 404);
    const put = await api(emu, '/accounts', { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, HEAD, POST');
    assert.equal((await api(emu, `/accounts/${ADA}`, { method: 'PUT' })).headers.get('allow'), 'GET, HEAD, POST, DELETE');
    assert.equal((await api(emu, `/accounts/${ADA}/sources`, { method: 'DELETE' })).status, 405);
    assert.equal((await api(emu, '/connect_tokens/abc', { method: 'POST', form: {} })).status, 405);
    const slash = await api(emu, '/accounts/');
    assert.equal(slash.status, 200);
    assert.equal(slash.body.length, 3);
    assert.equal((await api(emu, `/accounts/${ADA}/`)).body.id, ADA);
  });

  test('only /2.0 and what is under /2.0/ is the API, and a connect link is /connect/<token> alone: anything else is 404, unsigned', async (t) => {
    const emu = await emulatorFor(t);
    // Unsigned: the API's paths would answer 401 first.
    assert.equal((await fetch(`${emu.origin}/2.0/accounts`)).status, 401);
    assert.equal((await fetch(`${emu.origin}/2.0`)).status, 401, 'the base URL itself is the API’s');
    for (const path of ['/2.0accounts', '/2.0x/accounts']) {
      const res = await fetch(`${emu.origin}${path}`);
      assert.equal(res.status, 404, path);
      assert.match(((await res.json()) as { value: string }).value, /the API lives under \/2\.0/, path);
    }
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    assert.equal((await fetch(`${emu.origin}/connect/${token}/`)).status, 200);
    assert.equal((await fetch(`${emu.origin}/connect/${token}/extra`)).status, 404);
  });

  test('every response is application/json exactly, errors included, and kept by no cache', async (t) => {
    const emu = await emulatorFor(t);
    for (const res of [await api(emu, '/accounts'), await api(emu, '/nope'), await api(emu, '/accounts', { authorization: null })]) {
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
  });
});

describe('sources', () => {
  test('list, filter and get by label (encoded, raw "::" and "0")', async (t) => {
    const emu = await emulatorFor(t);
    const list = await api(emu, `/accounts/${GRACE}/sources`);
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 2);
    // Not paged: `limit` and `offset` are ignored, as any parameter a resource does not know.
    assert.equal((await api(emu, `/accounts/${GRACE}/sources?limit=1&offset=-1`)).body.length, 2);
    assert.deepEqual((await api(emu, `/accounts/${GRACE}/sources?status=INVALID_CREDENTIALS`)).body.map((s: { label: string }) => s.label), [
      'grace.hopper::imap.gmail.com',
    ]);
    assert.deepEqual((await api(emu, `/accounts/${GRACE}/sources?status_ok=1`)).body.map((s: { label: string }) => s.label), [
      'grace::mail.example.org',
    ]);

    const encoded = await api(emu, `/accounts/${GRACE}/sources/grace.hopper%3A%3Aimap.gmail.com`);
    assert.equal(encoded.status, 200);
    assert.equal(encoded.body.label, 'grace.hopper::imap.gmail.com');
    assert.equal(encoded.body.status, 'INVALID_CREDENTIALS');
    assert.equal(encoded.body.authentication_type, 'oauth2');

    const raw = await api(emu, `/accounts/${GRACE}/sources/grace.hopper::imap.gmail.com`);
    assert.equal(raw.status, 200, 'unencoded :: is accepted and the signature matches the raw path');
    assert.equal(raw.body.label, 'grace.hopper::imap.gmail.com');

    assert.equal((await api(emu, `/accounts/${GRACE}/sources/0`)).body.label, 'grace::mail.example.org');
    // Answered as an unknown account is (contextio-2.0.md), naming the label as the path gave it.
    const unknown = await api(emu, `/accounts/${GRACE}/sources/nope%3A%3Ax`);
    assert.deepEqual([unknown.status, unknown.body], [404, { type: 'error', value: 'source nope::x is invalid' }]);
    assert.equal((await api(emu, '/accounts/0123456789abcdef01234567/sources')).status, 404);
  });

  test('a source carries every field the reference lists, listed, got alone or embedded in its account', async (t) => {
    const emu = await emulatorFor(t);
    const listed = (await api(emu, `/accounts/${GRACE}/sources`)).body[0];
    const alone = (await api(emu, `/accounts/${GRACE}/sources/0`)).body;
    const embedded = (await api(emu, `/accounts/${GRACE}`)).body.sources[0];
    for (const source of [listed, alone, embedded]) {
      assert.deepEqual(Object.keys(source).sort(), [
        'authentication_type', 'email', 'label', 'port', 'resource_url', 'server', 'status', 'status_message', 'sync_period', 'type', 'use_ssl', 'username',
      ]);
    }
    assert.deepEqual(alone, listed);
  });

  test('the same mailbox connected twice to one account gets a label of its own the second time, each source reached by its own', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { id } = (await api(emu, '/accounts', { form: { email: 'x@example.com', server: 'imap.example.com' } })).body;
    const { token } = emu.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    emu.store.useConnectToken(token, { email: 'x@example.com', port: 143, use_ssl: false });
    const labels = (await api(emu, `/accounts/${id}/sources`)).body.map((s: { label: string }) => s.label);
    assert.deepEqual(labels, ['x::imap.example.com', 'x::imap.example.com-2']);
    assert.equal((await api(emu, `/accounts/${id}/sources/x%3A%3Aimap.example.com`)).body.port, 993);
    assert.equal((await api(emu, `/accounts/${id}/sources/x%3A%3Aimap.example.com-2`)).body.port, 143);
  });

  test('an unknown account is a 404 whatever its sources filter, as for its other resources (found by fuzzing)', async (t) => {
    const emu = await emulatorFor(t);
    const res = await api(emu, '/accounts/0123456789abcdef01234567/sources?status_ok=yes');
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { type: 'error', value: 'account 0123456789abcdef01234567 is invalid' });
    assert.equal((await api(emu, `/accounts/${GRACE}/sources?status_ok=yes`)).status, 400, 'a known account’s bad filter stays a 400');
    const source = await api(emu, '/accounts/0123456789abcdef01234567/sources/0');
    assert.deepEqual([source.status, source.body], [404, { type: 'error', value: 'account 0123456789abcdef01234567 is invalid' }], 'a source of an unknown account');
  });

  test('store.addSource shows up through HTTP', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const account = emu.store.createAccount({ email: 'x@example.com' });
    const source = emu.store.addSource(account.id, { status: 'TEMP_DISABLED' });
    assert.equal(source.label, 'x::imap.example.com');
    const res = await api(emu, `/accounts/${account.id}/sources/${encodeURIComponent(source.label)}`);
    assert.equal(res.body.status, 'TEMP_DISABLED');
  });

  test('store.updateAccount changes the names given: one left undefined (an optional field spread in) keeps its value', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const account = emu.store.createAccount({ email: 'x@example.com', first_name: 'Ada', last_name: 'Byron' });
    assert.equal(emu.store.updateAccount(account.id, { first_name: undefined, last_name: 'Lovelace' }), true);
    const got = (await api(emu, `/accounts/${account.id}`)).body;
    assert.deepEqual([got.first_name, got.last_name], ['Ada', 'Lovelace']);
  });
});

describe('connect tokens', () => {
  test('top-level: create, get, list, delete', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    assert.deepEqual((await api(emu, '/connect_tokens')).body, []);
    const created = await api(emu, '/connect_tokens', {
      form: { callback_url: 'https://app.example.com/cb', email: 'who@example.com', first_name: 'Who', service_level: 'pro' },
    });
    assert.equal(created.status, 201);
    const { token } = created.body;
    assert.match(token, /^[a-z0-9]{16}$/);
    assert.deepEqual(created.body, {
      success: true,
      token,
      resource_url: `${emu.url}/connect_tokens/${token}`,
      browser_redirect_url: `${emu.origin}/connect/${token}`,
    });

    const got = await api(emu, `/connect_tokens/${token}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.token, token);
    assert.equal(got.body.email, 'who@example.com');
    assert.equal(got.body.first_name, 'Who');
    assert.equal(got.body.used, 0);
    assert.equal(got.body.expires, got.body.created + 86400);
    assert.equal(got.body.callback_url, 'https://app.example.com/cb');
    assert.deepEqual(got.body.account, {});

    const list = await api(emu, '/connect_tokens');
    assert.deepEqual(list.body.map((x: { token: string }) => x.token), [token]);
    // Unpaged, as the reference has the token lists: limit and offset are no parameters of theirs, so ignored.
    const another = (await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } })).body.token;
    assert.deepEqual((await api(emu, '/connect_tokens?limit=1&offset=1')).body.map((x: { token: string }) => x.token), [token, another]);
    assert.equal((await api(emu, `/connect_tokens/${another}`, { method: 'DELETE' })).status, 200);

    assert.deepEqual((await api(emu, `/connect_tokens/${token}`, { method: 'DELETE' })).body, { success: true });
    assert.deepEqual((await api(emu, `/connect_tokens/${token}`)).body, { type: 'error', value: `connect_token ${token} is invalid` });
    assert.equal((await api(emu, `/connect_tokens/${token}`, { method: 'DELETE' })).status, 404);
  });

  test('a token carries every field the reference lists, its names and email "" when none were given', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { token } = (await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } })).body;
    for (const res of [await api(emu, `/connect_tokens/${token}`), { body: (await api(emu, '/connect_tokens')).body[0] }]) {
      assert.deepEqual(Object.keys(res.body).sort(), [
        'account', 'callback_url', 'created', 'email', 'expires', 'first_name', 'last_name', 'token', 'used',
      ]);
      assert.deepEqual([res.body.email, res.body.first_name, res.body.last_name], ['', '', '']);
    }
  });

  test('request flags are 0 or 1, as the API takes them: anything else is 400', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (const flag of ['source_sync_all_folders', 'source_sync_flags', 'source_raw_file_list']) {
      for (const value of ['true', 'yes', '2', '']) {
        const res = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb', [flag]: value } });
        assert.deepEqual([res.status, res.body.value], [400, `invalid parameter ${flag}: must be 0 or 1`], `${flag}=${value}`);
      }
    }
    assert.equal((await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb', source_sync_flags: '1', source_raw_file_list: '0' } })).status, 201);
    const account = await api(emu, '/accounts', { form: { email: 'a@example.com', server: 'imap.example.com', use_ssl: 'true' } });
    assert.deepEqual([account.status, account.body.value], [400, 'invalid parameter use_ssl: must be 0 or 1']);
  });

  test('POST without callback_url (or a bad one) is 400', async (t) => {
    const emu = await emulatorFor(t);
    const res = await api(emu, '/connect_tokens', { form: { email: 'a@b.c' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.type, 'error');
    // The connect page sends the browser there: never to a page of the browser's own making (a script, data, a file).
    for (const callback_url of ['javascript:alert(1)', 'data:text/html,<h1>Sign in</h1>', 'file:///etc/passwd', 'blob:http://a.example/1']) {
      assert.equal((await api(emu, '/connect_tokens', { form: { callback_url } })).status, 400, callback_url);
    }
    assert.equal((await api(emu, '/connect_tokens', { form: { callback_url: 'cio-api-auth://done' } })).status, 201, 'an app\'s own scheme');
    // The emulator POSTs to source_callback_url itself: only http(s) is called.
    const ftp = await api(emu, '/connect_tokens', { form: { callback_url: 'http://a.example/', source_callback_url: 'ftp://a.example/' } });
    assert.deepEqual([ftp.status, ftp.body.value], [400, 'source_callback_url is invalid']);
    for (const scheme of ['http', 'https']) {
      const res = await api(emu, '/connect_tokens', { form: { callback_url: 'http://a.example/', source_callback_url: `${scheme}://a.example/sync` } });
      assert.equal(res.status, 201, scheme);
    }
    // So is status_callback_url, which the API calls on a source's status change.
    for (const status_callback_url of ['ftp://a.example/', 'javascript:alert(1)', 'not a url']) {
      const res = await api(emu, '/connect_tokens', { form: { callback_url: 'http://a.example/', status_callback_url } });
      assert.deepEqual([res.status, res.body.value], [400, 'status_callback_url is invalid'], status_callback_url);
    }
    const status = await api(emu, '/connect_tokens', { form: { callback_url: 'http://a.example/', status_callback_url: 'https://a.example/status' } });
    assert.equal(status.status, 201);
    assert.equal((await api(emu, `/accounts/${ADA}/connect_tokens`, { form: {} })).status, 400);
  });

  test('POST with an email that is neither an address nor a domain hint (@ and a domain) is 400; a hint is taken', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const withEmail = (email: string) => api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb', email } });
    for (const email of ['@', '@gmail com', '@gmail.com@x']) {
      const res = await withEmail(email);
      assert.deepEqual([res.status, res.body.value], [400, `email ${email} is invalid`], email);
    }
    assert.equal((await withEmail('@gmail.com')).status, 201);
  });

  test('account-level: scoped to the account', async (t) => {
    const emu = await emulatorFor(t);
    const created = await api(emu, `/accounts/${ADA}/connect_tokens`, { form: { callback_url: 'http://localhost/cb' } });
    assert.equal(created.status, 201);
    const { token } = created.body;
    assert.equal(created.body.resource_url, `${emu.url}/accounts/${ADA}/connect_tokens/${token}`);
    assert.equal(created.body.browser_redirect_url, `${emu.origin}/connect/${token}`);

    const list = await api(emu, `/accounts/${ADA}/connect_tokens`);
    assert.deepEqual(list.body.map((x: { token: string }) => x.token), [token]);
    // Unpaged, as the top-level list.
    assert.deepEqual((await api(emu, `/accounts/${ADA}/connect_tokens?limit=1&offset=1`)).body.map((x: { token: string }) => x.token), [token]);
    const graceList = await api(emu, `/accounts/${GRACE}/connect_tokens`);
    assert.deepEqual(graceList.body.map((x: { token: string }) => x.token), ['gracesecond00001']);
    const topLevel = await api(emu, '/connect_tokens');
    assert.ok(!topLevel.body.some((x: { token: string }) => x.token === token), 'top-level list holds only top-level tokens');

    assert.equal((await api(emu, `/accounts/${ADA}/connect_tokens/${token}`)).status, 200);
    assert.equal((await api(emu, `/accounts/${GRACE}/connect_tokens/${token}`)).status, 404);
    // Like the list: the top-level path reaches top-level tokens only, for reading and for deleting.
    assert.equal((await api(emu, `/connect_tokens/${token}`)).status, 404);
    assert.equal((await api(emu, `/connect_tokens/${token}`, { method: 'DELETE' })).status, 404);
    assert.equal((await api(emu, '/accounts/0123456789abcdef01234567/connect_tokens')).status, 404);
    assert.equal((await api(emu, '/accounts/0123456789abcdef01234567/connect_tokens', { form: { callback_url: 'http://x/' } })).status, 404);

    assert.equal((await api(emu, `/accounts/${GRACE}/connect_tokens/${token}`, { method: 'DELETE' })).status, 404);
    assert.equal((await api(emu, `/accounts/${ADA}/connect_tokens/${token}`, { method: 'DELETE' })).status, 200);
    assert.equal((await api(emu, `/accounts/${ADA}/connect_tokens/${token}`)).status, 404);
  });

  test('a token under an unknown account is answered as the unknown account, reading or deleting, as every call under it is', async (t) => {
    const emu = await emulatorFor(t);
    const unknownId = '0123456789abcdef01234567';
    // Top-level, so that no account's scope matches it either way: only the account check tells the two 404s apart.
    for (const method of ['GET', 'DELETE']) {
      const res = await api(emu, `/accounts/${unknownId}/connect_tokens/adaconnected0001`, { method });
      assert.deepEqual([res.status, res.body], [404, { type: 'error', value: `account ${unknownId} is invalid` }], method);
    }
  });

  test('a used demo token embeds its account; deleting the account removes its account-level tokens', async (t) => {
    const emu = await emulatorFor(t);
    const used = await api(emu, '/connect_tokens/adaconnected0001');
    assert.equal(used.body.expires, false);
    assert.ok(used.body.used > 0, 'the demo token is used');
    assert.deepEqual(Object.keys(used.body.account).sort(), [
      'created', 'email_addresses', 'first_name', 'id', 'last_name', 'sources', 'suspended',
    ]);
    assert.equal(used.body.account.id, ADA);

    assert.equal((await api(emu, `/accounts/${GRACE}`, { method: 'DELETE' })).status, 200);
    assert.equal((await api(emu, '/connect_tokens/gracesecond00001')).status, 404);
  });

  test('store helpers seed many tokens quickly', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    for (let i = 0; i < 100; i++) {
      const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/cb' });
      emu.store.useConnectToken(token.token, { email: `u${i}@example.com`, first_name: 'U', last_name: String(i) });
    }
    assert.equal(emu.store.listAccounts().length, 100);
    // The lists of tokens (and of sources) are not paged: `limit` and `offset` are ignored there, as any
    // parameter a resource does not know.
    const res = await api(emu, '/connect_tokens?limit=1&offset=x');
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 100);
    assert.ok(res.body.every((x: { used: number; account: { id: string } }) => x.used > 0 && x.account.id), 'every seeded token is used, with its account');
    emu.store.reset();
    assert.equal((await api(emu, '/accounts')).body.length, 0);
  });
});

describe('transport details', () => {
  test('a connection it could not accept (out of file descriptors) ends nothing: it goes on serving', async (t) => {
    // The server is the emulator's own: taken as it starts listening.
    const servers: Server[] = [];
    const listen = Server.prototype.listen;
    Server.prototype.listen = function (this: Server, ...args: unknown[]) {
      servers.push(this);
      return listen.apply(this, args as Parameters<typeof listen>);
    } as typeof listen;
    let emu;
    try {
      emu = await emulatorFor(t);
    } finally {
      Server.prototype.listen = listen;
    }
    assert.equal(servers.length, 1);
    // What Node does when accept() fails where libuv could not shed the connection: an error of the server.
    servers[0]!.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
    assert.equal((await api(emu, '/accounts')).status, 200);
  });

  test('an error of the emulator\'s own is answered 500 saying nothing of it, and told to onInternalError with the request', async (t) => {
    const told: string[] = [];
    const emu = await emulatorFor(t, { onInternalError: (error, request) => told.push(`${request}: ${(error as Error).message}`) });
    t.mock.method(emu.store, 'getAccount', () => {
      throw new Error('a bug, with details');
    });
    const res = await api(emu, `/accounts/${ADA}`);
    assert.deepEqual([res.status, res.body], [500, { type: 'error', value: 'internal server error' }]);
    assert.deepEqual(told, [`GET /2.0/accounts/${ADA}: a bug, with details`]);
  });

  test('without onInternalError (npm run emulator), an error of its own is written to stderr with the request and its stack', async (t) => {
    const emu = await emulatorFor(t);
    t.mock.method(emu.store, 'getAccount', () => {
      throw new Error('a bug, with details');
    });
    const written: string[] = [];
    const write = t.mock.method(process.stderr, 'write', (chunk: unknown) => written.push(String(chunk)) > 0);
    let res: Awaited<ReturnType<typeof api>>;
    try {
      res = await api(emu, `/accounts/${ADA}`);
    } finally {
      write.mock.restore();
    }
    assert.deepEqual([res.status, res.body], [500, { type: 'error', value: 'internal server error' }]);
    assert.equal(written.length, 1, written.join(''));
    assert.match(written[0]!, new RegExp(`^Context\\.IO emulator: internal error on GET /2\\.0/accounts/${ADA}: Error: a bug, with details\\n\\s+at `));
  });

  test('a JSON body is neither signed nor parsed', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts?limit=1`;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: signRequest('POST', url, [], emu.consumerKey, emu.consumerSecret),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ email: 'json@example.com' }),
    });
    assert.equal(res.status, 400, 'the signature verified (not 401) and the JSON email was not read');
    assert.match(((await res.json()) as { value: string }).value, /email/);
  });

  test('a required parameter missing beside a body that is no form says the body was not read, and why, not only that the parameter is missing', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const post = (path: string, contentType: string | undefined, body: string) => {
      const url = `${emu.url}${path}`;
      return fetch(url, {
        method: 'POST',
        headers: { authorization: signRequest('POST', url, [], emu.consumerKey, emu.consumerSecret), ...(contentType === undefined ? {} : { 'content-type': contentType }) },
        body,
      }).then(async (res) => [res.status, ((await res.json()) as { value: string }).value] as const);
    };
    const note = (type: string) => `(the request's body, ${type}, is not read: parameters come in the query string or an application/x-www-form-urlencoded body)`;
    // The email was sent, as JSON or as multipart (curl -F): "missing" alone sent its developer looking for a typo.
    assert.deepEqual(await post('/accounts', 'application/json', '{"email":"json@example.com"}'), [400, `missing required parameter: email ${note('application/json')}`]);
    const multipart = 'multipart/form-data; boundary=x';
    assert.deepEqual(await post('/connect_tokens', multipart, '--x\r\nContent-Disposition: form-data; name="callback_url"\r\n\r\nhttps://app.example.com/cb\r\n--x--\r\n'), [400, `missing required parameter: callback_url ${note(multipart)}`]);
    assert.deepEqual(await post('/accounts', 'text/plain', 'email=plain@example.com'), [400, `missing required parameter: email ${note('text/plain')}`]);
    // fetch sends a string body as text/plain unless told otherwise: here with an empty type, as without one.
    assert.deepEqual(await post('/connect_tokens', '', 'callback_url=x'), [400, `missing required parameter: callback_url ${note('sent without a Content-Type')}`]);
    // A form, or no body at all, has nothing more to say.
    assert.deepEqual(await post('/accounts', 'application/x-www-form-urlencoded', ''), [400, 'missing required parameter: email']);
    assert.deepEqual(await post('/accounts', 'application/json', ''), [400, 'missing required parameter: email']);
    assert.equal(emu.store.listAccounts().length + emu.store.listConnectTokens().length, 0, 'nothing was created');
  });

  test('only a form type exactly is a form: a longer type that starts like one is not signed or parsed', async (t) => {
    const emu = await emulatorFor(t);
    const url = `${emu.url}/accounts`;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: signRequest('POST', url, [], emu.consumerKey, emu.consumerSecret),
        'content-type': 'application/x-www-form-urlencodedx',
      },
      body: 'email=form%40example.com',
    });
    assert.equal(res.status, 400, 'the signature verified without the body (not 401) and no email was read');
  });

  test('a form type is a form in any case and with parameters, as media types are (RFC 9110 §8.3.1)', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const url = `${emu.url}/accounts`;
    const form: [string, string][] = [['email', 'form@example.com']];
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: signRequest('POST', url, form, emu.consumerKey, emu.consumerSecret),
        'content-type': 'Application/X-WWW-Form-URLEncoded; charset=UTF-8',
      },
      body: 'email=form%40example.com',
    });
    assert.equal(res.status, 201, 'the body was signed and read as a form');
  });

  test('HEAD is answered as GET is, the same status and headers (Content-Length included) without the body, and is signed as HEAD', async (t) => {
    const emu = await emulatorFor(t);
    for (const path of ['/accounts', `/accounts/${ADA}/sources`, '/connect_tokens/adaconnected0001', '/accounts/0123456789abcdef01234567']) {
      const get = await api(emu, path);
      const head = await api(emu, path, { method: 'HEAD' });
      assert.equal(head.status, get.status, path);
      assert.equal(head.text, '', path);
      for (const name of ['content-type', 'content-length', 'cache-control']) {
        assert.equal(head.headers.get(name), get.headers.get(name), `${path} ${name}`);
      }
      assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(get.text), path);
    }
    // The signature base string starts with the method sent: a HEAD signed as a GET does not verify.
    const url = `${emu.url}/accounts`;
    const signedAsGet = await api(emu, '/accounts', { method: 'HEAD', authorization: signRequest('GET', url, [], emu.consumerKey, emu.consumerSecret) });
    assert.equal(signedAsGet.status, 401);
    assert.equal(emu.requests.at(-1)?.method, 'HEAD');
    // The connect page takes HEAD too, and says so where it refuses a method.
    const put = await rawRequest(emu.origin, { method: 'PUT', path: '/connect/anything' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD, POST');
  });

  test('a request target in absolute form (as sent to a forward proxy) is routed by its path and signed for its URL', async (t) => {
    const emu = await emulatorFor(t);
    const { port } = new URL(emu.origin);
    /** `method target`, the target an absolute URL, with the Host header `host` and signed for `signedFor`. */
    const send = (method: string, target: string, { host = `127.0.0.1:${port}`, signedFor = target, form }: { host?: string; signedFor?: string; form?: [string, string][] } = {}) =>
      rawRequest(emu.origin, {
        method,
        path: target,
        headers: {
          host,
          authorization: signRequest(method, signedFor, form ?? [], emu.consumerKey, emu.consumerSecret),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(form ? { body: new URLSearchParams(form).toString() } : {}),
      });
    const listed = await send('GET', `${emu.url}/accounts?limit=1`);
    assert.equal(listed.status, 200, listed.text);
    assert.equal(JSON.parse(listed.text).length, 1);
    assert.deepEqual(emu.requests.at(-1), { method: 'GET', path: '/accounts', query: 'limit=1', status: 200 });
    assert.equal((await send('POST', `${emu.url}/accounts`, { form: [['email', 'proxied@example.com']] })).status, 201);
    // The target URI is the target itself: its authority, not the Host header, is the URL signed and the name checked.
    assert.equal((await send('GET', `http://localhost:${port}/2.0/accounts`)).status, 200);
    // Its scheme too: an https target (from a TLS-terminating proxy) is signed as https.
    assert.equal((await send('GET', `https://127.0.0.1:${port}/2.0/accounts`)).status, 200);
    const signedForHost = await send('GET', `http://[::1]:${port}/2.0/accounts`, { host: `localhost:${port}`, signedFor: `http://localhost:${port}/2.0/accounts` });
    assert.equal(signedForHost.status, 401);
    assert.match(signedForHost.text, /base URL http:\/\/\[::1\]:\d+\/2\.0\/accounts or/);
    const elsewhere = await send('GET', 'http://elsewhere.example/2.0/accounts');
    assert.equal(elsewhere.status, 421);
    assert.match(JSON.parse(elsewhere.text).value, /^host "elsewhere\.example" is not served/);
    // A target with user information names no origin to trust (RFC 9110 §4.2.4): refused, as the gateway does.
    const withUser = await send('GET', `http://user@127.0.0.1:${port}/2.0/accounts`);
    assert.equal(withUser.status, 400, withUser.text);
    assert.match(JSON.parse(withUser.text).value, /^the request target is no path and no http\(s\) URL without user information/);
    assert.equal((await send('GET', `ftp://127.0.0.1:${port}/2.0/accounts`)).status, 400);
    // Outside /2.0 it is routed as in origin form too.
    const page = await send('GET', `${emu.origin}/connect/no-such-token`);
    assert.equal(page.status, 404);
    assert.match(page.headers['content-type'] ?? '', /^text\/html/);
  });

  test('a request target is split into path, query and, in absolute form, the origin it names', async () => {
    const { splitTarget } = await import('../../src/http/request.ts');
    assert.deepEqual(splitTarget('/2.0/accounts?limit=1'), { path: '/2.0/accounts', query: 'limit=1' });
    assert.deepEqual(splitTarget('HTTP://Emu.Example:4010/2.0/accounts?limit=1'), { path: '/2.0/accounts', query: 'limit=1', origin: { scheme: 'http', host: 'Emu.Example:4010' } });
    assert.deepEqual(splitTarget('https://emu.example?x=1'), { path: '/', query: 'x=1', origin: { scheme: 'https', host: 'emu.example' } });
    // User information in the target is an error (RFC 9110 §4.2.4); another scheme, an empty authority, the
    // asterisk form (the caller's to answer) and a bare word are no target either.
    for (const target of ['http://user@emu.example/2.0', 'ftp://emu.example/2.0', 'http:///2.0', '*', '2.0/accounts']) {
      assert.equal(splitTarget(target), undefined, target);
    }
  });

  test('a port that is no port is refused with a line naming the option, before the store is opened', async (t) => {
    for (const port of [65_536, 70_000, -1, 1.5]) {
      await assert.rejects(emulatorFor(t, { port, seed: 'none' }), new RegExp(`port must be an integer from 0 to 65535, got ${port}$`), String(port));
    }
  });

  test('paths outside /2.0 are 404 JSON and not logged', async (t) => {
    const emu = await emulatorFor(t);
    const res = await rawRequest(emu.origin, { path: '/accounts' });
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-type'], 'application/json');
    // Its body quotes the path asked for: never read as anything but JSON, as the gateway's answers are not.
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(emu.requests.length, 0);
  });
});

/**
 * Sends `POST path` with a chunked body that does not end (64 KiB chunks, up to 64 MiB) and returns what the
 * server answered and how much had been sent when it closed the connection (`closed: false` if it never did).
 */
async function endlessBody(origin: string, path: string): Promise<{ answer: string; closed: boolean }> {
  const { hostname, port } = new URL(origin);
  const socket = connect(Number(port), hostname);
  const answer: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => answer.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 0x61), Buffer.from('\r\n')]);
  let sent = 0;
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  while (!isClosed && sent < 64 * 1024 * 1024) {
    sent += 0x10000;
    if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
  }
  // Given 2 s more to close it; not closed by then, the caller's check of `closed` fails.
  await eventually(() => isClosed, { timeoutMs: 2_000 }).catch(() => {});
  const result = isClosed;
  socket.destroy();
  return { answer: Buffer.concat(answer).toString('latin1'), closed: result };
}

describe('request bodies over the limit', () => {
  for (const [what, path] of [
    ['an API call', '/2.0/accounts'],
    ['the connect page', '/connect/demounused000001'],
  ] as const) {
    test(`${what}: a body without end is answered 413 once past 1 MiB, and its connection closed`, async (t) => {
      const emu = await emulatorFor(t, { seed: 'demo' });
      const { answer, closed } = await endlessBody(emu.origin, path);
      assert.match(answer, /^HTTP\/1\.1 413 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.equal(closed, true);
    });
  }
});

describe('request bodies in too many pieces', () => {
  test('an API call whose body comes in more pieces than its size allows (a byte a chunk) is answered 413, and its connection closed', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const { hostname, port } = new URL(emu.origin);
    const socket = connect(Number(port), hostname);
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    let answer = '';
    socket.on('data', (data: Buffer) => (answer += data.toString('latin1')));
    let closed = false;
    socket.once('close', () => (closed = true));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /2.0/accounts HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n`);
    // 16 KiB pieces are the least any limit allows (src/http/body.ts); one more.
    socket.write('1\r\na\r\n'.repeat(16 * 1024 + 1));
    await eventually(() => /\r\n\r\n\{.*\}$/.test(answer), { what: 'an answer' });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /"request body in too many pieces"/);
    await eventually(() => closed, { what: 'the connection closed' });
  });
});

describe('requests Node refuses before the emulator reads them', () => {
  /** Writes `bytes` on a new connection and resolves to all that is answered on it until it closes. */
  async function exchangeRaw(origin: string, bytes: string): Promise<string> {
    const { hostname, port } = new URL(origin);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(bytes);
    await closed;
    return received;
  }

  test('a client sending more bytes than its Content-Length gets its request\'s answer, not a bare 400 in its place, and the connection closes after it', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const url = `${emu.url}/accounts`;
    const form = 'email=extra%40example.com';
    const authorization = signRequest('POST', url, [['email', 'extra@example.com']], emu.consumerKey, emu.consumerSecret);
    const { host } = new URL(url);
    // The bytes past the body are read as a next request, which llhttp refuses (no such method).
    const answer = await exchangeRaw(
      emu.origin,
      `POST /2.0/accounts HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${authorization}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}&more=bytes\r\n\r\n`,
    );
    // The account is made: its answer says so, alone on the connection.
    assert.equal(emu.store.listAccounts({}).length, 1);
    assert.match(answer, /^HTTP\/1\.1 201 Created\r\n/);
    assert.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, answer);
    const id = emu.store.listAccounts({})[0]!.id;
    assert.ok(answer.endsWith(`"id":"${id}","resource_url":"${emu.url}/accounts/${id}"}`), answer);
  });

  test('a request that is not HTTP is answered 400 in the API\'s error shape, not with a bare status line', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const answer = await exchangeRaw(emu.origin, 'NOPE /2.0/accounts HTTP/1.1\r\nHost: x\r\n\r\n');
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(head, /\r\nContent-Type: application\/json\r\n/);
    assert.match(head, /\r\nConnection: close(\r\n|$)/);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'malformed HTTP/1.1 request (Invalid method encountered)' });
    assert.deepEqual(emu.requests, []);
  });

  test('a CONNECT request (a proxy\'s method, which Node hands to no request handler) is answered 405 in the API\'s error shape, its connection closed', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const answer = await exchangeRaw(emu.origin, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n');
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, answer);
    assert.match(head, /\r\nConnection: close(\r\n|$)/i);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'method CONNECT is not allowed: the emulator is no proxy' });
    assert.deepEqual(emu.requests, []);
  });

  test('an HTTP/1.1 request without Host is answered 400 in the API\'s error shape, its connection closed', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const answer = await exchangeRaw(emu.origin, 'GET /2.0/accounts HTTP/1.1\r\n\r\n');
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(head, /\r\nConnection: close(\r\n|$)/i);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'an HTTP/1.1 request needs a Host header: send the host name and port the emulator is reached at' });
    assert.deepEqual(emu.requests, []);
  });

  test('a request whose headers or body trickle in past requestReceiveTimeoutMs is answered 408 saying that time, its connection closed', { timeout: 20_000 }, async (t) => {
    // Node's own deadlines were left: 60 s for the headers, 300 s for the whole request, and the answer said
    // 300 s whichever ran out; a client trickling a body (read before its signature is checked) held its
    // connection and up to 1 MiB for five minutes.
    const emu = await emulatorFor(t, { seed: 'none', requestReceiveTimeoutMs: 300 });
    for (const request of [
      'GET /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      'POST /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=',
    ]) {
      const answer = await exchangeRaw(emu.origin, request);
      const [head = '', body] = answer.split('\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 408 Request Timeout\r\n/, answer);
      assert.match(head, /\r\nConnection: close(\r\n|$)/i);
      assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'the request did not arrive whole within 0.3 s' });
    }
    assert.equal(emu.store.listAccounts({}).length, 0, 'no account was made');
  });

  test('a request with more than one Host header is answered 400 in the API\'s error shape, its connection closed and nothing run (RFC 9112 3.2)', async (t) => {
    // Node keeps the first Host and drops the others: the host filter (421) read that one, where a proxy in front
    // may take the last. Signed, the request would otherwise be served.
    const emu = await emulatorFor(t, { seed: 'none' });
    const form = 'email=twohosts%40example.com';
    const authorization = signRequest('POST', 'http://127.0.0.1/2.0/accounts', [['email', 'twohosts@example.com']], emu.consumerKey, emu.consumerSecret);
    const answer = await exchangeRaw(emu.origin, `POST /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: rebound.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nAuthorization: ${authorization}\r\n\r\n${form}`);
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/, answer);
    assert.match(head, /\r\nConnection: close(\r\n|$)/i);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'a request may carry one Host header: send the host name and port the emulator is reached at once' });
    assert.deepEqual(emu.requests, []);
    assert.equal(emu.store.listAccounts({}).length, 0, 'no account was made');
  });

  test('an HTTP/1.0 request with a Transfer-Encoding is answered 400 in the API\'s error shape, its connection closed and what follows it not run', async (t) => {
    // HTTP/1.0 has no Transfer-Encoding: a proxy in front may have framed the body otherwise, and what Node would
    // read next on the connection be part of it (RFC 9112 6.1), a request smuggled past that proxy.
    const emu = await emulatorFor(t, { seed: 'none' });
    const form = 'email=smuggled%40example.com';
    const next = `POST /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nAuthorization: ${signRequest('POST', 'http://127.0.0.1/2.0/accounts', [['email', 'smuggled@example.com']], emu.consumerKey, emu.consumerSecret)}\r\nConnection: close\r\n\r\n${form}`;
    const answer = await exchangeRaw(emu.origin, `POST /2.0/accounts HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nemail\r\n0\r\n\r\n${next}`);
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/, answer);
    assert.match(head, /\r\nConnection: close(\r\n|$)/i);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'an HTTP/1.0 request cannot carry a Transfer-Encoding: send its body with a Content-Length, or the request as HTTP/1.1' });
    assert.deepEqual(emu.store.listAccounts().map((a) => a.email_addresses), [], JSON.stringify(emu.requests));
    assert.deepEqual(emu.requests, []);
  });

  test('every header of a request is read, not only Node\'s first thousand: an HTTP/1.0 request\'s Transfer-Encoding behind a thousand others is refused as in front of them', async (t) => {
    // Node keeps 1,000 headers by default and drops the rest unsaid, though its framing obeys them: the body was
    // read as chunked and the request behind it run (smuggled past a proxy that framed it otherwise).
    const emu = await emulatorFor(t, { seed: 'none' });
    const form = 'email=smuggled%40example.com';
    const next = `POST /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nAuthorization: ${signRequest('POST', 'http://127.0.0.1/2.0/accounts', [['email', 'smuggled@example.com']], emu.consumerKey, emu.consumerSecret)}\r\nConnection: close\r\n\r\n${form}`;
    const answer = await exchangeRaw(emu.origin, `POST /2.0/accounts HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n${'a:\r\n'.repeat(1_000)}Transfer-Encoding: chunked\r\n\r\n5\r\nemail\r\n0\r\n\r\n${next}`);
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/, answer);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'an HTTP/1.0 request cannot carry a Transfer-Encoding: send its body with a Content-Length, or the request as HTTP/1.1' });
    assert.deepEqual(emu.store.listAccounts().map((a) => a.email_addresses), [], JSON.stringify(emu.requests));
  });

  test('a request line and headers past Node\'s limit are answered 431 in the API\'s error shape', async (t) => {
    const emu = await emulatorFor(t, { seed: 'none' });
    const answer = await exchangeRaw(emu.origin, `GET /2.0/accounts HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`);
    const [head = '', body] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    assert.deepEqual(JSON.parse(body!), { type: 'error', value: 'request line and headers larger than 16 KiB' });
  });
});

describe('a client that leaves while its body is arriving', () => {
  for (const [what, path] of [
    ['an API call', '/2.0/accounts'],
    ['the connect page', '/connect/demounused000001'],
  ] as const) {
    test(`${what}: ends with status 0, and nothing is logged as an internal error`, async (t) => {
      const emu = await emulatorFor(t, { seed: 'demo' });
      const { hostname, port } = new URL(emu.origin);
      const stderr = process.stderr.write;
      const written: string[] = [];
      process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
      try {
        const socket = connect(Number(port), hostname);
        socket.on('error', () => {});
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        // Its 100 Continue says the server has the request, handed to its handler, which waits for the body's rest.
        const continued = new Promise<void>((resolve) => socket.on('data', (data) => data.toString('latin1').startsWith('HTTP/1.1 100 ') && resolve()));
        socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`);
        await continued;
        socket.write('email=');
        socket.destroy();
        if (path.startsWith('/2.0')) await eventually(() => emu.requests.length === 1);
        // Its handling had until the request log's entry (or these 100 ms) to say anything.
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        process.stderr.write = stderr;
      }
      assert.deepEqual(written, []);
      if (path.startsWith('/2.0')) assert.deepEqual(emu.requests.map((entry) => entry.status), [0]);
    });
  }
});

describe('EMULATOR_PUBLIC_URL', () => {
  test('links the emulator writes start with it, while it is still reached where it listens', async (t) => {
    const emu = await emulatorFor(t, { publicUrl: 'http://devbox.lan:4010' });
    const created = await api(emu, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } });
    assert.equal(created.status, 201);
    const token = created.body as { token: string; resource_url: string; browser_redirect_url: string };
    assert.equal(token.browser_redirect_url, `http://devbox.lan:4010/connect/${token.token}`);
    assert.equal(token.resource_url, `http://devbox.lan:4010/2.0/connect_tokens/${token.token}`);
    const accounts = (await api(emu, '/accounts')).body as Array<{ resource_url: string }>;
    assert.ok(accounts.length > 0 && accounts.every((a) => a.resource_url.startsWith('http://devbox.lan:4010/2.0/accounts/')), 'every account’s resource_url starts with the public URL');
    assert.match(emu.url, /^http:\/\/127\.0\.0\.1:\d+\/2\.0$/);
    // Given from code as a URL, with the slash a URL's empty path is written with: only its origin counts.
    const slashed = await emulatorFor(t, { publicUrl: 'http://devbox.lan:4010/' });
    assert.equal(slashed.publicUrl, 'http://devbox.lan:4010/2.0');
    const link = (await api(slashed, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } })).body as { token: string; browser_redirect_url: string };
    assert.equal(link.browser_redirect_url, `http://devbox.lan:4010/connect/${link.token}`);
  });

  test('a request signed for it is accepted where a proxy forwards it with its own Host header', async (t) => {
    const emu = await emulatorFor(t, { publicUrl: 'http://devbox.lan:4010' });
    // As nginx's proxy_pass sends it by default: Host is the emulator's own address, the client signed the public one.
    const get = (signedFor: string) =>
      fetch(`${emu.url}/accounts`, { headers: { authorization: signRequest('GET', `${signedFor}/accounts`, [], emu.consumerKey, emu.consumerSecret) } });
    assert.equal((await get('http://devbox.lan:4010/2.0')).status, 200);
    assert.equal((await get(emu.url)).status, 200);
    const elsewhere = await get('http://other.example:4010/2.0');
    assert.equal(elsewhere.status, 401);
    assert.equal(elsewhere.headers.get('www-authenticate'), 'OAuth realm="http://devbox.lan:4010/2.0"', 'the realm is the API where clients reach it');
    assert.match(await elsewhere.text(), /base URL http:\/\/127\.0\.0\.1:\d+\/2\.0\/accounts or http:\/\/devbox\.lan:4010\/2\.0\/accounts/);
  });

  test('must be an http(s) origin; one line names it, never quoting credentials', async () => {
    const { emulatorOptionsFromEnv } = await import('../../src/emulator/config.ts');
    const problemsFor = (value: string) => {
      const problems: string[] = [];
      const options = emulatorOptionsFromEnv({ EMULATOR_PUBLIC_URL: value }, 4010, problems);
      return { problems, options };
    };
    assert.deepEqual(problemsFor('http://devbox.lan:4010/').options.publicUrl, 'http://devbox.lan:4010/');
    for (const bad of ['devbox.lan:4010', 'ftp://devbox.lan', 'http://devbox.lan/emulator']) {
      assert.match(problemsFor(bad).problems.join('\n'), /^EMULATOR_PUBLIC_URL must be an http\(s\) origin/, bad);
    }
    assert.match(problemsFor('http://DevBox.lan:4010').problems.join('\n'), /\(got "http:\/\/DevBox\.lan:4010": written as browsers send it, http:\/\/devbox\.lan:4010\)$/);
    const secret = problemsFor('http://user:hunter2@devbox.lan').problems.join('\n');
    assert.match(secret, /EMULATOR_PUBLIC_URL/);
    assert.doesNotMatch(secret, /hunter2/);
  });
});

describe('Host check (DNS rebinding)', () => {
  const statusFor = async (emu: Awaited<ReturnType<typeof emulatorFor>>, host: string, path = '/2.0/accounts') => {
    const headers = { host, authorization: signRequest('GET', `http://${host}${path}`, [], emu.consumerKey, emu.consumerSecret) };
    return rawRequest(emu.origin, { path, headers });
  };

  test('on loopback it answers loopback names, EMULATOR_PUBLIC_URL’s host and the allowed names; any other is 421 before anything runs', async (t) => {
    const emu = await emulatorFor(t, { publicUrl: 'http://devbox.lan:4010', allowedHosts: ['emulator', 'Proxy.Example:8080'] });
    const port = new URL(emu.origin).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, 'devbox.lan:4010', 'emulator:4010', 'proxy.example']) {
      assert.equal((await statusFor(emu, host)).status, 200, host);
    }
    emu.clearRequests();
    for (const path of ['/2.0/accounts', '/connect/some-token']) {
      const refused = await statusFor(emu, 'rebound.attacker.example', path);
      assert.equal(refused.status, 421, path);
      assert.match(JSON.parse(refused.text).value, /host "rebound\.attacker\.example" is not served.*EMULATOR_ALLOWED_HOSTS/);
    }
    assert.deepEqual(emu.requests, [], 'refused before the API saw it');
  });

  test('a refused Host sent in UTF-8 is quoted as it was written, not its bytes read one by one as Latin-1', async (t) => {
    const emu = await emulatorFor(t, {});
    // Node's client writes a header's characters as Latin-1 bytes: these are the UTF-8 bytes of `bücher.example`.
    const refused = await statusFor(emu, Buffer.from('bücher.example:4010').toString('latin1'));
    assert.equal(refused.status, 421);
    assert.match(JSON.parse(refused.text).value, /^host "bücher\.example" is not served/, 'not "bÃ¼cher.example"');
  });

  test('the check follows the address bound, not how EMULATOR_HOST spells it (127.1 is 127.0.0.1)', async (t) => {
    const emu = await emulatorFor(t, { host: '127.1' });
    assert.match(emu.origin, /^http:\/\/127\.0\.0\.1:/);
    assert.equal((await statusFor(emu, 'rebound.attacker.example')).status, 421);
  });

  test('`*` answers any name; bound beyond loopback, any name unless names are given', async (t) => {
    const emu = await emulatorFor(t, { allowedHosts: ['*'] });
    assert.equal((await statusFor(emu, 'anything.example')).status, 200);
    const { hostFilter } = await import('../../src/emulator/http.ts');
    for (const bound of ['0.0.0.0', '::', '192.168.1.20']) {
      assert.equal(hostFilter(bound, undefined, undefined)('anything.example'), true, bound);
      assert.equal(hostFilter(bound, undefined, 'http://devbox.lan:4010')('anything.example'), true, bound);
      const listed = hostFilter(bound, ['emulator'], 'http://devbox.lan:4010');
      assert.deepEqual(['emulator:4010', 'devbox.lan', '127.0.0.1:4010', 'anything.example'].map(listed), [true, true, true, false], bound);
    }
    assert.equal(hostFilter('127.0.0.1', undefined, undefined)('anything.example'), false);
    assert.equal(hostFilter('127.0.0.1', undefined, undefined)(undefined), true, 'HTTP/1.0 without Host: no browser sends that');
  });

  test('an IPv6 address is one name however it is spelled: in the Host header, EMULATOR_PUBLIC_URL and the allowed names', async () => {
    const { hostFilter } = await import('../../src/emulator/http.ts');
    // A URL spells [fd00:0:0::1] as [fd00::1]; a client may send either, in either case.
    const viaPublicUrl = hostFilter('127.0.0.1', undefined, 'http://[fd00:0:0::1]:4010');
    const viaAllowed = hostFilter('127.0.0.1', ['[FD00::1]:4010'], undefined);
    for (const header of ['[fd00::1]:4010', '[FD00:0::1]', '[fd00:0:0:0:0:0:0:1]:4010']) {
      assert.equal(viaPublicUrl(header), true, header);
      assert.equal(viaAllowed(header), true, header);
    }
    for (const header of ['[fd00::2]:4010', '[fd00::1', '[fd00::1@evil.example]']) assert.equal(viaPublicUrl(header), false, header);
    // Loopback's own other spellings.
    for (const header of ['[0:0:0:0:0:0:0:1]:4010', '[::ffff:127.0.0.1]:4010', '[::FFFF:7F00:1]']) assert.equal(hostFilter('127.0.0.1', undefined, undefined)(header), true, header);
  });

  test('EMULATOR_ALLOWED_HOSTS: names separated by commas, or *; anything else is named as a problem', async () => {
    const { emulatorOptionsFromEnv } = await import('../../src/emulator/config.ts');
    const read = (value: string) => {
      const problems: string[] = [];
      return { problems, options: emulatorOptionsFromEnv({ EMULATOR_ALLOWED_HOSTS: value }, 4010, problems) };
    };
    assert.deepEqual(read(' emulator, devbox.lan:4010 ,[::1]').options.allowedHosts, ['emulator', 'devbox.lan:4010', '[::1]']);
    assert.deepEqual(read('*').options.allowedHosts, ['*']);
    assert.deepEqual(read('devbox.lan:65535').options.allowedHosts, ['devbox.lan:65535']);
    // An internationalized name as its ASCII form, the one browsers send in Host (as EMULATOR_PUBLIC_URL's is read):
    // refused as no host name, the operator was left to find that form alone.
    const idn = read('bücher.example, Émulateur:4010');
    assert.deepEqual([idn.problems, idn.options.allowedHosts], [[], ['xn--bcher-kva.example', 'xn--mulateur-90a:4010']]);
    const { hostFilter } = await import('../../src/emulator/http.ts');
    assert.equal(hostFilter('127.0.0.1', idn.options.allowedHosts, undefined)('xn--bcher-kva.example:4010'), true, 'a browser\'s Host for it is answered');
    for (const bad of ['http://emulator', 'emu lator', 'a/b', 'devbox.lan:99999', 'devbox.lan:65536', '[::1]:70000', 'bü cher.example']) {
      assert.match(read(bad).problems.join('\n'), /^EMULATOR_ALLOWED_HOSTS must be host names/, bad);
      assert.equal(read(bad).options.allowedHosts, undefined, bad);
    }
    // Commas and spaces alone name no host: an empty list would narrow an emulator on 0.0.0.0 to loopback names.
    for (const empty of [',', ' , ', ',,']) {
      assert.deepEqual(read(empty).problems, [`EMULATOR_ALLOWED_HOSTS names no host (got "${empty.trim()}"): name one or more, or unset it`], empty);
      assert.equal(read(empty).options.allowedHosts, undefined, empty);
    }
    // Credentials pasted in by mistake are not repeated in the problem.
    assert.deepEqual(read('devbox.lan, user:hunter2@devbox.lan').problems, ['EMULATOR_ALLOWED_HOSTS must be host names separated by commas, or * (got a value with an @, not shown)']);
    // Nor any part of them when a comma in the password splits the URL into entries: the list holds an @, so no entry is shown.
    assert.deepEqual(read('http://user:hunt,er2@devbox.lan').problems, ['EMULATOR_ALLOWED_HOSTS must be host names separated by commas, or * (got a value with an @, not shown)']);
  });
});

describe('the key’s hourly limit', () => {
  test('EMULATOR_RATE_LIMIT: the key’s calls in any hour; past them 429 with Retry-After until the hour’s oldest call is an hour old', async (t) => {
    // The wall clock (`now`: the signatures' timestamps) and the monotonic one the limit counts on, moved on together.
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const emu = await emulatorFor(t, { seed: 'none', rateLimitPerHour: 2, now: () => clock });
    const call = (options: { secret?: string } = {}) => api(emu, '/accounts', { ...options, timestamp: Math.floor(clock / 1000) });
    await onTestTime(
      undefined,
      async (advance) => {
        const later = (ms: number) => {
          clock += ms;
          advance(ms);
        };
        assert.equal((await call()).status, 200);
        later(10 * 60_000);
        // A refused signature is not the key's call.
        assert.equal((await call({ secret: 'wrong' })).status, 401);
        assert.equal((await call()).status, 200);
        later(60_000);
        const refused = await call();
        assert.deepEqual([refused.status, refused.headers.get('retry-after'), refused.body], [429, String(3600 - 11 * 60), { type: 'error', value: 'rate limit reached: 2 calls an hour for this key' }]);
        // A refused call is not counted either: an hour after the first, one call may be made again; not a
        // millisecond before.
        later(49 * 60_000 - 1);
        const early = await call();
        assert.deepEqual([early.status, early.headers.get('retry-after')], [429, '1']);
        later(1);
        assert.equal((await call()).status, 200);
        const next = await call();
        assert.deepEqual([next.status, next.headers.get('retry-after')], [429, String(10 * 60)]);
      },
      { exact: true },
    );

    const { emulatorOptionsFromEnv } = await import('../../src/emulator/config.ts');
    const problems: string[] = [];
    assert.equal(emulatorOptionsFromEnv({ EMULATOR_RATE_LIMIT: '5000' }, 4010, problems).rateLimitPerHour, 5000);
    assert.equal(emulatorOptionsFromEnv({}, 4010, problems).rateLimitPerHour, undefined);
    for (const bad of ['0', '-1', '5e3', 'many', '1000001']) emulatorOptionsFromEnv({ EMULATOR_RATE_LIMIT: bad }, 4010, problems);
    assert.equal(problems.length, 5);
    assert.match(problems[0]!, /^EMULATOR_RATE_LIMIT must be a whole number of calls an hour from 1 to 1000000 \(got "0"\)$/);
  });

  test('a wall clock set back does not stretch the hour: the calls before it leave the window an hour after they were made', async (t) => {
    let clock = Date.parse('2026-01-02T00:00:00Z');
    const emu = await emulatorFor(t, { seed: 'none', rateLimitPerHour: 1, now: () => clock });
    const call = () => api(emu, '/accounts', { timestamp: Math.floor(clock / 1000) });
    await onTestTime(
      undefined,
      async (advance) => {
        assert.equal((await call()).status, 200);
        // The machine's clock corrected by a day (NTP, or by hand): the emulator's hour is still an hour.
        clock -= 86_400_000;
        const refused = await call();
        assert.deepEqual([refused.status, refused.headers.get('retry-after')], [429, '3600']);
        clock += 3_600_000;
        advance(3_600_000);
        assert.equal((await call()).status, 200);
      },
      { exact: true },
    );
  });
});
