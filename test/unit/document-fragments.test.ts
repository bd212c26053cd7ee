import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, print } from 'graphql';
import { fragmentsByName } from '../../src/graphql/document-fragments.ts';

// The limits and the mutation precheck read fragments through this before validation refuses what it refuses:
// they must see the fragments execution would, and nothing else.
describe('fragmentsByName', () => {
  it('keeps the last of two fragments of one name, as execution finds them', () => {
    const fragments = fragmentsByName(parse('{ ...F } fragment F on Query { a } fragment F on Query { b }'));
    assert.deepEqual(Object.keys(fragments), ['F']);
    assert.equal(print(fragments['F']!), 'fragment F on Query {\n  b\n}');
  });

  it('holds a fragment named like an object’s own property as itself, and no fragment the document does not define', () => {
    const fragments = fragmentsByName(parse('{ ...__proto__ } fragment __proto__ on Query { a } fragment constructor on Query { b }'));
    assert.deepEqual(Object.keys(fragments).sort(), ['__proto__', 'constructor']);
    assert.equal(print(fragments['__proto__']!), 'fragment __proto__ on Query {\n  a\n}');
    const none = fragmentsByName(parse('{ ...constructor ...toString }'));
    assert.equal(none['constructor'], undefined);
    assert.equal(none['toString'], undefined);
  });
});
