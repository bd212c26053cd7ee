import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, parse } from 'graphql';
import { MAX_NESTING, nestingProblem, type FragmentCycle } from '../../src/limits/nesting.ts';

const problem = (document: string, maximum = MAX_NESTING) => nestingProblem(parse(document, { maxTokens: 1_000_000 }), maximum);
const deeper = (document: string, maximum = MAX_NESTING) => problem(document, maximum) === 'too deep';
/** The cycle found in `document`, as its fragments' names and the lines of the spreads that make it. */
const cycleIn = (document: string) => {
  const found = problem(document) as FragmentCycle | undefined;
  return found && { spread: found.spread, via: found.via, spreads: found.nodes.map((node) => `...${node.name.value}@${node.loc?.start}`) };
};
/** Fields nesting `levels` selection sets, counting the one they are in. */
const fields = (levels: number) => `${'a { '.repeat(levels - 1)}b${' }'.repeat(levels - 1)}`;
/** `{ ...F0 }` and a chain of `count` fragments, each spreading the next (the last spreading `last`, when given). */
const chain = (count: number, last?: string) =>
  `{ ...F0 } ${Array.from({ length: count }, (_, i) => `fragment F${i} on Query { ${i < count - 1 ? `...F${i + 1}` : last ? `...${last}` : 'b'} }`).join(' ')}`;

describe('nestingProblem', () => {
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

  it('finds a cycle of fragments, however short, with the spreads that make it, and counts an unknown fragment as nothing', () => {
    const twoRound = '{ ...A } fragment A on Query { ...B } fragment B on Query { b ...A }';
    assert.deepEqual(cycleIn(twoRound), { spread: 'A', via: ['B'], spreads: [`...B@${twoRound.indexOf('...B')}`, `...A@${twoRound.lastIndexOf('...A')}`] });
    // A fragment spread twice in one: the cycle's location is its first spread.
    const twice = '{ ...A } fragment A on Query { ...B a { ...B } } fragment B on Query { ...A }';
    assert.deepEqual(cycleIn(twice), { spread: 'A', via: ['B'], spreads: [`...B@${twice.indexOf('...B')}`, `...A@${twice.lastIndexOf('...A')}`] });
    const self = '{ b } fragment S on Query { a { ...S } }';
    assert.deepEqual(cycleIn(self), { spread: 'S', via: [], spreads: [`...S@${self.indexOf('...S')}`] });
    assert.deepEqual(cycleIn(chain(3, 'F0')), { spread: 'F0', via: ['F1', 'F2'], spreads: cycleIn(chain(3, 'F0'))!.spreads });
    assert.equal(cycleIn(chain(3, 'F0'))!.spreads.length, 3);
    // Each fragment spreading the next two round a ring: graphql-js's merge check followed it out of stack.
    const ring = Array.from({ length: 100 }, (_, i) => `fragment R${i} on Query { ...R${(i + 1) % 100} ...R${(i + 2) % 100} }`).join(' ');
    assert.equal((problem(`{ b } ${ring}`) as FragmentCycle).spread.startsWith('R'), true);
    // A cycle past the bound is found as a cycle, wherever the measure meets it first.
    assert.notEqual(problem(chain(MAX_NESTING + 5, 'F0')), undefined);
    // Diamonds are no cycle: two routes to one fragment.
    assert.equal(problem('{ ...A } fragment A on Query { ...B ...C } fragment B on Query { ...D } fragment C on Query { ...D } fragment D on Query { b }'), undefined);
    assert.equal(problem('{ ...Unknown }'), undefined);
  });

  it('counts a fragment spread at several levels of one set at the deepest of them, whichever comes first', () => {
    // F is 3 levels; spread in the operation's set (level 1) it makes 4, in c's (level 4) 7.
    const spreadTwice = '{ ...F a { b { c { ...F } } } } fragment F on Query { x { y { z } } }';
    assert.equal(deeper(spreadTwice, 7), false);
    assert.equal(deeper(spreadTwice, 6), true);
    const inFragment = `{ b } fragment G on Query { ...F a { b { c { ...F } } } } ${spreadTwice.slice(spreadTwice.indexOf('fragment F'))}`;
    assert.equal(deeper(inFragment, 6), true);
    // The deep spread in a set walked before a shallower one of a sibling field: its level still stands.
    const deepFirst = '{ d { ...F } a { b { c { ...F } } } } fragment F on Query { x { y { z } } }';
    assert.equal(deeper(deepFirst, 7), false);
    assert.equal(deeper(deepFirst, 6), true);
  });

  it('measures fragments spread many times over once each', () => {
    // Each fragment spreads the next twice: 2^40 paths, and 82 levels (the operation's, then two each).
    const doubling = Array.from({ length: 40 }, (_, i) => `fragment D${i} on Query { a: b { ...D${i + 1} } c: b { ...D${i + 1} } }`).join(' ');
    const document = `{ ...D0 } ${doubling} fragment D40 on Query { b }`;
    assert.equal(deeper(document, 82), false);
    assert.equal(deeper(document, 81), true);
  });

  it('enters each fragment once, however many fragments reach it: a chain of diamonds does not double the work at each', () => {
    // D0 spreads L0 and R0, each spreading D1, and so on: 2^20 routes to D20, through fragments of distinct names.
    const diamonds = Array.from(
      { length: 20 },
      (_, i) => `fragment D${i} on Query { ...L${i} ...R${i} } fragment L${i} on Query { ...D${i + 1} } fragment R${i} on Query { ...D${i + 1} }`,
    ).join(' ');
    const document = parse(`{ ...D0 } ${diamonds} fragment D20 on Query { b }`);
    // Each fragment's selections read once by the walk over the definitions, and once by the walk entering it.
    let reads = 0;
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
      const { selectionSet } = definition;
      Object.defineProperty(definition, 'selectionSet', {
        get: () => {
          reads += 1;
          return selectionSet;
        },
      });
    }
    assert.equal(nestingProblem(document, MAX_NESTING), undefined);
    assert.ok(reads <= 2 * 61, `each of the 61 fragments entered once (${reads} reads of their selections)`);
  });

  it('counts the wrappers of a variable’s type', () => {
    assert.equal(deeper(`query($v: ${'['.repeat(MAX_NESTING)}ID${']'.repeat(MAX_NESTING)}) { b }`), false);
    assert.equal(deeper(`query($v: ${'['.repeat(MAX_NESTING)}ID!${']'.repeat(MAX_NESTING)}) { b }`), true);
  });
});
