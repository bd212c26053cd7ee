import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Request headers a browser frontend may send: the bearer token, the JSON body's type, a request id, Apollo's
 * CSRF-preflight ones, and those common client libraries add by themselves once configured: Apollo Client's
 * client name and version (its `clientAwareness`), W3C Trace Context and Baggage, Sentry's trace, Datadog RUM's
 * and New Relic's browser agents' (each sends its own besides, or instead of, Trace Context). One header
 * missing here fails the browser's preflight, and with it every request of that frontend. The gateway reads
 * none of the added ones; allowing them gives a page nothing it could not send without CORS.
 */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'x-request-id',
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'apollographql-client-name',
  'apollographql-client-version',
  'traceparent',
  'tracestate',
  'baggage',
  'sentry-trace',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-origin',
  'x-datadog-sampling-priority',
  'newrelic',
].join(', ');
/** How long a browser may reuse a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** The response headers a frontend reads: the request id, the 401's challenge, when to retry (a budget's 429, a load cap's or a key set's 503). */
const EXPOSED_HEADERS = 'x-request-id, www-authenticate, retry-after';

/**
 * The CORS grant of an answer to a request from `origin` (its `Origin` header; `undefined` when it sent none or
 * it could not be read): exact origins only (`CORS_ORIGINS`), none by default. Credentials are not allowed
 * because the gateway reads no cookies: a token travels in `Authorization`, which a page of another origin
 * cannot attach for the user. The one place that says which headers a grant is made of: every answer of the
 * gateway's takes it from here (the handler's through `grantCors`, those written by hand for a request Node's
 * parser refused in client-error.ts), so that a frontend can read every refusal, not see an opaque failure.
 */
export function corsGrant(origin: string | undefined, allowedOrigins: ReadonlySet<string>): Array<[string, string]> {
  // Caches must not hand one origin's answer to another.
  if (allowedOrigins.size === 0) return [];
  if (origin === undefined || !allowedOrigins.has(origin)) return [['vary', 'Origin']];
  return [
    ['vary', 'Origin'],
    ['access-control-allow-origin', origin],
    ['access-control-expose-headers', EXPOSED_HEADERS],
  ];
}

/** Sets the CORS grant (corsGrant) of the answer to `req` on `res`, before any answer is written. */
export function grantCors(req: IncomingMessage, res: ServerResponse, allowedOrigins: ReadonlySet<string>): void {
  for (const [name, value] of corsGrant(req.headers.origin, allowedOrigins)) res.setHeader(name, value);
}

/**
 * Answers a CORS preflight for `/graphql` (an `OPTIONS` request), whose grant `grantCors` has set already.
 * Returns true when the request was a preflight and has been answered.
 */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, allowedOrigins: ReadonlySet<string>): boolean {
  if (req.method !== 'OPTIONS') return false;
  req.resume();
  // A refused origin gets no CORS headers, so the browser stops there; the status says nothing more.
  const grant = req.headers.origin !== undefined && allowedOrigins.has(req.headers.origin) ? PREFLIGHT_GRANT : {};
  res.writeHead(204, { allow: 'GET, POST, OPTIONS', ...grant });
  res.end();
  return true;
}

/**
 * Answers a CORS preflight from an allowed origin for a path the gateway does not serve (a frontend's URL
 * without /graphql, or with a trailing slash): granted, so that the request itself goes out and gets its 404,
 * whose grant lets the page read it. Refused, the browser tells the page only that the request failed and its
 * developer a CORS error, for a mistake in the URL. Returns true when it answered; anything else gets the 404.
 */
export function answerStrayPreflight(req: IncomingMessage, res: ServerResponse, allowedOrigins: ReadonlySet<string>): boolean {
  const { origin, 'access-control-request-method': method } = req.headers;
  if (req.method !== 'OPTIONS' || method === undefined || origin === undefined || !allowedOrigins.has(origin)) return false;
  req.resume();
  res.writeHead(204, PREFLIGHT_GRANT);
  res.end();
  return true;
}

/** What a preflight from an allowed origin is granted: the methods and headers a frontend sends, for how long. */
const PREFLIGHT_GRANT: Readonly<Record<string, string>> = {
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': ALLOWED_HEADERS,
  'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
};
