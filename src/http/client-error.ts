import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HttpRefusalCode } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { lingeringClose, type LingerBounds } from './linger.ts';
import { refusalMediaType, requestIdOf } from './request.ts';
import { EVERY_ANSWER_HEADERS, graphqlError } from './respond.ts';

/*
 * A request Node refuses before the gateway sees it (its parser could not read it, or it did not arrive in
 * time) gets no IncomingMessage and no ServerResponse: left to Node, its answer is a bare status line with no
 * body and none of the headers every other answer carries. Answered here in the envelope of every other
 * refusal instead, under the rules Node's own answer keeps (lib/_http_server.js, socketOnError). The rules
 * (clientErrorHandler) and which errors are refused requests (clientErrorKind) are the emulator's too, which
 * answers them in the API's error shape (emulator/http.ts).
 */

export interface ClientErrorOptions {
  logger: Logger;
  /** How long a request may take to arrive (GatewayOptions.requestReceiveTimeoutMs): the 408's message says it. */
  requestReceiveTimeoutMs: number;
  /** The CORS grant of an answer to a request from an origin (GatewayAccess.corsGrant). */
  corsGrant(origin: string | undefined): Array<[string, string]>;
  /** The bounds of the lingering close after a refusal (linger.ts). */
  linger: LingerBounds;
}

/** Node's `clientError`: a socket error, a parser's (`HPE_…`) or the deadline of a request still arriving. */
type ClientError = Error & { code?: string };

/** The server's `clientError` listener: answers what Node's parser refused, then closes the connection. */
export function clientErrorAnswerer(options: ClientErrorOptions): (error: ClientError, socket: Socket) => void {
  return clientErrorHandler<ClientRefusal>({
    refusalFor: (error) => refusalFor(error, options.requestReceiveTimeoutMs),
    answeredBehind: (refusal, error) => {
      options.logger.debug('request refused before it could be read, behind answers still owed on its connection: closed after them', { status: refusal.status, reason: error.code });
    },
    answer: (refusal, error, handled, headOnly) => {
      // A request whose headers were read has its id already (the client's, or the one the handler's lines carry).
      const handledId = handled?.getHeader('x-request-id');
      const requestId = typeof handledId === 'string' ? handledId : randomUUID();
      options.logger.debug('request refused before it could be read', { requestId, status: refusal.status, reason: error.code });
      return answerBytes(refusal, requestId, options.corsGrant(handled?.req.headers.origin), headOnly);
    },
    // The client of a request refused mid-body (408, a broken chunked body, a chunk extension too large) may
    // still be sending it: dropped within bounds, so that it reads the refusal rather than a reset.
    close: (socket) => lingeringClose(socket, options.linger),
  });
}

/**
 * The server's `connect` listener: a CONNECT request (a proxy's method, its target a host and port) reaches no
 * request handler, and without a listener Node drops its connection unanswered, with nothing logged. Refused as
 * every other method the gateway does not serve is (405, in the envelope of every refusal), then closed: what
 * follows its head would be a tunnel's bytes.
 */
export function connectRefuser(options: Pick<ClientErrorOptions, 'logger' | 'corsGrant'>): (req: IncomingMessage, socket: Socket) => void {
  return (req, socket) => {
    // Node takes its own listeners off a socket handed over for CONNECT: a reset unheard would end the process.
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(req);
    options.logger.debug('request refused before its path was looked at', { requestId, status: 405 });
    const refusal = {
      status: 405,
      code: HttpRefusalCode.METHOD_NOT_ALLOWED,
      message: 'CONNECT is not supported: the gateway is no proxy. GraphQL is served on /graphql (GET and POST), health on /healthz',
    };
    // Its headers read, it is answered in the media type its Accept prefers, as the handler's refusals are.
    socket.write(answerBytes(refusal, requestId, [['Allow', 'GET, POST, OPTIONS'], ...options.corsGrant(req.headers.origin)], false, refusalMediaType(req.headers.accept)));
    // As a refusal of Node's parser is closed (clientErrorHandler): at once when the kernel did not take it all.
    if (socket.writableLength === 0) socket.destroySoon();
    else socket.destroy();
  };
}

/** What a server answering Node's refusals itself says of them (the gateway's, the emulator's). */
export interface ClientErrorResponder<R extends { status: number }> {
  /** The refusal of `error` (see clientErrorKind); `undefined` for a connection that failed, not a request. */
  refusalFor(error: ClientError): R | undefined;
  /** Told of a refusal not answered, as answers to earlier requests on its connection are owed first. */
  answeredBehind?(refusal: R, error: ClientError): void;
  /**
   * The whole answer's bytes (see responseBytes), for the request the handler holds when its headers were read
   * (`handled`, see requestBeingRead), a HEAD's (`headOnly`) without its body.
   */
  answer(refusal: R, error: ClientError, handled: ServerResponse | undefined, headOnly: boolean): Buffer;
  /** Closes the connection once the refusal is handed to the kernel; unset, `destroySoon` (its FIN, then closed). */
  close?(socket: Socket): void;
}

/**
 * A `clientError` listener: answers what Node's parser refused, as `responder` says, then closes the
 * connection, under the rules Node's own answer keeps (lib/_http_server.js, socketOnError).
 */
export function clientErrorHandler<R extends { status: number }>(responder: ClientErrorResponder<R>): (error: ClientError, socket: Socket) => void {
  // Node goes on feeding its failed parser what arrives until the connection closes, each time one more
  // `clientError`: the first one was answered.
  const answered = new WeakSet<Socket>();
  return (error, socket) => {
    if (answered.has(socket)) return;
    const refusal = responder.refusalFor(error);
    // A connection that failed (ECONNRESET, EPIPE) has nobody to answer.
    if (refusal === undefined || !socket.writable) {
      socket.destroy();
      return;
    }
    // An earlier request on the connection (pipelined before this one, or one whose client sent more bytes than
    // its Content-Length) still owed its answer, begun or not: a refusal written now would be the first answer on
    // the wire, which its client reads as that request's (Node's own does so, and destroys the connection: the
    // request is carried out, its answer lost). Those answers alone are sent; the connection closes after them,
    // Node reading no request past this one.
    if (responseInFlight(socket)?.req.complete === true) {
      answered.add(socket);
      responder.answeredBehind?.(refusal, error);
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
    // A HEAD's answer has no body (RFC 9110 9.3.2): a client reads the bytes after its head as a next answer
    // (Node's fails the request). Known only of a request whose headers were read; see requestBeingRead.
    const headOnly = handled?.req.method === 'HEAD';
    socket.write(responder.answer(refusal, error, handled, headOnly));
    // Closed once the answer is handed to the kernel: a request Node could not read leaves nothing on the
    // connection to read the next one from. (The answer of a request still arriving, should it be made, is
    // held back by Node, the socket being no longer writable.)
    if (socket.writableLength === 0) (responder.close ?? destroySoon)(socket);
    // One the kernel did not take at once waits for a client that is not reading (a large answer before
    // it, untaken): waited for, it held the connection, which Node's sweeps take for busy, until its
    // keep-alive deadline and every shutdown to its grace period's end. Dropped instead, as Node drops its own.
    else socket.destroy();
  };
}

/**
 * What is wrong with `req`'s Host headers for RFC 9112 §3.2, which has a server answer 400: `missing` for an HTTP/1.1
 * request without one (Node refuses it itself, with a bare 400 and no `clientError`, unless its server is made with
 * `requireHostHeader: false`, as the gateway's and the emulator's are, to answer it in their own shape); `repeated`
 * for any request with more than one. Node keeps the first of several in `req.headers` and drops the others, so
 * a check of the host (open mode's loopback names, the emulator's names) read one name where a proxy in front, or
 * any other reader, may take another.
 */
export function hostHeaderFault(req: IncomingMessage): 'missing' | 'repeated' | undefined {
  const hosts = req.headersDistinct.host?.length ?? 0;
  if (hosts > 1) return 'repeated';
  return hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1 ? 'missing' : undefined;
}

/**
 * Whether `req` is an HTTP/1.0 request with a `Transfer-Encoding`, which HTTP/1.0 does not have. Node decodes its
 * body as chunked and keeps its connection for the next request; a proxy in front may have framed it otherwise (by its
 * `Content-Length`, or to the connection's end), so what Node reads after it may be part of its body: a request
 * smuggled past that proxy. RFC 9112 §6.1 has its framing taken as faulty and the connection closed (nginx answers 400).
 */
export function hasHttp10TransferEncoding(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined;
}

/**
 * A server's options for how long a request may take to arrive whole, headers and body: one deadline for both, so
 * that the 408 names the one that ran out (Node's own are 60 s for the headers and 5 minutes for the whole), checked
 * often enough to be kept (Node checks every 30 s by default).
 */
export function receiveDeadlines(requestReceiveTimeoutMs: number): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  return {
    requestTimeout: requestReceiveTimeoutMs,
    headersTimeout: requestReceiveTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, requestReceiveTimeoutMs / 4)),
  };
}

/**
 * Has `server` read every header of a request into `req.headers`: by default Node keeps the first 1,000 and drops the
 * rest unsaid, while its parser still frames the body by them, so a Transfer-Encoding of HTTP/1.0
 * (hasHttp10TransferEncoding) or a second Host (hostHeaderFault) behind 1,000 others went unseen, the first a request
 * smuggled. Node's limit on their size (HEADER_LIMIT) still bounds them: 16 KiB holds ~4,000 at most.
 */
export function readEveryHeader(server: Server): void {
  server.maxHeadersCount = 0;
}

/** Node's limit on a request line and headers (16 KiB unless `--max-http-header-size` says otherwise). */
export const HEADER_LIMIT = maxHeaderSize % 1024 === 0 ? `${maxHeaderSize / 1024} KiB` : `${maxHeaderSize} bytes`;

interface ClientRefusal {
  status: number;
  code: HttpRefusalCode;
  message: string;
}

/**
 * What Node's parser refused, with Node's status for it: the request line and headers too large (431), a chunk
 * extension too large (413), a request that did not arrive in time (408), or malformed HTTP (400, with
 * llhttp's reason, one of its own fixed phrases such as "Invalid method encountered", never the request's
 * bytes). `undefined` for a connection that failed, not a request.
 */
export type ClientErrorKind =
  | { status: 431; kind: 'headers too large' }
  | { status: 413; kind: 'chunk extension too large' }
  | { status: 408; kind: 'too slow' }
  | { status: 400; kind: 'malformed'; reason: string | undefined };

export function clientErrorKind(error: ClientError): ClientErrorKind | undefined {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, kind: 'headers too large' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, kind: 'chunk extension too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, kind: 'too slow' };
  }
  // The client closed its side before its request was whole (it left mid-body): a connection that ended, as
  // the handler sees a request whose client left (its own debug line says so), not a request to answer.
  if (error.code === 'HPE_INVALID_EOF_STATE' || !error.code?.startsWith('HPE_')) return undefined;
  return { status: 400, kind: 'malformed', reason: 'reason' in error && typeof error.reason === 'string' ? error.reason : undefined };
}

/** The gateway's refusal of `error` (see clientErrorKind). */
function refusalFor(error: ClientError, requestReceiveTimeoutMs: number): ClientRefusal | undefined {
  const refused = clientErrorKind(error);
  switch (refused?.kind) {
    case undefined:
      return undefined;
    case 'headers too large':
      return {
        status: 431,
        code: HttpRefusalCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
        message: `The request line and headers exceed ${HEADER_LIMIT}: send a long document by POST, as JSON in the body, rather than in a GET's query string`,
      };
    case 'chunk extension too large':
      return { status: 413, code: HttpRefusalCode.PAYLOAD_TOO_LARGE, message: 'A chunk extension of the request body is larger than accepted: send the body without chunk extensions' };
    case 'too slow':
      return {
        status: 408,
        code: HttpRefusalCode.REQUEST_TIMEOUT,
        message: `The request did not arrive whole within ${requestReceiveTimeoutMs / 1000} s: send its headers and body at once`,
      };
    case 'malformed':
      return {
        status: 400,
        code: HttpRefusalCode.BAD_REQUEST,
        message: `The request is not valid HTTP/1.1${refused.reason === undefined ? '' : ` (${refused.reason})`}: check its request line, its headers and the framing of its body`,
      };
  }
}

const destroySoon = (socket: Socket): void => {
  socket.destroySoon();
};

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
 * The gateway's whole answer, with the headers every answer of the gateway's carries (EVERY_ANSWER_HEADERS, a
 * request id, and `headers`: the request's CORS grant, any of the refusal's own), in `mediaType`: application/json
 * unless told (a request Node's parser refused has no Accept header read).
 */
function answerBytes({ status, code, message }: ClientRefusal, requestId: string, headers: Array<[string, string]>, headOnly: boolean, mediaType = 'application/json; charset=utf-8'): Buffer {
  return responseBytes(status, [['Content-Type', mediaType], ...EVERY_ANSWER_HEADERS, ['X-Request-Id', requestId], ...headers], JSON.stringify(graphqlError(message, code)), headOnly);
}

/**
 * A whole answer that closes its connection, as Node's ServerResponse would write it: `headers`, then its
 * Content-Length, Date and Connection, and `body`, left out for a HEAD (whose head says the length the body
 * would have had, as Node's ServerResponse writes it).
 */
export function responseBytes(status: number, headers: Iterable<readonly [string, string]>, body: string, headOnly: boolean): Buffer {
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    ...[...headers].map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Date: ${new Date().toUTCString()}`,
    'Connection: close',
  ];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${headOnly ? '' : body}`);
}
