import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * What the client asks the upstream for (RFC 9110 §12.5.3): a request without it accepts any coding, so a
 * CDN in front of the API could compress in one the client cannot read; named, a list page of JSON (tens of
 * KB) comes about ten times smaller.
 */
export const ACCEPTED_CODINGS = 'gzip, deflate, br';

/** Decoded output handed on at once: a list page in a few pieces rather than many of zlib's default 16 KiB. */
const DECODED_CHUNK_BYTES = 64 * 1024;

const gunzip = () => createGunzip({ chunkSize: DECODED_CHUNK_BYTES });

/**
 * `deflate` is zlib's format (RFC 9110 §8.4.1.2), but some servers send the bare deflate stream without zlib's
 * header and checksum, which browsers and undici's own `fetch` read too. Told apart as they do, by the first
 * byte: a zlib header's low four bits name the deflate method (8).
 */
class DeflateEitherWay extends Transform {
  #inflate: Transform | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#inflate === undefined) {
      if (chunk.length === 0) return callback();
      const options = { chunkSize: DECODED_CHUNK_BYTES };
      const inflate = (chunk[0]! & 0x0f) === 0x08 ? createInflate(options) : createInflateRaw(options);
      inflate.on('data', (decoded: Buffer) => this.push(decoded));
      inflate.once('error', (error) => this.destroy(error));
      this.#inflate = inflate;
    }
    this.#inflate.write(chunk, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#inflate === undefined) return callback();
    this.#inflate.once('end', () => callback());
    this.#inflate.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#inflate?.destroy();
    callback(error);
  }
}

const decoders: Record<string, (() => Transform) | undefined> = {
  gzip: gunzip,
  // HTTP/1.0's name for gzip, which RFC 9110 asks a recipient to read as gzip.
  'x-gzip': gunzip,
  deflate: () => new DeflateEitherWay(),
  br: () => createBrotliDecompress({ chunkSize: DECODED_CHUNK_BYTES }),
};

/** One stage of an answer's decoding: the coding it undoes, named in the error when it fails. */
export interface DecodingStage {
  coding: string;
  stream: Transform;
}

/** The stages of an answer not encoded: none, one list for all. */
const NOT_ENCODED: readonly DecodingStage[] = [];

/** A Content-Encoding naming a coding the client has no decoder for (`zstd`, `compress` …). */
export class UnknownCoding extends Error {
  constructor(readonly coding: string) {
    super(`unknown content coding ${coding}`);
  }
}

/**
 * The stages that decode an answer sent with this `Content-Encoding`, the first to write its bytes to; none for
 * an answer not encoded (no header, or only `identity`). Codings are listed in the order they were applied, so
 * undone in reverse. Throws `UnknownCoding` for one the client cannot undo.
 */
export function decodingStages(contentEncoding: string | string[] | undefined): readonly DecodingStage[] {
  // Most answers: the emulator's, and any upstream's small ones, which servers do not compress.
  if (contentEncoding === undefined) return NOT_ENCODED;
  const listed = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : contentEncoding)
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  // All checked before any decoder is made: none is left open for an answer refused.
  const unknown = listed.find((coding) => !Object.hasOwn(decoders, coding));
  if (unknown !== undefined) throw new UnknownCoding(unknown);
  const stages = listed.reverse().map((coding) => ({ coding, stream: decoders[coding]!() }));
  for (let i = 1; i < stages.length; i++) stages[i - 1]!.stream.pipe(stages[i]!.stream);
  return stages;
}
