import { GraphQLError } from 'graphql';

/**
 * The codes of the errors the gateway raises while it runs an operation, as the contract publishes them.
 * A client sees these, `HttpRefusalCode`'s for a request refused before GraphQL sees it, or Apollo's and
 * graphql-js's own (`OPERATION_CODES`); the classes and messages behind them stay internal.
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes of a request refused at the HTTP layer, before GraphQL sees it (each with its HTTP status). */
export const HttpRefusalCode = {
  /** 400: a body that is not a GraphQL request, a request target that is not a URL, a malformed persisted query. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** 405 */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** 408: the request line, headers and body did not all arrive within the time a request may take. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** 417: an `Expect` header asking for something but `100-continue`. */
  EXPECTATION_FAILED: 'EXPECTATION_FAILED',
  /** 413: a body over the limit, or a chunk extension over Node's. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** 415 */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** 431: the request line and headers take more than Node's parser reads (16 KiB). */
  REQUEST_HEADER_FIELDS_TOO_LARGE: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
  /**
   * 503: `MAX_OPERATIONS_IN_FLIGHT` operations are running already, the bodies arriving take `MAX_BODY_BYTES_IN_FLIGHT`,
   * or the answers not yet taken `MAX_ANSWER_BYTES_IN_FLIGHT`; Retry-After says when to try again.
   */
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
} as const;
export type HttpRefusalCode = (typeof HttpRefusalCode)[keyof typeof HttpRefusalCode];

/**
 * Codes that Apollo and graphql-js raise themselves for a refused operation: safe to show as they are. Not Apollo's
 * PERSISTED_QUERY_NOT_SUPPORTED: persisted queries are always on, so it never comes (docs/errors.md lists what does).
 */
export const OPERATION_CODES: ReadonlySet<string> = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  HttpRefusalCode.BAD_REQUEST,
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
]);

/** Where an upstream failure happened: enough to debug, nothing secret (no query string, no body). */
export interface UpstreamErrorInfo {
  /** The HTTP status, or `null` when no response arrived (timeout, broken connection). */
  status: number | null;
  method: string;
  /** Relative to the configured base URL, e.g. `/accounts/52daabefcea6f9c35a4a0997`. */
  path: string;
}

/**
 * An error with one of the contract's codes, safe to show to any caller. Made without a stack trace: it is the
 * caller's input or the upstream's answer, not a bug (no log line carries one), and capturing and formatting a
 * trace was over half of what an error cost: 800 refused fields under 8 pages of accounts (a 639-byte body) took
 * ~50–80 ms of CPU, ~25 without.
 */
export function gatewayError(code: ErrorCode, message: string, upstream?: UpstreamErrorInfo, more?: Record<string, unknown>): GraphQLError {
  return withoutStack(() => new GraphQLError(message, { extensions: { code, ...(upstream ? { upstream } : {}), ...more } }));
}

/** What `make` returns, any error it constructs capturing no stack frames (its `stack` only its first line). */
export function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * A refused argument (`BAD_USER_INPUT`), naming it in `extensions.field` as the operation spells it
 * (`first`, `input.email`, `filter.status`), so that a form can mark the input without reading the message.
 */
export function argumentError(field: string, message: string): GraphQLError {
  return gatewayError(ErrorCode.BAD_USER_INPUT, message, undefined, { field });
}

/**
 * graphql-js refusing an argument as it runs the field: `null` for a non-null argument, sent through a
 * variable whose default the caller overrode (`query($id: ID = "x") { account(id: $id) }` with `{"id": null}`),
 * which validation cannot see. The caller's input, not a bug: `BAD_USER_INPUT`.
 */
function isArgumentRefusal(error: unknown): boolean {
  return error instanceof GraphQLError && error.originalError == null && error.extensions['code'] === undefined && error.message.startsWith('Argument "');
}

/** The code a caller is shown for an error raised while running an operation: the gateway's own, or BAD_USER_INPUT for graphql-js's refusal of an argument; `undefined` for anything unexpected. */
export function callerCodeOf(error: unknown): ErrorCode | undefined {
  return codeOf(error) ?? (isArgumentRefusal(error) ? ErrorCode.BAD_USER_INPUT : undefined);
}

/** The code of an error raised by this gateway, or `undefined` for anything unexpected. */
export function codeOf(error: unknown): ErrorCode | undefined {
  const code = error instanceof GraphQLError ? error.extensions['code'] : undefined;
  return typeof code === 'string' && code in ErrorCode ? (code as ErrorCode) : undefined;
}
