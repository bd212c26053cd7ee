import type { Identity } from './access.ts';

/**
 * The identities of tokens verified lately, by each token's exact text. A frontend sends one token with every
 * request until it expires, and verifying its signature again each time (jose, through WebCrypto) cost 55–100
 * µs of CPU a request (HS256; an RSA or EC signature more), a third of what a whole operation of the bench's
 * scenario 1 costs: a token seen again is answered from here.
 *
 * An entry ends when its token does (`exp`, with the tolerance verification allows: by the wall clock, as `exp` is
 * checked), after `maxAgeMs` at most (by the monotonic clock, as every wait the gateway keeps: a wall clock set
 * back a day would otherwise keep an entry, unverified, for that day), and, for a token verified with a key set,
 * as soon as that set has been fetched again, so that a key withdrawn
 * from it stops verifying the tokens it signed once the gateway knows (the caller also ends such an entry when
 * the set's keys are no longer trusted without a fetch: src/auth/verify.ts). Only tokens that verified are kept; at
 * most `capacity` of them, and `maxChars` characters of tokens in all (a token may be 8 KB), the oldest
 * let go first.
 */
export class VerifiedTokens {
  readonly #entries = new Map<string, Entry>();
  #chars = 0;

  constructor(
    private readonly limits: { capacity: number; maxChars: number; maxAgeMs: number },
    /** Wall-clock ms, as `exp` is. */
    private readonly now: () => number = () => Date.now(),
    /** Monotonic ms, for `maxAgeMs` and how long a key set's keys are trusted. */
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {}

  /** The identity `token` was verified to, unless that no longer holds; `keySetFetch`: the key set's fetch now. */
  get(token: string, keySetFetch: unknown): Identity | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.until > this.now() && entry.staleAt > this.monotonicNow() && (!entry.viaKeySet || entry.keySetFetch === keySetFetch)) return entry.identity;
    this.#forget(token);
    return undefined;
  }

  /**
   * Keeps what `token` verified to until `expiresAtMs` (wall-clock ms), for `maxAgeMs` at most. Verified with a
   * key set (`viaKeySet`), it holds while the set is the one of `keySetFetch`, for `keySetTrustedForMs` at most
   * (the time left before those keys are too old to be trusted without a fetch).
   */
  set(token: string, identity: Identity, expiresAtMs: number, viaKeySet: boolean, keySetFetch?: unknown, keySetTrustedForMs = Infinity): void {
    const keptForMs = Math.min(this.limits.maxAgeMs, keySetTrustedForMs);
    if (expiresAtMs <= this.now() || keptForMs <= 0 || token.length > this.limits.maxChars) return;
    if (this.#entries.has(token)) this.#forget(token);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < this.limits.capacity && this.#chars + token.length <= this.limits.maxChars) break;
      this.#forget(oldest);
    }
    this.#entries.set(token, { identity, until: expiresAtMs, staleAt: this.monotonicNow() + keptForMs, viaKeySet, keySetFetch });
    this.#chars += token.length;
  }

  /** Tokens kept now (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Forgets a token kept now. */
  #forget(token: string): void {
    this.#entries.delete(token);
    this.#chars -= token.length;
  }
}

interface Entry {
  readonly identity: Identity;
  /** Wall-clock ms: its token's end. */
  readonly until: number;
  /** Monotonic ms: verified too long ago to be trusted without verifying it again. */
  readonly staleAt: number;
  readonly viaKeySet: boolean;
  /** Which fetch of the key set verified it (jose's `uat`). */
  readonly keySetFetch: unknown;
}
