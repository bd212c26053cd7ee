import { createHash } from 'node:crypto';
import { GraphQLError } from 'graphql';
import {
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { HeaderMap } from '@apollo/server';
import { ErrorCode } from '../errors.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import type { Logger } from '../logging/logger.ts';
import type { EgressProxy } from '../upstream/egress-proxy.ts';
import { OPEN_IDENTITY, type Identity } from './access.ts';
import { VerifiedTokens } from './verified-tokens.ts';
import { JWKS_FAILURE_BACKOFF_MS, JWKS_MAX_AGE_MS, KeySetUnavailable, openKeySet, reportKeySetFailure } from './key-set.ts';
import { keySetProblem } from './key-set-check.ts';

/** A request's bearer token verified into the caller's identity, or refused (401, or 503 while the key set cannot be had). */

/** How the gateway verifies its callers; with neither `jwtSecret` nor `jwksUrl` it runs open. */
export interface AuthSettings {
  /** `AUTH_JWT_SECRET`: HS256 tokens are verified with it, and only with it. */
  jwtSecret?: string | undefined;
  /** `AUTH_JWKS_URL`: RS256/ES256 tokens are verified against this key set, and only against it. */
  jwksUrl?: string | undefined;
  /** `AUTH_ISSUER`: when set, `iss` must equal it. */
  issuer?: string | undefined;
  /** `AUTH_AUDIENCE`: when set, `aud` must be or contain it (with a list, one of them). */
  audience?: string | readonly string[] | undefined;
  /** The egress proxy the key set is fetched through (`HTTPS_PROXY`, unless `NO_PROXY` names its host). */
  jwksProxy?: EgressProxy | undefined;
  /**
   * Least time between two fetches of the key set when a token names a key it lacks (a rotation):
   * bounds how often forged `kid`s make the gateway refetch. Default 30 s; tests lower it.
   */
  jwksCooldownMs?: number | undefined;
  /** How long the key set is not asked for again after it could not be fetched. Default 5 s; tests lower it. */
  jwksFailureBackoffMs?: number | undefined;
}

/** The admin scope of the contract's `scope` claim. */
export const ADMIN_SCOPE = 'contextio:admin';

/**
 * Leeway for `exp`/`nbf` between the token issuer's clock and ours: small enough that an expired token
 * stops working within half a minute, large enough for ordinary NTP drift.
 */
const CLOCK_TOLERANCE_SECONDS = 30;

/** Real tokens are far smaller; a larger header is refused before any parsing. */
const MAX_TOKEN_LENGTH = 8_192;

/** The two allow-lists: a key only ever verifies the algorithms of its own kind (no HS/RS confusion). */
const SECRET_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'ES256'];

/** Whether the gateway runs open: every caller admin. */
export function isOpen(settings: AuthSettings | undefined): boolean {
  return !settings?.jwtSecret && !settings?.jwksUrl;
}

/** Turns a request's `Authorization` header into its identity, or refuses with `UNAUTHENTICATED`. */
export type Authenticate = (authorization: string | undefined, requestId: string) => Promise<Identity>;

/** The request authenticator, and the connections it holds open. */
export interface Authenticator {
  readonly authenticate: Authenticate;
  /**
   * What keeps AUTH_JWKS_URL's key set from verifying tokens (`keySetProblem`), undefined without one; the
   * private keys and secrets it publishes said now, once, as verifying would say them at its first fetch.
   */
  keySetProblem(): Promise<string | undefined>;
  /** Closes the key set's connections through the egress proxy (its own agent's): once no token is verified any more. */
  close(): Promise<void>;
}

/**
 * Builds the request authenticator. Messages name what was wrong with a token, never its content: no
 * claim value, header or part of the token reaches an error or a log line.
 */
export function createAuthenticator(settings: AuthSettings | undefined, logger: Logger): Authenticator {
  if (!settings || isOpen(settings)) return { authenticate: async () => OPEN_IDENTITY, keySetProblem: async () => undefined, close: async () => {} };
  const { jwtSecret, jwksUrl, jwksProxy, issuer, audience } = settings;
  const secret = jwtSecret ? new TextEncoder().encode(jwtSecret) : undefined;
  const keySet = jwksUrl ? openKeySet({ ...settings, jwksUrl }, secret, logger) : undefined;
  const audiences = audience === undefined ? undefined : [audience].flat();
  const common: JWTVerifyOptions = {
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // A token that never expires is a password that cannot be revoked.
    requiredClaims: ['exp'],
    ...(issuer ? { issuer } : {}),
    ...(audiences ? { audience: audiences } : {}),
  };

  const verified = new VerifiedTokens(VERIFIED_TOKENS);

  const authenticate: Authenticate = async (authorization, requestId) => {
    const token = bearerToken(authorization);
    // The key set's fetch as verification begins: a token verified with a key set is remembered for it, not for
    // a fetch that lands while its signature is checked (whose set may lack its key). One whose verification
    // fetched the set is then verified once more before it is answered from memory.
    const keySetFetch = keySet?.fetchedAt();
    const keySetAge = keySet?.age();
    const known = verified.get(token, keySetFetch);
    if (known !== undefined) return known;
    let alg: unknown;
    let kid: unknown;
    let enc: unknown;
    try {
      ({ alg, kid, enc } = decodeProtectedHeader(token));
    } catch {
      throw unauthenticated('The bearer token is not a well-formed JWT');
    }
    // A JWE's header names its content encryption (`enc`), which no signed token's does: an access token encrypted by
    // the identity provider (Auth0's for an API set to use JWE; oidc-provider and Keycloak can encrypt theirs too) is
    // one this gateway cannot read. Said as an algorithm refused, it sent the operator to the gateway's keys, where
    // the fix is at the provider.
    if (enc !== undefined) throw unauthenticated('The bearer token is encrypted (a JWE), not a signed JWT: ask the identity provider for a signed JWT access token');
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...common, algorithms: SECRET_ALGORITHMS }));
      } else if (typeof alg === 'string' && JWKS_ALGORITHMS.includes(alg) && keySet) {
        ({ payload } = await verifyWithKeySet(token, (header, jws) => keySet.keyOf(header, jws, requestId), { ...common, algorithms: JWKS_ALGORITHMS }));
      } else {
        throw unauthenticated('The token is signed with an algorithm this gateway does not accept');
      }
    } catch (error) {
      if (error instanceof GraphQLError) throw error;
      if (!(error instanceof joseErrors.JOSEError) && !(error instanceof KeySetUnavailable)) {
        // Not the fetch (KeySetUnavailable wraps each of its failures) nor the token: a key of the set this
        // gateway cannot use (an RSA key under 2048 bits, say). A 503 would tell the caller to retry, for ever.
        keySet?.unusable(kid, error, requestId);
        throw unauthenticated('No key of the configured key set verifies the token');
      }
      throw refusal(error, requestId, logger, { issuer, audiences });
    }
    const identity = identityOf(payload, token);
    // `exp` is required, so a number here; a token is accepted until then and the tolerance after. One verified
    // with a key set is remembered no longer than its keys are trusted without fetching the set again: past
    // that, verifying it would have fetched the set, and found its key withdrawn.
    const viaKeySet = alg !== 'HS256';
    const expiresAtMs = ((payload.exp ?? 0) + CLOCK_TOLERANCE_SECONDS) * 1000;
    verified.set(token, identity, expiresAtMs, viaKeySet, keySetFetch, viaKeySet ? JWKS_MAX_AGE_MS - (keySetAge ?? Infinity) : Infinity);
    return identity;
  };
  // A fetch still running (past its request's end) is cut short: the gateway is stopping.
  return {
    authenticate,
    keySetProblem: async () => (jwksUrl && keySet ? keySetProblem(jwksUrl, jwksProxy, keySet.onSecretKey) : undefined),
    close: async () => keySet?.close(),
  };
}

/**
 * Tokens whose verification is remembered (src/auth/verified-tokens.ts): a few thousand callers' tokens, a few
 * MB at most, each re-verified after 5 minutes at the latest.
 */
const VERIFIED_TOKENS = { capacity: 10_000, maxChars: 4 * 1024 * 1024, maxAgeMs: 5 * 60_000 };

/**
 * jwtVerify against a key set, trying in turn each key that fits a token without a `kid` (optional, RFC 7517):
 * during a rotation the set holds two of one type, and jose leaves choosing to its caller. The set is the
 * identity provider's, so the keys tried are few.
 */
async function verifyWithKeySet(token: string, keySet: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<{ payload: JWTPayload }> {
  try {
    return await jwtVerify(token, keySet, options);
  } catch (error) {
    if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
    // A key the gateway cannot use (an RSA key under 2048 bits) is passed over for the next: only when none
    // verifies the token is it said.
    let unusable: unknown;
    for await (const key of error) {
      try {
        return await jwtVerify(token, key, options);
      } catch (inner) {
        if (inner instanceof joseErrors.JWSSignatureVerificationFailed) continue;
        if (inner instanceof joseErrors.JOSEError) throw inner;
        unusable ??= inner;
      }
    }
    throw unusable ?? new joseErrors.JWSSignatureVerificationFailed();
  }
}

/** The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110). */
function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw unauthenticated('Authentication required: send Authorization: Bearer <token>', false);
  }
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization);
  // Said so, not as a header of the wrong form: a well-formed token can pass it (Azure AD's carrying many groups).
  if (match && match[1]!.length > MAX_TOKEN_LENGTH) {
    throw unauthenticated(`The bearer token is longer than ${MAX_TOKEN_LENGTH} characters, the most this gateway reads: ask the identity provider for a shorter one (fewer claims)`, true);
  }
  if (!match) {
    // The placeholder itself, as the IDE's example headers and the docs write it, sent before a token was put in
    // (its `<` is no token's character, so it is among these): "must be "Bearer <token>"" would read as if what
    // was sent were right.
    if (/^\s*bearer +<token> *$/i.test(authorization)) {
      throw unauthenticated('The Authorization header holds the placeholder "Bearer <token>": put a JWT in place of <token>', true);
    }
    // Several Authorization headers reach here joined by ", " (no token holds a comma): each alone may be
    // "Bearer <token>", so saying it must be would not tell the caller, or a proxy's operator, what is wrong.
    if (authorization.includes(',')) {
      throw unauthenticated('The request sends more than one Authorization header (or one joining several with a comma): send one, "Bearer <token>"', /^\s*bearer\b/i.test(authorization));
    }
    // Another scheme (a browser's cached Basic credentials) is no bearer token sent: no error code.
    throw unauthenticated('The Authorization header must be "Bearer <token>" with a JWT', /^\s*bearer\b/i.test(authorization));
  }
  return match[1]!;
}

/** The identity a verified token (`payload`, from `token`) grants; a claim of the wrong shape refuses the token as malformed. */
function identityOf(payload: JWTPayload, token: string): Identity {
  const sub: unknown = payload.sub;
  // RFC 7519 makes it a string; some identity providers write a numeric user id as a number. Only a whole one a
  // number holds exactly is taken as its digits: past 2^53 JSON.parse rounds it, and another user's id would be
  // read (9007199254740993 as 9007199254740992): two users one caller, the log naming the wrong one. A fraction is no
  // user id, and its digits may be rounded too.
  if (sub !== undefined && typeof sub !== 'string' && !(typeof sub === 'number' && Number.isSafeInteger(sub))) {
    throw unauthenticated('The token\'s "sub" claim must be a string (or a whole number up to 2^53 - 1, which a number holds exactly)');
  }
  const subject = sub === undefined || sub === '' ? undefined : String(sub);
  // Validated by jose where an issuer is required; otherwise only logged, so any other shape is left out.
  const issuer = typeof payload.iss === 'string' && payload.iss !== '' ? payload.iss : undefined;
  const scope = payload['scope'];
  if (scope !== undefined && typeof scope !== 'string') {
    throw unauthenticated('The token\'s "scope" claim must be a space-separated string');
  }
  // Checked for an admin too, which does not need it: a claim of another type is an issuer's mistake, said at once.
  const accounts = payload['accounts'];
  if (accounts !== undefined && !(Array.isArray(accounts) && accounts.every((id) => typeof id === 'string' && id !== ''))) {
    throw unauthenticated('The token\'s "accounts" claim must be an array of account ids');
  }
  // Subjects are unique per issuer; a token without one is counted on its own, by a digest of what is signed
  // (no token is kept): the signature can be respelt and still verify (a trailing `=`, unused low bits of its
  // last character, ES256's mirrored S), and each spelling would be a new caller. An admin is counted by no
  // budget, but its log line names it so all the same: its writes are what an audit asks about.
  const tokenDigest = subject === undefined ? createHash('sha256').update(token.slice(0, token.lastIndexOf('.'))).digest('base64url') : undefined;
  if (scope?.split(' ').includes(ADMIN_SCOPE)) return { kind: 'admin', issuer, subject, tokenDigest, open: false };
  // By the issuer as logged (an `iss` of no string, or empty, is none): callers told apart only by such a claim would
  // be counted apart yet logged alike.
  const caller = tokenDigest !== undefined ? `token ${tokenDigest}` : JSON.stringify([issuer ?? null, subject]);
  const adminScopeInScp = scope === undefined && scopesOf(payload['scp']).includes(ADMIN_SCOPE);
  return { kind: 'scoped', issuer, subject, accounts: new Set((accounts as string[] | undefined) ?? []), tokenDigest, caller, ...(adminScopeInScp ? { adminScopeInScp } : {}) };
}

/** The scopes of an `scp` claim as identity providers write it: an array (Okta's) or a space-separated string (Azure AD's). */
function scopesOf(scp: unknown): unknown[] {
  if (typeof scp === 'string') return scp.split(' ');
  return Array.isArray(scp) ? scp : [];
}

/**
 * jose's verdict as a fixed message: jose's own messages are fine today, but are not ours to promise. `expected`, the
 * issuer and audience required, tells an `iss` or `aud` that misses them by a trailing slash alone.
 */
function refusal(error: unknown, requestId: string, logger: Logger, expected: { issuer: string | undefined; audiences: string[] | undefined }): GraphQLError {
  if (error instanceof joseErrors.JWTExpired) return unauthenticated('The token has expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return unauthenticated(error.reason === 'invalid' ? 'The token has an "nbf" claim that is not a number' : 'The token is not valid yet');
      case 'iat':
        // jose checks only the claim's type (its age needs `maxTokenAge`, which `exp` makes needless).
        return unauthenticated('The token has an "iat" claim that is not a number');
      case 'iss':
        if (error.reason === 'missing') return unauthenticated('The token has no "iss" (issuer) claim, which this gateway requires');
        return unauthenticated(`The token was issued by an issuer this gateway does not accept${slashApart(error.payload.iss, expected.issuer === undefined ? undefined : [expected.issuer], 'iss', 'AUTH_ISSUER')}`);
      case 'aud':
        if (error.reason === 'missing') return unauthenticated('The token has no "aud" (audience) claim, which this gateway requires');
        return unauthenticated(`The token is meant for another audience${slashApart(error.payload.aud, expected.audiences, 'aud', 'AUTH_AUDIENCE')}`);
      case 'exp':
        return unauthenticated('The token has no valid "exp" claim');
      default:
        return unauthenticated('The token has a claim that is not valid');
    }
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return unauthenticated('The token\'s signature is not valid');
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return unauthenticated('The token is signed with an algorithm this gateway does not accept');
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return unauthenticated('No key of the configured key set verifies the token');
  }
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JOSENotSupported) {
    return unauthenticated('The bearer token is not a well-formed JWT');
  }
  // Left: the key set could not be fetched or read. That is the gateway's fault, not the caller's, so it
  // is not a 401 that would make a client throw its token away. Said once per failed fetch.
  const unavailable = error instanceof KeySetUnavailable ? error : new KeySetUnavailable(retryAfterSeconds(JWKS_FAILURE_BACKOFF_MS), error);
  if (unavailable.cause !== undefined) reportKeySetFailure(unavailable.cause, requestId, logger);
  return new GraphQLError('The token could not be verified right now; try again later', {
    extensions: {
      code: ErrorCode.INTERNAL_SERVER_ERROR,
      http: { status: 503, headers: new HeaderMap([['retry-after', String(unavailable.retryAfterSeconds)]]) },
    },
  });
}

/**
 * What a refusal adds when the claim (`claimed`, or one of its entries) is one of `expected` but for a trailing slash: Auth0's
 * issuer ends with one and its tenant's domain does not, and API identifiers are URLs written either way. Told only
 * that the value was not accepted, the operator compares two that look the same. Nothing of the token's is said but
 * that one character, and only of a token whose signature verified (jose checks claims after it).
 */
function slashApart(claimed: unknown, expected: string[] | undefined, claim: string, setting: string): string {
  if (expected === undefined) return '';
  const values: unknown[] = Array.isArray(claimed) ? claimed : [claimed];
  const near = values.some((value) => typeof value === 'string' && expected.some((one) => value === `${one}/` || `${value}/` === one));
  return near ? `: its "${claim}" and ${setting} differ only by a trailing slash` : '';
}

/**
 * Refuses the operation as a whole: HTTP 401, with the challenge RFC 6750 asks for. A bearer token that was
 * sent and is not valid (expired, wrongly signed, malformed …) adds `error="invalid_token"`, which a client
 * library reads to get a new token rather than ask the user to sign in; a request with no bearer token at all
 * (`tokenSent` false) gets no error code, as RFC 6750 §3.1 says.
 */
function unauthenticated(message: string, tokenSent = true): GraphQLError {
  const challenge = tokenSent ? 'Bearer realm="contextio-graphql", error="invalid_token"' : 'Bearer realm="contextio-graphql"';
  return new GraphQLError(message, {
    extensions: {
      code: ErrorCode.UNAUTHENTICATED,
      http: { status: 401, headers: new HeaderMap([['www-authenticate', challenge]]) },
    },
  });
}
