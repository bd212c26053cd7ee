import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { messageOf, type Logger } from '../logging/logger.ts';
import { lingerAfterLastAnswer, type LingerBounds } from './linger.ts';
import { requestIdGivenBy } from './request.ts';
import { unrefTimer, type WaitTimer } from '../support/wait-timer.ts';

/** Requests one connection may have open at once (HTTP pipelining); a connection past it is closed. */
const MAX_PIPELINED = 32;

export interface ConnectionsOptions {
  logger: Logger;
  /** How long an answer may wait for its client to take any of it (GatewayOptions.answerStallTimeoutMs). */
  answerStallTimeoutMs: number;
  /** The timer of the stall watch's checks (GatewayOptions.answerStallTimer); unset, real timers, unref'd. */
  stallTimer?: WaitTimer | undefined;
  /** Whether shutdown (or its drain) has begun: from then each answer closes its connection. */
  shuttingDown(): boolean;
  /** The bounds of the lingering close of a connection answered before its request's body arrived (linger.ts). */
  linger: LingerBounds;
}

/** What the gateway's connections carry at once: the responses open on each, and their answers' progress. */
export interface Connections {
  /** The `ServerResponse` class for `createServer`: decides, as each answer begins, whether it closes its connection, and watches it for a stall. */
  readonly Response: typeof ServerResponse<IncomingMessage>;
  /**
   * Tracks a new request's response until it closes; false (the request is then not to be handled) when an
   * answer ahead of it closes the connection, or when its connection now has more than MAX_PIPELINED open,
   * which destroys the connection.
   */
  admit(req: IncomingMessage, res: ServerResponse): boolean;
  /** Whether `res` was cut because an answer on its connection took too long to be taken (its log line says so). */
  answerStalled(res: ServerResponse): boolean;
}

export function createConnections(options: ConnectionsOptions): Connections {
  const { logger, answerStallTimeoutMs, shuttingDown, linger } = options;
  const stallTimer: WaitTimer = options.stallTimer ?? unrefTimer;
  /**
   * The gateway's responses: once shutdown (or the drain) has begun, each answer closes its connection, so
   * its client reconnects elsewhere: decided as the answer begins, whenever its request arrived. (One begun
   * before has promised to keep its connection; the idle sweep closes it once it is idle.) Not while other
   * answers wait behind it on the connection (pipelining): Node would drop them, their operations done; the
   * last of them closes it.
   */
  class GatewayResponse extends ServerResponse {
    override writeHead(statusCode: number, statusMessage?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
      if (shuttingDown() && !this.headersSent && !answersQueuedBehind(this)) this.setHeader('connection', 'close');
      // An answer begun before its request's body is all in (a refusal: 415, 405, 404, a wrong Host, a 413, a 401
      // past MAX_BODY_BYTES) closes its connection: Node would otherwise read and discard the rest, however long,
      // until the request's deadline (gigabytes in a test). Closed lingering (linger.ts): what its client still
      // sends is dropped, within bounds, so that a client sending its body whole before it reads gets the answer
      // rather than a reset. A body the gateway reads is all in before its answer begins.
      if (!this.headersSent && !this.req.complete && hasBody(this.req)) {
        this.setHeader('connection', 'close');
        lingerAfterLastAnswer(this.req.socket, linger);
      }
      if (!this.headersSent) watchForStall(this);
      // Node reads the headers from either position, as its own writeHead is called.
      return super.writeHead(statusCode, statusMessage as string | undefined, headers);
    }
  }
  /**
   * Whether answers to requests that arrived after `res`'s on its connection are still open. Only those: an
   * answer still being made ahead of it (a slow operation, which one made sooner waits behind) is no reason
   * to keep the connection; counted too, no answer made during shutdown behind a slower one closed it, and
   * their client was told to keep a connection that the shutdown then closed under it.
   */
  const answersQueuedBehind = (res: ServerResponse): boolean => {
    // In the order their requests arrived (a Set keeps its insertion order): none behind `res` when it is last.
    let last: ServerResponse | undefined;
    for (const open of openBySocket.get(res.req.socket) ?? []) last = open;
    return last !== undefined && last !== res;
  };
  /** Whether an answer ahead of `res` on `socket` has said it closes the connection (Node then closes it after that answer). */
  const closesAhead = (socket: Socket, res: ServerResponse): boolean => {
    for (const open of openBySocket.get(socket) ?? []) {
      if (open === res) return false;
      if ((open as ServerResponse & { _last?: boolean })._last === true) return true;
    }
    return false;
  };
  /**
   * From its first byte until it is all handed over (its end comes only then, respond.ts), an answer whose
   * client takes none of it for `answerStallTimeoutMs` is cut. Not by the socket's idle timer: at its first
   * expiry Node compares what is left of the write with the whole write, so the part the kernel took at once
   * counted as progress, and a client that then took nothing was cut only after twice the time. What is left
   * of the answer in the process (the socket's buffer, and the write the kernel has not all taken) is looked
   * at instead, a quarter of that time apart: unchanged for the whole time, the client took none of it. The
   * kernel takes more only once a third of its send buffer (up to 4 MiB) has drained, so a steady client is
   * cut only when slower than ~11 KB/s (why: DEFAULTS.answerStallTimeoutMs).
   */
  const stalledAnswers = new WeakSet<ServerResponse>();
  const watchForStall = (res: ServerResponse) => {
    const socket = res.socket;
    if (!socket) {
      // Queued behind another answer on its connection (pipelining): watched from its turn.
      res.once('socket', () => watchForStall(res));
      return;
    }
    // libuv's queue of the write under way: undocumented, but what Node's own idle timer reads for the same purpose.
    const left = () => socket.writableLength + ((socket as Socket & { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0);
    const every = answerStallTimeoutMs / 4;
    let lastLeft = left();
    let stillFor = 0;
    const check = () => {
      const now = left();
      stillFor = now === lastLeft ? stillFor + every : 0;
      lastLeft = now;
      if (stillFor < answerStallTimeoutMs) {
        cancel = stallTimer(check, every);
        return;
      }
      // Those queued behind it on the connection go with it, for the same reason.
      for (const cut of openBySocket.get(socket) ?? [res]) stalledAnswers.add(cut);
      res.destroy();
    };
    let cancel = stallTimer(check, every);
    const stop = () => cancel();
    res.once('prefinish', stop);
    res.once('close', stop);
  };
  /**
   * Responses not yet closed, by connection. Node 20 never closes a response queued behind another on a
   * connection (pipelining) when that connection drops; those are closed here, so their operations stop and
   * their log lines are written.
   */
  const openBySocket = new WeakMap<Socket, Set<ServerResponse>>();
  const trackUntilClosed = (socket: Socket, res: ServerResponse) => {
    let open = openBySocket.get(socket);
    if (open === undefined) {
      const responses = new Set<ServerResponse>();
      open = responses;
      openBySocket.set(socket, responses);
      // After Node's own close of the response it was writing, which comes in the same turn; as Node closes
      // one (destroyed, and marked closed, so that whatever waits on it with `finished()` sees it end).
      socket.once('close', () =>
        setImmediate(() => {
          for (const left of [...responses]) {
            try {
              left.destroy();
              (left as unknown as { _closed: boolean })._closed = true;
              left.emit('close');
            } catch (error) {
              // One response's cleanup failing must not leave the others open.
              const requestId = left.getHeader('x-request-id');
              logger.error('closing a response its connection dropped failed', { ...(typeof requestId === 'string' ? { requestId } : {}), error: messageOf(error) });
            }
          }
        }),
      );
    }
    const responses = open;
    responses.add(res);
    res.once('close', () => responses.delete(res));
    return responses.size;
  };

  return {
    Response: GatewayResponse,
    admit(req, res) {
      if (trackUntilClosed(req.socket, res) <= MAX_PIPELINED) {
        // One that closed the connection may be over already: Node parses what follows a request's body only once
        // that body is read, and an answer refusing it unread (a 415 decided as its headers arrive) has ended the
        // connection's writing side by then, and left the connection's responses.
        if (!closesAhead(req.socket, res) && !req.socket.writableEnded) return true;
        // An answer ahead of it that closes the connection (a refusal's, one made during shutdown) is the last
        // the client gets on it: Node drops those behind it. Run, its operation would be made for nobody (a
        // mutation its client retries elsewhere, made twice); RFC 9112 §9.6 says not to process it. It closes
        // with the connection; held to MAX_PIPELINED as any other until then (below), or a client could pile
        // up requests behind a slow answer without bound.
        logger.debug('request not run: its connection closes after an answer ahead of it', givenRequestId(req));
        return false;
      }
      // The rest of what it sent in the same read may still arrive here: said once.
      if (req.socket.destroyed) return false;
      // Node runs every request a connection pipelines at once: 3,000 sent in one write ran 3,000
      // operations, holding every upstream connection from other clients. A client waits for answers long
      // before this many; one that does not loses its connection, and its operations stop with it.
      logger.warn('connection closed: it pipelined more requests than the gateway runs at once for one connection', {
        ...givenRequestId(req),
        maximum: MAX_PIPELINED,
      });
      req.socket.destroy();
      return false;
    },
    answerStalled: (res) => stalledAnswers.has(res),
  };
}

/**
 * The request id of a request that is not run, as a log field: the client's own, when it sent one, which it can
 * look up; none otherwise, since no answer will carry one made up here (every other line of a request is keyed
 * by the id its answer carries).
 */
function givenRequestId(req: IncomingMessage): { requestId?: string } {
  const requestId = requestIdGivenBy(req);
  return requestId === undefined ? {} : { requestId };
}

/** Whether a request comes with a body (framed by its length, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
