import type { Transform } from 'node:stream';
import { whileReplacingBuiltin } from './builtins.ts';

/** node:zlib's factories of the decoders the client makes (src/upstream/content-coding.ts). */
type DecoderFactory = 'createGunzip' | 'createInflate' | 'createInflateRaw' | 'createBrotliDecompress';

/**
 * Runs `use` while every stream node:zlib's `factory` makes is added to the list `use` is given, so that a test
 * can see what became of the decoders the code under test made and keeps to itself (destroyed, or left
 * inflating).
 */
export async function whileWatchingZlib<T>(factory: DecoderFactory, use: (made: Transform[]) => Promise<T>): Promise<T> {
  const made: Transform[] = [];
  const watching = (original: (...args: unknown[]) => Transform) => (...args: unknown[]) => {
    const stream = original(...args);
    made.push(stream);
    return stream;
  };
  return whileReplacingBuiltin('node:zlib', factory, watching, () => use(made));
}
