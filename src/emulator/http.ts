import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { readBody as readBodyUpTo } from '../http/body.ts';
import { clientErrorHandler, clientErrorKind, HEADER_LIMIT, responseBytes } from '../http/client-error.ts';
import { parseFormPairs, type OAuthParam } from '../oauth/signature.ts';
import type { UpstreamErrorBody } from '../upstream/types.ts';
import { canonicalHost, hostnameOf, isLoopbackHost } from '../support/url.ts';

/** Small HTTP helpers shared by the API routes and the connect page. */

/** Request bodies larger than this are refused: the API only takes short forms. */
const MAX_BODY_BYTES = 1024 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: number,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Answers held back until released (`FaultRule.answerAfterMs`), with the write that waits for the release. */
const heldAnswers = new WeakMap<ServerResponse, { released: boolean; write?: () => void }>();

/** Holds `res`'s answer until the returned function is called; an answer ready by then is sent at once. */
export function holdAnswer(res: ServerResponse): () => void {
  const held: { released: boolean; write?: () => void } = { released: false };
  heldAnswers.set(res, held);
  return () => {
    held.released = true;
    held.write?.();
  };
}

/** Responses whose answer is never sent: the connection is closed instead (`FaultRule.drop`). */
const droppedAnswers = new WeakSet<ServerResponse>();

export function dropAnswer(res: ServerResponse): void {
  droppedAnswers.add(res);
}

/**
 * Answers JSON with `Content-Type: application/json` exactly: the vendor's clients compare the header verbatim.
 * With `nosniff`, as the gateway's answers: an error quotes what was sent (a path, a host), never to be read as HTML.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, { ...headers, 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' }, JSON.stringify(body));
}

/**
 * Answers an HTML page that loads nothing from anywhere (the connect page, or a proxy's error page). `script`:
 * the source (`'sha256-…'`) of the one inline script it may run, if any: no other runs, one that an escaping
 * mistake let into the page included.
 */
export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}, script = "'none'"): void {
  send(res, status, {
    ...headers,
    'Content-Type': 'text/html; charset=utf-8',
    // No external resources at all; form-action is left open because the flow redirects to the app (browsers
    // apply it to the redirect after the form's post too). No <base>, which would move the form's target.
    'Content-Security-Policy': `default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src ${script}; base-uri 'none'; frame-ancestors 'none'`,
    // The CSP's frame-ancestors for browsers that predate it: a page taking mailbox passwords is never framed.
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  }, html);
}

/** Writes a whole answer, once `holdAnswer`'s hold is released, or closes the connection instead (`dropAnswer`). */
function send(res: ServerResponse, status: number, headers: Record<string, string>, text: string): void {
  if (res.headersSent || res.destroyed) return;
  const write = () => {
    if (res.headersSent || res.destroyed) return;
    if (droppedAnswers.has(res)) {
      res.socket?.destroy();
      return;
    }
    // A 204 or 304 has no body (RFC 9110 §15.3.5, §15.4.5): Node leaves it out, and a Content-Length naming it
    // would have a client wait for bytes that never come (undici reads the connection as broken).
    if (status === 204 || status === 304) {
      res.writeHead(status, { ...headers, 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(text);
  };
  const held = heldAnswers.get(res);
  if (!held || held.released) return write();
  held.write ??= write;
}

/** Answers the upstream's error body. */
export function sendError(
  res: ServerResponse,
  status: number,
  value: string,
  code?: number,
  headers: Record<string, string> = {},
): void {
  const body: UpstreamErrorBody = code === undefined ? { type: 'error', value } : { type: 'error', code, value };
  sendJson(res, status, body, headers);
}

/**
 * Reads the whole body as text, refusing more than {@link MAX_BODY_BYTES} as the gateway does (the same
 * reader): the rest of a refused body is discarded, not kept, and the 413 closes the connection, so that a
 * client sending without end is not read on.
 */
export async function readBody(req: IncomingMessage): Promise<string> {
  const bytes = await readBodyUpTo(req, MAX_BODY_BYTES);
  if (bytes === 'too large') throw new HttpError(413, 'request body too large', undefined, { connection: 'close' });
  if (bytes === 'too many pieces') throw new HttpError(413, 'request body in too many pieces', undefined, { connection: 'close' });
  return bytes.toString('utf8');
}

/**
 * The server's `clientError` listener: a request Node's parser refused (malformed, headers too large, too slow)
 * is answered in the API's error shape, as every other refusal is, by the gateway's own rules (one piece of
 * code: http/client-error.ts). Left to Node, its answer was a bare status line, and, behind a request still
 * being answered on the connection (a client that sent more bytes than its Content-Length), it took that
 * request's place on the wire and destroyed the connection: the request was carried out, its answer lost.
 */
export function clientErrorAnswerer(requestTimeoutMs: () => number): ReturnType<typeof clientErrorHandler> {
  return clientErrorHandler({
    refusalFor: clientErrorKind,
    answer: (refused, _error, _handled, headOnly) => {
      const value =
        refused.kind === 'headers too large' ? `request line and headers larger than ${HEADER_LIMIT}`
        : refused.kind === 'chunk extension too large' ? 'a chunk extension of the request body is too large'
        : refused.kind === 'too slow' ? `the request did not arrive whole within ${requestTimeoutMs() / 1000} s`
        : `malformed HTTP/1.1 request${refused.reason === undefined ? '' : ` (${refused.reason})`}`;
      return refusalBytes(refused.status, value, headOnly);
    },
  });
}

/**
 * The server's `connect` listener: a CONNECT request reaches no request handler, and without a listener Node
 * drops its connection unanswered. Refused as the API refuses a method it does not serve (405, its error shape),
 * then closed: what follows its head would be a tunnel's bytes.
 */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  // Node takes its own listeners off a socket handed over for CONNECT: a reset unheard would end the process.
  socket.on('error', () => socket.destroy());
  // Destroyed once written: a client holding its side open would otherwise keep the server's close() waiting.
  socket.end(refusalBytes(405, 'method CONNECT is not allowed: the emulator is no proxy', false), () => socket.destroy());
}

/** A refusal made below the request handlers, whole: the API's error body, the connection closed after it. */
function refusalBytes(status: number, value: string, headOnly: boolean): Buffer {
  const body: UpstreamErrorBody = { type: 'error', value };
  return responseBytes(status, [['Content-Type', 'application/json'], ['Cache-Control', 'no-store']], JSON.stringify(body), headOnly);
}

/** Whether a request's body is a form, the only body kind that is signed and parsed. */
export function isFormBody(req: IncomingMessage): boolean {
  return /^application\/x-www-form-urlencoded\s*(;|$)/i.test(req.headers['content-type'] ?? '');
}

/** Decodes a query string or form body; `undefined` when its percent-encoding is malformed. */
export function tryDecodePairs(encoded: string): OAuthParam[] | undefined {
  try {
    return parseFormPairs(encoded);
  } catch {
    return undefined;
  }
}

/** Decodes a query string or form body; malformed percent-encoding is a 400. */
export function decodePairs(encoded: string, what: string): OAuthParam[] {
  const pairs = tryDecodePairs(encoded);
  if (!pairs) throw new HttpError(400, `malformed ${what}`);
  return pairs;
}

/** First value of each name, as a lookup; later repeats are ignored. */
export function firstValues(pairs: readonly OAuthParam[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const [k, v] of pairs) if (!map.has(k)) map.set(k, v);
  return map;
}

/**
 * Which `Host` headers an emulator bound to `boundAddress` (the address it listens on, as the socket reports
 * it, not a name configured for it) answers; see `EmulatorOptions.allowedHosts`. Loopback names,
 * `publicUrl`'s host and `allowed` (`*`: any), except that an emulator bound beyond loopback answers any
 * name unless `allowed` is given.
 */
export function hostFilter(boundAddress: string, allowed: readonly string[] | undefined, publicUrl: string | undefined): (header: string | undefined) => boolean {
  const names = new Set((allowed ?? []).map(hostName));
  if (publicUrl) names.add(new URL(publicUrl).hostname);
  if (names.has('*') || (allowed === undefined && !isLoopbackHost(boundAddress))) return () => true;
  return (header) => {
    // A request without Host (HTTP/1.0) cannot come from a browser, which always sends one.
    if (header === undefined) return true;
    const name = hostName(header);
    return isLoopbackHost(name) || names.has(name);
  };
}

/** A `Host` header's (or an allowed name's) name, without its port, as a URL spells it: one address, one name. */
function hostName(host: string): string {
  return canonicalHost(hostnameOf(host));
}

/** A percent-encoded URL part (a path segment, a URL's user or password) decoded, or as it is when its escapes do not decode. */
export function safelyDecoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
