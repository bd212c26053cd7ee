import type { UpstreamErrorInfo } from '../errors.ts';
import type { CancelSignal } from './cancellation.ts';

/**
 * What the client's log lines may show of a call and of an upstream's answer: never the consumer secret, a
 * signature or a connect token, however the upstream quotes them.
 */

/**
 * The start of an upstream error body, fit for a debug line. The upstream's own message may quote the
 * gateway's credentials (some OAuth servers echo the request's header, or the signing key), encoded in any of
 * the ways servers write text: such a body is not shown at all, since no list of encodings to cut out is ever
 * complete, and its status and path say what failed. Otherwise the connect token its path names and any value
 * labelled `oauth_signature` are cut out, and it is cut to length. A body too large to search cheaply is not
 * shown either.
 */
export function redactedErrorBody(text: string, secret: string, authorization: string, info: UpstreamErrorInfo): string {
  if (text.length > MAX_SEARCHED_ERROR_BODY) return `(${text.length} characters, not shown)`;
  const sent = /oauth_signature="([^"]+)"/.exec(authorization)?.[1];
  const credentials = [secret, ...(sent === undefined ? [] : [decodeURIComponent(sent)])];
  if (quotesCredential(text, credentials)) return '(not shown: it quotes the gateway’s credentials)';
  return hideToken(text.replace(SIGNATURE_VALUE, '$1[redacted]'), info).slice(0, MAX_LOGGED_BODY);
}

/** `oauth_signature` values, quoted or not, in a header, a query string or JSON (escaped or not). */
const SIGNATURE_VALUE = /(oauth_signature\\?"?\s*[=:]\s*\\?"?)(?:\\\/|\\u[0-9a-fA-F]{4}|[^"\\&,\s}])*/gi;

/** The largest error body searched for credentials and shown (an API error body is a line of JSON). */
const MAX_SEARCHED_ERROR_BODY = 64 * 1024;

/** Logged of an error body: its start, at most this long. */
const MAX_LOGGED_BODY = 500;

/** A run this long of a credential's characters (or of its bytes, encoded) in a body is taken as quoting it. */
const WINDOW = 8;

/**
 * Whether `text` quotes one of `credentials`, or any run of `WINDOW` of its characters (a secret cut short
 * still gives most of it away): as written, in any case, after undoing the escapes servers write text with
 * (percent-encoding, once or twice, in either case; HTML character references; `\uXXXX` and `\/`), or
 * encoded as base64, base64url or hex, alone or inside a longer encoded string (a signing key, a header).
 */
function quotesCredential(text: string, credentials: readonly string[]): boolean {
  const decoded = percentDecoded(percentDecoded(unescaped(text)));
  const lower = `${text}\n${decoded}`.toLowerCase();
  const kept = `${text}\n${decoded}`;
  for (const credential of credentials) {
    if (credential === '') continue;
    if (runsOf(credential.toLowerCase(), WINDOW).some((run) => lower.includes(run))) return true;
    const bytes = Buffer.from(credential);
    // Hex is case-free, and the hex of any part of the credential starts at an even offset of its whole hex.
    const hex = bytes.toString('hex');
    for (let i = 0; i + 2 * WINDOW <= hex.length; i += 2) if (lower.includes(hex.slice(i, i + 2 * WINDOW))) return true;
    // Inside a longer base64 string the credential starts at one of three byte offsets from a 3-byte group:
    // each gives a run of base64 that appears whatever came before it.
    for (let skip = 0; skip < 3; skip++) {
      const encoded = bytes.subarray(skip).toString('base64');
      const run = encoded.slice(0, Math.floor((bytes.length - skip) / 3) * 4).slice(0, 12);
      if (run.length < WINDOW) continue;
      if (kept.includes(run) || kept.includes(run.replaceAll('+', '-').replaceAll('/', '_'))) return true;
    }
  }
  return false;
}

/** Every run of `length` characters of `value` (all of it when shorter). */
function runsOf(value: string, length: number): string[] {
  if (value.length <= length) return [value];
  return Array.from({ length: value.length - length + 1 }, (_, i) => value.slice(i, i + length));
}

/** `text` with HTML character references, `\uXXXX` escapes and `\/` undone. */
function unescaped(text: string): string {
  return text
    .replace(/&#x([0-9a-f]{1,6});?/gi, (_, hex: string) => String.fromCodePoint(Math.min(Number.parseInt(hex, 16), 0x10ffff)))
    .replace(/&#([0-9]{1,7});?/g, (_, dec: string) => String.fromCodePoint(Math.min(Number.parseInt(dec, 10), 0x10ffff)))
    .replace(/&(amp|quot|apos|lt|gt|plus|equals|sol);/gi, (_, name: string) => HTML_NAMED[name.toLowerCase()]!)
    .replace(/\\u([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replaceAll('\\/', '/');
}

const HTML_NAMED: Readonly<Record<string, string>> = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', plus: '+', equals: '=', sol: '/' };

/** `text` with each `%XX` decoded to that byte's character (in either case; enough to find ASCII credentials). */
function percentDecoded(text: string): string {
  return text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The connect token a call's path names (always its last segment), percent-encoded as in the path. */
const TOKEN_IN_PATH = /(\/connect_tokens\/)([^/]+)$/;

/**
 * A call as log lines show it, with the id of the request it served when the caller gave one (so it can be
 * matched with that request's `operation` line). A connect token is a bearer capability (knowing one reads its account), so
 * its value stays out of the log, as a JWT would; the caller's own error still shows the whole path.
 */
export function forLog(info: UpstreamErrorInfo, signal: CancelSignal | undefined): { requestId?: string; method: string; path: string } {
  const call = { method: info.method, path: info.path.replace(TOKEN_IN_PATH, '$1[token]') };
  return signal?.requestId === undefined ? call : { requestId: signal.requestId, ...call };
}

function hideToken(text: string, info: UpstreamErrorInfo): string {
  const encoded = TOKEN_IN_PATH.exec(info.path)?.[2];
  return encoded === undefined ? text : text.split(decodeURIComponent(encoded)).join('[token]');
}
