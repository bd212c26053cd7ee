/** The suite's one way to wait for something that happens on its own time: poll until it holds. */

export interface EventuallyOptions {
  /** How long to wait at most; 5 s unless given. */
  timeoutMs?: number;
  /** What is awaited, said by the error on timeout; the condition's own source text unless given. */
  what?: string;
}

/**
 * Waits until `condition` holds, checking it every 10 ms; once `timeoutMs` have passed without it, throws
 * `not met within <timeoutMs> ms: <what>`. The condition may be async (a file read); one that returns a plain
 * boolean is not awaited, so that nothing else runs between its holding and the caller going on.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 5_000, what }: EventuallyOptions = {},
): Promise<void> {
  // Not Date.now() nor performance.now(): tests move those ahead (test/helpers/clock.ts), and a wait begun before
  // would end early.
  const deadline = process.hrtime.bigint() + BigInt(timeoutMs) * 1_000_000n;
  for (;;) {
    const result = condition();
    if (typeof result === 'boolean' ? result : await result) return;
    if (process.hrtime.bigint() > deadline) throw new Error(`not met within ${timeoutMs} ms: ${what ?? String(condition).replace(/\s+/g, ' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
