import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type HTTPGraphQLResponse } from '@apollo/server';
import { callerForLog, OPEN_IDENTITY, type GatewayAccess, type Identity } from '../auth/index.ts';
import { createContext, type ContextDeps, type GatewayContext, type OperationOutcome } from '../graphql/context.ts';
import { codeOf, ErrorCode, HttpRefusalCode } from '../errors.ts';
import type { AnswerAdmission, BodyAdmission, OperationAdmission } from './admission.ts';
import type { Connections } from './connections.ts';
import { awaitsContinue, discardBody, maxBodyPieces, readBody } from './body.ts';
import { refusalForLoad, refusalsForLoadOver } from './load-refusals.ts';
import { acceptsGraphQLAnswer, carriesOperation, contentTypeForApollo, NOT_ACCEPTABLE_MESSAGE, parseGraphQLBody, percentEncodedUtf8, refusalMediaType, searchForApollo, unacceptableGetType, unreadableBodyType, utf8Text } from './request.ts';
import { endOnceFlushed, graphqlError, sendJson, type Refusal } from './respond.ts';
import { traceContextOf, traceIdOf } from './trace-context.ts';
import type { Shutdown } from './shutdown.ts';
import { answerTooLargeBody, documentLinesRefusal } from '../limits/index.ts';
import type { LineThrottle } from '../logging/line-throttle.ts';
import type { Logger } from '../logging/logger.ts';
import { OperationDeadlineExceeded, OperationScope } from '../upstream/cancellation.ts';
import { shortened } from '../support/shortened.ts';

/** One request to `/graphql`, from its body to its answer and its `operation` log line. */

/** What serving `/graphql` works with, made once by startGateway. */
export interface EndpointParts {
  logger: Logger;
  access: GatewayAccess;
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

/**
 * `/graphql`: CORS preflights, the refusals made before Apollo (method, token, body, media types), the Apollo call with the
 * operation's deadline, and the answer, with the operation's log line.
 */
export async function serveGraphql(parts: EndpointParts, req: IncomingMessage, res: ServerResponse, url: URL, requestId: string, outcome: OperationOutcome): Promise<void> {
  const { logger, access, apollo, deps, requestBudget, operationTimeoutMs, maxBodyBytes, maxAnswerBytes, maxDocumentLines, unmakeableAnswer, shutdown, connections, admission } = parts;
  if (access.answerPreflight(req, res)) return;
  // Apollo picks the answer's media type by Accept (application/json or application/graphql-response+json).
  res.setHeader('vary', res.hasHeader('vary') ? `${String(res.getHeader('vary'))}, Accept` : 'Accept');
  const started = performance.now();
  // Created now for the log line's count; stopped if its client goes away from the token check on, and given
  // its deadline (and counted in flight for a shutdown) once the body is in.
  const operation = new OperationScope(requestId, requestBudget, traceContextOf(req));
  /**
   * Whom the token names, once verified: the log line says who made the operation. In open mode everyone is
   * the open admin, token or not, so it is known from the start: a request refused before the token check
   * (another method, a query string that is not UTF-8, a WebSocket handshake) is said to be `open` too.
   */
  let identity: Identity | undefined = access.open ? OPEN_IDENTITY : undefined;
  logOperationOnClose({ logger, shutdown, connections }, req, res, { requestId, outcome, operation, started, identity: () => identity });
  /** Answers a request refused before GraphQL: its code goes into the log line too. */
  const refuse = ({ status, message, code, headers }: Refusal) => {
    outcome.errorCodes.add(code);
    sendJson(res, status, graphqlError(message, code), { 'content-type': refusalMediaType(req.headers.accept), ...headers });
  };
  if (req.method !== 'GET' && req.method !== 'POST') {
    return refuse({ status: 405, message: 'Only GET and POST are supported on /graphql (and OPTIONS, the CORS preflight)', code: HttpRefusalCode.METHOD_NOT_ALLOWED, headers: { allow: 'GET, POST, OPTIONS' } });
  }
  // A subscription client's handshake would otherwise be told it lacks a query, or, with authentication on, a
  // token that a browser's WebSocket cannot send as a header. Known by its Sec-WebSocket-* headers: a proxy drops
  // Upgrade and Connection (hop-by-hop) unless told to pass them, as nginx does by default.
  if (req.method === 'GET' && req.headers['sec-websocket-key'] !== undefined) {
    const message = 'The gateway serves no WebSocket: its schema has no subscriptions. Send queries and mutations over HTTP, as a POST of JSON to /graphql';
    return refuse({ status: 400, message, code: HttpRefusalCode.BAD_REQUEST });
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
  shutdown.requestOpened(operation);
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
      httpGraphQLRequest: { method: req.method, headers, search: req.method === 'GET' ? searchForApollo(url) : url.search, body },
      // Verified above, once per request; a refused token ends the operation here (401), before any resolver.
      context: async () => operationContext(deps, requestId, authenticated, outcome, operation),
    });
  } finally {
    // Its answer made (or its run failed, or anything between failed): the place is another's, however long
    // its client takes to read the answer.
    leave();
    shutdown.operationAnswered(operation);
  }
  await sendAnswer(res, response, { logger, requestId, outcome, maxAnswerBytes, unmakeableAnswer, answerAdmission: parts.answerAdmission });
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
async function readGraphQLBody(parts: EndpointParts, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<{ body: unknown } | Refusal> {
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
function logOperationOnClose(parts: Pick<EndpointParts, 'logger' | 'shutdown' | 'connections'>, req: IncomingMessage, res: ServerResponse, record: OperationRecord): void {
  const { logger, shutdown, connections } = parts;
  const { requestId, outcome, operation, started } = record;
  res.once('close', () => {
    // A request that never arrived whole (the client left, or took longer than it is allowed to send it)
    // was no operation: the debug line of the handler's catch (server.ts' listen) says what happened.
    if (!req.complete && !res.writableFinished) return;
    const identity = record.identity();
    logger.info('operation', {
      requestId,
      // The caller's trace, when it sent one: the line found from a trace, and the trace from the line.
      ...(operation.trace === undefined ? {} : { traceId: traceIdOf(operation.trace) }),
      operationName: outcome.operationName == null ? null : shortened(outcome.operationName, 100),
      status: res.writableFinished ? res.statusCode : null,
      ...(identity === undefined ? {} : callerForLog(identity)),
      // Unanswered: the client left, unless shutdown cut the connection after its grace period.
      ...(res.writableFinished ? {} : shutdown.connectionsCut ? { cutAtShutdown: true } : connections.answerStalled(res) ? { answerStalled: true } : { clientWentAway: true }),
      ms: Math.round((performance.now() - started) * 10) / 10,
      upstreamRequests: operation.requests,
      // An operation failing UPSTREAM_ERROR with no request sent: the circuit breaker's doing, said so.
      ...(operation.breakerRefusals > 0 ? { breakerRefusals: operation.breakerRefusals } : {}),
      // What it changed upstream, by mutation, in order (never the values: new tokens are capabilities): an
      // operator asked what a request did, one whose client left mid-mutation included, finds it here.
      ...(outcome.writesMade === undefined ? {} : { writes: outcome.writesMade.map((write) => write.field) }),
      // Those whose request went out and whose outcome is unknown: failed so that they may have taken effect, or
      // still out as the client left (cut then, as the operation stops).
      ...writesMaybeMade(outcome, operation),
      ...(outcome.errorCodes.size > 0 ? { errors: [...outcome.errorCodes] } : {}),
      ...(outcome.limits.size > 0 ? { limits: [...outcome.limits] } : {}),
      ...(outcome.authFailure === undefined ? {} : { authFailure: outcome.authFailure }),
    });
  });
}

/** The log line's `writesMaybeMade`, when the operation has any. */
function writesMaybeMade({ writesMaybeMade = [], writeUnderway }: OperationOutcome, operation: OperationScope): { writesMaybeMade?: string[] } {
  const cut = writeUnderway !== undefined && operation.requests > writeUnderway.requestsBefore ? [writeUnderway.field] : [];
  const maybeMade = [...writesMaybeMade, ...cut];
  return maybeMade.length > 0 ? { writesMaybeMade: maybeMade } : {};
}

/** Apollo's answer, sent: its codes into the log line when Apollo refused the request itself, its size checked. */
async function sendAnswer(
  res: ServerResponse,
  response: HTTPGraphQLResponse,
  { logger, requestId, outcome, maxAnswerBytes, unmakeableAnswer, answerAdmission }: Pick<EndpointParts, 'logger' | 'maxAnswerBytes' | 'unmakeableAnswer' | 'answerAdmission'> & { requestId: string; outcome: OperationOutcome },
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
