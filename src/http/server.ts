import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HeaderMap, type ApolloServer, type HTTPGraphQLResponse } from '@apollo/server';
import { createApollo } from '../graphql/apollo.ts';
import type { EgressProxy } from '../upstream/egress-proxy.ts';
import { callerForLog, createGatewayAccess, OPEN_IDENTITY, type GatewayAccess, type GatewayAccessOptions, type Identity } from '../auth/index.ts';
import { contextDeps, createContext, type ContextDeps, type GatewayContext, type OperationOutcome } from '../graphql/context.ts';
import { DEFAULTS, maxAnswerBytesInFlightFor } from '../config/defaults.ts';
import { codeOf, ErrorCode, HttpRefusalCode } from '../errors.ts';
import { AnswerAdmission, BodyAdmission, OperationAdmission } from './admission.ts';
import { clientErrorAnswerer, lacksRequiredHost } from './client-error.ts';
import { createConnections, type Connections } from './connections.ts';
import { awaitsContinue, discardBody, leftMidRequest, maxBodyPieces, readBody, RequestGone } from './body.ts';
import { acceptsGraphQLAnswer, carriesOperation, contentTypeForApollo, NOT_ACCEPTABLE_MESSAGE, parseGraphQLBody, percentEncodedUtf8, refusalMediaType, requestIdOf, requestUrlOf, unacceptableGetType, unreadableBodyType, utf8Text } from './request.ts';
import { endOnceFlushed, EVERY_ANSWER_HEADERS, graphqlError, sendJson } from './respond.ts';
import { Shutdown } from './shutdown.ts';
import { isOutOfFileDescriptors } from '../support/file-descriptors.ts';
import { createIde, type Ide } from '../ide/index.ts';
import { CallerReadBudget } from '../limits/caller-reads.ts';
import { CallerWriteBudget } from '../limits/caller-writes.ts';
import { answerTooLargeBody, documentLinesRefusal, resolveLimits, upstreamRequestBudget, type OperationLimits } from '../limits/index.ts';
import { LineThrottle } from '../logging/line-throttle.ts';
import { listenOn } from './listen.ts';
import { messageOf, type Logger } from '../logging/logger.ts';
import { OperationDeadlineExceeded, OperationScope } from '../upstream/cancellation.ts';
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
  const connections = createConnections({
    logger,
    answerStallTimeoutMs: options.answerStallTimeoutMs ?? DEFAULTS.answerStallTimeoutMs,
    shuttingDown: () => shutdown.begun,
  });

  const limits = resolveLimits(options.operationLimits);
  const requestBudget = upstreamRequestBudget(limits);
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULTS.maxAnswerBytes;
  // What Apollo answers for a result larger than one JavaScript string can hold; recognized below to log it.
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
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const ide = createIde({ tokenRequired: !access.open, introspection: access.introspection });

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
    admission: new OperationAdmission(options.maxOperationsInFlight ?? DEFAULTS.maxOperationsInFlight),
    bodyAdmission: new BodyAdmission(maxBodyBytesInFlight),
    answerAdmission: new AnswerAdmission(maxAnswerBytesInFlight),
    refusalsForLoad,
  });

  const acceptFailures = new LineThrottle(ACCEPT_FAILURE_LOG_INTERVAL_MS);
  const httpServer = await listen(options, handle, connections, shutdown, acceptFailures, access.corsGrant);
  const { port } = httpServer.address() as AddressInfo;
  const origin = `http://${urlHostOf(options.host)}:${port}`;

  let closing: Promise<void> | undefined;
  async function shutDown(): Promise<void> {
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
    upstreamProblem: () => client.listAccounts({ limit: 1, offset: 0 }, new OperationScope('start-check')).then(() => undefined, messageOf),
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
async function listen(options: GatewayOptions, handle: Handler, connections: Connections, shutdown: Shutdown, acceptFailures: LineThrottle, corsGrant: GatewayAccess['corsGrant']): Promise<Server> {
  const { logger } = options;
  const requestReceiveTimeoutMs = options.requestReceiveTimeoutMs ?? DEFAULTS.requestReceiveTimeoutMs;
  const httpServer = createServer(
    {
      ServerResponse: connections.Response,
      requestTimeout: requestReceiveTimeoutMs,
      headersTimeout: requestReceiveTimeoutMs,
      // Node checks those deadlines on this interval (30 s by default), so a deadline is kept within it.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, requestReceiveTimeoutMs / 4)),
      // Node refuses an HTTP/1.1 request without Host itself, with a bare 400 (no body, none of the headers
      // every answer carries) and no `clientError`: the handler refuses it instead (lacksRequiredHost).
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
        // incremental answers, streamed by sendAnswer, need a graphql 17 the gateway does not use. The check is a
        // last resort all the same: sendJson on an answer begun would throw here (ERR_HTTP_HEADERS_SENT), a
        // rejection nobody handles, which ends the process.
        if (res.headersSent) res.destroy();
        else sendJson(res, 500, graphqlError('Unexpected error.', ErrorCode.INTERNAL_SERVER_ERROR));
      });
    },
  );
  httpServer.keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs;
  // What Node refuses before a request reaches the handler (headers past 16 KiB, a malformed request, one that
  // took too long to arrive) is answered in the envelope and with the headers of every other refusal (the CORS
  // grant when the request's headers were read).
  httpServer.on('clientError', clientErrorAnswerer({ logger, requestReceiveTimeoutMs, corsGrant }));
  httpServer.on('connection', (socket: Socket) => {
    shutdown.connectionOpened(socket);
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
  await listenOn(httpServer, options.port, options.host);
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

/** What the request handler works with, made once by startGateway. */
interface HandlerParts {
  logger: Logger;
  access: GatewayAccess;
  ide: Ide;
  apollo: ApolloServer<GatewayContext>;
  /** What each operation's context is made of. */
  deps: ContextDeps;
  /** The upstream requests one operation may send. */
  requestBudget: number;
  operationTimeoutMs: number;
  maxBodyBytes: number;
  maxAnswerBytes: number;
  /** The line breaks a document's text may have (MAX_QUERY_TOKENS: see documentLinesRefusal). */
  maxDocumentLines: number;
  /** What Apollo answers for a result larger than one JavaScript string can hold; recognized to log it. */
  unmakeableAnswer: string;
  shutdown: Shutdown;
  connections: Connections;
  /** The cap on operations running at once. */
  admission: OperationAdmission;
  /** The cap on the bytes of request bodies held at once while they arrive. */
  bodyAdmission: BodyAdmission;
  /** The cap on the bytes of answers held at once for clients that have not taken them. */
  answerAdmission: AnswerAdmission;
  /** The log lines of the requests any of those caps refuses: one each every LOAD_REFUSAL_LOG_INTERVAL_MS at most. */
  refusalsForLoad: LineThrottle;
}

/** One request's answer, its route picked and its refusals made before Apollo; `outcome` feeds its log line. */
type Handler = (req: IncomingMessage, res: ServerResponse, requestId: string, outcome: OperationOutcome) => Promise<void>;

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
    // Refused on any path, so with no `operation` line: said at debug, as Node's own refusals of a request it
    // cannot read are (client-error.ts), by the request id its answer carries.
    const refuseUnrouted = (status: number, error: ReturnType<typeof graphqlError>, headers?: Record<string, string>) => {
      logger.debug('request refused before its path was looked at', { requestId, status });
      sendJson(res, status, error, headers);
    };
    // Closed after, as Node's own refusal was: a request this malformed leaves its body, if any, unread.
    if (lacksRequiredHost(req)) return refuseUnrouted(400, graphqlError('An HTTP/1.1 request needs a Host header: send the host name and port the gateway is reached at', HttpRefusalCode.BAD_REQUEST), { connection: 'close' });
    if (unmetExpectation(req.headers.expect)) {
      // Closed after: the client may be holding its body back for an answer that is not coming.
      return refuseUnrouted(417, graphqlError('The gateway meets no expectation but 100-continue: send the request without its Expect header', HttpRefusalCode.EXPECTATION_FAILED), { connection: 'close' });
    }
    if (!access.acceptsHost(req.headers.host)) {
      logger.info('request refused: open mode answers loopback host names only', { requestId, host: shortened(String(req.headers.host), 100) });
      return sendJson(res, 403, graphqlError('Without authentication the gateway answers only requests addressed to a loopback host name, such as 127.0.0.1 or localhost', ErrorCode.FORBIDDEN));
    }
    // A request target no URL parser accepts (`GET http://[ HTTP/1.1`): the client's mistake, not ours.
    if (url === undefined) return refuseUnrouted(400, graphqlError('The request target is not a valid URL', HttpRefusalCode.BAD_REQUEST));
    if (url.pathname === '/healthz') return answerHealth(req, res, shutdown);
    // A browser opening /graphql gets the IDE; GraphQL clients fall through to Apollo.
    if (await ide.handle(req, res, url)) return;
    // The same envelope and codes as every other refusal, so a client reads them all one way.
    if (url.pathname !== '/graphql') {
      return sendJson(res, 404, graphqlError(`No such endpoint: ${shortened(url.pathname, 100)}. GraphQL is served on /graphql, health on /healthz`, ErrorCode.NOT_FOUND));
    }
    return serveGraphql(parts, req, res, url, requestId, outcome);
  };
}


/** Whether `expect` (the request's `Expect` header) asks for anything but `100-continue`, the one expectation HTTP defines. */
function unmetExpectation(expect: string | undefined): boolean {
  return expect !== undefined && expect.trim().toLowerCase() !== '100-continue';
}

/**
 * `/graphql`: CORS preflights, the refusals made before Apollo (method, token, body, media types), the Apollo call with the
 * operation's deadline, and the answer, with the operation's log line.
 */
async function serveGraphql(parts: HandlerParts, req: IncomingMessage, res: ServerResponse, url: URL, requestId: string, outcome: OperationOutcome): Promise<void> {
  const { logger, access, apollo, deps, requestBudget, operationTimeoutMs, maxBodyBytes, maxAnswerBytes, maxDocumentLines, unmakeableAnswer, shutdown, connections, admission } = parts;
  if (access.answerPreflight(req, res)) return;
  // Apollo picks the answer's media type by Accept (application/json or application/graphql-response+json).
  res.setHeader('vary', res.hasHeader('vary') ? `${String(res.getHeader('vary'))}, Accept` : 'Accept');
  const started = performance.now();
  // Created now for the log line's count; stopped if its client goes away from the token check on, and given
  // its deadline (and counted in flight for a shutdown) once the body is in.
  const operation = new OperationScope(requestId, requestBudget);
  /**
   * Whom the token names, once verified: the log line says who made the operation. In open mode everyone is
   * the open admin, token or not, so it is known from the start: a request refused before the token check
   * (another method, a query string that is not UTF-8) is said to be `open` too.
   */
  let identity: Identity | undefined = access.open ? OPEN_IDENTITY : undefined;
  logOperationOnClose({ logger, shutdown, connections }, req, res, { requestId, outcome, operation, started, identity: () => identity });
  /** Answers a request refused before GraphQL: its code goes into the log line too. */
  const refuse = ({ status, message, code, headers }: Refusal) => {
    outcome.errorCodes.add(code);
    sendJson(res, status, graphqlError(message, code), { 'content-type': refusalMediaType(req.headers.accept), ...headers });
  };
  if (req.method !== 'GET' && req.method !== 'POST') {
    return refuse({ status: 405, message: 'Only GET and POST are supported on /graphql', code: HttpRefusalCode.METHOD_NOT_ALLOWED, headers: { allow: 'GET, POST, OPTIONS' } });
  }
  if (req.method === 'GET' && !percentEncodedUtf8(url.search)) {
    return refuse({ status: 400, message: 'The query string is not valid UTF-8 once percent-decoded', code: HttpRefusalCode.BAD_REQUEST });
  }
  const headers = apolloHeaders(req);
  // The token is verified before the body is read: a request without a valid one (with authentication on)
  // costs no buffer of up to MAX_BODY_BYTES and no JSON parse. Read first, 400 such bodies held 420 MB for
  // the 30 s a request may take to arrive, and each JSON body of nested values took ~0.3 s of the event loop.
  // Its refusal is still Apollo's answer (the context below), once the body has arrived and been dropped (so
  // that the connection serves the next request, with a refreshed token), or at once past MAX_BODY_BYTES.
  // A client that goes away while its token is checked or its body read leaves nothing to run.
  let closed = false;
  let deadline: NodeJS.Timeout | undefined = undefined;
  res.once('close', () => {
    closed = true;
    clearTimeout(deadline);
    // Answered or not, nothing of the operation may go on: a load started early for a field graphql then
    // never reached (its parent failed) would otherwise retry for its whole deadline, unlogged, and hold
    // up shutdown.
    operation.abort(OPERATION_OVER);
    shutdown.operationClosed(operation);
  });
  const authenticated = await access.authenticate(headers.get('authorization'), requestId).then(
    (identity) => ({ identity }),
    (error: unknown) => ({ error }),
  );
  if (closed) {
    // Gone while its token was verified (the client left; a shutdown cut the connection).
    if (!req.complete) logger.debug('the client left before its request was complete', { requestId });
    return;
  }
  if (!('error' in authenticated)) identity = authenticated.identity;
  let body: unknown;
  if ('error' in authenticated) {
    // A client waiting for `100 Continue` is not asked for a body that would be thrown away: without it, Node
    // closes the connection after the answer.
    if (req.method === 'POST' && (awaitsContinue(req) || !(await discardBody(req, maxBodyBytes)))) res.setHeader('connection', 'close');
    body = {};
  } else if (req.method === 'POST') {
    const read = await readGraphQLBody(parts, req, res, requestId);
    if ('status' in read) return refuse(read);
    body = read.body;
  }
  if (closed) return;
  // Refusals of a request that has nothing to run, made only with a valid identity: a caller without one
  // still learns first that it needs a token (the context's 401 below).
  const refusal = 'error' in authenticated ? undefined : nothingToRun(req, url, headers);
  if (refusal) return refuse(refusal);
  // Here, before Apollo parses the text: no Apollo hook before parsing can refuse a request (a plugin throwing
  // there answers 500). The refusal is a limit's, as MAX_QUERY_TOKENS' is.
  const query = 'error' in authenticated ? undefined : queryTextOf(req, url, body);
  const tooManyLines = query === undefined ? undefined : documentLinesRefusal(query, maxDocumentLines);
  if (tooManyLines) {
    outcome.errorCodes.add(ErrorCode.QUERY_TOO_COMPLEX);
    outcome.limits.add('DOCUMENT_LINES');
    return sendJson(res, 400, { errors: [tooManyLines] }, { 'content-type': refusalMediaType(req.headers.accept) });
  }
  // One refused for its token runs nothing: it is answered 401 whatever the load.
  if (!('error' in authenticated) && parts.answerAdmission.full) return refuse(refusalForLoad(parts, 'answers', parts.answerAdmission.limit, requestId));
  const leave = 'error' in authenticated ? () => undefined : admission.enter();
  if (leave === undefined) return refuse(refusalForLoad(parts, 'operations', admission.limit, requestId));
  refusalsForLoadOver(parts);
  let response: HTTPGraphQLResponse;
  try {
    // In flight from here, as a shutdown sees it (it waits for it, then aborts it), with its deadline: a request
    // still arriving is bounded by the time it may take to arrive instead, and is not stopped at shutdown.
    shutdown.operationStarted(operation);
    deadline = setTimeout(() => operation.abort(new OperationDeadlineExceeded(operationTimeoutMs)), operationTimeoutMs);
    // Apollo's CSRF check looks for one of a few headers a cross-site page cannot send without a preflight.
    if (safeFromCrossSitePages(access.open, req.method, headers)) headers.set('apollo-require-preflight', 'bearer');
    response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method, headers, search: url.search, body },
      // Verified above, once per request; a refused token ends the operation here (401), before any resolver.
      context: async () => operationContext(deps, requestId, authenticated, outcome, operation),
    });
  } finally {
    // Its answer made (or its run failed, or anything between failed): the place is another's, however long
    // its client takes to read the answer.
    leave();
  }
  await sendAnswer(res, response, { logger, requestId, outcome, maxAnswerBytes, unmakeableAnswer, answerAdmission: parts.answerAdmission });
}

/** The caps that refuse a request for load: operations running, bodies arriving, answers not yet taken. */
type LoadCap = 'operations' | 'bodies' | 'answers';

/**
 * What each cap's refusal says: the warning an operator looks for, the line of its refusals left unsaid, and the
 * answer's message, given the cap's limit.
 */
const LOAD_CAPS: Record<LoadCap, { warning: string; unsaid: string; message: (limit: number) => string }> = {
  operations: {
    warning: 'operation refused: as many run as MAX_OPERATIONS_IN_FLIGHT allows',
    unsaid: 'operations refused for load left unsaid: as many ran as MAX_OPERATIONS_IN_FLIGHT allows',
    message: (limit) => `The gateway is running as many operations as it may at once (${limit}); retry shortly`,
  },
  bodies: {
    warning: 'request refused: the bodies being received take as many bytes as MAX_BODY_BYTES_IN_FLIGHT allows',
    unsaid: 'requests refused for load left unsaid: the bodies being received took as many bytes as MAX_BODY_BYTES_IN_FLIGHT allows',
    message: (limit) => `The gateway is receiving as many request bodies as it may hold at once (${limit} bytes); retry shortly`,
  },
  answers: {
    warning: 'operation refused: the answers not yet taken by their clients take as many bytes as MAX_ANSWER_BYTES_IN_FLIGHT allows',
    unsaid: 'operations refused for load left unsaid: the answers not yet taken by their clients took as many bytes as MAX_ANSWER_BYTES_IN_FLIGHT allows',
    message: (limit) => `The gateway holds as many bytes of answers not yet taken by their clients as it may (${limit}); retry shortly`,
  },
};

/**
 * A request refused by `cap` (whose limit is `limit`) before it runs: an operation past MAX_OPERATIONS_IN_FLIGHT,
 * a body that would take the bodies arriving past MAX_BODY_BYTES_IN_FLIGHT (before any of it is read), or an
 * operation while the answers not yet taken hold MAX_ANSWER_BYTES_IN_FLIGHT. Besides its own `operation` line, a
 * warning an operator looks for: once every LOAD_REFUSAL_LOG_INTERVAL_MS at most for each cap, with how many since.
 */
function refusalForLoad(
  { logger, refusalsForLoad }: Pick<HandlerParts, 'logger' | 'refusalsForLoad'>,
  cap: LoadCap,
  limit: number,
  requestId: string,
  headers: Record<string, string> = {},
): Refusal {
  const due = refusalsForLoad.admit(cap, performance.now());
  if (due) logger.warn(LOAD_CAPS[cap].warning, { requestId, maximum: limit, ...due });
  return { status: 503, message: LOAD_CAPS[cap].message(limit), code: HttpRefusalCode.SERVICE_UNAVAILABLE, headers: { 'retry-after': '1', ...headers } };
}

/**
 * Once refusals for load have stopped for an interval, the first operation admitted says how many went unsaid
 * since the last warning: without it, the count of a burst's end waited for the next burst, perhaps for ever.
 */
function refusalsForLoadOver({ logger, refusalsForLoad }: HandlerParts): void {
  for (const [load, unsaid] of refusalsForLoad.unsaidOnceQuiet(performance.now())) sayRefusalsForLoadUnsaid(logger, load, unsaid);
}

function sayRefusalsForLoadUnsaid(logger: Logger, cap: string, unsaid: number): void {
  logger.warn(LOAD_CAPS[cap as LoadCap].unsaid, { sinceLastLine: unsaid });
}

function sayAcceptFailuresUnsaid(logger: Logger, failure: string, unsaid: number): void {
  logger.error('connections not accepted left unsaid', { failure, sinceLastLine: unsaid });
}

/**
 * Whether the request is one a cross-site page could not have sent, so that Apollo's CSRF check is told to let
 * it through (the header below is what it looks for). The check asks
 * a GET (or a POST of a type a form can send) for a header such a page cannot send without a preflight. A
 * Bearer token is one: no browser attaches it on its own (unlike cached Basic credentials), so clients sending
 * queries over GET with their token (urql, for one) need nothing more; nor does the scheme alone, what such a
 * client sends before it has a token. With authentication on, nothing runs without such a token: the check adds
 * nothing there, and would answer a request without one (a POST refused before its content type is looked at,
 * too) a 400 about preflights where the contract says UNAUTHENTICATED (the context's 401).
 */
function safeFromCrossSitePages(open: boolean, method: string | undefined, headers: HeaderMap): boolean {
  return !open || (method === 'GET' && /^Bearer(\s|$)/i.test(headers.get('authorization') ?? ''));
}

/** The operation's context for the verified identity; for a refused token, its error, noted for the log line. */
function operationContext(
  deps: ContextDeps,
  requestId: string,
  authenticated: { identity: Identity } | { error: unknown },
  outcome: OperationOutcome,
  operation: OperationScope,
): GatewayContext {
  if ('error' in authenticated) {
    // Refused before Apollo's plugins see the request: the log line takes its code from here.
    const code = codeOf(authenticated.error) ?? ErrorCode.INTERNAL_SERVER_ERROR;
    outcome.errorCodes.add(code);
    // The log line says why, as the caller is told: an expired token, a key the gateway lacks and a clock
    // off all look alike by their code.
    if (code === ErrorCode.UNAUTHENTICATED && authenticated.error instanceof Error) outcome.authFailure = authenticated.error.message;
    throw authenticated.error;
  }
  return createContext(deps, requestId, authenticated.identity, outcome, operation);
}

/** A request refused before GraphQL: its status, its message and code (the log line's too), any headers. */
interface Refusal {
  status: number;
  message: string;
  code: HttpRefusalCode;
  headers?: Record<string, string>;
}

/** The request's headers as Apollo takes them. */
function apolloHeaders(req: IncomingMessage): HeaderMap {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  const contentType = req.headers['content-type'];
  if (contentType !== undefined) headers.set('content-type', contentTypeForApollo(contentType));
  // Node keeps the first of several Authorization headers and drops the others: behind a proxy that adds its
  // own, whichever came first would be the caller's. Joined, they are refused as not one Bearer token.
  if (req.headers.authorization !== undefined) {
    const authorizations = req.headersDistinct['authorization'] ?? [];
    if (authorizations.length > 1) headers.set('authorization', authorizations.join(', '));
  }
  return headers;
}

/**
 * A POST's body, read and parsed as a GraphQL request; or why it cannot be (its type, size, encoding or JSON,
 * or the bodies held already: MAX_BODY_BYTES_IN_FLIGHT, counted until it is parsed).
 */
async function readGraphQLBody(parts: HandlerParts, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<{ body: unknown } | Refusal> {
  const { maxBodyBytes, bodyAdmission } = parts;
  const unreadable = unreadableBodyType(req.headers['content-type'], req.headers['content-encoding'], req.headers['transfer-encoding']);
  if (unreadable !== undefined) return { status: 415, message: unreadable, code: HttpRefusalCode.UNSUPPORTED_MEDIA_TYPE };
  // Counted by its declared length; one without (chunked) may come to MAX_BODY_BYTES. One declared larger is
  // refused for its size (413) unread, holding nothing.
  const declared = Number(req.headers['content-length']);
  const leave = declared > maxBodyBytes ? () => undefined : bodyAdmission.enter(Number.isFinite(declared) ? declared : maxBodyBytes);
  // Its body unread, the connection cannot serve another request (GatewayResponse closes it too).
  if (leave === undefined) return refusalForLoad(parts, 'bodies', bodyAdmission.limit, requestId, { connection: 'close' });
  try {
    const bytes = await readBody(req, maxBodyBytes, res);
    if (typeof bytes === 'string') {
      const message =
        bytes === 'too large'
          ? `The request body exceeds ${maxBodyBytes} bytes`
          : `The request body came in more than ${maxBodyPieces(maxBodyBytes)} pieces: send it in fewer, larger chunks`;
      return { status: 413, message, code: HttpRefusalCode.PAYLOAD_TOO_LARGE, headers: { connection: 'close' } };
    }
    const text = utf8Text(bytes);
    if (text === undefined) return { status: 400, message: 'The request body is not valid UTF-8', code: HttpRefusalCode.BAD_REQUEST };
    const parsed = parseGraphQLBody(text);
    if (!parsed.ok) return { status: 400, message: parsed.message, code: HttpRefusalCode.BAD_REQUEST };
    return { body: parsed.body };
  } finally {
    // Read and parsed (or refused, or its client gone): what it holds now is its operation's.
    leave();
  }
}

/** The operation's text as Apollo will read it: a GET's `?query=`, a POST body's `query` (when a string). */
function queryTextOf(req: IncomingMessage, url: URL, body: unknown): string | undefined {
  const query = req.method === 'GET' ? url.searchParams.get('query') : (body as { query?: unknown } | undefined)?.query;
  return typeof query === 'string' ? query : undefined;
}

/** The refusal of a request with nothing to run, for a caller with a valid identity; `undefined` when it has. */
function nothingToRun(req: IncomingMessage, url: URL, headers: HeaderMap): Refusal | undefined {
  // Apollo would refuse it too, with the same status but not the code of the other 415s (a GET has no body
  // whose type matters; its content type is checked as Apollo checks it, first).
  const unacceptable = req.method === 'GET' ? unacceptableGetType(req.headers['content-type']) : undefined;
  if (unacceptable !== undefined) return { status: 415, message: unacceptable, code: HttpRefusalCode.UNSUPPORTED_MEDIA_TYPE };
  // A GET with no query (`curl …/graphql`, a newcomer's first try) is told what to send. Apollo would
  // answer it, in open mode, that it was blocked as a possible cross-site request forgery.
  if (req.method === 'GET' && !carriesOperation(url)) {
    return {
      status: 400,
      message: 'GET /graphql needs a query: ?query={ … } (with variables and operationName as parameters), or POST it as JSON; a browser opening /graphql gets the IDE',
      code: HttpRefusalCode.BAD_REQUEST,
    };
  }
  // Apollo looks at Accept only once the operation has run, and then throws its result away with a 406: a
  // mutation was made upstream while its caller was told the request was refused (and a retry made it
  // again). Asked here, with Apollo's own negotiation and answer, nothing runs.
  if (!acceptsGraphQLAnswer(headers.get('accept'))) return { status: 406, message: NOT_ACCEPTABLE_MESSAGE, code: HttpRefusalCode.BAD_REQUEST };
  return undefined;
}

/** `/healthz`: ok while the gateway serves requests, 503 once its shutdown has begun. */
function answerHealth(req: IncomingMessage, res: ServerResponse, shutdown: Shutdown): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(res, 405, graphqlError('Only GET and HEAD are supported on /healthz', HttpRefusalCode.METHOD_NOT_ALLOWED), { allow: 'GET, HEAD' });
  }
  // Draining: a load balancer asking over a connection still open takes this instance out of rotation; as
  // every answer during shutdown, this one closes its connection (GatewayResponse, http/connections.ts).
  if (shutdown.begun) return sendJson(res, 503, { status: 'shutting down' });
  return sendJson(res, 200, { status: 'ok' });
}

/** What the operation's log line says, gathered while it runs. */
interface OperationRecord {
  requestId: string;
  outcome: OperationOutcome;
  operation: OperationScope;
  /** `performance.now()` when the request reached `/graphql`'s handling. */
  started: number;
  /** Whom the token names, once verified (or open mode's identity from the start). */
  identity: () => Identity | undefined;
}

/**
 * One line per operation, once it is answered (or its client went away): what an operator looks up by the
 * request id a caller quotes. Never its variables, which may hold connect tokens.
 */
function logOperationOnClose(parts: Pick<HandlerParts, 'logger' | 'shutdown' | 'connections'>, req: IncomingMessage, res: ServerResponse, record: OperationRecord): void {
  const { logger, shutdown, connections } = parts;
  const { requestId, outcome, operation, started } = record;
  res.once('close', () => {
    // A request that never arrived whole (the client left, or took longer than it is allowed to send it)
    // was no operation: the debug line of the handler's catch says what happened.
    if (!req.complete && !res.writableFinished) return;
    const identity = record.identity();
    logger.info('operation', {
      requestId,
      operationName: outcome.operationName == null ? null : shortened(outcome.operationName, 100),
      status: res.writableFinished ? res.statusCode : null,
      ...(identity === undefined ? {} : callerForLog(identity)),
      // Unanswered: the client left, unless shutdown cut the connection after its grace period.
      ...(res.writableFinished ? {} : shutdown.connectionsCut ? { cutAtShutdown: true } : connections.answerStalled(res) ? { answerStalled: true } : { clientWentAway: true }),
      ms: Math.round((performance.now() - started) * 10) / 10,
      upstreamRequests: operation.requests,
      // An operation failing UPSTREAM_ERROR with no request sent: the circuit breaker's doing, said so.
      ...(operation.breakerRefusals > 0 ? { breakerRefusals: operation.breakerRefusals } : {}),
      ...(outcome.errorCodes.size > 0 ? { errors: [...outcome.errorCodes] } : {}),
      ...(outcome.limits.size > 0 ? { limits: [...outcome.limits] } : {}),
      ...(outcome.authFailure === undefined ? {} : { authFailure: outcome.authFailure }),
    });
  });
}

/** Apollo's answer, sent: its codes into the log line when Apollo refused the request itself, its size checked. */
async function sendAnswer(
  res: ServerResponse,
  response: HTTPGraphQLResponse,
  { logger, requestId, outcome, maxAnswerBytes, unmakeableAnswer, answerAdmission }: Pick<HandlerParts, 'logger' | 'maxAnswerBytes' | 'unmakeableAnswer' | 'answerAdmission'> & { requestId: string; outcome: OperationOutcome },
): Promise<void> {
  for (const [key, value] of response.headers) {
    // Apollo answers a persisted query's miss `private, no-cache, must-revalidate`, which lets a browser keep it:
    // every answer here is the handler's `private, no-store` (docs/auth.md).
    if (key !== 'cache-control') res.setHeader(key, value);
  }
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    let answer = response.body.string;
    if (res.statusCode >= 400 && outcome.errorCodes.size === 0) {
      // Refused by Apollo before its plugins ran (its CSRF check): the log line takes the codes from the answer.
      for (const code of errorCodesIn(answer)) outcome.errorCodes.add(code);
    }
    const unmakeable = answer === unmakeableAnswer;
    const bytes = unmakeable ? undefined : bytesOver(answer, maxAnswerBytes);
    if (unmakeable || bytes !== undefined) {
      logger.warn('answer too large to send', { requestId, bytes, maximum: maxAnswerBytes });
      // The answer sent carries this one error: the log line lists the codes answered, not those of the
      // answer replaced (its caller never saw them).
      outcome.errorCodes.clear();
      outcome.limits.clear();
      outcome.errorCodes.add(ErrorCode.QUERY_TOO_COMPLEX);
      outcome.limits.add('MAX_ANSWER_BYTES');
      // An operation that ran answers `data: null` with its status (200), as GraphQL over HTTP has it; a
      // refusal before execution (an error answer) keeps its status and has no `data`.
      // A mutation's writes made are still told (writes-made.ts), as the answer replaced would have.
      const { writesMade } = outcome;
      if (!unmakeable || writesMade !== undefined) answer = answerTooLargeBody(bytes, maxAnswerBytes, res.statusCode < 400, writesMade && { writesMade });
    }
    // Held until its client has taken it (or is gone): counted against MAX_ANSWER_BYTES_IN_FLIGHT.
    endOnceFlushed(res, answer, (bytes) => answerAdmission.hold(bytes));
    return;
  }
  // Apollo streams an answer only for @defer and @stream, which graphql 16 cannot run: never taken (there for
  // the type's sake), nor held to MAX_ANSWER_BYTES.
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** How often a failure to accept connections is logged at most (each comes by the connection). */
const ACCEPT_FAILURE_LOG_INTERVAL_MS = 60_000;
/** How often requests refused for load (MAX_OPERATIONS_IN_FLIGHT) are logged at most. */
const LOAD_REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Why an operation's left-over upstream work is cancelled when its response closes (one object for all). */
const OPERATION_OVER = new Error('The operation is over: its response has closed');

/** The `extensions.code` of each error in a GraphQL response body. */
function errorCodesIn(body: string): string[] {
  try {
    const { errors } = JSON.parse(body) as { errors?: Array<{ extensions?: { code?: unknown } }> };
    return (errors ?? []).map((error) => String(error.extensions?.code ?? ErrorCode.INTERNAL_SERVER_ERROR));
  } catch {
    return [];
  }
}

/** `text`'s size in UTF-8 when it is more than `maximum` bytes, else undefined; counted only when its length leaves it in doubt. */
function bytesOver(text: string, maximum: number): number | undefined {
  if (text.length * 3 <= maximum) return undefined;
  const bytes = Buffer.byteLength(text);
  return bytes > maximum ? bytes : undefined;
}
