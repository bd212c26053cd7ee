import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { documentCache } from '../../src/graphql/apollo.ts';
import { DEFAULT_OPERATION_LIMITS } from '../../src/limits/index.ts';

/** How many of `texts`, parsed as Apollo parses them and cached under Apollo's keys, the document cache keeps. */
async function keptOf(texts: string[]): Promise<number> {
  const cache = documentCache();
  for (const text of texts) await cache.set(`doc:${createHash('sha256').update(text).digest('hex')}`, parse(text, { maxTokens: DEFAULT_OPERATION_LIMITS.maxTokens }));
  return cache.keys().length;
}

describe('the parsed-document cache', () => {
  it('counts the tokens a document keeps, comments too: distinct documents of a comment a line cannot fill the heap', async () => {
    // One comment a line, as many lines as MAX_QUERY_TOKENS allows: ~6 KB of text each, whose tokens hold ~270 KB.
    const kept = await keptOf(Array.from({ length: 100 }, (_, i) => `{ __typename } # ${i}\n${'#\n'.repeat(2_990)}`));
    // 4 MiB at ~300 KB each: 13. Counted by their JSON and text alone (~6.4 KB), all 100 stay (~27 MB).
    assert.ok(kept >= 10 && kept <= 16, `${kept} documents kept`);
  });

  it('counts the lines a document has, which locating its errors indexes: distinct documents of blank lines cannot fill the heap', async () => {
    // As many lines as MAX_QUERY_TOKENS allows, blank: ~3 KB of text each, whose index of lines takes 12 KB once an error is located.
    const kept = await keptOf(Array.from({ length: 1_000 }, (_, i) => `{ account(id: "${i}") { id } }${'\n'.repeat(2_999)}`));
    // 4 MiB at ~20 KB each: ~210. Counted without their lines (~8 KB), ~540 stay.
    assert.ok(kept >= 150 && kept <= 300, `${kept} documents kept`);
  });

  it('counts each entry by the heap it holds: small documents ~3 KB each, a page of 100 accounts ~14 KB', async () => {
    const small = await keptOf(Array.from({ length: 20_000 }, (_, i) => `{ __typename } # ${i}`));
    // 4 MiB at ~2.8 KB each: ~1,470. Counted by their JSON and text alone (~430 bytes), ~9,800 stay (~29 MB).
    assert.ok(small >= 1_000 && small <= 2_000, `${small} small documents kept`);
    const page = '{ accounts(first: 100) { nodes { id username emailAddresses messageCount fileCount sources { label status username server } connectTokens { token email createdAt usedAt } } } }';
    const pages = await keptOf(Array.from({ length: 1_000 }, (_, i) => `${page} # ${i}`));
    // A frontend's operations fit many times over: ~290 of the heaviest page the limits' defaults allow.
    assert.ok(pages >= 200 && pages <= 400, `${pages} pages of accounts kept`);
  });
});
