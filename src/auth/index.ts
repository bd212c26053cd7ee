import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.ts';
import { hasCredentials, hostnameOf, isLoopbackHost } from '../support/url.ts';
import { answerPreflight, answerStrayPreflight, corsGrant, grantCors } from './cors.ts';
import { createAuthenticator, isOpen, type Authenticate, type AuthSettings } from './verify.ts';

export { AccessGuard, callerForLog, OPEN_IDENTITY, type AccountReach, type Identity } from './access.ts';
export { ADMIN_SCOPE, type AuthSettings } from './verify.ts';

/** What the gateway's HTTP layer needs to know about who may call it and from where. */
export interface GatewayAccessOptions {
  host: string;
  development: boolean;
  /** Unset or without a key: open mode (every caller admin), allowed on loopback only. */
  auth?: AuthSettings | undefined;
  /** Exact origins (`https://app.example.com`) allowed to call from a browser; none by default. */
  corsOrigins?: readonly string[] | undefined;
  /** Default: on in development and in open mode, off otherwise. */
  introspection?: boolean | undefined;
}

export interface GatewayAccess {
  readonly authenticate: Authenticate;
  /** No authentication configured: every caller is admin (loopback only). */
  readonly open: boolean;
  readonly introspection: boolean;
  /** The CORS grant of an answer to a request from `origin` (its `Origin` header): see corsGrant. */
  corsGrant(origin: string | undefined): Array<[string, string]>;
  /** Sets the CORS grant of the answer to `req` on `res`: every answer of the gateway's but the IDE's. */
  grantCors(req: IncomingMessage, res: ServerResponse): void;
  /** Answers a CORS preflight of `/graphql`, its grant set already; true when `req` was one. */
  answerPreflight(req: IncomingMessage, res: ServerResponse): boolean;
  /** Answers a CORS preflight from an allowed origin of a path not served, so that its request reads the 404; true when it did. */
  answerStrayPreflight(req: IncomingMessage, res: ServerResponse): boolean;
  /**
   * Whether a request's `Host` may be served. In open mode, only loopback names: a web page whose own host
   * name an attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with the gateway in the browser's
   * eyes, and would otherwise act as admin with no CORS check in its way.
   */
  acceptsHost(host: string | undefined): boolean;
  /** What keeps AUTH_JWKS_URL's key set from verifying tokens now, for a check at start (Authenticator.keySetProblem). */
  keySetProblem(): Promise<string | undefined>;
  /** Releases what verifying tokens holds open (the key set's connections through the egress proxy): at shutdown. */
  close(): Promise<void>;
}

/**
 * The gateway's access policy from its options. Refuses to build an open gateway on a non-loopback
 * interface (configuration validation says so first; this keeps programmatic starts just as safe).
 */
export function createGatewayAccess(options: GatewayAccessOptions, logger: Logger): GatewayAccess {
  const open = isOpen(options.auth);
  if (open) {
    if (!isLoopbackHost(options.host)) {
      throw new Error(`refusing to serve ${options.host} without authentication: set AUTH_JWT_SECRET or AUTH_JWKS_URL`);
    }
    logger.announce('warn', 'authentication is off (neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set): every caller is admin; serving loopback only');
  }
  // fetch refuses such a URL and quotes it whole in its error, which would reach the log on every token.
  if (options.auth?.jwksUrl && hasCredentials(options.auth.jwksUrl)) {
    throw new Error('the JWKS URL must not carry credentials (user:password@): a key set is public, and fetch refuses such URLs');
  }
  if (options.auth?.jwksUrl && (!options.auth.audience || !options.auth.issuer)) {
    // An identity provider signs tokens for every application it serves; without these two checks any of
    // them is good here. Left optional by the contract, so a warning rather than a refusal to start.
    const unset = [options.auth.audience ? undefined : 'AUTH_AUDIENCE', options.auth.issuer ? undefined : 'AUTH_ISSUER'].filter(Boolean).join(' and ');
    const accepted = options.auth.audience
      ? 'a token for this audience is accepted whoever issued it (a provider serving several tenants signs theirs with the same keys)'
      : 'any token the identity provider signs, for any application, is accepted';
    logger.announce('warn', `AUTH_JWKS_URL is set without ${unset}: ${accepted}; set both`, {
      audience: options.auth.audience ? 'set' : 'unset',
      issuer: options.auth.issuer ? 'set' : 'unset',
    });
  }
  const origins = new Set(options.corsOrigins ?? []);
  const authenticator = createAuthenticator(options.auth, logger);
  return {
    authenticate: authenticator.authenticate,
    open,
    introspection: options.introspection ?? (options.development || open),
    corsGrant: (origin) => corsGrant(origin, origins),
    grantCors: (req, res) => grantCors(req, res, origins),
    answerPreflight: (req, res) => answerPreflight(req, res, origins),
    answerStrayPreflight: (req, res) => answerStrayPreflight(req, res, origins),
    // A request without Host (HTTP/1.0) cannot come from a browser, which always sends one.
    acceptsHost: (host) => !open || host === undefined || isLoopbackHost(hostnameOf(host)),
    keySetProblem: () => authenticator.keySetProblem(),
    close: () => authenticator.close(),
  };
}
