import { egressProxyFor, type EgressProxy } from '../upstream/egress-proxy.ts';
import { quotedSetting, settingValue } from '../support/shortened.ts';
import { booleanSetting, urlControlProblem } from '../config/settings.ts';
import { exactOrigin, hasCredentials, isLoopbackHost, originAsBrowsersSendIt } from '../support/url.ts';
import { isOpen, type AuthSettings } from './verify.ts';

/** The access part of the gateway's configuration, from the environment. */
export interface AccessConfig {
  /** `AUTH_*`: how callers are verified; neither key set means open mode (loopback only). */
  auth: AuthSettings;
  /** `CORS_ORIGINS`: exact browser origins allowed to call; none by default. */
  corsOrigins: string[];
  /** `INTROSPECTION`: on by default in development and in open mode. */
  introspection: boolean;
}

const AUTH_VARIABLES = ['AUTH_JWT_SECRET', 'AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'];

/**
 * HS256 secrets shorter than the hash (RFC 7518 §3.2) are guessable offline from any one token. `npm run token`
 * refuses them too: a token signed with one is for a gateway that will not start.
 */
export const MIN_SECRET_LENGTH = 32;

/**
 * Reads `AUTH_*`, `CORS_ORIGINS` and `INTROSPECTION`, adding one line per problem to `problems` (never a
 * value of a secret). `host` is where the gateway will bind (undefined when HOST is refused already): open mode is
 * refused off loopback. `setButBlank`: whether a variable is set to nothing, which for a key is refused here, not
 * read as unset (no default: one that said "never" would let a blank AUTH_JWT_SECRET start the gateway open).
 */
export function readAccessConfig(
  read: (name: string) => string | undefined,
  host: string | undefined,
  development: boolean,
  problems: string[],
  setButBlank: (name: string) => boolean,
): AccessConfig {
  // Blank elsewhere means unset; here that would turn a deployment whose template left the secret empty into
  // open mode, every caller admin, on loopback behind a proxy on the same host, for one.
  for (const name of AUTH_VARIABLES) {
    if (setButBlank(name)) problems.push(`${name} is set but empty: give it a value, or unset it`);
  }
  // A key left blank is said above: what it leaves unchecked is not said again as a key that is not set at all.
  const keyBlank = setButBlank('AUTH_JWT_SECRET') || setButBlank('AUTH_JWKS_URL');
  const auth = readAuth(read, problems, keyBlank);
  if (isOpen(auth) && !keyBlank && host !== undefined && !isLoopbackHost(host)) {
    problems.push(
      `HOST=${settingValue(host)} is not a loopback address, so AUTH_JWT_SECRET or AUTH_JWKS_URL is required: without either every caller would be admin`,
    );
  }
  const introspection = booleanSetting('INTROSPECTION', read('INTROSPECTION'), development || isOpen(auth), problems);
  return { auth, corsOrigins: readOrigins(read('CORS_ORIGINS'), problems), introspection };
}

function readAuth(read: (name: string) => string | undefined, problems: string[], keyBlank: boolean): AuthSettings {
  const jwtSecret = read('AUTH_JWT_SECRET');
  const jwksUrl = read('AUTH_JWKS_URL');
  const issuer = read('AUTH_ISSUER');
  const audience = readAudience(read('AUTH_AUDIENCE'), problems);
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < MIN_SECRET_LENGTH) {
    problems.push(`AUTH_JWT_SECRET must be at least ${MIN_SECRET_LENGTH} bytes long (e.g. openssl rand -base64 48)`);
  }
  let jwksProxy: EgressProxy | undefined;
  const jwksControl = jwksUrl === undefined ? undefined : urlControlProblem('AUTH_JWKS_URL', jwksUrl);
  if (jwksControl !== undefined) {
    problems.push(jwksControl);
  } else if (jwksUrl !== undefined && !isJwksUrl(jwksUrl)) {
    problems.push('AUTH_JWKS_URL must be an https URL (http only on a loopback address)');
  } else if (jwksUrl !== undefined && hasCredentials(jwksUrl)) {
    // fetch refuses such a URL and quotes it whole in its error, which would reach the log on every token.
    problems.push('AUTH_JWKS_URL must not carry credentials (user:password@): a key set is public, and fetch refuses such URLs');
  } else if (jwksUrl !== undefined) {
    // The upstream's check of the same variable may have said its problem already: once is enough.
    const proxyProblems: string[] = [];
    jwksProxy = egressProxyFor(jwksUrl, read, proxyProblems);
    problems.push(...proxyProblems.filter((problem) => !problems.includes(problem)));
  }
  if (jwtSecret === undefined && jwksUrl === undefined && !keyBlank) {
    if (issuer !== undefined) problems.push('AUTH_ISSUER is set but neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is: nothing would check it');
    if (read('AUTH_AUDIENCE') !== undefined) problems.push('AUTH_AUDIENCE is set but neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is: nothing would check it');
  }
  return { jwtSecret, jwksUrl, issuer, audience, jwksProxy };
}

/**
 * `AUTH_AUDIENCE`: one audience, or several separated by commas, a token for any of them accepted. A provider may
 * write one API's audience two ways: Azure AD's v1 tokens carry `api://<app id>` or the bare app id, as the client
 * asked. No provider's audience holds a comma (URLs, URNs, ids), so a comma can only be a separator.
 */
function readAudience(value: string | undefined, problems: string[]): string | string[] | undefined {
  if (value === undefined || !value.includes(',')) return value;
  const audiences = value.split(',').map((entry) => entry.trim());
  if (audiences.includes('')) {
    problems.push(`AUTH_AUDIENCE=${settingValue(value)} lists an empty audience: separate audiences by single commas, with none at either end`);
    return undefined;
  }
  return audiences;
}

/** Keys fetched over plain http could be swapped by anyone on the path, so only loopback may use it. */
function isJwksUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
  } catch {
    return false;
  }
}

/** What to list instead of an entry that is no exact origin (shown only for a list without credentials). */
function originAdvice(entry: string, wildcard: boolean): string {
  if (wildcard) return ': wildcards are not supported, list each origin';
  const spelling = originAsBrowsersSendIt(entry);
  return spelling === undefined ? '' : `: browsers send it as ${spelling}, which is what to list`;
}

/** `CORS_ORIGINS`: comma-separated exact origins; no wildcard, which would let any site use a caller's token. */
function readOrigins(raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined) return [];
  const origins: string[] = [];
  // A list pasted twice, or an entry copied down, would otherwise say the same problem once per copy.
  const refused = new Set<string>();
  for (const entry of raw.split(',').map((o) => o.trim()).filter((o) => o !== '')) {
    if (refused.has(entry)) continue;
    // A URL's host may hold a `*`, so `https://*.example.com` parses as an origin, one no browser sends: it
    // would match nothing, and the sites it was meant for would be refused without a word.
    const wildcard = entry.includes('*');
    const origin = wildcard ? undefined : exactOrigin(entry);
    if (origin === undefined) {
      refused.add(entry);
      // An origin never has credentials. A list with an `@` anywhere may hold a real password, perhaps split
      // across entries by a comma in it: then no entry of it is repeated.
      const credentials = raw.includes('@');
      const shown = credentials ? 'an entry, not shown: the list holds an @, as credentials in a URL would' : quotedSetting(entry);
      problems.push(`CORS_ORIGINS must list exact origins such as https://app.example.com (got ${shown}${credentials ? '' : originAdvice(entry, wildcard)})`);
    } else {
      origins.push(origin);
    }
  }
  return origins;
}

