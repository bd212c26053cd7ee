import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError } from 'graphql';
import { connectTokenForm, email, nameForm } from '../../src/resolvers/inputs.ts';
import { refuseUnsendableId } from '../../src/upstream/request.ts';

/**
 * Invisible characters that are not Unicode format characters (\p{Cf}) but default-ignorable ones: Hangul
 * fillers, the combining grapheme joiner, Khmer's inherent vowels, Mongolian and other variation selectors,
 * tags. Rendered as nothing, they pass for an id, token, URL or address that is not the one sent.
 */
const INVISIBLE = ['\u115f', '\u1160', '\u3164', '\uffa0', '\u034f', '\u17b4', '\u17b5', '\u180b', '\u180f', '\ufe00', '\ufe0f', '\u{e0100}', '\u{e01ef}', '\u{e0000}', '\u{e0041}', '\u{e0fff}'];
/**
 * Format characters (\p{Cf}) that are not default-ignorable: the interlinear annotation marks (U+FFF9–U+FFFB,
 * which no font draws), the prepended concatenation marks of Arabic, Syriac and Kaithi, Egyptian's format controls.
 */
const FORMAT = ['\ufff9', '\ufffa', '\ufffb', '\u0600', '\u06dd', '\u070f', '\u{110bd}', '\u{13430}'];
const shown = (character: string) => `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

function refusal(run: () => unknown): { code: unknown; message: string; field: unknown } {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GraphQLError, String(error));
    return { code: error.extensions['code'], message: error.message, field: error.extensions['field'] };
  }
  assert.fail('accepted');
}

describe('invisible characters in ids, tokens, URLs and email addresses', () => {
  for (const character of [...INVISIBLE, ...FORMAT]) {
    it(`refuses ${shown(character)} with the codes and messages of the other invisible characters`, () => {
      assert.deepEqual(refusal(() => refuseUnsendableId(`abcdef${character}0123456789`)), {
        code: 'BAD_USER_INPUT',
        message: 'An id or token cannot contain a space, a line break, a control or an invisible character: none does (copied with one around it?)',
        field: undefined,
      });
      assert.deepEqual(refusal(() => email(`ada${character}@example.com`, 'filter.email')), { code: 'BAD_USER_INPUT', message: 'filter.email must be an email address with no spaces, control or invisible characters (copied with one around it?)', field: 'filter.email' });
      assert.deepEqual(refusal(() => email(`ada@exa${character}mple.com`, 'filter.email')), { code: 'BAD_USER_INPUT', message: 'filter.email must be an email address with no spaces, control or invisible characters (copied with one around it?)', field: 'filter.email' });
      assert.deepEqual(refusal(() => connectTokenForm({ callbackUrl: 'https://app.example.com/cb', email: `@gmail.com${character}` })), {
        code: 'BAD_USER_INPUT',
        message: 'input.email must be an email address with no spaces, control or invisible characters (copied with one around it?)',
        field: 'input.email',
      });
      assert.deepEqual(refusal(() => connectTokenForm({ callbackUrl: `https://app.example.com/c${character}b` })), {
        code: 'BAD_USER_INPUT',
        message: "input.callbackUrl must be an absolute URL (http(s), or an app's own scheme), with no spaces, control or invisible characters (percent-encode them)",
        field: 'input.callbackUrl',
      });
      assert.deepEqual(refusal(() => connectTokenForm({ callbackUrl: 'https://app.example.com/cb', sourceCallbackUrl: `https://app${character}.example.com/synced` })), {
        code: 'BAD_USER_INPUT',
        message: 'input.sourceCallbackUrl must be an absolute http(s) URL, with no spaces, control or invisible characters (percent-encode them)',
        field: 'input.sourceCallbackUrl',
      });
    });
  }

  it('keeps them in names, where joiners and variation selectors are how some are written', () => {
    for (const character of INVISIBLE) {
      const name = `Ada${character}`;
      assert.deepEqual(nameForm({ firstName: name, lastName: `${character}Lovelace` }), { first_name: name, last_name: `${character}Lovelace` });
    }
  });

  it('takes visible non-ASCII text as before, in URLs, addresses and ids', () => {
    assert.equal(connectTokenForm({ callbackUrl: 'https://bücher.example/ü?q=é' }).callback_url, 'https://xn--bcher-kva.example/%C3%BC?q=%C3%A9');
    assert.equal(email('zoë@bücher.example', 'input.email'), 'zoë@bücher.example');
    refuseUnsendableId('52daabefcea6f9c35a4a0997');
  });
});
