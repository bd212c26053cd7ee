import {
  authorizationHeaderParams,
  sign,
  signaturesMatch,
  type OAuthParam,
} from '../oauth/signature.ts';
import { shortened } from '../support/shortened.ts';
import { tryDecodePairs } from './http.ts';

/**
 * Verifies two-legged OAuth 1.0a HMAC-SHA1 requests the way the upstream does, with the same signing
 * code the gateway's client uses, plus the replay protections a real server has (timestamp window, nonces).
 */

/** How far a request's timestamp may be from the server clock. */
export const TIMESTAMP_WINDOW_SECONDS = 300;
/**
 * How long a nonce is remembered (with its timestamp). Its request may carry a timestamp the window ahead of the
 * clock and then passes the timestamp check until the window after that timestamp, both ends included: twice the
 * window from its first use. A second more, so that a replay at the very last instant is caught too (exactly
 * twice, it passed).
 */
const NONCE_TTL_MS = (2 * TIMESTAMP_WINDOW_SECONDS + 1) * 1000;
/**
 * Bound on remembered nonces, so a flood of requests cannot grow memory without limit. Past it the oldest
 * are forgotten though still within the window: a replay after 100,000 other requests in ten minutes passes.
 * A development emulator's trade; the real API's own bound is its business.
 */
const MAX_NONCES = 100_000;

export interface OAuthRequest {
  method: string;
  /**
   * Scheme, host and raw path as received, without the query; then any other URL the same resource is
   * addressed by (at `EMULATOR_PUBLIC_URL`, when a proxy in front rewrites the Host header). A signature of
   * any of them is accepted.
   */
  baseUrls: readonly [string, ...string[]];
  /**
   * The Authorization header; or each of them, as `req.headersDistinct` has them, since Node's `req.headers` keeps
   * the first of several and drops the others. More than one is refused.
   */
  authorization: string | readonly string[] | undefined;
  /** The raw query string, without `?`. */
  query: string;
  /** The raw body when it is form-urlencoded, else `''`: no other body is signed. */
  form: string;
}

/**
 * Why a query string or form body does not decode: a `%` not followed by two hexadecimal digits, or escapes of bytes
 * that are not UTF-8 (`%E9`, a Latin-1 `é`), which are well-formed percent-encoding all the same.
 */
const UNDECODABLE = 'a % not followed by two hexadecimal digits, or bytes that are not UTF-8';

/** A verified request comes with its query and form parameters, decoded. */
export type OAuthVerdict =
  | { ok: true; query: readonly OAuthParam[]; form: readonly OAuthParam[] }
  | { ok: false; reason: string };

export interface OAuthVerifierOptions {
  consumerKey: string;
  consumerSecret: string;
  now?: () => number;
}

/**
 * The challenge a refused request is answered with: a 401 must say how to authenticate (RFC 9110 §11.6.1), here
 * the OAuth scheme with a `realm`, the parameter RFC 5849 §3.5.1 defines. The realm is the API's base URL (the
 * connect pages outside it take no signature), a URL as OAuth Core 1.0 §5.4.2's example has it.
 */
export function oauthChallenge(apiBaseUrl: string): string {
  return `OAuth realm="${apiBaseUrl}"`;
}

export class OAuthVerifier {
  /** Each nonce used, as `<timestamp> <nonce>`, and until when (ms) it is remembered. */
  private readonly nonces = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: OAuthVerifierOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Checks one request; the reason never contains the secret or the signature. */
  verify(request: OAuthRequest): OAuthVerdict {
    const headers = typeof request.authorization === 'string' ? [request.authorization] : (request.authorization ?? []);
    // Which of several a server reads is its own choice (the first, the last, or all joined): taking the first and
    // ignoring the rest, a request passed here that another server refuses. The gateway refuses them too.
    if (headers.length > 1) return fail('more than one Authorization header');
    const params = authorizationHeaderParams(headers[0]);
    if (!params) return fail('missing or malformed OAuth Authorization header');
    // RFC 5849 §3.1: no parameter appears more than once, and §3.2 has a server refuse a request repeating one. Read
    // as a map, the last one given counted and the other was ignored, unsigned, where a server taking the first refused it.
    const header = new Map<string, string>();
    for (const [name, value] of params) {
      if (header.has(name)) return fail(`${shortened(name, 100)} is given more than once in the Authorization header`);
      header.set(name, value);
    }
    for (const name of ['oauth_consumer_key', 'oauth_nonce', 'oauth_signature_method', 'oauth_timestamp', 'oauth_signature']) {
      if (!header.get(name)) return fail(`missing ${name}`);
    }
    if (header.get('oauth_consumer_key') !== this.options.consumerKey) return fail('unknown consumer key');
    if (header.get('oauth_signature_method') !== 'HMAC-SHA1') return fail('unsupported signature method, use HMAC-SHA1');
    const version = header.get('oauth_version');
    if (version !== undefined && version !== '1.0') return fail('unsupported oauth_version, use 1.0');

    const timestamp = header.get('oauth_timestamp')!;
    const nowMs = this.now();
    if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > TIMESTAMP_WINDOW_SECONDS) {
      return fail(`timestamp is more than ${TIMESTAMP_WINDOW_SECONDS} seconds from the server clock`);
    }

    // The parameters are decoded only once the header has passed, so that a caller without a usable one learns
    // nothing of the rest of its request (a 400 for its query would tell it, before the 401 it is owed).
    // Malformed, they have no base string, so no signature can match them.
    const query = tryDecodePairs(request.query);
    if (!query) return fail(`the query string is malformed (${UNDECODABLE}), so no signature can match it`);
    const form = tryDecodePairs(request.form);
    if (!form) return fail(`the form body is malformed (${UNDECODABLE}), so no signature can match it`);

    // Every parameter of the header but the realm and the signature itself (RFC 5849 §3.4.1.3.1), an extension's
    // (xoauth_requestor_id) as the protocol's: a client signs what its header carries. The realm is an HTTP
    // auth-param, whose name is read in any case (RFC 9110 §11.2).
    const protocol: OAuthParam[] = [...header]
      .filter(([name]) => name.toLowerCase() !== 'realm' && name !== 'oauth_signature');
    const signedFor = (baseUrl: string) =>
      signaturesMatch(sign({ method: request.method, baseUrl, params: [...query, ...form, ...protocol], consumerSecret: this.options.consumerSecret }), header.get('oauth_signature')!);
    if (!request.baseUrls.some(signedFor)) {
      // The base URL helps a client find a host or proxy mismatch; it holds nothing secret.
      return fail(`signature does not match (base URL ${request.baseUrls.join(' or ')})`);
    }

    // Nonces are recorded only for verified requests, so nobody can burn another client's nonces. A replay is a
    // nonce sent again with its timestamp: RFC 5849 §3.3 asks a nonce be unique only among the requests of one
    // timestamp (and key and token: this verifier has one key and no tokens), so a client may use it again with
    // another. The timestamp is digits only: the space cannot be part of it.
    const use = `${timestamp} ${header.get('oauth_nonce')!}`;
    this.pruneNonces(nowMs);
    const seenUntil = this.nonces.get(use);
    if (seenUntil !== undefined && seenUntil > nowMs) return fail('nonce already used');
    this.nonces.delete(use);
    this.nonces.set(use, nowMs + NONCE_TTL_MS);
    return { ok: true, query, form };
  }

  private pruneNonces(nowMs: number): void {
    // Insertion order is expiry order (constant TTL), so expired entries sit at the front.
    for (const [nonce, until] of this.nonces) {
      if (until > nowMs && this.nonces.size < MAX_NONCES) break;
      this.nonces.delete(nonce);
    }
  }
}

function fail(detail: string): OAuthVerdict {
  return { ok: false, reason: `Invalid signature: ${detail}` };
}
