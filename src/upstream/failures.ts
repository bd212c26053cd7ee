import { AssertionError } from 'node:assert';
import { errors, type buildConnector } from 'undici';
import type { EgressProxy } from './egress-proxy.ts';
import type { Method } from './request.ts';

/**
 * How the client reads a failed exchange: which errors are a connection that failed or broke (retried) or an
 * answer that was not HTTP; whether a write may have taken effect all the same; what a TLS failure, with the
 * upstream or an egress proxy, and a tunnel that did not open say; and the API's code for a refused signature.
 * (The gateway's own shortage of descriptors is `src/support/file-descriptors.ts`'s.)
 */

/**
 * The code of a CONNECT the egress proxy closed without answering (undici's `UND_ERR_SOCKET`, "other side
 * closed", rethrown by `throughProxy`): a connection that failed, retried as one.
 */
export const TUNNEL_CLOSED_UNANSWERED = 'TUNNEL_CLOSED_UNANSWERED';

/** The API's error code for a request whose OAuth signature it refused. */
export const SIGNATURE_REFUSED = 105;

/**
 * undici's codes for a connection that failed or broke before a response arrived. A name that does not
 * resolve (`ENOTFOUND`) is not among them: the resolver's answer would not change in a moment.
 */
export const CONNECTION_ERROR_CODES = new Set([
  TUNNEL_CLOSED_UNANSWERED,
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  // The resolver could not answer for now (a DNS server timing out or failing), unlike ENOTFOUND.
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  // An answer cut short: its connection closed before the body its Content-Length announced was in.
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/**
 * Node's codes for an upstream TLS certificate the client refused: OpenSSL's verification results (an authority
 * not trusted, a certificate expired or not yet valid, revoked, for another purpose) and Node's own host name
 * check. The same on every attempt until the certificate or the trusted authorities change: a configuration
 * fault of the deployment (or the upstream's), not a failing upstream.
 */
const CERTIFICATE_REFUSED_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * OpenSSL's code for the alert a TLS 1.3 server that wants a client certificate (the gateway presents none) ends
 * a new connection with. TLS 1.3 has the server check the client's certificate after the client's side of the
 * handshake is done, so it comes once the request went out; but the server read none of it.
 */
const CLIENT_CERTIFICATE_REQUIRED = 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';

/**
 * undici's connector with a server's demand for a client certificate (`CLIENT_CERTIFICATE_REQUIRED`) kept as
 * its connection's error: undici takes the close that follows the alert for the failure ("other side closed",
 * `UND_ERR_SOCKET`, as a kept-alive connection the server closed just as it was reused), and its request was
 * retried as one whose connection broke, counted by the breaker, a write said to have maybe taken effect.
 * Destroyed with the alert at once, the connection fails its request with the alert's code.
 */
export function keepingClientCertificateDemand(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connect(options, (...outcome: Parameters<buildConnector.Callback>) => {
      const socket = outcome[1];
      socket?.prependListener('error', (failure: Error & { code?: string }) => {
        if (failure.code === CLIENT_CERTIFICATE_REQUIRED && !socket.destroyed) socket.destroy(failure);
      });
      callback(...outcome);
    });
}

/**
 * How a connection that failed at TLS failed: its certificate refused, or a handshake that failed otherwise.
 * `sent`: its request had gone out; then only a server's demand for a client certificate is a TLS failure (an
 * error of a record later is a connection that broke).
 */
export function tlsFailureAfter(code: string | undefined, sent: boolean): 'certificate' | 'handshake' | undefined {
  if (sent) return code === CLIENT_CERTIFICATE_REQUIRED ? 'handshake' : undefined;
  return tlsFailureOf(code);
}

/**
 * How a connection that failed before its request went out failed at TLS: its certificate refused, or a
 * handshake that failed otherwise (OpenSSL's `ERR_SSL_*`: a server that speaks no TLS at an https:// address,
 * no protocol version or cipher in common). `undefined` for anything else.
 */
function tlsFailureOf(code: string | undefined): 'certificate' | 'handshake' | undefined {
  if (code === undefined) return undefined;
  if (CERTIFICATE_REFUSED_CODES.has(code)) return 'certificate';
  return code.startsWith('ERR_SSL_') ? 'handshake' : undefined;
}

/**
 * The status an egress proxy answered the CONNECT of a tunnel with, when it was not 200 (407: credentials
 * wanted; 403: a destination refused), or `undefined` for any other error. undici's `ProxyAgent` raises it as
 * a `RequestAbortedError` with `UND_ERR_ABORTED`, the code of a request cancelled: only its message tells.
 */
export function proxyRefusalOf(error: unknown): number | undefined {
  if (!(error instanceof errors.RequestAbortedError)) return undefined;
  const status = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling$/.exec(error.message)?.[1];
  return status === undefined ? undefined : Number(status);
}

/**
 * The error a failed exchange says what failed by: its own, or, for a TLS failure of an https:// egress proxy, the
 * TLS error wrapped in undici's error for one (`UND_ERR_PRX_TLS`, as `throughProxy` wraps every such failure, where
 * undici wraps only a certificate for another host name), a code no other failure has; `ofProxy` then.
 */
export function failureOf(error: unknown): { failure: unknown; code: string | undefined; ofProxy: boolean } {
  const ofProxy = error instanceof errors.SecureProxyConnectionError;
  const failure = ofProxy ? error.cause : error;
  return { failure, code: (failure as { code?: string } | undefined)?.code, ofProxy };
}

/**
 * What a write's failure adds when its request (`what`: or an earlier attempt) went out: the caller must not
 * take the failure for a refusal. Nothing for a GET.
 */
export function mayHaveTakenEffect(method: Method, mayHaveLanded: boolean, what = 'the request'): string {
  return method !== 'GET' && mayHaveLanded ? `: ${what} ${MAY_HAVE_TAKEN_EFFECT}` : '';
}

const MAY_HAVE_TAKEN_EFFECT = 'may have taken effect';

/** Whether a write's failure says, as `mayHaveTakenEffect` adds, that it may have taken effect all the same. */
export function saysItMayHaveTakenEffect(error: unknown): boolean {
  return error instanceof Error && error.message.includes(MAY_HAVE_TAKEN_EFFECT);
}

/** What a call's message adds when its request was never sent: a write's did not take effect (a read has none to take). */
export function tookNoEffect(method: Method): string {
  return method === 'GET' ? '' : ', so it did not take effect';
}

/**
 * Whether an answer with this status may come after the upstream carried out a write: a success, or a server
 * error (the API's own 500 failing after the change, a proxy's 502 or 504). A 4xx is a refusal.
 */
export function answerMayFollowTheChange(status: number): boolean {
  return status < 400 || status >= 500;
}

/**
 * An answer undici could not read as HTTP but reported as something else: a parse error once a
 * Content-Length was seen (as a length mismatch), an unsolicited 100 or 101 (as a socket error). Told apart
 * by coming before any response began.
 */
class NotHttpAnswer extends Error {
  /** `status`: a success's whose body then did not parse (see `brokenSuccessOf`); null when none had come. */
  constructor(
    readonly code: string | undefined,
    reason: string,
    readonly status: number | null = null,
  ) {
    super(reason);
  }
}

/**
 * A success whose body did not parse as HTTP once its status had come (a chunk size that is not hexadecimal):
 * an answer that was not valid HTTP, as one that broke in its headers, but with its status, which came.
 */
export function brokenSuccessOf(error: Error & { code?: string }, status: number): NotHttpAnswer {
  return new NotHttpAnswer(error.code, error.message, status);
}

/** The status an answer that was not valid HTTP came with: null unless its headers had come whole. */
export function statusOfBrokenHttp(error: unknown): number | null {
  return error instanceof NotHttpAnswer ? error.status : null;
}

/**
 * `error`, raised before any response began, as the unreadable answer it means, or `undefined` when it means
 * something else. undici's own message would call a header that did not parse a length mismatch.
 */
export function notHttpAnswerOf(error: Error): NotHttpAnswer | undefined {
  const code = (error as { code?: string }).code;
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return new NotHttpAnswer(code, 'the answer did not parse as HTTP once it had sent a Content-Length');
  if (code === 'UND_ERR_SOCKET' && /^bad (response|upgrade)$/.test(error.message)) return new NotHttpAnswer(code, error.message);
  return undefined;
}

/**
 * An answer that came but was not HTTP undici could read: llhttp's parse errors (some without a code), too-large
 * headers, and what undici refuses by an assertion of its own while reading an answer (a status under 100,
 * which llhttp lets through).
 */
export function isBrokenHttp(error: unknown, code: string | undefined): boolean {
  return error instanceof errors.HTTPParserError || error instanceof NotHttpAnswer || code === 'UND_ERR_HEADERS_OVERFLOW' || error instanceof AssertionError;
}

/** What a TLS failure with the upstream itself says: in the log (`fault`) and to the caller (`what`). */
export function upstreamTlsFailure(failure: 'certificate' | 'handshake', code: string): { fault: string; what: string } {
  return failure === 'certificate'
    ? {
        fault: `the upstream’s TLS certificate was refused (${code}): it has expired, names another host than CONTEXTIO_API_URL’s, or is signed by an authority this machine does not trust (NODE_EXTRA_CA_CERTS adds a private one)`,
        what: 'The upstream’s TLS certificate could not be verified, so the gateway refused the connection',
      }
    : {
        fault: `the TLS handshake with the upstream failed (${code}): does the server at CONTEXTIO_API_URL speak TLS there (an http:// server at an https:// address fails so), with a protocol version Node accepts, and without wanting a client certificate (the gateway presents none)?`,
        what: 'The TLS handshake with the upstream failed',
      };
}

/**
 * What a TLS failure of an https:// egress proxy says (its refused certificate or failed handshake), where "the
 * upstream's" would send an operator to the wrong server.
 */
export function tlsFailureBehindProxy(failure: 'certificate' | 'handshake', code: string, proxy: EgressProxy): { fault: string; what: string } {
  const peer = `the egress proxy ${proxy.shown}`;
  return failure === 'certificate'
    ? {
        fault: `the TLS certificate of ${peer} was refused (${code}): it has expired, names another host than the one the gateway was given (${proxy.variable}), or is signed by an authority this machine does not trust (NODE_EXTRA_CA_CERTS adds a private one)`,
        what: `The TLS certificate of ${peer} could not be verified, so the gateway refused the connection`,
      }
    : {
        fault: `the TLS handshake with ${peer} failed (${code}): does ${proxy.variable} name a proxy that speaks TLS there (an https:// URL for an http:// proxy fails so), without wanting a client certificate (the gateway presents none)?`,
        what: `The TLS handshake with ${peer} failed`,
      };
}

/**
 * What a call behind an egress proxy says of a tunnel that did not open: the CONNECT given up (`timedOut`),
 * answered with a 5xx (`status`: the proxy could not reach the upstream), its connection closed unanswered
 * (`code`), or the proxy not reached at all.
 */
export function tunnelNotOpened(proxy: EgressProxy, status: number | undefined, timedOut: boolean, code: string | undefined): string {
  if (timedOut) return `The egress proxy ${proxy.shown} did not open a tunnel to the upstream in time`;
  if (code === TUNNEL_CLOSED_UNANSWERED) return `The egress proxy ${proxy.shown} closed the connection without answering the request for a tunnel to the upstream`;
  if (status !== undefined) return `The upstream could not be reached through the egress proxy ${proxy.shown} (it answered the tunnel HTTP ${status})`;
  return `The egress proxy ${proxy.shown} could not be reached`;
}
