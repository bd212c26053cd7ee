/**
 * A wait in ms as the whole seconds a client is told (`Retry-After`, `extensions.retryAfter`, "in N s"):
 * rounded up, and at least 1, so a client that waits exactly that long is not refused again for the
 * fraction of a second left over. One rounding for every refusal that says when to come back: the budgets,
 * the upstream's pause and circuit, the key set's back-off, the emulator's rate limit.
 */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
