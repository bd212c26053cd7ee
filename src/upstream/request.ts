import { ErrorCode, gatewayError } from '../errors.ts';
import { encodeFormPairs, percentEncode, type OAuthParam } from '../oauth/signature.ts';
import { HAS_HALF_PAIR, HAS_UNSEEN } from '../support/unseen-characters.ts';

/**
 * A call's request as the upstream will receive it: its path, query and form, each checked before anything
 * is sent, so that input no URL or form can carry is the caller's error and never the upstream's failure.
 */

/** The methods the client sends (the API's reads, writes and deletes). */
export type Method = 'GET' | 'POST' | 'DELETE';

type ParamValue = string | number | boolean | null | undefined;
export type Params = Readonly<Record<string, ParamValue>>;

export interface RequestTarget {
  /** The path after the base URL, each segment percent-encoded. */
  relativePath: string;
  query: OAuthParam[];
  form: OAuthParam[];
  /** `?…` or empty. */
  queryString: string;
}

/** The request for `segments`, `query` and `form` under `basePath`, refused (BAD_USER_INPUT) when it cannot be sent. */
export function requestTarget(basePath: string, segments: readonly string[], query: Params | undefined, form: Params | undefined): RequestTarget {
  const relativePath = `/${segments.map(pathSegment).join('/')}`;
  const queryPairs = pairsOf(query);
  const formPairs = pairsOf(form);
  const queryString = queryPairs.length > 0 ? `?${encodeFormPairs(queryPairs)}` : '';
  const urlLength = basePath.length + relativePath.length + queryString.length;
  if (urlLength > MAX_URL_LENGTH) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `The arguments make an upstream URL of ${urlLength} characters, more than the ${MAX_URL_LENGTH} servers accept`);
  }
  for (const [name, value] of formPairs) {
    if (value.length > MAX_FORM_VALUE_LENGTH) {
      throw gatewayError(ErrorCode.BAD_USER_INPUT, `The value given for ${name} is ${value.length} characters, more than the ${MAX_FORM_VALUE_LENGTH} accepted`);
    }
  }
  return { relativePath, query: queryPairs, form: formPairs, queryString };
}

export function connectTokensPath(accountId: string | null): string[] {
  return accountId === null ? ['connect_tokens'] : ['accounts', accountId, 'connect_tokens'];
}

export function connectTokenResource(accountId: string | null, token: string): string {
  return accountId === null ? `connect token ${quotedId(token)}` : `connect token ${quotedId(token)} of account ${quotedId(accountId)}`;
}

/** Longer URLs are refused (414, 431) or cut off by many servers and proxies, some by closing the connection. */
const MAX_URL_LENGTH = 4096;

/**
 * The longest value sent in a form (a name, an email address, a callback URL). The upstream keeps what it is
 * given and lists it back: forty connect tokens with 900 KB names, made by any caller with a valid token, would
 * push the unpaged token list past the 32 MiB an answer may take, and it would stay so until they expired.
 */
export const MAX_FORM_VALUE_LENGTH = 4096;

/**
 * Context.IO's ids and tokens are a few dozen characters. Far longer ones cannot name anything, and sent
 * anyway they make a URL that servers and proxies refuse (414/431) or cut the connection over, which would
 * count as the upstream failing.
 */
const MAX_ID_LENGTH = 256;

/**
 * One id as one path segment. `.` and `..` are refused outright: URL parsers anywhere along the way
 * may resolve them as "this" or "parent" directory however they are encoded. So are ids with a slash or a
 * backslash, which no Context.IO id, token or source label has: encoded (`%2F`, `%5C`) they are one segment
 * to the API, but a proxy or server that decodes them before routing would see more, and
 * `deleteConnectToken(token: "../accounts/<id>")`, which needs only a valid token, would reach another path.
 */
function pathSegment(id: string): string {
  refuseUnsendableId(id);
  return percentEncode(id);
}

/**
 * An id or token as a message names it: in quotes, a quote in it escaped (`"a\\"b"`), as JSON writes it. Where the
 * id came from a caller, it holds no control character or separator (refuseUnsendableId refused those).
 */
export function quotedId(id: string): string {
  return JSON.stringify(id);
}

/**
 * Throws the refusal (BAD_USER_INPUT) that an id or token gets when it cannot be sent as one path segment
 * (see `pathSegment`). Exported so that a loader can refuse one before keying its cache on it: a token a caller
 * wrote is the key of a per-request cache, and a 1 MB one under a page of 100 accounts was copied into and
 * looked up as 100 keys of 1 MB each before this refused it. The length is checked before any scan of the text.
 * `fromCaller`: the caller gave it, and may have copied it with a line break around it, which the refusal then
 * asks; false for one the upstream sent (see parse.ts), whose refusal must not blame the caller.
 */
export function refuseUnsendableId(id: string, fromCaller = true): void {
  if (id === '' || id === '.' || id === '..') {
    // The client sends what it is given without knowing the argument's name: an id or a connect token.
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${quotedId(id)} is not a valid id or token`);
  }
  if (id.length > MAX_ID_LENGTH) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `An id or token is at most ${MAX_ID_LENGTH} characters long (got ${id.length})`);
  }
  if (PATH_SEPARATOR.test(id)) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, 'An id or token cannot contain "/" or "\\": none does, and servers on the way may take either for a path separator');
  }
  // A value copied with its line break or a space around it would otherwise cost a request and come back
  // NOT_FOUND, which says nothing of why: no Context.IO id or token holds such a character.
  if (HAS_UNSEEN.test(id)) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `An id or token cannot contain a space, a line break, a control or an invisible character: none does${fromCaller ? ' (copied with one around it?)' : ''}`);
  }
  assertEncodable(id, 'An id or token');
}

const PATH_SEPARATOR = /[/\\]/;

/**
 * JSON variables can carry an unpaired UTF-16 surrogate (`"\ud800"`), which has no UTF-8 form, so no URL
 * or form body can carry it (encoding it throws). Refused as the caller's input, before any request.
 */
function assertEncodable(value: string, what: string): void {
  if (HAS_HALF_PAIR.test(value)) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${what} is not valid text: it contains an unpaired UTF-16 surrogate`);
  }
}

/** Parameters as the upstream expects them: flags as 0/1, unset values left out. */
function pairsOf(params: Params | undefined): OAuthParam[] {
  if (!params) return [];
  const pairs: OAuthParam[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    assertEncodable(text, `The value of the upstream parameter "${key}"`);
    pairs.push([key, text]);
  }
  return pairs;
}
