import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { MAX_NESTING, nestsDeeperThan } from '../../src/limits/nesting.ts';

const deeper = (document: string, maximum = MAX_NESTING) => nestsDeeperThan(parse(document, { maxTokens: 1_000_000 }), maximum);
/** Fields nesting `levels` selection sets, counting the one they are in. */
const fields = (levels: number) => `${'a { '.repeat(levels - 1)}b${' }'.repeat(levels - 1)}`;
/** `{ ...F0 }` and a chain of `count` fragments, each spreading the next (the last spreading `last`, when given). */
const chain = (count: number, last?: string) =>
  `{ ...F0 } ${Array.from({ length: count }, (_, i) => `fragment F${i} on Query { ${i < count - 1 ? `...F${i + 1}` : last ? `...${last}` : 'b'} }`).join(' ')}`;

describe('nestsDeeperThan', () => {
  it('counts selection sets, inline fragments among them, up to the bound and no further', () => {
    assert.equal(deeper(`{ ${fields(MAX_NESTING)} }`), false);
    assert.equal(deeper(`{ ${fields(MAX_NESTING + 1)} }`), true);
    assert.equal(deeper(`{ a { ... { b } } }`, 3), false);
    assert.equal(deeper(`{ a { ... { b { c } } } }`, 3), true);
  });

  it('counts a named fragment’s spread as entering it, fragments no operation spreads and a first of two of one name too', () => {
    assert.equal(deeper(chain(MAX_NESTING - 1)), false);
    assert.equal(deeper(chain(MAX_NESTING)), true);
    assert.equal(deeper(`{ __typename } ${chain(MAX_NESTING + 1).slice('{ ...F0 }'.length)}`), true);
    assert.equal(deeper(`{ __typename } ${chain(MAX_NESTING).slice('{ ...F0 }'.length)}`), false);
    assert.equal(deeper(`{ ...X } fragment X on Query { ${fields(MAX_NESTING + 1)} } fragment X on Query { b }`), true);
  });

  it('counts a cycle once round, for graphql-js to report, and an unknown fragment as nothing', () => {
    assert.equal(deeper(chain(3, 'F0')), false);
    assert.equal(deeper(chain(MAX_NESTING + 5, 'F0')), true);
    // Past MAX_NESTING fragments, where graphql-js's search for cycles could go deeper than the levels counted
    // once round, a document with a cycle is refused here, however short the cycle.
    const others = (count: number) => Array.from({ length: count }, (_, i) => `fragment X${i} on Query { b }`).join(' ');
    const cycle = '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }';
    assert.equal(deeper(`${cycle} ${others(MAX_NESTING - 2)}`), false);
    assert.equal(deeper(`${cycle} ${others(MAX_NESTING - 1)}`), true);
    assert.equal(deeper(`{ ...A } fragment A on Query { ...B } fragment B on Query { b } ${others(MAX_NESTING)}`), false, 'no cycle');
    assert.equal(deeper('{ ...Unknown }'), false);
  });

  it('measures fragments spread many times over once each', () => {
    // Each fragment spreads the next twice: 2^40 paths, and 82 levels (the operation's, then two each).
    const doubling = Array.from({ length: 40 }, (_, i) => `fragment D${i} on Query { a: b { ...D${i + 1} } c: b { ...D${i + 1} } }`).join(' ');
    const document = `{ ...D0 } ${doubling} fragment D40 on Query { b }`;
    assert.equal(deeper(document, 82), false);
    assert.equal(deeper(document, 81), true);
  });

  it('counts the wrappers of a variable’s type', () => {
    assert.equal(deeper(`query($v: ${'['.repeat(MAX_NESTING)}ID${']'.repeat(MAX_NESTING)}) { b }`), false);
    assert.equal(deeper(`query($v: ${'['.repeat(MAX_NESTING)}ID!${']'.repeat(MAX_NESTING)}) { b }`), true);
  });
});
