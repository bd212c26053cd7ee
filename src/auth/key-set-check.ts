import { createRemoteJWKSet, customFetch, importJWK, type JWK } from 'jose';
import type { EgressProxy } from '../upstream/egress-proxy.ts';
import { shortened } from '../support/shortened.ts';
import { failureReason } from '../support/failure-reason.ts';
import { fetchCapped, forVerifyingOnly, isPrivateKey, isSecretKey, isSymmetricSecret, JWKS_TIMEOUT_MS, keySetDispatcher, leakedKeys } from './key-set.ts';

/** The check at start of AUTH_JWKS_URL's key set: fetched once, and what keeps it from verifying tokens said. */

/**
 * What keeps the key set at `jwksUrl` from verifying tokens, fetched once now as a token's verification would
 * fetch it (its deadline, its size cap, jose's checks of its shape); undefined when it holds a key of a type the
 * gateway verifies (RSA or EC) that imports. For a check at start: a wrong URL or an identity provider out of reach would
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
    void dispatcher?.agent.close();
  }
  const keys = remote.jwks()?.keys ?? [];
  if (onSecretKey) for (const key of keys) if (isSecretKey(key)) onSecretKey(key);
  const leaked = leakedKeys(keys);
  const candidates = keys.filter((key) => !leaked.has(key) && verifiesTokens(key));
  const unimportable = await keysNotImporting(candidates);
  if (candidates.every((key) => unimportable.has(key))) {
    return `it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least ${MIN_RSA_BITS} bits (${keys.length} key${keys.length === 1 ? '' : 's'}: ${describedKeys(keys, leaked, unimportable)})`;
  }
  return undefined;
}

/**
 * The keys of `keys` that do not import as the gateway uses them (a point off its curve, a coordinate missing, a
 * modulus that is no base64url): jose picks such a key for a token and fails, and the token is refused.
 */
async function keysNotImporting(keys: JWK[]): Promise<Set<JWK>> {
  const imported = await Promise.all(keys.map((key) => importJWK(forVerifyingOnly(key), key.kty === 'EC' ? 'ES256' : 'RS256').then(() => true, () => false)));
  return new Set(keys.filter((_, index) => !imported[index]));
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

/** One key as a start-up warning names it: its type (said private for a private key, secret for a symmetric one), an RSA key's size, an EC key's curve, what it is restricted to, or that it cannot be imported. */
function describedKey(key: JWK, leaked: Set<JWK>, unimportable: Set<JWK>): string {
  const privately = isPrivateKey(key) ? 'private ' : isSymmetricSecret(key) ? 'secret ' : leaked.has(key) ? 'public half of a published private ' : '';
  if (key.kty === 'RSA' || key.kty === 'EC') {
    const kind = key.kty === 'RSA' ? `${privately}RSA of ${rsaModulusBits(key)} bits` : `${privately}EC ${key.crv ?? 'without a curve'}`;
    if (unimportable.has(key)) return `${kind} that cannot be imported`;
    const restriction = restrictionOf(key, key.kty === 'RSA' ? 'RS256' : 'ES256');
    return restriction === undefined ? kind : `${kind} for ${restriction}`;
  }
  return `${privately}${key.kty ?? 'no type'}`;
}

/** A key set's keys as a start-up warning lists them: each type once, with the RSA keys' sizes. */
function describedKeys(keys: JWK[], leaked: Set<JWK>, unimportable: Set<JWK>): string {
  const kinds = new Set(keys.map((key) => describedKey(key, leaked, unimportable)));
  return shortened([...kinds].join(', '), 200);
}
