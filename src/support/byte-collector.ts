/**
 * A body received in pieces, copied into one buffer as they arrive. Keeping the pieces costs far more than
 * their bytes when they are small: Node and undici hand each chunk of a chunked body over as its own Buffer
 * (~200 bytes of heap each), so a 1 MiB request sent a byte per chunk would hold ~220 MB until it ended, and
 * a few such requests, before any token was checked, would run the gateway out of memory.
 */
export class ByteCollector {
  #buffer: Buffer;
  #length = 0;

  /**
   * `expected`: the size announced (Content-Length; NaN or undefined when none), allocated at once up to `MAX_UPFRONT_BYTES`:
   * a header alone must not reserve the whole limit (1,000 connections announcing 1 MiB and sending a byte
   * would reserve 1 GB).
   */
  constructor(
    readonly limit: number,
    expected?: number,
  ) {
    const announced = expected !== undefined && Number.isFinite(expected) && expected > 0 ? Math.min(expected, MAX_UPFRONT_BYTES) : INITIAL_BYTES;
    this.#buffer = Buffer.allocUnsafe(Math.min(limit, announced));
  }

  get length(): number {
    return this.#length;
  }

  /** Adds `chunk`, or nothing and false when the whole would then pass the limit. */
  add(chunk: Uint8Array): boolean {
    const length = this.#length + chunk.length;
    if (length > this.limit) return false;
    if (length > this.#buffer.length) {
      // Doubling: the bytes copied in all stay under twice the body's size, however it was cut.
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(length, this.#buffer.length * 2)));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#buffer.set(chunk, this.#length);
    this.#length = length;
    return true;
  }

  /** The bytes so far (a view, not a copy). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/** Without a Content-Length: enough for the usual GraphQL request or REST answer at once. */
const INITIAL_BYTES = 16 * 1024;

/** The most allocated before the bytes come, whatever size is announced; beyond it the buffer doubles as they do. */
const MAX_UPFRONT_BYTES = 64 * 1024;
