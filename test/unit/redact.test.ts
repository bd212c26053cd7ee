import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentEncode } from '../../src/oauth/signature.ts';
import { redactedErrorBody } from '../../src/upstream/redact.ts';

const info = { status: 400, method: 'GET', path: '/connect_tokens/tok3n0001' };
const secret = 'Qx7*Lm~Zp/9+Rt5s';
const signature = 'RVeozpJhCGnlOO0HR9k8Nyij1+E=';
const authorization = `OAuth oauth_consumer_key="k", oauth_signature="${encodeURIComponent(signature)}"`;
const WITHHELD = '(not shown: it quotes the gateway’s credentials)';
const shown = (body: string) => redactedErrorBody(body, secret, authorization, info);

describe('the logged excerpt of an upstream error body', () => {
  const encodings: Array<[string, string]> = [
    ['as is', secret],
    ['JSON-escaped, / as \\/', JSON.stringify(secret).replaceAll('/', '\\/')],
    ['every character \\u-escaped, in text that is not JSON', [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
    ['form-urlencoded', new URLSearchParams({ s: secret }).toString()],
    ['percent-encoded in lower case', encodeURIComponent(secret).replace(/%../g, (x) => x.toLowerCase())],
    ['percent-encoded twice', encodeURIComponent(encodeURIComponent(secret))],
    ['as HTML character references', [...secret].map((c) => `&#${c.charCodeAt(0)};`).join('')],
    ['as hexadecimal HTML character references', [...secret].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join('')],
    ['in base64, inside a signing key', Buffer.from(`consumer-key&${secret}`).toString('base64')],
    ['in base64url', Buffer.from(`x${secret}`).toString('base64url')],
    ['in hex', Buffer.from(secret).toString('hex')],
    ['8 of its characters in hex, from its second', Buffer.from(secret.slice(1, 9)).toString('hex')],
    ['in hex with colons', Buffer.from(secret).toString('hex').replace(/(..)(?!$)/g, '$1:')],
    ['every character \\u{…}-escaped', [...secret].map((c) => `\\u{${c.charCodeAt(0).toString(16)}}`).join('')],
    ['as \\x escapes', [...secret].map((c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')],
    ['as the signing key the gateway builds, in base64', Buffer.from(`${percentEncode(secret)}&`).toString('base64')],
    ['in base64 from its fourth character on', Buffer.from(secret.slice(3)).toString('base64')],
    ['in base64 wrapped over two lines', Buffer.from(`key=${secret}`).toString('base64').replace(/^(.{10})/, '$1\n')],
    ['8 of its characters in base64, after a byte', Buffer.from(`k${secret.slice(4, 12)}`).toString('base64')],
    ['8 of its characters in base64, after two bytes', Buffer.from(`k=${secret.slice(2, 10)}`).toString('base64')],
    ['as a list of bytes', [...Buffer.from(secret)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')],
    ['in upper case', secret.toUpperCase()],
    ['in groups of four characters', secret.replace(/(.{4})(?!$)/g, '$1 ')],
    ['less its last character', secret.slice(0, -1)],
    // A body in UTF-16 (a charset some servers write their error pages in), read as the UTF-8 it is taken for.
    ['in UTF-16, little-endian', Buffer.from(secret, 'utf16le').toString('utf8')],
    ['in UTF-16, big-endian', Buffer.from(secret, 'utf16le').swap16().toString('utf8')],
    ['in UTF-16, JSON-escaped', JSON.stringify(Buffer.from(secret, 'utf16le').toString('utf8'))],
    // Three layers of escapes, the most undone, in UTF-16: its NULs take none of the three rounds.
    [
      'in UTF-16, \\u-escaped, then percent-encoded twice',
      Buffer.from(encodeURIComponent(encodeURIComponent([...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''))), 'utf16le').toString('utf8'),
    ],
  ];
  for (const [name, form] of encodings) {
    it(`is not shown when it quotes the secret ${name}`, () => {
      assert.equal(shown(`{"type":"error","value":"bad key: ${form}" trailing`), WITHHELD);
    });
  }

  for (const [name, form] of [
    ['as sent (percent-encoded)', encodeURIComponent(signature)],
    ['with HTML entities', signature.replace(/[+/=]/g, (c) => `&#${c.charCodeAt(0)};`)],
    ['in the whole header, base64', Buffer.from(authorization).toString('base64')],
    ['decoded, in hex', Buffer.from(signature).toString('hex')],
    ['in a UTF-16 body', Buffer.from(`oauth signature ${signature}`, 'utf16le').toString('utf8')],
  ] as const) {
    it(`is not shown when it quotes the request's signature ${name}`, () => {
      assert.equal(shown(`<p>${form}</p>`), WITHHELD);
    });
  }

  it('is shown otherwise, cut to 500 characters, with the connect token and any labelled signature cut out', () => {
    const body = `{"type":"error","value":"connect_token tok3n0001 is invalid","oauth_signature":"c2lnbmF0dXJl\\u002bx\\/y="}${' '.repeat(600)}`;
    const excerpt = shown(body);
    assert.equal(excerpt.length, 500);
    assert.match(excerpt, /^\{"type":"error","value":"connect_token \[token\] is invalid","oauth_signature":"\[redacted\]"\}/);
  });

  it('is not shown when it quotes, in base64, a header whose signature has a + or / early on', () => {
    const early = 'R+eo/pJhCGnlOO0HR9k8Nyij1xE=';
    const header = `OAuth oauth_consumer_key="k", oauth_signature="${encodeURIComponent(early)}"`;
    assert.equal(redactedErrorBody(`{"got":"${Buffer.from(header).toString('base64')}"}`, secret, header, info), WITHHELD);
    // Or the digest behind it, in hex.
    assert.equal(redactedErrorBody(`got ${Buffer.from(early, 'base64').toString('hex')}`, secret, header, info), WITHHELD);
    // With one escape before its end, the digest of the header's value read as sent would be out of line by half a byte.
    const oneEscape = 'RVe+zpJhCGnlOO0HR9k8Nyij1xE=';
    const headerOfOne = `OAuth oauth_consumer_key="k", oauth_signature="${encodeURIComponent(oneEscape)}"`;
    assert.equal(redactedErrorBody(`got ${Buffer.from(oneEscape, 'base64').toString('hex')}`, secret, headerOfOne, info), WITHHELD);
  });

  it('is not shown when it quotes, as HTML named references, a secret with a + / = or & in every run of 8 characters', () => {
    const escaped = 'k+e/y=s&a+l/t=s';
    const html = escaped.replace(/[+/=&]/g, (c) => ({ '+': '&plus;', '/': '&sol;', '=': '&equals;', '&': '&amp;' })[c]!);
    assert.equal(redactedErrorBody(`<p>bad key ${html}</p>`, escaped, authorization, info), WITHHELD);
  });

  it('is not shown when it quotes in base64url a secret whose base64 has a + or / in every 8 characters', () => {
    const dense = 'k~?p>?~>?u~?';
    assert.equal(redactedErrorBody(`bad key ${Buffer.from(`x${dense}`).toString('base64url')}`, dense, authorization, info), WITHHELD);
  });

  it('is not shown when it quotes, JSON-escaped, a secret with a quote in every run of 8 characters', () => {
    const quoted = 'ab"cdefg"hijklm"nopq';
    assert.equal(redactedErrorBody(`{"value":${JSON.stringify(quoted)}}`, quoted, authorization, info), WITHHELD);
  });

  it('is not shown when it quotes a secret of 8 characters in another case, or a shorter one as it is or in hex', () => {
    assert.equal(redactedErrorBody('bad key ABCDEFGH', 'abcdefgh', authorization, info), WITHHELD);
    assert.equal(redactedErrorBody('bad key hunter2', 'hunter2', authorization, info), WITHHELD);
    assert.equal(redactedErrorBody(`bad key ${Buffer.from('hunter2').toString('hex')}`, 'hunter2', authorization, info), WITHHELD);
  });

  it('cuts out a connect token the path names percent-encoded, quoted as itself', () => {
    const encodedPath = { ...info, path: '/connect_tokens/tok%3Aen%40x1' };
    assert.equal(redactedErrorBody('connect_token tok:en@x1 is invalid', secret, authorization, encodedPath), 'connect_token [token] is invalid');
  });

  it('is not shown when it quotes the connect token its path names otherwise than as itself: in another case, escaped, encoded or cut short', () => {
    const token = 'f3a9c1d27be84e6a9d05c4b1e2f7a8c3';
    const tokenPath = { ...info, path: `/connect_tokens/${token}` };
    const quotes: Array<[string, string]> = [
      ['in upper case', token.toUpperCase()],
      ['\\u-escaped', [...token].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
      ['every character percent-encoded', [...token].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')],
      ['as HTML character references', [...token].map((c) => `&#${c.charCodeAt(0)};`).join('')],
      ['in base64', Buffer.from(token).toString('base64')],
      ['in groups of four', token.replace(/(.{4})(?!$)/g, '$1 ')],
      ['cut short', `${token.slice(0, 20)}…`],
    ];
    for (const [how, quoted] of quotes) {
      assert.equal(redactedErrorBody(`{"error":"connect_token ${quoted} is invalid"}`, secret, authorization, tokenPath), WITHHELD, how);
    }
  });

  it('shows a body with character references past Unicode’s last code point as it is, rather than failing on them', () => {
    const body = '<p>bad request: &#x110000; &#99999999; \\u{FFFFFF}</p>';
    assert.equal(shown(body), body);
  });

  it('shows the start of a large body, searched as shown', () => {
    assert.equal(shown(`${'y'.repeat(70_000)}${secret}`), 'y'.repeat(500));
    // Searched no further than 256 characters past the cut: a credential quoted beyond is not in what is shown.
    assert.equal(shown(`${'y'.repeat(800)}${secret}`), 'y'.repeat(500));
  });

  it('is cut between characters: an emoji at the cut is left out whole, not half of it shown', () => {
    // 😀 is two UTF-16 code units; its first would be the 500th.
    assert.equal(shown(`${'y'.repeat(499)}😀${'z'.repeat(100)}`), 'y'.repeat(499));
    assert.equal(shown(`${'y'.repeat(498)}😀${'z'.repeat(100)}`), `${'y'.repeat(498)}😀`);
  });

  it('is not shown when a credential straddles the cut, its first characters too few to match on their own', () => {
    assert.equal(shown(`${'y'.repeat(493)}${secret}`), WITHHELD);
    assert.equal(shown(`${'y'.repeat(496)}${encodeURIComponent(signature)}`), WITHHELD);
  });

  it('shows a body in UTF-16 as its text, with the connect token cut out', () => {
    const excerpt = shown(Buffer.from('{"error":"connect_token tok3n0001 is invalid"}', 'utf16le').toString('utf8'));
    assert.equal(excerpt, '{"error":"connect_token [token] is invalid"}');
  });

  it('shows as many characters of a body in UTF-16 as of any, and searches it as far past the cut', () => {
    const utf16 = (text: string) => Buffer.from(text, 'utf16le').toString('utf8');
    // Its NULs take none of the 500 characters shown.
    assert.equal(shown(utf16('y'.repeat(600))), 'y'.repeat(500));
    // A credential straddling the cut: its first 7 characters would be shown, too few to match on their own.
    assert.equal(shown(utf16(`${'y'.repeat(493)}${secret}`)), WITHHELD);
  });
});
