import { createHash, timingSafeEqual } from 'node:crypto';
import { GraphQLError } from 'graphql';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  jwksCache,
  jwtVerify,
  type ExportedJWKSCache,
  type JWK,
  type JWKSCacheInput,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type FetchImplementation,
  type RemoteJWKSet,
} from 'jose';
import { fetch as fetchThrough, type Dispatcher } from 'undici';
import { ByteCollector } from '../support/byte-collector.ts';
import { throughProxy, type EgressProxy } from '../upstream/egress-proxy.ts';
import { HeaderMap } from '@apollo/server';
import { ErrorCode } from '../errors.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import type { Logger } from '../logging/logger.ts';
import { OPEN_IDENTITY, type Identity } from './access.ts';
import { VerifiedTokens } from './verified-tokens.ts';
import { shortened } from '../support/shortened.ts';
import { urlForLog } from '../support/url.ts';
import { failureReason } from '../support/failure-reason.ts';

/** How the gateway verifies its callers; with neither `jwtSecret` nor `jwksUrl` it runs open. */
export interface AuthSettings {
  /** `AUTH_JWT_SECRET`: HS256 tokens are verified with it, and only with it. */
  jwtSecret?: string | undefined;
  /** `AUTH_JWKS_URL`: RS256/ES256 tokens are verified against this key set, and only against it. */
  jwksUrl?: string | undefined;
  /** `AUTH_ISSUER`: when set, `iss` must equal it. */
  issuer?: string | undefined;
  /** `AUTH_AUDIENCE`: when set, `aud` must contain it. */
  audience?: string | undefined;
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

/** Key set fetches give up after this; the key set is then refetched on a later token. */
const JWKS_TIMEOUT_MS = 5_000;
/**
 * After the key set could not be fetched (the identity provider down, a wrong URL), it is not asked for again
 * for this long (tokens the keys already fetched cannot verify are answered 503): jose's own cooldown starts
 * only after a fetch that succeeded, so without this every request, anyone's, unauthenticated ones included,
 * would make the gateway fetch the key set and write an error line.
 */
const JWKS_FAILURE_BACKOFF_MS = 5_000;
/** Keys are trusted this long before the key set is fetched again even without an unknown `kid`. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/**
 * While the key set cannot be fetched, the keys of the last fetch go on verifying their tokens until this long
 * after it (as .NET's identity libraries keep their "last known good" keys for an hour): an outage of the
 * provider's key set alone does not refuse every caller 10 minutes into it. A key the provider withdraws
 * meanwhile cannot be known of until the set can be fetched; past this, the gateway stops trusting what it
 * cannot check, and answers 503.
 */
const JWKS_LAST_GOOD_MS = 60 * 60_000;
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
  if (isOpen(settings)) return { authenticate: async () => OPEN_IDENTITY, keySetProblem: async () => undefined, close: async () => {} };
  const { jwtSecret, jwksUrl, issuer, audience } = settings!;
  const secret = jwtSecret ? new TextEncoder().encode(jwtSecret) : undefined;
  // jose writes each key set it fetches here (the same object, `uat` the time of the fetch): empty until the first.
  // (jose's own type for it, a union with an empty record, would narrow to that record here: `uat` read as never set.)
  const fetched: Partial<ExportedJWKSCache> = {};
  /** The keys of this set already said to be unusable, by `kid`: each once (a set's keys are few; bounded all the same). */
  const unusableKeysSaid = new Set<string>();
  /**
   * The same for the private keys and symmetric secrets it publishes, said as each fetch leaves them out; and
   * apart, AUTH_JWT_SECRET published, so that a kid already said of another secret (or none, as another had)
   * does not silence it.
   */
  const secretKeysSaid: SecretKeysSaid = { others: new Set<string>(), ownSecret: new Set<string>() };
  const onSecretKey = (key: JWK) => secretKeyPublished(secretKeysSaid, key, secret, logger);
  const dispatcher = jwksUrl ? keySetDispatcher(settings!.jwksProxy) : undefined;
  const jwks = jwksUrl
    ? backingOffAfterFailure(
        createRemoteJWKSet(new URL(jwksUrl), {
          timeoutDuration: JWKS_TIMEOUT_MS,
          cooldownDuration: settings!.jwksCooldownMs ?? 30_000,
          cacheMaxAge: JWKS_MAX_AGE_MS,
          [jwksCache]: fetched as JWKSCacheInput,
          [customFetch]: publicKeysOnly(fetchCapped(dispatcher), onSecretKey),
        }),
        fetched,
        settings!.jwksFailureBackoffMs ?? JWKS_FAILURE_BACKOFF_MS,
        logger,
      )
    : undefined;
  const common: JWTVerifyOptions = {
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // A token that never expires is a password that cannot be revoked.
    requiredClaims: ['exp'],
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
  };

  const verified = new VerifiedTokens(VERIFIED_TOKENS);

  const authenticate: Authenticate = async (authorization, requestId) => {
    const token = bearerToken(authorization);
    // The key set's fetch as verification begins: a token verified with a key set is remembered for it, not for
    // a fetch that lands while its signature is checked (whose set may lack its key). One whose verification
    // fetched the set is then verified once more before it is answered from memory.
    const keySetFetch = fetched.uat;
    const known = verified.get(token, keySetFetch);
    if (known !== undefined) return known;
    let alg: unknown;
    let kid: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
    } catch {
      throw unauthenticated('The bearer token is not a well-formed JWT');
    }
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...common, algorithms: SECRET_ALGORITHMS }));
      } else if (typeof alg === 'string' && JWKS_ALGORITHMS.includes(alg) && jwks) {
        ({ payload } = await verifyWithKeySet(token, (header, jws) => jwks(header, jws, requestId), { ...common, algorithms: JWKS_ALGORITHMS }));
      } else {
        throw unauthenticated('The token is signed with an algorithm this gateway does not accept');
      }
    } catch (error) {
      if (error instanceof GraphQLError) throw error;
      if (!(error instanceof joseErrors.JOSEError) && !(error instanceof KeySetUnavailable)) {
        // Not the fetch (KeySetUnavailable wraps each of its failures) nor the token: a key of the set this
        // gateway cannot use (an RSA key under 2048 bits, say). A 503 would tell the caller to retry, for ever.
        unusableKey(unusableKeysSaid, kid, error, requestId, logger);
        throw unauthenticated('No key of the configured key set verifies the token');
      }
      throw refusal(error, requestId, logger);
    }
    const identity = identityOf(payload, token);
    // `exp` is required, so a number here; a token is accepted until then and the tolerance after. One verified
    // with a key set is remembered no longer than its keys are trusted without fetching the set again: past
    // that, verifying it would have fetched the set, and found its key withdrawn.
    const viaKeySet = alg !== 'HS256';
    const expiresAtMs = ((payload.exp ?? 0) + CLOCK_TOLERANCE_SECONDS) * 1000;
    verified.set(token, identity, viaKeySet ? Math.min(expiresAtMs, (keySetFetch ?? 0) + JWKS_MAX_AGE_MS) : expiresAtMs, viaKeySet, keySetFetch);
    return identity;
  };
  // A fetch still running (past its request's end) is cut short: the gateway is stopping.
  return {
    authenticate,
    keySetProblem: async () => (jwksUrl ? keySetProblem(jwksUrl, settings!.jwksProxy, onSecretKey) : undefined),
    close: async () => dispatcher?.destroy(),
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

/** Says once (by `kid`, in `said`) that a key of the set cannot verify tokens. */
function unusableKey(said: Set<string>, kid: unknown, error: unknown, requestId: string, logger: Logger): void {
  const name = newlySaid(said, kid);
  if (name === undefined) return;
  logger.warn('a key of the JWKS cannot verify tokens: the tokens it signs are refused', {
    requestId,
    kid: name,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  });
}

/** The kids said of the secrets a set publishes: AUTH_JWT_SECRET's apart from the others'. */
interface SecretKeysSaid {
  readonly others: Set<string>;
  readonly ownSecret: Set<string>;
}

/**
 * Says once (by `kid`, in `said`) that the set publishes a private key or a symmetric secret, by its `kid` and
 * type alone: never a part of the key.
 */
function secretKeyPublished(said: SecretKeysSaid, key: JWK, jwtSecret: Uint8Array | undefined, logger: Logger): void {
  const ownSecret = jwtSecret !== undefined && isSymmetricSecret(key) && sameBytes(key.k, jwtSecret);
  const name = newlySaid(ownSecret ? said.ownSecret : said.others, key.kid);
  if (name === undefined) return;
  const fields = { kid: name, kty: typeof key.kty === 'string' ? shortened(key.kty, 20) : '(no type)' };
  if (ownSecret) {
    // The gateway's own HS256 secret in a public document: every token it accepts by that secret can be forged.
    logger.error('the JWKS publishes AUTH_JWT_SECRET itself (a key of type oct): anyone who read the set can sign HS256 tokens this gateway accepts. Replace AUTH_JWT_SECRET now, and have the identity provider revoke the published secret', fields);
    return;
  }
  if (isPrivateKey(key)) {
    logger.warn('the JWKS publishes a private key: it is left out, and the tokens it signs are refused. Anyone who read the set can sign tokens with it: have the identity provider replace it and publish only public keys', fields);
    return;
  }
  // Never one the gateway verifies with (HS256 takes AUTH_JWT_SECRET alone), but a secret all the same, leaked to
  // whoever read the set: anything that trusts it (this gateway too, were it AUTH_JWT_SECRET) takes their tokens.
  logger.warn('the JWKS publishes a symmetric secret (a key of type oct): it is left out. Anyone who read the set has the secret and can sign tokens with it wherever it is trusted: have the identity provider revoke it and publish only public keys', fields);
}

/** A key's `kid` as a log line names it, when it was not said yet (then noted in `said`, at most 100 of them). */
function newlySaid(said: Set<string>, kid: unknown): string | undefined {
  const name = typeof kid === 'string' ? shortened(kid, 100) : '(no kid)';
  if (said.has(name) || said.size >= 100) return undefined;
  said.add(name);
  return name;
}

/** Whether `key` holds private material, as jose tells one (`d`, or an AKP key's `priv`). */
function isPrivateKey(key: JWK): boolean {
  return key.d !== undefined || key.priv !== undefined;
}

/** Whether `key` is a symmetric secret (type `oct`, its `k` the secret itself), which has no public half to publish. */
function isSymmetricSecret(key: JWK): boolean {
  return key.kty === 'oct';
}

/** Whether `encoded`, a JWK's base64url `k`, holds exactly the bytes of `secret` (compared in constant time). */
function sameBytes(encoded: unknown, secret: Uint8Array): boolean {
  if (typeof encoded !== 'string') return false;
  const published = Buffer.from(encoded, 'base64url');
  return published.length === secret.length && timingSafeEqual(published, secret);
}

/** Whether `key` is one a public set must never hold: a private key or a symmetric secret. */
function isSecretKey(key: JWK): boolean {
  return isPrivateKey(key) || isSymmetricSecret(key);
}

/**
 * The key set's fetch, with the private keys and symmetric secrets it publishes (an identity provider's mistake:
 * a set is public) left out, each handed to `onSecretKey`, and so are the private keys' public halves; a public
 * key's `key_ops` are cut to `verify` where they name it beside other uses (`hasOpsBesideVerify`). Left in,
 * jose refuses a private key only when a token names it, and then as a set it cannot read: a 503 its client
 * retries for ever, and a pause of every fetch. Left out, it is a key the set lacks: its tokens are refused with
 * 401, no part of it is kept, and the other public keys verify theirs as ever. A symmetric secret verifies no
 * token here (HS256 takes AUTH_JWT_SECRET alone): kept, it would only be a secret held for nothing.
 */
const publicKeysOnly = (fetchImpl: FetchImplementation, onSecretKey: (key: JWK) => void): FetchImplementation => async (url, options) => {
  // A 200 (fetchCapped throws for any other status).
  const response = await fetchImpl(url, options);
  // Anything but a set of keys is jose's to refuse, as it was sent.
  const set: unknown = await response.clone().json().catch(() => undefined);
  if (!isKeyList(set) || !set.keys.some((key) => isSecretKey(key) || hasOpsBesideVerify(key))) return response;
  for (const key of set.keys) if (isSecretKey(key)) onSecretKey(key);
  const leaked = leakedKeys(set.keys);
  return Response.json({ ...set, keys: set.keys.filter((key) => !leaked.has(key)).map(forVerifyingOnly) });
};

/**
 * Whether a public key's `key_ops` name `verify` beside other uses (`sign`: an identity provider listing its key
 * pair's uses on the public half). jose imports a key for the uses its JWK names, and WebCrypto imports a public key
 * for `verify` alone: the import failed, and every token of a key the check at start counts as usable was refused.
 */
function hasOpsBesideVerify(key: JWK): boolean {
  return Array.isArray(key.key_ops) && key.key_ops.includes('verify') && key.key_ops.some((op) => op !== 'verify');
}

/** The key as the gateway uses it, to verify tokens: its `key_ops` cut to `verify` where they name it beside others. */
function forVerifyingOnly(key: JWK): JWK {
  return hasOpsBesideVerify(key) ? { ...key, key_ops: ['verify'] } : key;
}

/**
 * The keys of `keys` whose secret it publishes: each symmetric secret, each private key, and its public half
 * wherever it is in the set (under its kid or another), which verifies what anyone who read the set signs.
 */
function leakedKeys(keys: JWK[]): Set<JWK> {
  const leaked = new Set(keys.filter(isPrivateKey).map(publicPartOf));
  return new Set(keys.filter((key) => isSymmetricSecret(key) || leaked.has(publicPartOf(key))));
}

/** A key's public parameters as one string: the same for a private key and its public half. */
function publicPartOf(key: JWK): string {
  return JSON.stringify([key.kty, key.crv, key.n, key.e, key.x, key.y, key.pub]);
}

/** Whether `value` is a JSON object with a list of objects as its `keys`. */
function isKeyList(value: unknown): value is { keys: JWK[] } {
  if (typeof value !== 'object' || value === null || !('keys' in value) || !Array.isArray(value.keys)) return false;
  return value.keys.every((key: unknown) => typeof key === 'object' && key !== null && !Array.isArray(key));
}

/**
 * The key set's fetch, its body read up to `MAX_JWKS_BYTES`: a provider's set is a few KB, and a 90 MB one would
 * otherwise be taken whole (every verification then costing ~25 ms). Larger, it is a set that could not be read.
 * Through `dispatcher` when one is given (the egress proxy's).
 */
const fetchCapped = (dispatcher: Dispatcher | undefined): FetchImplementation => async (url, options) => {
  // Node's fetch, or undici's through the egress proxy: Node's own takes no dispatcher of this undici's.
  const response = dispatcher === undefined ? await fetch(url, options) : ((await fetchThrough(url, { ...options, dispatcher } as Parameters<typeof fetchThrough>[1])) as unknown as Response);
  if (response.status !== 200) {
    await response.body?.cancel();
    throw unexpectedStatus(response, url);
  }
  if (response.body === null) return response;
  const tooLarge = () => new joseErrors.JWKSInvalid(`the key set is larger than the ${MAX_JWKS_BYTES} bytes accepted`);
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_JWKS_BYTES) {
    await response.body.cancel();
    throw tooLarge();
  }
  const body = new ByteCollector(MAX_JWKS_BYTES, declared);
  try {
    // Leaving the loop by the throw cancels the rest of the body.
    for await (const chunk of response.body) if (!body.add(chunk)) throw tooLarge();
  } catch (error) {
    throw bodyReadFailure(error, options?.signal);
  }
  return new Response(body.bytes(), { status: 200, headers: response.headers });
};

/**
 * An answer of the key set's URL other than 200, as the failure says it: its status, and for a redirect where it
 * points (jose's own message says neither), its query's values and any credentials left out.
 */
function unexpectedStatus(response: Response, url: string): Error {
  if (response.status < 300 || response.status > 399) return new joseErrors.JOSEError(`the key set's URL answered ${response.status}, not 200`);
  const location = response.headers.get('location');
  // Short enough that the start-up check's reason (200 characters) holds it whole.
  const where = location === null ? 'without a Location' : `to ${shortened(urlForLog(withoutCredentials(location, url)), 100)}`;
  // jose asks for redirects not to be followed: AUTH_JWKS_URL names the key set's own URL.
  return new joseErrors.JOSEError(`the key set's URL answered ${response.status}, a redirect (not followed) ${where}`);
}

/**
 * `location` resolved against `base`, without the user name and password it may carry. When it is no URL (a port
 * out of range, a space in its host), as written but for whatever precedes an `@` in its authority: found after
 * the scheme and any slashes or backslashes, as the URL parser finds it (`https:\\user:pw@…`, `https:///user:pw@…`).
 */
function withoutCredentials(location: string, base: string): string {
  try {
    const resolved = new URL(location, base);
    resolved.username = '';
    resolved.password = '';
    return resolved.href;
  } catch {
    return location.replace(/^([^:/\\?#]*:)?([/\\]*)[^/?#]*@/, '$1$2');
  }
}

/** The egress proxy's agent for the key set's fetches, with their deadline for a CONNECT; none without a proxy. */
function keySetDispatcher(proxy: EgressProxy | undefined): Dispatcher | undefined {
  return proxy === undefined ? undefined : throughProxy(proxy, {}, JWKS_TIMEOUT_MS);
}

/**
 * A failure while the key set's body was read, as jose says a body it cannot read itself: past the deadline a
 * `JWKSTimeout`, else the set unreadable (`ERR_JOSE_GENERIC`). Left as undici throws it (a connection broken
 * off mid-answer is a bare `TypeError: terminated`), it would be taken for a key that cannot be imported: every
 * token refused with 401 instead of the keys of the last fetch verifying them, and a fetch per request.
 */
function bodyReadFailure(error: unknown, signal: AbortSignal | null | undefined): unknown {
  if (error instanceof joseErrors.JOSEError) return error;
  if (signal?.aborted) return new joseErrors.JWKSTimeout(undefined, { cause: error });
  const reason = failureReason(error instanceof Error && error.cause instanceof Error ? error.cause : error);
  return new joseErrors.JOSEError(`the key set's answer broke off before its end (${shortened(reason, 200)})`, { cause: error });
}

/** The largest key set read. */
const MAX_JWKS_BYTES = 1024 * 1024;

/** Failures of the key set already logged: requests that waited on the same fetch all get its one error. */
const reportedFailures = new WeakSet<object>();

/**
 * The key set could not be had for a token: its fetch failed just now (`cause`), or it was not asked for again
 * so soon after a failure and the keys already fetched lack the token's.
 */
class KeySetUnavailable extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    override readonly cause?: unknown,
  ) {
    super('the key set could not be fetched');
  }
}

/**
 * What jose throws when the key set itself could not be had (fetched in time, as JSON), not a token's fault.
 * Anything else it throws while getting a key comes from importing that one key (WebCrypto's DataError for a
 * point off its curve, say): the key is unusable, the set is not unavailable.
 */
function isKeySetFailure(error: unknown): boolean {
  // fetch's own failures (refused, DNS, TLS, reset) are all this one TypeError, with the reason as its cause.
  if (!(error instanceof joseErrors.JOSEError)) return error instanceof TypeError && error.message === 'fetch failed';
  return error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || error.code === 'ERR_JOSE_GENERIC';
}

/** What jose gives a key set to find a token's key: its protected header, and the token. */
type KeyRequest = Parameters<JWTVerifyGetKey>;
/** A key of the key set for a token, as jose asks for it, with the id of the request it verifies. */
type KeySetKeyOf = (...args: [...KeyRequest, requestId: string]) => ReturnType<JWTVerifyGetKey>;

/**
 * The key set, not fetched again for `backoffMs` after a fetch failed. Meanwhile, and whenever a fetch fails,
 * the keys of the last fetch go on verifying the tokens they sign while jose counts them fresh, and after
 * that until `JWKS_LAST_GOOD_MS` past their fetch (each failed fetch said once, at error): only a token
 * naming another key (a rotation, or a forged `kid`, which anyone can send) gets the 503.
 */
function backingOffAfterFailure(remote: RemoteJWKSet, fetched: Partial<ExportedJWKSCache>, backoffMs: number, logger: Logger): KeySetKeyOf {
  let failedAt: number | undefined;
  /** The keys of the last fetch, imported once (`remote.jwks()` hands out a fresh copy each call). */
  let cached: { uat: number; keyOf: JWTVerifyGetKey } | undefined;
  const retryAfter = (waited: number) => retryAfterSeconds(backoffMs - waited);
  /** The token's key among those of the last fetch, while they may be used; else the set is unavailable. */
  const lastGoodKey = async (...[header, token, unavailable]: [...KeyRequest, unavailable: () => KeySetUnavailable]) => {
    const { uat, jwks } = fetched;
    if (uat === undefined || jwks === undefined || !(remote.fresh || Date.now() - uat < JWKS_LAST_GOOD_MS)) throw unavailable();
    if (cached?.uat !== uat) cached = { uat, keyOf: createLocalJWKSet(jwks) };
    try {
      return await cached.keyOf(header, token);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey) throw unavailable();
      throw error;
    }
  };
  return async (header, token, requestId) => {
    const waited = failedAt === undefined ? Infinity : performance.now() - failedAt;
    if (waited < backoffMs) return lastGoodKey(header, token, () => new KeySetUnavailable(retryAfter(waited)));
    try {
      const key = await remote(header, token);
      failedAt = undefined;
      return key;
    } catch (error) {
      if (!isKeySetFailure(error)) throw error;
      failedAt = performance.now();
      const said = () => reportKeySetFailure(error, requestId, logger, { lastFetchedSecondsAgo: Math.round((Date.now() - fetched.uat!) / 1000) });
      try {
        const key = await lastGoodKey(header, token, () => new KeySetUnavailable(retryAfter(0), error));
        said();
        return key;
      } catch (lookup) {
        // The 503's refusal says the failure (its cause), and a key set it cannot read; anything else the keys of
        // the last fetch answer is said here: the several that fit a token without a `kid` (a rotation), which
        // verifyWithKeySet then tries without coming back here, or a key the gateway cannot use.
        if (!(lookup instanceof KeySetUnavailable) && !isKeySetFailure(lookup)) said();
        throw lookup;
      }
    }
  };
}

/**
 * What keeps the key set at `jwksUrl` from verifying tokens, fetched once now as a token's verification would
 * fetch it (its deadline, its size cap, jose's checks of its shape); undefined when it holds a key of a type the
 * gateway verifies (RSA or EC). For a check at start: a wrong URL or an identity provider out of reach would
 * otherwise show only with the first token, as a 503 and an error line. Each private key or secret the set
 * publishes is handed to `onSecretKey` (the authenticator's, which says each once), so that it is said at start too.
 */
export async function keySetProblem(jwksUrl: string, proxy?: EgressProxy, onSecretKey?: (key: JWK) => void): Promise<string | undefined> {
  const dispatcher = keySetDispatcher(proxy);
  const remote = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, [customFetch]: fetchCapped(dispatcher) });
  try {
    await remote.reload();
  } catch (error) {
    return `it could not be fetched and read (${shortened(failureReason(error), 200)})`;
  } finally {
    // Its connections are this check's alone.
    void dispatcher?.close();
  }
  const keys = remote.jwks()?.keys ?? [];
  if (onSecretKey) for (const key of keys) if (isSecretKey(key)) onSecretKey(key);
  const leaked = leakedKeys(keys);
  if (!keys.some((key) => !leaked.has(key) && verifiesTokens(key))) {
    return `it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least ${MIN_RSA_BITS} bits (${keys.length} key${keys.length === 1 ? '' : 's'}: ${describedKeys(keys, leaked)})`;
  }
  return undefined;
}

/** jose's floor for RS256 keys: it refuses to verify with a smaller modulus. */
const MIN_RSA_BITS = 2048;

/**
 * Whether `key` is one jose would pick for an RS256 or ES256 token (whether it imports is another matter): an EC
 * key on another curve (an identity provider signing ES384), or one its own `alg`, `use` or `key_ops` keep from
 * verifying these signatures, verifies none of the tokens the gateway accepts.
 */
function verifiesTokens(key: JWK): boolean {
  if (key.kty === 'EC') return key.crv === 'P-256' && restrictionOf(key, 'ES256') === undefined;
  return key.kty === 'RSA' && rsaModulusBits(key) >= MIN_RSA_BITS && restrictionOf(key, 'RS256') === undefined;
}

/** What of `key` keeps it from verifying `alg` signatures, as jose reads it (its `alg`, `use`, `key_ops`); undefined when nothing does. */
function restrictionOf(key: JWK, alg: string): string | undefined {
  if (key.alg !== undefined && key.alg !== alg) return String(key.alg);
  if (key.use !== undefined && key.use !== 'sig') return String(key.use);
  if (key.key_ops !== undefined && !(Array.isArray(key.key_ops) && key.key_ops.includes('verify'))) {
    return Array.isArray(key.key_ops) ? key.key_ops.join('/') : String(key.key_ops);
  }
  return undefined;
}

/** The bit length of an RSA key's modulus `n` (0 when it has none). */
function rsaModulusBits(key: JWK): number {
  const modulus = Buffer.from(typeof key.n === 'string' ? key.n : '', 'base64url');
  const first = modulus.findIndex((byte) => byte !== 0);
  return first === -1 ? 0 : (modulus.length - first - 1) * 8 + (32 - Math.clz32(modulus[first]!));
}

/** One key as a start-up warning names it: its type (said private for a private key, secret for a symmetric one), an RSA key's size, an EC key's curve, what it is restricted to. */
function describedKey(key: JWK, leaked: Set<JWK>): string {
  const privately = isPrivateKey(key) ? 'private ' : isSymmetricSecret(key) ? 'secret ' : leaked.has(key) ? 'public half of a published private ' : '';
  if (key.kty === 'RSA' || key.kty === 'EC') {
    const kind = key.kty === 'RSA' ? `${privately}RSA of ${rsaModulusBits(key)} bits` : `${privately}EC ${key.crv ?? 'without a curve'}`;
    const restriction = restrictionOf(key, key.kty === 'RSA' ? 'RS256' : 'ES256');
    return restriction === undefined ? kind : `${kind} for ${restriction}`;
  }
  return `${privately}${key.kty ?? 'no type'}`;
}

/** A key set's keys as a start-up warning lists them: each type once, with the RSA keys' sizes. */
function describedKeys(keys: JWK[], leaked: Set<JWK>): string {
  const kinds = new Set(keys.map((key) => describedKey(key, leaked)));
  return shortened([...kinds].join(', '), 200);
}

/** The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110). */
function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw unauthenticated('Authentication required: send Authorization: Bearer <token>', false);
  }
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization);
  if (!match || match[1]!.length > MAX_TOKEN_LENGTH) {
    // Another scheme (a browser's cached Basic credentials) is no bearer token sent: no error code.
    throw unauthenticated('The Authorization header must be "Bearer <token>" with a JWT', /^\s*bearer\b/i.test(authorization));
  }
  return match[1]!;
}

/** The identity a verified token (`payload`, from `token`) grants; a claim of the wrong shape refuses the token as malformed. */
function identityOf(payload: JWTPayload, token: string): Identity {
  const sub: unknown = payload.sub;
  // RFC 7519 makes it a string; some identity providers write a numeric user id as a number.
  if (sub !== undefined && typeof sub !== 'string' && !(typeof sub === 'number' && Number.isFinite(sub))) {
    throw unauthenticated('The token\'s "sub" claim must be a string (or a number)');
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
  if (scope?.split(' ').includes(ADMIN_SCOPE)) return { kind: 'admin', issuer, subject, open: false };
  // Subjects are unique per issuer; a token without one is counted on its own, by a digest of what is signed
  // (no token is kept): the signature can be respelt and still verify (a trailing `=`, unused low bits of its
  // last character, ES256's mirrored S), and each spelling would be a new caller.
  const tokenDigest = subject === undefined ? createHash('sha256').update(token.slice(0, token.lastIndexOf('.'))).digest('base64url') : undefined;
  const caller = tokenDigest !== undefined ? `token ${tokenDigest}` : JSON.stringify([payload.iss ?? null, subject]);
  return { kind: 'scoped', issuer, subject, accounts: new Set((accounts as string[] | undefined) ?? []), tokenDigest, caller };
}

/** jose's verdict as a fixed message: jose's own messages are fine today, but are not ours to promise. */
function refusal(error: unknown, requestId: string, logger: Logger): GraphQLError {
  if (error instanceof joseErrors.JWTExpired) return unauthenticated('The token has expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return unauthenticated(error.reason === 'invalid' ? 'The token has an "nbf" claim that is not a number' : 'The token is not valid yet');
      case 'iat':
        // jose checks only the claim's type (its age needs `maxTokenAge`, which `exp` makes needless).
        return unauthenticated('The token has an "iat" claim that is not a number');
      case 'iss':
        return unauthenticated(error.reason === 'missing' ? 'The token has no "iss" (issuer) claim, which this gateway requires' : 'The token was issued by an issuer this gateway does not accept');
      case 'aud':
        return unauthenticated(error.reason === 'missing' ? 'The token has no "aud" (audience) claim, which this gateway requires' : 'The token is meant for another audience');
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
 * Logs a failed fetch of the key set once, however many requests waited on it. `lastGood`: the keys of the
 * last fetch verified the token all the same, fetched that long ago.
 */
function reportKeySetFailure(cause: unknown, requestId: string, logger: Logger, lastGood?: { lastFetchedSecondsAgo: number }): void {
  if (cause instanceof Object && reportedFailures.has(cause)) return;
  if (cause instanceof Object) reportedFailures.add(cause);
  const message = lastGood === undefined
    ? 'the JWKS could not be fetched or read'
    : `the JWKS could not be fetched or read: the keys of its last fetch verify tokens meanwhile, up to ${JWKS_LAST_GOOD_MS / 60_000} minutes after it`;
  logger.error(message, { requestId, error: failureReason(cause), ...lastGood });
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
