import type { UpstreamErrorInfo } from '../errors.ts';
import { percentEncode } from '../oauth/signature.ts';
import { cutEnd } from '../support/shortened.ts';
import type { CancelSignal } from './cancellation.ts';

/**
 * What the client's log lines may show of a call and of an upstream's answer: never the consumer secret, a
 * signature or a connect token, however the upstream quotes them.
 */

/**
 * The start of an upstream error body, fit for a debug line. The upstream's own message may quote the
 * gateway's credentials (some OAuth servers echo the request's header, or the signing key), encoded in any of
 * the ways servers write text: such an excerpt is not shown at all, since no list of encodings to cut out is
 * ever complete, and the line's status and path still say what failed. So is one quoting the connect token its
 * path names otherwise than as itself (in another case, escaped, encoded, cut short). Otherwise that token and
 * any value labelled `oauth_signature` are cut out. What is searched is what would be shown and the
 * 256 characters after it.
 */
export function redactedErrorBody(text: string, secret: string, authorization: string, info: UpstreamErrorInfo): string {
  // A little more than is shown, so that a token or a labelled value at the cut is cut out whole first. Without
  // NULs: a body in UTF-16 (a charset some servers write their pages in), read as the UTF-8 it is taken for,
  // holds one beside each ASCII character, which would keep its connect token from being found and cut out
  // (so twice the characters are taken before they go).
  const head = withoutNuls(text.slice(0, 2 * (MAX_LOGGED_BODY + 256)));
  const redacted = hideToken(head.replace(SIGNATURE_VALUE, '$1[redacted]'), info).slice(0, MAX_LOGGED_BODY + 256);
  // Cut between characters: half an emoji would reach the log line as an escape of no character.
  const excerpt = redacted.slice(0, cutEnd(redacted, MAX_LOGGED_BODY));
  const sent = /oauth_signature="([^"]+)"/.exec(authorization)?.[1];
  const signature = sent === undefined ? undefined : decodeURIComponent(sent);
  // The connect token too: quoted as itself it is cut out above; quoted otherwise (in another case, escaped,
  // encoded, cut short) it is found as the others are.
  const token = tokenOf(info);
  const credentials = [secret, percentEncode(secret), ...(sent === undefined || signature === undefined ? [] : [sent, signature]), ...(token === undefined ? [] : [token])];
  // The signature's digest, as a server might print it (in hex, say) rather than in the base64 sent.
  const digests = signature === undefined ? [] : [Buffer.from(signature, 'base64')];
  // Searched past the cut too: a credential straddling it leaves what is shown too few of its characters to match.
  return quotesCredential(redacted, credentials, digests) ? WITHHELD : excerpt;
}

/** What `redactedErrorBody` gives for upstream words that quote the gateway's credentials. */
export const WITHHELD = '(not shown: it quotes the gateway’s credentials)';

/** `oauth_signature` values, quoted or not, in a header, a query string or JSON (escaped or not). */
const SIGNATURE_VALUE = /(oauth_signature\\?"?\s*[=:]\s*\\?"?)(?:\\\/|\\u[0-9a-fA-F]{4}|[^"\\&,\s}])*/gi;

/** Logged of an error body: its start, at most this long. */
const MAX_LOGGED_BODY = 500;

/** A run this long of a credential's characters (or of its bytes, encoded) in a body is taken as quoting it. */
const WINDOW = 8;

/**
 * Whether `text` quotes one of `credentials`, or any run of `WINDOW` of its characters (a secret cut short
 * still gives most of it away), or any run of `WINDOW` bytes of it or of `digests`: as written, in any case
 * (a credential shorter than that: whole, exactly), after undoing the escapes servers write text with (percent-encoding, HTML
 * character references, `\uXXXX`, `\u{…}`, `\xNN`, `\/`, repeatedly), or encoded as hex (with or without
 * separators) or base64/base64url (wrapped or not), alone or inside a longer encoded string.
 */
function quotesCredential(text: string, credentials: readonly string[], digests: readonly Buffer[]): boolean {
  const decoded = fullyDecoded(text);
  const kept = `${text}\n${decoded}\n${decoded.replace(/\s+/g, '')}`;
  // Hex with separators (`4a:6b`, `4a 6b`) or as a byte list (`0x4a, 0x6b`), joined up.
  const joinedHex = decoded.replace(/([0-9a-f]{2})[:\s-](?=[0-9a-f]{2})/gi, '$1').replace(/0x([0-9a-f]{2})(?:\s*,\s*)?/gi, '$1');
  const lower = `${kept}\n${joinedHex}`.toLowerCase();
  for (const credential of credentials) {
    if (credential === '') continue;
    if (credential.length < WINDOW ? kept.includes(credential) : runsOf(credential.toLowerCase(), WINDOW).some((run) => lower.includes(run))) return true;
  }
  for (const bytes of [...credentials.filter((c) => c !== '').map((c) => Buffer.from(c)), ...digests]) {
    // Hex is case-free, and the hex of any part of the bytes starts at an even offset of their whole hex.
    const hex = bytes.toString('hex');
    if (bytes.length < WINDOW && lower.includes(hex)) return true;
    for (let i = 0; i + 2 * WINDOW <= hex.length; i += 2) if (lower.includes(hex.slice(i, i + 2 * WINDOW))) return true;
    // Inside a longer base64 string the bytes start at one of three offsets from a 3-byte group; from the
    // next group on, each group of theirs is encoded as 4 characters whatever came before. Any `WINDOW` bytes
    // hold 2 whole groups at some offset, so every 2 consecutive whole groups (8 characters) are searched for.
    for (let skip = 0; skip < 3; skip++) {
      const groups = bytes.subarray(skip, skip + Math.floor((bytes.length - skip) / 3) * 3).toString('base64');
      for (let i = 0; i + 8 <= groups.length; i += 4) {
        const run = groups.slice(i, i + 8);
        if (kept.includes(run) || kept.includes(run.replaceAll('+', '-').replaceAll('/', '_'))) return true;
      }
    }
  }
  return false;
}

/** Every run of `length` characters of `value`. */
function runsOf(value: string, length: number): string[] {
  return Array.from({ length: value.length - length + 1 }, (_, i) => value.slice(i, i + length));
}

/**
 * `text` with its escapes undone until none is left (at most three rounds: double encoding, and one more), and
 * without NUL characters: a body in UTF-16 (a charset some servers write their pages in), read as UTF-8, holds
 * each ASCII character beside a NUL, which would otherwise keep every run of a credential from matching.
 */
function fullyDecoded(text: string): string {
  let current = withoutNuls(text);
  for (let round = 0; round < 3; round++) {
    const next = withoutNuls(percentDecoded(unescaped(current)));
    if (next === current) break;
    current = next;
  }
  return current;
}

/** `text` without its NUL characters. */
function withoutNuls(text: string): string {
  return text.replaceAll('\u0000', '');
}

/** `text` with HTML character references, `\uXXXX`, `\u{…}` and `\xNN` escapes, and `\"`, `\\`, `\/`, undone. */
function unescaped(text: string): string {
  const codePoint = (digits: string, radix: number) => String.fromCodePoint(Math.min(Number.parseInt(digits, radix), 0x10ffff));
  return text
    .replace(/&#x([0-9a-f]{1,6});?/gi, (_, hex: string) => codePoint(hex, 16))
    .replace(/&#([0-9]{1,7});?/g, (_, dec: string) => codePoint(dec, 10))
    .replace(/&(amp|quot|apos|lt|gt|plus|equals|sol);/gi, (_, name: string) => HTML_NAMED[name.toLowerCase()]!)
    .replace(/\\u\{([0-9a-f]{1,6})\}/gi, (_, hex: string) => codePoint(hex, 16))
    .replace(/\\u([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replace(/\\x([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replace(/\\(["\\/])/g, '$1');
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
  const token = tokenOf(info);
  return token === undefined ? text : text.split(token).join('[token]');
}

/** The connect token a call's path names, decoded; `undefined` for a call naming none. */
function tokenOf(info: UpstreamErrorInfo): string | undefined {
  const encoded = TOKEN_IN_PATH.exec(info.path)?.[2];
  return encoded === undefined ? undefined : decodeURIComponent(encoded);
}
