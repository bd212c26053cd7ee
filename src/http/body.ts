import type { IncomingMessage, ServerResponse } from 'node:http';
import { ByteCollector } from '../support/byte-collector.ts';

/** Reading a request's body, whatever it carries: bounded, `100 Continue` only when it is to be read. */

/** A body not read because its client went away first: no failure of the server's, and nothing can be answered. */
export class RequestGone extends Error {
  constructor() {
    super('the connection closed before the request body was read');
  }
}

/**
 * Whether the client went away (or was cut off for being too slow) while its request was still arriving: an
 * error reading it is then no failure of the server's, and nothing can be answered.
 */
export function leftMidRequest(req: IncomingMessage): boolean {
  return req.destroyed && !req.complete;
}

/**
 * Whether the client waits for `100 Continue` before it sends its body (`Expect: 100-continue`, as Node tests
 * it): curl does for bodies over 1 MiB. Node would send it at once; the gateway sends it only once it means to
 * read the body, so that a refused one (too large, no valid token) is never uploaded.
 */
export function awaitsContinue(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && /(?:^|\W)100-continue(?:$|\W)/i.test(req.headers.expect ?? '');
}

/**
 * Why a body was not read to its end (the rest is then not read): it passed its limit of bytes, or it came in
 * more pieces than `maxBodyPieces` allows.
 */
export type UnreadBody = 'too large' | 'too many pieces';

/**
 * The most pieces a body of at most `limit` bytes is read in: the chunks of a chunked body, each socket read of
 * any body. Node hands each over as its own Buffer and event, ~1.6 µs apiece: 1 MiB sent a byte per chunk took
 * ~280 ms of CPU to read, 40 times what the same bytes cost in one piece, from callers without a token too
 * (their bodies are read and dropped). Pieces averaging 64 bytes still fill the limit, or 16,384 of them
 * whatever the limit (MAX_BODY_BYTES' 1 MiB gives that many); a body over a slow link comes in a read per
 * 1,448-byte TCP segment.
 */
export function maxBodyPieces(limit: number): number {
  return Math.max(MIN_BODY_PIECES, Math.ceil(limit / 64));
}

const MIN_BODY_PIECES = 16 * 1024;

/**
 * The body's bytes, or why they were not all read (`UnreadBody`). `res`: its `100 Continue` is sent when the
 * client waits for one and the body's declared length is within `limit`.
 */
export async function readBody(req: IncomingMessage, limit: number, res?: ServerResponse): Promise<Buffer | UnreadBody> {
  // Made with the first chunk: a body refused for its declared length reserves nothing.
  let body: ByteCollector | undefined;
  const askForBody = res !== undefined && awaitsContinue(req) ? () => res.writeContinue() : undefined;
  const read = await consumeBody(req, limit, (chunk) => (body ??= new ByteCollector(limit, Number(req.headers['content-length']))).add(chunk), askForBody);
  return read === true ? (body?.bytes() ?? Buffer.alloc(0)) : read;
}

/**
 * Reads the body and keeps none of it (a request refused before its body matters): true once it has all
 * arrived, so that the connection can serve the next request; false once it passes `limit` bytes or
 * `maxBodyPieces(limit)` pieces.
 */
export async function discardBody(req: IncomingMessage, limit: number): Promise<boolean> {
  let bytes = 0;
  return (await consumeBody(req, limit, (chunk) => (bytes += chunk.length) <= limit)) === true;
}

/**
 * Feeds the body to `take` until it ends (true), or `take` refuses a chunk or the declared length passes `limit`
 * (`'too large'`), or it passes `maxBodyPieces(limit)` pieces; the rest is then not read. `askForBody` is called once
 * the body is to be read.
 */
function consumeBody(req: IncomingMessage, limit: number, take: (chunk: Buffer) => boolean, askForBody?: () => void): Promise<true | UnreadBody> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve('too large');
  }
  askForBody?.();
  return new Promise((resolve, reject) => {
    // Its client gone before the body was read: before it all came, or after (it waits, unread, in the request's
    // buffer), perhaps before these listeners (while its token was verified). A request destroyed never says
    // 'end', and has said 'close' already: waited for, the read would never settle, its caller holding what
    // it reserved for the body (its share of MAX_BODY_BYTES_IN_FLIGHT) for good.
    const gone = () => reject(new RequestGone());
    if (req.destroyed) return gone();
    // Every request closes once answered: its 'close' after the read settled is no client gone, and must not
    // make an Error (a stack trace captured) on every request.
    const settle = (outcome: true | UnreadBody) => {
      req.off('close', gone);
      resolve(outcome);
    };
    req.on('close', gone);
    const maxPieces = maxBodyPieces(limit);
    let pieces = 0;
    req.on('data', (chunk: Buffer) => {
      const unread = ++pieces > maxPieces ? 'too many pieces' : take(chunk) ? undefined : 'too large';
      if (unread !== undefined) {
        req.removeAllListeners('data');
        req.resume();
        settle(unread);
      }
    });
    req.on('end', () => settle(true));
    req.on('error', reject);
  });
}
