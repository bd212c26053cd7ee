import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteCollector } from '../../src/support/byte-collector.ts';

describe('ByteCollector', () => {
  it('joins pieces into one buffer, growing as needed, whatever the size announced', () => {
    for (const expected of [undefined, 0, 3, 1_000, Number.NaN]) {
      const body = new ByteCollector(1_000, expected);
      for (const piece of ['ab', 'c', '', 'd'.repeat(100)]) assert.equal(body.add(Buffer.from(piece)), true);
      assert.equal(body.bytes().toString(), `abc${'d'.repeat(100)}`);
      assert.equal(body.length, 103);
    }
  });

  it('refuses a piece that would pass the limit, keeping what it had', () => {
    const body = new ByteCollector(5, 100);
    assert.equal(body.add(Buffer.from('abcd')), true);
    assert.equal(body.add(Buffer.from('ef')), false);
    assert.equal(body.bytes().toString(), 'abcd');
    assert.equal(body.add(Buffer.from('e')), true);
    assert.equal(body.bytes().toString(), 'abcde');
  });

  it('takes a body a byte at a time in time linear in its size', () => {
    const body = new ByteCollector(1 << 20);
    const byte = Buffer.from('x');
    for (let i = 0; i < 1 << 20; i++) body.add(byte);
    assert.equal(body.length, 1 << 20);
    assert.equal(body.bytes().subarray(-3).toString(), 'xxx');
  });

  it('allocates at most 64 KiB before the bytes come, whatever size is announced', () => {
    const before = process.memoryUsage().arrayBuffers;
    const held = Array.from({ length: 100 }, () => new ByteCollector(1 << 20, 1 << 20));
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 20 * 1024 * 1024, `${Math.round(grown / 1024 / 1024)} MiB for ${held.length} announced bodies of 1 MiB`);
    // Still takes the whole body announced, growing as it comes.
    const body = held[0]!;
    for (let i = 0; i < 16; i++) assert.equal(body.add(Buffer.alloc(64 * 1024, i)), true);
    assert.equal(body.length, 1 << 20);
    assert.equal(body.add(Buffer.from('x')), false);
  });
});
