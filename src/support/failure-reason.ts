/**
 * Why a call failed, in the words of what failed. fetch reports every failure of its own (a connection
 * refused, a name not found, TLS, a reset) as one TypeError, "fetch failed", whose cause holds the reason;
 * anything else is its own message.
 */
export function failureReason(error: unknown): string {
  const reason = error instanceof TypeError && error.message === 'fetch failed' && error.cause instanceof Error ? error.cause : error;
  return describe(reason);
}

function describe(reason: unknown): string {
  if (!(reason instanceof Error)) return String(reason);
  if (reason.message !== '') return reason.message;
  // A connection to a name with several addresses (`localhost`: ::1 and 127.0.0.1) that fails on each fails
  // with an AggregateError whose own message is empty: the reasons are its errors'.
  if (reason instanceof AggregateError && reason.errors.length > 0) return [...new Set(reason.errors.map(describe))].join('; ');
  const code = (reason as { code?: unknown }).code;
  return typeof code === 'string' ? code : reason.name;
}

/** A thrown value as an `Error`: JavaScript lets anything be thrown, and the callers' callers take errors. */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
