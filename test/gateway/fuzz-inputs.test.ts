import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../helpers/random.ts';
import { useStack, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/*
 * The gateway's argument checks, fuzzed against the emulator (the upstream's model, contextio-2.0.md): seeded
 * random mutations and queries whose arguments are drawn from valid values, edge values and bad ones (emails,
 * names, callback URLs, ids and tokens, filters, `first` and `after`). For each operation:
 *   1. a refusal by the gateway is BAD_USER_INPUT naming the argument (`extensions.field`; an id or token is
 *      refused without one, as docs/errors.md's BAD_USER_INPUT row says) and cost no upstream request for it (a
 *      mutation: none of its writes);
 *   2. what the gateway sends is never answered 400 by the upstream: that would be a check the gateway could
 *      have made from the value alone;
 *   3. a value accepted reaches the upstream as given (a callback URL as a URL parser writes it) and reads back
 *      so through the gateway;
 *   4. never INTERNAL_SERVER_ERROR nor a 5xx.
 * Each drawn value carries the test's own verdict from docs/errors.md and CONTRACT.md (`ok`, `bad`, or `edge`: either
 * is fine, the four properties still hold). INPUT_FUZZ_SEED and INPUT_FUZZ_CASES replay or widen a run.
 */

const SEED = Number(process.env['INPUT_FUZZ_SEED'] ?? 20_261_205);
const CASES = Number(process.env['INPUT_FUZZ_CASES'] ?? 400);

type Verdict = 'ok' | 'bad' | 'edge';
interface Drawn<T> {
  value: T;
  verdict: Verdict;
}

// ---- value pools ------------------------------------------------------------------------------------------------

const long = (prefix: string, length: number, fill = 'a'): string => prefix + fill.repeat(length - prefix.length);

/** [value, verdict for an account (createAccount, filter.email), verdict for a connect token]. */
const EMAILS: ReadonlyArray<readonly [string, Verdict, Verdict]> = [
  ['user@example.com', 'ok', 'ok'],
  ['First.Last+tag@Example.co.uk', 'ok', 'ok'],
  ['zoë@exämple.com', 'ok', 'ok'],
  ['δοκιμή@παράδειγμα.δοκιμή', 'ok', 'ok'],
  ['"quoted"@example.com', 'ok', 'ok'],
  ['"quoted local"@example.com', 'bad', 'bad'],
  ['user@[127.0.0.1]', 'ok', 'ok'],
  ['x@y', 'ok', 'ok'],
  ['100%@example.com', 'ok', 'ok'],
  ['a&b=c@example.com', 'ok', 'ok'],
  ['😀@example.com', 'ok', 'ok'],
  ["a!#$%&'*+/=?^_`{|}~-@example.com", 'ok', 'ok'],
  ['user@example.com\u2028', 'bad', 'bad'],
  ['user@\u3000example.com', 'bad', 'bad'],
  ['@gmail.com', 'bad', 'ok'],
  ['@', 'bad', 'bad'],
  ['', 'bad', 'bad'],
  ['no-at.example.com', 'bad', 'bad'],
  ['two@@example.com', 'bad', 'bad'],
  ['a@b@example.com', 'bad', 'bad'],
  ['user@', 'bad', 'bad'],
  [' user@example.com', 'bad', 'bad'],
  ['user@example.com\n', 'bad', 'bad'],
  ['us\u200ber@example.com', 'bad', 'bad'],
  ['\u202euser@example.com', 'bad', 'bad'],
  ['user@example.com\u0000', 'bad', 'bad'],
  ['user\u00a0@example.com', 'bad', 'bad'],
  ['user@exa\u00admple.com', 'bad', 'bad'],
  ['\ud800user@example.com', 'bad', 'bad'],
  [`${'l'.repeat(64)}@${long('', 189, 'd')}`, 'ok', 'ok'],
  [`${'l'.repeat(64)}@${long('', 190, 'd')}`, 'bad', 'bad'],
  [`@${long('', 253, 'd')}`, 'bad', 'ok'],
  ['x'.repeat(5000), 'bad', 'bad'],
];

const NAMES: ReadonlyArray<readonly [string, Verdict]> = [
  ['Ada', 'ok'],
  ['', 'ok'],
  ['José', 'ok'],
  ['王小明', 'ok'],
  ['مرحبا', 'ok'],
  ['  padded  ', 'ok'],
  ['non\u00a0breaking', 'ok'],
  ['ZW\u200dJ', 'ok'],
  ['mark\u200e', 'ok'],
  ['soft\u00adhyphen', 'ok'],
  ['\ufeffbom', 'ok'],
  ['a+b&c=d%20e', 'ok'],
  ["O'Brien-Smith (Jr.) <x> \"q\" \\ / ; #", 'ok'],
  ['nonchar\uffff\ufffe', 'ok'],
  ['😀'.repeat(128), 'ok'],
  ['😀'.repeat(128) + 'a', 'bad'],
  ['a'.repeat(256), 'ok'],
  ['a'.repeat(257), 'bad'],
  ['😀'.repeat(127) + '\ud83d', 'bad'],
  ['Ann\nMarie', 'bad'],
  ['Ann\r\nMarie', 'bad'],
  ['tab\there', 'bad'],
  ['nul\u0000', 'bad'],
  ['\u001b[31mred', 'bad'],
  ['\u0085nel', 'bad'],
  ['\u202eevil', 'bad'],
  ['\u2066iso\u2069', 'bad'],
  ['line\u2028sep', 'bad'],
  ['lone\udc00', 'bad'],
];

/** [value, verdict as callbackUrl, verdict as sourceCallbackUrl]. */
const URLS: ReadonlyArray<readonly [string, Verdict, Verdict]> = [
  ['https://app.example.com/cb', 'ok', 'ok'],
  ['http://localhost:3000/cb?x=1&y=%20#frag', 'ok', 'ok'],
  ['HTTPS://App.Example.COM:443/a/../b', 'ok', 'ok'],
  ['https:example.com\\cb', 'ok', 'ok'],
  ['https://bücher.example/ü?q=ü', 'ok', 'ok'],
  ['https://xn--bcher-kva.example/', 'ok', 'ok'],
  ['http://[::1]:8080/cb', 'ok', 'ok'],
  ['http://0x7f.1/', 'ok', 'ok'],
  ['http://example.com:65535/', 'ok', 'ok'],
  ['https://user:pa%20ss@example.com/', 'ok', 'ok'],
  ['https://example.com/%zz', 'ok', 'ok'],
  ['https://example.com/a%2Fb', 'ok', 'ok'],
  ['myapp://connected', 'ok', 'bad'],
  ['cio-api-auth://x?y', 'ok', 'bad'],
  ['myapp:a/../b', 'ok', 'bad'],
  ['web+app:/.//x', 'ok', 'bad'],
  ['myapp://bücher/ü', 'ok', 'bad'],
  ['mailto:x@example.com', 'ok', 'bad'],
  ['ftp://example.com/x', 'ok', 'bad'],
  ['ws://example.com/x', 'ok', 'bad'],
  ['a:', 'ok', 'bad'],
  ['javascript:alert(1)', 'bad', 'bad'],
  ['JavaScript:alert(1)', 'bad', 'bad'],
  ['data:text/html,<script>x</script>', 'bad', 'bad'],
  ['file:///etc/passwd', 'bad', 'bad'],
  ['about:blank', 'bad', 'bad'],
  ['blob:https://example.com/1', 'bad', 'bad'],
  ['view-source:https://example.com', 'bad', 'bad'],
  ['/relative', 'bad', 'bad'],
  ['relative/path', 'bad', 'bad'],
  ['//example.com/cb', 'bad', 'bad'],
  ['', 'bad', 'bad'],
  ['http://', 'bad', 'bad'],
  ['http://[::1', 'bad', 'bad'],
  ['http://example.com:65536/', 'bad', 'bad'],
  ['http://%zz/', 'bad', 'bad'],
  ['my app://x', 'bad', 'bad'],
  ['https://example.com/with space', 'bad', 'bad'],
  [' https://example.com/', 'bad', 'bad'],
  ['https://example.com/\n', 'bad', 'bad'],
  ['https://example.com/\u0000', 'bad', 'bad'],
  ['https://exa\u200bmple.com/', 'bad', 'bad'],
  ['\u202ehttps://example.com/', 'bad', 'bad'],
  ['https://example.com/\u3000', 'bad', 'bad'],
  ['https://example.com/\ud800', 'bad', 'bad'],
  [long('https://example.com/', 4096), 'ok', 'ok'],
  [long('https://example.com/', 4097), 'bad', 'bad'],
  [long('https://example.com/', 1400, 'é'), 'bad', 'bad'],
  // Written as a URL with its path's `/`: 4097.
  [long('https://example.com', 4096), 'bad', 'bad'],
  [long('https://example.com', 4095), 'ok', 'ok'],
];

const STATUSES = ['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'NO_ACCESS_TO_ALL_MAIL', 'TEMP_DISABLED', 'DISABLED'] as const;

/** Ids and tokens no path segment can carry (docs/errors.md: refused, without `extensions.field`), and odd ones it can. */
const ODD_IDS: ReadonlyArray<readonly [string, Verdict]> = [
  ['', 'bad'],
  ['.', 'bad'],
  ['..', 'bad'],
  ['a/b', 'bad'],
  ['../accounts', 'bad'],
  ['a\\b', 'bad'],
  ['a b', 'bad'],
  [' 52daabefcea6f9c35a4a0997', 'bad'],
  ['tab\t', 'bad'],
  ['line\n', 'bad'],
  ['zero\u200bwidth', 'bad'],
  ['\u202eid', 'bad'],
  ['x'.repeat(257), 'bad'],
  ['half\ud800', 'bad'],
  ['x'.repeat(256), 'ok'],
  // 2,304 characters percent-encoded: two in one path make a URL over 4096, refused (docs/errors.md) without a field.
  ['王'.repeat(256), 'edge'],
  ['52daabefcea6f9c35a4a0997', 'ok'],
  ['abcdef0123456789', 'ok'],
  ['50%', 'ok'],
  ['%2F', 'ok'],
  ['%2e%2e', 'ok'],
  ['me::mail.example.com', 'ok'],
  ['?x=1', 'ok'],
  ['#frag', 'ok'],
  ['é', 'ok'],
  ['😀', 'ok'],
  ['...', 'ok'],
];

/** Pieces of random text: what each check tells apart (separators, controls, invisible, astral, half a pair). */
const PIECES = [
  'a', 'Z', '0', '-', '_', '.', '@', ':', '/', '\\', '%', '%41', '+', '&', '=', '?', '#', '[', ']', '"', "'", '<', '~',
  ' ', '\t', '\n', '\r', '\u0000', '\u001f', '\u007f', '\u0085', '\u00a0', '\u00ad', '\u034f', '\u061c', '\u180e',
  '\u200b', '\u200c', '\u200d', '\u200e', '\u202a', '\u202e', '\u2060', '\u2066', '\u2028', '\u2029', '\u3000', '\ufeff',
  '\ufff9', 'é', 'e\u0301', 'ß', 'İ', '王', 'ا', '😀', '👩\u200d💻', '\u{e0001}', '\u{1d173}', '\ud800', '\udc00', '\uffff',
];

const URL_STARTS = ['https://', 'http://', 'HTTP://', 'https://app.example.com/', 'https://[::1]:', 'myapp:', 'myapp://', 'javascript:', 'data:', ''];

/** Random text of up to `pieces` pieces: its verdict is the gateway's to give (`edge`). */
function randomText(random: Random, pieces: number, start = ''): string {
  let text = start;
  for (let i = random.int(pieces + 1); i > 0; i--) text += random.pick(PIECES);
  return text;
}

// ---- the world the operations act on ------------------------------------------------------------------------------

interface World {
  accounts: string[];
  deletedAccounts: string[];
  /** Tokens with the account they belong to (`null`: top-level). */
  tokens: Array<{ token: string; owner: string | null }>;
  /** Cursors read from earlier pages, with the list (and filter) they belong to. */
  cursors: Array<{ list: string; cursor: string }>;
  /** Addresses of accounts made so far, to filter on. */
  emails: string[];
}

function seedWorld(stack: Stack): World {
  const store = stack.emulator.store;
  const world: World = { accounts: [], deletedAccounts: [], tokens: [], cursors: [], emails: [] };
  for (const [i, statuses] of [['OK'], ['INVALID_CREDENTIALS', 'OK'], ['DISABLED'], []].entries()) {
    const email = `seed${i}@example.com`;
    const id = store.createAccount({ email, first_name: `Seed${i}` }).id;
    for (const [j, status] of statuses.entries()) store.addSource(id, { email, server: `imap${j}.example.com`, status });
    world.accounts.push(id);
    world.emails.push(email);
    world.tokens.push({ token: store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' }).token, owner: id });
  }
  for (let i = 0; i < 3; i++) world.tokens.push({ token: store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' }).token, owner: null });
  return world;
}

/** The world's accounts and tokens as the store now has them. */
function syncWorld(world: World, stack: Stack): void {
  const store = stack.emulator.store;
  const live = store.listAccounts().map((a) => a.id);
  world.deletedAccounts.push(...world.accounts.filter((id) => !live.includes(id) && !world.deletedAccounts.includes(id)));
  world.accounts = live;
  world.tokens = [null, ...live].flatMap((owner) => store.listConnectTokens(owner).map((t) => ({ token: t.token, owner })));
}

// ---- operations ---------------------------------------------------------------------------------------------------

/** What the test expects of one root field. */
interface FieldCase {
  /** The field with its arguments as variables, and a selection. */
  text: string;
  variables: Array<{ name: string; type: string; value: unknown }>;
  /** Argument paths (as `extensions.field` names them) whose drawn value is bad, or edge. */
  bad: string[];
  edge: string[];
  /** An id or token argument drawn bad or edge: the gateway refuses it without `extensions.field`. */
  idVerdict: Verdict;
  /** Upstream calls allowed before a refusal (a parent read). */
  readBefore?: string;
  /** Checks the data of an answer without errors (property 3). */
  check?: (data: Record<string, unknown>, stack: Stack) => void;
  /** Updates the world after an answer without errors. */
  after?: (data: Record<string, unknown>) => void;
}

/**
 * The share of an input's draws from its pool that are of its refused values, dealt in turn. Picked from the whole
 * pool at random, a refused value came up about once in a run or not at all (`@gmail.com` as an account's address
 * once or twice in 400 cases, the account's address drawn some 30 times in all): account addresses are now drawn
 * more often too (more createAccount and accounts fields, fewer fresh addresses, a filter by address more often).
 */
const REFUSED_SHARE = 0.6;

class Generator {
  #n = 0;
  /** Per input, its refused values yet to be dealt in this round: each comes up once before any comes up again. */
  #decks = new Map<string, unknown[]>();
  /**
   * A refused value was dealt for the field being drawn: its other arguments are drawn from the values taken, so
   * that the refusal is for that value (a gateway letting it through, refusing another, would pass unseen).
   */
  #refusedDealt = false;
  constructor(
    private readonly random: Random,
    private readonly world: World,
    private readonly stack: Stack,
  ) {}

  #var(type: string, value: unknown, vars: FieldCase['variables']): string {
    const name = `v${this.#n++}`;
    vars.push({ name, type, value });
    return `$${name}`;
  }

  /** A value of `pool` for `input`: one of its refused values (dealt in turn) REFUSED_SHARE of the time, else another. */
  #fromPool<T>(input: string, pool: ReadonlyArray<readonly [T, Verdict]>): Drawn<T> {
    if (!this.#refusedDealt && this.random.chance(REFUSED_SHARE)) {
      this.#refusedDealt = true;
      let deck = this.#decks.get(input) as T[] | undefined;
      if (deck === undefined || deck.length === 0) {
        deck = this.random.shuffled(pool.filter(([, verdict]) => verdict === 'bad').map(([value]) => value));
        this.#decks.set(input, deck);
      }
      return { value: deck.pop()!, verdict: 'bad' };
    }
    const [value, verdict] = this.random.pick(pool.filter(([, v]) => v !== 'bad'));
    return { value, verdict };
  }

  #verdicts(entries: Array<[string, Verdict]>): Pick<FieldCase, 'bad' | 'edge'> {
    return { bad: entries.filter(([, v]) => v === 'bad').map(([f]) => f), edge: entries.filter(([, v]) => v === 'edge').map(([f]) => f) };
  }

  email(kind: 'account' | 'token'): Drawn<string> {
    if (kind === 'account' && this.random.chance(0.25)) {
      // A fresh address: accounts made are then told apart, and filters find them.
      return { value: `fuzz${this.#n++}.${this.random.pick(['a', 'B', 'zoë', 'x+y'])}@example.com`, verdict: 'ok' };
    }
    if (this.random.chance(0.15)) return { value: `${randomText(this.random, 4)}@${randomText(this.random, 3)}example.com${randomText(this.random, 2)}`, verdict: 'edge' };
    return this.#fromPool(`email of ${kind}`, EMAILS.map(([value, account, token]) => [value, kind === 'account' ? account : token] as const));
  }

  name(): Drawn<string> {
    if (this.random.chance(0.15)) return { value: randomText(this.random, 8), verdict: 'edge' };
    return this.#fromPool('name', NAMES);
  }

  url(kind: 'callback' | 'source'): Drawn<string> {
    if (this.random.chance(0.15)) return { value: randomText(this.random, 6, this.random.pick(URL_STARTS)), verdict: 'edge' };
    return this.#fromPool(`${kind} URL`, URLS.map(([value, callback, source]) => [value, kind === 'callback' ? callback : source] as const));
  }

  accountId(): Drawn<string> {
    const r = this.random.next();
    if (r < 0.55 && this.world.accounts.length > 0) return { value: this.random.pick(this.world.accounts), verdict: 'ok' };
    if (r < 0.65 && this.world.deletedAccounts.length > 0) return { value: this.random.pick(this.world.deletedAccounts), verdict: 'ok' };
    return this.#oddId();
  }

  #oddId(): Drawn<string> {
    if (this.random.chance(0.2)) return { value: randomText(this.random, 4), verdict: 'edge' };
    return this.#fromPool('id', ODD_IDS);
  }

  token(owner: string | null | undefined): Drawn<string> {
    const mine = this.world.tokens.filter((t) => owner === undefined || t.owner === owner);
    if (this.random.chance(0.55) && mine.length > 0) return { value: this.random.pick(mine).token, verdict: 'ok' };
    if (this.random.chance(0.2) && this.world.tokens.length > 0) return { value: this.random.pick(this.world.tokens).token, verdict: 'ok' };
    return this.#oddId();
  }

  first(): Drawn<number | null | undefined> {
    const drawn = this.random.pick<Drawn<number | null | undefined>>([
      { value: undefined, verdict: 'ok' },
      { value: null, verdict: 'ok' },
      { value: 1, verdict: 'ok' },
      { value: 2, verdict: 'ok' },
      { value: 20, verdict: 'ok' },
      { value: 100, verdict: 'ok' },
      { value: 0, verdict: 'bad' },
      { value: 101, verdict: 'bad' },
      { value: -1, verdict: 'bad' },
      { value: 2_147_483_647, verdict: 'bad' },
      // Not a GraphQL Int: the variable itself is refused.
      { value: 2_147_483_648, verdict: 'bad' },
      { value: 1.5, verdict: 'bad' },
    ]);
    // After a refused value of the field, a refused `first` would be the refusal's reason: the default instead.
    return drawn.verdict === 'bad' && this.#refusedDealt ? { value: undefined, verdict: 'ok' } : drawn;
  }

  after(list: string): Drawn<string | null | undefined> {
    const r = this.random.next();
    const same = this.world.cursors.filter((c) => c.list === list);
    const other = this.world.cursors.filter((c) => c.list !== list);
    if (r < 0.3 || (this.#refusedDealt && same.length === 0)) return { value: undefined, verdict: 'ok' };
    if (this.#refusedDealt) return { value: this.random.pick(same).cursor, verdict: 'ok' };
    if (r < 0.35) return { value: null, verdict: 'ok' };
    if (r < 0.6 && same.length > 0) return { value: this.random.pick(same).cursor, verdict: 'ok' };
    if (r < 0.8 && other.length > 0) return { value: this.random.pick(other).cursor, verdict: 'bad' };
    const garbage = ['', 'abc', 'YWNjb3VudHM6MDE', 'Y29ubmVjdFRva2VuczowLnh4', '😀', 'x'.repeat(5000), '\ud800', '%00'];
    return { value: this.random.pick(garbage), verdict: 'bad' };
  }

  createConnectTokenInput(vars: FieldCase['variables']): { arg: string; verdicts: Array<[string, Verdict]>; input: Record<string, unknown> } {
    const input: Record<string, unknown> = {};
    const verdicts: Array<[string, Verdict]> = [];
    const callbackMissing = this.random.chance(0.03);
    const optional: Array<[string, () => Drawn<unknown>]> = [
      ['email', () => this.email('token')],
      ['firstName', () => this.name()],
      ['lastName', () => this.name()],
      ['sourceCallbackUrl', () => this.url('source')],
      ['sourceSyncAllFolders', () => ({ value: this.random.chance(0.5), verdict: 'ok' })],
      ['sourceSyncFlags', () => ({ value: this.random.pick([true, false, null]), verdict: 'ok' })],
      ['sourceRawFileList', () => ({ value: this.random.chance(0.5), verdict: 'ok' })],
    ];
    const present = optional.filter(([field]) => this.random.chance(field === 'email' || field === 'sourceCallbackUrl' ? 0.6 : 0.45));
    const fields: Array<[string, () => Drawn<unknown>]> = [
      ['callbackUrl', () => (callbackMissing ? { value: undefined, verdict: 'bad' } : this.url('callback'))],
      ...present.map(([field, draw]): [string, () => Drawn<unknown>] => [field, () => (this.random.chance(0.08) ? { value: null, verdict: 'ok' } : draw())]),
    ];
    // Drawn in an order drawn at random, so that the one refused value a field is dealt (#refusedDealt) may fall on any.
    const drawn = new Map(this.random.shuffled(fields).map(([field, draw]) => [field, draw()]));
    for (const [field] of fields) {
      input[field] = drawn.get(field)!.value;
      verdicts.push([`input.${field}`, drawn.get(field)!.verdict]);
    }
    return { arg: this.#var('CreateConnectTokenInput!', input, vars), verdicts, input };
  }

  field(mutation: boolean): FieldCase {
    this.#refusedDealt = false;
    const vars: FieldCase['variables'] = [];
    const kinds = mutation
      ? ['createAccount', 'createAccount', 'createAccount', 'updateAccount', 'createConnectToken', 'createConnectToken', 'createAccountConnectToken', 'createAccountConnectToken', 'deleteConnectToken', 'deleteAccountConnectToken', 'deleteAccount']
      : ['account', 'connectToken', 'accounts', 'accounts', 'connectTokens', 'accountConnectToken'];
    const kind = this.random.pick(kinds);
    const world = this.world;
    const store = this.stack.emulator.store;
    switch (kind) {
      case 'createAccount': {
        const email = this.email('account');
        const input: Record<string, unknown> = { email: email.value };
        const verdicts: Array<[string, Verdict]> = [['input.email', email.verdict]];
        for (const field of ['firstName', 'lastName']) {
          if (!this.random.chance(0.6)) continue;
          const name = this.random.chance(0.1) ? { value: null, verdict: 'ok' as const } : this.name();
          input[field] = name.value;
          verdicts.push([`input.${field}`, name.verdict]);
        }
        const arg = this.#var('CreateAccountInput!', input, vars);
        return {
          text: `createAccount(input: ${arg}) { id account { id emailAddresses firstName lastName } }`,
          variables: vars,
          ...this.#verdicts(verdicts),
          idVerdict: 'ok',
          check: (data) => {
            const payload = data as { id: string; account: { id: string; emailAddresses: string[]; firstName: string | null; lastName: string | null } };
            assert.deepEqual(payload.account, { id: payload.id, emailAddresses: [email.value], firstName: readBack(input['firstName']), lastName: readBack(input['lastName']) });
            const stored = store.getAccount(payload.id)!;
            assert.deepEqual([stored.email_addresses, stored.first_name, stored.last_name], [[email.value], input['firstName'] ?? '', input['lastName'] ?? '']);
          },
          after: () => world.emails.push(email.value),
        };
      }
      case 'updateAccount': {
        const id = this.accountId();
        const input: Record<string, unknown> = {};
        const verdicts: Array<[string, Verdict]> = [];
        for (const field of ['firstName', 'lastName']) {
          if (!this.random.chance(0.65)) continue;
          const name = this.random.chance(0.15) ? { value: null, verdict: 'ok' as const } : this.name();
          input[field] = name.value;
          verdicts.push([`input.${field}`, name.verdict]);
        }
        if (input['firstName'] == null && input['lastName'] == null) verdicts.push(['input', 'bad']);
        const before = store.getAccount(id.value);
        const idArg = this.#var('ID!', id.value, vars);
        const inputArg = this.#var('UpdateAccountInput!', input, vars);
        return {
          text: `updateAccount(id: ${idArg}, input: ${inputArg}) { success account { id firstName lastName } }`,
          variables: vars,
          ...this.#verdicts(verdicts),
          idVerdict: id.verdict,
          check: (data) => {
            const expected = (field: string, wire: string | undefined) => readBack(input[field] ?? wire);
            assert.deepEqual(data, {
              success: true,
              account: { id: id.value, firstName: expected('firstName', before?.first_name), lastName: expected('lastName', before?.last_name) },
            });
          },
        };
      }
      case 'createConnectToken':
      case 'createAccountConnectToken': {
        const accountLevel = kind === 'createAccountConnectToken';
        const id = accountLevel ? this.accountId() : undefined;
        const idArg = id && this.#var('ID!', id.value, vars);
        const { arg, verdicts, input } = this.createConnectTokenInput(vars);
        return {
          text: `${kind}(${idArg ? `accountId: ${idArg}, ` : ''}input: ${arg}) { token connectToken { token email callbackUrl firstName lastName used } }`,
          variables: vars,
          ...this.#verdicts(verdicts),
          idVerdict: id?.verdict ?? 'ok',
          check: (data) => {
            const payload = data as { token: string; connectToken: Record<string, unknown> };
            assert.deepEqual(payload.connectToken, {
              token: payload.token,
              email: readBack(input['email']),
              callbackUrl: new URL(input['callbackUrl'] as string).href,
              firstName: readBack(input['firstName']),
              lastName: readBack(input['lastName']),
              used: false,
            });
            if (input['sourceCallbackUrl'] != null) {
              // Not in the schema: read where the upstream uses it, at the end of the connect flow.
              const used = store.useConnectToken(payload.token, { email: 'connected@example.com', server: 'imap.example.com' });
              assert.equal(used.sourceCallbackUrl, new URL(input['sourceCallbackUrl'] as string).href, 'the source callback URL stored upstream');
            }
          },
        };
      }
      case 'deleteConnectToken':
      case 'deleteAccountConnectToken': {
        const accountLevel = kind === 'deleteAccountConnectToken';
        const id = accountLevel ? this.accountId() : undefined;
        const token = this.token(accountLevel ? id!.value : null);
        const idArg = id && this.#var('ID!', id.value, vars);
        const tokenArg = this.#var('ID!', token.value, vars);
        return {
          text: `${kind}(${idArg ? `accountId: ${idArg}, ` : ''}token: ${tokenArg}) { success token }`,
          variables: vars,
          bad: [],
          edge: [],
          idVerdict: worst(id?.verdict ?? 'ok', token.verdict),
          check: (data) => assert.deepEqual(data, { success: true, token: token.value }),
        };
      }
      case 'deleteAccount': {
        // Rarely, or the world runs out of accounts.
        const id = this.random.chance(0.3) ? this.accountId() : this.#oddId();
        const idArg = this.#var('ID!', id.value, vars);
        return {
          text: `deleteAccount(id: ${idArg}) { success id }`,
          variables: vars,
          bad: [],
          edge: [],
          idVerdict: id.verdict,
          check: (data) => assert.deepEqual(data, { success: true, id: id.value }),
        };
      }
      case 'account': {
        const id = this.accountId();
        const idArg = this.#var('ID!', id.value, vars);
        return { text: `account(id: ${idArg}) { id emailAddresses firstName lastName }`, variables: vars, bad: [], edge: [], idVerdict: id.verdict };
      }
      case 'connectToken': {
        const token = this.token(null);
        const tokenArg = this.#var('ID!', token.value, vars);
        return { text: `connectToken(token: ${tokenArg}) { token email callbackUrl }`, variables: vars, bad: [], edge: [], idVerdict: token.verdict };
      }
      case 'accountConnectToken': {
        const id = world.accounts.length > 0 ? { value: this.random.pick(world.accounts), verdict: 'ok' as const } : this.accountId();
        const token = this.token(id.value);
        const idArg = this.#var('ID!', id.value, vars);
        const tokenArg = this.#var('ID!', token.value, vars);
        return {
          text: `account(id: ${idArg}) { id connectToken(token: ${tokenArg}) { token callbackUrl } }`,
          variables: vars,
          bad: [],
          edge: [],
          idVerdict: worst(id.verdict, token.verdict),
          readBefore: `GET /accounts/${encodeURIComponent(id.value)}`,
        };
      }
      case 'accounts': {
        const filter: Record<string, unknown> = {};
        const verdicts: Array<[string, Verdict]> = [];
        if (this.random.chance(0.6)) {
          const email = this.random.chance(0.35) && world.emails.length > 0 ? { value: this.random.pick(world.emails), verdict: 'ok' as const } : this.email('account');
          filter['email'] = email.value;
          verdicts.push(['filter.email', email.verdict]);
        }
        if (this.random.chance(0.35)) {
          const status = this.random.pick([...STATUSES, ...(this.#refusedDealt ? [] : ['UNKNOWN']), null]);
          filter['status'] = status;
          verdicts.push(['filter.status', status === 'UNKNOWN' ? 'bad' : 'ok']);
        }
        if (this.random.chance(0.3)) filter['statusOk'] = this.random.pick([true, false, null]);
        const hasFilter = this.random.chance(0.8);
        const list = `accounts ${JSON.stringify(hasFilter ? [filter['email'] ?? null, filter['status'] ?? null, filter['statusOk'] ?? null] : [null, null, null])}`;
        const first = this.first();
        const after = this.after(list);
        verdicts.push(['first', first.verdict], ['after', after.verdict]);
        const args = [
          hasFilter ? `filter: ${this.#var('AccountFilter', filter, vars)}` : '',
          first.value === undefined ? '' : `first: ${this.#var('Int', first.value, vars)}`,
          after.value === undefined ? '' : `after: ${this.#var('String', after.value, vars)}`,
        ].filter(Boolean);
        const wantedEmail = hasFilter ? (filter['email'] as string | undefined) : undefined;
        return {
          text: `accounts${args.length > 0 ? `(${args.join(', ')})` : ''} { edges { cursor node { id emailAddresses } } pageInfo { hasNextPage endCursor } }`,
          variables: vars,
          ...this.#verdicts(hasFilter ? verdicts : verdicts.filter(([f]) => !f.startsWith('filter.'))),
          idVerdict: 'ok',
          check: (data) => {
            const { edges } = data as { edges: Array<{ node: { id: string; emailAddresses: string[] } }> };
            if (wantedEmail !== undefined) {
              for (const edge of edges) assert.ok(edge.node.emailAddresses.some((e) => e.toLowerCase() === wantedEmail.toLowerCase()), `an account of ${wantedEmail}`);
            }
            if (after.value == null) {
              // The first page is the upstream's own list under the same filter, as given.
              const status = hasFilter ? (filter['status'] as string | null | undefined) : undefined;
              const statusOk = hasFilter ? (filter['statusOk'] as boolean | null | undefined) : undefined;
              const listed = store.listAccounts({ ...(wantedEmail == null ? {} : { email: wantedEmail }), ...(status == null ? {} : { status }), ...(statusOk == null ? {} : { status_ok: statusOk }) });
              assert.deepEqual(edges.map((e) => e.node.id), listed.slice(0, first.value ?? 20).map((a) => a.id), 'the first page, as the upstream lists it');
            }
          },
          after: (data) => {
            for (const edge of (data as { edges: Array<{ cursor: string }> }).edges) world.cursors.push({ list, cursor: edge.cursor });
          },
        };
      }
      default: {
        const first = this.first();
        const after = this.after('connectTokens');
        const args = [
          first.value === undefined ? '' : `first: ${this.#var('Int', first.value, vars)}`,
          after.value === undefined ? '' : `after: ${this.#var('String', after.value, vars)}`,
        ].filter(Boolean);
        return {
          text: `connectTokens${args.length > 0 ? `(${args.join(', ')})` : ''} { edges { cursor node { token callbackUrl } } pageInfo { hasNextPage } }`,
          variables: vars,
          ...this.#verdicts([['first', first.verdict], ['after', after.verdict]]),
          idVerdict: 'ok',
          check: (data) => {
            if (after.value != null) return;
            const tokens = (data as { edges: Array<{ node: { token: string } }> }).edges.map((e) => e.node.token);
            assert.deepEqual(tokens, store.listConnectTokens(null).slice(0, first.value ?? 20).map((t) => t.token), 'the first page, as the upstream lists it');
          },
          after: (data) => {
            for (const edge of (data as { edges: Array<{ cursor: string }> }).edges) world.cursors.push({ list: 'connectTokens', cursor: edge.cursor });
          },
        };
      }
    }
  }
}

/** A name, address or email as the gateway reads it back: the upstream writes one not given as `""`, which reads as null. */
const readBack = (value: unknown): unknown => (value === undefined || value === null || value === '' ? null : value);

const worst = (...verdicts: Verdict[]): Verdict => (verdicts.includes('bad') ? 'bad' : verdicts.includes('edge') ? 'edge' : 'ok');

const WRITES = /^(POST|DELETE) /;

/** JSON with each long string cut, for a failure's message. */
const shortJson = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 60)}…(${v.length} units)` : v));

// ---- the test -----------------------------------------------------------------------------------------------------

describe('fuzzed arguments: the gateway refuses what the upstream would, before any request, and sends the rest as given', () => {
  const stack = useStack();

  it(`runs ${CASES} operations drawn from seed ${SEED}`, async () => {
    const world = seedWorld(stack);
    const random = new Random(SEED);
    const generator = new Generator(random, world, stack);
    const tally = { refused: 0, accepted: 0, notFound: 0 };
    for (let index = 0; index < CASES; index++) {
      const mutation = random.chance(0.55);
      const fields = Array.from({ length: mutation && random.chance(0.15) ? 2 : 1 }, () => generator.field(mutation));
      const variables = fields.flatMap((f) => f.variables);
      const header = variables.length > 0 ? `(${variables.map((v) => `$${v.name}: ${v.type}`).join(', ')})` : '';
      const text = `${mutation ? 'mutation' : 'query'}${header} { ${fields.map((f, i) => `f${i}: ${f.text}`).join(' ')} }`;
      const values = Object.fromEntries(variables.filter((v) => v.value !== undefined).map((v) => [v.name, v.value]));
      const replay = `seed ${SEED}, case ${index}: ${text}\nvariables: ${shortJson(values)}`;

      stack.emulator.clearRequests();
      let response: GraphQLResponse;
      try {
        response = await stack.gql(text, values);
      } catch (error) {
        throw new Error(`${replay}\n${String(error)}`);
      }
      const requests = stack.emulator.requests.map((r) => ({ call: `${r.method} ${r.path}`, status: r.status }));
      try {
        check(fields, response, requests, tally);
      } catch (error) {
        const answer = shortJson(response.body);
        const detail = error instanceof Error ? error.message : String(error);
        throw new Error(`${replay}\nanswer ${response.status}: ${answer}\nupstream: ${JSON.stringify(requests)}\n${detail}`, { cause: error });
      }
      if (!response.body.errors) {
        try {
          fields.forEach((f, i) => f.check?.((response.body.data as Record<string, Record<string, unknown>>)[`f${i}`]!, stack));
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          throw new Error(`${replay}\nanswer: ${shortJson(response.body)}\n${detail}`, { cause: error });
        }
        fields.forEach((f, i) => f.after?.((response.body.data as Record<string, Record<string, unknown>>)[`f${i}`]!));
      }
      // Writes made before a later field failed are not in the answer: the ids and tokens are read back from the store.
      syncWorld(world, stack);
    }
    // The draw reaches each outcome, so a change that made the gateway refuse (or accept) everything shows.
    assert.ok(tally.refused > CASES / 10 && tally.accepted > CASES / 10 && tally.notFound > 0, JSON.stringify(tally));
  });

  function check(fields: FieldCase[], response: GraphQLResponse, requests: Array<{ call: string; status: number }>, tally: Record<string, number>): void {
    // 4. Never a 5xx nor an internal error.
    assert.ok(response.status < 500, `HTTP ${response.status}`);
    const errors = response.body.errors ?? [];
    const codes = errors.map((e) => e.extensions?.['code']);
    for (const code of codes) assert.ok(code === 'BAD_USER_INPUT' || code === 'NOT_FOUND', `code ${String(code)}`);
    // 2. The upstream never refuses as invalid what the gateway sent.
    const upstream400 = requests.filter((r) => r.status === 400);
    assert.deepEqual(upstream400, [], 'an upstream 400 to what the gateway sent: a check the gateway could have made');
    for (const error of errors) assert.notEqual((error.extensions?.['upstream'] as { status?: number } | undefined)?.status, 400);

    const refusals = errors.filter((e) => e.extensions?.['code'] === 'BAD_USER_INPUT');
    const anyBad = fields.some((f) => f.bad.length > 0 || f.idVerdict === 'bad');
    const anyEdge = fields.some((f) => f.edge.length > 0 || f.idVerdict === 'edge');
    if (refusals.length === 0) {
      // A nested field's arguments are checked once its parent is read: an unknown parent ends it before.
      const parentGone = (f: FieldCase, i: number) => f.readBefore !== undefined && errors.some((e) => e.extensions?.['code'] === 'NOT_FOUND' && e.path?.length === 1 && e.path[0] === `f${i}`);
      const anyBad = fields.some((f, i) => (f.bad.length > 0 || f.idVerdict === 'bad') && !parentGone(f, i));
      assert.ok(!anyBad, `accepted, though docs/errors.md refuses ${JSON.stringify(fields.map((f) => [...f.bad, ...(f.idVerdict === 'bad' ? ['id or token'] : [])]))}`);
      tally[codes.includes('NOT_FOUND') ? 'notFound' : 'accepted']!++;
      return;
    }
    tally['refused']!++;
    assert.ok(anyBad || anyEdge, `refused, though every argument is valid: ${refusals.map((e) => e.message).join('; ')}`);
    for (const refusal of refusals) {
      const field = refusal.extensions?.['field'];
      const named = fields.flatMap((f) => [...f.bad, ...f.edge]);
      if (field === undefined) {
        // Only an id or token (docs/errors.md: refused without `extensions.field`, as is a URL they make too long), or a
        // variable's value of the wrong type.
        assert.ok(fields.some((f) => f.idVerdict !== 'ok') || /^Variable "\$/.test(refusal.message), `refused without extensions.field: ${refusal.message}`);
      } else {
        assert.ok(named.includes(field as string), `extensions.field ${JSON.stringify(field)}, not one of the bad arguments ${JSON.stringify(named)}`);
      }
    }
    // 1. A refusal costs no request: a mutation none of its writes, a query none but its parent's read.
    const mutation = fields[0]!.text.match(/^(create|update|delete)/) !== null;
    if (mutation) {
      assert.deepEqual(requests.filter((r) => WRITES.test(r.call)), [], 'writes of a refused mutation');
    } else {
      assert.deepEqual(requests.map((r) => r.call).filter((c) => c !== fields[0]!.readBefore), [], 'requests of a refused query');
    }
  }
});
