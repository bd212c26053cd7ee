import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onOneLine, quotedSetting, shortened } from '../../src/support/shortened.ts';

describe('shortened', () => {
  it('keeps a value up to the limit as it is', () => {
    assert.equal(shortened('', 3), '');
    assert.equal(shortened('abc', 3), 'abc');
  });

  it('cuts a longer value to the limit and says so with an ellipsis', () => {
    assert.equal(shortened('abcd', 3), 'abc…');
    assert.equal(shortened('x'.repeat(5_000), 100), `${'x'.repeat(100)}…`);
  });

  it('never leaves half a surrogate pair', () => {
    // '😀' is two UTF-16 code units: a cut after its first would leave a lone high surrogate.
    assert.equal(shortened('ab😀cd', 3), 'ab…');
    assert.equal(shortened('ab😀cd', 4), 'ab😀…');
    assert.equal(JSON.stringify(shortened('😀'.repeat(150), 201)).includes('\\u'), false);
    // Every high surrogate, the last (U+DBFF, of U+10FC00 to U+10FFFF) as the first (U+D800, of U+10000 to U+103FF).
    assert.equal(shortened('a\u{10FFFF}b', 2), 'a…');
    assert.equal(shortened('a\u{10000}b', 2), 'a…');
  });
});

describe('quotedSetting', () => {
  it('escapes the paragraph separator as it does the line separator: a problem stays one line', () => {
    // U+2029 ends a line wherever U+2028 does (a terminal, an editor, a log viewer); JSON.stringify escapes neither.
    assert.doesNotMatch(quotedSetting('https://a.example\u2029LOG_LEVEL=debug'), /[\u2028\u2029]/);
  });

  it('quotes a value as JSON reads it back, escapes and all: what was set, not another character', () => {
    for (const value of ['a\u2028b', 'a\u2029b', 'x\n"y\\z']) assert.equal(JSON.parse(quotedSetting(value)), value, JSON.stringify(value));
  });
});

describe('onOneLine and quotedSetting', () => {
  it('escape the directional overrides and isolates: shown, they would display the rest of the line reordered', () => {
    const path = '/srv/data\u202egnp.\u2066x\u2069';
    assert.equal(onOneLine(path), '/srv/data\\u202egnp.\\u2066x\\u2069');
    assert.equal(quotedSetting(path), '"/srv/data\\u202egnp.\\u2066x\\u2069"');
    assert.equal(JSON.parse(quotedSetting(path)), path);
  });
});
