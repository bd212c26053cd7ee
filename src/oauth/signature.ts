import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Two-legged OAuth 1.0a with HMAC-SHA1 (RFC 5849), the scheme Context.IO 2.0 uses on every request.
 * One module serves both sides: the upstream client signs with it and the emulator verifies with it,
 * so the two can never disagree about the base string.
 */

/** Strings made of unreserved characters only: they encode to themselves (ids, nonces, most parameters). */
const UNRESERVED = /^[A-Za-z0-9._~-]*$/;
/** What `encodeURIComponent` leaves alone but RFC 3986 reserves. */
const SUB_DELIMS = /[!'()*]/;

/** RFC 3986 percent-encoding: everything but unreserved characters, which `encodeURIComponent` does not quite do. */
export function percentEncode(value: string): string {
  // Signing encodes a dozen strings a request: skip the work where there is nothing to encode.
  if (UNRESERVED.test(value)) return value;
  const encoded = encodeURIComponent(value);
  return SUB_DELIMS.test(encoded) ? encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : encoded;
}

export type OAuthParam = readonly [name: string, value: string];

export interface SignatureInput {
  method: string;
  /** Scheme, host, port and path exactly as addressed, without the query string. */
  baseUrl: string;
  /** Query and form-body parameters plus the `oauth_*` ones, except `oauth_signature`. */
  params: readonly OAuthParam[];
  consumerSecret: string;
}

/** The signature base string: `METHOD&enc(url)&enc(sorted, encoded params)`. */
export function signatureBaseString({ method, baseUrl, params }: Omit<SignatureInput, 'consumerSecret'>): string {
  const encoded: (readonly [string, string])[] = [];
  for (const [k, v] of params) encoded.push([percentEncode(k), percentEncode(v)]);
  encoded.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  let normalized = '';
  for (const [k, v] of encoded) normalized += normalized === '' ? `${k}=${v}` : `&${k}=${v}`;
  return `${method.toUpperCase()}&${percentEncode(normalizeBaseUrl(baseUrl))}&${percentEncode(normalized)}`;
}

/** RFC 5849 §3.4.1.2: lower-case scheme and host, default ports dropped, path kept as sent. */
function normalizeBaseUrl(raw: string): string {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/i.exec(raw);
  if (!match) return raw;
  const scheme = match[1]!.toLowerCase();
  let authority = match[2]!.toLowerCase();
  if ((scheme === 'http' && authority.endsWith(':80')) || (scheme === 'https' && authority.endsWith(':443'))) {
    authority = authority.slice(0, authority.lastIndexOf(':'));
  }
  return `${scheme}://${authority}${match[3] || '/'}`;
}

/** The base64 HMAC-SHA1 signature; two-legged, so the key is `enc(secret)&` with no token secret. */
export function sign(input: SignatureInput): string {
  return createHmac('sha1', `${percentEncode(input.consumerSecret)}&`)
    .update(signatureBaseString(input))
    .digest('base64');
}

/** Constant-time comparison of two signatures. */
export function signaturesMatch(expected: string, received: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(received);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The `oauth_*` protocol parameters a request carries, in the order they go into the header. */
export function protocolParams(consumerKey: string, nonce: string, timestamp: string): OAuthParam[] {
  return [
    ['oauth_consumer_key', consumerKey],
    ['oauth_nonce', nonce],
    ['oauth_signature_method', 'HMAC-SHA1'],
    ['oauth_timestamp', timestamp],
    ['oauth_version', '1.0'],
  ];
}

/** Formats the `Authorization: OAuth …` header value. */
export function authorizationHeader(protocol: readonly OAuthParam[], signature: string): string {
  return `OAuth ${[...protocol, ['oauth_signature', signature] as const]
    .map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`)
    .join(', ')}`;
}

/** Parses an `Authorization: OAuth …` header into its parameters; `undefined` when it is not one. */
export function parseAuthorizationHeader(header: string | undefined): Map<string, string> | undefined {
  const params = authorizationHeaderParams(header);
  return params && new Map(params);
}

/**
 * An `Authorization: OAuth …` header's parameters, decoded, in the order given and each as often as given (a
 * verifier refuses one given twice); `undefined` when it is not such a header.
 */
export function authorizationHeaderParams(header: string | undefined): OAuthParam[] | undefined {
  if (!header || !/^OAuth\s/i.test(header)) return undefined;
  const params: OAuthParam[] = [];
  // A name starts where a run of name characters does (the lookbehind): tried from each character of a long
  // run, as before, the parse took time quadratic in the header's length, before anything was verified.
  for (const match of header.slice(6).matchAll(/(?<![A-Za-z0-9_.~%-])([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"/g)) {
    try {
      const name = decodeURIComponent(match[1]!);
      // The realm is RFC 2617's quoted string, not percent-encoded (RFC 5849 §3.5.1), and no part of the signature;
      // an auth-param, its name is read in any case (RFC 9110 §11.2).
      params.push([name, name.toLowerCase() === 'realm' ? match[2]! : decodeURIComponent(match[2]!)]);
    } catch {
      return undefined;
    }
  }
  return params;
}

/** Splits an `application/x-www-form-urlencoded` string into decoded pairs, keeping repeats and order. */
export function parseFormPairs(encoded: string): OAuthParam[] {
  if (!encoded) return [];
  return encoded.split('&').filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return eq < 0 ? [decode(pair), ''] : [decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))];
  });
}

/** Encodes pairs as a form body using the same RFC 3986 encoding the signature uses. */
export function encodeFormPairs(pairs: readonly OAuthParam[]): string {
  return pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&');
}
