import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Transform } from 'node:stream';

/** node:zlib's factories of the decoders the client makes (src/upstream/content-coding.ts). */
type DecoderFactory = 'createGunzip' | 'createInflate' | 'createInflateRaw' | 'createBrotliDecompress';

/**
 * Runs `use` while every stream node:zlib's `factory` makes is added to the list `use` is given, so that a test
 * can see what became of the decoders the code under test made and keeps to itself (destroyed, or left
 * inflating). Node's own way to replace a built-in's export for modules that import it by name
 * (`syncBuiltinESMExports`): the code under test stays as it ships.
 */
export async function whileWatchingZlib<T>(factory: DecoderFactory, use: (made: Transform[]) => Promise<T>): Promise<T> {
  const zlib = createRequire(import.meta.url)('node:zlib') as Record<DecoderFactory, (...args: unknown[]) => Transform>;
  const original = zlib[factory];
  const made: Transform[] = [];
  // Read-only, but configurable, as node:zlib defines them.
  const replace = (value: (...args: unknown[]) => Transform) => {
    Object.defineProperty(zlib, factory, { value });
    syncBuiltinESMExports();
  };
  replace((...args) => {
    const stream = original(...args);
    made.push(stream);
    return stream;
  });
  try {
    return await use(made);
  } finally {
    replace(original);
  }
}
