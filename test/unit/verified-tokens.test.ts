import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Identity } from '../../src/auth/access.ts';
import { VerifiedTokens } from '../../src/auth/verified-tokens.ts';
import { createAuthenticator } from '../../src/auth/verify.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { withClockAhead, withWallClockAhead } from '../helpers/clock.ts';
import { hsToken, SECRET, startJwksServer } from '../auth/helpers.ts';

const identity = (subject: string): Identity => ({ kind: 'scoped', issuer: undefined, subject, accounts: new Set(['a']), tokenDigest: undefined, caller: subject });

/** A cache on a clock the test moves. */
const onClock = (limits: Partial<{ capacity: number; maxChars: number; maxAgeMs: number }> = {}) => {
  const clock = { now: 1_000_000 };
  const tokens = new VerifiedTokens({ capacity: 100, maxChars: 10_000, maxAgeMs: 60_000, ...limits }, () => clock.now, () => clock.now);
  return { clock, tokens };
};

describe('VerifiedTokens', () => {
  it('remembers a token until it expires, and no longer', () => {
    const { clock, tokens } = onClock();
    const who = identity('u1');
    tokens.set('t1', who, clock.now + 10_000, false);
    assert.equal(tokens.get('t1', undefined), who);
    assert.equal(tokens.get('t2', undefined), undefined);
    clock.now += 9_999;
    assert.equal(tokens.get('t1', undefined), who);
    clock.now += 1;
    assert.equal(tokens.get('t1', undefined), undefined);
    assert.equal(tokens.size, 0, 'forgotten once found expired');
  });

  it('verifies a token again after maxAgeMs however far off its expiry, and keeps none already expired', () => {
    const { clock, tokens } = onClock({ maxAgeMs: 5_000 });
    tokens.set('t1', identity('u1'), clock.now + 3_600_000, false);
    clock.now += 5_000;
    assert.equal(tokens.get('t1', undefined), undefined);
    tokens.set('old', identity('u2'), clock.now, false);
    assert.equal(tokens.size, 0);
  });

  it('verifies a token again after maxAgeMs by the monotonic clock, whatever the wall clock reads', () => {
    const clocks = { wall: 1_000_000, monotonic: 5_000 };
    const tokens = new VerifiedTokens({ capacity: 100, maxChars: 10_000, maxAgeMs: 60_000 }, () => clocks.wall, () => clocks.monotonic);
    tokens.set('t1', identity('u1'), clocks.wall + 3_600_000, false);
    clocks.wall -= 86_400_000;
    clocks.monotonic += 60_000;
    assert.equal(tokens.get('t1', undefined), undefined, 'a minute on by the monotonic clock, though the wall clock went back a day');
  });

  it('drops a token verified with a key set once the set has been fetched again (a key may have been withdrawn)', () => {
    const { clock, tokens } = onClock();
    tokens.set('rs', identity('u1'), clock.now + 10_000, true, 1);
    tokens.set('hs', identity('u2'), clock.now + 10_000, false, 1);
    assert.ok(tokens.get('rs', 1), 'a token verified with the key set is kept while the set is the same');
    assert.equal(tokens.get('rs', 2), undefined);
    assert.ok(tokens.get('hs', 2), 'the shared secret does not change with the key set');
  });

  it('keeps at most `capacity` tokens and `maxChars` characters of them, letting the oldest go first', () => {
    const { clock, tokens } = onClock({ capacity: 3, maxChars: 10 });
    const until = clock.now + 10_000;
    for (const token of ['a', 'b', 'c', 'd']) tokens.set(token, identity(token), until, false);
    assert.deepEqual(['a', 'b', 'c', 'd'].map((t) => tokens.get(t, undefined) !== undefined), [false, true, true, true]);
    tokens.set('eeeeeeeee', identity('e'), until, false); // 9 characters: only 'd' (1) may stay beside it
    assert.deepEqual(['b', 'c', 'd', 'eeeeeeeee'].map((t) => tokens.get(t, undefined) !== undefined), [false, false, true, true]);
    tokens.set('x'.repeat(11), identity('x'), until, false);
    assert.equal(tokens.get('x'.repeat(11), undefined), undefined, 'a token longer than all the room is not kept');
    assert.ok(tokens.get('d', undefined), 'nor does it push the others out');
    tokens.set('d', identity('d2'), until, false);
    assert.equal(tokens.size, 2, 'a token kept again replaces its entry');
  });

  it('keeps a token of exactly `maxChars` characters, alone', () => {
    const { clock, tokens } = onClock({ maxChars: 10 });
    const until = clock.now + 10_000;
    tokens.set('a', identity('a'), until, false);
    tokens.set('x'.repeat(10), identity('x'), until, false);
    assert.ok(tokens.get('x'.repeat(10), undefined), 'all the room is room for it');
    assert.equal(tokens.get('a', undefined), undefined, 'the others let go for it');
  });

  it('counts a token kept again once: two requests that verified it at once leave room for as many characters as before', () => {
    const { clock, tokens } = onClock({ maxChars: 10 });
    const until = clock.now + 10_000;
    tokens.set('aaaaa', identity('a'), until, false);
    tokens.set('aaaaa', identity('a'), until, false);
    tokens.set('bbbbb', identity('b'), until, false);
    assert.ok(tokens.get('aaaaa', undefined), 'its 5 characters and the other token’s 5 fit in 10');
    assert.ok(tokens.get('bbbbb', undefined), 'the other token is kept too');
  });
});

describe('the authenticator', () => {
  it('verifies a token once and answers it again from memory, a token that fails each time', async () => {
    const { authenticate } = createAuthenticator({ jwtSecret: SECRET }, silentLogger);
    const token = await hsToken({ sub: 'user-1', accounts: ['a'] });
    const first = await authenticate(`Bearer ${token}`, 'r1');
    assert.equal(await authenticate(`Bearer ${token}`, 'r2'), first, 'the same identity, not one verified again');
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    for (const requestId of ['r3', 'r4']) await assert.rejects(authenticate(`Bearer ${forged}`, requestId), /signature/);
  });

  it('answers a token past its exp but within the clock tolerance from memory too, as long as it is accepted', async () => {
    const { authenticate } = createAuthenticator({ jwtSecret: SECRET }, silentLogger);
    const token = await hsToken({ sub: 'user-1', accounts: ['a'], exp: Math.floor(Date.now() / 1000) - 5 });
    const first = await authenticate(`Bearer ${token}`, 'r1');
    assert.equal(await authenticate(`Bearer ${token}`, 'r2'), first, 'the same identity, not one verified again');
  });

  /** An RS256 key pair, its public JWK named `kid`; `sign` makes a token of it (its own `jti`, so no two alike). */
  const rsaKey = async (kid: string) => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    const sign = (jti: string) => new SignJWT({ sub: 'user-1', accounts: ['a'], jti }).setProtectedHeader({ alg: 'RS256', kid }).setExpirationTime('1h').sign(privateKey as CryptoKey);
    return { jwk, sign };
  };

  it('forgets a token verified with a key set once those keys are too old to be trusted without fetching the set again', async () => {
    const [kept, next] = await Promise.all([rsaKey('kept'), rsaKey('next')]);
    const jwks = await startJwksServer([kept.jwk]);
    try {
      const { authenticate } = createAuthenticator({ jwksUrl: jwks.url }, silentLogger);
      await authenticate(`Bearer ${await kept.sign('first')}`, 'r1');
      // Nine minutes on, the keys fetched then are still fresh (10 min): a new token is verified with them, no fetch.
      const token = await withClockAhead(9 * 60_000, async () => {
        const late = await kept.sign('late');
        await authenticate(`Bearer ${late}`, 'r2');
        return late;
      }, { wallClock: true });
      assert.equal(jwks.fetches, 1);
      // The identity provider withdraws the key. Twelve minutes after the fetch the keys are stale: the set is
      // fetched again before any token is trusted, and the withdrawn key's tokens are refused.
      jwks.setKeys([next.jwk]);
      await withClockAhead(12 * 60_000, async () => {
        await assert.rejects(authenticate(`Bearer ${token}`, 'r3'), /No key of the configured key set verifies the token/);
        assert.equal(jwks.fetches, 2);
      }, { wallClock: true });
    } finally {
      await jwks.close();
    }
  });

  it('forgets a token verified with a key set once those keys are too old, by the monotonic clock: a wall clock set back a day keeps neither the token nor the keys', async () => {
    const [kept, next] = await Promise.all([rsaKey('kept'), rsaKey('next')]);
    const jwks = await startJwksServer([kept.jwk]);
    try {
      const { authenticate } = createAuthenticator({ jwksUrl: jwks.url }, silentLogger);
      const token = await kept.sign('first');
      // Twice: the first fetched the set, and a token is remembered for the fetch its verification began with.
      for (const requestId of ['r1', 'r2']) await authenticate(`Bearer ${token}`, requestId);
      assert.equal(jwks.fetches, 1);
      // The identity provider withdraws the key; 12 minutes on, the wall clock has been set back a day (NTP
      // correcting a clock that ran ahead): by it, the token was verified a day from now.
      jwks.setKeys([next.jwk]);
      await withWallClockAhead(-24 * 60 * 60_000, () =>
        withClockAhead(12 * 60_000, async () => {
          await assert.rejects(authenticate(`Bearer ${token}`, 'r3'), /No key of the configured key set verifies the token/);
          assert.equal(jwks.fetches, 2);
        }),
      );
    } finally {
      await jwks.close();
    }
  });

  it('forgets an ES256 token as an RS256 one once the key set has been fetched again without its key', async () => {
    const ecKey = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
      const sign = () => new SignJWT({ sub: 'user-1', accounts: ['a'] }).setProtectedHeader({ alg: 'ES256', kid }).setExpirationTime('1h').sign(privateKey as CryptoKey);
      return { jwk, sign };
    };
    const [withdrawn, next] = await Promise.all([ecKey('withdrawn'), ecKey('next')]);
    const jwks = await startJwksServer([withdrawn.jwk]);
    try {
      const { authenticate } = createAuthenticator({ jwksUrl: jwks.url, jwksCooldownMs: 0 }, silentLogger);
      const token = await withdrawn.sign();
      await authenticate(`Bearer ${token}`, 'r1');
      // The identity provider withdraws the key; a token of the next one makes the gateway fetch the set again.
      jwks.setKeys([next.jwk]);
      await authenticate(`Bearer ${await next.sign()}`, 'r2');
      assert.equal(jwks.fetches, 2);
      await assert.rejects(authenticate(`Bearer ${token}`, 'r3'), /No key of the configured key set verifies the token/);
    } finally {
      await jwks.close();
    }
  });

  it('does not remember a token as verified by a key set fetched again while its signature was being checked', async (t) => {
    const [withdrawn, next] = await Promise.all([rsaKey('withdrawn'), rsaKey('next')]);
    const jwks = await startJwksServer([withdrawn.jwk]);
    try {
      // No cooldown: a token naming a key the set lacks makes it fetch the set again at once.
      const { authenticate } = createAuthenticator({ jwksUrl: jwks.url, jwksCooldownMs: 0 }, silentLogger);
      await authenticate(`Bearer ${await withdrawn.sign('first')}`, 'r1');
      // The signature check of the next token is held until the set has been fetched again.
      const verify = crypto.subtle.verify.bind(crypto.subtle);
      let checking!: () => void;
      const checkBegun = new Promise<void>((resolve) => (checking = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = false;
      t.mock.method(crypto.subtle, 'verify', async (...args: Parameters<typeof verify>) => {
        if (!held) {
          held = true;
          checking();
          await released;
        }
        return verify(...args);
      });
      const token = await withdrawn.sign('checked');
      const verified = authenticate(`Bearer ${token}`, 'r2');
      await checkBegun;
      // Meanwhile the identity provider withdraws its key, and a token of the next makes the gateway fetch the
      // set again (a millisecond on, so that the fetch is told from the first by its time).
      jwks.setKeys([next.jwk]);
      await delay(2);
      await authenticate(`Bearer ${await next.sign('rotated')}`, 'r3');
      assert.equal(jwks.fetches, 2);
      release();
      // Its key was in the set when its check began: accepted, this once.
      await verified;
      // Sent again, it is verified against the set the gateway now has, which lacks its key.
      await assert.rejects(authenticate(`Bearer ${token}`, 'r4'), /No key of the configured key set verifies the token/);
    } finally {
      await jwks.close();
    }
  });
});
