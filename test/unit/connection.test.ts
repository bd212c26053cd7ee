import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cursorKeyFrom, edgesOf, encodeCursor, ItemAnchors, pageInfoOf, pageOfList, pageWindow } from '../../src/resolvers/connection.ts';

interface Token {
  token: string;
  created: number;
}

/** Anchors over tokens, counting the digests they compute. */
function anchorsFor(secret: string) {
  const counter = { digests: 0 };
  const anchors = new ItemAnchors<Token>(
    (t) => {
      counter.digests++;
      return t.token;
    },
    (t) => t.created,
    cursorKeyFrom(secret),
  );
  return { anchors, counter };
}

const tokens = (n: number, createdOf = (i: number) => 1_700_000_000 + i): Token[] => Array.from({ length: n }, (_, i) => ({ token: `tok${i}`, created: createdOf(i) }));
const names = (items: Token[]) => items.map((t) => t.token);
/** The cursor after `list[index]`, as a page of `list` wrote it. */
const cursorAfter = (list: Token[], index: number, anchors: ItemAnchors<Token>) => encodeCursor('connectTokens', index, anchors.of(list[index]!));
const next = (list: Token[], after: string, anchors: ItemAnchors<Token>, first = 2) => names(pageOfList(list, pageWindow('connectTokens', first, after, true), anchors).items);

describe('cursors that name their item (connect tokens)', () => {
  it('resume after their item, found where it was at the cost of one digest, or earlier once items before it are gone', () => {
    const all = tokens(10_000);
    const { anchors, counter } = anchorsFor('s');
    const after = cursorAfter(all, 9_900, anchors);
    counter.digests = 0;
    assert.deepEqual(next(all, after, anchors), ['tok9901', 'tok9902']);
    assert.equal(counter.digests, 1);
    // The oldest two purged: the item is two places earlier, and the page still follows it.
    assert.deepEqual(next(all.slice(2), after, anchors), ['tok9901', 'tok9902']);
  });

  it('resume at the first item created after theirs when it is gone too, the older ones purged with it', () => {
    const all = tokens(6);
    const { anchors } = anchorsFor('s');
    const after = cursorAfter(all, 1, anchors);
    assert.deepEqual(next(all.slice(2), after, anchors), ['tok2', 'tok3']);
    assert.deepEqual(next([all[0]!, ...all.slice(2)], after, anchors), ['tok2', 'tok3']);
  });

  it('resume at the first item created before theirs when it is gone too in a list newest first, none after it skipped', () => {
    const { anchors } = anchorsFor('s');
    const newest = tokens(5, (i) => 1_700_000_105 - i);
    const after = cursorAfter(newest, 1, anchors);
    // It and the one before it deleted: its position (1) would start at tok3, tok2 never shown.
    assert.deepEqual(next(newest.slice(2), after, anchors), ['tok2', 'tok3']);
    // It deleted and one created meanwhile: tok0, already shown, is not shown again.
    assert.deepEqual(next([{ token: 'new', created: 1_700_000_106 }, newest[0]!, ...newest.slice(2)], after, anchors), ['tok2', 'tok3']);
  });

  it('resume after their item when the list is now shorter than their position, and end the list when it and every later one are gone', () => {
    const all = tokens(6);
    const { anchors } = anchorsFor('s');
    const after = cursorAfter(all, 4, anchors);
    // The four before it purged: it is second of two, where its position (4) is past the list's end.
    assert.deepEqual(next(all.slice(4), after, anchors), ['tok5']);
    // It and the one after it deleted: only older items are left, none of which comes after it.
    const page = pageOfList(all.slice(0, 4), pageWindow('connectTokens', 10, after, true), anchors);
    assert.deepEqual([names(page.items), page.hasNextPage], [[], false]);
  });

  it('show an item of the same second again rather than skip one, when theirs is gone', () => {
    const all = tokens(4, () => 1_700_000_000);
    const { anchors } = anchorsFor('s');
    const after = cursorAfter(all, 1, anchors);
    assert.deepEqual(next(all.filter((t) => t.token !== 'tok1'), after, anchors, 3), ['tok0', 'tok2', 'tok3']);
  });

  it('find their item in a list in any order (the upstream does not say it lists tokens by creation), however it moved', () => {
    const { anchors } = anchorsFor('s');
    const list = (...created: number[]) => created.map((c, i) => ({ token: `tok${i}`, created: c }));
    const without = (all: Token[], gone: string) => all.filter((t) => t.token !== gone);
    // Newest first, one created meanwhile.
    const newest = list(105, 104, 103, 102, 101);
    assert.deepEqual(next([{ token: 'new', created: 106 }, ...newest], cursorAfter(newest, 1, anchors), anchors), ['tok2', 'tok3']);
    // Any order, or a clock off by a second: one deleted before the cursor.
    const shuffled = list(105, 101, 103, 102, 104);
    assert.deepEqual(next(without(shuffled, 'tok0'), cursorAfter(shuffled, 2, anchors), anchors), ['tok3', 'tok4']);
    const skewed = list(100, 101, 100, 102);
    assert.deepEqual(next(without(skewed, 'tok0'), cursorAfter(skewed, 1, anchors), anchors), ['tok2', 'tok3']);
    // Gone itself in a list not in creation order: its position.
    assert.deepEqual(next(without(shuffled, 'tok2'), cursorAfter(shuffled, 2, anchors), anchors), ['tok3', 'tok4']);
  });

  it('digest a bounded number of items of one second (tokens without a creation time are all of second 0)', () => {
    const all = tokens(1_000, () => 0);
    const { anchors, counter } = anchorsFor('s');
    const after = cursorAfter(all, 998, anchors);
    counter.digests = 0;
    assert.deepEqual(next(all.filter((t) => t.token !== 'tok998'), after, anchors), ['tok999']);
    assert.ok(counter.digests <= 64, `${counter.digests} digests`);
  });

  it('find their item when it is the 64th of its second digested, and count it gone past that', () => {
    // Cursor written for tok0 at the head of a list of second-0 tokens; then others arrive before it.
    const { anchors, counter } = anchorsFor('s');
    const head = tokens(1, () => 0);
    const after = cursorAfter(head, 0, anchors);
    const arrived = (n: number) => [...tokens(n, () => 0).map((t) => ({ ...t, token: `new${t.token}` })), ...head, ...tokens(3, () => 0).map((t) => ({ ...t, token: `end${t.token}` }))];
    // 63 arrived: the search digests index 0, then 1 … 63, where it is the 64th.
    counter.digests = 0;
    assert.deepEqual(next(arrived(63), after, anchors), ['endtok0', 'endtok1']);
    assert.equal(counter.digests, 64);
    // 64 arrived: it would be the 65th; counted gone, the page starts at its old position (no creation times).
    assert.deepEqual(next(arrived(64), after, anchors), ['newtok0', 'newtok1']);
  });

  it('take a creation time of 13 digits (milliseconds sent for seconds)', () => {
    const all = tokens(3, (i) => 1_700_000_000_000 + i);
    const { anchors } = anchorsFor('s');
    assert.deepEqual(next(all, cursorAfter(all, 0, anchors), anchors), ['tok1', 'tok2']);
  });

  it('page by position when written under another key (a secret made up at each start)', () => {
    const all = tokens(4);
    const before = anchorsFor('made-up-1').anchors;
    const after = cursorAfter(all, 1, before);
    assert.deepEqual(next(all, after, anchorsFor('made-up-2').anchors), ['tok2', 'tok3']);
  });

  it('are digested only when a cursor is asked for', () => {
    const all = tokens(100);
    const { anchors, counter } = anchorsFor('s');
    const page = pageOfList(all, pageWindow('connectTokens', 100, undefined, true), anchors);
    const edges = edgesOf(page);
    const info = pageInfoOf(page);
    assert.equal(edges.length + Number(info.hasNextPage) + Number(info.hasPreviousPage), 100);
    assert.equal(counter.digests, 0);
    assert.equal(info.endCursor, edges[99]!.cursor);
    assert.equal(counter.digests, 1, 'the last item\'s cursor, made once for both');
  });

  it('are digested once per item of a page however often asked for: aliases of cursor, of edges, of endCursor', () => {
    // The estimate weighs each cursor field as a plain one: 98 aliases of it under a page of 99 tokens made
    // 9,702 digests (~65 ms of CPU).
    const all = tokens(99);
    const { anchors, counter } = anchorsFor('s');
    const page = pageOfList(all, pageWindow('connectTokens', 99, undefined, true), anchors);
    const cursors = new Set<string>();
    for (let alias = 0; alias < 10; alias++) {
      for (const edge of edgesOf(page)) for (let read = 0; read < 10; read++) cursors.add(edge.cursor);
      cursors.add(pageInfoOf(page).endCursor!);
      cursors.add(pageInfoOf(page).startCursor!);
    }
    assert.equal(cursors.size, 99);
    assert.equal(counter.digests, 99);
    // Another page of the same list has cursors of its own, the same for the same items.
    const again = pageOfList(all, pageWindow('connectTokens', 99, undefined, true), anchors);
    assert.equal(edgesOf(again)[5]!.cursor, edgesOf(page)[5]!.cursor);
    assert.equal(counter.digests, 100);
  });

  it('are refused by a list whose cursors are positions, and must be exactly as written', () => {
    const all = tokens(3);
    const { anchors } = anchorsFor('s');
    const after = cursorAfter(all, 0, anchors);
    const decoded = Buffer.from(after, 'base64url').toString();
    assert.throws(() => pageWindow('connectTokens', 2, after), /not a cursor of this list/);
    for (const tampered of [decoded.replace(':0:', ':00:'), `${decoded}x`, decoded.replace(/\.[^.]*$/, '.short'), decoded.replace(':1700', ':01700')]) {
      assert.throws(() => pageWindow('connectTokens', 2, Buffer.from(tampered).toString('base64url'), true), /not a cursor of this list/, tampered);
    }
  });
});

describe('page info', () => {
  it('says items come before any page asked for with `after`, the one after the first item included', () => {
    const all = tokens(3);
    const { anchors } = anchorsFor('s');
    assert.equal(pageInfoOf(pageOfList(all, pageWindow('connectTokens', 1, undefined, true), anchors)).hasPreviousPage, false);
    for (const index of [0, 1]) {
      const page = pageOfList(all, pageWindow('connectTokens', 1, cursorAfter(all, index, anchors), true), anchors);
      assert.deepEqual(names(page.items), [`tok${index + 1}`]);
      assert.equal(pageInfoOf(page).hasPreviousPage, true, `after item ${index}`);
    }
  });
});
