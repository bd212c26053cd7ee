import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createApollo } from '../graphql/apollo.ts';
import type { EgressProxy } from '../upstream/egress-proxy.ts';
import { createGatewayAccess, type GatewayAccess, type GatewayAccessOptions } from '../auth/index.ts';
import { contextDeps, type OperationOutcome } from '../graphql/context.ts';
import { DEFAULTS, maxAnswerBytesInFlightFor } from '../config/defaults.ts';
import { ErrorCode, HttpRefusalCode } from '../errors.ts';
import { AnswerAdmission, BodyAdmission, OperationAdmission } from './admission.ts';
import { clientErrorAnswerer, connectRefuser, hasHttp10TransferEncoding, hostHeaderFault, readEveryHeader, receiveDeadlines } from './client-error.ts';
import { createConnections, type Connections } from './connections.ts';
import { leftMidRequest, RequestGone } from './body.ts';
import { serveGraphql, type EndpointParts } from './graphql-endpoint.ts';
import { LOAD_REFUSAL_LOG_INTERVAL_MS, sayRefusalsForLoadUnsaid } from './load-refusals.ts';
import { headerAsSent, refusalMediaType, requestIdOf, requestUrlOf } from './request.ts';
import { EVERY_ANSWER_HEADERS, graphqlError, sendJson } from './respond.ts';
import { Shutdown } from './shutdown.ts';
import { isOutOfFileDescriptors } from '../support/file-descriptors.ts';
import { createIde, type Ide } from '../ide/index.ts';
import { CallerReadBudget } from '../limits/caller-reads.ts';
import { CallerWriteBudget } from '../limits/caller-writes.ts';
import { answerTooLargeBody, resolveLimits, upstreamRequestBudget, type OperationLimits } from '../limits/index.ts';
import { LineThrottle } from '../logging/line-throttle.ts';
import { lingerBounds, type LingerBounds } from './linger.ts';
import { listenOn } from './listen.ts';
import { messageOf, type Logger } from '../logging/logger.ts';
import { OperationScope } from '../upstream/cancellation.ts';
import { UpstreamClient } from '../upstream/client.ts';
import { shortened } from '../support/shortened.ts';
import { urlHostOf } from '../support/url.ts';
import type { WaitTimer } from '../support/wait-timer.ts';

/** `auth`, `corsOrigins`, `introspection`: see src/auth; without `auth` the gateway runs open, on loopback only. */
export interface GatewayOptions extends GatewayAccessOptions {
  port: number;
  host: string;
  /** `proxy`: the egress proxy the upstream is reached through, if any. */
  upstream: { baseUrl: string; consumerKey: string; consumerSecret: string; proxy?: EgressProxy | undefined };
  upstreamTimeoutMs: number;
  upstreamMaxInFlight: number;
  development: boolean;
  logger: Logger;
  /** Whether a browser opening /graphql gets the GraphQL IDE (default true); off, it gets a 404 page saying so. */
  ide?: boolean;
  /** Largest request body accepted; larger ones get 413 before they are read whole. */
  maxBodyBytes?: number;
  /** Largest answer sent; a larger one is replaced by a QUERY_TOO_COMPLEX error. Default 64 MiB. */
  maxAnswerBytes?: number;
  /** Operations running at once; past it one is refused with 503 and Retry-After before it runs. Default 1,000. */
  maxOperationsInFlight?: number;
  /**
   * Bytes of request bodies held at once while they arrive (each by its declared length; one without, as
   * maxBodyBytes); past it a body is refused with 503 and Retry-After before it is read. Default 128 MiB;
   * below maxBodyBytes, startGateway throws.
   */
  maxBodyBytesInFlight?: number;
  /**
   * Bytes of answers held at once for clients that have not taken them (each from when it is written until
   * it has all left the process or its response closed); past it a new operation is refused with 503 and
   * Retry-After before it runs, and no answer already made is cut. Default 256 MiB, or maxAnswerBytes when
   * that is more; below maxAnswerBytes, startGateway throws.
   */
  maxAnswerBytesInFlight?: number;
  /** Depth, aliases, root fields and estimated cost an operation may reach (docs/limits.md); unset ones keep their defaults. */
  operationLimits?: Partial<OperationLimits>;
  /** Deadline of a whole operation; its upstream calls still out then fail as UPSTREAM_TIMEOUT (RATE_LIMITED those waiting out a rate-limit pause; one whose error status had arrived, its body still coming, as that status). Default 30 s. */
  operationTimeoutMs?: number;
  /** How long `close()` lets in-flight operations finish before it cuts them off. Default 10 s. */
  shutdownGraceMs?: number;
  /**
   * How long `close()` keeps accepting connections, with `/healthz` at 503, before it closes the listener
   * and the grace period begins: a load balancer takes a while to notice, and connections it opens after
   * the listener closed would be refused or reset. Default 0.
   */
  shutdownDrainMs?: number;
  /**
   * How long a client may take to send a whole request, headers and body; then it gets 408 and the
   * connection is closed. Default 30 s (Node's own is 5 minutes: a client trickling a body a byte at a
   * time would hold a connection that long).
   */
  requestReceiveTimeoutMs?: number;
  /**
   * How long an idle keep-alive connection waits for the client's next request before it is closed. Default
   * 72 s (DEFAULTS.keepAliveTimeoutMs): longer than a load balancer's own idle timeout, or it gets 502s.
   */
  keepAliveTimeoutMs?: number;
  /**
   * How long an answer may wait for its client to take any of it; then the connection is closed and the
   * answer's memory freed. Default 2 minutes (DEFAULTS.answerStallTimeoutMs): a client that stops reading
   * would otherwise hold its whole answer in the gateway for as long as it keeps the connection open.
   */
  answerStallTimeoutMs?: number;
  /**
   * Upstream writes (mutations) each caller without the admin scope may make in any hour; past it they are
   * refused `RATE_LIMITED` before any upstream call. Default 60; 0 turns the budget off.
   */
  callerWritesPerHour?: number;
  /**
   * Upstream reads each caller without the admin scope may make an hour (a bucket of so many, refilled at
   * that rate); past it they fail `RATE_LIMITED` before any upstream call. Default 1,000; 0 turns it off.
   */
  callerReadsPerHour?: number;
  /** Consecutive upstream failures that open the circuit breaker (default 5), and how long it stays open (5 s). */
  breakerFailureThreshold?: number;
  breakerCooldownMs?: number;
  /** The timer of the upstream client's waits between attempts and out of rate-limit pauses (`UpstreamClientOptions.waitTimer`); for tests. */
  upstreamWaitTimer?: WaitTimer;
  /**
   * The timer of `close()`'s waits: the drain (shutdownDrainMs), the grace period (shutdownGraceMs), the cut of
   * the connections still open a second after it, and the wait of up to a second for the last operation lines.
   * For tests, to end each when they choose instead of racing real time; unset, real timers.
   */
  shutdownTimer?: WaitTimer;
  /** The timer of the checks an answer is watched for a stall by (answerStallTimeoutMs); for tests, unset real timers. */
  answerStallTimer?: WaitTimer;
  /** The timer of the end of a lingering close (LINGER_MS, src/http/linger.ts); for tests, unset real timers. */
  lingerTimer?: WaitTimer;
}

export interface Gateway {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  readonly url: string;
  readonly origin: string;
  readonly httpServer: Server;
  /**
   * Fails `/healthz` and closes each connection after its answer; once the drain period is over, stops
   * accepting connections, lets in-flight operations finish within the grace period (then aborts them, so
   * each still gets an answer), then closes the upstream pool and the key set's connections through the egress
   * proxy. A second call returns the same shutdown.
   */
  close(): Promise<void>;
  /**
   * What keeps the upstream from serving operations now (a wrong URL or key pair, an upstream down), from one
   * call of the cheapest kind (`GET /accounts?limit=1`), as any operation's call would fail: `undefined` when
   * it answered. For a check at start, which the health check (the gateway's own) cannot make.
   */
  upstreamProblem(): Promise<string | undefined>;
  /**
   * What keeps AUTH_JWKS_URL's key set from verifying tokens now (undefined without one), from one fetch of it;
   * the private keys and secrets it publishes are said as they are found, once, as verifying a token says them.
   */
  keySetProblem(): Promise<string | undefined>;
}

/**
 * Starts the gateway: an HTTP server whose `/graphql` hands requests to Apollo Server, whose resolvers
 * reach the upstream only through the request's loaders and the one upstream client.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  /** What the start has opened so far, each with its close, the latest first. */
  const opened: Array<() => Promise<unknown>> = [];
  try {
    return await startOpening(options, (close) => opened.unshift(close));
  } catch (error) {
    // A start that fails (its port in use, its host not this machine's) must leave nothing open: a program
    // embedding the gateway, or a test, gets the error and no gateway to close. Today what is made before
    // listening holds no socket or timer until used (undici's pools connect lazily; Apollo runs without signal
    // handlers or reporting), but a failed start does not rely on that. The caller gets the start's own error,
    // whatever a close says.
    for (const close of opened) await close().catch(() => undefined);
    throw error;
  }
}

/** `startGateway`'s steps, each part that needs closing handed to `opened` as soon as it exists. */
async function startOpening(options: GatewayOptions, opened: (close: () => Promise<unknown>) => void): Promise<Gateway> {
  const { logger } = options;
  // Before anything is started that would have to be stopped.
  const { maxBodyBytesInFlight, maxAnswerBytesInFlight } = heldBytesCaps(options);
  const access = createGatewayAccess(options, logger);
  opened(() => access.close());
  const client = new UpstreamClient({
    ...options.upstream,
    timeoutMs: options.upstreamTimeoutMs,
    maxInFlight: options.upstreamMaxInFlight,
    logger,
    breakerFailureThreshold: options.breakerFailureThreshold,
    breakerCooldownMs: options.breakerCooldownMs,
    waitTimer: options.upstreamWaitTimer,
  });
  opened(() => client.close());
  const operationTimeoutMs = options.operationTimeoutMs ?? DEFAULTS.operationTimeoutMs;
  if (operationTimeoutMs <= options.upstreamTimeoutMs) {
    // Allowed (an operator may want operations cut sooner), but it disarms a protection: the breaker counts
    // only calls that ran out of their own UPSTREAM_TIMEOUT_MS, never ones their operation stopped first.
    logger.announce('warn', 'OPERATION_TIMEOUT_MS is not above UPSTREAM_TIMEOUT_MS: operations end before their upstream calls time out, so an upstream that stops answering never opens the circuit breaker and every operation waits out its deadline; set UPSTREAM_TIMEOUT_MS below OPERATION_TIMEOUT_MS', {
      operationTimeoutMs,
      upstreamTimeoutMs: options.upstreamTimeoutMs,
    });
  }
  const shutdown = new Shutdown({
    logger,
    drainMs: options.shutdownDrainMs ?? DEFAULTS.shutdownDrainMs,
    graceMs: options.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs,
    timer: options.shutdownTimer,
  });
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const linger = lingerBounds(maxBodyBytes, options.lingerTimer);
  const connections = createConnections({
    logger,
    linger,
    answerStallTimeoutMs: options.answerStallTimeoutMs ?? DEFAULTS.answerStallTimeoutMs,
    stallTimer: options.answerStallTimer,
    shuttingDown: () => shutdown.begun,
  });

  const limits = resolveLimits(options.operationLimits);
  const requestBudget = upstreamRequestBudget(limits);
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULTS.maxAnswerBytes;
  // What Apollo answers for a result larger than one JavaScript string can hold; recognized by sendAnswer
  // (graphql-endpoint.ts) to log it.
  const unmakeableAnswer = answerTooLargeBody(undefined, maxAnswerBytes, true);
  const apollo = createApollo({ limits, unmakeableAnswer, logger, development: options.development, introspection: access.introspection });
  await apollo.start();
  opened(() => apollo.stop());

  const callerWritesPerHour = options.callerWritesPerHour ?? DEFAULTS.callerWritesPerHour;
  const callerReadsPerHour = options.callerReadsPerHour ?? DEFAULTS.callerReadsPerHour;
  // Open, every caller is an admin: nothing would count.
  const deps = contextDeps(client, options.upstream.consumerSecret, {
    writes: callerWritesPerHour > 0 && !access.open ? new CallerWriteBudget(callerWritesPerHour) : undefined,
    reads: callerReadsPerHour > 0 && !access.open ? new CallerReadBudget(callerReadsPerHour) : undefined,
  });
  const ide = createIde({ enabled: options.ide ?? true, tokenRequired: !access.open, introspection: access.introspection });

  const refusalsForLoad = new LineThrottle(LOAD_REFUSAL_LOG_INTERVAL_MS);
  const handle = createHandler({
    logger,
    access,
    ide,
    apollo,
    deps,
    requestBudget,
    operationTimeoutMs,
    maxBodyBytes,
    maxAnswerBytes,
    maxDocumentLines: limits.maxTokens,
    unmakeableAnswer,
    shutdown,
    connections,
    admission: new OperationAdmission(maxOperationsInFlightOf(options)),
    bodyAdmission: new BodyAdmission(maxBodyBytesInFlight),
    answerAdmission: new AnswerAdmission(maxAnswerBytesInFlight),
    refusalsForLoad,
  });

  const acceptFailures = new LineThrottle(ACCEPT_FAILURE_LOG_INTERVAL_MS);
  const httpServer = await listen(options, handle, connections, shutdown, acceptFailures, access.corsGrant, linger);
  const { port } = httpServer.address() as AddressInfo;
  const origin = `http://${urlHostOf(options.host)}:${port}`;

  /**
   * The checks of the upstream at start (`upstreamProblem`) still out: stopped when shutdown begins, as calls
   * nobody waits for any more. Left to the client's close, each was said as a connection to the upstream that failed.
   */
  const startChecks = new Set<OperationScope>();
  let closing: Promise<void> | undefined;
  async function shutDown(): Promise<void> {
    for (const check of startChecks) check.abort(new Error('The gateway is shutting down: nobody waits for its check of the upstream'));
    await shutdown.closeServer(httpServer);
    await apollo.stop();
    await client.close();
    await access.close();
    // The counts of throttled lines still unsaid: no later line of theirs, and no quiet interval, will say them.
    for (const [load, unsaid] of refusalsForLoad.unsaidAtEnd()) sayRefusalsForLoadUnsaid(logger, load, unsaid);
    for (const [failure, unsaid] of acceptFailures.unsaidAtEnd()) sayAcceptFailuresUnsaid(logger, failure, unsaid);
  }

  return {
    url: `${origin}/graphql`,
    origin,
    httpServer,
    close() {
      return (closing ??= shutDown());
    },
    // Its log lines (the client's) name it as an operation's name their request.
    upstreamProblem: () => {
      const check = new OperationScope('start-check');
      startChecks.add(check);
      return client
        .listAccounts({ limit: 1, offset: 0 }, check)
        .then(() => undefined, messageOf)
        .finally(() => startChecks.delete(check));
    },
    keySetProblem: () => access.keySetProblem(),
  };
}

/**
 * The caps on the bytes held at once for bodies arriving and answers not yet taken, from `options` or their
 * defaults. Each must hold one body (answer) of the largest size, as the environment's configuration requires:
 * below it, every body without a declared length (chunked) would be refused, or one answer of that size held
 * would hold back every operation. Refused here too (the gateway does not start), so that programmatic starts
 * are held to the same rule.
 */
function heldBytesCaps(options: GatewayOptions): { maxBodyBytesInFlight: number; maxAnswerBytesInFlight: number } {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULTS.maxAnswerBytes;
  const maxBodyBytesInFlight = options.maxBodyBytesInFlight ?? DEFAULTS.maxBodyBytesInFlight;
  if (maxBodyBytesInFlight < maxBodyBytes) throw new Error(`maxBodyBytesInFlight (${maxBodyBytesInFlight}) must be at least maxBodyBytes (${maxBodyBytes})`);
  const maxAnswerBytesInFlight = options.maxAnswerBytesInFlight ?? maxAnswerBytesInFlightFor(maxAnswerBytes);
  if (maxAnswerBytesInFlight < maxAnswerBytes) throw new Error(`maxAnswerBytesInFlight (${maxAnswerBytesInFlight}) must be at least maxAnswerBytes (${maxAnswerBytes})`);
  return { maxBodyBytesInFlight, maxAnswerBytesInFlight };
}

/**
 * The gateway's HTTP server, listening on `options.port` and `options.host`: each request admitted by
 * `connections` goes to `handle`, and what escapes it (a bug) is answered 500.
 */
async function listen(
  options: GatewayOptions,
  handle: Handler,
  connections: Connections,
  shutdown: Shutdown,
  acceptFailures: LineThrottle,
  corsGrant: GatewayAccess['corsGrant'],
  linger: LingerBounds,
): Promise<Server> {
  const { logger } = options;
  const requestReceiveTimeoutMs = options.requestReceiveTimeoutMs ?? DEFAULTS.requestReceiveTimeoutMs;
  const httpServer = createServer(
    {
      ServerResponse: connections.Response,
      ...receiveDeadlines(requestReceiveTimeoutMs),
      // Node refuses an HTTP/1.1 request without Host itself, with a bare 400 (no body, none of the headers
      // every answer carries) and no `clientError`: the handler refuses it instead (hostHeaderFault).
      requireHostHeader: false,
    },
    (req, res) => {
      if (!connections.admit(req, res)) return;
      const requestId = requestIdOf(req);
      const outcome: OperationOutcome = { errorCodes: new Set(), limits: new Set() };
      handle(req, res, requestId, outcome).catch((error: unknown) => {
        if (leftMidRequest(req) || error instanceof RequestGone) {
          logger.debug('the client left before its request was complete', { requestId, error: messageOf(error) });
          return;
        }
        logger.error('request failed', { requestId, error: messageOf(error) });
        outcome.errorCodes.add(ErrorCode.INTERNAL_SERVER_ERROR);
        // What escapes the handler escapes before its answer has begun: every answer is made whole, then written
        // (sendJson, endOnceFlushed; an IDE file whose stream fails destroys its response itself), and Apollo's
        // incremental answers, streamed by sendAnswer (graphql-endpoint.ts), need a graphql 17 the gateway does not use. The check is a
        // last resort all the same: sendJson on an answer begun would throw here (ERR_HTTP_HEADERS_SENT), a
        // rejection nobody handles, which ends the process.
        if (res.headersSent) res.destroy();
        else sendJson(res, 500, graphqlError('Unexpected error.', ErrorCode.INTERNAL_SERVER_ERROR));
      });
    },
  );
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs;
  httpServer.keepAliveTimeout = keepAliveTimeoutMs;
  readEveryHeader(httpServer);
  // What Node refuses before a request reaches the handler (headers past 16 KiB, a malformed request, one that
  // took too long to arrive) is answered in the envelope and with the headers of every other refusal (the CORS
  // grant when the request's headers were read).
  const answerClientError = clientErrorAnswerer({ logger, requestReceiveTimeoutMs, corsGrant, linger });
  httpServer.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    // Node times a connection's first request from its accept: one that has sent nothing yet has no request to
    // be late with. It is idle (closeOnceIdleUnused), and its first request gets the deadline from its first byte.
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0) return;
    answerClientError(error, socket);
  });
  httpServer.on('connect', connectRefuser({ logger, corsGrant }));
  httpServer.on('connection', (socket: Socket) => {
    shutdown.connectionOpened(socket);
    closeOnceIdleUnused(socket, keepAliveTimeoutMs);
    // Once failures have stopped for an interval, the next connection accepted says how many went unsaid
    // since their line: the count of a burst's end would otherwise wait for the next burst.
    for (const [failure, unsaid] of acceptFailures.unsaidOnceQuiet(performance.now())) sayAcceptFailuresUnsaid(logger, failure, unsaid);
  });
  // `Expect: 100-continue` requests are handled as any other; the handler sends the `100 Continue` itself, once
  // it means to read the body (readBody), where Node would send it before anything could be refused.
  httpServer.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => httpServer.emit('request', req, res));
  // Any other expectation too: the handler refuses it (417) in the envelope and with the headers of every
  // refusal, where Node's own 417 has neither.
  httpServer.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => httpServer.emit('request', req, res));
  // A burst of new connections as large as the operations let in at once is held by the system until taken and
  // answered (a 503 past the cap, at once), not left to retry its handshake a second or more later, as past
  // Node's default backlog of 511 (below MAX_OPERATIONS_IN_FLIGHT's default of 1,000) it was.
  await listenOn(httpServer, options.port, options.host, Math.max(DEFAULT_BACKLOG, maxOperationsInFlightOf(options)));
  // Node reports a connection it could not accept (the process out of file descriptors, EMFILE, when libuv
  // could not shed it by itself) as an error of the server: unheard, that ends the process. Said at error,
  // once a minute at most, with how many went unsaid. (Listened for once listening: a failure to listen is
  // start-up's to report.)
  httpServer.on('error', (error: NodeJS.ErrnoException) => {
    const due = acceptFailures.admit(error.code ?? error.message, performance.now());
    if (due) logger.error('a connection could not be accepted', { error: error.message, ...(isOutOfFileDescriptors(error.code) ? { hint: 'the process is out of file descriptors: raise its limit (ulimit -n, LimitNOFILE)' } : {}), ...due });
  });
  return httpServer;
}

/**
 * Closes `socket` once it has been open `keepAliveTimeoutMs` without sending a byte, as Node closes a connection
 * idle that long after an answer. A load balancer opens connections ahead of its requests and holds them for its
 * idle timeout (AWS's 60 s): closed sooner (Node's 408 at the request deadline, 30 s), the balancer's first
 * request on one races the close and its client gets a 502.
 */
function closeOnceIdleUnused(socket: Socket, keepAliveTimeoutMs: number): void {
  const timer = setTimeout(() => {
    if (socket.bytesRead === 0) socket.destroy();
  }, keepAliveTimeoutMs).unref();
  socket.once('close', () => clearTimeout(timer));
}

/** What the request handler works with, made once by startGateway: the IDE, and what `/graphql` works with. */
interface HandlerParts extends EndpointParts {
  ide: Ide;
}

/** One request's answer, its route picked and its refusals made before Apollo; `outcome` feeds its log line. */
type Handler = (req: IncomingMessage, res: ServerResponse, requestId: string, outcome: OperationOutcome) => Promise<void>;

/** Answers a refusal of the request with `status` and `error` (and any `headers`) in the media type its Accept prefers. */
type Refuse = (status: number, error: ReturnType<typeof graphqlError>, headers?: Record<string, string>) => void;

/** The request handler: the headers every answer carries (the CORS grant, but on the IDE's), open mode's host check, and the routes (`/healthz`, the IDE, `/graphql`). */
function createHandler(parts: HandlerParts): Handler {
  const { logger, access, ide, shutdown } = parts;
  return async (req, res, requestId, outcome) => {
    res.setHeader('x-request-id', requestId);
    for (const [name, value] of EVERY_ANSWER_HEADERS) res.setHeader(name, value);
    const url = requestUrlOf(req);
    // A frontend of an allowed origin reads an answer only with its grant (else it sees an opaque network
    // failure): every answer carries it, refusals made before the path is looked at and a 500 included. Not the
    // IDE's page and files: a browser opens them from the gateway's own origin, and its files are cached
    // publicly for a year, where one origin's grant would refuse every other origin the same file.
    if (url === undefined || !ide.owns(req, url)) access.grantCors(req, res);
    // Every refusal below, its headers read, in the media type its Accept prefers, as those of /graphql are.
    const refuse: Refuse = (status, error, headers) =>
      sendJson(res, status, error, { 'content-type': refusalMediaType(req.headers.accept), ...headers });
    // Refused on any path, so with no `operation` line: said at debug, as Node's own refusals of a request it
    // cannot read are (client-error.ts), by the request id its answer carries.
    const refuseUnrouted: Refuse = (status, error, headers) => {
      logger.debug('request refused before its path was looked at', { requestId, status });
      refuse(status, error, headers);
    };
    // Closed after, as Node's own refusal was: a request this malformed leaves its body, if any, unread.
    const hostFault = hostHeaderFault(req);
    if (hostFault) return refuseUnrouted(400, graphqlError(HOST_FAULT_MESSAGES[hostFault], HttpRefusalCode.BAD_REQUEST), { connection: 'close' });
    if (hasHttp10TransferEncoding(req)) {
      // Closed after, its body unread: where it ends is what a proxy in front and Node may not agree on.
      return refuseUnrouted(400, graphqlError('An HTTP/1.0 request cannot carry a Transfer-Encoding: send its body with a Content-Length, or the request as HTTP/1.1', HttpRefusalCode.BAD_REQUEST), { connection: 'close' });
    }
    if (unmetExpectation(req.headers.expect)) {
      // Closed after: the client may be holding its body back for an answer that is not coming.
      return refuseUnrouted(417, graphqlError('The gateway meets no expectation but 100-continue: send the request without its Expect header', HttpRefusalCode.EXPECTATION_FAILED), { connection: 'close' });
    }
    // A target in absolute form (`POST http://host/graphql`) names the host itself, which then stands for the
    // Host header (RFC 9112 §3.2.2): judged by it, as Node routes such a request by its path alone.
    const host = url !== undefined && !(req.url ?? '/').startsWith('/') ? url.host : req.headers.host;
    if (!access.acceptsHost(host)) {
      logger.info('request refused: open mode answers loopback host names only', { requestId, host: shortened(headerAsSent(String(host)), 100) });
      return refuse(403, graphqlError('Without authentication the gateway answers only requests addressed to a loopback host name, such as 127.0.0.1 or localhost', ErrorCode.FORBIDDEN));
    }
    // `OPTIONS *` asks what the server as a whole supports (RFC 9110 §9.3.7): the methods some path serves. The
    // asterisk names no resource for any other method.
    if (req.url === '*') {
      if (req.method !== 'OPTIONS') return refuseUnrouted(400, graphqlError('The request target * is for OPTIONS only: send a path, such as /graphql', HttpRefusalCode.BAD_REQUEST));
      logger.debug('request answered before its path was looked at', { requestId, status: 204 });
      res.writeHead(204, { allow: 'GET, HEAD, POST, OPTIONS' }).end();
      return;
    }
    // A request target that is no path and no http(s) URL (`GET http://[ HTTP/1.1`, `ftp://…`, `http://user@…`):
    // the client's mistake, not ours.
    if (url === undefined) return refuseUnrouted(400, graphqlError(INVALID_TARGET_MESSAGE, HttpRefusalCode.BAD_REQUEST));
    if (url.pathname === '/healthz') return answerHealth(req, res, shutdown, refuse);
    // A browser opening /graphql gets the IDE; GraphQL clients fall through to Apollo.
    if (await ide.handle(req, res, url)) return;
    // The same envelope and codes as every other refusal, so a client reads them all one way.
    if (url.pathname !== '/graphql') {
      // A frontend sending to another path preflights first: granted, its request then reads this 404 (cors.ts).
      if (access.answerStrayPreflight(req, res)) return;
      return refuse(404, graphqlError(`No such endpoint: ${shortened(url.pathname, 100)}. GraphQL is served on /graphql, health on /healthz`, ErrorCode.NOT_FOUND));
    }
    return serveGraphql(parts, req, res, url, requestId, outcome);
  };
}

const INVALID_TARGET_MESSAGE = 'The request target is no path and no valid http(s) URL without user information: send a path, such as /graphql';

const maxOperationsInFlightOf = (options: GatewayOptions) => options.maxOperationsInFlight ?? DEFAULTS.maxOperationsInFlight;

/** Node's own listen backlog: the gateway's is never below it. */
const DEFAULT_BACKLOG = 511;

/** The refusal of a request whose Host headers RFC 9112 §3.2 has answered 400 (hostHeaderFault). */
const HOST_FAULT_MESSAGES = {
  missing: 'An HTTP/1.1 request needs a Host header: send the host name and port the gateway is reached at',
  repeated: 'A request may carry one Host header: send the host name and port the gateway is reached at once',
} as const;

/** Whether `expect` (the request's `Expect` header) asks for anything but `100-continue`, the one expectation HTTP defines. */
function unmetExpectation(expect: string | undefined): boolean {
  return expect !== undefined && expect.trim().toLowerCase() !== '100-continue';
}

/** `/healthz`: ok while the gateway serves requests, 503 once its shutdown has begun. */
function answerHealth(req: IncomingMessage, res: ServerResponse, shutdown: Shutdown, refuse: Refuse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return refuse(405, graphqlError('Only GET and HEAD are supported on /healthz', HttpRefusalCode.METHOD_NOT_ALLOWED), { allow: 'GET, HEAD' });
  }
  // Draining: a load balancer asking over a connection still open takes this instance out of rotation; as
  // every answer during shutdown, this one closes its connection (GatewayResponse, http/connections.ts).
  if (shutdown.begun) return sendJson(res, 503, { status: 'shutting down' });
  return sendJson(res, 200, { status: 'ok' });
}

function sayAcceptFailuresUnsaid(logger: Logger, failure: string, unsaid: number): void {
  logger.error('connections not accepted left unsaid', { failure, sinceLastLine: unsaid });
}

/** How often a failure to accept connections is logged at most (each comes by the connection). */
const ACCEPT_FAILURE_LOG_INTERVAL_MS = 60_000;
