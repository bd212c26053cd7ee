import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handleApiRequest, type ApiContext } from './api.ts';
import { handleConnectPage, sendInvalidLink, type ConnectPageContext } from './connect-page.ts';
import { clientErrorAnswerer, hostFilter, refuseConnect, sendError } from './http.ts';
import { headerAsSent, splitTarget, type RequestTarget } from '../http/request.ts';
import { hostnameOf, urlHostOf } from '../support/url.ts';
import { hasHttp10TransferEncoding, hostHeaderFault, readEveryHeader, receiveDeadlines } from '../http/client-error.ts';
import { listenOn } from '../http/listen.ts';
import { DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET, reachableFromElsewhere } from './config.ts';
import { OAuthVerifier } from './oauth.ts';
import { HourlyRateLimit } from '../support/hourly-rate-limit.ts';
import { SourceCallbacks } from './source-callback.ts';
import { EmulatorStore, type SeedName } from './store.ts';
import { shortened } from '../support/shortened.ts';
import { realTimer, type WaitTimer } from '../support/wait-timer.ts';
import { applyFault, FaultRules, RequestLog, type EmulatorRequestLogEntry, type FaultRule } from './test-hooks.ts';

export type { EmulatorRequestLogEntry } from './test-hooks.ts';

/**
 * The emulator's HTTP server: a Context.IO 2.0-compatible API under `/2.0`, the connect pages under
 * `/connect`, and around the API the test hooks of test-hooks.ts (request log, in-flight counters, injected faults).
 */

export interface EmulatorOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default `dev-key`. */
  consumerKey?: string;
  /** Default `dev-secret`. */
  consumerSecret?: string;
  /** Example data when no data file exists; default `demo`. */
  seed?: SeedName;
  /** Persist state here: loaded on start when it exists, saved atomically after every write and on close. */
  dataFile?: string;
  /** Told of each save to `dataFile` that failed (default: a line on stderr); the state stays in memory. */
  onSaveError?: (error: Error) => void;
  /**
   * Told of each source callback that could not be made (refused address, unreachable, timed out; see
   * source-callback.ts): the flow goes on regardless, as Context.IO's did. Default: nothing said.
   */
  onSourceCallbackFailed?: (error: Error) => void;
  /**
   * Told of each request answered 500 for an error of the emulator's own (a bug), with its method and path
   * (a connect page's token left out). Default: a line on stderr with the error's stack.
   */
  onInternalError?: (error: unknown, request: string) => void;
  /** Clock in ms (default `Date.now`): timestamps, token expiry, the connect page's resubmit window and the OAuth timestamp check. */
  now?: () => number;
  /**
   * The timer of the injected faults' waits (`latencyMs`, `answerAfterMs`): calls `callback` after `ms` and
   * returns what cancels it. Default: `setTimeout`. A test passes its own to see each wait asked for, and how
   * long, and to end it when it chooses instead of waiting it out.
   */
  faultTimer?: WaitTimer;
  /** The request log shows this many entries at most, the latest (default 100 000; 0 keeps none). */
  requestLogLimit?: number;
  /**
   * The origin browsers and clients use to reach the emulator, e.g. `http://devbox.lan:4010`, when it is not
   * the address it listens on (bound to 0.0.0.0, behind a proxy, in a container). The links it writes
   * (`resource_url`, `browser_redirect_url`) start with it. Default: the address it listens on.
   */
  publicUrl?: string;
  /**
   * Host names answered besides loopback names and `publicUrl`'s host (`*`: any); others get 421. A web page
   * that re-points its own name at 127.0.0.1 (DNS rebinding) could otherwise use the emulator with the public
   * development key. Unset, an emulator bound beyond loopback answers any name: reaching it from elsewhere,
   * by whatever name, is then the point.
   */
  allowedHosts?: readonly string[];
  /**
   * How long a client may take to send a whole request, headers and body; then it gets 408 and its connection is
   * closed. Default 30 s, as the gateway's: Node's own deadlines (60 s for the headers, 5 minutes for the whole)
   * let a client trickling its body, which is read before its signature is checked, hold a connection and its
   * bytes that long.
   */
  requestReceiveTimeoutMs?: number;
  /**
   * Calls the key may make in any hour, as Context.IO limits a key (5,000 at the start): past it each API
   * call is answered 429 with `Retry-After` until the hour's oldest call is an hour old. Default: no limit.
   */
  rateLimitPerHour?: number;
}

export interface Emulator {
  /** Base URL ending in `/2.0`. */
  readonly url: string;
  /** The base URL clients elsewhere use (`publicUrl`'s origin + `/2.0`); `url` when none is set. */
  readonly publicUrl: string;
  /** `http://host:port`. */
  readonly origin: string;
  readonly consumerKey: string;
  readonly consumerSecret: string;
  /** API requests served (only `/2.0/...`, rejected ones included), in the order they ended. */
  readonly requests: readonly EmulatorRequestLogEntry[];
  clearRequests(): void;
  /** API requests currently being handled (delayed and hanging ones included). */
  readonly inFlight: number;
  /** Highest {@link inFlight} since start or the last {@link resetPeak}. */
  readonly peakInFlight: number;
  resetPeak(): void;
  /** Adds a fault rule; returns a function that removes it. */
  addFault(rule: FaultRule): () => void;
  clearFaults(): void;
  /** Direct data access, bypassing HTTP. */
  readonly store: EmulatorStore;
  /** Answers the writes in flight once saved, persists (with a data file), then closes every socket, hanging ones included. */
  close(): Promise<void>;
}

/** How long a request may take to arrive whole by default (`EmulatorOptions.requestReceiveTimeoutMs`). */
const DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS = 30_000;

/** The request log's default limit, so long benchmarks stay bounded. */
const DEFAULT_REQUEST_LOG_LIMIT = 100_000;

/** Starts an emulator and resolves once it listens. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const now = options.now ?? Date.now;
  const faultTimer = options.faultTimer ?? realTimer;
  const host = options.host ?? '127.0.0.1';
  /** Set once listening: whether a `Host` is answered depends on the address actually bound. */
  let servesHost: (header: string | undefined) => boolean = () => false;
  const consumerKey = options.consumerKey ?? DEFAULT_CONSUMER_KEY;
  const consumerSecret = options.consumerSecret ?? DEFAULT_CONSUMER_SECRET;
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Context.IO emulator: port must be an integer from 0 to 65535, got ${port}`);
  }

  const store = await EmulatorStore.open({
    now,
    seed: options.seed ?? 'demo',
    ...(options.dataFile ? { dataFile: options.dataFile } : {}),
    ...(options.onSaveError ? { onSaveError: options.onSaveError } : {}),
  });
  const verifier = new OAuthVerifier({ consumerKey, consumerSecret, now });

  const requestLog = new RequestLog(options.requestLogLimit ?? DEFAULT_REQUEST_LOG_LIMIT);
  const faults = new FaultRules();
  let closing: Promise<void> | undefined;
  const sourceCallbacks = new SourceCallbacks({
    allowLoopback: !reachableFromElsewhere({ host, publicUrl: options.publicUrl, allowedHosts: options.allowedHosts }),
    onFailed: options.onSourceCallbackFailed,
  });
  /** Settles when each open API response closes; close() waits for them so the log and counters are final. */
  const openResponses = new Set<Promise<void>>();

  const onInternalError =
    options.onInternalError ??
    ((error: unknown, request: string) => process.stderr.write(`Context.IO emulator: internal error on ${request}: ${(error as Error | undefined)?.stack ?? String(error)}\n`));
  const apiContext: ApiContext = {
    store,
    verifier,
    origin: '',
    baseUrl: '',
    onInternalError,
    ...(options.rateLimitPerHour === undefined ? {} : { rateLimit: new HourlyRateLimit(options.rateLimitPerHour) }),
  };

  /** What the connect page works with, the tokens it used lately among it (connect-page.ts). */
  const connectPage: ConnectPageContext = { store, now, notifySourceCallback: (result) => sourceCallbacks.notify(result), onInternalError, recentlyUsed: new Map() };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, target: RequestTarget) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const { 'x-request-id': requestId, traceparent, tracestate } = req.headers;
    const entry: EmulatorRequestLogEntry = {
      method,
      path: target.path.slice('/2.0'.length),
      query: target.query,
      status: 0,
      ...(typeof requestId === 'string' ? { requestId } : {}),
      ...(typeof traceparent === 'string' ? { traceparent } : {}),
      ...(typeof tracestate === 'string' ? { tracestate } : {}),
    };
    const closed = requestLog.track(entry, res).then(() => {
      openResponses.delete(closed);
    });
    openResponses.add(closed);
    const fault = faults.take(method, entry.path);
    if (fault && (await applyFault(fault, req, res, faultTimer))) return;
    await handleApiRequest(apiContext, req, res, { ...target, path: entry.path });
  };

  /**
   * The connections an answer ahead closes: Node still hands over the requests pipelined behind it, and drops their
   * answers. Run, a write among them would be made for nobody (RFC 9112 §9.6: not to be processed), as the gateway
   * does not run them either; and one smuggled in the body of a request framed two ways (an HTTP/1.0 one with a
   * Transfer-Encoding) would be run at all.
   */
  const closingAhead = new WeakSet<Socket>();
  const requestReceiveTimeoutMs = options.requestReceiveTimeoutMs ?? DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS;
  // Node's own refusal of an HTTP/1.1 request without Host is a bare 400: answered here in the API's shape instead,
  // as is a request with more than one (hostHeaderFault).
  const server = createServer({ requireHostHeader: false, ...receiveDeadlines(requestReceiveTimeoutMs) }, (req, res) => {
    if (closingAhead.has(req.socket)) {
      req.resume();
      return;
    }
    // One that asks for it (HTTP/1.0 without keep-alive, `Connection: close`) has the last answer of its connection.
    if (!res.shouldKeepAlive) closingAhead.add(req.socket);
    const refuseAndClose = (message: string) => {
      closingAhead.add(req.socket);
      sendError(res, 400, message, undefined, { connection: 'close' });
    };
    const hostFault = hostHeaderFault(req);
    if (hostFault) {
      req.resume();
      return refuseAndClose(hostFault === 'missing'
        ? 'an HTTP/1.1 request needs a Host header: send the host name and port the emulator is reached at'
        : 'a request may carry one Host header: send the host name and port the emulator is reached at once');
    }
    // Its body left unread: where it ends is what a proxy in front and Node may not agree on.
    if (hasHttp10TransferEncoding(req)) {
      return refuseAndClose('an HTTP/1.0 request cannot carry a Transfer-Encoding: send its body with a Content-Length, or the request as HTTP/1.1');
    }
    const target = splitTarget(req.url ?? '/');
    // An absolute-form target's authority stands in for the Host header (RFC 9112 §3.2.2).
    const host = target?.origin?.host ?? req.headers.host;
    if (!servesHost(host)) {
      req.resume();
      const name = shortened(hostnameOf(headerAsSent(host ?? '')), 100);
      // 421 Misdirected Request: the client addressed this server by a name it does not answer to. (A 403
      // would reach the gateway's callers as a permission problem of theirs.)
      return sendError(res, 421, `host "${name}" is not served: the emulator answers loopback names, EMULATOR_PUBLIC_URL's host and EMULATOR_ALLOWED_HOSTS`);
    }
    if (target === undefined) {
      req.resume();
      return sendError(res, 400, 'the request target is no path and no http(s) URL without user information: send a path, such as /2.0/accounts');
    }
    const { path } = target;
    if (path === '/2.0' || path.startsWith('/2.0/')) {
      void handleApi(req, res, target);
      return;
    }
    const connect = /^\/connect\/([^/]+)\/?$/.exec(path);
    if (connect) {
      void handleConnectPage(connectPage, req, res, connect[1]!);
      return;
    }
    req.resume();
    if (path === '/connect' || path.startsWith('/connect/')) return sendInvalidLink(res);
    sendError(res, 404, `unknown resource ${path}; the API lives under /2.0`);
  });
  // Keep-alive connections would otherwise hold close() open; it closes them explicitly instead.
  server.keepAliveTimeout = 5_000;
  readEveryHeader(server);
  server.on('clientError', clientErrorAnswerer(() => server.requestTimeout));
  server.on('connect', refuseConnect);

  await listenOn(server, port, host);

  // A connection Node could not accept (the process out of file descriptors) is an error of the server, which
  // unheard ends the process (the gateway's too, for the embedded one). Its client sees the connection fail.
  server.on('error', () => {});
  const address = server.address() as AddressInfo;
  servesHost = hostFilter(address.address, options.allowedHosts, options.publicUrl);
  const origin = `http://${urlHostOf(address.address)}:${address.port}`;
  const url = `${origin}/2.0`;
  const linkOrigin = options.publicUrl ? new URL(options.publicUrl).origin : origin;
  apiContext.origin = linkOrigin;
  apiContext.baseUrl = store.baseUrl = `${linkOrigin}/2.0`;

  return {
    url,
    publicUrl: apiContext.baseUrl,
    origin,
    consumerKey,
    consumerSecret,
    get requests() {
      return requestLog.entries;
    },
    clearRequests() {
      requestLog.clear();
    },
    get inFlight() {
      return requestLog.inFlight;
    },
    get peakInFlight() {
      return requestLog.peakInFlight;
    },
    resetPeak() {
      requestLog.resetPeak();
    },
    addFault(rule) {
      return faults.add(rule);
    },
    clearFaults() {
      faults.clear();
    },
    store,
    close() {
      closing ??= (async () => {
        faults.clear();
        await sourceCallbacks.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // A write in flight is made already and waits for its save, which the close keeps: cut now, its client
        // would take a change that stays for one that failed (and a retry would make it twice). Answered once
        // saved (a save that hangs is the second signal's to end), each answer handed to its socket by the
        // turn after; only then is what still runs (a hanging fault, a body still arriving) cut.
        await store.flush();
        await new Promise((resolve) => setImmediate(resolve));
        server.closeAllConnections();
        await closed;
        await Promise.all(openResponses);
        await store.close();
      })();
      return closing;
    },
  };
}
