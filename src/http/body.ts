import type { IncomingMessage, ServerResponse } from 'node:http';
import { ByteCollector } from '../byte-collector.ts';

/** Reading a request's body, whatever it carries: bounded, `100 Continue` only when it is to be read. */

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
 * The body's bytes, or `undefined` once it passes `limit` bytes (the rest is then not read). `res`: its
 * `100 Continue` is sent when the client waits for one and the body's declared length is within `limit`.
 */
export async function readBody(req: IncomingMessage, limit: number, res?: ServerResponse): Promise<Buffer | undefined> {
  // Made with the first chunk: a body refused for its declared length reserves nothing.
  let body: ByteCollector | undefined;
  const askForBody = res !== undefined && awaitsContinue(req) ? () => res.writeContinue() : undefined;
  const read = await consumeBody(req, limit, (chunk) => (body ??= new ByteCollector(limit, Number(req.headers['content-length']))).add(chunk), askForBody);
  return read ? (body?.bytes() ?? Buffer.alloc(0)) : undefined;
}

/**
 * Reads the body and keeps none of it (a request refused before its body matters): true once it has all
 * arrived, so that the connection can serve the next request; false once it passes `limit` bytes.
 */
export function discardBody(req: IncomingMessage, limit: number): Promise<boolean> {
  let bytes = 0;
  return consumeBody(req, limit, (chunk) => (bytes += chunk.length) <= limit);
}

/**
 * Feeds the body to `take` until it ends (true) or `take` refuses a chunk or the declared length passes `limit`
 * (false; the rest is not read). `askForBody` is called once the body is to be read.
 */
function consumeBody(req: IncomingMessage, limit: number, take: (chunk: Buffer) => boolean, askForBody?: () => void): Promise<boolean> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve(false);
  }
  askForBody?.();
  return new Promise((resolve, reject) => {
    // Its client gone before it all came (perhaps before these listeners: while its token was verified).
    const gone = () => reject(new Error('the connection closed before the request was complete'));
    if (leftMidRequest(req)) return gone();
    req.on('close', () => {
      if (!req.complete) gone();
    });
    req.on('data', (chunk: Buffer) => {
      if (!take(chunk)) {
        req.removeAllListeners('data');
        req.resume();
        resolve(false);
      }
    });
    req.on('end', () => resolve(true));
    req.on('error', reject);
  });
}
