import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { persistedQueryCache } from '../../src/graphql/apollo.ts';

describe('the persisted-query cache', () => {
  it('counts each entry, not only its text: distinct small queries cannot fill the heap', async () => {
    const cache = persistedQueryCache();
    // Keyed as Apollo keys it (`apq:` is its prefix); each ~18 characters of text holds ~230 bytes of heap.
    for (let i = 0; i < 100_000; i++) {
      const query = `{ __typename } #${i}`;
      await cache.set(`apq:${createHash('sha256').update(query).digest('hex')}`, query);
    }
    const kept = cache.keys().length;
    // 4 MiB at 256 bytes an entry besides its text: ~15,000. Counted by its text alone, all 100,000 stay.
    assert.ok(kept > 10_000 && kept < 16_384, `${kept} entries kept`);
  });
});
