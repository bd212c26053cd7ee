import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { decodingStages, UnknownCoding } from '../../src/upstream/content-coding.ts';
import { whileWatchingZlib } from '../helpers/zlib.ts';

/** What the stages decode `chunks` to, written one at a time to the first, read from the last. */
async function decoded(contentEncoding: string, chunks: readonly Buffer[]): Promise<string> {
  const stages = decodingStages(contentEncoding);
  const parts: Buffer[] = [];
  const last = stages.at(-1)!.stream;
  last.on('data', (part: Buffer) => parts.push(part));
  const ended = new Promise<void>((resolve, reject) => {
    last.once('end', resolve);
    last.once('error', reject);
  });
  for (const chunk of chunks) stages[0]!.stream.write(chunk);
  stages[0]!.stream.end();
  await ended;
  return Buffer.concat(parts).toString();
}

describe('content codings', () => {
  it('tells zlib-wrapped deflate from bare deflate by the first byte that arrives, an empty chunk before it aside', async () => {
    // An empty chunk has no first byte: taken for one, it would choose the bare decoder for a zlib stream.
    const json = '{"success":true}';
    for (const body of [deflateSync(json), deflateRawSync(json)]) {
      assert.equal(await decoded('deflate', [Buffer.alloc(0), body]), json);
    }
  });

  it('reads a zlib stream of any window size as zlib: its first byte is then other than 0x78, its low four bits still 8', async () => {
    const json = '{"success":true}';
    for (const windowBits of [9, 12, 14]) {
      const body = deflateSync(json, { windowBits });
      assert.notEqual(body[0], 0x78, `windowBits ${windowBits}`);
      assert.equal(await decoded('deflate', [body]), json, `windowBits ${windowBits}`);
    }
  });

  it('refuses a coding named as a property every object has (constructor, __proto__) as one it has no decoder for', () => {
    for (const coding of ['constructor', '__proto__', 'gzip, constructor']) {
      assert.throws(() => decodingStages(coding), (error) => error instanceof UnknownCoding && error.message === `unknown content coding ${coding.replace('gzip, ', '')}`, coding);
    }
  });

  it('destroys the inflater inside deflate’s stage with the stage: a refused or cancelled answer is not inflated on', async () => {
    for (const [factory, body] of [
      ['createInflate', deflateSync('{"success":true}')],
      ['createInflateRaw', deflateRawSync('{"success":true}')],
    ] as const) {
      await whileWatchingZlib(factory, async (made) => {
        const [stage] = decodingStages('deflate');
        // Its inflater is chosen by the first byte, so made by the first write.
        stage!.stream.write(body.subarray(0, 4));
        assert.equal(made.length, 1, factory);
        stage!.stream.destroy();
        assert.equal(made[0]!.destroyed, true, factory);
      });
    }
  });
});
