/**
 * Why a call failed, in the words of what failed. fetch reports every failure of its own (a connection
 * refused, a name not found, TLS, a reset) as one TypeError, "fetch failed", whose cause holds the reason;
 * anything else is its own message.
 */
export function failureReason(error: unknown): string {
  const reason = error instanceof TypeError && error.message === 'fetch failed' && error.cause instanceof Error ? error.cause : error;
  return reason instanceof Error ? reason.message : String(reason);
}

/** A thrown value as an `Error`: JavaScript lets anything be thrown, and the callers' callers take errors. */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
