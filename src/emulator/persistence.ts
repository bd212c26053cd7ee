import { isUtf8 } from 'node:buffer';
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, sep } from 'node:path';
import type { AccountRecord, TokenRecord } from './store.ts';
import { versionOf, type FileVersion } from '../support/atomic-file.ts';
import { jsonMistake, jsonText, jsonValuePlace } from '../support/json-text.ts';
import { quotedSetting } from '../support/shortened.ts';
import { HAS_HALF_PAIR } from '../support/unseen-characters.ts';
import { isCallbackUrl, isHttpUrl } from '../support/url.ts';

/** The emulator's data file (`EMULATOR_DATA_FILE`): its format, written atomically, read back checked. */

/**
 * Fields the format does not have are kept as they are and written back where they stood, at the top of the file
 * as inside its records: a note added by hand, or a field a later version writes, is not lost to the save the
 * start makes at once.
 */
export interface PersistedState {
  format: 'contextio-emulator';
  version: 1;
  accounts: AccountRecord[];
  tokens: TokenRecord[];
  [unknownField: string]: unknown;
}

/**
 * Whether a data file's path names a folder by its spelling alone, however the disk stands (it ends in the path
 * separator, `.` or `..`): refused with the settings (EMULATOR_DATA_FILE), and by the start for a path given in code.
 */
export function namesFolder(file: string): boolean {
  return file.endsWith(sep) || ['.', '..'].includes(basename(file));
}

/**
 * Reads and validates a data file; `undefined` when it does not exist. With its state, the version read: a file
 * written by another process before the start's own write (a second emulator answering a write) is not
 * overwritten by it either. Taken before the read, a write between the two makes the start refuse, never
 * overwrite.
 */
export async function readState(file: string): Promise<{ state: PersistedState; version: FileVersion } | undefined> {
  const cannotRead = (error: unknown) => new Error(`Context.IO emulator: cannot read data file ${file}: ${(error as Error).message}`);
  // Not there yet, such a path was taken for a file's: its folders made, then the write failed on `state.json/.<pid>.tmp`.
  if (namesFolder(file)) throw new Error(`Context.IO emulator: data file ${file} names a folder: set EMULATOR_DATA_FILE to a file's path`);
  let found: Stats;
  try {
    found = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cannotRead(error);
  }
  // Read, a pipe no one writes to would hold the start for ever (a device such as /dev/zero never ends), and
  // /dev/null would be called corrupt, with "delete it".
  if (!found.isFile()) throw new Error(`Context.IO emulator: data file ${file} is not a file (a folder, a pipe or a device): set EMULATOR_DATA_FILE to a file's path`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cannotRead(error);
  }
  const fail = (why: string): never => {
    throw new Error(`Context.IO emulator: data file ${file} is corrupt (${why}); fix or delete it`);
  };
  // Decoded, bytes that are not UTF-8 (a file an editor saved as Latin-1) would become U+FFFD, and the start,
  // which writes the state back at once, would leave the file so: the names they spelt lost for good.
  if (!isUtf8(bytes)) return fail('not UTF-8');
  let text: string;
  try {
    // Less a byte order mark, which editors on Windows (Notepad) put before the JSON of a file edited by hand.
    text = jsonText(bytes);
  } catch (error) {
    // Longer than a string can be (ERR_STRING_TOO_LONG, past 512 MB).
    throw cannotRead(error);
  }
  // Said so rather than located as a JSON mistake ("at line 1, column 1, its end").
  if (text.trim() === '') return fail('empty');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    const mistake = jsonMistake(text);
    return fail(`not valid JSON${mistake ? placeIn(text, mistake.at) : ''}`);
  }
  // JSON.parse keeps the last of a name repeated in an object, and the start writes the file back at once: the
  // others (a second "accounts" pasted in, a field edited where it was repeated) would be lost without a word.
  const repeated = jsonMistake(text, { repeatedNames: true });
  if (repeated?.repeatedName) return fail(`a name repeated in one object${placeIn(text, repeated.at)}: JSON keeps only the last`);
  // Fields the format does not have are kept as they are, copied into the store (structuredClone) and written
  // back (JSON.stringify): nested thousands deep, either runs out of stack.
  if (nestedDeeperThan(data, MAX_DEPTH)) return fail(`nested more than ${MAX_DEPTH} levels deep`);
  if (isObject(data) && data.format === 'contextio-emulator' && typeof data.version === 'number' && data.version > 1) {
    // Not corrupt, and not to be deleted: a later emulator's, which that one reads.
    throw new Error(`Context.IO emulator: data file ${file} was written by a later version of the emulator (its version ${data.version}; this one reads version 1): run that version, or set EMULATOR_DATA_FILE to another file`);
  }
  if (!isObject(data) || data.format !== 'contextio-emulator' || data.version !== 1) {
    return fail('not an emulator state file of version 1');
  }
  if (!Array.isArray(data.accounts) || !Array.isArray(data.tokens)) {
    const list = Array.isArray(data.accounts) ? 'tokens' : 'accounts';
    return fail(data[list] === undefined ? `${list} missing` : `${list} must be a list`);
  }
  // A record's mistake is named by the record and field (`account #1523 is malformed: sources[0].port …`), and
  // located too: in a file of thousands of records, its index alone left the reader counting.
  const failIn = (why: string, path: ReadonlyArray<string | number>): never => fail(`${why};${placeIn(text, jsonValuePlace(text, path) ?? 0)}`);
  const failMalformed = (record: string, path: ReadonlyArray<string | number>, problem: Problem): never =>
    failIn(`${record} is malformed: ${problemText(problem)}`, [...path, ...problemPath(problem)]);
  // Every field the API renders is checked: a record missing one would be served in a shape the API never
  // has, or fail a request with a 500 long after the start.
  const accountIds = new Set<string>();
  data.accounts.forEach((account: unknown, i) => {
    const problem = ACCOUNT_RECORD(account);
    if (problem) failMalformed(`account #${i}`, ['accounts', i], problem);
    const { id } = account as AccountRecord;
    if (accountIds.has(id)) failIn(`account #${i} repeats the id ${quotedSetting(id)}`, ['accounts', i, 'id']);
    accountIds.add(id);
    // A label names one source of its account (the store suffixes a repeat): of two, the API would find only the first.
    const labels = new Map<string, number>();
    (account as AccountRecord).sources.forEach(({ label }, j) => {
      const first = labels.get(label);
      if (first !== undefined) {
        failIn(`account #${i} is malformed: sources[${j}] repeats the label ${quotedSetting(label)} of sources[${first}]`, ['accounts', i, 'sources', j, 'label']);
      }
      labels.set(label, j);
    });
  });
  // Which record holds each token: a repeat names the first one, never the token, which lets a browser
  // connect a mailbox and would otherwise reach whatever collects the start's error output.
  const tokens = new Map<string, number>();
  data.tokens.forEach((token: unknown, i) => {
    const problem = TOKEN_RECORD(token);
    if (problem) failMalformed(`connect token #${i}`, ['tokens', i], problem);
    const record = token as TokenRecord;
    const at = (field?: keyof TokenRecord) => ['tokens', i, ...(field ? [field] : [])];
    const first = tokens.get(record.token);
    if (first !== undefined) failIn(`connect token #${i} repeats the token of connect token #${first}`, at('token'));
    tokens.set(record.token, i);
    // An account's deletion takes its own tokens with it.
    if (record.owner !== null && !accountIds.has(record.owner)) failIn(`connect token #${i} belongs to no account of the file`, at('owner'));
    if (record.used > 0 && record.account_id === undefined) failIn(`connect token #${i} is used but names no account`, at('used'));
    if (record.owner !== null && record.account_id !== undefined && record.account_id !== record.owner) {
      failIn(`connect token #${i} is a token of one account (owner) but was used by another (account_id)`, at('account_id'));
    }
    // The store keeps a snapshot of a used token's account when it deletes it: without one, the token would be
    // served as used by no account.
    if (record.used > 0 && !accountIds.has(record.account_id!) && record.account_snapshot === undefined) {
      failIn(`connect token #${i} is used by an account neither in the file nor kept in the token (account_snapshot)`, at('account_id'));
    }
  });
  return { state: data as unknown as PersistedState, version: versionOf(found) };
}

/**
 * Where `offset` is in the text, as an editor counts (` at line 3, column 14`; lines and the characters of a line
 * from 1), for a file edited by hand. Only the place: some of V8's messages quote the text around a mistake
 * instead, which may be a connect token's.
 */
function placeIn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let at = before.indexOf('\n'); at !== -1; at = before.indexOf('\n', at + 1)) line += 1;
  // In characters, not UTF-16 units: 😀 is one.
  const column = [...before.slice(lineStart)].length + 1;
  return ` at line ${line}, column ${column}${offset === text.length ? ', its end' : ''}`;
}

/**
 * The last second a time of the file may be, 9999-12-31T23:59:59Z: the last whose ISO-8601 form has the four-digit
 * year the gateway's DateTime promises (resolvers/scalars.ts reads a number from the next second on as
 * milliseconds, so a later time would be shown as one of the 1970s), and far from 2^53, where a token's expiry
 * (created + a day) would no longer be an exact number. The API's own times are its clock's.
 */
const LAST_TIME = 253_402_300_799;

/** How long an unused connect token is usable (contextio-2.0.md: purged after 24 hours); its `expires` is `created` plus this. */
export const CONNECT_TOKEN_TTL_SECONDS = 86_400;

/** Whether `value` is a time of the file (Unix seconds, 0 for none) no later than `last`. */
function isTimeUpTo(value: unknown, last: number): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= last;
}

/** A count (`nb_messages`, `nb_files`): a whole number from 0, and an exact one (2^53 is not). */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A loose check: one `@` with something on each side and no spaces. */
export function looksLikeEmail(value: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(value);
}

/**
 * A connect token's `email` may be only the part from the `@` on (`@gmail.com`, as the API's own signing
 * example sends): it picks the user's provider, and the connect page still asks for the address.
 */
export function isDomainHint(value: string): boolean {
  return /^@[^\s@]+$/.test(value);
}

/** A connect token's `email` as the API takes one: an address, or a domain to pick the provider by. */
export function isTokenEmail(value: string): boolean {
  return looksLikeEmail(value) || isDomainHint(value);
}

/** A TCP port a source can name: 1–65535 (0 is no port a server listens on). */
export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65_535;
}

/** Far deeper than the format's own records (a token's snapshot's sources' fields are 7 levels down). */
const MAX_DEPTH = 64;

/** Whether `value` holds arrays or objects more than `max` levels deep; walked without recursion. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, depth] = next;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return false;
}

/** Unicode text: no half of a surrogate pair, which JSON can spell (`\ud800`) and no UTF-8 holds. */
const isUnicodeText = (value: string): boolean => !HAS_HALF_PAIR.test(value);

/** What a value must be: `undefined` when it is, else where inside it (`.sources[1].port`) and why not. */
/** A value refused: where in its record (`.sources[1].port`), and why. */
type Problem = { at: string; why: string };
type Check = (value: unknown) => Problem | undefined;

const is = (what: string, test: (value: unknown) => boolean): Check => (value) => (test(value) ? undefined : { at: '', why: `must be ${what}` });
/**
 * Well-formed text: JSON can spell half a surrogate pair (`\ud800`), which no UTF-8 holds and encodeURIComponent
 * throws on (an id's or a label's resource_url would fail every listing of its account with a 500).
 */
const string: Check = (value) => {
  if (typeof value !== 'string') return { at: '', why: 'must be a string' };
  return isUnicodeText(value) ? undefined : { at: '', why: 'must be a string of Unicode text (half a surrogate pair is not)' };
};
/**
 * What names a record in the API's paths (an id, a token, a label): an empty one is no path segment, and a URL
 * parser resolves `.` and `..` away (its resource_url, `/accounts/..`, is `/2.0/`).
 */
const name: Check = (value) => string(value) ?? (['', '.', '..'].includes(value as string) ? { at: '', why: 'must be a string, not empty, . or ..' } : undefined);
/**
 * An account's id or a connect token: a name without `/` or `\\`, which no Context.IO id or token holds (the API
 * reached one only as `%2F`, and the gateway, which sends no id holding one, failed its whole listing of them).
 */
const idName: Check = (value) => name(value) ?? (/[/\\]/.test(value as string) ? { at: '', why: 'must not hold / or \\, as no Context.IO id or token does' } : undefined);
/**
 * A source's label: a name, and not `0`, which the API reserves as the alias of the account's first source
 * (contextio-2.0.md, Sources): GET /accounts/{id}/sources/0 answers the first, so a later source labelled `0`
 * was out of reach, and on the first one the label said nothing the alias did not. No API call makes one (the
 * store labels a source `username::server`).
 */
const sourceLabel: Check = (value) =>
  name(value) ?? (value === FIRST_SOURCE_ALIAS ? { at: '', why: `must not be ${quotedSetting(FIRST_SOURCE_ALIAS)}, which the API reserves for the account's first source` } : undefined);
export const FIRST_SOURCE_ALIAS = '0';
/**
 * A connect token's callback, as the API takes one: the connect page sends the browser there once the mailbox is
 * connected, and one loaded as any text was followed as given (to `javascript:…`, or no URL at all: a relative
 * one, or a Location header Node refuses, a 500 with the token used).
 */
const callbackUrl: Check = (value) =>
  string(value) ?? (isCallbackUrl(value as string) ? undefined : { at: '', why: "must be an absolute URL, http(s) or an app's own scheme, as the API takes one" });
/**
 * A URL the emulator calls itself (a token's `source_callback_url`, `status_callback_url`), as the API takes one:
 * http(s) only. Loaded as any text, the connect page's call to it failed (logged) and told nobody.
 */
const httpUrl: Check = (value) => string(value) ?? (isHttpUrl(value as string) ? undefined : { at: '', why: 'must be an absolute http(s) URL, as the API takes one' });
/**
 * A connect token's address, as the API takes one: an address or a domain (or none, empty). The connect page shows
 * any other as the token's mailbox, not to be changed, and refused every form sent with it: the token was of no use.
 */
const tokenEmail: Check = (value) =>
  string(value) ?? (value === '' || isTokenEmail(value as string) ? undefined : { at: '', why: 'must be an email address or a domain such as @gmail.com, as the API takes one' });
const boolean = is('true or false', (v) => typeof v === 'boolean');
/** Counts: whole numbers from 0. */
const whole = is('a whole number from 0', isCount);
/** A time (Unix seconds, 0 for none) at most `last`: see LAST_TIME. The refusal quotes a number, as a port's does. */
const timeUpTo = (last: number, by = ''): Check => (value) =>
  isTimeUpTo(value, last) ? undefined : { at: '', why: `must be a Unix time in seconds from 0 to ${last} (${by}${new Date(LAST_TIME * 1000).toISOString().replace('.000', '')})${typeof value === 'number' ? `, not ${quotedSetting(String(value))}` : ''}` };
const time = timeUpTo(LAST_TIME);
/** A connect token's creation: its expiry, a day on, is a time too. */
const tokenCreated = timeUpTo(LAST_TIME - CONNECT_TOKEN_TTL_SECONDS, 'its expiry, a day on, by ');
/**
 * A source's port, as the API takes one (POST /accounts, the connect page: 1–65535): any whole number loaded
 * (0, 2^53) was served as the source's port, which no IMAP server listens on and no API call could have set.
 * The refusal quotes the number, as the file's other refusals quote what they refuse.
 */
const port: Check = (value) => (isPort(value) ? undefined : { at: '', why: `must be a port number from 1 to 65535${typeof value === 'number' ? `, not ${quotedSetting(String(value))}` : ''}` });
const optional = (check: Check): Check => (value) => (value === undefined ? undefined : check(value));
/** `null` or what `check` takes; refused, said so (`owner must be null or a string`: "a string" alone hid the null a top-level token has). */
const orNull = (check: Check): Check => (value) => {
  const problem = value === null ? undefined : check(value);
  return problem && (problem.at === '' ? { at: '', why: problem.why.replace(/^must be /, 'must be null or ') } : problem);
};
const orFalse = (check: Check): Check => (value) => (value === false ? undefined : check(value));
const listOf = (check: Check): Check => (value) => {
  if (!Array.isArray(value)) return { at: '', why: 'must be a list' };
  for (let i = 0; i < value.length; i++) {
    const problem = check(value[i]);
    if (problem) return { at: `[${i}]${problem.at}`, why: problem.why };
  }
  return undefined;
};
const shaped = (fields: Record<string, Check>): Check => (value) => {
  if (!isObject(value)) return { at: '', why: 'must be an object' };
  for (const [name, check] of Object.entries(fields)) {
    const problem = check(value[name]);
    if (problem) return { at: `.${name}${problem.at}`, why: problem.why };
  }
  return undefined;
};

/** Why a record is malformed, said: `sources[1].port must be a whole number from 0`. */
const problemText = (problem: Problem): string => `${problem.at.replace(/^\./, '')} ${problem.why}`.trim();

/** Where in its record the value refused is: `.sources[1].port` is `['sources', 1, 'port']`. */
const problemPath = (problem: Problem): Array<string | number> =>
  [...problem.at.matchAll(/\.([^.[]+)|\[(\d+)\]/g)].map(([, field, index]) => field ?? Number(index));

/** Why a record is malformed (`sources[1].port must be a whole number from 0`), or `undefined`. */
function problemOf(value: unknown, check: Check): string | undefined {
  const problem = check(value);
  return problem && problemText(problem);
}

const SOURCE_RECORD = shaped({
  label: sourceLabel,
  email: string,
  username: string,
  server: string,
  port,
  use_ssl: boolean,
  type: string,
  authentication_type: string,
  status: string,
  status_message: orNull(string),
  sync_period: string,
});

const ACCOUNT_RECORD = shaped({
  id: idName,
  username: string,
  created: time,
  suspended: time,
  email_addresses: listOf(string),
  first_name: string,
  last_name: string,
  password_expired: time,
  nb_messages: whole,
  nb_files: whole,
  sources: listOf(SOURCE_RECORD),
});

/** A source as the API renders it (`UpstreamSource`), in a snapshot. */
const UPSTREAM_SOURCE = shaped({
  label: string,
  email: optional(string),
  username: optional(string),
  server: optional(string),
  port: optional(port),
  use_ssl: optional(boolean),
  type: optional(string),
  authentication_type: optional(string),
  status: optional(string),
  status_message: optional(orNull(string)),
  sync_period: optional(string),
  resource_url: optional(string),
});

/** A used token's account as it was when used (`UpstreamEmbeddedAccount`), shown once that account is deleted. */
const ACCOUNT_SNAPSHOT = shaped({
  id: string,
  created: time,
  suspended: orFalse(time),
  email_addresses: listOf(string),
  first_name: optional(string),
  last_name: optional(string),
  sources: listOf(UPSTREAM_SOURCE),
});

const TOKEN_RECORD = shaped({
  token: idName,
  owner: orNull(string),
  email: optional(tokenEmail),
  created: tokenCreated,
  used: time,
  callback_url: callbackUrl,
  first_name: optional(string),
  last_name: optional(string),
  source_callback_url: optional(httpUrl),
  status_callback_url: optional(httpUrl),
  source_sync_all_folders: optional(boolean),
  source_sync_flags: optional(boolean),
  source_raw_file_list: optional(boolean),
  account_id: optional(string),
  account_snapshot: optional(ACCOUNT_SNAPSHOT),
});

/**
 * Why an account as the store is about to keep it is one this file's load would refuse (`sources[1].port must be
 * …`), or `undefined`. The store checks what it keeps with the load's own checks: given through its API (tests,
 * benchmarks, the seed) what no API call sends, it would otherwise save a file the next start refuses.
 */
export const accountRecordProblem = (record: AccountRecord): string | undefined => problemOf(record, ACCOUNT_RECORD);

/** The same for a connect token. */
export const tokenRecordProblem = (record: TokenRecord): string | undefined => problemOf(record, TOKEN_RECORD);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
