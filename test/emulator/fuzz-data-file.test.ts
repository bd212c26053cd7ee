import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type * as fsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, describe, it } from 'node:test';
import { startEmulator } from '../../src/emulator/index.ts';
import { EmulatorStore } from '../../src/emulator/store.ts';
import { whileReplacingBuiltin } from '../helpers/builtins.ts';
import { Random } from '../helpers/random.ts';
import { api } from './helpers.ts';

/**
 * A seeded, deterministic fuzz of the emulator's data file (`EMULATOR_DATA_FILE`): files saved by a real store
 * (accounts with sources, unused, used, expired and account-level tokens, a used token whose account was deleted)
 * are mutated — cut at a random byte, bytes flipped, bytes that are not UTF-8, a byte order mark, values of another
 * JSON type, fields missing or added (`__proto__` among them), ids and labels repeated, tokens of no account, odd
 * numbers and strings, the format and version wrong, a connect token's callback_url that the API refuses (such a
 * file must be refused, and every callback a loaded file holds is one the API takes) — and each is opened as the emulator's start opens it
 * (`EmulatorStore.open`). It is loaded whole into a consistent store (`brokenLoad`), or refused with one line that
 * names the file, the file left as it was (`brokenRefusal`); never anything else thrown. A loaded file is written
 * back byte for byte by a second load (round trip), and one in HTTP_EVERY is served: every account, source and token
 * answers 200. Special cases: an empty file, a folder in its place, a 12 MB file, a field nested 200,000 deep. Apart,
 * saves that fail mid-write (ENOSPC) leave the file as the last save wrote it.
 *
 * A failure names its seed, case and mutation: `DATA_FILE_FUZZ_SEED=<seed>` replays the run,
 * `DATA_FILE_FUZZ_CASES=<n>` runs more cases.
 */
const SEED = Number(process.env['DATA_FILE_FUZZ_SEED'] ?? 0xda7a_f11e) >>> 0;
const CASES = Number(process.env['DATA_FILE_FUZZ_CASES'] ?? 2000);
/** Loaded cases also served over HTTP: one in this many. */
const HTTP_EVERY = 25;

/** The stores' clock, fixed: which tokens have expired is the same on every run. */
const NOW_MS = Date.UTC(2026, 0, 15, 12);
const NOW = Math.floor(NOW_MS / 1000);
const now = () => NOW_MS;
const TOKEN_TTL = 86_400;

// tmpfs where there is one: the loaded cases' saves are flushed to the disk (fsync), thousands of them.
const scratchRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const tempDirs: string[] = [];
after(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(scratchRoot, 'cio-data-fuzz-'));
  tempDirs.push(dir);
  return dir;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A store's file as the emulator writes it, after accounts, sources and every kind of token were made. */
async function savedFile(dir: string, name: string, seed: 'demo' | 'none'): Promise<Buffer> {
  const dataFile = join(dir, name);
  const store = await EmulatorStore.open({ dataFile, seed, now });
  const zoe = store.createAccount({ email: 'zoë@exämple.com', first_name: 'Zoë', last_name: 'Ünal', nb_messages: 3 });
  store.addSource(zoe.id, { status: 'DISABLED', status_message: 'auth failed' });
  store.addSource(zoe.id, { email: 'zoe@work.example', port: 143, use_ssl: false });
  const bob = store.createAccount({ email: 'bob@example.com', sources: [{ server: 'imap.example.com' }] });
  const gone = store.createAccount({ email: 'gone@example.com', sources: [{}] });
  store.createConnectToken(null, { callback_url: 'http://localhost/cb', email: '@gmail.com' });
  store.createConnectToken(bob.id, { callback_url: 'http://localhost/cb?x=1', source_sync_flags: true });
  store.createConnectToken(null, { callback_url: 'http://localhost/old', created: NOW - TOKEN_TTL - 5 });
  const topLevel = store.createConnectToken(null, { callback_url: 'http://localhost/cb', first_name: 'Top' });
  store.useConnectToken(topLevel.token, { email: 'new@example.net' });
  const ofAccount = store.createConnectToken(zoe.id, { callback_url: 'http://localhost/cb' });
  store.useConnectToken(ofAccount.token, { email: 'zoe@other.example' });
  const ofGone = store.createConnectToken(null, { callback_url: 'http://localhost/g' });
  store.useConnectToken(ofGone.token, { email: 'gone@example.com', existingAccountId: gone.id });
  store.deleteAccount(gone.id);
  await store.close();
  return readFile(dataFile);
}

// ---- mutations ----------------------------------------------------------------------------------

type Path = Array<string | number>;

function nodesOf(value: Json, path: Path = [], out: Array<{ path: Path; value: Json }> = []) {
  out.push({ path, value });
  if (Array.isArray(value)) value.forEach((item, i) => nodesOf(item, [...path, i], out));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) nodesOf(item, [...path, key], out);
  return out;
}

function parentOf(root: Json, path: Path): Json {
  let node = root;
  for (const step of path.slice(0, -1)) node = (node as Record<string | number, Json>)[step]!;
  return node;
}

/** Sets a field as JSON.parse makes it: an own property, even `__proto__` (an assignment would set the prototype). */
function setOwn(target: Json, key: string | number, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const ODD_NUMBERS = [-1, -0.5, 0.5, 1.5, 1e21, 1e300, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 65_536, 70_000, 0, -0, 1e-7];
const ODD_STRINGS = ['', ' ', '\u0000', 'a\u0001b', 'line\nbreak', 'tab\t', '\u007f', '\u2028', '\ud800', '/', '..', '%2F', '0', 'x'.repeat(5_000), '__proto__', 'constructor', '<script>', 'é'];
const EXTRA_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'extra', 'id', 'label', 'token'];

function oddValue(random: Random, not?: Json): Json {
  const kinds: Array<() => Json> = [
    () => null,
    () => random.chance(0.5),
    () => random.pick(ODD_NUMBERS),
    () => random.pick(ODD_STRINGS),
    () => [],
    () => [random.pick(ODD_STRINGS)],
    () => ({}),
    () => ({ label: 'x', id: 'y' }),
  ];
  const typeOf = (v: Json) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  for (;;) {
    const value = random.pick(kinds)();
    if (not === undefined || typeOf(value) !== typeOf(not)) return value;
  }
}

const isRecord = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** One mutation of a parsed file, in place; returns what it did. */
function mutateStructure(random: Random, state: JsonObject): string {
  const nodes = nodesOf(state).slice(1);
  const where = (path: Path) => path.map((step) => (typeof step === 'number' ? `[${step}]` : `.${step}`)).join('');
  // The records an earlier mutation left records.
  const records = (list: Json | undefined) => (Array.isArray(list) ? list.filter((item): item is JsonObject => isRecord(item)) : []);
  const accounts = records(state['accounts']);
  const tokens = records(state['tokens']);
  const kind = random.pick(['retype', 'retype', 'delete', 'extra', 'duplicate', 'number', 'number', 'string', 'string', 'repeatId', 'orphan', 'label', 'header']);
  switch (kind) {
    case 'retype': {
      const { path, value } = random.pick(nodes);
      const replacement = oddValue(random, value);
      setOwn(parentOf(state, path), path.at(-1)!, replacement);
      return `retype ${where(path)} = ${JSON.stringify(replacement).slice(0, 40)}`;
    }
    case 'delete': {
      const { path } = random.pick(nodes);
      const parent = parentOf(state, path);
      if (Array.isArray(parent)) parent.splice(path.at(-1) as number, 1);
      else delete (parent as JsonObject)[path.at(-1)!];
      return `delete ${where(path)}`;
    }
    case 'extra': {
      const objects = [{ path: [] as Path, value: state as Json }, ...nodes].filter(({ value }) => value !== null && typeof value === 'object' && !Array.isArray(value));
      const { path, value } = random.pick(objects);
      const key = random.pick(EXTRA_KEYS);
      const extra = oddValue(random);
      // A key the record has is replaced, not added: `extra` only when it is new.
      setOwn(value, key, extra);
      return `set ${where([...path, key])} = ${JSON.stringify(extra).slice(0, 40)}`;
    }
    case 'duplicate': {
      const arrays = nodes.filter(({ value }) => Array.isArray(value) && value.length > 0);
      if (arrays.length === 0) return 'duplicate (nothing)';
      const { path, value } = random.pick(arrays);
      const list = value as Json[];
      const i = random.int(list.length);
      list.splice(random.int(list.length + 1), 0, structuredClone(list[i]!));
      return `duplicate ${where([...path, i])}`;
    }
    case 'number': {
      const numbers = nodes.filter(({ value }) => typeof value === 'number');
      if (numbers.length === 0) return 'number (none)';
      const { path } = random.pick(numbers);
      const replacement = random.pick(ODD_NUMBERS);
      setOwn(parentOf(state, path), path.at(-1)!, replacement);
      return `number ${where(path)} = ${replacement}`;
    }
    case 'string': {
      const strings = nodes.filter(({ value }) => typeof value === 'string');
      if (strings.length === 0) return 'string (none)';
      const { path } = random.pick(strings);
      const replacement = random.pick(ODD_STRINGS);
      setOwn(parentOf(state, path), path.at(-1)!, replacement);
      return `string ${where(path)} = ${JSON.stringify(replacement).slice(0, 40)}`;
    }
    case 'repeatId': {
      // Now and then the repeated value is an odd one, to be quoted in the refusal.
      const odd = random.chance(0.3) ? random.pick(ODD_STRINGS) : undefined;
      if (random.chance(0.5) && accounts.length > 1) {
        const [a, b] = [random.int(accounts.length), random.int(accounts.length)];
        accounts[a]!['id'] = accounts[b]!['id'] = odd ?? accounts[b]!['id']!;
        return `account #${a}'s id = account #${b}'s${odd === undefined ? '' : ` = ${JSON.stringify(odd).slice(0, 40)}`}`;
      }
      if (tokens.length < 2) return 'repeatId (none)';
      const [a, b] = [random.int(tokens.length), random.int(tokens.length)];
      tokens[a]!['token'] = tokens[b]!['token'] = odd ?? tokens[b]!['token']!;
      return `token #${a}'s token = token #${b}'s${odd === undefined ? '' : ` = ${JSON.stringify(odd).slice(0, 40)}`}`;
    }
    case 'orphan': {
      if (tokens.length === 0) return 'orphan (none)';
      const i = random.int(tokens.length);
      const field = random.pick(['owner', 'account_id', 'account_id+snapshot']);
      if (field === 'owner') tokens[i]!['owner'] = 'no-such-account';
      else tokens[i]!['account_id'] = 'no-such-account';
      if (field === 'account_id+snapshot') delete tokens[i]!['account_snapshot'];
      return `token #${i}'s ${field} names no account`;
    }
    case 'label': {
      const withTwo = accounts.filter((a) => records(a['sources']).length > 1);
      if (withTwo.length === 0) return 'label (none)';
      const sources = records(random.pick(withTwo)['sources']);
      sources[sources.length - 1]!['label'] = sources[0]!['label']!;
      return `an account's last source takes its first source's label ${JSON.stringify(sources[0]!['label'])}`;
    }
    default: {
      const edits: Array<[string, (s: JsonObject) => void]> = [
        ['no format', (s) => delete s['format']],
        ['no version', (s) => delete s['version']],
        ['version 0', (s) => (s['version'] = 0)],
        ['version 2', (s) => (s['version'] = 2)],
        ['version "1"', (s) => (s['version'] = '1')],
        ['version 1.5', (s) => (s['version'] = 1.5)],
        ['version -1', (s) => (s['version'] = -1)],
        ['format "contextio"', (s) => (s['format'] = 'contextio')],
        ['accounts {}', (s) => (s['accounts'] = {})],
        ['tokens null', (s) => (s['tokens'] = null)],
      ];
      const [name, edit] = random.pick(edits);
      edit(state);
      return name;
    }
  }
}

/** Bytes of no UTF-8 text: a lone continuation byte, a lead byte cut short, an overlong `/`, a surrogate, 0xFF. */
const NOT_UTF8 = [[0x80], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xe9]];

interface Case {
  mutation: string;
  bytes?: Buffer;
  /** A folder stands where the file goes. */
  directory?: boolean;
  /** The file's JSON is the valid file's, as is: it must load. */
  mustLoad?: boolean;
  /** The file holds what the API would not take: it must be refused. */
  mustRefuse?: string;
}

/**
 * Connect tokens' callbacks the API refuses (contextio-2.0.md: a connect page sends the browser there; api.ts, the
 * store's load): no absolute URL, or a scheme the browser runs or reads locally, in any case.
 */
const REFUSED_CALLBACKS = [
  '', 'not a url', '/relative/cb', 'relative/cb', '//app.example.com/cb', '?contextio_token=x', 'http://', 'http://[::1', 'my app://x',
  'javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'vbscript:msgbox(1)', 'data:text/html,<script>x</script>', 'file:///etc/passwd',
  'about:blank', 'blob:https://app.example.com/1', 'view-source:https://app.example.com', 'filesystem:https://app.example.com/x', 'jar:file:///a!/b',
];
/** Odd callbacks it takes: an app's own scheme, capitals, an address, a fragment, a port. */
const TAKEN_CALLBACKS = ['myapp://connected', 'cio-api-auth://x?y', 'HTTPS://App.Example.COM:443/cb', 'http://[::1]:8080/cb#f', 'a:', 'mailto:x@example.com', 'https://bücher.example/ü'];

/**
 * Schemes whose URL a browser runs or reads locally: a callback with one is none the API takes. The test's own list
 * (that of contextio-2.0.md's readers, not the emulator's), for the property every loaded callback must have.
 */
const LOCAL_SCHEMES = ['javascript:', 'vbscript:', 'data:', 'file:', 'about:', 'blob:', 'view-source:', 'filesystem:'];

/** Why a loaded connect token's callback is one the API would refuse, or `undefined`. */
function refusedCallback(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'not a string';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'no absolute URL';
  }
  return LOCAL_SCHEMES.includes(url.protocol) ? `a ${url.protocol} URL, which the browser runs or reads locally` : undefined;
}

function fuzzCase(random: Random, bases: Buffer[]): Case {
  const base = random.pick(bases);
  const roll = random.next();
  if (roll < 0.1) {
    const at = random.int(base.length);
    return { mutation: `truncated at byte ${at} of ${base.length}`, bytes: base.subarray(0, at) };
  }
  if (roll < 0.2) {
    const bytes = Buffer.from(base);
    const flips: string[] = [];
    for (let n = 1 + random.int(3); n > 0; n--) {
      const at = random.int(bytes.length);
      const bit = 1 << random.int(8);
      bytes[at] = bytes[at]! ^ bit;
      flips.push(`byte ${at} ^ 0x${bit.toString(16)}`);
    }
    return { mutation: `flipped ${flips.join(', ')}`, bytes };
  }
  if (roll < 0.3) {
    // Inside a string value mostly: after an opening quote of a value.
    const text = base.toString('utf8');
    const quotes = [...text.matchAll(/": "/g)].map((m) => Buffer.byteLength(text.slice(0, m.index + 4)));
    const at = random.chance(0.8) ? random.pick(quotes) : random.int(base.length);
    const bad = Buffer.from(random.pick(NOT_UTF8));
    return { mutation: `bytes ${bad.toString('hex')} inserted at byte ${at}`, bytes: Buffer.concat([base.subarray(0, at), bad, base.subarray(at)]) };
  }
  if (roll < 0.34) {
    const [name, bytes, mustLoad] = random.pick<[string, Buffer, boolean]>([
      ['a byte order mark first', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), base]), true],
      ['two byte order marks', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), base]), false],
      ['a byte order mark last', Buffer.concat([base, Buffer.from([0xef, 0xbb, 0xbf])]), false],
      ['CRLF line ends and trailing blanks', Buffer.from(`${base.toString('utf8').replaceAll('\n', '\r\n')}\r\n \t\n`), true],
      ['compact JSON', Buffer.from(JSON.stringify(JSON.parse(base.toString('utf8')))), true],
      ['UTF-16LE', Buffer.from(`\ufeff${base.toString('utf8')}`, 'utf16le'), false],
    ]);
    return { mutation: name, bytes, ...(mustLoad ? { mustLoad } : {}) };
  }
  if (roll < 0.36) {
    const [name, text] = random.pick([
      ['empty file', ''],
      ['blank file', ' \n\t'],
      ['null', 'null'],
      ['a list', '[]'],
      ['a string', '"contextio-emulator"'],
      ['{}', '{}'],
      ['a NUL', '\u0000'],
    ]);
    return { mutation: name, bytes: Buffer.from(text) };
  }
  if (roll < 0.365) return { mutation: 'a folder in place of the file', directory: true };
  const state = JSON.parse(base.toString('utf8')) as JsonObject;
  if (roll < 0.42) {
    // A token's callback, after another mutation now and then: refused, the whole file is.
    const done = random.chance(0.3) ? [mutateStructure(random, state)] : [];
    const tokens = Array.isArray(state['tokens']) ? state['tokens'].filter((item): item is JsonObject => isRecord(item)) : [];
    if (tokens.length === 0) return { mutation: [...done, 'callback (no token)'].join('; '), bytes: Buffer.from(JSON.stringify(state)) };
    const i = random.int(tokens.length);
    const refused = random.chance(0.75);
    const callback = random.pick(refused ? REFUSED_CALLBACKS : TAKEN_CALLBACKS);
    tokens[i]!['callback_url'] = callback;
    done.push(`token #${i}'s callback_url = ${JSON.stringify(callback)}`);
    return { mutation: done.join('; '), bytes: Buffer.from(JSON.stringify(state, null, 2)), ...(refused ? { mustRefuse: `a callback_url the API refuses, ${JSON.stringify(callback)}` } : {}) };
  }
  const done: string[] = [];
  for (let n = random.chance(0.7) ? 1 : 2 + random.int(2); n > 0; n--) done.push(mutateStructure(random, state));
  return { mutation: done.join('; '), bytes: Buffer.from(JSON.stringify(state, null, random.chance(0.5) ? 2 : undefined)) };
}

// ---- properties ---------------------------------------------------------------------------------

const STACK_TRACE = /\n\s+at \S|\.(?:ts|js|mjs):\d+:\d+/;

/** What is wrong with a refusal: `undefined` when it is one line naming the file, and the file is as it was. */
async function brokenRefusal(error: unknown, dataFile: string, before: Buffer | 'directory', dir: string): Promise<string | undefined> {
  if (!(error instanceof Error)) return `threw a non-error: ${String(error)}`;
  if (error.constructor !== Error) return `threw a ${error.constructor.name}: ${error.message}`;
  if (!error.message.startsWith('Context.IO emulator: ')) return `the refusal does not say it is the emulator's: ${error.message}`;
  if (!error.message.includes(dataFile)) return `the refusal does not name the file: ${error.message}`;
  if (/[\n\r]/.test(error.message) || STACK_TRACE.test(error.message)) return `the refusal is not one line: ${JSON.stringify(error.message)}`;
  if (before !== 'directory') {
    const after = await readFile(dataFile).catch((e: Error) => e);
    if (!(after instanceof Buffer) || !after.equals(before)) return 'the refused file was changed';
  }
  const left = await readdir(dir);
  if (left.length !== 1) return `files left beside the refused one: ${left.join(', ')}`;
  return undefined;
}

const clean = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** What is wrong with a loaded store: `undefined` when it holds the file whole and every listing renders. */
async function brokenLoad(store: EmulatorStore, dataFile: string, bytes: Buffer): Promise<string | undefined> {
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return 'loaded a file that is not UTF-8 (its bytes replaced by U+FFFD, and the file rewritten so at once)';
  }
  const given = JSON.parse(text) as PersistedLike;
  // Written back at the start: what the store holds, before any listing purges an expired token, with the fields
  // the format does not have, at the top as inside the records.
  const written = JSON.parse(await readFile(dataFile, 'utf8')) as PersistedLike;
  try {
    assert.deepStrictEqual(written, given);
  } catch {
    return 'the store does not hold the file whole: written back at the start, it differs';
  }
  const accounts = new Map(given.accounts.map((a) => [a.id, a]));
  for (const [i, token] of given.tokens.entries()) {
    const callback = refusedCallback(token.callback_url);
    if (callback) return `token #${i}'s callback_url ${JSON.stringify(token.callback_url)} loaded: ${callback}`;
    if (token.owner !== null && !accounts.has(token.owner)) return `token #${i}'s owner is no account`;
    if (token.owner !== null && token.account_id !== undefined && token.account_id !== token.owner) return `account-level token #${i} was used by another account than its own`;
  }
  for (const account of given.accounts) {
    const labels = account.sources.map((s) => s.label);
    if (new Set(labels).size !== labels.length) return `account ${JSON.stringify(account.id)} has two sources of one label`;
  }
  try {
    const listed = store.listAccounts();
    for (const filter of [{ status: 'OK' }, { status_ok: true }, { status_ok: false }, { email: given.accounts[0]?.email_addresses[0] ?? 'x@y' }]) clean(store.listAccounts(filter));
    for (const account of listed) {
      assert.deepStrictEqual(clean(account), account, 'an account renders as JSON');
      assert.deepStrictEqual(store.getAccount(account.id), account);
      for (const source of account.sources) {
        if (source.label !== '0') assert.deepStrictEqual(store.getSource(account.id, source.label), source, `source ${source.label}`);
      }
      assert.deepStrictEqual(store.listSources(account.id), account.sources);
      clean(store.listConnectTokens(account.id));
    }
    const tokens = [...store.listConnectTokens(null), ...listed.flatMap((a) => store.listConnectTokens(a.id))];
    for (const token of tokens) {
      assert.deepStrictEqual(clean(token), token, 'a token renders as JSON');
      if (token.used !== 0 && token.account === null) return `used token ${token.token} renders no account`;
      assert.deepStrictEqual(store.getConnectToken(token.token), token);
    }
    const expected = given.tokens.filter((t) => t.used !== 0 || NOW < t.created + TOKEN_TTL).length;
    if (tokens.length !== expected) return `${tokens.length} tokens listed, ${expected} expected (the unexpired)`;
  } catch (error) {
    return `a listing failed: ${(error as Error).stack}`;
  }
  return undefined;
}

interface PersistedLike {
  format: string;
  version: number;
  accounts: Array<{ id: string; email_addresses: string[]; sources: Array<{ label: string }> }>;
  tokens: Array<{ token: string; owner: string | null; used: number; created: number; account_id?: string; callback_url: string }>;
}

/** Served: every account, source and token answers 200 with JSON, through the emulator's API. */
async function brokenApi(dataFile: string): Promise<string | undefined> {
  const emulator = await startEmulator({ dataFile, now, seed: 'none', onInternalError: () => {} });
  const get = async (path: string) => {
    const answer = await api(emulator, path, { timestamp: NOW });
    if (answer.status !== 200 || answer.body === undefined) throw new Error(`GET ${path} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
    return answer.body;
  };
  const enc = encodeURIComponent;
  try {
    const accounts = (await get('/accounts')) as Array<{ id: string; sources: Array<{ label: string }> }>;
    // Each item's own path answers that item (not a list, not another).
    const same = async (path: string, field: string, value: string) => {
      const item = (await get(path)) as Record<string, unknown>;
      if (item[field] !== value) throw new Error(`GET ${path} answered ${JSON.stringify(item).slice(0, 200)}, not the ${field} ${JSON.stringify(value)}`);
    };
    for (const account of accounts) {
      await same(`/accounts/${enc(account.id)}`, 'id', account.id);
      await get(`/accounts/${enc(account.id)}/sources`);
      for (const [i, source] of account.sources.entries()) {
        if (i === 0 || source.label !== '0') await same(`/accounts/${enc(account.id)}/sources/${enc(source.label)}`, 'label', source.label);
      }
      const tokens = (await get(`/accounts/${enc(account.id)}/connect_tokens`)) as Array<{ token: string }>;
      for (const token of tokens) await same(`/accounts/${enc(account.id)}/connect_tokens/${enc(token.token)}`, 'token', token.token);
    }
    for (const token of (await get('/connect_tokens')) as Array<{ token: string }>) await same(`/connect_tokens/${enc(token.token)}`, 'token', token.token);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await emulator.close();
  }
}

/** What a case made of a file does: `undefined` when it loads whole or is refused as it should be. */
async function brokenCase(fuzzed: Case, dir: string, httpCheck: boolean): Promise<{ broken?: string; loaded: boolean }> {
  const dataFile = join(dir, 'state.json');
  if (fuzzed.directory) await mkdir(dataFile);
  else await writeFile(dataFile, fuzzed.bytes!);
  const saveErrors: Error[] = [];
  let store: EmulatorStore;
  try {
    store = await EmulatorStore.open({ dataFile, now, seed: 'none', onSaveError: (e) => saveErrors.push(e) });
  } catch (error) {
    const broken = await brokenRefusal(error, dataFile, fuzzed.directory ? 'directory' : fuzzed.bytes!, dir);
    return { broken: broken ?? (fuzzed.mustLoad ? `refused a valid file: ${(error as Error).message}` : undefined), loaded: false };
  }
  const broken = (await brokenLoad(store, dataFile, fuzzed.bytes!)) ?? (fuzzed.mustRefuse ? `loaded, though it holds ${fuzzed.mustRefuse}` : undefined);
  if (broken) return { broken, loaded: true };
  // The listings purged the expired tokens: saved.
  await store.flush();
  if (saveErrors.length > 0) return { broken: `a save failed: ${saveErrors[0]!.message}`, loaded: true };
  // Round trip: the file the store wrote loads to the same state, and is written back byte for byte.
  const written = await readFile(dataFile);
  const again = await EmulatorStore.open({ dataFile, now, seed: 'none' }).catch((e: Error) => e);
  if (again instanceof Error) return { broken: `the file the store wrote is refused: ${again.message}`, loaded: true };
  const state = (s: EmulatorStore) => clean({ accounts: s.listAccounts(), tokens: s.listConnectTokens(null) });
  if (!(await readFile(dataFile)).equals(written)) return { broken: 'the file written back differs from the one loaded', loaded: true };
  if (!isDeepStrictEqual(state(again), state(store))) return { broken: 'the file the store wrote loads to another state', loaded: true };
  if (httpCheck) {
    const apiBroken = await brokenApi(dataFile);
    if (apiBroken) return { broken: `served: ${apiBroken}`, loaded: true };
  }
  return { loaded: true };
}

/** A file of `accounts` accounts, each with a long note: tens of megabytes. */
function hugeFile(base: Buffer, accounts: number): Buffer {
  const state = JSON.parse(base.toString('utf8')) as { accounts: JsonObject[] };
  const template = state.accounts[0]!;
  state.accounts.push(...Array.from({ length: accounts }, (_, i) => ({ ...template, id: `huge-${i}`, notes: 'n'.repeat(4_000) })));
  return Buffer.from(JSON.stringify(state));
}

/** Nested `depth` lists deep in a field the format does not have. */
function deepFile(base: Buffer, depth: number): Buffer {
  const text = base.toString('utf8').replace('"accounts": [\n    {', `"accounts": [\n    {"notes": ${'['.repeat(depth)}${']'.repeat(depth)},`);
  return Buffer.from(text);
}

describe(`emulator data file fuzz (DATA_FILE_FUZZ_SEED=${SEED})`, () => {
  it(`${CASES} mutated data files are each loaded whole into a consistent store, or refused with one line naming the file and left as they were`, { timeout: 120_000 }, async (t) => {
    const baseDir = await tempDir();
    const bases = [await savedFile(baseDir, 'built.json', 'none'), await savedFile(baseDir, 'demo.json', 'demo')];
    const random = new Random(SEED);
    const failures: string[] = [];
    let loaded = 0;
    let refused = 0;
    const special: Case[] = [
      { mutation: 'the saved file as it is', bytes: bases[0]!, mustLoad: true },
      { mutation: 'the demo seed as saved', bytes: bases[1]!, mustLoad: true },
      { mutation: 'a huge file: 3,000 accounts with 4 KB notes (12 MB)', bytes: hugeFile(bases[0]!, 3_000), mustLoad: true },
      ...[100, 5_000, 200_000].map((depth) => ({ mutation: `a field the format does not have nested ${depth} lists deep`, bytes: deepFile(bases[0]!, depth) })),
      { mutation: 'a folder in place of the file', directory: true },
    ];
    const dir = join(await tempDir(), 'case');
    for (let index = 0; index < special.length + CASES && failures.length < 5; index++) {
      const fuzzed = index < special.length ? special[index]! : fuzzCase(random, bases);
      await mkdir(dir);
      // Served: the first two special cases, and one in HTTP_EVERY loaded cases (the huge file's 3,000 accounts are not).
      const result = await brokenCase(fuzzed, dir, index < 2 || (index >= special.length && (loaded + 1) % HTTP_EVERY === 0));
      if (result.loaded) loaded++;
      else refused++;
      const name = index < special.length ? `special case ${index}` : `case ${index - special.length}`;
      if (result.broken) failures.push(`DATA_FILE_FUZZ_SEED=${SEED} ${name} (${fuzzed.mutation}): ${result.broken}`);
      await rm(dir, { recursive: true, force: true });
    }
    t.diagnostic(`${loaded} loaded, ${refused} refused`);
    assert.deepEqual(failures, [], `${failures.length} failures (${loaded} loaded, ${refused} refused):\n${failures.join('\n\n')}`);
    // The mix is what the run claims to test: both outcomes, in numbers.
    assert.ok(loaded > CASES / 20 && refused > CASES / 3, `${loaded} loaded, ${refused} refused`);
  });

  it('a save that fails mid-write (the disk full, the folder read-only) leaves the file as the last save wrote it, and the next save that can writes every change', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const random = new Random(SEED);
    const saveErrors: Error[] = [];
    const store = await EmulatorStore.open({ dataFile, now, seed: 'demo', onSaveError: (e) => saveErrors.push(e) });
    type Blocked = <T>(use: () => Promise<T>) => Promise<T>;
    // Its temporary file takes half of what is written to it, then the disk is full (ENOSPC).
    const diskFull: Blocked = (use) =>
      whileReplacingBuiltin('node:fs/promises', 'open', (original: typeof fsPromises.open) => async (...args: Parameters<typeof fsPromises.open>) => {
        const handle = await original(...args);
        if (String(args[0]).endsWith('.tmp')) {
          handle.writeFile = async (data) => {
            await handle.write(String(data).slice(0, String(data).length / 2));
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          };
        }
        return handle;
      }, use);
    const blockers: Array<[string, Blocked]> = [['the disk full', diskFull]];
    // Root writes into a read-only folder all the same.
    const readOnly: Blocked = async (use) => {
      await chmod(dir, 0o555);
      try {
        return await use();
      } finally {
        await chmod(dir, 0o755);
      }
    };
    if (process.getuid?.() !== 0) blockers.push(['the folder read-only', readOnly]);
    const emails: string[] = [];
    for (let round = 0; round < 20; round++) {
      const [why, blocked] = random.pick(blockers);
      const before = await readFile(dataFile);
      const email = `round${round}-${random.int(1_000)}@example.com`;
      emails.push(email);
      const failure = await blocked(() => {
        store.createAccount({ email });
        return store.flush();
      });
      assert.ok(failure, `round ${round} (${why}): the save failed`);
      assert.ok((await readFile(dataFile)).equals(before), `round ${round} (${why}): the file is as the last save wrote it`);
      assert.deepEqual(await readdir(dir), ['state.json'], `round ${round} (${why}): no temporary file is left`);
      if (random.chance(0.5)) {
        store.updateAccount(store.listAccounts()[0]!.id, { first_name: `Round ${round}` });
        assert.equal(await store.flush(), undefined, `round ${round}: the next save succeeds`);
      }
    }
    await store.close();
    const reloaded = await EmulatorStore.open({ dataFile, now, seed: 'none' });
    const saved = reloaded.listAccounts().flatMap((a) => a.email_addresses);
    for (const email of emails) assert.ok(saved.includes(email), `${email}, made while saves failed, is saved by the close`);
    assert.equal(saveErrors.length, 20);
  });
});
