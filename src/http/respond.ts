import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ErrorCode, HttpRefusalCode } from '../errors.ts';

/*
 * Why responses are ended only once their body is out of the process: on shutdown, Node's `server.close()`
 * (and `closeIdleConnections()`) destroys every connection whose response has been *ended*, even while the
 * rest of that response still waits in the process's buffer for a client that reads slowly. The client then
 * gets it cut short. A response not yet ended is left alone, so the functions here end it only once all of
 * its body has been handed to the socket; what the kernel holds still reaches the client after a close.
 */

/**
 * Sends `body` as the whole response, with its Content-Length, and ends the response once it is flushed.
 * `hold`: counts its bytes as held by the process from now on; what it returns is called as the response
 * closes, which it does once ended (all of the body out of the process) or when its connection drops with the
 * body still in it (the client gone, the answer cut for stalling or at shutdown), which frees it.
 */
export function endOnceFlushed(res: ServerResponse, body: string, hold: (bytes: number) => () => void): void {
  const bytes = Buffer.byteLength(body);
  if (!res.headersSent) res.setHeader('content-length', bytes);
  // Closed already (its client left while the operation ran): nothing is held, and no 'close' would give it back.
  if (!res.closed) res.once('close', hold(bytes));
  res.write(body, (error) => {
    if (flushed(res, error)) res.end();
  });
}

/**
 * Streams `source` into the response (whose headers, Content-Length included, the caller has set), pausing
 * it while the client is slow, and ends the response once the last chunk is flushed. A failing `source`
 * destroys the response: a client must not take a truncated body for a whole one.
 */
export function streamOnceFlushed(source: Readable, res: ServerResponse): void {
  // Gone while the caller prepared the stream (a client that left during a file lookup): 'close' has fired
  // already, and a write would pause the source for a 'drain' that never comes, its file left open.
  if (res.destroyed || res.socket?.destroyed === true) {
    source.destroy();
    return;
  }
  let unflushed = 0;
  let sourceEnded = false;
  const endIfDone = () => {
    if (sourceEnded && unflushed === 0) res.end();
  };
  source.on('data', (chunk: Buffer) => {
    unflushed++;
    const more = res.write(chunk, (error) => {
      unflushed--;
      if (flushed(res, error)) endIfDone();
    });
    if (!more) {
      source.pause();
      res.once('drain', () => source.resume());
    }
  });
  source.once('end', () => {
    sourceEnded = true;
    endIfDone();
  });
  source.once('error', () => res.destroy());
  res.once('close', () => source.destroy());
}

/**
 * Whether a write's callback means its data reached the socket. Node also calls it, without an error, for
 * the data a destroyed connection dropped: ending the response then would log it as delivered.
 */
function flushed(res: ServerResponse, error: Error | null | undefined): boolean {
  return !error && res.socket?.destroyed !== true;
}

/**
 * The headers every answer of the gateway's carries (the IDE's pages and files set their own `cache-control`):
 * set by the request handler, and written by hand for a request Node's parser refused (client-error.ts).
 * - Every answer is one caller's: no cache may keep it. A shared cache already skips requests carrying
 *   Authorization, but not behind a proxy that turns a session cookie into the Bearer header (docs/auth.md);
 *   refusals and preflights included.
 * - Every answer says its media type; none may be read as another (a JSON answer sniffed as HTML or script).
 */
export const EVERY_ANSWER_HEADERS: ReadonlyMap<string, string> = new Map([
  ['cache-control', 'private, no-store'],
  ['x-content-type-options', 'nosniff'],
]);

/** A GraphQL-shaped error body for a request refused before GraphQL saw it. */
export function graphqlError(message: string, code: ErrorCode | HttpRefusalCode) {
  return { errors: [{ message, extensions: { code } }] };
}

/** A small JSON answer (a refusal, `/healthz`), sent at once. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  // Its length said, not chunked: a client reading it raw (or a proxy) gets it whole in one framing.
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** A request refused before GraphQL: its status, its message and code (the log line's too), any headers. */
export interface Refusal {
  status: number;
  message: string;
  code: HttpRefusalCode;
  headers?: Record<string, string>;
}
