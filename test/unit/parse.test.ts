import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listOf, parseAccount, parseConnectToken, parseCreateAccount, parseCreateConnectToken, parseSuccess, ShapeError } from '../../src/upstream/parse.ts';

const token = { token: 'abcdef0123456789', created: 1, used: 0, expires: 86_401, callback_url: 'https://a.example.com' };

describe('tolerant parsing of upstream JSON', () => {
  for (const [name, account] of [
    ['{}', {}],
    ['[]', []],
    ['a bare id string', '52daabefcea6f9c35a4a0997'],
    ['missing', undefined],
  ] as const) {
    it(`reads an unused token whose account is ${name} as having none`, () => {
      assert.equal(parseConnectToken({ ...token, account }).account, null);
    });
  }

  it('reads a used token: expires false, account embedded', () => {
    const parsed = parseConnectToken({
      ...token,
      used: 5,
      expires: false,
      account: { id: 'x', created: 2, suspended: 0, email_addresses: ['a@b.c'], first_name: 'A', last_name: 'B', sources: [{ label: 'l' }] },
    });
    assert.equal(parsed.expires, false);
    assert.ok(parsed.account !== null && !('reference' in parsed.account), 'the account is embedded whole, not a reference');
    assert.equal(parsed.account.id, 'x');
    assert.deepEqual(parsed.account.sources.map((s) => s.label), ['l']);
  });

  it('reads a used token whose account is a bare id string as a reference to that account, which needs loading', () => {
    assert.deepEqual(parseConnectToken({ ...token, used: 5, expires: false, account: '52daabefcea6f9c35a4a0997' }).account, {
      id: '52daabefcea6f9c35a4a0997',
      reference: true,
    });
    assert.equal(parseConnectToken({ ...token, used: 5, expires: false, account: '' }).account, null);
    // An id sent as a number, as ids are read elsewhere (a server writing numeric-looking strings as numbers); 0 is none.
    assert.deepEqual(parseConnectToken({ ...token, used: 5, expires: false, account: 7 }).account, { id: '7', reference: true });
    for (const none of [0, -7, 1.5]) assert.equal(parseConnectToken({ ...token, used: 5, expires: false, account: none }).account, null, String(none));
    assert.throws(() => parseConnectToken({ ...token, used: 5, expires: false, account: 2 ** 60 }), /past 2\^53/);
  });

  it('reads a used token whose account embeds its id without the fields every account has (created, addresses, sources) as a reference to it', () => {
    // Read as they are, the missing fields would show the account created in 1970, with no address and no source.
    const whole = { id: '52daabefcea6f9c35a4a0997', created: 2, suspended: 0, email_addresses: ['a@b.c'], sources: [] };
    for (const missing of ['created', 'email_addresses', 'sources'] as const) {
      const { [missing]: _, ...account } = whole;
      assert.deepEqual(parseConnectToken({ ...token, used: 5, expires: false, account }).account, { id: whole.id, reference: true }, missing);
    }
    assert.deepEqual(parseConnectToken({ ...token, used: 5, expires: false, account: { id: whole.id } }).account, { id: whole.id, reference: true });
    // Null is the upstream saying none, as in a full account; a missing name or suspension time is one not given.
    const embedded = parseConnectToken({ ...token, used: 5, expires: false, account: { id: whole.id, created: 2, email_addresses: null, sources: null } }).account;
    assert.ok(embedded !== null && !('reference' in embedded), 'an embed with its fields null is read as it is');
  });

  it('reads a used token whose embedded account it cannot read, its id aside, as a reference to that account, which is then loaded', () => {
    // One garbled field of the embed (a server writing a flag where a time goes) no longer costs the whole token:
    // its account is read in full, and checked, where a field needs it.
    const whole = { id: '52daabefcea6f9c35a4a0997', created: 2, suspended: 0, email_addresses: ['a@b.c'], sources: [] };
    for (const garbled of [{ suspended: 'yes' }, { created: 'yesterday' }, { sources: [{ port: 1 }] }, { email_addresses: 'a@b.c' }]) {
      assert.deepEqual(parseConnectToken({ ...token, used: 5, expires: false, account: { ...whole, ...garbled } }).account, { id: whole.id, reference: true }, JSON.stringify(garbled));
    }
    // An id no request could carry is refused still: the token names no account the gateway could load.
    assert.throws(() => parseConnectToken({ ...token, used: 5, expires: false, account: { ...whole, id: 'a/b', suspended: 'yes' } }), ShapeError);
  });

  it('reads a used token whose account names none (no id, an empty or null one, an empty object or list, null) as having none', () => {
    for (const account of [{}, [], { id: '' }, { id: null }, { first_name: 'A' }, null, true]) {
      assert.equal(parseConnectToken({ ...token, used: 5, expires: false, account }).account, null, JSON.stringify(account));
    }
  });

  it('reads a timestamp as a number or digits, 0/false/null/missing as unset, and refuses anything else', () => {
    assert.equal(parseConnectToken({ ...token, created: '1700000000' }).created, 1_700_000_000);
    // A fraction as a string too, as it is read as a number: a server writing every number as a string.
    assert.equal(parseConnectToken({ ...token, created: '1700000000.25' }).created, 1_700_000_000.25);
    assert.equal(parseConnectToken({ ...token, created: 1_700_000_000.25 }).created, 1_700_000_000.25);
    for (const unset of [0, false, null, undefined, '']) assert.equal(parseConnectToken({ ...token, used: unset }).used, 0);
    // Digits only: not what Number() also reads (an exponent, hex, spaces around).
    for (const garbled of ['yesterday', true, {}, -1, 1e15, '1e3', '0x10', '12 ', '1.', '.5', '1.2.3', '-1.5']) {
      assert.throws(() => parseConnectToken({ ...token, created: garbled }), (error: unknown) => error instanceof ShapeError && /created is not a Unix time/.test(error.message));
    }
  });

  it('reads a count as a whole number or digits within GraphQL’s Int, a negative one as none said, and refuses anything else', () => {
    const account = { id: 'x', created: 1, suspended: 0, password_expired: 0, email_addresses: [], sources: [] };
    assert.equal(parseAccount({ ...account, nb_messages: '42' }).nb_messages, 42);
    // -1 is how APIs say "not counted (yet)": not a count of -1 messages to show.
    for (const negative of [-1, '-1', -(2 ** 31)]) {
      assert.equal(parseAccount({ ...account, nb_messages: negative }).nb_messages, undefined, String(negative));
      assert.equal(parseAccount({ ...account, nb_files: negative }).nb_files, undefined, String(negative));
      assert.equal(parseAccount({ ...account, sources: [{ label: 'l', port: negative }] }).sources[0]!.port, undefined, String(negative));
    }
    assert.equal(parseAccount({ ...account, nb_messages: null }).nb_messages, undefined);
    assert.equal(parseAccount({ ...account, nb_messages: '' }).nb_messages, undefined);
    for (const garbled of [3e9, -3e9, 1.5, -1.5, 'many', true, {}]) {
      assert.throws(() => parseAccount({ ...account, nb_messages: garbled }), (error: unknown) => error instanceof ShapeError && /nb_messages is not a whole number/.test(error.message));
    }
  });

  it('reads email addresses as strings, or objects shaped like the API’s email-address resource, skipping anything else', () => {
    const account = { id: 'x', created: 1, sources: [] };
    const addresses = ['a@example.com', { email: 'b@example.com', validated: 1, primary: 0 }, 42, null, { address: 'c@example.com' }];
    assert.deepEqual(parseAccount({ ...account, email_addresses: addresses }).email_addresses, ['a@example.com', 'b@example.com']);
    const embedded = parseConnectToken({ ...token, used: 5, account: { ...account, email_addresses: addresses } }).account;
    assert.ok(embedded !== null && 'email_addresses' in embedded, 'the account is embedded whole, with its email addresses');
    assert.deepEqual(embedded.email_addresses, ['a@example.com', 'b@example.com']);
  });

  it('reads a list field missing, null or {} (a PHP server’s empty array) as empty, and refuses any other shape rather than lose its items', () => {
    const account = { id: 'x', created: 1 };
    for (const empty of [undefined, null, {}]) {
      const parsed = parseAccount({ ...account, email_addresses: empty, sources: empty });
      assert.deepEqual([parsed.email_addresses, parsed.sources], [[], []]);
    }
    for (const [key, value] of [
      ['email_addresses', 'a@example.com'],
      ['email_addresses', { 0: 'a@example.com' }],
      ['sources', { 0: { label: 'l' } }],
      ['sources', 'l'],
      ['sources', 1],
    ] as const) {
      assert.throws(() => parseAccount({ ...account, [key]: value }), (error) => error instanceof ShapeError && error.message === `${key} is not a list`, `${key}: ${JSON.stringify(value)}`);
      // Embedded in a used token, the account is loaded instead (read then as above).
      assert.deepEqual(parseConnectToken({ ...token, used: 5, account: { ...account, email_addresses: [], sources: [], [key]: value } }).account, { id: 'x', reference: true });
    }
  });

  it('gives an unused token no account, whatever its account field holds', () => {
    const account = { id: 'abc', created: 1, suspended: 0, email_addresses: [], sources: [] };
    assert.equal(parseConnectToken({ ...token, used: 0, account }).account, null);
    assert.equal(parseConnectToken({ ...token, used: false, account }).account, null);
    assert.equal((parseConnectToken({ ...token, used: 5, account }).account as { id: string }).id, 'abc');
  });

  it('reads an empty name as none, in accounts, embedded accounts and tokens alike, and a token’s empty email too', () => {
    const account = { id: 'abc', created: 1, suspended: 0, email_addresses: [], sources: [], first_name: '', last_name: 'Doe' };
    assert.deepEqual([parseAccount(account).first_name, parseAccount(account).last_name], [undefined, 'Doe']);
    const used = parseConnectToken({ ...token, used: 5, first_name: '', email: '', account });
    assert.equal(used.first_name, undefined);
    assert.equal(used.email, undefined, 'a token’s empty email is none too');
    assert.equal((used.account as { first_name?: string }).first_name, undefined);
  });

  it('reads every optional text sent empty as none, as names and statuses are: the schema says null when the upstream sends none', () => {
    const account = { id: 'x', created: 1, username: '', resource_url: '' };
    const parsed = parseAccount({ ...account, sources: [{ label: 'l', email: '', username: '', server: '', type: '', authentication_type: '', sync_period: '', status_message: '', resource_url: '' }] });
    assert.equal(parsed.username, undefined);
    assert.equal(parsed.resource_url, undefined);
    const source = parsed.sources[0]!;
    for (const key of ['email', 'username', 'server', 'type', 'authentication_type', 'sync_period', 'resource_url'] as const) assert.equal(source[key], undefined, key);
    assert.equal(source.status_message, null, 'status_message');
    // A text of its own stays as sent (spaces are not nothing).
    assert.equal(parseAccount({ ...account, username: ' ' }).username, ' ');
  });

  it('reads a source’s empty status as none, not as a status to show as UNKNOWN (one the gateway does not know)', () => {
    const account = { id: 'x', created: 1 };
    const status = (value: unknown) => parseAccount({ ...account, sources: [{ label: 'l', status: value }] }).sources[0]!.status;
    for (const none of [undefined, null, '']) assert.equal(status(none), undefined, JSON.stringify(none));
    assert.equal(status('SYNCING'), 'SYNCING');
  });

  it('reads a flag as a boolean, 1/0 or its string, and leaves any other value unset', () => {
    const account = { id: 'x', created: 1 };
    const useSsl = (value: unknown) => parseAccount({ ...account, sources: [{ label: 'l', use_ssl: value }] }).sources[0]!.use_ssl;
    for (const yes of [true, 1, '1', 'true']) assert.equal(useSsl(yes), true, JSON.stringify(yes));
    for (const no of [false, 0, '0', 'false']) assert.equal(useSsl(no), false, JSON.stringify(no));
    for (const unset of [undefined, null, 2, 'yes', '']) assert.equal(useSsl(unset), undefined, JSON.stringify(unset));
    assert.deepEqual(parseSuccess({ success: '0' }), { success: false });
    assert.deepEqual(parseSuccess({ success: 1 }), { success: true });
  });

  it('reads a timestamp up to the largest a JavaScript Date can hold, and refuses one past it', () => {
    const largest = 8.64e12;
    assert.equal(parseConnectToken({ ...token, created: largest }).created, largest);
    assert.equal(parseConnectToken({ ...token, created: String(largest) }).created, largest);
    assert.throws(() => parseConnectToken({ ...token, created: largest + 1 }), ShapeError);
  });

  it('accepts success as a boolean or a string', () => {
    assert.deepEqual(parseSuccess({ success: true }), { success: true });
    assert.deepEqual(parseSuccess({ success: 'true' }), { success: true });
    assert.deepEqual(parseSuccess({ success: 'false' }), { success: false });
    assert.throws(() => parseSuccess({}), (error) => error instanceof ShapeError && error.message === 'response.success is missing');
    // One sent in another form is said as such: "missing" sent an operator looking for a field that is there.
    for (const other of ['yes', 2, null, {}]) {
      assert.throws(() => parseSuccess({ success: other }), (error) => error instanceof ShapeError && error.message === 'response.success is not a boolean', JSON.stringify(other));
    }
  });

  it('leaves missing counts undefined instead of inventing them', () => {
    const account = parseAccount({ id: 'x', created: 1, suspended: 0, password_expired: 0, email_addresses: [], sources: [] });
    assert.equal(account.nb_messages, undefined);
    assert.equal(account.nb_files, undefined);
  });

  it('refuses an id or token the gateway would put in a path, but that cannot be one (a space, a slash, "..", too long), as the upstream’s fault', () => {
    // Let through, the request that needs it was refused as BAD_USER_INPUT, blaming the caller ("copied with
    // one around it?"), who never gave it: a used token's account asked for its username, a new token's fields.
    for (const id of ['a b', 'x/y', '..', 'x'.repeat(300), '\ud800']) {
      // Nor does its message blame whoever copied it: the upstream sent it.
      const shape = (error: unknown) => error instanceof ShapeError && /cannot be sent/.test(error.message) && !/copied/.test(error.message);
      assert.throws(() => parseConnectToken({ ...token, used: 5, expires: false, account: id }), shape, id);
      assert.throws(() => parseConnectToken({ ...token, used: 5, expires: false, account: { id, created: 1 } }), shape, id);
      assert.throws(() => parseAccount({ id, created: 1 }), shape, id);
      assert.throws(() => parseCreateAccount({ success: true, id, resource_url: 'u' }), shape, id);
      assert.throws(() => parseCreateConnectToken({ success: true, token: id, resource_url: 'u', browser_redirect_url: 'https://b.example/' }), shape, id);
    }
  });

  it('refuses what is not the shape expected', () => {
    assert.throws(() => parseAccount([]), ShapeError);
    assert.throws(() => parseAccount({ created: 1 }), ShapeError);
    assert.throws(() => parseConnectToken('x'), ShapeError);
    assert.throws(() => parseAccount({ id: 'x', created: 1e20 }), ShapeError);
    assert.throws(() => parseConnectToken({ ...token, created: -5 }), ShapeError);
    // A string field as anything but a string or a number (which some servers send ids as).
    assert.throws(() => parseAccount({ id: true, created: 1 }), (error) => error instanceof ShapeError && error.message === 'account.id is not a string');
    assert.throws(() => parseConnectToken({ ...token, token: false }), (error) => error instanceof ShapeError && error.message === 'connect token.token is not a string');
    // A source's label is its id within its account.
    assert.throws(() => parseAccount({ id: 'x', created: 1, sources: [{ server: 'imap.example.com' }] }), (error) => error instanceof ShapeError && error.message === 'sources[0]: source.label is not a string');
  });

  it('reads a string field sent as a number as its digits, but refuses one past 2^53, whose digits JSON.parse has already lost', () => {
    // A server that writes numeric-looking strings as numbers (PHP's JSON_NUMERIC_CHECK) sends the user name
    // "12345678901234567891" as 12345678901234567891, which parses to 12345678901234567000: served, a wrong name.
    assert.equal(parseAccount({ id: 'x', created: 1, username: 12_345 }).username, '12345');
    assert.equal(parseAccount(JSON.parse('{"id": 9007199254740991, "created": 1}')).id, '9007199254740991');
    const lost = (key: string) => (error: unknown) => error instanceof ShapeError && error.message === `${key} is a number past 2^53, whose digits may have been lost`;
    assert.throws(() => parseAccount(JSON.parse('{"id": "x", "created": 1, "username": 12345678901234567891}')), lost('username'));
    assert.throws(() => parseAccount(JSON.parse('{"id": 12345678901234567891, "created": 1}')), lost('account.id'));
    assert.throws(() => parseAccount({ id: 'x', created: 1, sources: [{ label: 1e21 }] }), lost('sources[0]: source.label'));
    assert.throws(() => parseConnectToken(JSON.parse(`{"token": 98765432109876543210, "created": 1, "used": 0, "expires": 2}`)), lost('connect token.token'));
    assert.throws(() => parseConnectToken({ ...token, email: 2 ** 60 }), lost('email'));
    // A source's status so is still one outside the documented set, which must not break the account (UNKNOWN).
    assert.equal(parseAccount({ id: 'x', created: 1, sources: [{ label: 'l', status: 2 ** 60 }] }).sources[0]?.status, String(2 ** 60));
  });

  it('reads half a surrogate pair in a text (a name cut at 256 UTF-16 units inside an emoji) as U+FFFD, and refuses one in a token or label, which names a resource', () => {
    // JSON spells it \ud83d; served as is, it reached clients as an escape of no character, which strict JSON
    // readers (Rust's serde_json, Swift's) refuse, failing the whole answer, and others decode as U+FFFD anyway.
    const cut = 'Zoë 😀'.slice(0, 5);
    const account = parseAccount({
      id: 'x',
      created: 1,
      first_name: cut,
      last_name: '😀 Doe',
      username: cut,
      email_addresses: [`a${cut}@example.com`, { email: `b${cut}@example.com` }],
      sources: [{ label: 'l', email: cut, username: cut, server: cut, type: cut, authentication_type: cut, sync_period: cut, status_message: cut, status: cut }],
    });
    assert.equal(account.first_name, 'Zoë \uFFFD');
    assert.equal(account.last_name, '😀 Doe', 'a whole pair is kept');
    assert.equal(account.username, 'Zoë \uFFFD');
    assert.deepEqual(account.email_addresses, ['aZoë \uFFFD@example.com', 'bZoë \uFFFD@example.com']);
    const [source] = account.sources;
    assert.deepEqual([source?.email, source?.username, source?.server, source?.type, source?.authentication_type, source?.sync_period, source?.status_message], Array(7).fill('Zoë \uFFFD'));
    // A status so is one outside the set (UNKNOWN), whatever it holds.
    assert.equal(source?.status, cut);
    const parsed = parseConnectToken({ ...token, email: cut, first_name: cut, last_name: '\udc00', callback_url: `https://a.example.com/${cut}` });
    assert.deepEqual([parsed.email, parsed.first_name, parsed.last_name, parsed.callback_url], ['Zoë \uFFFD', 'Zoë \uFFFD', '\uFFFD', 'https://a.example.com/Zoë \uFFFD']);
    const halfPair = (field: string) => (error: unknown) => error instanceof ShapeError && error.message === `${field} is not valid text: it holds half a surrogate pair`;
    assert.throws(() => parseConnectToken({ ...token, token: `abc${cut}` }), halfPair('connect token.token'));
    assert.throws(() => parseAccount({ id: 'x', created: 1, sources: [{ label: `me::${cut}` }] }), halfPair('sources[0]: source.label'));
    assert.throws(() => parseCreateAccount({ success: true, id: 'abc', resource_url: `https://a.example.com/${cut}` }), halfPair('response.resource_url'));
    const create = { success: true, token: 'abc', resource_url: 'u', browser_redirect_url: 'https://b.example/' };
    assert.throws(() => parseCreateConnectToken({ ...create, resource_url: `https://a.example.com/${cut}` }), halfPair('response.resource_url'));
    assert.throws(() => parseCreateConnectToken({ ...create, browser_redirect_url: `https://b.example/${cut}` }), (error) => error instanceof ShapeError && error.message === 'response.browser_redirect_url is not an http(s) URL');
  });

  it('names the source a refused one is among an account’s sources (`sources[1]: …`), in a list after the account’s place', () => {
    // An account of 40 sources refused for "port is not a whole number" named none of them.
    const sources = [{ label: 'a', port: 993 }, { label: 'b', port: 'imaps' }];
    const refused = (message: string) => (error: unknown) => error instanceof ShapeError && error.message === message;
    assert.throws(() => parseAccount({ id: 'x', created: 1, sources }), refused("sources[1]: port is not a whole number within GraphQL's Int"));
    assert.throws(() => parseAccount({ id: 'x', created: 1, sources: [{ label: 'a' }, 5] }), refused('sources[1]: source is not an object'));
    assert.throws(() => listOf(parseAccount)([{ id: 'y', created: 1 }, { id: 'x', created: 1, sources }]), refused("response[1]: sources[1]: port is not a whole number within GraphQL's Int"));
  });

  it('refuses a create whose answer has no resource_url, which the mutation’s payload serves', () => {
    assert.throws(() => parseCreateAccount({ success: true, id: 'abc' }), (error) => error instanceof ShapeError && error.message === 'response.resource_url is not a string');
    assert.throws(() => parseCreateConnectToken({ success: true, token: 'abc', browser_redirect_url: 'b' }), (error) => error instanceof ShapeError && error.message === 'response.resource_url is not a string');
  });

  it('refuses a create that names an empty browser redirect URL, or one that is no http(s) page: the link its user must follow', () => {
    assert.throws(() => parseCreateConnectToken({ success: true, token: 'abc', resource_url: 'u', browser_redirect_url: '' }), (error) => error instanceof ShapeError && /browser_redirect_url is empty/.test(error.message));
    // Followed by a frontend, a javascript: link would run in the frontend's origin; the refusal does not quote it.
    for (const link of ['javascript:alert(document.cookie)', 'JavaScript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'connect/abc', '//evil.example/connect']) {
      assert.throws(
        () => parseCreateConnectToken({ success: true, token: 'abc', resource_url: 'u', browser_redirect_url: link }),
        (error) => error instanceof ShapeError && error.message === 'response.browser_redirect_url is not an http(s) URL',
        link,
      );
    }
    for (const link of ['https://connect.context.io/connect/abc', 'http://127.0.0.1:4010/connect/abc']) {
      assert.equal(parseCreateConnectToken({ success: true, token: 'abc', resource_url: 'u', browser_redirect_url: link }).browser_redirect_url, link);
    }
  });

  it('refuses a list answered in any shape but an array, rather than read it as no items', () => {
    for (const answer of [{ accounts: [{ id: 'x', created: 1 }] }, { 0: { id: 'x', created: 1 } }, null, 'x']) {
      assert.throws(() => listOf(parseAccount)(answer), (error) => error instanceof ShapeError && error.message === 'response is not an array', JSON.stringify(answer));
    }
  });
});
