import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { mergingWork } from '../../src/limits/merging.ts';

const work = (document: string, maxPairs = Infinity, maxVisited = Infinity) => mergingWork(parse(document), maxPairs, maxVisited);

describe('mergingWork', () => {
  it('counts the pairs of fields of one response name level by level, merged across sets, inline fragments and fragments', () => {
    // a: 3 fields (3 pairs); their b: 3 merged (3 pairs); c once; the fragment F once (no pair).
    assert.deepEqual(work('{ a { b } a { b } ... { a { b c } } }'), { pairs: 6, visited: 8 });
    assert.deepEqual(work('{ a { ...F } a { ...F } } fragment F on T { b }'), { pairs: 1 + 0 + 0, visited: 5 });
    // Aliases are response names: x and y are no pair.
    assert.equal(work('{ x: a y: a a }').pairs, 0);
  });

  it('counts each two distinct fragments spread into one level, through other fragments too', () => {
    // A, B, C all end up at the root level: 3 pairs of fragments, and __typename three times (3 pairs).
    assert.equal(work('{ ...A ...B } fragment A on Q { ...C __typename } fragment B on Q { __typename } fragment C on Q { __typename }').pairs, 6);
  });

  it('counts a spread fragment where it is spread only, and a fragment no definition spreads on its own', () => {
    assert.equal(work('{ ...F } fragment F on Q { a a }').pairs, 1);
    assert.equal(work('{ b } fragment F on Q { a a }').pairs, 1);
  });

  it('counts a fragment that a later one of its name hides on its own: graphql-js compares its fields all the same', () => {
    // `...F` finds the second F; the first one's two a are a pair, wherever it is (not) spread.
    assert.equal(work('{ ...F } fragment F on Q { a a } fragment F on Q { b }').pairs, 1);
  });

  it('stops once past either maximum', () => {
    const repeated = `{ ${'a { b } '.repeat(100)}}`;
    assert.deepEqual(work(repeated), { pairs: 2 * 4_950, visited: 200 });
    // The first level alone passes the maximum: the second is not counted.
    assert.deepEqual(work(repeated, 4_000), { pairs: 4_950, visited: 100 });
    assert.deepEqual(work(repeated, Infinity, 50), { pairs: 4_950, visited: 100 });
  });
});
