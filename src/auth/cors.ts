import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Request headers a browser frontend may send: the bearer token, the JSON body's type, a request id, Apollo's
 * CSRF-preflight ones, and those common client libraries add by themselves once configured: Apollo Client's
 * client name and version (its `clientAwareness`), W3C Trace Context and Baggage, Sentry's trace. One header
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
].join(', ');
/** How long a browser may reuse a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * CORS for `/graphql`: exact origins only (`CORS_ORIGINS`), none by default. Credentials are not
 * allowed because the gateway reads no cookies: a token travels in `Authorization`, which a page of
 * another origin cannot attach for the user. Returns true when the request was a preflight and has been
 * answered.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, allowedOrigins: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  // Caches must not hand one origin's answer to another.
  if (allowedOrigins.size > 0) res.setHeader('vary', 'Origin');
  const allowed = origin !== undefined && allowedOrigins.has(origin);
  if (allowed) {
    res.setHeader('access-control-allow-origin', origin);
    // A page reads only the headers listed here: when to retry (a budget's 429, a key set's 503) included.
    res.setHeader('access-control-expose-headers', 'x-request-id, www-authenticate, retry-after');
  }
  if (req.method !== 'OPTIONS') return false;
  req.resume();
  const headers: Record<string, string> = { allow: 'GET, POST, OPTIONS' };
  if (allowed) {
    headers['access-control-allow-methods'] = 'GET, POST, OPTIONS';
    headers['access-control-allow-headers'] = ALLOWED_HEADERS;
    headers['access-control-max-age'] = String(PREFLIGHT_MAX_AGE_SECONDS);
  }
  // A refused origin gets no CORS headers, so the browser stops there; the status says nothing more.
  res.writeHead(204, headers);
  res.end();
  return true;
}
