import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import Negotiator from 'negotiator';
import { jsonText } from '../support/json-text.ts';
import { shortened } from '../support/shortened.ts';

/** Reading a request: its target, its id, and its body as a GraphQL request (`body.ts` reads the bytes). */

/** A POST body read as a GraphQL request, or why it is not one (a message for a 400 answer). */
export type ParsedBody = { ok: true; body: Record<string, unknown> } | { ok: false; message: string };

const SHAPE = 'send one JSON object {"query": ..., "variables": ..., "operationName": ...}';

/**
 * Parses a POST body and refuses what Apollo would answer only vaguely ("POST body missing, invalid
 * Content-Type, or JSON object has no keys."): an empty body, broken JSON, a batch, anything but an object.
 */
export function parseGraphQLBody(text: string): ParsedBody {
  if (text.trim() === '') return { ok: false, message: `The request body is empty: ${SHAPE}` };
  // Counted on the text, before JSON.parse: V8's parser takes time growing faster than the nesting (each garbage
  // collection while it runs walks every level still open), so 1 MiB of nested arrays held the event loop
  // ~220 ms, where 1 MiB of strings takes ~20 ms. No GraphQL request nests near this deep (variables: 32 levels).
  if (jsonNestsDeeperThan(text, MAX_BODY_DEPTH)) {
    return { ok: false, message: `The request body nests objects and lists deeper than the ${MAX_BODY_DEPTH} levels accepted` };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    // V8's message names the position and quotes a few characters of the caller's own body: safe and useful.
    const detail = error instanceof SyntaxError ? `: ${shortened(error.message, 200)}` : '';
    return { ok: false, message: `The request body is not valid JSON${detail}` };
  }
  if (Array.isArray(body)) {
    // One request, one operation: a batch would slip many operations past the per-request limits at once.
    return { ok: false, message: `Batched requests (a JSON array of operations) are not supported: ${SHAPE} per request` };
  }
  if (typeof body !== 'object' || body === null) return { ok: false, message: `The request body is not a JSON object: ${SHAPE}` };
  if (Object.keys(body).length === 0) return { ok: false, message: `The request body has no query: ${SHAPE}` };
  const variables = (body as { variables?: unknown }).variables;
  // No input of this schema nests more than a few levels. Far deeper variables (5,000 nested arrays fit in 10
  // KB) would overflow the stack of anything recursing over them, JSON.stringify below among them.
  if (nestedDeeperThan(variables, MAX_VARIABLES_DEPTH)) {
    return { ok: false, message: `The variables nest deeper than the ${MAX_VARIABLES_DEPTH} levels accepted` };
  }
  // Only a body this large can hold variables this large: the common case costs no second serialization. A
  // character takes up to 3 bytes, and a number may serialize longer than it was sent (1e20 as 21 digits).
  if (text.length * MAX_GROWTH > MAX_VARIABLES_BYTES) {
    const size = variables === undefined ? 0 : Buffer.byteLength(JSON.stringify(variables));
    if (size > MAX_VARIABLES_BYTES) {
      return { ok: false, message: `The variables take ${size} bytes as JSON, more than the ${MAX_VARIABLES_BYTES} accepted` };
    }
  }
  return { ok: true, body: withoutEmptyOperationName(body as Record<string, unknown>) };
}

/**
 * The body without an `operationName` of `""`, which names no operation (no name is empty), as a GET's
 * `operationName=` is taken (`searchForApollo`): Go's encoding/json writes a string field a client never set as
 * `""` (a request struct without `omitempty`), and Apollo answered each anonymous operation so sent
 * `Unknown operation named ""`, where the same request over GET ran.
 */
function withoutEmptyOperationName(body: Record<string, unknown>): Record<string, unknown> {
  if (body['operationName'] !== '') return body;
  const { operationName: _empty, ...rest } = body;
  return rest;
}

/**
 * The most the variables may take, as JSON. The largest any operation of this schema needs is a few KB (a
 * connect token's input: a URL, an email and two names). graphql-js quotes the whole offending value in each
 * error it reports about a variable, up to 50 of them: 1 MB of variables with 60,000 unknown keys answered
 * 44 MB and held the event loop 3 s.
 */
const MAX_VARIABLES_BYTES = 64 * 1024;

/** How deep the variables may nest (objects and lists within each other). */
const MAX_VARIABLES_DEPTH = 32;

/** How deep a whole body may nest: its variables' levels, the body's own and `variables`', and room to spare. */
const MAX_BODY_DEPTH = 64;

/**
 * Whether JSON `text` opens objects and lists more than `limit` deep, counted in one pass over the text (brackets
 * inside strings not counted). Text that is no JSON may be miscounted: JSON.parse refuses it anyway.
 */
function jsonNestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > limit) return true;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) depth--;
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Whether `value` holds objects or lists nested more than `limit` deep: walked without recursion, whatever its depth. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const pending: Array<{ value: object; depth: number }> = [{ value, depth: 1 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (next.depth > limit) return true;
    for (const child of Array.isArray(next.value) ? next.value : Object.values(next.value)) {
      if (typeof child === 'object' && child !== null) pending.push({ value: child as object, depth: next.depth + 1 });
    }
  }
  return false;
}

/**
 * How many times larger than the body's characters its variables may take as JSON: 3 bytes a character, times
 * 21/4 for a number sent as `1e20` (JSON.stringify writes up to 21 digits before switching to an exponent).
 */
const MAX_GROWTH = 3 * (21 / 4);

/** A request target split: raw path, raw query (without `?`), and the origin an absolute-form target names. */
export interface RequestTarget {
  path: string;
  query: string;
  /**
   * Set for a target in absolute form (`GET http://127.0.0.1:4010/2.0/accounts`, what a client sends a forward
   * proxy): its scheme and its authority (`host:port`), which stand in for the Host header, as the target URI is
   * then the request target itself (RFC 9112 §3.2.2, §3.3).
   */
  origin?: { scheme: string; host: string };
}

/** An http(s) URL's scheme, authority and the rest; not one with user information (see `splitTarget`). */
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#@]+)([/?].*)?$/i;

/**
 * Splits a request target in origin form (`/graphql?x=1`) or absolute form (`http://host/graphql`), which every
 * HTTP/1.1 server must accept (RFC 9112 §3.2.2) and routes by the same path and query. Any other target is
 * `undefined`: the asterisk form (`OPTIONS *`, the caller's to answer), another scheme's URL, a URL with user
 * information (`http://user@host/`, which RFC 9110 §4.2.4 has a recipient treat as an error) or none
 * (`http:///x`), or no URL at all.
 * The gateway and the emulator both read targets here, so a host named in one is judged alike by both.
 */
export function splitTarget(target: string): RequestTarget | undefined {
  const absolute = ABSOLUTE_FORM.exec(target);
  // An empty path is `/`: `http://host?x` asks for `/?x`.
  if (absolute) return { ...splitPath(absolute[3]?.startsWith('/') ? absolute[3] : `/${absolute[3] ?? ''}`), origin: { scheme: absolute[1]!.toLowerCase(), host: absolute[2]! } };
  return target.startsWith('/') ? splitPath(target) : undefined;
}

function splitPath(target: string): RequestTarget {
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * The request's target resolved as a URL (an absolute-form target's own origin, else a placeholder's), or
 * `undefined` when it is none `splitTarget` reads or no URL parser accepts (`http://[`, a port past 65535). A
 * target starting with `/` is a path, `//graphql` too: resolved against a base, it would read as a URL without a
 * scheme whose host is `graphql`, and `//x/healthz` would be served as `/healthz`.
 */
export function requestUrlOf(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  // splitTarget judges which targets are one; the URL parser reads them whole, as they came.
  const split = splitTarget(target);
  if (split === undefined) return undefined;
  try {
    return new URL(split.origin ? target : `http://gateway.invalid${target}`);
  } catch {
    return undefined;
  }
}

/**
 * A request header's value as its client wrote it, to be quoted in a line or an answer: Node reads a header's bytes
 * as Latin-1, one character a byte, so `Host: bücher.example` sent in UTF-8 (curl sends what it is given) reads
 * `bÃ¼cher.example`. Bytes that are UTF-8 are read so; others (a lone 0x85) stay as Node read them.
 */
export function headerAsSent(value: string): string {
  if (!NOT_ASCII.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : value;
}

const NOT_ASCII = /[\u0080-\u00ff]/;

/** A caller's request id when it is a plain token, else a fresh one: never echo arbitrary header content. */
export function requestIdOf(req: IncomingMessage): string {
  return requestIdGivenBy(req) ?? randomUUID();
}

/**
 * The caller's request id when it sent one that is a plain token, else `undefined`: for the lines of a request
 * that gets no answer, where a fresh id would be in nothing the client or another log line holds.
 */
export function requestIdGivenBy(req: IncomingMessage): string | undefined {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,64}$/.test(given) ? given : undefined;
}

/**
 * A GET's query string as Apollo Server is handed it: an `operationName`, `variables` or `extensions` sent once and
 * empty is left out, as the GraphQL-over-HTTP spec has it ("Specifying the empty string for optional request
 * parameters is equivalent to not specifying them at all"). Apollo read `operationName=` as the name "", which
 * no operation has, and `variables=` as JSON that is not. One sent twice is left for Apollo to refuse as such.
 */
export function searchForApollo(url: URL): string {
  const empty = OPTIONAL_GET_PARAMETERS.filter((name) => {
    const values = url.searchParams.getAll(name);
    return values.length === 1 && values[0] === '';
  });
  if (empty.length === 0) return url.search;
  // A copy, only when one is left out: the request's own URL is not changed.
  const parameters = new URLSearchParams(url.searchParams);
  for (const name of empty) parameters.delete(name);
  return `?${parameters.toString()}`;
}

/** The optional parameters of a GraphQL-over-HTTP GET request (`query` is the one it needs). */
const OPTIONAL_GET_PARAMETERS = ['operationName', 'variables', 'extensions'];

/**
 * Whether a GET's query string carries an operation: its text (`?query=`), or a persisted query's hash (`?extensions=`;
 * sent empty, it is not sent: `searchForApollo`).
 */
export function carriesOperation(url: URL): boolean {
  return url.searchParams.has('query') || url.searchParams.getAll('extensions').some((value) => value !== '');
}

/**
 * A JSON body's text (UTF-8, as RFC 8259 has JSON exchanged; a byte order mark, which it lets a reader
 * ignore, dropped), or `undefined` when it is not UTF-8: decoded anyway, each bad byte would become U+FFFD,
 * and a Latin-1 `René` would reach the upstream as `Ren\uFFFD`.
 */
export function utf8Text(bytes: Buffer): string | undefined {
  return isUtf8(bytes) ? jsonText(bytes) : undefined;
}

/**
 * Whether a query string's percent-escapes spell UTF-8 (`%E9` alone does not): decoded anyway, each bad byte
 * would become U+FFFD, as in a POST body (`utf8Text`). A valid character's bytes are always escaped in one run.
 */
export function percentEncodedUtf8(search: string): boolean {
  for (const run of search.match(/(?:%[0-9a-fA-F]{2})+/g) ?? []) {
    if (!isUtf8(Buffer.from(run.replaceAll('%', ''), 'hex'))) return false;
  }
  return true;
}

/** A `Content-Type`'s media type, lower-cased, and its parameters as written (`name=value`, untrimmed). */
function parsedContentType(contentType: string): { type: string; parameters: string[] } {
  const [mediaType = '', ...parameters] = contentType.split(';');
  return { type: mediaType.trim().toLowerCase(), parameters };
}

/**
 * Why a POST body of this `Content-Type`, `Content-Encoding` and `Transfer-Encoding` cannot be read as JSON (a
 * message for a 415 answer), or `undefined` when it can: JSON, in UTF-8 (no charset, or that one), not
 * compressed. Node's parser undoes `chunked` only: a body sent `Transfer-Encoding: gzip, chunked` reached the
 * JSON reader still compressed, refused as "not valid UTF-8".
 */
export function unreadableBodyType(contentType: string | undefined, contentEncoding: string | undefined, transferEncoding?: string): string | undefined {
  const { type, parameters } = parsedContentType(contentType ?? '');
  if (type !== 'application/json' && type !== 'application/graphql-response+json') return `POST bodies must be application/json: send the header Content-Type: application/json${sentType(contentType, type)}`;
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    const charset = value.trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    // ASCII is UTF-8's first 128 characters: a body so labelled reads the same.
    if (charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') return 'POST bodies must be JSON in UTF-8: send them without a charset, or with charset=utf-8';
  }
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') return 'Compressed request bodies are not supported: send the JSON without a Content-Encoding';
  const codings = (transferEncoding ?? '').split(',').map((coding) => coding.trim().toLowerCase());
  if (codings.some((coding) => coding !== '' && coding !== 'chunked')) {
    return 'Compressed request bodies are not supported: send the JSON without a Transfer-Encoding other than chunked';
  }
  return undefined;
}

/**
 * What a refused request's `Content-Type` was, for its 415 (a POST's, or a GET's, which should send none): curl -d,
 * Python's urllib, Ruby's Net::HTTP and Perl's LWP type a body as a form by default, Perl's HTTP::Tiny as
 * application/octet-stream, and a caller told only what to send would not know its client sent anything. Its media
 * type is quoted only when it is one (two tokens, lower-cased, of a readable length): nothing else of a caller's
 * header is echoed.
 */
function sentType(contentType: string | undefined, type: string): string {
  if (contentType === undefined || type === '') return ' (this request has none)';
  return MEDIA_TYPE.test(type) ? ` (this request's is ${type})` : '';
}

const MEDIA_TYPE = /^[\w!#$%&'*+.^`|~-]{1,64}\/[\w!#$%&'*+.^`|~-]{1,64}$/;

/**
 * A `Content-Type` as Apollo Server is handed it: each run of spaces and tabs as one space. Apollo parses it
 * with whatwg-mimetype (its CSRF check, before the context that refuses a missing token; a GET's type), whose
 * trimming takes time quadratic in such a run when more text follows: 0.6 s of the event loop for one header
 * of 15 KB, from a caller without a token. Apollo reads only the media type, which one space or many between
 * its parts leave the same (a run inside a quoted parameter value, which this changes, it never reads).
 */
export function contentTypeForApollo(contentType: string): string {
  return contentType.replace(/[ \t]+/g, ' ');
}

/**
 * Why a GET with this `Content-Type` is refused (a message for a 415 answer), or `undefined` when it is not: none,
 * or JSON's, as Apollo Server has it. Apollo refuses any other itself, but as a 415 whose code is BAD_REQUEST,
 * where every other 415 (and docs/errors.md) says UNSUPPORTED_MEDIA_TYPE.
 */
export function unacceptableGetType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const { type } = parsedContentType(contentType);
  if (type === 'application/json') return undefined;
  return `GET requests may not have a Content-Type other than application/json${sentType(contentType, type)}: send the operation in the query string, or POST it as JSON`;
}

/**
 * The media types Apollo Server answers an operation in, as it names them when it picks one by `Accept`
 * (its `chooseContentTypeForSingleResultResponse`).
 */
const JSON_ANSWER = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_ANSWER = 'application/graphql-response+json; charset=utf-8';
const ANSWER_MEDIA_TYPES = [JSON_ANSWER, GRAPHQL_RESPONSE_ANSWER, 'application/json; callbackSpec=1.0; charset=utf-8'];

/** Apollo's answer to a request whose `Accept` allows none of them (406), word for word. */
export const NOT_ACCEPTABLE_MESSAGE =
  "An 'accept' header was provided for this request which does not accept application/json; charset=utf-8 or application/graphql-response+json; charset=utf-8";

/**
 * Whether an answer can be given in a media type this `Accept` header allows, decided as Apollo Server decides
 * it (the same negotiator, the same types). Apollo asks only once the operation has run, and then answers 406
 * with the result thrown away: a mutation was made upstream and its caller told it was refused.
 */
export function acceptsGraphQLAnswer(accept: string | undefined): boolean {
  return !accept || answerMediaType(accept) !== undefined;
}

/** The media type Apollo would answer in for this `Accept` header, or `undefined` when it allows none. */
function answerMediaType(accept: string): string | undefined {
  return new Negotiator({ headers: { accept } }).mediaType(ANSWER_MEDIA_TYPES);
}

/**
 * The media type of a refusal the gateway answers itself (a bad body, a method, a token, a limit), picked by
 * `Accept` as Apollo picks its answers' and refusals': a client that accepts only
 * `application/graphql-response+json` gets its errors in it too. `application/json` otherwise, an `Accept`
 * that allows neither included (the refusal is then the answer, not a 406).
 */
export function refusalMediaType(accept: string | undefined): string {
  return accept && answerMediaType(accept) === GRAPHQL_RESPONSE_ANSWER ? GRAPHQL_RESPONSE_ANSWER : JSON_ANSWER;
}
