import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { mergingWork } from '../../src/limits/merging.ts';

const work = (document: string, maxPairs = Infinity, maxVisited = Infinity) => mergingWork(parse(document), maxPairs, maxVisited);

describe('mergingWork', () => {
  it('counts the pairs of fields of one response name level by level, merged across sets, inline fragments and fragments', () => {
    // a: 3 fields (3 pairs); their b: 3 merged (3 pairs); c once; the fragment F once (no pair).
    assert.deepEqual(work('{ a { b(x: 1) } a { b(x: 1) } ... { a { b(x: 1) c } } }'), { pairs: 6, visited: 8 });
    assert.deepEqual(work('{ a { ...F } a { ...F } } fragment F on T { b }'), { pairs: 1 + 0 + 0, visited: 5 });
    // Aliases are response names: x and y are no pair.
    assert.equal(work('{ x: a y: a a }').pairs, 0);
  });

  it('counts each two distinct fragments spread into one level, through other fragments too', () => {
    // A, B, C all end up at the root level: 3 pairs of fragments, and __typename three times (3 pairs).
    assert.equal(work('{ ...A ...B } fragment A on Q { ...C f(x: 1) } fragment B on Q { f(x: 1) } fragment C on Q { f(x: 1) }').pairs, 6);
  });

  it('counts a spread fragment where it is spread only, and a fragment no definition spreads on its own', () => {
    assert.equal(work('{ ...F } fragment F on Q { a a }').pairs, 1);
    assert.equal(work('{ b } fragment F on Q { a a }').pairs, 1);
  });

  it('counts a fragment that a later one of its name hides on its own: graphql-js compares its fields all the same', () => {
    // `...F` finds the second F; the first one's two a are a pair, wherever it is (not) spread.
    assert.equal(work('{ ...F } fragment F on Q { a a } fragment F on Q { b }').pairs, 1);
  });

  it('counts a pair of simple leaves of one field of one parent type as a twentieth of a pair: graphql-js skips them', () => {
    // 100 × id on one account: 4,950 pairs, each ~55 ns to graphql-js (against 1–3 µs for any other pair).
    assert.equal(work(`{ a { ${'id '.repeat(100)}} }`).pairs, Math.ceil(4_950 / 20));
    // Leaves with arguments are compared: each pair whole.
    assert.equal(work(`{ ${'f(x: 1) '.repeat(10)}}`).pairs, 45);
    // Under one type condition alike (named fragments' included), or under different ones each pair whole.
    assert.equal(work('{ ... on A { x x } ... on B { x } }').pairs, 3 - 1 + 1);
    assert.equal(work('{ ...F ...G } fragment F on A { x } fragment G on A { x }').pairs, 1 + 1);
    // An inline fragment without a type condition keeps the one it is under: all three x are A's.
    assert.equal(work('{ ... on A { x ... { x } ... @include(if: true) { x } } }').pairs, Math.ceil(3 / 20));
    assert.equal(work('{ ...F } fragment F on A { x ... { x ... { x } } }').pairs, Math.ceil(3 / 20));
    // A level merged from different fields of one response name (a conflict) has no known parent type below it.
    assert.equal(work('{ a { x x } a: b { x x } }').pairs, 1 + 6);
    assert.equal(work('{ a { x x } a { x x } }').pairs, 1 + Math.ceil(6 / 20));
    // There, leaves under one type condition are still known alike: the three x on A are cheap, the two others whole.
    assert.equal(work('{ a { x x } a: b { ... on A { x x x } } }').pairs, 1 + (10 - 3) + Math.ceil(3 / 20));
  });

  it('counts nothing of a definition that is no operation or fragment: it runs before validation refuses one', () => {
    assert.deepEqual(work('type T { a: Int } { a a }'), { pairs: 1, visited: 2 });
  });

  it('stops once past either maximum', () => {
    const repeated = `{ ${'a { b(x: 1) } '.repeat(100)}}`;
    assert.deepEqual(work(repeated), { pairs: 2 * 4_950, visited: 200 });
    // The first level alone passes the maximum: the second is not counted.
    assert.deepEqual(work(repeated, 4_000), { pairs: 4_950, visited: 100 });
    // At the maximum, not past it: the next level is counted, and takes the document past it.
    assert.deepEqual(work(repeated, 4_950), { pairs: 2 * 4_950, visited: 200 });
    assert.deepEqual(work(repeated, Infinity, 100), { pairs: 2 * 4_950, visited: 200 });
    assert.deepEqual(work(repeated, Infinity, 50), { pairs: 4_950, visited: 100 });
  });
});
