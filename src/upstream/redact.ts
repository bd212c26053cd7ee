import type { UpstreamErrorInfo } from '../errors.ts';
import { percentEncode } from '../oauth/signature.ts';
import type { CancelSignal } from './cancellation.ts';

/**
 * What the client's log lines may show of a call and of an upstream's answer: never the consumer secret, a
 * signature or a connect token, however the upstream quotes them.
 */

/**
 * The start of an upstream error body, fit for a debug line. The upstream's own message may quote a
 * signature (some OAuth servers echo the request's header), the secret, or the connect token ("connect_token
 * … is invalid"): each is cut out. The body is searched as sent, then, when it is JSON, written out again and
 * searched once more, so that no escape its server chose (`\/`, `\u002b`) hides one; whole, and only then
 * cut to length, so that no part of one is left at the cut. A body too large to search cheaply is not shown.
 */
export function redactedErrorBody(text: string, secret: string, authorization: string, info: UpstreamErrorInfo): string {
  if (text.length > MAX_SEARCHED_ERROR_BODY) return `(${text.length} characters, not shown)`;
  const redact = (body: string) => hideToken(withoutSignatures(withoutSecret(body, secret), authorization), info);
  return redact(rewrittenJson(redact(text))).slice(0, MAX_LOGGED_BODY);
}

/** `oauth_signature` values, quoted or not, in a header, a query string or JSON (escaped or not). */
const SIGNATURE_VALUE = /(oauth_signature\\?"?\s*[=:]\s*\\?"?)(?:\\\/|\\u[0-9a-fA-F]{4}|[^"\\&,\s}])*/gi;

/** The largest error body searched for secrets and shown (an API error body is a line of JSON). */
const MAX_SEARCHED_ERROR_BODY = 64 * 1024;

/** Logged of an error body: its start, at most this long. */
const MAX_LOGGED_BODY = 500;

/** `text` written out again as `JSON.stringify` does, when it is JSON; as it is when not. */
function rewrittenJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

/**
 * The forms each of `values` can take in a body: as is, and inside a JSON string, escaped as
 * `JSON.stringify` escapes it and with `/` as `\/` too (PHP's `json_encode` by default).
 */
function quotedForms(values: readonly string[]): Set<string> {
  const forms = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    const escaped = JSON.stringify(value).slice(1, -1);
    forms.add(value).add(escaped).add(escaped.replaceAll('/', '\\/'));
  }
  return forms;
}

/**
 * `text` without the request's own signature (as sent, percent-encoded, and decoded), wherever and however
 * it is quoted, nor any value labelled `oauth_signature`.
 */
function withoutSignatures(text: string, authorization: string): string {
  let result = text.replace(SIGNATURE_VALUE, '$1[redacted]');
  const sent = /oauth_signature="([^"]+)"/.exec(authorization)?.[1];
  if (sent !== undefined) {
    for (const form of quotedForms([sent, decodeURIComponent(sent)])) result = result.split(form).join('[redacted]');
  }
  return result;
}

/** `text` without the consumer secret, as is or percent-encoded (the form it takes in a signing key), each as JSON quotes it too. */
function withoutSecret(text: string, secret: string): string {
  let result = text;
  for (const form of quotedForms([secret, percentEncode(secret)])) result = result.split(form).join('[redacted]');
  return result;
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
