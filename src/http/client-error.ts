import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HttpRefusalCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { EVERY_ANSWER_HEADERS, graphqlError } from './respond.ts';

/*
 * A request Node refuses before the gateway sees it (its parser could not read it, or it did not arrive in
 * time) gets no IncomingMessage and no ServerResponse: left to Node, its answer is a bare status line with no
 * body and none of the headers every other answer carries. Answered here in the envelope of every other
 * refusal instead, under the rules Node's own answer keeps (lib/_http_server.js, socketOnError).
 */

export interface ClientErrorOptions {
  logger: Logger;
  /** How long a request may take to arrive (GatewayOptions.requestReceiveTimeoutMs): the 408's message says it. */
  requestReceiveTimeoutMs: number;
  /** The CORS grant of an answer to a request from an origin (GatewayAccess.corsGrant). */
  corsGrant(origin: string | undefined): Array<[string, string]>;
}

/** Node's `clientError`: a socket error, a parser's (`HPE_…`) or the deadline of a request still arriving. */
type ClientError = Error & { code?: string };

/** The server's `clientError` listener: answers what Node's parser refused, then closes the connection. */
export function clientErrorAnswerer(options: ClientErrorOptions): (error: ClientError, socket: Socket) => void {
  // Node goes on feeding its failed parser what arrives until the connection closes, each time one more
  // `clientError`: the first one was answered.
  const answered = new WeakSet<Socket>();
  return (error, socket) => {
    if (answered.has(socket)) return;
    const refusal = refusalFor(error, options.requestReceiveTimeoutMs);
    // A connection that failed (ECONNRESET, EPIPE) has nobody to answer.
    if (refusal === undefined || !socket.writable) {
      socket.destroy();
      return;
    }
    // An earlier request on the connection (pipelined before this one) still owed its answer, begun or not:
    // a refusal written now would be the first answer on the wire, which its client reads as that request's.
    // Those answers alone are sent; the connection closes after them, Node reading no request past this one.
    if (responseInFlight(socket)?.req.complete === true) {
      answered.add(socket);
      options.logger.debug('request refused before it could be read, behind answers still owed on its connection: closed after them', { status: refusal.status, reason: error.code });
      closeOnceAnswered(socket);
      return;
    }
    // One whose answer has begun (an answer's bytes on the wire) cannot take another without the client
    // reading it as the first's.
    if (responseBegun(socket)) {
      socket.destroy();
      return;
    }
    answered.add(socket);
    const handled = requestBeingRead(socket);
    // A request whose headers were read has its id already (the client's, or the one the handler's lines carry).
    const handledId = handled?.getHeader('x-request-id');
    const requestId = typeof handledId === 'string' ? handledId : randomUUID();
    options.logger.debug('request refused before it could be read', { requestId, status: refusal.status, reason: error.code });
    // A HEAD's answer has no body (RFC 9110 9.3.2): a client reads the bytes after its head as a next answer
    // (Node's fails the request). Known only of a request whose headers were read; see requestBeingRead.
    const headOnly = handled?.req.method === 'HEAD';
    socket.write(answerBytes(refusal, requestId, options.corsGrant(handled?.req.headers.origin), headOnly));
    // Closed once the answer is handed to the kernel: a request Node could not read leaves nothing on the
    // connection to read the next one from. (The answer of a request still arriving, should it be made, is
    // held back by Node, the socket being no longer writable.)
    if (socket.writableLength === 0) socket.destroySoon();
    // One the kernel did not take at once waits for a client that is not reading (a large answer before
    // it, untaken): waited for, it held the connection, which Node's sweeps take for busy, until its
    // keep-alive deadline and every shutdown to its grace period's end. Dropped instead, as Node drops its own.
    else socket.destroy();
  };
}

/** Node's limit on a request line and headers (16 KiB unless `--max-http-header-size` says otherwise). */
const HEADER_LIMIT = maxHeaderSize % 1024 === 0 ? `${maxHeaderSize / 1024} KiB` : `${maxHeaderSize} bytes`;

interface ClientRefusal {
  status: number;
  code: HttpRefusalCode;
  message: string;
}

/** The refusal of `error`, with Node's status for it; `undefined` for a connection that failed, not a request. */
function refusalFor(error: ClientError, requestReceiveTimeoutMs: number): ClientRefusal | undefined {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: HttpRefusalCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
        message: `The request line and headers exceed ${HEADER_LIMIT}: send a long document by POST, as JSON in the body, rather than in a GET's query string`,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, code: HttpRefusalCode.PAYLOAD_TOO_LARGE, message: 'A chunk extension of the request body is larger than accepted: send the body without chunk extensions' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: HttpRefusalCode.REQUEST_TIMEOUT,
        message: `The request did not arrive whole within ${requestReceiveTimeoutMs / 1000} s: send its headers and body at once`,
      };
  }
  // The client closed its side before its request was whole (it left mid-body): a connection that ended, as
  // the handler sees a request whose client left (its own debug line says so), not a request to answer.
  if (error.code === 'HPE_INVALID_EOF_STATE' || !error.code?.startsWith('HPE_')) return undefined;
  // llhttp's reason is one of its own fixed phrases ("Invalid method encountered"), never the request's bytes.
  const reason = 'reason' in error && typeof error.reason === 'string' ? ` (${error.reason})` : '';
  return {
    status: 400,
    code: HttpRefusalCode.BAD_REQUEST,
    message: `The request is not valid HTTP/1.1${reason}: check its request line, its headers and the framing of its body`,
  };
}

/** The response Node is writing on `socket` (the first of those it answers in turn), if any. */
function responseInFlight(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** Whether an answer on `socket` has begun: its headers are decided, and may be on the wire already. */
function responseBegun(socket: Socket): boolean {
  return responseInFlight(socket)?.headersSent === true;
}

/**
 * The answer the handler holds for the request refused, when its headers were read: one whose body failed (its
 * framing, a chunk extension too large) or did not arrive in time is the request the handler holds on `socket`,
 * not yet complete; its `Origin` and its request id are read from there. A request refused while its request
 * line or headers arrived (431, a malformed header, headers too slow for their deadline) has none to read:
 * Node's parser keeps no headers it has not finished, and reading them from the raw bytes would be a second,
 * laxer parser of what the first refused. Its answer carries no CORS grant, so a browser frontend sees a network
 * failure; the only such refusal a page can cause on its own, a 431 for a request too large, comes of a GET
 * whose query string is long: POSTed, the document goes in the body.
 */
function requestBeingRead(socket: Socket): ServerResponse | undefined {
  const handled = responseInFlight(socket);
  return handled !== undefined && !handled.req.complete ? handled : undefined;
}

/**
 * Closes `socket` once the answers owed to its complete requests are out: Node hands the connection to each
 * in turn as the one before finishes (its own listener, which runs first). One whose request is not complete
 * never will be, its connection's parser having failed: the connection closes before it.
 */
function closeOnceAnswered(socket: Socket): void {
  const owed = responseInFlight(socket);
  if (owed === undefined || !owed.req.complete) {
    socket.destroySoon();
    return;
  }
  owed.once('finish', () => closeOnceAnswered(socket));
}

/**
 * The whole answer, as Node's ServerResponse would write it, with the headers every answer of the gateway's
 * carries (EVERY_ANSWER_HEADERS, a request id, and `cors`, the request's CORS grant), its body left out for a
 * HEAD. No Accept header is read: application/json.
 */
function answerBytes({ status, code, message }: ClientRefusal, requestId: string, cors: Array<[string, string]>, headOnly: boolean): Buffer {
  const body = JSON.stringify(graphqlError(message, code));
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...[...EVERY_ANSWER_HEADERS].map(([name, value]) => `${name}: ${value}`),
    `X-Request-Id: ${requestId}`,
    ...cors.map(([name, value]) => `${name}: ${value}`),
    `Date: ${new Date().toUTCString()}`,
    'Connection: close',
  ];
  // A HEAD's head says the length the body would have had, as Node's ServerResponse writes it.
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${headOnly ? '' : body}`);
}
