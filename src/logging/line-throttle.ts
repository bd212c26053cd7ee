/**
 * Log lines that come in bursts, said at most once per `intervalMs` each (keyed by message), with how many
 * went unsaid since the line before. Times are `performance.now()`: monotonic.
 */
export class LineThrottle {
  readonly #lines = new Map<string, { at: number; seenAt: number; unsaid: number }>();

  constructor(readonly intervalMs: number) {}

  get size(): number {
    return this.#lines.size;
  }

  /**
   * Whether `message`'s line is to be written now: then the fields it adds (`sinceLastLine`, its occurrences
   * left unsaid since its last line, when there were any); undefined when this one goes unsaid (it is counted).
   */
  admit(message: string, now: number): { sinceLastLine?: number } | undefined {
    const last = this.#lines.get(message);
    if (last !== undefined && now - last.at < this.intervalMs) {
      last.unsaid += 1;
      last.seenAt = now;
      return undefined;
    }
    this.#lines.set(message, { at: now, seenAt: now, unsaid: 0 });
    return last?.unsaid ? { sinceLastLine: last.unsaid } : {};
  }

  /**
   * The messages not seen for an interval, forgotten as they are listed, each with its occurrences left
   * unsaid: one seen again now and then stays throttled, and a return is said at once.
   */
  *forgetQuiet(now: number): Generator<[message: string, unsaid: number]> {
    for (const [message, { seenAt, unsaid }] of this.#lines) {
      if (now - seenAt < this.intervalMs) continue;
      this.#lines.delete(message);
      yield [message, unsaid];
    }
  }

  /**
   * Every message with occurrences left unsaid, all forgotten: at the end (the gateway stopping), when no later
   * line of theirs and no quiet interval will come to say them.
   */
  *unsaidAtEnd(): Generator<[message: string, unsaid: number]> {
    for (const [message, { unsaid }] of this.#lines) {
      this.#lines.delete(message);
      if (unsaid > 0) yield [message, unsaid];
    }
  }

  /**
   * `forgetQuiet`, keeping only the messages with occurrences left unsaid: what a burst's end is owed a line
   * for ("this many more since"), once the burst is over. Nothing to do, and no walk, while none is held.
   */
  *unsaidOnceQuiet(now: number): Generator<[message: string, unsaid: number]> {
    if (this.#lines.size === 0) return;
    for (const [message, unsaid] of this.forgetQuiet(now)) if (unsaid > 0) yield [message, unsaid];
  }
}
