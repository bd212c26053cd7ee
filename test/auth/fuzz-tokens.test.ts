import assert from 'node:assert/strict';
import { constants, createHmac, createPublicKey, generateKeyPairSync, sign as signWith, verify as verifyWith, type JsonWebKey, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { GraphQLError } from 'graphql';
import { exportJWK, type JWK } from 'jose';
import type { Identity } from '../../src/auth/access.ts';
import { createAuthenticator, type AuthSettings } from '../../src/auth/verify.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { exchange } from '../helpers/net.ts';
import { Random } from '../helpers/random.ts';
import { SECRET, startAuthStack, startJwksServer, type AuthStack, type JwksServer } from './helpers.ts';

/*
 * The gateway's own authentication (CONTRACT.md, docs/auth.md) against seeded random tokens: Authorization
 * headers of odd schemes, casing, spacing and counts; compact JWS of the wrong shape, bad base64url, padding,
 * headers and claim sets that are no JSON object; every `alg` (none, HS512, PS256, EdDSA, an RSA public key used
 * as an HS256 secret), `kid` missing, unknown or of another type, `crit`, `b64`, embedded `jwk`/`jku`/`x5u`; claims
 * of every type and value; and, for AUTH_JWKS_URL, random key sets (keys restricted by `alg`/`use`/`key_ops`,
 * private keys and `oct` secrets published, duplicate kids, RSA keys too short, hundreds of keys) on a loopback
 * JWKS server.
 *
 * The expectation is the test's own model (`expected` below), written from CONTRACT.md, docs/auth.md and the RFCs
 * they lean on (7515 compact JWS, 7517 JWK, 7519 claims, 6750 bearer): it verifies each signature itself with
 * node:crypto, not jose. A token is accepted only when the model accepts it, with exactly its identity (admin, or
 * the accounts of the claim; subject and issuer); otherwise UNAUTHENTICATED (401, WWW-Authenticate, the challenge's
 * error="invalid_token" when a bearer token was sent), nothing else thrown, and no token, signature or secret in
 * the message or any log line. Then a few hundred through a real gateway over HTTP: the same verdicts, 401 with its
 * challenge, no upstream request when refused, and the identity's reach (an account read or FORBIDDEN).
 *
 * Tokens are signed with node:crypto over text written by hand: jose refuses to sign most of these.
 * AUTH_FUZZ_SEED=<n> replays or explores a seed, AUTH_FUZZ_CASES=<n> widens the in-process run; a failure prints
 * the seed, the case's index and the token's decoded header and payload (never a secret).
 */
const SEED = Number(process.env['AUTH_FUZZ_SEED'] ?? 20_250_612);
const CASES = Number(process.env['AUTH_FUZZ_CASES'] ?? 3_000);
const HTTP_CASES = Number(process.env['AUTH_FUZZ_HTTP_CASES'] ?? 300);

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'contextio-graphql';
const OTHER_SECRET = 'another-secret-that-is-long-enough-for-hs256-9876543210';
/** docs/auth.md: clocks may differ by 30 s. */
const TOLERANCE = 30;
/** docs/auth.md: a token longer than this is refused as malformed. */
const MAX_TOKEN_LENGTH = 8_192;
const ADMIN_SCOPE = 'contextio:admin';

// ---- keys -----------------------------------------------------------------------------------------------------

interface PoolKey {
  name: string;
  private: KeyObject;
  public: KeyObject;
  /** The public JWK. */
  jwk: JWK;
  /** The private JWK (with `d`), as a provider's mistake publishes it. */
  privateJwk: JWK;
}

function poolKey(name: string, pair: { privateKey: KeyObject; publicKey: KeyObject }): PoolKey {
  return {
    name,
    private: pair.privateKey,
    public: pair.publicKey,
    jwk: pair.publicKey.export({ format: 'jwk' }) as JWK,
    privateJwk: pair.privateKey.export({ format: 'jwk' }) as JWK,
  };
}

let KEYS: Record<'rsa1' | 'rsa2' | 'rsa3' | 'rsaWeak' | 'ec1' | 'ec2' | 'ec384' | 'ed' | 'attacker', PoolKey>;

function makeKeys(): typeof KEYS {
  const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits });
  const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
  return {
    rsa1: poolKey('rsa1', rsa(2048)),
    rsa2: poolKey('rsa2', rsa(2048)),
    rsa3: poolKey('rsa3', rsa(2048)),
    rsaWeak: poolKey('rsaWeak', rsa(1024)),
    ec1: poolKey('ec1', ec('P-256')),
    ec2: poolKey('ec2', ec('P-256')),
    ec384: poolKey('ec384', ec('P-384')),
    ed: poolKey('ed', generateKeyPairSync('ed25519')),
    attacker: poolKey('attacker', rsa(2048)),
  };
}

// ---- token text -----------------------------------------------------------------------------------------------

const b64u = (bytes: string | Buffer) => Buffer.from(bytes).toString('base64url');

/** How a token is signed: what the generator picked, whatever its header says. */
type Signer =
  | { kind: 'hmac'; secret: string | Buffer; hash: 'sha256' | 'sha512' }
  | { kind: 'rsa'; key: PoolKey; pss: boolean }
  | { kind: 'ec'; key: PoolKey }
  | { kind: 'ed'; key: PoolKey }
  | { kind: 'empty' }
  | { kind: 'garbage'; length: number };

function signature(signer: Signer, input: string, random: Random): string {
  switch (signer.kind) {
    case 'hmac':
      return createHmac(signer.hash, signer.secret).update(input).digest('base64url');
    case 'rsa':
      return signWith('sha256', Buffer.from(input), signer.pss ? { key: signer.key.private, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : signer.key.private).toString('base64url');
    case 'ec':
      return signWith(signer.key.name === 'ec384' ? 'sha384' : 'sha256', Buffer.from(input), { key: signer.key.private, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    case 'ed':
      return signWith(null, Buffer.from(input), signer.key.private).toString('base64url');
    case 'empty':
      return '';
    case 'garbage': {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      return Array.from({ length: signer.length }, () => alphabet[random.int(64)]).join('');
    }
  }
}

// ---- the model ------------------------------------------------------------------------------------------------

/** What an authenticator is configured with, as the model reads it. */
interface Setup {
  name: string;
  secret: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  /** The key set AUTH_JWKS_URL serves, when one is configured. */
  keySet: JWK[] | undefined;
}

type Expected =
  | { accepted: false; tokenSent: boolean; why: string }
  | { accepted: true; admin: boolean; accounts: string[]; subject: string | undefined; issuer: string | undefined };

const refused = (why: string, tokenSent = true): Expected => ({ accepted: false, tokenSent, why });

/**
 * RFC 7515's base64url, as forgiving as WHATWG's base64 decoding is of padding (a trailing `=` or `==` that makes
 * the length a multiple of 4), never of `+`, `/` or any other character; undefined when it is not base64url.
 */
function fromBase64url(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) return undefined;
  const data = text.length % 4 === 0 ? text.replace(/={1,2}$/, '') : text;
  if (data.includes('=') || data.length % 4 === 1) return undefined;
  return Buffer.from(data, 'base64url');
}

/** A JSON object from base64url text holding UTF-8 (RFC 7515 §5.2, RFC 7519 §7.2); undefined otherwise. */
function jsonObjectOf(part: string): Record<string, unknown> | undefined {
  const bytes = fromBase64url(part);
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The public keys of the set that may verify a token of `alg` naming `kid` (docs/auth.md): private keys, `oct`
 * secrets and the public halves of published private keys are left out; a key's type (and an EC key's curve)
 * must fit the algorithm, and its own `alg`, `use` and `key_ops` must allow verifying it; a token's `kid`, when
 * present, is a string naming the key (RFC 7515 §4.1.4), and one of another type names none.
 */
function candidates(keySet: JWK[], alg: string, header: Record<string, unknown>): JWK[] {
  const publicPart = (k: JWK) => JSON.stringify([k.kty, k.crv, k.n, k.e, k.x, k.y]);
  const leaked = new Set(keySet.filter((k) => k.d !== undefined).map(publicPart));
  return keySet.filter((k) => {
    if (k.kty === 'oct' || k.d !== undefined || leaked.has(publicPart(k))) return false;
    if (alg === 'RS256' ? k.kty !== 'RSA' : k.kty !== 'EC' || k.crv !== 'P-256') return false;
    if (k.alg !== undefined && k.alg !== alg) return false;
    if (k.use !== undefined && k.use !== 'sig') return false;
    // key_ops must name `verify`; beside other uses (`sign`), the key is used for verifying alone (docs/auth.md).
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) return false;
    if ('kid' in header && (typeof header['kid'] !== 'string' || header['kid'] !== k.kid)) return false;
    return true;
  });
}

/** Whether `jwk` verifies `sig` over `input` for `alg`: the model's own check, with node:crypto. RSA under 2048 bits verifies nothing. */
function verifiesWith(jwk: JWK, alg: string, input: string, sig: Buffer): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return false;
  }
  try {
    if (alg === 'RS256') return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 && verifyWith('sha256', Buffer.from(input), key, sig);
    return sig.length === 64 && verifyWith('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

/** What the gateway must make of `authorization` (the header's value as the authenticator is handed it), at `now`. */
function expected(setup: Setup, authorization: string | undefined, now: number): Expected {
  // RFC 6750 §2.1 / RFC 9110 §11: `Bearer` in any case, one or more spaces, the token; blank is no header at all.
  if (authorization === undefined || authorization.trim() === '') return refused('no token', false);
  const match = /^bearer +([^ ]+) *$/i.exec(authorization);
  const schemeIsBearer = /^\s*bearer\b/i.test(authorization);
  if (!match || !/^[A-Za-z0-9._~+/=-]+$/.test(match[1]!)) return refused('not one bearer token', schemeIsBearer);
  const token = match[1]!;
  if (token.length > MAX_TOKEN_LENGTH) return refused('too long');
  const parts = token.split('.');
  if (parts.length !== 3) return refused('not three parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = jsonObjectOf(headerPart);
  if (header === undefined) return refused('header not a JSON object');
  // RFC 7515 §4.1.11: every extension named critical must be understood; b64 (RFC 7797) is, and JWTs must keep
  // their payload encoded (b64 true).
  if ('crit' in header) {
    const crit = header['crit'];
    if (!Array.isArray(crit) || crit.length === 0 || !crit.every((c) => c === 'b64') || header['b64'] !== true) return refused('crit');
  }
  const alg = header['alg'];
  const viaSecret = alg === 'HS256' && setup.secret !== undefined;
  const viaKeySet = (alg === 'RS256' || alg === 'ES256') && setup.keySet !== undefined;
  if (!viaSecret && !viaKeySet) return refused('algorithm');
  const sig = fromBase64url(signaturePart);
  if (sig === undefined) return refused('signature not base64url');
  const input = `${headerPart}.${payloadPart}`;
  const signed = viaSecret
    ? createHmac('sha256', setup.secret!).update(input).digest().equals(sig)
    : candidates(setup.keySet!, alg as string, header).some((jwk) => verifiesWith(jwk, alg as string, input, sig));
  if (!signed) return refused('signature');
  const claims = jsonObjectOf(payloadPart);
  if (claims === undefined) return refused('claims not a JSON object');
  if (setup.issuer !== undefined && claims['iss'] !== setup.issuer) return refused('iss');
  if (setup.audience !== undefined) {
    const aud = claims['aud'];
    if (!(aud === setup.audience || (Array.isArray(aud) && aud.includes(setup.audience)))) return refused('aud');
  }
  const { exp, nbf, iat } = claims;
  if (iat !== undefined && typeof iat !== 'number') return refused('iat');
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + TOLERANCE)) return refused('nbf');
  if (typeof exp !== 'number' || exp <= now - TOLERANCE) return refused('exp');
  const { sub, scope, accounts } = claims;
  if (sub !== undefined && typeof sub !== 'string' && !(typeof sub === 'number' && Number.isSafeInteger(sub))) return refused('sub');
  if (scope !== undefined && typeof scope !== 'string') return refused('scope');
  if (accounts !== undefined && !(Array.isArray(accounts) && accounts.every((a) => typeof a === 'string' && a !== ''))) return refused('accounts');
  const admin = scope !== undefined && scope.split(' ').includes(ADMIN_SCOPE);
  return {
    accepted: true,
    admin,
    // An admin reaches every account: what its claim lists does not matter.
    accounts: admin ? [] : [...new Set((accounts as string[] | undefined) ?? [])].sort(),
    subject: sub === undefined || sub === '' ? undefined : String(sub),
    issuer: typeof claims['iss'] === 'string' && claims['iss'] !== '' ? claims['iss'] : undefined,
  };
}

// ---- the generator --------------------------------------------------------------------------------------------

const ACCOUNT_IDS = ['52daabefcea6f9c35a4a0997', '52daabefcea6f9c35a4a0998', 'acct-3'];
const KIDS = ['k1', 'k2', 'k3'];

/** A raw JSON value: mostly one of `usual`, else one of `odd` (raw JSON text, so `1e400` and duplicates can be written). */
const raw = (value: unknown) => JSON.stringify(value);

/** A claim set's JSON text; `oddness` (0 to 1) scales how often each claim is drawn odd. */
function drawClaims(random: Random, setup: Setup, now: number, accountIds: readonly string[], oddness = 1): string {
  const members: string[] = [];
  const put = (name: string, value: string | undefined) => value !== undefined && members.push(`${raw(name)}:${value}`);
  const usual = (p: number) => random.chance(1 - (1 - p) * oddness);
  const exp = usual(0.8)
    ? raw(now + random.pick([3600, 600, 60]))
    : random.pick([undefined, raw(now - 3600), raw(now - 100), raw(now - 40), raw(now - 20), raw(now + 600.25), raw(String(now + 3600)), 'null', '-1', '0', '1e12', 'true', raw([now + 3600]), '{}', '1e400', '-1e400']);
  put('exp', exp);
  if (!usual(0.8)) put('nbf', random.pick([raw(now - 100), raw(now + 20), raw(now + 100), raw(now + 3600), '"x"', 'null', '1.5', '-1e400', raw(String(now))]));
  if (!usual(0.6)) put('iat', random.pick([raw(now), raw(now - 10.5), '"now"', 'null', '-5', '1e400', raw(now + 7200), '[]']));
  const iss = usual(0.8) ? raw(setup.issuer ?? ISSUER) : random.pick([undefined, raw(ISSUER.toUpperCase()), raw(`${ISSUER}/`), raw([ISSUER]), '""', '42', 'null', raw('https://evil.test')]);
  put('iss', iss);
  const aud = usual(0.75)
    ? random.pick([raw(AUDIENCE), raw([AUDIENCE]), raw(['other', AUDIENCE])])
    : random.pick([undefined, raw('Contextio-GraphQL'), raw(['other']), '7', raw([7, AUDIENCE]), raw(`${AUDIENCE} `), '[]', 'null', raw({ aud: AUDIENCE })]);
  put('aud', aud);
  if (!usual(0.15)) put('sub', usual(0.7) ? raw(`user-${random.int(1000)}`) : random.pick(['42', '1.5', '""', 'null', '{}', '[]', 'true', '1e400', '-0', '1e21', '9007199254740993', raw('ümlaut\u2028')]));
  if (!usual(0.4)) {
    put(
      'scope',
      random.pick([
        raw(ADMIN_SCOPE), raw(`openid ${ADMIN_SCOPE}`), raw(` ${ADMIN_SCOPE} `), raw(`openid  ${ADMIN_SCOPE}`), raw(`${ADMIN_SCOPE}\topenid`),
        raw(`${ADMIN_SCOPE}s`), raw(`x${ADMIN_SCOPE}`), raw(`${ADMIN_SCOPE}-readonly`), raw(ADMIN_SCOPE.toUpperCase()), raw(`${ADMIN_SCOPE}\u00a0`),
        raw('contextio\u200b:admin'), raw(`openid,${ADMIN_SCOPE}`), raw([ADMIN_SCOPE]), '42', 'null', raw('openid'), '""', raw({ [ADMIN_SCOPE]: true }),
      ]),
    );
  }
  if (!usual(0.35)) {
    const ids = () => random.subset(accountIds, 0.5, false);
    put(
      'accounts',
      random.pick([
        raw(ids()), raw(ids()), '[]', raw([accountIds[0], accountIds[0]]), raw(accountIds[0]), raw({ 0: accountIds[0] }), raw([accountIds[0], 3]),
        '[""]', '[null]', raw([[accountIds[0]]]), raw(Array.from({ length: random.pick([50, 150, 400]) }, (_, i) => `acct-${i}`)), 'null', raw(`${accountIds[0]} ${accountIds[1]}`),
      ]),
    );
  }
  // JSON's last duplicate wins (RFC 8259 leaves it open; JSON.parse, which the model reads with too, takes the last).
  if (random.chance(0.04)) put('scope', raw(ADMIN_SCOPE));
  if (random.chance(0.03)) put('pad', raw('x'.repeat(random.pick([5_000, 6_000, 7_000]))));
  if (random.chance(0.03)) put('__proto__', raw({ scope: ADMIN_SCOPE }));
  return `{${members.join(',')}}`;
}

function drawHeader(random: Random, alg: string | undefined): string {
  const members: string[] = [];
  const put = (name: string, value: string) => members.push(`${raw(name)}:${value}`);
  if (alg !== undefined) put('alg', raw(alg));
  if (random.chance(0.5)) put('typ', random.pick([raw('JWT'), raw('jwt'), raw('at+jwt'), '7']));
  if (random.chance(0.5)) put('kid', random.chance(0.8) ? raw(random.pick(KIDS)) : random.pick([raw('nope'), '""', '42', 'null', raw(['k1']), raw({ kid: 'k1' }), raw('K1')]));
  if (random.chance(0.05)) put('kid', raw(random.pick(KIDS)));
  if (random.chance(0.06)) {
    const crit = random.pick([raw(['b64']), raw(['exp']), '[]', raw('b64'), raw(['b64', 'b64']), raw(['']), raw(['b64', 'zip'])]);
    put('crit', crit);
    const b64 = random.pick([undefined, 'true', 'false', '"false"']);
    if (b64 !== undefined) put('b64', b64);
  }
  if (random.chance(0.05)) put('jwk', raw({ ...KEYS.attacker.jwk, kid: 'k1' }));
  if (random.chance(0.03)) put('jku', raw('http://127.0.0.1:1/evil.json'));
  if (random.chance(0.03)) put('x5u', raw('http://127.0.0.1:1/evil.pem'));
  return `{${members.join(',')}}`;
}

const ALGORITHMS = ['HS256', 'RS256', 'ES256'];
const ODD_ALGORITHMS = ['none', 'None', 'HS512', 'PS256', 'EdDSA', 'ES384', 'RS512', 'hs256', 'RS256 ', '', undefined];

function signerFor(random: Random, alg: string | undefined, setup: Setup): Signer {
  const pool = [KEYS.rsa1, KEYS.rsa2, KEYS.rsa3, KEYS.rsaWeak];
  if (random.chance(0.85)) {
    switch (alg) {
      case 'HS256':
        return { kind: 'hmac', secret: random.chance(0.9) ? (setup.secret ?? SECRET) : OTHER_SECRET, hash: 'sha256' };
      case 'HS512':
        return { kind: 'hmac', secret: SECRET, hash: 'sha512' };
      case 'RS256':
        return { kind: 'rsa', key: random.pick(random.chance(0.1) ? [KEYS.attacker] : pool), pss: false };
      case 'PS256':
        return { kind: 'rsa', key: KEYS.rsa1, pss: true };
      case 'ES256':
        return { kind: 'ec', key: random.pick([KEYS.ec1, KEYS.ec2]) };
      case 'ES384':
        return { kind: 'ec', key: KEYS.ec384 };
      case 'EdDSA':
        return { kind: 'ed', key: KEYS.ed };
      case 'none':
        return { kind: 'empty' };
    }
  }
  // Algorithm confusion: an RSA public key (PEM or JWK text) as an HMAC secret; or a signer its header does not name.
  return random.pick<Signer>([
    { kind: 'hmac', secret: KEYS.rsa1.public.export({ type: 'spki', format: 'pem' }) as string, hash: 'sha256' },
    { kind: 'hmac', secret: JSON.stringify(KEYS.rsa1.jwk), hash: 'sha256' },
    { kind: 'hmac', secret: Buffer.from(KEYS.rsa1.jwk.n!, 'base64url'), hash: 'sha256' },
    { kind: 'hmac', secret: SECRET, hash: 'sha256' },
    { kind: 'rsa', key: KEYS.rsa1, pss: false },
    { kind: 'ec', key: KEYS.ec1 },
    { kind: 'empty' },
    { kind: 'garbage', length: random.pick([43, 86, 342, 1]) },
  ]);
}

/** Changes to the token's text after signing. */
function mutate(random: Random, token: string, other: () => string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const at = (text: string) => random.int(text.length + 1);
  const insert = (text: string, what: string) => {
    const i = at(text);
    return text.slice(0, i) + what + text.slice(i);
  };
  switch (random.int(16)) {
    case 0:
      return `${h}.${p}.${s}${'='.repeat(random.pick([1, 2, 3]))}`;
    case 1: {
      // The last character's unused low bits, or a bit that counts.
      if (s.length === 0) return token;
      const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const i = last.indexOf(s.at(-1)!);
      return `${h}.${p}.${s.slice(0, -1)}${last[(i ^ random.pick([1, 2, 3, 32]))]}`;
    }
    case 2:
      return `${h}.${p}.${s.replaceAll('-', '+').replaceAll('_', '/')}`;
    case 3:
      return token.slice(0, random.int(token.length));
    case 4:
      return `${h}.${p}.`;
    case 5:
      return random.pick([`${h}.${p}`, `${h}.${p}.${s}.`, `${h}.${p}.${s}.x`, `${h}..${p}.${s}`, `${h}.${p}.${s}.${h}.${s}`, `.${p}.${s}`, `${h}.${p}.${s}..`]);
    case 6:
      return `${insert(h, random.pick(['~', '=', '+', '/', '.']))}.${p}.${s}`;
    case 7:
      return `${h}.${insert(p, random.pick(['~', '=', '+', '/', '-']))}.${s}`;
    case 8:
      return `${h}.${p}.${insert(s, random.pick(['~', '=', '+', '/', '.']))}`;
    case 9:
      return `${h}=.${p}.${s}`;
    case 10: {
      const [, otherPayload] = other().split('.');
      return `${h}.${otherPayload}.${s}`;
    }
    case 11:
      return `${h}.${p}.${'A'.repeat(random.pick([8_200, 9_000, 100]))}`;
    case 12:
      return `${b64u(random.pick(['{', '[]', 'null', '"alg"', '{"alg":"HS256"', '\u00ef\u00bb\u00bf{"alg":"HS256"}']))}.${p}.${s}`;
    case 13:
      return `${h}.${p.toUpperCase()}.${s}`;
    case 14:
      return `${h}.${p}.${s}${s}`;
    default:
      return token.split('').reverse().join('');
  }
}

/** A payload that is no claim set: not JSON, not an object, not UTF-8, or with a byte-order mark. */
function oddPayload(random: Random, now: number): string {
  const text = random.pick<string | Buffer>([
    '{',
    '[]',
    'null',
    '"claims"',
    '123',
    Buffer.from([0x7b, 0x22, 0x65, 0x78, 0x70, 0x22, 0x3a, 0x31, 0xff, 0x7d]),
    `\ufeff{"exp":${now + 3600},"scope":"${ADMIN_SCOPE}"}`,
    `{"exp":${now + 3600},"scope":"${ADMIN_SCOPE}"} `,
    `{"exp":${now + 3600},"scope":"${ADMIN_SCOPE}"}x`,
    `{"exp":${now + 3600},"sub":"\ud800"}`,
  ]);
  return b64u(text);
}

interface Drawn {
  authorization: string | undefined;
  /** The bearer token inside, for the failure's message and the leak checks. */
  token: string;
}

/**
 * A token for `setup`. `wellSigned`: rightly signed by a key the setup trusts, its header naming that key, its text
 * left as signed, so that its claims decide (the HTTP part's draw, where most else is refused before them).
 */
function drawToken(random: Random, setup: Setup, now: number, accountIds: readonly string[], wellSigned = false): string {
  const usable = ALGORITHMS.filter((a) => (a === 'HS256' ? setup.secret !== undefined : setup.keySet !== undefined));
  const payloadPart = () => (random.chance(0.96) ? b64u(drawClaims(random, setup, now, accountIds, wellSigned ? 0.3 : 1)) : oddPayload(random, now));
  if (wellSigned) {
    const alg = random.pick(usable);
    const [kid, signer] = {
      HS256: [undefined, { kind: 'hmac', secret: setup.secret!, hash: 'sha256' }],
      RS256: ['k1', { kind: 'rsa', key: KEYS.rsa1, pss: false }],
      ES256: ['k2', { kind: 'ec', key: KEYS.ec1 }],
    }[alg] as [string | undefined, Signer];
    const input = `${b64u(JSON.stringify({ alg, kid, typ: 'JWT' }))}.${payloadPart()}`;
    return `${input}.${signature(signer, input, random)}`;
  }
  const alg = random.chance(0.85) ? random.pick(random.chance(0.9) ? usable : ALGORITHMS) : random.pick(ODD_ALGORITHMS);
  const headerPart = random.chance(0.97) ? b64u(drawHeader(random, alg)) : b64u(random.pick(['{', '[]', '"HS256"', '{"alg":"HS256",}', '{"alg":"HS256"}\u0000']));
  const claimsPart = payloadPart();
  const input = `${headerPart}.${claimsPart}`;
  const token = `${input}.${signature(signerFor(random, alg, setup), input, random)}`;
  if (!random.chance(0.2)) return token;
  return mutate(random, token, () => `${input}.x`.replace(claimsPart, b64u(`{"exp":${now + 3600},"scope":"${ADMIN_SCOPE}"}`)));
}

/** The Authorization header around `token`: odd schemes, casing, spacing; none; `overHttp` keeps to what HTTP can carry. */
function drawAuthorization(random: Random, token: string, overHttp: boolean): string | undefined {
  if (random.chance(0.7)) return `Bearer ${token}`;
  const forms = [
    `bearer ${token}`, `BEARER ${token}`, `BeArEr ${token}`, `Bearer  ${token}`, `Bearer\t${token}`, ` Bearer ${token}`, `Bearer ${token} `,
    `Bearer ${token}\t`, `Bearer:${token}`, `Bearer=${token}`, `Basic ${token}`, `Token ${token}`, `JWT ${token}`, token, 'Bearer', 'Bearer ',
    '', '   ', `Bearer ${token}, Bearer ${token}`, `Bearer "${token}"`, `Bearer ${token};`, `Bearers ${token}`, `Bearer ${token} x`, `Bearer ${token.slice(0, 10)} ${token.slice(10)}`,
  ];
  const inProcessOnly = [undefined, `Bearer\u00a0${token}`, `Bearer ${token}\n`, `\u3000Bearer ${token}`, `Bearer ${token}\u200b`];
  return random.pick<string | undefined>(overHttp ? forms : [...forms, ...inProcessOnly]);
}

// ---- checks ---------------------------------------------------------------------------------------------------

/** The case as a failure prints it: the seed, its index, its setup and the token's decoded parts (never a secret). */
function describeCase(seed: number, index: number, setup: Setup, drawn: Drawn, want: Expected): string {
  const decoded = drawn.token.split('.').slice(0, 2).map((part) => Buffer.from(part, 'base64url').toString('utf8').slice(0, 600));
  const scheme = drawn.authorization === undefined ? '(no header)' : JSON.stringify(drawn.authorization.replace(drawn.token, '<token>').slice(0, 80));
  const poolName = (k: JWK) => Object.values(KEYS).find((p) => (k.n ?? k.x) === (p.jwk.n ?? p.jwk.x))?.name ?? k.kty;
  const keySet = setup.keySet === undefined ? '' : `, key set [${setup.keySet.filter((k) => !String(k.kid).startsWith('filler-')).map((k) => JSON.stringify({ key: `${k.d === undefined ? '' : 'private '}${poolName(k)}`, kid: k.kid, alg: k.alg, use: k.use, key_ops: k.key_ops })).join(', ')}] and ${setup.keySet.filter((k) => String(k.kid).startsWith('filler-')).length} fillers`;
  return `seed ${seed}, case ${index} (${setup.name}${keySet}): authorization ${scheme}, header ${decoded[0]}, payload ${decoded[1]}, ${drawn.token.split('.').length} parts, ${drawn.token.length} chars; the model: ${JSON.stringify(want)}`;
}

/** The parts of a token no answer or log line may hold: the whole token, its signature, its payload (the parts long enough to be recognised). */
function secretsOf(drawn: Drawn): string[] {
  const [, payload, sig] = drawn.token.split('.');
  return [drawn.token, payload, sig, SECRET, OTHER_SECRET, b64u(SECRET)].filter((s): s is string => s !== undefined && s.length >= 16);
}

function assertNoLeak(texts: readonly string[], drawn: Drawn, what: () => string): void {
  for (const text of texts) {
    for (const secret of secretsOf(drawn)) assert.ok(!text.includes(secret), `${what()}: a token part or a secret in ${JSON.stringify(text.slice(0, 300))}`);
  }
}

function identityShape(identity: Identity): Expected {
  return {
    accepted: true,
    admin: identity.kind === 'admin',
    accounts: identity.kind === 'admin' ? [] : [...identity.accounts].sort(),
    subject: identity.subject,
    issuer: identity.issuer,
  };
}

/** A random key set from the pool: restricted keys, private ones, secrets, duplicate kids, filler keys; `k1`-`k3` the kids tokens name. */
function drawKeySet(random: Random): JWK[] {
  const keys: JWK[] = [];
  const count = random.pick([1, 2, 3, 4, 6]);
  for (let i = 0; i < count; i++) {
    const pool = random.pick([KEYS.rsa1, KEYS.rsa2, KEYS.rsa3, KEYS.rsaWeak, KEYS.ec1, KEYS.ec2, KEYS.ec384, KEYS.ed]);
    const key: JWK = random.chance(0.1) ? { ...pool.privateJwk } : { ...pool.jwk };
    const kid = random.chance(0.85) ? random.pick(KIDS) : random.pick([undefined, '', 'K1']);
    if (kid !== undefined) key.kid = kid;
    if (random.chance(0.25)) key.alg = random.pick(['RS256', 'ES256', 'PS256', 'RS512', 'HS256', 'ES384']);
    if (random.chance(0.25)) key.use = random.pick(['sig', 'enc', 'SIG']);
    if (random.chance(0.2)) (key as Record<string, unknown>)['key_ops'] = random.pick<unknown>([['verify'], ['sign'], ['sign', 'verify'], 'verify', []]);
    keys.push(key);
  }
  if (random.chance(0.1)) keys.push({ kty: 'oct', k: b64u(random.chance(0.5) ? SECRET : OTHER_SECRET), kid: random.pick(KIDS) });
  if (random.chance(0.08)) {
    const filler = random.pick([50, 150, 300]);
    for (let i = 0; i < filler; i++) keys.push({ ...random.pick([KEYS.rsa2, KEYS.ec2, KEYS.rsaWeak]).jwk, kid: `filler-${i}` });
  }
  // The order of a set is the provider's: shuffled.
  for (let i = keys.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  return keys;
}

const settingsOf = (setup: Setup, jwks: JwksServer | undefined): AuthSettings => ({
  jwtSecret: setup.secret,
  jwksUrl: setup.keySet === undefined ? undefined : jwks!.url,
  issuer: setup.issuer,
  audience: setup.audience,
});

describe('seeded random tokens (AUTH_FUZZ_SEED)', () => {
  let jwks: JwksServer;
  before(async () => {
    KEYS = makeKeys();
    // A JWK exported by jose, as an identity provider's library writes it, is the same key as node:crypto's.
    assert.equal((await exportJWK(KEYS.rsa1.public)).n, KEYS.rsa1.jwk.n);
    jwks = await startJwksServer([]);
  });
  after(() => jwks?.close());

  test(`${CASES} tokens verified in-process: accepted exactly as the model says, with its identity; else UNAUTHENTICATED, nothing leaked`, async () => {
    const random = new Random(SEED);
    const lines: string[] = [];
    const logger = createLogger('debug', (line) => lines.push(line));
    const tally = new Map<string, number>();
    let index = 0;
    // Groups of cases share a setup: each key set is served, and a fresh authenticator fetches it on its first token.
    while (index < CASES) {
      const kind = random.pick(['secret', 'secret open claims', 'key set', 'both'] as const);
      const checked = random.chance(0.8) || kind === 'secret';
      const setup: Setup = {
        name: kind,
        secret: kind === 'key set' ? undefined : SECRET,
        issuer: checked && kind !== 'secret open claims' ? ISSUER : undefined,
        audience: checked && kind !== 'secret open claims' ? AUDIENCE : undefined,
        keySet: kind === 'key set' || kind === 'both' ? drawKeySet(random) : undefined,
      };
      if (setup.keySet) jwks.setKeys(setup.keySet);
      const authenticator = createAuthenticator(settingsOf(setup, jwks), logger);
      try {
        for (let n = 0; n < 60 && index < CASES; n++, index++) {
          const now = Math.floor(Date.now() / 1000);
          const token = drawToken(random, setup, now, ACCOUNT_IDS);
          const drawn: Drawn = { authorization: drawAuthorization(random, token, false), token };
          const want = expected(setup, drawn.authorization, now);
          const what = () => describeCase(SEED, index, setup, drawn, want);
          const linesBefore = lines.length;
          let got: Expected;
          let challenge: string | undefined;
          try {
            got = identityShape(await authenticator.authenticate(drawn.authorization, `fuzz-${index}`));
          } catch (error) {
            assert.ok(error instanceof GraphQLError, `${what()}: threw ${String(error)}`);
            const extensions = error.extensions as { code?: string; http?: { status?: number; headers?: Map<string, string> } };
            assert.equal(extensions.code, 'UNAUTHENTICATED', `${what()}: ${extensions.code} ${error.message}`);
            assert.equal(extensions.http?.status, 401, what());
            assertNoLeak([error.message], drawn, what);
            challenge = extensions.http?.headers?.get('www-authenticate');
            got = refused(error.message);
          }
          assert.equal(got.accepted, want.accepted, `${what()}: the gateway ${got.accepted ? 'accepted it' : `refused it (${(got as { why: string }).why})`}`);
          if (want.accepted) assert.deepEqual(got, want, what());
          else assert.equal(challenge, `Bearer realm="contextio-graphql"${want.tokenSent ? ', error="invalid_token"' : ''}`, what());
          assertNoLeak(lines.slice(linesBefore), drawn, what);
          const key = want.accepted ? (want.admin ? 'admin' : 'scoped') : want.why;
          tally.set(key, (tally.get(key) ?? 0) + 1);
        }
      } finally {
        await authenticator.close();
      }
    }
    // The draw reaches each verdict often enough to mean something.
    for (const verdict of ['admin', 'scoped', 'signature', 'algorithm', 'exp', 'iss', 'aud', 'accounts', 'scope', 'sub', 'not one bearer token', 'header not a JSON object', 'crit']) {
      assert.ok((tally.get(verdict) ?? 0) >= 5, `seed ${SEED}: only ${tally.get(verdict) ?? 0} cases ${verdict} (${JSON.stringify([...tally])})`);
    }
  });

  describe('over HTTP, through a real gateway', () => {
    /** The longest Authorization header sent: the request line and the other headers fit beside it in Node's 16 KiB. */
    const MAX_AUTHORIZATION_CHARS = 16_000;
    let stack: AuthStack;
    let setup: Setup;
    let accountIds: string[];
    before(async () => {
      // A set every token of this part verifies against: one key of each kind under k1/k2, and one restricted.
      const keySet: JWK[] = [
        { ...KEYS.rsa1.jwk, kid: 'k1', alg: 'RS256', use: 'sig' },
        { ...KEYS.ec1.jwk, kid: 'k2' },
        { ...KEYS.rsa2.jwk, kid: 'k3', use: 'enc' },
        { ...KEYS.rsaWeak.jwk, kid: 'k3' },
      ];
      jwks.setKeys(keySet);
      setup = { name: 'http', secret: SECRET, issuer: ISSUER, audience: AUDIENCE, keySet };
      stack = await startAuthStack({ auth: settingsOf(setup, jwks) });
      accountIds = [stack.emulator.store.createAccount({ email: 'ada@example.com' }).id, stack.emulator.store.createAccount({ email: 'bob@example.com' }).id, 'unknown-account'];
    });
    after(() => stack?.close());

    test(`${HTTP_CASES} requests: 401 with its challenge and no upstream call exactly where the model refuses, the identity's reach where it accepts`, async () => {
      const random = new Random(SEED + 1);
      const target = accountIds[0]!;
      const query = JSON.stringify({ query: `{ account(id: ${JSON.stringify(target)}) { id } }` });
      let accepted = 0;
      for (let index = 0; index < HTTP_CASES; index++) {
        const now = Math.floor(Date.now() / 1000);
        // Half the tokens rightly signed, mostly sent as they should be: their claims decide, and the identity's reach is checked.
        const wellSigned = random.chance(0.5);
        let token = drawToken(random, setup, now, accountIds, wellSigned);
        // Node refuses request headers past 16 KiB before the gateway sees them.
        if (token.length > 12_000) token = token.slice(0, 9_000);
        const drawnAuthorization = wellSigned && random.chance(0.7) ? `Bearer ${token}` : drawAuthorization(random, token, true);
        // A form that carries the token twice (`Bearer <token>, Bearer <token>`) can pass those 16 KiB with a token
        // under the cut above (431 before any token is read): sent as the plain form instead.
        const authorization = drawnAuthorization !== undefined && drawnAuthorization.length > MAX_AUTHORIZATION_CHARS ? `Bearer ${token}` : drawnAuthorization;
        const drawn: Drawn = { authorization, token };
        // Two Authorization headers, sometimes: the gateway sees them joined (RFC 9110 §5.3), as one that is no bearer token.
        const twice = authorization !== undefined && random.chance(0.05) && authorization.length < 7_000;
        const want = expected(setup, twice ? `${authorization.replace(/^[ \t]+|[ \t]+$/g, '')}, ${authorization.replace(/^[ \t]+|[ \t]+$/g, '')}` : authorization?.replace(/^[ \t]+|[ \t]+$/g, ''), now);
        const what = () => describeCase(SEED + 1, index, setup, drawn, want);
        const headerLines = authorization === undefined ? '' : `authorization: ${authorization}\r\n`.repeat(twice ? 2 : 1);
        const logsBefore = stack.logs.length;
        const answer = parseAnswer(
          await exchange(
            stack.gateway.url,
            `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${headerLines}content-length: ${Buffer.byteLength(query)}\r\nconnection: close\r\n\r\n${query}`,
          ),
        );
        const calls = stack.upstreamCalls();
        assertNoLeak([answer.text, ...stack.logs.slice(logsBefore)], drawn, what);
        if (!want.accepted) {
          assert.equal(answer.status, 401, `${what()}: ${answer.status} ${answer.body}`);
          assert.equal(answer.headers.get('www-authenticate'), `Bearer realm="contextio-graphql"${want.tokenSent ? ', error="invalid_token"' : ''}`, what());
          const body = JSON.parse(answer.body) as { data?: unknown; errors: Array<{ extensions: { code: string } }> };
          assert.deepEqual(body.errors.map((e) => e.extensions.code), ['UNAUTHENTICATED'], what());
          assert.equal(body.data, undefined, what());
          assert.deepEqual(calls, [], `${what()}: upstream calls for a refused request`);
          continue;
        }
        accepted += 1;
        assert.equal(answer.status, 200, `${what()}: ${answer.status} ${answer.body}`);
        const body = JSON.parse(answer.body) as { data: { account: { id: string } | null }; errors?: Array<{ extensions: { code: string } }> };
        if (want.admin || want.accounts.includes(target)) {
          assert.deepEqual(body, { data: { account: { id: target } } }, what());
          assert.deepEqual(calls, [`GET /accounts/${target}`], what());
        } else {
          assert.deepEqual(body.data, { account: null }, what());
          assert.deepEqual(body.errors?.map((e) => e.extensions.code), ['FORBIDDEN'], what());
          assert.deepEqual(calls, [], `${what()}: upstream calls for a field out of scope`);
        }
      }
      assert.ok(accepted >= HTTP_CASES / 5, `seed ${SEED + 1}: only ${accepted} of ${HTTP_CASES} requests accepted`);
      const health = await fetch(new URL('/healthz', stack.gateway.url));
      assert.equal(health.status, 200);
    });
  });
});

/** An HTTP/1.1 answer as `exchange` receives it: status, headers, body (de-chunked). */
function parseAnswer(text: string): { status: number; headers: Map<string, string>; body: string; text: string } {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
  const headers = new Map(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  let body = text.slice(end + 4);
  if (headers.get('transfer-encoding') === 'chunked') {
    let out = '';
    for (;;) {
      const lineEnd = body.indexOf('\r\n');
      const size = parseInt(body.slice(0, lineEnd), 16);
      if (!size) break;
      out += body.slice(lineEnd + 2, lineEnd + 2 + size);
      body = body.slice(lineEnd + 2 + size + 2);
    }
    body = out;
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body, text };
}
