import type { Random } from './random.ts';

/**
 * Mutated upstream answers for the parse fuzz tests (test/unit/parse-fuzz.test.ts and its integration part):
 * valid Context.IO 2.0 answers as contextio-2.0.md shows them and the emulator renders them, each field's value
 * replaced by another JSON type or an edge value, fields missing, added, duplicated in the raw text, wrapped in
 * or unwrapped from arrays, nested deeply. Generated as a value, then written as raw JSON text, since some
 * variations exist only in the text (`-0`, `1e400`, duplicate keys, an own `__proto__` key, deep nesting).
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A string value written as the raw JSON text that follows it. */
const RAW = '\u0002raw:';
/** A key written as a second copy of the key after it (`\u0003dup:<key>`): a duplicate key in the text. */
const DUPLICATE = '\u0003dup';

export const raw = (text: string): string => `${RAW}${text}`;

export const ACCOUNT_ID = '52daabefcea6f9c35a4a0997';
const TOKEN = 'abcdef0123456789';

/** Sources as the emulator renders them and as contextio-2.0.md's sample has them. */
export function validSource(index: number): Record<string, Json> {
  return {
    label: index === 0 ? 'me::mail.example.com' : `me${index}::imap.example.org`,
    email: 'me@example.com',
    username: 'me',
    server: 'mail.example.com',
    port: 993,
    use_ssl: true,
    type: 'imap',
    authentication_type: 'password',
    status: index === 0 ? 'OK' : 'INVALID_CREDENTIALS',
    status_message: index === 0 ? null : 'The credentials were refused',
    sync_period: '1d',
    resource_url: `https://api.context.io/2.0/accounts/${ACCOUNT_ID}/sources/me%3A%3Amail.example.com`,
  };
}

export function validAccount(id = ACCOUNT_ID): Record<string, Json> {
  return {
    id,
    username: 'me.example.com_1234567890abcdef',
    created: 1_234_567_890,
    suspended: 0,
    email_addresses: ['me@example.com'],
    first_name: 'John',
    last_name: 'Doe',
    password_expired: 0,
    sources: [validSource(0), validSource(1)],
    resource_url: `https://api.context.io/2.0/accounts/${id}`,
    nb_messages: 1200,
    nb_files: 34,
  };
}

/** What a used connect token embeds: `{id, created, suspended, email_addresses, first_name, last_name, sources}`. */
export function validEmbeddedAccount(id = ACCOUNT_ID): Record<string, Json> {
  const { id: _, created, suspended, email_addresses, first_name, last_name, sources } = validAccount(id);
  return { id, created: created!, suspended: suspended!, email_addresses: email_addresses!, first_name: first_name!, last_name: last_name!, sources: sources! };
}

export function validToken(used: boolean, token = TOKEN, accountId = ACCOUNT_ID): Record<string, Json> {
  return {
    token,
    email: 'me@example.com',
    created: 1_700_000_000,
    used: used ? 1_700_000_600 : 0,
    expires: used ? false : 1_700_086_400,
    callback_url: 'https://app.example.com/connected',
    first_name: 'John',
    last_name: 'Doe',
    account: used ? validEmbeddedAccount(accountId) : {},
  };
}

export const validCreateConnectToken = (): Record<string, Json> => ({
  success: true,
  token: TOKEN,
  resource_url: `https://api.context.io/2.0/connect_tokens/${TOKEN}`,
  browser_redirect_url: `https://api.context.io/connect/${TOKEN}`,
});

export const validCreateAccount = (id = ACCOUNT_ID): Record<string, Json> => ({ success: true, id, resource_url: `https://api.context.io/2.0/accounts/${id}` });

export const validSuccess = (): Record<string, Json> => ({ success: true });

const deep = (depth: number, open: string, leaf: string, close: string) => raw(open.repeat(depth) + leaf + close.repeat(depth));

/** Values of every JSON type, at the edges of what the parsers read. */
const ODD_NUMBERS: Json[] = [
  0, raw('-0'), raw('-0.0'), 1, -1, 0.5, -0.5, 1.5, 1e-7, raw('5e-324'), 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2,
  1e21, raw('1e400'), raw('-1e400'), raw('1E3'), 1_700_000_000, 1_700_000_000_000, 253_402_300_799, 253_402_300_799.999, 253_402_300_800,
  8.64e12, 8.64e12 + 1, 8.64e15, 993, 65_536,
];
const HUGE = 'x'.repeat(70_000);
const ODD_STRINGS: Json[] = [
  '', ' ', '0', '00', '1', '-1', '-0', '1.5', '1e3', '0x10', '+5', ' 5', '1700000000', '1700000000000', '8640000000001', '99999999999999999999',
  '2147483648', '-2147483649', 'true', 'false', 'null', 'yes', 'OK', 'ok', 'UNKNOWN', 'DISABLED ', 'SUSPENDED', '__proto__', 'constructor',
  'toString', HUGE, '\u0000\u0001\u001f\n\r\t', '\ud800', '\udc00x', 'a\u2028b\u2029', '\ufeff', '\u200b', '💌', 'yesterday',
  '2014-01-16T20:41:14Z', 'a/b', '..', '.', 'a b', 'me::mail.example.com', ACCOUNT_ID, ACCOUNT_ID.toUpperCase(), TOKEN,
];
const ODD_STRUCTURES: Json[] = [
  [], [1], ['a@example.com'], [{}], [null], [[]], {}, { id: ACCOUNT_ID }, { '0': 'a@example.com' }, { email: 'a@example.com' },
  { label: 'l' }, { constructor: 1 }, { toString: 'x' }, { valueOf: {} }, { hasOwnProperty: null },
  deep(50, '[', '1', ']'), deep(5_000, '[', '', ']'), deep(2_000, '{"a":', '1', '}'), deep(20, '{"id":', `"${ACCOUNT_ID}"`, '}'),
];

function oddValue(random: Random): Json {
  switch (random.int(6)) {
    case 0:
      return random.pick([null, true, false]);
    case 1:
    case 2:
      return random.pick(ODD_NUMBERS);
    case 3:
    case 4:
      return random.pick(ODD_STRINGS);
    default:
      return random.pick(ODD_STRUCTURES);
  }
}

const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', 'ID', 'Id', 'extra', 'nb_threads', 'type', 'owner'];

/** The ways a used connect token's `account` has been sent (documented: the embed, `{}`, `[]`, an id) and some that have not. */
export function embeddedAccountShape(random: Random): Json {
  return random.pick<Json>([
    validEmbeddedAccount(),
    validAccount(),
    {},
    [],
    ACCOUNT_ID,
    '',
    null,
    7,
    true,
    [validEmbeddedAccount()],
    { id: '' },
    { id: null },
    { id: 7 },
    { id: ACCOUNT_ID },
    { id: ACCOUNT_ID.toUpperCase(), sources: {} },
    { id: ACCOUNT_ID, email_addresses: 'me@example.com' },
    { first_name: 'A' },
    'a b',
    '../accounts',
    { id: 'x/y', created: 1 },
    { id: 'x'.repeat(300) },
    { account: validEmbeddedAccount() },
    { id: { id: ACCOUNT_ID } },
    { id: ACCOUNT_ID, created: '1700000000', suspended: false, sources: [{ label: 'l', status: 'NEW' }] },
  ]);
}

/** Sets `key` of `o` as JSON.parse would (an own property, `__proto__` included) rather than as assignment does. */
function setOwn(o: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A copy of `o` with `key` first (before every other), so that a duplicate written before the real one loses to it. */
function withFirst(o: Record<string, Json>, key: string, value: Json): Record<string, Json> {
  const copy: Record<string, Json> = {};
  setOwn(copy, key, value);
  for (const [k, v] of Object.entries(o)) setOwn(copy, k, v);
  return copy;
}

const isObject = (value: Json): value is Record<string, Json> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** One mutation somewhere in `value` (a deep copy's node, picked by a random walk), and what it was. */
function mutateAt(random: Random, value: Json, where: string): { value: Json; what: string } {
  const children = isObject(value) ? Object.keys(value) : Array.isArray(value) ? value.map((_, i) => String(i)) : [];
  if (children.length > 0 && random.chance(0.55)) {
    const key = random.pick(children);
    const inner = mutateAt(random, isObject(value) ? value[key]! : (value as Json[])[Number(key)]!, `${where}.${key}`);
    if (Array.isArray(value)) {
      const copy = [...value];
      copy[Number(key)] = inner.value;
      return { value: copy, what: inner.what };
    }
    const copy: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value as Record<string, Json>)) setOwn(copy, k, k === key ? inner.value : v);
    return { value: copy, what: inner.what };
  }
  const kind = random.int(10);
  if (isObject(value) && kind <= 1) {
    const key = random.pick(Object.keys(value).concat(['x']));
    const copy = { ...value };
    delete copy[key];
    return { value: copy, what: `${where}.${key} removed` };
  }
  if (isObject(value) && kind === 2) {
    const key = random.pick(EXTRA_KEYS);
    const copy = { ...value };
    const extra = oddValue(random);
    setOwn(copy, key, extra);
    return { value: copy, what: `${where}.${key} added` };
  }
  if (isObject(value) && kind === 3 && Object.keys(value).length > 0) {
    // The same key twice in the text: JSON.parse keeps the last, the odd value before or after the real one.
    const key = random.pick(Object.keys(value));
    const odd = oddValue(random);
    const before = random.chance(0.5);
    const copy = before ? withFirst(value, `${DUPLICATE}:${key}`, odd) : { ...value };
    if (!before) setOwn(copy, `${DUPLICATE}:${key}`, odd);
    return { value: copy, what: `${where}.${key} duplicated ${before ? 'before' : 'after'}` };
  }
  if (kind === 4) return { value: [value], what: `${where} wrapped in an array` };
  if (kind === 5 && Array.isArray(value)) {
    const byPosition: Record<string, Json> = {};
    value.forEach((item, i) => (byPosition[i] = item));
    return { value: random.chance(0.5) ? byPosition : (value[0] ?? null), what: `${where} unwrapped` };
  }
  if (kind === 6 && isObject(value)) return { value: Object.values(value), what: `${where} as its values' array` };
  return { value: oddValue(random), what: `${where} replaced` };
}

/** `base` with one to four mutations; each said in `what`. */
export function mutate(random: Random, base: Json, count = 1 + random.int(4)): { value: Json; what: string[] } {
  let value = base;
  const what: string[] = [];
  for (let i = 0; i < count; i++) {
    const next = mutateAt(random, value, '$');
    value = next.value;
    what.push(next.what);
  }
  return { value, what };
}

/**
 * The JSON text of `value`: raw values written out, duplicate keys given their key. A key duplicated before the
 * real one is written first (`withFirst`), so JSON.parse keeps the real one; after it, the odd one.
 */
export function toText(value: Json): string {
  return JSON.stringify(value)
    .replace(/"\\u0002raw:((?:[^"\\]|\\.)*)"/g, (_, body: string) => JSON.parse(`"${body}"`) as string)
    .replace(/"\\u0003dup:((?:[^"\\]|\\.)*)"/g, (_, key: string) => `"${key}"`);
}

export type { Json };
