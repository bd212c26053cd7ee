import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corsGrant } from '../../src/auth/cors.ts';

describe('corsGrant', () => {
  it('without CORS_ORIGINS grants nothing and adds no Vary: Origin, since no origin changes the answer', () => {
    assert.deepEqual(corsGrant('https://app.example.com', new Set()), []);
    assert.deepEqual(corsGrant(undefined, new Set()), []);
  });

  it('with origins listed, varies by Origin for a refused or absent one, and grants a listed one', () => {
    const allowed = new Set(['https://app.example.com']);
    assert.deepEqual(corsGrant('https://evil.example.com', allowed), [['vary', 'Origin']]);
    assert.deepEqual(corsGrant(undefined, allowed), [['vary', 'Origin']]);
    assert.deepEqual(corsGrant('https://app.example.com', allowed).slice(0, 2), [
      ['vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example.com'],
    ]);
  });
});
