import type {
  UpstreamAccount,
  UpstreamAccountReference,
  UpstreamConnectToken,
  UpstreamCreateAccountResult,
  UpstreamCreateConnectTokenResult,
  UpstreamEmbeddedAccount,
  UpstreamSource,
  UpstreamSuccess,
} from './types.ts';
import { refuseUnsendableId } from './request.ts';
import { HAS_HALF_PAIR, withHalfPairsReplaced } from '../support/unseen-characters.ts';
import { isHttpUrl } from '../support/url.ts';

/**
 * Turning upstream JSON into the upstream types, tolerating the quirks real servers had (the API's
 * documentation records them; each is named where it is handled) and refusing anything that is not the shape expected, so a resolver never
 * meets a half-formed object. A refusal is a `ShapeError`, which the client reports as `UPSTREAM_ERROR`.
 */
export class ShapeError extends Error {}

/** A create answered `success: false`: the upstream said, in the expected shape, that nothing was created. */
export class NotCreated extends Error {}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ShapeError(`${what} is not an object`);
  return value as Json;
}

function string(o: Json, key: string, what: string): string {
  const value = o[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return digitsOf(value, `${what}.${key}`);
  throw new ShapeError(`${what}.${key} is not a string`);
}

/**
 * A string that names a resource (a token, a label, a URL; an id's check is `sendableId`'s): refused when it holds
 * half a surrogate pair, as no request could send it, and one with U+FFFD in its place would name another.
 */
function resourceName(o: Json, key: string, what: string): string {
  const value = string(o, key, what);
  if (HAS_HALF_PAIR.test(value)) throw new ShapeError(`${what}.${key} is not valid text: it holds half a surrogate pair`);
  return value;
}

/**
 * A string field sent as a number (some servers send ids so, or write every numeric-looking string as a number,
 * as PHP's JSON_NUMERIC_CHECK does) as its digits; refused past 2^53, where JSON.parse has already rounded it:
 * a user name or a token 12345678901234567891 arrives as 12345678901234567000, which would be served as the value.
 */
function digitsOf(value: number, what: string): string {
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw new ShapeError(`${what} is a number past 2^53, whose digits may have been lost`);
  return String(value);
}

/**
 * An id or token the gateway later puts into a request's path (an account's, a used token's account's, a new
 * resource's), refused here if no path could carry it (a space, a slash, `..`, too long): let through, the
 * request that needs it was refused as the caller's input (BAD_USER_INPUT), for a value the upstream gave.
 */
function sendableId(value: string, what: string): string {
  try {
    refuseUnsendableId(value, false);
  } catch (error) {
    throw new ShapeError(`${what} cannot be sent back as an id: ${(error as Error).message}`);
  }
  return value;
}

/**
 * A text shown as it came (a name, an address, a message), half a surrogate pair in it as U+FFFD (a server cutting
 * a name at 256 UTF-16 units may cut an emoji in two): served as is, strict JSON readers (Rust's serde_json, Swift's)
 * refused the whole answer for one letter of a name.
 */
const text = withHalfPairsReplaced;

/**
 * An optional text: `""`, what some servers send for "no value", is none, as a missing one is (the schema says
 * null when the upstream sends none; a client would otherwise test for both).
 */
function optionalString(o: Json, key: string): string | undefined {
  const value = o[key];
  return typeof value === 'string' ? (value === '' ? undefined : text(value)) : typeof value === 'number' ? digitsOf(value, key) : undefined;
}

/**
 * The largest upstream time read: 8.64e12, the most seconds a JavaScript Date can hold. A DateTime reads a time
 * past the year 9999 in seconds as milliseconds (`fromUnixSeconds`), so from 253,402,300,800 on this bound is in
 * effect one on milliseconds (the year 2243), from an upstream that sends milliseconds for seconds.
 */
const MAX_UNIX_SECONDS = 8.64e12;

/**
 * Unix seconds, as a number or a string of digits (with a fraction, as a number may have one); `0`, `false`,
 * `null`, `""` or a missing field mean "not set" and stay `0`. Anything else ("yesterday", `true`, an object) is
 * refused rather than read as "not set", which would show a garbled time as 1970 or as never.
 */
function timestamp(o: Json, key: string): number {
  const raw = o[key];
  const value =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+(?:\.\d+)?$/.test(raw) ? Number(raw) : isUnset(raw) || raw === false ? 0 : Number.NaN;
  if (!Number.isFinite(value) || value < 0 || value > MAX_UNIX_SECONDS) throw new ShapeError(`${key} is not a Unix time`);
  return value;
}

/** Missing, null, or the empty string some APIs send for "no value". */
function isUnset(raw: unknown): boolean {
  return raw === undefined || raw === null || raw === '';
}

/** GraphQL's `Int`: what a count or a port must fit in to be shown at all. */
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/**
 * A count or a port: a whole number (or a string of digits) that fits a GraphQL `Int`; missing, null or `""` is
 * undefined, and so is a negative one, which is no count or port (`-1` is how APIs say "not counted yet"), not
 * one to show as -1 messages. Anything else is refused here, as an unexpected upstream body: let through, it
 * would fail the `Int` serializer and reach the caller as an internal error instead.
 */
function optionalCount(o: Json, key: string): number | undefined {
  const raw = o[key];
  if (isUnset(raw)) return undefined;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < INT_MIN || value > INT_MAX) throw new ShapeError(`${key} is not a whole number within GraphQL's Int`);
  return value < 0 ? undefined : value;
}

function optionalBoolean(o: Json, key: string): boolean | undefined {
  const value = o[key];
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === '1' || value === 'true') return true;
  if (value === 0 || value === '0' || value === 'false') return false;
  return undefined;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ShapeError(`${what} is not an array`);
  return value;
}

/**
 * An account's addresses: strings, as documented. An entry shaped like the API's own email-address resource
 * (`{email, validated, primary}`, what `GET …/email_addresses` lists) is read for its `email` rather than lost;
 * anything else is skipped.
 */
function emailAddresses(o: Json): string[] {
  const addresses: string[] = [];
  for (const entry of optionalList(o, 'email_addresses')) {
    if (typeof entry === 'string') addresses.push(text(entry));
    else if (typeof entry === 'object' && entry !== null && typeof (entry as Json)['email'] === 'string') addresses.push(text((entry as Json)['email'] as string));
  }
  return addresses;
}

/**
 * A list field of an object: missing, null or `{}` (what a PHP server encodes an empty array as, the way the
 * documented `account: {}` of an unused token came) is empty. Any other value is refused: read as empty, a
 * list sent in another shape (one address as a string, sources keyed by position) would lose its items unsaid.
 */
function optionalList(o: Json, key: string): unknown[] {
  const value = o[key];
  if (Array.isArray(value)) return value;
  if (value === undefined || value === null) return [];
  if (typeof value === 'object' && Object.keys(value).length === 0) return [];
  throw new ShapeError(`${key} is not a list`);
}

/**
 * A list response: a bare JSON array of items. An item refused says which it is (`response[3]: …`): among a
 * page of 100 accounts, "created is not a Unix time" alone named none of them.
 */
export const listOf =
  <T>(item: (value: unknown) => T) =>
  (value: unknown): T[] =>
    itemsOf(array(value, 'response'), item);

/** Each of `entries` read by `item`, one refused said with its place in `list` first (`sources[3]: …`). */
function itemsOf<T>(entries: unknown[], item: (value: unknown) => T, list = 'response'): T[] {
  return entries.map((entry, index) => {
    try {
      return item(entry);
    } catch (error) {
      throw error instanceof ShapeError ? new ShapeError(inList(index, error.message, list)) : error;
    }
  });
}

/** A list item's fault, its place in the answer said first (`response[3]: …`); `index` undefined for no list's. */
function inList(index: number | undefined, fault: string, list = 'response'): string {
  return index === undefined ? fault : `${list}[${index}]: ${fault}`;
}

function parseSource(value: unknown): UpstreamSource {
  const o = object(value, 'source');
  // `""`, the "no value" some servers send, is no status: not one to show as a status the gateway does not know.
  // Any other, a number past 2^53 included, is one (UNKNOWN): a status outside the set must not break the account.
  const rawStatus = o['status'];
  const status = (typeof rawStatus === 'string' || typeof rawStatus === 'number' ? String(rawStatus) : undefined) || undefined;
  const statusMessage = o['status_message'];
  return {
    label: resourceName(o, 'label', 'source'),
    email: optionalString(o, 'email'),
    username: optionalString(o, 'username'),
    server: optionalString(o, 'server'),
    port: optionalCount(o, 'port'),
    use_ssl: optionalBoolean(o, 'use_ssl'),
    type: optionalString(o, 'type'),
    authentication_type: optionalString(o, 'authentication_type'),
    status,
    status_message: typeof statusMessage === 'string' && statusMessage !== '' ? text(statusMessage) : null,
    sync_period: optionalString(o, 'sync_period'),
    resource_url: optionalString(o, 'resource_url'),
  };
}

function embeddedFields(o: Json, what: string): UpstreamEmbeddedAccount {
  return {
    id: sendableId(string(o, 'id', what), `${what}.id`),
    created: timestamp(o, 'created'),
    suspended: timestamp(o, 'suspended'),
    email_addresses: emailAddresses(o),
    first_name: optionalString(o, 'first_name'),
    last_name: optionalString(o, 'last_name'),
    sources: itemsOf(optionalList(o, 'sources'), parseSource, 'sources'),
  };
}

/** Whether two ids (or tokens) name the same resource. Case aside: ids are hexadecimal, and no case rule is documented. */
function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * Checks that the upstream answered with the resource asked for. Access is checked on the id or token the
 * caller asked about, so an answer naming another (a caching proxy keyed wrongly, a faulty upstream) would be
 * served as the one the caller may see.
 */
export function answeredFor(answered: string, asked: string, what: string): void {
  if (!sameId(answered, asked)) throw new ShapeError(`the upstream answered with another ${what} than the one asked for`);
}

/**
 * Checks that a connect token listed or looked up under an account belongs to it (`index`: its place in a list,
 * said as a list item's other faults are): a used one names the
 * account its flow added a source to, which must be that account. The token's account is served to whoever
 * may see the account it was listed under (knowing a token is the capability to read its account), so one
 * naming another account would serve that account's addresses and sources to a caller who may not see it.
 */
export function tokenOf(found: UpstreamConnectToken, accountId: string, index?: number): void {
  if (found.account && !sameId(found.account.id, accountId)) {
    throw new ShapeError(inList(index, 'the upstream answered with a connect token of another account than the one asked for'));
  }
}

export function parseAccount(value: unknown): UpstreamAccount {
  const o = object(value, 'account');
  // Written out rather than spread from embeddedFields: one object, no intermediate copy (a fan-out parses 20).
  return {
    id: sendableId(string(o, 'id', 'account'), 'account.id'),
    created: timestamp(o, 'created'),
    suspended: timestamp(o, 'suspended'),
    email_addresses: emailAddresses(o),
    first_name: optionalString(o, 'first_name'),
    last_name: optionalString(o, 'last_name'),
    sources: itemsOf(optionalList(o, 'sources'), parseSource, 'sources'),
    username: optionalString(o, 'username'),
    password_expired: timestamp(o, 'password_expired'),
    resource_url: optionalString(o, 'resource_url'),
    nb_messages: optionalCount(o, 'nb_messages'),
    nb_files: optionalCount(o, 'nb_files'),
  };
}

/**
 * An unused token's account arrives as `{}`, `[]` or a bare id string: all of them mean "none yet". Once the
 * token is used, a bare id string still names the account the flow connected: what the app needs to learn.
 */
function embeddedAccount(value: unknown, used: number | false): UpstreamEmbeddedAccount | UpstreamAccountReference | null {
  // Whatever an unused token's account holds, it has none yet.
  if (!used) return null;
  if (typeof value === 'string') return value !== '' ? { id: sendableId(value, 'connect token account'), reference: true } : null;
  // An id sent as a number, as `string` reads ids; 0 (or a number no id is) names none, as `""` does.
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? { id: sendableId(digitsOf(value, 'connect token account'), 'connect token account'), reference: true } : null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const o = value as Json;
  // No id (missing, empty or null, as `{}` says it too) names no account.
  if (o['id'] === undefined || o['id'] === null || o['id'] === '') return null;
  // An id without the fields every account has (`{"id": …}` alone) names the account as a bare id does: read as
  // they are, the missing ones would show it created in 1970, with no address and no source.
  const reference = () => ({ id: sendableId(string(o, 'id', 'connect token account'), 'connect token account.id'), reference: true as const });
  if (EVERY_ACCOUNTS.some((key) => o[key] === undefined)) return reference();
  try {
    return embeddedFields(o, 'connect token account');
  } catch (error) {
    // An embed with a field it cannot read (`suspended: "yes"`) still names its account: read as a reference, the
    // account is loaded and checked in full where a field needs it, rather than the whole token refused with it.
    if (error instanceof ShapeError) return reference();
    throw error;
  }
}

/** What the upstream sends of every account it embeds (a name or a suspension may be left out as none). */
const EVERY_ACCOUNTS = ['created', 'email_addresses', 'sources'];

export function parseConnectToken(value: unknown): UpstreamConnectToken {
  const o = object(value, 'connect token');
  const used = timestamp(o, 'used');
  const account = embeddedAccount(o['account'], used);
  return {
    token: resourceName(o, 'token', 'connect token'),
    email: optionalString(o, 'email'),
    created: timestamp(o, 'created'),
    used,
    // `false` once used; some servers keep sending the old integer, which no longer means anything then.
    expires: used > 0 ? false : timestamp(o, 'expires'),
    callback_url: optionalString(o, 'callback_url') ?? '',
    first_name: optionalString(o, 'first_name'),
    last_name: optionalString(o, 'last_name'),
    account,
  };
}

/** `success` is a JSON boolean, or the string `"true"`/`"false"` in one old document. */
function success(o: Json): boolean {
  const value = optionalBoolean(o, 'success');
  if (value === undefined) throw new ShapeError(`response.success is ${o['success'] === undefined ? 'missing' : 'not a boolean'}`);
  return value;
}

export function parseSuccess(value: unknown): UpstreamSuccess {
  return { success: success(object(value, 'response')) };
}

/** A create's `success`, which must be true: its other fields then name what was made. */
function created(o: Json): true {
  if (!success(o)) throw new NotCreated('success: false');
  return true;
}

/** The new resource's token or id, which names it from then on: never empty. */
function newName(o: Json, key: string): string {
  const value = string(o, key, 'response');
  if (value === '') throw new ShapeError(`response.${key} is empty`);
  return value;
}

export function parseCreateConnectToken(value: unknown): UpstreamCreateConnectTokenResult {
  const o = object(value, 'response');
  return {
    success: created(o),
    token: sendableId(newName(o, 'token'), 'response.token'),
    resource_url: resourceName(o, 'resource_url', 'response'),
    browser_redirect_url: browserPage(o, 'browser_redirect_url'),
  };
}

/**
 * Where a frontend sends its user's browser: an http(s) page. Another scheme, from an upstream at fault or one
 * pretending to be it (`javascript:`), would run in the frontend's own origin when followed, as the caller's
 * `callbackUrl` is checked not to.
 */
function browserPage(o: Json, key: string): string {
  const value = newName(o, key);
  if (!isHttpUrl(value) || HAS_HALF_PAIR.test(value)) throw new ShapeError(`response.${key} is not an http(s) URL`);
  return value;
}

export function parseCreateAccount(value: unknown): UpstreamCreateAccountResult {
  const o = object(value, 'response');
  return { success: created(o), id: sendableId(newName(o, 'id'), 'response.id'), resource_url: resourceName(o, 'resource_url', 'response') };
}

/**
 * Whether an answer is Context.IO's own 503: one account's mail server out of reach, said with the API's error
 * body. Not the API down, as a 503 without that body (a load balancer's) is: not retried, nor counted by the
 * breaker, and said to the caller as what it is.
 */
export function isMailboxUnreachable(status: number, text: string): boolean {
  return status === 503 && apiErrorOf(text) !== undefined;
}

/**
 * The API's own error body (`{"type":"error","value":…,"code":105}`), or `undefined` for anything else (a
 * proxy's page, an empty body): what tells Context.IO's 503 for one mailbox from a load balancer's.
 */
export function apiErrorOf(text: string): { code: number | undefined } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || (body as Json)['type'] !== 'error') return undefined;
  const code = (body as Json)['code'];
  return { code: typeof code === 'number' ? code : undefined };
}
