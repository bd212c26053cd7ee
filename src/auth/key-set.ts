import { timingSafeEqual } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwksCache,
  type ExportedJWKSCache,
  type JWK,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  type FetchImplementation,
  type RemoteJWKSet,
} from 'jose';
import { errors, fetch as fetchThrough, type Dispatcher } from 'undici';
import { ByteCollector } from '../support/byte-collector.ts';
import { failedOpeningTunnel, proxyRefusalHint, throughProxy, type EgressProxy, type TunnelsOpening } from '../upstream/egress-proxy.ts';
import { proxyRefusalOf, tlsFailureAfter, TUNNEL_CLOSED_UNANSWERED } from '../upstream/failures.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import type { Logger } from '../logging/logger.ts';
import { shortened } from '../support/shortened.ts';
import { urlForLog } from '../support/url.ts';
import { failureReason } from '../support/failure-reason.ts';

/** AUTH_JWKS_URL's key set: fetched (capped, through the egress proxy), its public keys alone kept, and the keys of its last fetch used while it cannot be fetched. */

/** Key set fetches give up after this; the key set is then refetched on a later token. */
export const JWKS_TIMEOUT_MS = 5_000;
/**
 * After the key set could not be fetched (the identity provider down, a wrong URL), it is not asked for again
 * for this long (tokens the keys already fetched cannot verify are answered 503): jose's own cooldown starts
 * only after a fetch that succeeded, so without this every request, anyone's, unauthenticated ones included,
 * would make the gateway fetch the key set and write an error line.
 */
export const JWKS_FAILURE_BACKOFF_MS = 5_000;
/** Keys are trusted this long before the key set is fetched again even without an unknown `kid`. */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/**
 * While the key set cannot be fetched, the keys of the last fetch go on verifying their tokens until this long
 * after it (as .NET's identity libraries keep their "last known good" keys for an hour): an outage of the
 * provider's key set alone does not refuse every caller 10 minutes into it. A key the provider withdraws
 * meanwhile cannot be known of until the set can be fetched; past this, the gateway stops trusting what it
 * cannot check, and answers 503.
 */
const JWKS_LAST_GOOD_MS = 60 * 60_000;
/**
 * While the key set cannot be fetched, how long a token the keys of the last fetch verify waits on the set's next
 * fetch before they answer it: an identity provider answers within it, one that hangs would hold it to the fetch's
 * deadline (`JWKS_TIMEOUT_MS`).
 */
const JWKS_OUTAGE_PATIENCE_MS = 1_000;

/** AUTH_JWKS_URL's key set as the verifier uses it (`openKeySet`). */
export interface KeySet {
  /** The key of a token, fetching the set when it holds none (a 503's KeySetUnavailable when it cannot be had). */
  readonly keyOf: KeySetKeyOf;
  /** When the keys in hand were fetched (`Date.now()`'s ms: which fetch it is), undefined before the first fetch. */
  fetchedAt(): number | undefined;
  /** How long ago they were (monotonic ms), undefined before the first fetch. */
  age(): number | undefined;
  /** Says once by `kid` that a key of the set cannot verify tokens (`error`, what importing it threw). */
  unusable(kid: unknown, error: unknown, requestId: string): void;
  /** Says once by `kid` a private key or a secret the set publishes (each fetch, and the check at start, leave them out). */
  readonly onSecretKey: (key: JWK) => void;
  /** Cuts short a fetch still running: the gateway is stopping. */
  close(): Promise<void>;
}

export interface KeySetSettings {
  jwksUrl: string;
  jwksProxy?: EgressProxy | undefined;
  jwksCooldownMs?: number | undefined;
  jwksFailureBackoffMs?: number | undefined;
}

/** The key set of `jwksUrl`, fetched when a token needs it; `jwtSecret` (AUTH_JWT_SECRET), a secret it must not publish. */
export function openKeySet(settings: KeySetSettings, jwtSecret: Uint8Array | undefined, logger: Logger): KeySet {
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
  const onSecretKey = (key: JWK) => secretKeyPublished(secretKeysSaid, key, jwtSecret, logger);
  const dispatcher = keySetDispatcher(settings.jwksProxy);
  const timed = refetchedByMonotonicClock(
    createRemoteJWKSet(new URL(settings.jwksUrl), {
      timeoutDuration: JWKS_TIMEOUT_MS,
      // jose times both by Date.now(): never, so that it fetches only when told to (refetchedByMonotonicClock).
      cooldownDuration: Infinity,
      cacheMaxAge: Infinity,
      [jwksCache]: fetched as JWKSCacheInput,
      [customFetch]: publicKeysOnly(fetchCapped(dispatcher), onSecretKey),
    }),
    settings.jwksCooldownMs ?? 30_000,
  );
  const keyOf = backingOffAfterFailure(timed, fetched, settings.jwksFailureBackoffMs ?? JWKS_FAILURE_BACKOFF_MS, logger);
  return {
    keyOf: (header, token, requestId) => keyOf(withKidAsDigits(header), token, requestId),
    fetchedAt: () => fetched.uat,
    age: timed.age,
    unusable: (kid, error, requestId) => unusableKey(unusableKeysSaid, kid, error, requestId, logger),
    onSecretKey,
    close: async () => dispatcher?.agent.destroy(),
  };
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
  const name = typeof kid === 'string' ? shortened(kid, 100) : typeof kid === 'number' ? String(kid) : '(no kid)';
  if (said.has(name) || said.size >= 100) return undefined;
  said.add(name);
  return name;
}

/** Whether `key` holds private material, as jose tells one (`d`, or an AKP key's `priv`). */
export function isPrivateKey(key: JWK): boolean {
  return key.d !== undefined || key.priv !== undefined;
}

/** Whether `key` is a symmetric secret (type `oct`, its `k` the secret itself), which has no public half to publish. */
export function isSymmetricSecret(key: JWK): boolean {
  return key.kty === 'oct';
}

/** Whether `encoded`, a JWK's base64url `k`, holds exactly the bytes of `secret` (compared in constant time). */
function sameBytes(encoded: unknown, secret: Uint8Array): boolean {
  if (typeof encoded !== 'string') return false;
  const published = Buffer.from(encoded, 'base64url');
  return published.length === secret.length && timingSafeEqual(published, secret);
}

/** Whether `key` is one a public set must never hold: a private key or a symmetric secret. */
export function isSecretKey(key: JWK): boolean {
  return isPrivateKey(key) || isSymmetricSecret(key);
}

/**
 * The key set's fetch, with the private keys and symmetric secrets it publishes (an identity provider's mistake:
 * a set is public) left out, each handed to `onSecretKey`, and so are the private keys' public halves; a public
 * key is kept for verifying alone (`forVerifyingOnly`: what in it keeps jose from picking it to verify is cut). Left in,
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
  // (Entries that are no JSON object, no key, fetchCapped has left out already: the filter narrows their type.)
  if (!hasKeyList(set)) return response;
  const keys = set.keys.filter(isJsonObject);
  if (!keys.some((key) => isSecretKey(key) || forVerifyingOnly(key) !== key)) return response;
  for (const key of keys) if (isSecretKey(key)) onSecretKey(key);
  const leaked = leakedKeys(keys);
  return Response.json({ ...set, keys: keys.filter((key) => !leaked.has(key)).map(forVerifyingOnly) });
};

/**
 * Whether a public key's `key_ops` name `verify` in a list other than `['verify']`: beside other uses (`sign`: an
 * identity provider listing its key pair's uses on the public half), or more than once. jose imports a key for the
 * uses its JWK names, and WebCrypto imports a public key for `verify` alone: the import failed; and jose picks no key
 * whose uses repeat. Either way every token of a key the check at start (key-set-check.ts) counts as usable was refused.
 */
function opsToCut(key: JWK): boolean {
  return Array.isArray(key.key_ops) && key.key_ops.includes('verify') && key.key_ops.length > 1;
}

/**
 * Whether a key's `ext` (whether WebCrypto may export the key once imported) is there but not a boolean (`"true"`):
 * jose picks no such key, so every token of a key the check at start counts as usable was refused. A key verifying
 * is never exported: the gateway leaves it out, and the key verifies as it would without it.
 */
function hasStrayExt(key: JWK): boolean {
  return key.ext !== undefined && typeof key.ext !== 'boolean';
}

/**
 * Whether a key's `kid` is a number (`7`): a JWT header names its key by a string, and jose compares the two as
 * they are, so the key verified no token that named one. Taken as its digits, as the identity provider meant it.
 */
function hasNumericKid(key: JWK): boolean {
  return typeof key.kid === 'number';
}

/**
 * A token's header whose `kid` is a number (`7`) with it as its digits, as the set's numeric kids are taken
 * (`forVerifyingOnly`): the server that writes one so writes the other so, and jose picks no key for a kid that is
 * no string, so such a token was refused as naming no key of the set (after a fetch) though its key was there.
 */
function withKidAsDigits<Header extends { kid?: unknown }>(header: Header): Header {
  return typeof header.kid === 'number' ? { ...header, kid: String(header.kid) } : header;
}

/**
 * The key as the gateway uses it, to verify tokens: its `key_ops` cut to `verify` where they name it among others,
 * an `ext` that is not a boolean left out, a numeric `kid` as its digits; `key` itself when none of these applies.
 */
export function forVerifyingOnly(key: JWK): JWK {
  if (!opsToCut(key) && !hasStrayExt(key) && !hasNumericKid(key)) return key;
  const kept = { ...key };
  if (hasStrayExt(key)) delete kept.ext;
  if (opsToCut(key)) kept.key_ops = ['verify'];
  if (hasNumericKid(key)) kept.kid = String(key.kid);
  return kept;
}

/**
 * The keys of `keys` whose secret it publishes: each symmetric secret, each private key, and its public half
 * wherever it is in the set (under its kid or another), which verifies what anyone who read the set signs.
 */
export function leakedKeys(keys: JWK[]): Set<JWK> {
  const leaked = new Set(keys.filter(isPrivateKey).map(publicPartOf));
  return new Set(keys.filter((key) => isSymmetricSecret(key) || leaked.has(publicPartOf(key))));
}

/** A key's public parameters as one string: the same for a private key and its public half. */
function publicPartOf(key: JWK): string {
  return JSON.stringify([key.kty, key.crv, key.n, key.e, key.x, key.y, key.pub]);
}

/** Whether `value` is a JSON object with a list as its `keys`. */
function hasKeyList(value: unknown): value is { keys: unknown[] } {
  return typeof value === 'object' && value !== null && 'keys' in value && Array.isArray(value.keys);
}

/**
 * The key set's fetch, its body read up to `MAX_JWKS_BYTES`: a provider's set is a few KB, and a 90 MB one would
 * otherwise be taken whole (every verification then costing ~25 ms). Larger, it is a set that could not be read.
 * Through `through`, the egress proxy's agent, when one is given.
 */
export const fetchCapped = (through: KeySetDispatcher | undefined): FetchImplementation => async (url, options) => {
  // Node's fetch, or undici's through the egress proxy: Node's own takes no dispatcher of this undici's.
  const response = through === undefined ? await fetch(url, options) : await fetchThroughProxy(url, options, through);
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
  let document: unknown;
  try {
    document = JSON.parse(body.bytes().toString('utf8'));
  } catch {
    // Not JSON: jose's to refuse, as it was sent.
    return new Response(body.bytes(), { status: 200, headers: response.headers });
  }
  const discovery = discoveryDocument(document);
  if (discovery !== undefined) throw discovery;
  // An entry that is no JSON object is no key: ignored, as RFC 7517 §5 asks of keys a reader cannot use, where
  // jose refuses the whole set for it (every token then answered 503, the set unreadable). Not when no entry is
  // a key (`{"keys": [1, 2]}`): that is a set gone wrong, whose tokens may be fine (503), not a set of no keys (401).
  if (hasKeyList(document) && document.keys.some(isJsonObject) && !document.keys.every(isJsonObject)) {
    return Response.json({ ...document, keys: document.keys.filter(isJsonObject) });
  }
  return new Response(body.bytes(), { status: 200, headers: response.headers });
};

const isJsonObject = (value: unknown): value is JWK => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Why `document`, a 200's JSON, is no key set when it is an OpenID Connect discovery document (the issuer's
 * `/.well-known/openid-configuration`, given where the `jwks_uri` it names was meant): jose says only that the set
 * is malformed, which sends the operator looking for a broken set. Undefined for anything else, jose's to judge.
 */
function discoveryDocument(document: unknown): Error | undefined {
  if (typeof document !== 'object' || document === null || 'keys' in document || !('jwks_uri' in document) || typeof document.jwks_uri !== 'string') return undefined;
  // Its query's values left out, as a redirect's Location is.
  return new joseErrors.JOSEError(`the answer is an OpenID Connect discovery document, not a key set: AUTH_JWKS_URL is its jwks_uri, ${shortened(urlForLog(document.jwks_uri), 100)}`);
}

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

/** The egress proxy's agent for the key set's fetches, and the proxy, as the failures through it name it. */
export interface KeySetDispatcher {
  agent: Dispatcher;
  proxy: EgressProxy;
  /** Its tunnels not yet open: a fetch out of time while one is waited on the proxy. */
  opening: TunnelsOpening;
}

/** The egress proxy's agent for the key set's fetches, with their deadline for a CONNECT; none without a proxy. */
export function keySetDispatcher(proxy: EgressProxy | undefined): KeySetDispatcher | undefined {
  if (proxy === undefined) return undefined;
  const opening = { count: 0 };
  return { agent: throughProxy(proxy, {}, JWKS_TIMEOUT_MS, opening), proxy, opening };
}

/**
 * undici's fetch through the egress proxy, a tunnel the proxy would not open said as such: fetch reports it as a
 * request "cancelled", the proxy's status two causes down, and the failure line said only "Request was cancelled."
 * (a proxy wanting credentials, or refusing the identity provider's host, sent the operator nowhere).
 */
async function fetchThroughProxy(url: string, options: Parameters<FetchImplementation>[1], { agent, proxy, opening }: KeySetDispatcher): Promise<Response> {
  try {
    return (await fetchThrough(url, { ...options, dispatcher: agent } as Parameters<typeof fetchThrough>[1])) as unknown as Response;
  } catch (error) {
    // Out of time waiting for a tunnel (the fetches of a set are one at a time): the proxy stalled, which jose's
    // own "request timed out" left unsaid, as if the key set's host had not answered.
    if (options?.signal?.aborted && opening.count > 0) {
      throw new joseErrors.JWKSTimeout(`the egress proxy ${proxy.shown} did not open a tunnel to the key set's host within ${JWKS_TIMEOUT_MS} ms`, { cause: error });
    }
    const reason = proxyFailure(error, proxy);
    if (reason === undefined) throw error;
    // Still fetch's TypeError, as any failure to fetch the set: only its reason is told.
    throw new TypeError('fetch failed', { cause: new Error(reason, { cause: error }) });
  }
}

/**
 * A fetch's failure (`error`, with its causes) that was the egress proxy's, as the key set's failure says it,
 * naming the proxy: a tunnel it refused, with its status; its TLS; its connection failing before it answered the
 * CONNECT (refused, reset, closed: a bare `connect ECONNREFUSED 10.0.0.5:3128` or `read ECONNRESET` did not say
 * that was the proxy, where the upstream calls' own failure names it). Undefined for a failure of anything else.
 */
function proxyFailure(error: unknown, proxy: EgressProxy): string | undefined {
  const status = inCauses(error, proxyRefusalOf);
  if (status !== undefined) {
    const hint = proxyRefusalHint(status, proxy, 'AUTH_JWKS_URL');
    return `the egress proxy ${proxy.shown} refused to open a tunnel to the key set's host (HTTP ${status})${hint === undefined ? '' : `: ${hint}`}`;
  }
  const failure = inCauses(error, (cause) => (failedOpeningTunnel(cause) ? cause : undefined));
  if (failure === undefined) return undefined;
  if (failure instanceof errors.SecureProxyConnectionError) {
    const tls = failure.cause as { code?: unknown; reason?: unknown } | undefined;
    const code = String(tls?.code);
    // OpenSSL's own errors carry their reason apart ("wrong version number"), their message adding its internals.
    const reason = `${code}: ${typeof tls?.reason === 'string' ? tls.reason : failureReason(tls)}`;
    return tlsFailureAfter(code, false) === 'certificate'
      ? `the TLS certificate of the egress proxy ${proxy.shown} was refused (${reason})`
      : `the TLS handshake with the egress proxy ${proxy.shown} failed (${reason})`;
  }
  if ((failure as { code?: unknown }).code === TUNNEL_CLOSED_UNANSWERED) {
    return `the egress proxy ${proxy.shown} closed the connection without answering the request for a tunnel to the key set's host`;
  }
  return `the egress proxy ${proxy.shown} could not be reached: ${failureReason(failure)}`;
}

/** The first of `error` and its causes that `pick` finds something in (fetch wraps undici's error twice), what it found. */
function inCauses<T>(error: unknown, pick: (cause: Error) => T | undefined): T | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const found = pick(cause);
    if (found !== undefined) return found;
  }
  return undefined;
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
export class KeySetUnavailable extends Error {
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

/** jose's remote key set with its fetches timed by the monotonic clock (`refetchedByMonotonicClock`). */
interface TimedKeySet {
  /** The token's key, the set fetched first when it is older than `JWKS_MAX_AGE_MS`, or lacks the key and is older than the cooldown. */
  readonly keyOf: JWTVerifyGetKey;
  /** How long ago (`performance.now()`'s ms) the set was last fetched; undefined before the first fetch. */
  age(): number | undefined;
}

/**
 * `remote` (jose's, told never to fetch of itself but the first time) fetched again as jose would, after
 * `JWKS_MAX_AGE_MS`, or for a key it lacks once `cooldownMs` have passed since the last fetch, but timed by
 * `performance.now()`. jose times both by `Date.now()`: a wall clock set back a day (NTP correcting a clock
 * that ran ahead, a VM resumed) held the set fresh, and the refetch cooling down, for that day, so that a key
 * the provider rotated in was refused (401) and one it withdrew went on verifying tokens.
 */
function refetchedByMonotonicClock(remote: RemoteJWKSet, cooldownMs: number): TimedKeySet {
  let fetchedAt: number | undefined;
  const age = () => (fetchedAt === undefined ? undefined : performance.now() - fetchedAt);
  const reload = async () => {
    await remote.reload();
    fetchedAt = performance.now();
  };
  const keyOf: JWTVerifyGetKey = async (header, token) => {
    if ((age() ?? Infinity) >= JWKS_MAX_AGE_MS) await reload();
    try {
      return await remote(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || (age() ?? Infinity) < cooldownMs) throw error;
      await reload();
      return remote(header, token);
    }
  };
  return { keyOf, age };
}

/**
 * The key set, not fetched again for `backoffMs` after a fetch failed. Meanwhile, and whenever a fetch fails,
 * the keys of the last fetch go on verifying the tokens they sign until `JWKS_LAST_GOOD_MS` past their fetch
 * (by the monotonic clock, as their refetch is timed; each failed fetch said once, at error): only a token
 * naming another key (a rotation, or a forged `kid`, which anyone can send) gets the 503.
 */
function backingOffAfterFailure(remote: TimedKeySet, fetched: Partial<ExportedJWKSCache>, backoffMs: number, logger: Logger): KeySetKeyOf {
  let failedAt: number | undefined;
  /** The keys of the last fetch, imported once (`remote.jwks()` hands out a fresh copy each call). */
  let cached: { uat: number; keyOf: JWTVerifyGetKey } | undefined;
  const retryAfter = (waited: number) => retryAfterSeconds(backoffMs - waited);
  /** The token's key among those of the last fetch, while they may be used; else the set is unavailable. */
  const lastGoodKey = async (...[header, token, unavailable]: [...KeyRequest, unavailable: () => KeySetUnavailable]) => {
    const { uat, jwks } = fetched;
    if (uat === undefined || jwks === undefined || !((remote.age() ?? Infinity) < JWKS_LAST_GOOD_MS)) throw unavailable();
    if (cached?.uat !== uat) cached = { uat, keyOf: createLocalJWKSet(jwks) };
    try {
      return await cached.keyOf(header, token);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey) throw unavailable();
      throw error;
    }
  };
  /** The token's key as jose finds it, fetching the set when its keys are stale or lack it; on a failed fetch, the last fetch's. */
  const fetchedKey = async (...[header, token, requestId]: Parameters<KeySetKeyOf>) => {
    try {
      const key = await remote.keyOf(header, token);
      failedAt = undefined;
      return key;
    } catch (error) {
      if (!isKeySetFailure(error)) throw error;
      failedAt = performance.now();
      const said = () => reportKeySetFailure(error, requestId, logger, { lastFetchedSecondsAgo: Math.round((remote.age() ?? 0) / 1000) });
      try {
        const key = await lastGoodKey(header, token, () => new KeySetUnavailable(retryAfter(0), error));
        said();
        return key;
      } catch (lookup) {
        // The 503's refusal says the failure (its cause), and a key set it cannot read; anything else the keys of
        // the last fetch answer is said here: the several that fit a token without a `kid` (a rotation), which
        // verifyWithKeySet (verify.ts) then tries without coming back here, or a key the gateway cannot use.
        if (!(lookup instanceof KeySetUnavailable) && !isKeySetFailure(lookup)) said();
        throw lookup;
      }
    }
  };
  return async (header, token, requestId) => {
    const waited = failedAt === undefined ? Infinity : performance.now() - failedAt;
    if (waited < backoffMs) return lastGoodKey(header, token, () => new KeySetUnavailable(retryAfter(waited)));
    const outage = failedAt !== undefined;
    const fetching = fetchedKey(header, token, requestId);
    if (!outage) return fetching;
    // The last fetch failed: a token the keys of the last good one verify waits on this fetch only so long, then they
    // answer it. An identity provider that hangs would otherwise hold every such token for the fetch's 5 s, each
    // time the pause ended. The fetch goes on, and its failure is said (by a 503's refusal when a request waits on it).
    fetching.catch((error: unknown) => {
      if (error instanceof KeySetUnavailable && error.cause !== undefined) reportKeySetFailure(error.cause, requestId, logger);
    });
    let patience: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      fetching.then(() => true, () => true),
      new Promise<false>((resolve) => (patience = setTimeout(resolve, JWKS_OUTAGE_PATIENCE_MS, false))),
    ]);
    clearTimeout(patience);
    if (settled) return fetching;
    try {
      return await lastGoodKey(header, token, () => new KeySetUnavailable(retryAfter(0)));
    } catch (lookup) {
      // A key they lack (a rotation), or past the hour: the fetch has the last word.
      if (lookup instanceof KeySetUnavailable) return fetching;
      throw lookup;
    }
  };
}

/**
 * Logs a failed fetch of the key set once, however many requests waited on it. `lastGood`: the keys of the
 * last fetch verified the token all the same, fetched that long ago. One message either way, what those keys
 * did in fields of their own: an alert rule matching the message must see every failed fetch, the first hour
 * of a provider's outage (when they still verify) included.
 */
export function reportKeySetFailure(cause: unknown, requestId: string, logger: Logger, lastGood?: { lastFetchedSecondsAgo: number }): void {
  if (cause instanceof Object && reportedFailures.has(cause)) return;
  if (cause instanceof Object) reportedFailures.add(cause);
  const meanwhile = lastGood === undefined ? {} : { meanwhile: `the keys of its last fetch verify tokens, up to ${JWKS_LAST_GOOD_MS / 60_000} minutes after it`, ...lastGood };
  logger.error('the JWKS could not be fetched or read', { requestId, error: failureReason(cause), ...meanwhile });
}
