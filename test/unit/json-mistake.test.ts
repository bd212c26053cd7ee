import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsonMistake, jsonValuePlace } from '../../src/support/json-text.ts';

const jsonMistakeOffset = (text: string) => jsonMistake(text)?.at;
import { Random } from '../helpers/random.ts';

/** The offset V8's message names, when it names one. */
function v8Position(text: string): number | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    if (message.includes('Unexpected end of JSON input')) return text.length;
    const position = /at position (\d+)/.exec(message)?.[1];
    return position === undefined ? -1 : Number(position);
  }
}

const SAMPLE = JSON.stringify(
  { format: 'contextio-emulator', version: 1, n: [-0.5e+3, 0, 12.25E-2, true, false, null], s: 'a\\"\n\u00e9\u0001 😀', o: {}, l: [[], [{}]] },
  null,
  2,
);
// What a hand edit may put in, or leave out.
const PIECES = ['', ',', ':', '"', '\\', '{', '}', '[', ']', 't', 'True', 'nul', 'NaN', '-', '0', '01', '.', 'e', '// c', '\n', '\u0001', '\\u12', 'x'];

describe('jsonMistake', () => {
  test('finds no mistake in JSON, nested deep included', () => {
    for (const text of [SAMPLE, ' 1 ', '"x"', '[]', '{}', '-0', '1e5', '[[[[]]]]', '['.repeat(100_000) + ']'.repeat(100_000)]) {
      assert.equal(jsonMistakeOffset(text), undefined, JSON.stringify(text.slice(0, 40)));
    }
  });

  test('names the offset V8 names for every mistake it names one for, and one wherever V8 names none', () => {
    const random = new Random(20261207);
    let located = 0;
    for (let round = 0; round < 5_000; round++) {
      const at = random.int(SAMPLE.length + 1);
      const cut = random.int(3);
      const text = SAMPLE.slice(0, at) + random.pick(PIECES) + SAMPLE.slice(at + cut);
      const v8 = v8Position(text);
      const ours = jsonMistakeOffset(text);
      if (v8 === undefined) {
        assert.equal(ours, undefined, `JSON.parse took ${JSON.stringify(text)}`);
      } else if (v8 === -1) {
        assert.ok(ours !== undefined && ours <= text.length, `a place for ${JSON.stringify(text)}`);
        located += 1;
      } else {
        assert.equal(ours, v8, `V8's position for ${JSON.stringify(text)}`);
      }
    }
    assert.ok(located > 0, 'some mistakes were of those V8 names no position for');
  });

  test('with repeatedNames, a name an object already has, as JSON.parse reads it, at its opening quote; the same name in another object is none', () => {
    assert.deepEqual(jsonMistake('{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}', { repeatedNames: true }), undefined);
    assert.deepEqual(jsonMistake('{"a": 1, "b": 2, "a": 3}', { repeatedNames: true }), { at: 17, repeatedName: true });
    assert.deepEqual(jsonMistake('[{"x": {}}, {"x": 1, "\\u0078": 2}]', { repeatedNames: true }), { at: 21, repeatedName: true });
    assert.deepEqual(jsonMistake('{"a": 1, "a": 2}'), undefined, 'not looked for unless asked');
  });
});

describe('jsonValuePlace', () => {
  /** Every path to a value in `value`, itself first. */
  function pathsIn(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
    if (value === null || typeof value !== 'object') return [path];
    const steps: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((item, i) => [i, item]) : Object.entries(value);
    return [path, ...steps.flatMap(([step, item]) => pathsIn(item, [...path, step]))];
  }
  const valueAt = (value: unknown, path: ReadonlyArray<string | number>): unknown =>
    path.reduce((at, step) => (at as Record<string | number, unknown>)[step], value);

  test('finds where every value of a text starts, compact or indented, names escaped included', () => {
    const value = JSON.parse(SAMPLE) as Record<string, unknown>;
    Object.assign(value, { 'qu"ote\\': [{ 'a.b': [1, [2, { c: 'x' }]] }], '\u0078': 'named by an escape' });
    for (const indent of [0, 2]) {
      const text = JSON.stringify(value, null, indent);
      for (const path of pathsIn(value)) {
        const at = jsonValuePlace(text, path);
        assert.ok(at !== undefined, `found ${JSON.stringify(path)}`);
        const expected = JSON.stringify(valueAt(value, path), null, indent).split('\n')[0]!;
        assert.equal(text.slice(at, at + expected.length), expected, `${JSON.stringify(path)} (indent ${indent})`);
      }
    }
    // Named by an escape in the text, by the name JSON.parse reads.
    assert.equal(jsonValuePlace('{"\\u0078": 5}', ['x']), 11);
  });

  test('a path the text does not hold all of gives the deepest value on the way to it', () => {
    const text = '{"accounts": [{"id": "a"}, {"id": "b", "sources": []}], "after": {"id": 1}}';
    assert.equal(jsonValuePlace(text, ['accounts', 1, 'first_name']), text.indexOf('{"id": "b"'));
    assert.equal(jsonValuePlace(text, ['accounts', 1, 'sources', 0, 'port']), text.indexOf('[]'));
    assert.equal(jsonValuePlace(text, ['accounts', 5]), text.indexOf('[{'));
    // A scalar on the way: the value itself.
    assert.equal(jsonValuePlace(text, ['accounts', 0, 'id', 'x']), text.indexOf('"a"'));
    assert.equal(jsonValuePlace(text, ['tokens', 0]), 0, 'the text\'s top value');
  });
});
