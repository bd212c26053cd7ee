import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { GraphQLError } from 'graphql';
import { CompactEncrypt, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { withClockAhead, withWallClockAhead } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, exchange, listenOnLoopback, startConnectProxy } from '../helpers/net.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createAuthenticator } from '../../src/auth/verify.ts';
import { keySetProblem } from '../../src/auth/key-set-check.ts';
import { createLogger, silentLogger } from '../../src/logging/logger.ts';
import { codes, hsToken, SECRET, startAuthStack, startAuthStackWithKeySet, startJwksServer, type AuthStack, type JwksServer } from './helpers.ts';

const ACCOUNT_QUERY = 'query($id: ID!) { account(id: $id) { id firstName } }';
const now = () => Math.floor(Date.now() / 1000);
const DAY_MS = 24 * 60 * 60_000;

/** Asserts that an operation was refused as a whole: 401, UNAUTHENTICATED, no data, no upstream call. */
function assertRefused(stack: AuthStack, response: Awaited<ReturnType<AuthStack['gql']>>, message?: RegExp): void {
  assert.equal(response.status, 401);
  assert.deepEqual(codes(response), ['UNAUTHENTICATED']);
  assert.equal(response.body.data, undefined);
  assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /);
  if (message) assert.match(response.body.errors![0]!.message, message);
  assert.deepEqual(stack.upstreamCalls(), []);
}

/** An admin token signed with `privateKey`, its header naming `kid` when given. */
const sign = (privateKey: CryptoKey, alg: string, kid?: string, claims: Record<string, unknown> = {}) =>
  new SignJWT({ scope: 'contextio:admin', ...claims })
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey);

/** A gateway verifying tokens against a key set serving `keys` (with these auth settings besides), handed to `use`; both stopped after. */
async function withKeySet(keys: JWK[], use: (stack: AuthStack, jwks: JwksServer) => Promise<void>, auth: { jwksFailureBackoffMs?: number; jwksCooldownMs?: number; jwtSecret?: string } = {}): Promise<void> {
  const jwks = await startJwksServer(keys);
  const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url, ...auth } });
  try {
    await use(stack, jwks);
  } finally {
    await stack.close();
    await jwks.close();
  }
}

/**
 * A key set of one RS256 key, `k`, fetched once (a token of it verifies), then failing `how`, with a 60 s pause
 * after a failed fetch. `signed` makes a token of `k` (or of another kid), each with its own jti: one verified
 * before would be answered from the tokens remembered, never reaching the key set.
 */
async function withKeySetThenFailing(
  how: 'status' | 'broken off',
  use: (stack: AuthStack, jwks: JwksServer, signed: (kid?: string) => Promise<string>) => Promise<void>,
): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  await withKeySet(
    [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }],
    async (stack, jwks) => {
      let issued = 0;
      const signed = (kid = 'k') => sign(privateKey, 'RS256', kid, { jti: String(++issued) });
      assert.equal((await stack.gql('{ __typename }', await signed())).status, 200);
      jwks.setFailing(true, how);
      await use(stack, jwks, signed);
    },
    { jwksFailureBackoffMs: 60_000 },
  );
}

/** Two RS256 key pairs and how the set publishes one under a kid. */
interface RotatingKeys {
  current: KeyPair;
  next: KeyPair;
  jwk: (pair: KeyPair, kid: string) => Promise<JWK>;
}

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * A key set of `rsa-1` alone, fetched once (a token of it verifies), then publishing `rsa-2` beside it, with a 60 s
 * refetch cooldown: `use` sees a key rotated in that the gateway has not fetched yet.
 */
async function withKeyRotatingIn(use: (stack: AuthStack, jwks: JwksServer, keys: RotatingKeys) => Promise<void>): Promise<void> {
  const [current, next] = await Promise.all([1, 2].map(() => generateKeyPair('RS256', { extractable: true })));
  const keys: RotatingKeys = { current: current!, next: next!, jwk: async (pair, kid) => ({ ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' }) };
  await withKeySet(
    [await keys.jwk(keys.current, 'rsa-1')],
    async (stack, jwks) => {
      assert.equal((await stack.gql('{ __typename }', await sign(keys.current.privateKey, 'RS256', 'rsa-1'))).status, 200);
      jwks.setKeys([await keys.jwk(keys.current, 'rsa-1'), await keys.jwk(keys.next, 'rsa-2')]);
      await use(stack, jwks, keys);
    },
    { jwksCooldownMs: 60_000 },
  );
}

/** The public JWK of an RSA key too short for RS256 (1024 bits): jose refuses to verify with it. */
const weakRsaJwk = () => generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;

describe('HS256 tokens (AUTH_JWT_SECRET)', () => {
  let stack: AuthStack;
  let accountId: string;

  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET, issuer: 'https://issuer.test', audience: 'contextio-graphql' } });
    accountId = stack.emulator.store.createAccount({ email: 'ada@example.com', first_name: 'Ada' }).id;
  });
  after(() => stack.close());

  const valid = (claims: Record<string, unknown> = {}) =>
    hsToken({ iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId], ...claims });

  test('a valid token reads its account', async () => {
    const response = await stack.gql(ACCOUNT_QUERY, await valid(), { id: accountId });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { data: { account: { id: accountId, firstName: 'Ada' } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${accountId}`]);
  });

  test('no token at all', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, undefined, { id: accountId }), /Authorization: Bearer/);
  });

  test('no token refuses every field, __typename included', async () => {
    assertRefused(stack, await stack.gql('{ __typename }'));
  });

  test('an Authorization header that is empty, or blanks that HTTP trims away, is no token sent: refused as a request without one', async () => {
    for (const authorization of ['', '   ']) {
      const response = await fetch(stack.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="contextio-graphql"');
      const body = (await response.json()) as { errors: Array<{ message: string }> };
      assert.equal(body.errors[0]!.message, 'Authentication required: send Authorization: Bearer <token>', JSON.stringify(authorization));
    }
  });

  test('the Bearer scheme in any case, as RFC 9110 has auth schemes, and any number of spaces before the token (RFC 6750: 1*SP)', async () => {
    const token = await valid();
    for (const scheme of ['bearer', 'BEARER', 'Bearer ']) {
      const response = await fetch(stack.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `${scheme} ${token}` },
        body: JSON.stringify({ query: ACCOUNT_QUERY, variables: { id: accountId } }),
      });
      assert.equal(response.status, 200, scheme);
      assert.deepEqual(await response.json(), { data: { account: { id: accountId, firstName: 'Ada' } } });
    }
    stack.upstreamCalls();
  });

  test('an Authorization header that is not a bearer token', async () => {
    const response = await fetch(stack.gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(response.status, 401);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    assert.equal(body.errors[0]!.extensions.code, 'UNAUTHENTICATED');
  });

  test('two Authorization headers, even each a valid token: refused, not the first taken (a proxy may add its own)', async () => {
    const [mine, admin] = [await hsToken({ sub: 'nobody' }), await valid()];
    const body = JSON.stringify({ query: '{ __typename }' });
    const received = await exchange(
      stack.gateway.url,
      `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${mine}\r\nauthorization: Bearer ${admin}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    assert.match(received, /^HTTP\/1\.1 401 /);
    assert.match(received, /"code":"UNAUTHENTICATED"/);
    // Each header alone is "Bearer <token>": told it must be, the caller (or the operator of a proxy adding its own) would not see why.
    assert.match(received, /The request sends more than one Authorization header/);
  });

  test('says in its challenge that a token sent is not valid (RFC 6750 error="invalid_token"), and nothing of the kind when none was sent', async () => {
    const challenge = async (authorization: string | undefined) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers['authorization'] = authorization;
      const response = await fetch(stack.gateway.url, { method: 'POST', headers, body: JSON.stringify({ query: '{ __typename }' }) });
      assert.equal(response.status, 401);
      return response.headers.get('www-authenticate');
    };
    const invalid = 'Bearer realm="contextio-graphql", error="invalid_token"';
    assert.equal(await challenge(`Bearer ${await valid({ exp: now() - 120 })}`), invalid, 'expired');
    assert.equal(await challenge(`Bearer ${await hsToken({ scope: 'contextio:admin' }, 'another-secret-of-at-least-32-bytes!!')}`), invalid, 'signed with another secret');
    assert.equal(await challenge('Bearer not.a.jwt'), invalid, 'malformed');
    assert.equal(await challenge('Bearer '), invalid, 'empty');
    const none = 'Bearer realm="contextio-graphql"';
    assert.equal(await challenge(undefined), none, 'no Authorization header');
    assert.equal(await challenge('Basic dXNlcjpwYXNz'), none, 'another scheme');
  });

  test('a validly signed token of more than 8,192 characters is refused before it is verified; one of 8,192 is accepted', async () => {
    /** A valid token of exactly `length` characters, padded by a claim (a JWT's parts are base64url: not every length is one header's). */
    const ofLength = async (length: number) => {
      for (const header of [{ alg: 'HS256' }, { alg: 'HS256', typ: 'JWT' }]) {
        for (let pad = Math.floor((length * 3) / 4) - 300; pad < length; pad++) {
          const token = await new SignJWT({ iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId], exp: now() + 3600, pad: 'x'.repeat(pad) })
            .setProtectedHeader(header)
            .sign(new TextEncoder().encode(SECRET));
          if (token.length === length) return token;
          if (token.length > length) break;
        }
      }
      throw new Error(`no token of ${length} characters`);
    };
    const longest = await stack.gql(ACCOUNT_QUERY, await ofLength(8_192), { id: accountId });
    assert.deepEqual(codes(longest), []);
    stack.upstreamCalls();
    // Said as too long, not as a header of the wrong form: an Azure token with many groups is well formed.
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await ofLength(8_193), { id: accountId }), /^The bearer token is longer than 8192 characters, the most this gateway reads/);
  });

  test('the placeholder "Bearer <token>" sent as it is (the IDE\'s example headers before a token is put in) is said to be the placeholder', async () => {
    const sent = await stack.gql(ACCOUNT_QUERY, '<token>', { id: accountId });
    assertRefused(stack, sent, /^The Authorization header holds the placeholder "Bearer <token>": put a JWT in place of <token>$/);
    assert.match(sent.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('a malformed token', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, 'not.a.jwt', { id: accountId }), /well-formed/);
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, 'garbage', { id: accountId }), /well-formed/);
  });

  test('an expired token, beyond the clock tolerance', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ exp: now() - 120 }), { id: accountId }), /expired/);
  });

  test('a token expired 45 s ago, past the 30 s clock tolerance yet within a wider one', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ exp: now() - 45 }), { id: accountId }), /expired/);
  });

  test('a token expired within the 30 s clock tolerance still works', async () => {
    const response = await stack.gql(ACCOUNT_QUERY, await valid({ exp: now() - 5 }), { id: accountId });
    assert.equal(response.status, 200);
    assert.deepEqual(codes(response), []);
    stack.upstreamCalls();
  });

  test('a token verified before is refused once it has expired: remembering its verification never extends it', async () => {
    const token = await valid({ exp: now() + 60 });
    assert.deepEqual(codes(await stack.gql(ACCOUNT_QUERY, token, { id: accountId })), []);
    stack.upstreamCalls();
    // Past its exp and the 30 s tolerance, on every clock the gateway and jose read.
    await withClockAhead(91_000, async () => assertRefused(stack, await stack.gql(ACCOUNT_QUERY, token, { id: accountId }), /expired/), { wallClock: true });
  });

  test('a token without exp', async () => {
    const token = await new SignJWT({ iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId] })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, token, { id: accountId }), /exp/);
  });

  test('a token not valid yet (nbf in the future)', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ nbf: now() + 600 }), { id: accountId }), /not valid yet/);
  });

  test('a token whose nbf is not a number, said so (not "not valid yet")', async () => {
    const token = await new SignJWT({ iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId], exp: now() + 3600, nbf: 'tomorrow' as unknown as number })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, token, { id: accountId }), /"nbf" claim that is not a number/);
  });

  test('a token whose iat is not a number, said so (not "issued in the future")', async () => {
    const token = await new SignJWT({ iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId], exp: now() + 3600, iat: 'yesterday' as unknown as number })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, token, { id: accountId }), /"iat" claim that is not a number/);
  });

  test('a token signed with another secret', async () => {
    const token = await hsToken(
      { iss: 'https://issuer.test', aud: 'contextio-graphql', accounts: [accountId] },
      'another-secret-that-is-long-enough-for-hs256-xyz',
    );
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, token, { id: accountId }), /signature/);
  });

  test('a token whose payload was changed after signing', async () => {
    const [header, , signature] = (await valid()).split('.');
    const forged = Buffer.from(JSON.stringify({ scope: 'contextio:admin', exp: now() + 3600 })).toString('base64url');
    assertRefused(stack, await stack.gql('{ accounts { nodes { id } } }', `${header}.${forged}.${signature}`), /signature/);
  });

  test('a wrong issuer', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ iss: 'https://evil.test' }), { id: accountId }), /issuer/);
  });

  test('no issuer or no audience at all, when the gateway requires them: the refusal names the missing claim', async () => {
    const withoutIss = await hsToken({ aud: 'contextio-graphql', accounts: [accountId] });
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, withoutIss, { id: accountId }), /no "iss" \(issuer\) claim/);
    const withoutAud = await hsToken({ iss: 'https://issuer.test', accounts: [accountId] });
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, withoutAud, { id: accountId }), /no "aud" \(audience\) claim/);
  });

  test('an issuer or audience differing from the setting only by a trailing slash is refused, the message saying so', async () => {
    // Auth0's issuer ends with a slash and the tenant's domain, as operators copy it, does not; API identifiers are
    // URLs written either way. Told only "an issuer this gateway does not accept", the operator compared two values
    // that looked the same.
    const slash = /differ only by a trailing slash/;
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ iss: 'https://issuer.test/' }), { id: accountId }), /^The token was issued by an issuer this gateway does not accept: its "iss" and AUTH_ISSUER differ only by a trailing slash$/);
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ aud: 'contextio-graphql/' }), { id: accountId }), /^The token is meant for another audience: its "aud" and AUTH_AUDIENCE differ only by a trailing slash$/);
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ aud: ['https://other.test', 'contextio-graphql/'] }), { id: accountId }), slash);
    // Another value is refused as ever, saying nothing of the one expected.
    for (const claims of [{ iss: 'https://issuer.test.evil/' }, { iss: 'https://issuer.tes' }, { aud: 'contextio-graphql//' }, { aud: ['x/'] }, { iss: 7 }]) {
      const response = await stack.gql(ACCOUNT_QUERY, await valid(claims), { id: accountId });
      assertRefused(stack, response, /issuer|audience/);
      assert.doesNotMatch(response.body.errors![0]!.message, slash, JSON.stringify(claims));
    }
  });

  test('a wrong audience', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ aud: 'someone-else' }), { id: accountId }), /audience/);
  });

  test('alg none', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ scope: 'contextio:admin', exp: now() + 3600 })}.`;
    assertRefused(stack, await stack.gql('{ accounts { nodes { id } } }', token), /algorithm/);
  });

  test('a claim of the wrong shape', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ accounts: accountId }), { id: accountId }), /accounts/);
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ scope: ['contextio:admin'] }), { id: accountId }), /scope/);
  });

  test('a claim of the wrong shape refuses an admin token too (docs/auth.md: any claim of another type)', async () => {
    assertRefused(stack, await stack.gql('{ __typename }', await valid({ scope: 'contextio:admin', accounts: accountId })), /accounts/);
    assertRefused(stack, await stack.gql('{ __typename }', await valid({ scope: 'contextio:admin', accounts: [7] })), /accounts/);
  });

  test('an empty string among the accounts is no account id: the claim is of the wrong shape', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, await valid({ accounts: [accountId, ''] }), { id: accountId }), /accounts/);
  });

  /**
   * A valid token whose `sub` is the JSON text `sub`, written and signed by hand, as a provider's JSON would have it:
   * jose would write a number as JavaScript holds it (Infinity as null, 9007199254740993 as …992).
   */
  const withRawSub = (sub: string) => {
    const encode = (text: string) => Buffer.from(text).toString('base64url');
    const header = encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = encode(`{"iss":"https://issuer.test","aud":"contextio-graphql","accounts":[${JSON.stringify(accountId)}],"exp":${now() + 3600},"sub":${sub}}`);
    return `${header}.${payload}.${createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url')}`;
  };

  test('a numeric sub too large for a number (1e400, read as Infinity) has no digits to be taken as: refused, not the subject "Infinity"', async () => {
    assertRefused(stack, await stack.gql(ACCOUNT_QUERY, withRawSub('1e400'), { id: accountId }), /"sub"/);
  });

  test('a numeric sub a number cannot hold exactly (past 2^53, or not whole) is refused: its digits would be read as another user\'s', async () => {
    // 9007199254740993 is read as 9007199254740992, and 12345678901234567891 and …892 as one number: two users
    // would be one caller (one budget, one subject in the log).
    for (const sub of ['9007199254740993', '12345678901234567891', '1e21', '1.5']) {
      const response = await stack.gql(ACCOUNT_QUERY, withRawSub(sub), { id: accountId });
      assert.equal(response.status, 401, sub);
      assertRefused(stack, response, /"sub"/);
    }
    for (const sub of ['9007199254740991', '-42', '0']) {
      const response = await stack.gql(ACCOUNT_QUERY, withRawSub(sub), { id: accountId });
      assert.deepEqual(codes(response), [], sub);
      stack.upstreamCalls();
    }
  });

  test('neither errors nor log lines contain the token', async () => {
    const token = await valid({ exp: now() - 3600 });
    const response = await stack.gql(ACCOUNT_QUERY, token, { id: accountId });
    assertRefused(stack, response);
    const [, payload, signature] = token.split('.');
    for (const text of [JSON.stringify(response.body), ...stack.logs]) {
      assert.ok(!text.includes(payload!) && !text.includes(signature!), 'token content leaked');
    }
  });
});

describe('RS256/ES256 tokens (AUTH_JWKS_URL)', () => {
  let stack: AuthStack;
  let jwks: JwksServer;
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK };
  let ec: { privateKey: CryptoKey; jwk: JWK };

  before(async () => {
    const rsaPair = await generateKeyPair('RS256', { extractable: true });
    rsa = { ...rsaPair, jwk: { ...(await exportJWK(rsaPair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' } };
    const ecPair = await generateKeyPair('ES256', { extractable: true });
    ec = { privateKey: ecPair.privateKey, jwk: { ...(await exportJWK(ecPair.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' } };
    jwks = await startJwksServer([rsa.jwk, ec.jwk]);
    // jose's own cooldown (30 s): the rotation case moves the clock past it instead of waiting it out.
    stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url } });
  });
  after(async () => {
    await stack.close();
    await jwks.close();
  });

  test('an RS256 token from the key set is admin', async () => {
    const response = await stack.gql('{ accounts { nodes { id } } }', await sign(rsa.privateKey, 'RS256', 'rsa-1'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { data: { accounts: { nodes: [] } } });
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
  });

  test('an ES256 token from the key set is accepted', async () => {
    const response = await stack.gql('{ accounts { nodes { id } } }', await sign(ec.privateKey, 'ES256', 'ec-1'));
    assert.equal(response.status, 200);
    assert.deepEqual(codes(response), []);
    stack.upstreamCalls();
  });

  test('without AUTH_AUDIENCE and AUTH_ISSUER, one warning says any token the provider signs is accepted', () => {
    const warnings = stack.logs.filter((line) => line.includes('"level":"warn"') && line.includes('AUTH_AUDIENCE'));
    assert.equal(warnings.length, 1);
    assert.match(JSON.parse(warnings[0]!).message, /^AUTH_JWKS_URL is set without AUTH_AUDIENCE and AUTH_ISSUER: any token the identity provider signs/);
  });

  test('with both set, no such warning', async () => {
    const { createGatewayAccess } = await import('../../src/auth/index.ts');
    const { createLogger } = await import('../../src/logging/logger.ts');
    const lines: string[] = [];
    createGatewayAccess(
      { host: '127.0.0.1', development: false, auth: { jwksUrl: jwks.url, audience: 'contextio-graphql', issuer: 'https://idp.example.com' } },
      createLogger('debug', (line) => lines.push(line)),
    );
    assert.deepEqual(lines, []);
  });

  test('with only one of them set, the warning still comes, naming which is unset', async () => {
    const { createGatewayAccess } = await import('../../src/auth/index.ts');
    const { createLogger } = await import('../../src/logging/logger.ts');
    for (const [auth, unset, variable, accepted] of [
      [{ audience: 'contextio-graphql' }, 'issuer', 'AUTH_ISSUER', 'a token for this audience is accepted whoever issued it'],
      [{ issuer: 'https://idp.example.com' }, 'audience', 'AUTH_AUDIENCE', 'any token the identity provider signs, for any application, is accepted'],
    ] as const) {
      const lines: string[] = [];
      createGatewayAccess({ host: '127.0.0.1', development: false, auth: { jwksUrl: jwks.url, ...auth } }, createLogger('debug', (line) => lines.push(line)));
      assert.equal(lines.length, 1, unset);
      // The message names only the one missing, and what that lets through: the other is set, and saying it
      // is not would send the reader looking for a mistake that is not there.
      assert.ok(JSON.parse(lines[0]!).message.startsWith(`AUTH_JWKS_URL is set without ${variable}: ${accepted}`), lines[0]);
      assert.equal(JSON.parse(lines[0]!)[unset], 'unset');
    }
  });

  test('HS256 is refused when only a key set is configured', async () => {
    assertRefused(stack, await stack.gql('{ __typename }', await hsToken({ scope: 'contextio:admin' })), /algorithm/);
  });

  test('an encrypted token (a JWE, as Auth0 issues for an API set to use JWE) is said to be one, not a signature algorithm refused', async () => {
    // "signed with an algorithm this gateway does not accept" sent the operator to AUTH_JWT_SECRET and AUTH_JWKS_URL,
    // where the fix is at the identity provider: ask it for a signed JWT.
    const fetches = jwks.fetches;
    const payload = new TextEncoder().encode(JSON.stringify({ scope: 'contextio:admin', exp: now() + 3600 }));
    const direct = await new CompactEncrypt(payload).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', iss: 'https://tenant.example.com/' }).encrypt(new Uint8Array(32));
    const toKey = await new CompactEncrypt(payload).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'rsa-1' }).encrypt((await generateKeyPair('RSA-OAEP-256')).publicKey);
    for (const token of [direct, toKey]) {
      assertRefused(stack, await stack.gql('{ __typename }', token), /^The bearer token is encrypted \(a JWE\), not a signed JWT: ask the identity provider for a signed JWT access token$/);
    }
    assert.equal(jwks.fetches, fetches, 'an encrypted token fetches no key set');
  });

  test('HS/RS confusion: an HS256 token keyed with the RSA public key is refused', async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const token = await hsToken({ scope: 'contextio:admin' }, new TextEncoder().encode(pem));
    const withKid = await new SignJWT({ scope: 'contextio:admin' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(pem));
    assertRefused(stack, await stack.gql('{ accounts { nodes { id } } }', token));
    assertRefused(stack, await stack.gql('{ accounts { nodes { id } } }', withKid));
  });

  test('a token signed by a key that is not in the set', async () => {
    const stranger = await generateKeyPair('RS256');
    assertRefused(stack, await stack.gql('{ __typename }', await sign(stranger.privateKey, 'RS256', 'rsa-1')), /signature/);
    assertRefused(stack, await stack.gql('{ __typename }', await sign(stranger.privateKey, 'RS256', 'unknown-kid')), /key/);
  });

  test('key rotation: a new key is fetched when a token names it, a retired key stops working', async () => {
    // A token of the key about to retire, verified (and so remembered) before the rotation.
    const beforeRotation = await sign(rsa.privateKey, 'RS256', 'rsa-1');
    assert.deepEqual(codes(await stack.gql('{ __typename }', beforeRotation)), []);
    const next = await generateKeyPair('RS256', { extractable: true });
    const nextJwk = { ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256', use: 'sig' };
    jwks.setKeys([nextJwk, ec.jwk]);
    const fetchesBefore = jwks.fetches;

    // Past the cooldown.
    await withClockAhead(30_000, async () => {
      const fresh = await stack.gql('{ accounts { nodes { id } } }', await sign(next.privateKey, 'RS256', 'rsa-2'));
      assert.equal(fresh.status, 200);
      assert.deepEqual(codes(fresh), []);
      assert.equal(jwks.fetches, fetchesBefore + 1);
      stack.upstreamCalls();

      const retired = await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'));
      assertRefused(stack, retired, /key/);
      // The same for the token verified before: the set it was verified with has been fetched again since.
      assertRefused(stack, await stack.gql('{ __typename }', beforeRotation), /key/);
    }, { wallClock: true });
  });

  test('a configured refetch cooldown (jwksCooldownMs) is the one kept: a kid the set lacks is refetched only once it is over, not after jose\'s own 30 s', async () => {
    await withKeyRotatingIn(async (stack, jwks, keys) => {
      // Refused tokens are not remembered: the same one is sent each time.
      const rotated = await sign(keys.next.privateKey, 'RS256', 'rsa-2');
      // 45 s after the fetch: past jose's own default, within the 60 s configured.
      await withClockAhead(45_000, async () => assertRefused(stack, await stack.gql('{ __typename }', rotated), /key/), { wallClock: true });
      assert.equal(jwks.fetches, 1, 'not refetched within the cooldown');
      await withClockAhead(61_000, async () => assert.equal((await stack.gql('{ __typename }', rotated)).status, 200), { wallClock: true });
      assert.equal(jwks.fetches, 2, 'refetched once the cooldown was over');
    });
  });

  test('a wall clock set back a day (NTP correcting a clock that ran ahead) holds off no refetch: a rotated-in key is fetched once the cooldown is over, a withdrawn one dropped after 10 minutes, both by the monotonic clock', async () => {
    await withKeyRotatingIn(async (stack, jwks, keys) => {
      await withWallClockAhead(-DAY_MS, async () => {
        // Signed on the clock set back, as the identity provider's own clock would be corrected too.
        const rotated = await sign(keys.next.privateKey, 'RS256', 'rsa-2');
        await withClockAhead(61_000, async () => assert.equal((await stack.gql('{ __typename }', rotated)).status, 200));
        assert.equal(jwks.fetches, 2, 'refetched for the kid it lacked, the cooldown over by the monotonic clock');
        jwks.setKeys([await keys.jwk(keys.next, 'rsa-2')]);
        const withdrawn = await sign(keys.current.privateKey, 'RS256', 'rsa-1', { jti: 'after the withdrawal' });
        await withClockAhead(61_000 + 10 * 60_000, async () => assertRefused(stack, await stack.gql('{ __typename }', withdrawn), /key/));
        assert.equal(jwks.fetches, 3, 'refetched 10 minutes after the last fetch by the monotonic clock');
      });
    });
  });
});

describe('a key set of 1 MiB or more', () => {
  test('is not read whole: a key set that could not be had (503, one error line), and smaller ones are read as before', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const key = { ...(await exportJWK(pair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    const padding = { kty: 'oct', kid: 'padding', k: 'x'.repeat(2 * 1024 * 1024) };
    await withKeySet(
      [key, padding],
      async (stack, jwks) => {
        const token = await sign(pair.privateKey, 'RS256', 'rsa-1');
        const refused = await stack.gql('{ __typename }', token);
        assert.equal(refused.status, 503);
        assert.equal(stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read') && line.includes('larger than the 1048576 bytes accepted')).length, 1);
        // Refused as too large as it came, not as an answer broken off.
        assert.deepEqual(keySetFailures(stack.logs), ['the key set is larger than the 1048576 bytes accepted']);
        jwks.setKeys([key]);
        // Past the backoff.
        await withClockAhead(60_000, async () => assert.deepEqual((await stack.gql('{ __typename }', token)).body, { data: { __typename: 'Query' } }));
      },
      { jwksFailureBackoffMs: 60_000 },
    );
  });
  test('of exactly 1 MiB, announced so, is read whole', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const set = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }] });
    // JSON's whitespace pads it to the byte.
    const body = set.slice(0, -1) + ' '.repeat(1024 * 1024 - set.length) + '}';
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body));
    const port = await listenOnLoopback(server);
    const authenticator = createAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` }, silentLogger);
    try {
      assert.equal(Buffer.byteLength(body), 1024 * 1024);
      const identity = await authenticator.authenticate(`Bearer ${await sign(pair.privateKey, 'RS256', 'rsa-1')}`, 'request-1');
      assert.equal(identity.kind, 'admin');
    } finally {
      await authenticator.close();
      await closeServer(server);
    }
  });
});

/**
 * A key set's URL that answers 200 with `headers` and the first bytes of a set, then sends nothing more (the
 * connection held open), handed to `use` with an authenticator of it and the lines it logged; all stopped after.
 */
async function withStalledKeySet(headers: Record<string, string>, use: (authenticate: () => Promise<unknown>, logs: string[]) => Promise<void>): Promise<void> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers });
    res.write('{"keys":[');
  });
  const port = await listenOnLoopback(server);
  const logs: string[] = [];
  const authenticator = createAuthenticator({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` }, createLogger('debug', (line) => logs.push(line)));
  const pair = await generateKeyPair('RS256', { extractable: true });
  const token = await sign(pair.privateKey, 'RS256', 'rsa-1');
  try {
    await use(() => authenticator.authenticate(`Bearer ${token}`, 'request-1'), logs);
  } finally {
    await authenticator.close();
    await closeServer(server);
  }
}

/** The `error` field of each line saying that the key set could not be had. */
const keySetFailures = (logs: string[]) => logs.filter((line) => line.includes('the JWKS could not be fetched or read')).map((line) => String(JSON.parse(line)['error']));

describe('a key set whose answer stalls', () => {
  test('announced larger than 1 MiB, it is refused for its size as its headers come, not waited on until the fetch times out', async () => {
    await withStalledKeySet({ 'content-length': String(2 * 1024 * 1024) }, async (authenticate, logs) => {
      await assert.rejects(authenticate(), (error: GraphQLError) => error.extensions['http'] !== undefined && (error.extensions['http'] as { status: number }).status === 503);
      assert.deepEqual(keySetFailures(logs), ['the key set is larger than the 1048576 bytes accepted']);
    });
  });

  test('mid-body, past the fetch\'s deadline, is a fetch that timed out, not an answer broken off', async () => {
    await withStalledKeySet({}, async (authenticate, logs) => {
      await assert.rejects(authenticate(), (error: GraphQLError) => (error.extensions['http'] as { status: number }).status === 503);
      const failures = keySetFailures(logs);
      assert.equal(failures.length, 1);
      assert.doesNotMatch(failures[0]!, /broke off/);
      assert.match(failures[0]!, /timed out/);
    });
  });
});

describe('a key set during a rotation, or holding a key the gateway cannot use', () => {
  test('a token without a kid is verified by whichever of the set’s keys of its type signed it', async () => {
    const [older, newer, stranger] = await Promise.all([1, 2, 3].map(() => generateKeyPair('RS256', { extractable: true })));
    const jwk = async (pair: typeof older, kid: string) => ({ ...(await exportJWK(pair!.publicKey)), kid, alg: 'RS256', use: 'sig' });
    const ec = await generateKeyPair('ES256', { extractable: true });
    await withKeySet([await jwk(older, 'rsa-old'), await jwk(newer, 'rsa-new'), { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }], async (stack) => {
      for (const pair of [older, newer]) assert.deepEqual((await stack.gql('{ __typename }', await sign(pair!.privateKey, 'RS256'))).body, { data: { __typename: 'Query' } });
      assertRefused(stack, await stack.gql('{ __typename }', await sign(stranger!.privateKey, 'RS256')), /signature/);
    });
  });

  test('a token without a kid whose type the set has no key of starts a fetch once the refetch cooldown is over, as an unknown kid does; one a key of its type does not verify starts none', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const [ec, unpublished] = await Promise.all([1, 2].map(() => generateKeyPair('ES256', { extractable: true })));
    const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    await withKeySet(
      [rsaJwk],
      async (stack, jwks) => {
        assert.equal((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256'))).status, 200);
        jwks.setKeys([rsaJwk, { ...(await exportJWK(ec!.publicKey)), alg: 'ES256', use: 'sig' }]);
        // Refused tokens are not remembered: the same one is sent each time.
        const ecToken = await sign(ec!.privateKey, 'ES256');
        await withClockAhead(45_000, async () => assertRefused(stack, await stack.gql('{ __typename }', ecToken), /^No key of the configured key set verifies the token$/), { wallClock: true });
        assert.equal(jwks.fetches, 1, 'no key of its type, within the cooldown: refused without a fetch');
        await withClockAhead(61_000, async () => assert.equal((await stack.gql('{ __typename }', ecToken)).status, 200), { wallClock: true });
        assert.equal(jwks.fetches, 2, 'no key of its type, past the cooldown: fetched');
        // Past the cooldown of that fetch too: a key of its type is in the set, and its failing to verify is the
        // token's signature refused, not a key the set lacks (a key signing before it is published, without a kid,
        // is refused until the set is next fetched: in 10 minutes, or for a token naming a kid the set lacks).
        await withClockAhead(122_000, async () => assertRefused(stack, await stack.gql('{ __typename }', await sign(unpublished!.privateKey, 'ES256')), /signature/), { wallClock: true });
        assert.equal(jwks.fetches, 2, 'a key of its type that does not verify it: no fetch');
      },
      { jwksCooldownMs: 60_000 },
    );
  });

  test('a key the gateway cannot use is passed over for the next that verifies a token without a kid', async () => {
    const good = await generateKeyPair('RS256', { extractable: true });
    await withKeySet([{ ...weakRsaJwk(), alg: 'RS256', use: 'sig' }, { ...(await exportJWK(good.publicKey)), alg: 'RS256', use: 'sig' }], async (stack) => {
      assert.deepEqual((await stack.gql('{ __typename }', await sign(good.privateKey, 'RS256'))).body, { data: { __typename: 'Query' } });
    });
  });

  test('a token without a kid that a key of the set verifies, expired, is refused as expired, though a key the gateway cannot use came first: the key that signed it has the last word', async () => {
    const good = await generateKeyPair('RS256', { extractable: true });
    await withKeySet([{ ...weakRsaJwk(), alg: 'RS256', use: 'sig' }, { ...(await exportJWK(good.publicKey)), alg: 'RS256', use: 'sig' }], async (stack) => {
      const expired = await new SignJWT({ scope: 'contextio:admin', exp: now() - 3600 }).setProtectedHeader({ alg: 'RS256' }).sign(good.privateKey);
      assertRefused(stack, await stack.gql('{ __typename }', expired), /^The token has expired$/);
      assert.deepEqual(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens')), []);
    });
  });

  test('a token without a kid that none of the set’s keys verifies, one of them a key the gateway cannot use, is refused as no key of the set verifying it, that key said', async () => {
    const [good, stranger] = await Promise.all([1, 2].map(() => generateKeyPair('RS256', { extractable: true })));
    await withKeySet([{ ...weakRsaJwk(), alg: 'RS256', use: 'sig' }, { ...(await exportJWK(good!.publicKey)), alg: 'RS256', use: 'sig' }], async (stack) => {
      assertRefused(stack, await stack.gql('{ __typename }', await sign(stranger!.privateKey, 'RS256')), /^No key of the configured key set verifies the token$/);
      assert.equal(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens') && line.includes('"kid":"(no kid)"')).length, 1);
    });
  });

  test('a public key whose key_ops name sign beside verify (an identity provider listing its pair\'s uses) verifies its tokens, as the check at start counts it', async () => {
    // WebCrypto imports a public key for verify alone; jose asks for the JWK's own key_ops, and the import failed.
    const ec = await generateKeyPair('ES256', { extractable: true });
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const twice = await generateKeyPair('ES256', { extractable: true });
    const keys = [
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', key_ops: ['sign', 'verify'] },
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', key_ops: ['verify', 'sign', 'encrypt'] },
      // Named twice: jose takes key_ops only as a list of unique uses, and picked no such key.
      { ...(await exportJWK(twice.publicKey)), kid: 'ec-twice', key_ops: ['verify', 'verify'] },
    ];
    await withKeySet(keys, async (stack, jwks) => {
      assert.equal(await keySetProblem(jwks.url), undefined);
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', 'ec-1'))).status, 200);
      assert.equal((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).status, 200);
      assert.equal((await stack.gql('{ __typename }', await sign(twice.privateKey, 'ES256', 'ec-twice'))).status, 200);
      assert.deepEqual(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens')), []);
    });
  });

  test('a public key whose ext is not a boolean ("true", as some providers write it) verifies its tokens, as the check at start counts it', async () => {
    // jose picks no key whose ext is other than a boolean; ext (whether WebCrypto may export the key) means nothing to a verification.
    const ec = await generateKeyPair('ES256', { extractable: true });
    await withKeySet([{ ...(await exportJWK(ec.publicKey)), kid: 'ec-ext', alg: 'ES256', ext: 'true' } as unknown as JWK], async (stack, jwks) => {
      assert.equal(await keySetProblem(jwks.url), undefined);
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', 'ec-ext'))).status, 200);
      assert.deepEqual(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens')), []);
    });
  });

  test('a public key whose kid is a number (7) verifies the tokens naming it, whose kid is its digits ("7"): a JWT header names a key by a string', async () => {
    // jose compares the token's kid with the key's as they are: a number matched no token that named one.
    const ec = await generateKeyPair('ES256', { extractable: true });
    await withKeySet([{ ...(await exportJWK(ec.publicKey)), kid: 7, alg: 'ES256' } as unknown as JWK], async (stack) => {
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', '7'))).status, 200);
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256'))).status, 200, 'a token naming no key');
    });
  });

  test('a token whose header names its key by a number (kid 7, as the server writing the set\'s numeric kid writes its headers) is verified by the key of that kid, numeric or not', async () => {
    // jose picks no key for a kid that is no string: such a token was refused as naming no key of the set (and
    // made the gateway fetch the set), though the set's numeric kid is taken as its digits.
    const ec = await generateKeyPair('ES256', { extractable: true });
    const numericKid = () => new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'ES256', kid: 7 } as unknown as { alg: string }).setExpirationTime('10m').sign(ec.privateKey);
    for (const kid of [7, '7']) {
      await withKeySet([{ ...(await exportJWK(ec.publicKey)), kid, alg: 'ES256' } as unknown as JWK], async (stack, jwks) => {
        const response = await stack.gql('{ __typename }', await numericKid());
        assert.equal(response.status, 200, `the set's kid ${JSON.stringify(kid)}: ${JSON.stringify(response.body)}`);
        assert.equal(jwks.fetches, 1, 'one fetch, the first token\'s');
      });
    }
    // Another key's number is refused, as another key's string is.
    await withKeySet([{ ...(await exportJWK(ec.publicKey)), kid: '8', alg: 'ES256' }], async (stack) => {
      assert.equal((await stack.gql('{ __typename }', await numericKid())).status, 401);
    });
  });

  test('entries of the set that are no key (null, a string, a number, a list) are ignored, as RFC 7517 says: its keys verify their tokens (a set of nothing else is unreadable)', async () => {
    // jose refuses a set holding one such entry whole: every token was answered 503, the set unreadable.
    const ec = await generateKeyPair('ES256', { extractable: true });
    const junk = [null, 'not a key', 7, ['kty', 'EC']] as unknown as JWK[];
    await withKeySet([...junk, { ...(await exportJWK(ec.publicKey)), kid: 'ec-amid-junk', alg: 'ES256' }], async (stack, jwks) => {
      assert.equal(await keySetProblem(jwks.url), undefined);
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', 'ec-amid-junk'))).status, 200);
    });
    // A set of such entries alone is no set of no keys, which would refuse every token (401): a set gone wrong, which
    // cannot be read, so that its tokens, which may be fine, are answered 503.
    await withKeySet(junk, async (stack, jwks) => {
      assert.match((await keySetProblem(jwks.url)) ?? '', /^it could not be fetched and read/);
      assert.equal((await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', 'ec-amid-junk'))).status, 503);
    });
  });

  test('a public key whose key_ops leave verify out (sign alone) verifies no token: 401, as the check at start counts it', async () => {
    // Only key_ops that name verify beside other uses are cut to verify; without it, the key is not one to verify with.
    const ec = await generateKeyPair('ES256', { extractable: true });
    await withKeySet([{ ...(await exportJWK(ec.publicKey)), kid: 'ec-sign', key_ops: ['sign'] }], async (stack, jwks) => {
      assert.match((await keySetProblem(jwks.url)) ?? '', /^it holds no key that verifies tokens/);
      assertRefused(stack, await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256', 'ec-sign')), /^No key of the configured key set verifies the token$/);
    });
  });

  test('a key that cannot even be imported (a point off its curve) refuses its tokens with 401, not a 503 for a key set unavailable', async () => {
    const real = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(real.publicKey);
    await withKeySet([{ ...jwk, y: jwk.x, kid: 'bad', alg: 'ES256', use: 'sig' }, { ...jwk, kid: 'ec-1', alg: 'ES256', use: 'sig' }], async (stack) => {
      for (let i = 0; i < 3; i++) assertRefused(stack, await stack.gql('{ __typename }', await sign(real.privateKey, 'ES256', 'bad')), /^No key of the configured key set verifies the token$/);
      assert.deepEqual(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')), []);
      assert.equal(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens') && line.includes('"kid":"bad"')).length, 1);
      // No backoff began: the set's good key works at once.
      assert.equal((await stack.gql('{ __typename }', await sign(real.privateKey, 'ES256', 'ec-1'))).status, 200);
    });
  });

  test('a token naming a key the gateway cannot use (RSA under 2048 bits) is refused with 401, the key said once', async () => {
    const usable = await generateKeyPair('RS256', { extractable: true });
    await withKeySet([{ ...weakRsaJwk(), kid: 'legacy-1024', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(usable.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }], async (stack) => {
      const token = await sign(usable.privateKey, 'RS256', 'legacy-1024');
      for (let i = 0; i < 5; i++) assertRefused(stack, await stack.gql('{ __typename }', token), /^No key of the configured key set verifies the token$/);
      assert.equal(stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens') && line.includes('"kid":"legacy-1024"')).length, 1);
      assert.deepEqual(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')), []);
      // The set's other keys go on working.
      assert.equal((await stack.gql('{ __typename }', await sign(usable.privateKey, 'RS256', 'rsa-1'))).status, 200);
    });
  });

  test('a set of 101 keys the gateway cannot use has the first 100 said and no more: the kids it keeps to say each once are bounded', async () => {
    // One weak key under 101 kids: jose refuses it for its size before any signature is checked, so the
    // tokens may be signed by any key.
    const weak = weakRsaJwk();
    const kids = Array.from({ length: 101 }, (_, i) => `legacy-${i}`);
    const signer = await generateKeyPair('RS256', { extractable: true });
    await withKeySet(kids.map((kid) => ({ ...weak, kid, alg: 'RS256', use: 'sig' })), async (stack) => {
      for (const kid of kids) assertRefused(stack, await stack.gql('{ __typename }', await sign(signer.privateKey, 'RS256', kid)), /^No key of the configured key set verifies the token$/);
      const said = stack.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens')).map((line) => (JSON.parse(line) as { kid: string }).kid);
      assert.deepEqual(said, kids.slice(0, 100));
    });
  });

  test('a private key published in the set (a JWK with d) is left out, said once by its kid alone: its tokens get 401, the public keys verify theirs', async () => {
    const leaked = await generateKeyPair('RS256', { extractable: true });
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const leakedJwk = { ...(await exportJWK(leaked.privateKey)), kid: 'leaked', alg: 'RS256', use: 'sig' };
    const keys = [leakedJwk, { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }];
    await withKeySet(keys, async (stack, jwks) => {
      // Anyone who read the set can sign with the key: its tokens are refused, as a key the set lacks, not taken
      // for a set that could not be had (503, its client retrying for ever).
      for (let i = 0; i < 3; i++) assertRefused(stack, await stack.gql('{ __typename }', await sign(leaked.privateKey, 'RS256', 'leaked')), /^No key of the configured key set verifies the token$/);
      for (const token of [await sign(rsa.privateKey, 'RS256', 'rsa-1'), await sign(ec.privateKey, 'ES256', 'ec-1'), await sign(rsa.privateKey, 'RS256')]) {
        assert.deepEqual((await stack.gql('{ __typename }', token)).body, { data: { __typename: 'Query' } });
      }
      assert.deepEqual(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')), []);
      // Published with its public half beside it, under its kid or another: the pair is as public as the private
      // half, so the public half verifies nothing either.
      jwks.setKeys([...keys, { ...(await exportJWK(leaked.publicKey)), kid: 'leaked', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(leaked.publicKey)), kid: 'leaked-too' }]);
      for (const kid of ['leaked', 'leaked-too', undefined]) {
        assertRefused(stack, await stack.gql('{ __typename }', await sign(leaked.privateKey, 'RS256', kid)), /^No key of the configured key set verifies the token$|signature/);
      }
      assert.deepEqual((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).body, { data: { __typename: 'Query' } });
      jwks.setKeys(keys);
      const said = stack.logs.filter((line) => line.includes('private key'));
      assert.equal(said.length, 1, stack.logs.join(''));
      assert.deepEqual([JSON.parse(said[0]!)['level'], JSON.parse(said[0]!)['kid']], ['warn', 'leaked']);
      // No part of the key in any line.
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'n'] as const) assert.ok(stack.logs.every((line) => !line.includes(leakedJwk[member]!)), member);
      // A set whose only key of a type is private: a token of that type without a kid is refused, not answered 503.
      jwks.setKeys([{ ...(await exportJWK(ec.privateKey)), alg: 'ES256', use: 'sig' }]);
      const fetched = jwks.fetches;
      assertRefused(stack, await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-2')), /^No key of the configured key set verifies the token$/);
      assert.equal(jwks.fetches, fetched + 1);
      assertRefused(stack, await stack.gql('{ __typename }', await sign(ec.privateKey, 'ES256')), /^No key of the configured key set verifies the token$/);
      assert.equal(stack.logs.filter((line) => line.includes('private key') && line.includes('"kid":"(no kid)"')).length, 1);
      assert.deepEqual(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')), []);
    }, { jwksCooldownMs: 0 });
  });
  test('a symmetric secret published in the set (a JWK of kty oct) is left out, said once by its kid and type alone, never its k', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const secret = 'the-shared-secret-a-key-set-must-never-publish';
    const k = Buffer.from(secret).toString('base64url');
    const keys = [{ kty: 'oct', k, kid: 'shared', alg: 'HS256' }, { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }];
    await withKeySet(keys, async (stack, jwks) => {
      assert.deepEqual((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).body, { data: { __typename: 'Query' } });
      // A kid the set lacks fetches it again: the same secret in it is not said twice.
      assertRefused(stack, await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-2')), /^No key of the configured key set verifies the token$/);
      assert.equal(jwks.fetches, 2);
      const said = stack.logs.filter((line) => line.includes('symmetric secret'));
      assert.equal(said.length, 1, stack.logs.join(''));
      const entry = JSON.parse(said[0]!) as Record<string, unknown>;
      assert.deepEqual([entry['level'], entry['kid'], entry['kty']], ['warn', 'shared', 'oct']);
      // Without a kid it is said too, as such; a set of nothing else refuses an RS256 token with 401, not 503.
      jwks.setKeys([{ kty: 'oct', k }]);
      assertRefused(stack, await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-3')), /^No key of the configured key set verifies the token$/);
      assert.equal(jwks.fetches, 3);
      assertRefused(stack, await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256')), /^No key of the configured key set verifies the token$/);
      assert.equal(stack.logs.filter((line) => line.includes('symmetric secret') && line.includes('"kid":"(no kid)"')).length, 1, stack.logs.join(''));
      assert.deepEqual(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')), []);
      // No line holds the secret, encoded or not.
      assert.ok(stack.logs.every((line) => !line.includes(k) && !line.includes(secret)), 'a line holds the secret');
    }, { jwksCooldownMs: 0 });
  });

  test('a symmetric secret in the set that is AUTH_JWT_SECRET itself is said as an error: HS256 tokens can be forged by anyone who read the set', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const other = Buffer.from('a-different-secret-of-at-least-32-chars!!').toString('base64url');
    const keys = [
      { kty: 'oct', k: Buffer.from(SECRET).toString('base64url'), kid: 'ours' },
      { kty: 'oct', k: other, kid: 'theirs' },
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    ];
    await withKeySet(keys, async (stack) => {
      assert.deepEqual((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).body, { data: { __typename: 'Query' } });
      const entries = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['kty'] === 'oct');
      assert.deepEqual(entries.map((entry) => [entry['level'], entry['kid']]), [['error', 'ours'], ['warn', 'theirs']], stack.logs.join(''));
      assert.match(String(entries[0]!['msg'] ?? entries[0]!['message']), /AUTH_JWT_SECRET itself/);
      assert.ok(stack.logs.every((line) => !line.includes(SECRET) && !line.includes(keys[0]!.k as string)), 'a line holds AUTH_JWT_SECRET');
    }, { jwksCooldownMs: 0, jwtSecret: SECRET });
  });

  test('AUTH_JWT_SECRET published under a kid already said of another secret, or with no kid as another was, is still said as an error', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const other = Buffer.from('a-different-secret-of-at-least-32-chars!!').toString('base64url');
    const ours = Buffer.from(SECRET).toString('base64url');
    const rsaKey = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    await withKeySet([{ kty: 'oct', k: other, kid: 'hs' }, { kty: 'oct', k: other }, rsaKey], async (stack, jwks) => {
      assert.deepEqual((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).body, { data: { __typename: 'Query' } });
      // The identity provider rotates its secret to the gateway's own, under the same kid, and without one.
      jwks.setKeys([{ kty: 'oct', k: ours, kid: 'hs' }, { kty: 'oct', k: ours }, rsaKey]);
      assertRefused(stack, await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-2')), /^No key of the configured key set verifies the token$/);
      assert.equal(jwks.fetches, 2);
      const entries = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['kty'] === 'oct');
      assert.deepEqual(
        entries.map((entry) => [entry['level'], entry['kid']]),
        [['warn', 'hs'], ['warn', '(no kid)'], ['error', 'hs'], ['error', '(no kid)']],
        stack.logs.join(''),
      );
      assert.ok(stack.logs.every((line) => !line.includes(SECRET) && !line.includes(ours) && !line.includes(other)), 'a line holds a published secret');
    }, { jwksCooldownMs: 0, jwtSecret: SECRET });
  });
});

test('the check at start says the secrets and private keys the set publishes, once: not again when a token fetches it', async () => {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const leaked = await generateKeyPair('RS256', { extractable: true });
  const keys = [
    { kty: 'oct', k: Buffer.from(SECRET).toString('base64url'), kid: 'ours' },
    { ...(await exportJWK(leaked.privateKey)), kid: 'leaked', alg: 'RS256' },
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
  ];
  await withKeySet(keys, async (stack, jwks) => {
    const said = () => stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['kid'] === 'ours' || entry['kid'] === 'leaked');
    // A key that verifies tokens is there: no problem to say, but what it should not publish, at once.
    assert.equal(await stack.gateway.keySetProblem(), undefined);
    assert.equal(jwks.fetches, 1);
    assert.deepEqual(said().map((entry) => [entry['level'], entry['kid']]), [['error', 'ours'], ['warn', 'leaked']]);
    assert.deepEqual((await stack.gql('{ __typename }', await sign(rsa.privateKey, 'RS256', 'rsa-1'))).body, { data: { __typename: 'Query' } });
    assert.equal(jwks.fetches, 2);
    assert.equal(said().length, 2, stack.logs.join(''));
  }, { jwksCooldownMs: 0, jwtSecret: SECRET });
});

test('a kid the set publishes is said cut to 100 characters: the identity provider writes it, and a log line stays bounded', async () => {
  const leaked = await generateKeyPair('RS256', { extractable: true });
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const longKid = (c: string) => c.repeat(5_000);
  const keys = [
    { kty: 'oct', k: Buffer.from('another secret, not the gateway\'s').toString('base64url'), kid: longKid('s') },
    { ...(await exportJWK(leaked.privateKey)), kid: longKid('p'), alg: 'RS256' },
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
  ];
  await withKeySet(keys, async (stack) => {
    assert.equal(await stack.gateway.keySetProblem(), undefined);
    const said = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => /symmetric secret|private key/.test(String(entry['message'])));
    assert.deepEqual(said.map((entry) => entry['kid']), [`${'s'.repeat(100)}…`, `${'p'.repeat(100)}…`]);
  });
});

describe('the key set checked at start (keySetProblem, which npm start runs after its ready line)', () => {
  test('says nothing of a set holding an EC key on P-256 or an RSA key of 2048 bits or more, and why any other cannot be used', async () => {
    const rsa = await exportJWK((await generateKeyPair('RS256')).publicKey);
    const ec = await exportJWK((await generateKeyPair('ES256')).publicKey);
    const jwks = await startJwksServer([rsa]);
    try {
      assert.equal(await keySetProblem(jwks.url), undefined);
      jwks.setKeys([{ kty: 'oct', k: 'c2VjcmV0' }, ec]);
      assert.equal(await keySetProblem(jwks.url), undefined, 'an EC key is one');
      const unusable = 'it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least 2048 bits';
      jwks.setKeys([{ kty: 'oct', k: 'c2VjcmV0' }]);
      assert.equal(await keySetProblem(jwks.url), `${unusable} (1 key: secret oct)`);
      // jose refuses to verify with an RSA modulus under 2048 bits: such a set verifies nothing either.
      jwks.setKeys([weakRsaJwk(), weakRsaJwk(), { kty: 'oct', k: 'c2VjcmV0' }]);
      assert.equal(await keySetProblem(jwks.url), `${unusable} (3 keys: RSA of 1024 bits, secret oct)`);
      jwks.setKeys([weakRsaJwk(), rsa]);
      assert.equal(await keySetProblem(jwks.url), undefined, 'one usable key is enough');
      jwks.setFailing(true);
      assert.equal(await keySetProblem(jwks.url), 'it could not be fetched and read (the key set\'s URL answered 500, not 200)');
      assert.equal(jwks.fetches, 6, 'each check fetched the set once');
      // The set whole, but not under a 200: a 206 is part of something, a 203 a proxy's copy; jose takes only a 200.
      jwks.setFailing(false);
      for (const status of [201, 203, 206]) {
        jwks.serveWithStatus(status);
        assert.equal(await keySetProblem(jwks.url), `it could not be fetched and read (the key set's URL answered ${status}, not 200)`, String(status));
      }
    } finally {
      await jwks.close();
    }
    const gone = await startJwksServer([]);
    await gone.close();
    assert.match((await keySetProblem(gone.url))!, /^it could not be fetched and read \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/, 'a closed port: the reason, not "fetch failed"');
  });

  test('says of an OpenID Connect discovery document (the issuer\'s, given where its key set\'s URL was meant) that it is one, and the jwks_uri to set', async () => {
    const discovery = { issuer: 'https://idp.example/', jwks_uri: 'https://idp.example/keys?tenant=t1', authorization_endpoint: 'https://idp.example/authorize' };
    const server = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discovery)));
    const url = `http://127.0.0.1:${await listenOnLoopback(server)}/.well-known/openid-configuration`;
    try {
      // jose says only 'JSON Web Key Set malformed', which sends the operator looking for a broken set.
      const said = 'the answer is an OpenID Connect discovery document, not a key set: AUTH_JWKS_URL is its jwks_uri, https://idp.example/keys?tenant=…';
      assert.equal(await keySetProblem(url), `it could not be fetched and read (${said})`);
      // A token's fetch says the same in its error line.
      const stack = await startAuthStack({ auth: { jwksUrl: url } });
      try {
        const { privateKey } = await generateKeyPair('RS256');
        assert.equal((await stack.gql('{ __typename }', await sign(privateKey, 'RS256', 'k'))).status, 503);
        const logged = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
        assert.deepEqual(logged.map((line) => JSON.parse(line)['error']), [said]);
      } finally {
        await stack.close();
      }
    } finally {
      await closeServer(server);
    }
  });

  test('counts only the keys jose would pick for an RS256 or ES256 token: an EC key on P-256, and keys whose alg and use allow it', async () => {
    const unusable = 'it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least 2048 bits';
    const p256 = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    const p384 = await exportJWK((await generateKeyPair('ES384', { extractable: true })).publicKey);
    const rsa = await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey);
    const jwks = await startJwksServer([p384]);
    try {
      // An identity provider signing ES384 only: every one of its tokens is refused, so it is said at start.
      assert.equal(await keySetProblem(jwks.url), `${unusable} (1 key: EC P-384)`);
      jwks.setKeys([{ ...p256, alg: 'ES256', use: 'sig' }]);
      assert.equal(await keySetProblem(jwks.url), undefined);
      jwks.setKeys([{ ...rsa, alg: 'RS512' }, { ...rsa, use: 'enc' }, { ...p256, key_ops: ['encrypt'] }]);
      assert.equal(await keySetProblem(jwks.url), `${unusable} (3 keys: RSA of 2048 bits for RS512, RSA of 2048 bits for enc, EC P-256 for encrypt)`);
      jwks.setKeys([{ ...rsa, alg: 'RS256', use: 'sig', key_ops: ['verify'] }]);
      assert.equal(await keySetProblem(jwks.url), undefined);
      // key_ops written as a string, not an array: jose picks no such key, whatever the string says.
      jwks.setKeys([{ ...rsa, key_ops: 'verify' } as unknown as JWK]);
      assert.equal(await keySetProblem(jwks.url), `${unusable} (1 key: RSA of 2048 bits for verify)`);
    } finally {
      await jwks.close();
    }
  });

  test('counts no key that cannot be imported (a point off its curve, a coordinate missing), which verifies no token, and names it as one', async () => {
    const unusable = 'it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least 2048 bits';
    const p256 = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    const { y: _y, ...withoutY } = p256;
    const jwks = await startJwksServer([{ ...p256, y: p256.x, kid: 'off-curve', alg: 'ES256' }, { ...withoutY, kid: 'no-y' }]);
    try {
      // Each token of such a set is refused (401, "a key of the JWKS cannot verify tokens"): said at start.
      assert.equal(await keySetProblem(jwks.url), `${unusable} (2 keys: EC P-256 that cannot be imported)`);
      jwks.setKeys([{ ...p256, y: p256.x, kid: 'off-curve' }, { ...p256, kid: 'good', key_ops: ['sign', 'verify'], ext: 'true' } as unknown as JWK]);
      assert.equal(await keySetProblem(jwks.url), undefined, 'a key that imports, as the gateway uses it (key_ops cut to verify, a stray ext left out), is one');
    } finally {
      await jwks.close();
    }
  });

  test('counts no private key (a JWK with d), which tokens are never verified with, and names it as one', async () => {
    const unusable = 'it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least 2048 bits';
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(rsa.privateKey)), kid: 'leaked' }]);
    try {
      assert.equal(await keySetProblem(jwks.url), `${unusable} (1 key: private RSA of 2048 bits)`);
      // Its public half beside it is as public as it: no key that verifies tokens either.
      jwks.setKeys([await exportJWK(rsa.privateKey), { ...(await exportJWK(rsa.publicKey)), kid: 'public-half' }]);
      assert.equal(await keySetProblem(jwks.url), `${unusable} (2 keys: private RSA of 2048 bits, public half of a published private RSA of 2048 bits)`);
      const other = await generateKeyPair('RS256', { extractable: true });
      jwks.setKeys([await exportJWK(rsa.privateKey), await exportJWK(rsa.publicKey), await exportJWK(other.publicKey)]);
      assert.equal(await keySetProblem(jwks.url), undefined, 'another public key is one');
      // A key of another type holding private material (an AKP key's priv, ML-DSA's) is named as one, and said.
      jwks.setKeys([{ kty: 'AKP', alg: 'ML-DSA-44', pub: 'cHVibGlj', priv: 'cHJpdmF0ZQ', kid: 'pq' }]);
      const published: JWK[] = [];
      assert.equal(await keySetProblem(jwks.url, undefined, (key) => published.push(key)), `${unusable} (1 key: private AKP)`);
      assert.deepEqual(published.map((key) => key.kid), ['pq']);
    } finally {
      await jwks.close();
    }
  });

  test('counts an RSA modulus to the bit, and names a key without a modulus or a type as such, the list cut to 200 characters', async () => {
    const unusable = 'it holds no key that verifies tokens, an EC key on P-256 or an RSA key of at least 2048 bits';
    // 256 bytes whose first is 0x7f: 2047 bits, one short of jose's floor (not 2048, as whole bytes would have it).
    const short = { kty: 'RSA', e: 'AQAB', n: Buffer.concat([Buffer.from([0x7f]), Buffer.alloc(255, 0xff)]).toString('base64url') };
    // The same modulus after a zero octet (an encoder writing it as a signed integer): the zero counts for nothing.
    const padded = { ...short, n: Buffer.concat([Buffer.from([0, 0x7f]), Buffer.alloc(255, 0xff)]).toString('base64url') };
    // A modulus of 2048 bits under no type at all: no RSA key, which jose would never pick.
    const untyped = { e: 'AQAB', n: Buffer.alloc(256, 0xff).toString('base64url') };
    const jwks = await startJwksServer([short, padded, { kty: 'RSA', e: 'AQAB' }, untyped, { k: 'c2VjcmV0' }]);
    try {
      assert.equal(await keySetProblem(jwks.url), `${unusable} (5 keys: RSA of 2047 bits, RSA of 0 bits, no type)`);
      // A set of many kinds (a misconfigured URL serving something else's keys): the warning stays one readable line.
      const kinds = Array.from({ length: 40 }, (_, i) => ({ kty: `kind-${i}` }));
      jwks.setKeys(kinds);
      const listed = kinds.map((key) => key.kty).join(', ');
      assert.equal(await keySetProblem(jwks.url), `${unusable} (40 keys: ${listed.slice(0, 200)}…)`);
    } finally {
      await jwks.close();
    }
  });
});

describe('an unreachable key set', () => {
  test('is the gateway\'s fault: 503, not 401, and no upstream call', async () => {
    const jwks = await startJwksServer([]);
    const url = jwks.url;
    await jwks.close();
    const stack = await startAuthStack({ auth: { jwksUrl: url } });
    try {
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setExpirationTime('5m').sign(privateKey);
      const response = await stack.gql('{ __typename }', token);
      assert.equal(response.status, 503);
      assert.match(response.headers.get('retry-after') ?? '', /^\d+$/);
      assert.deepEqual(codes(response), ['INTERNAL_SERVER_ERROR']);
      assert.deepEqual(stack.upstreamCalls(), []);
      // The reason, as the start-up check says it, not fetch's "TypeError: fetch failed".
      const logged = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
      assert.equal(logged.length, 1);
      assert.match(String(JSON.parse(logged[0]!)['error']), /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      // Its operation line: a token that could not be checked is no token refused, so no `authFailure`.
      await eventually(() => stack.logs.some((line) => line.includes('"message":"operation"')));
      const operation = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry['message'] === 'operation')!;
      assert.deepEqual([operation['status'], operation['errors'], 'authFailure' in operation], [503, ['INTERNAL_SERVER_ERROR'], false]);
    } finally {
      await stack.close();
    }
  });

  test('answering a redirect: its status and where it points are logged (the query\'s values and any credentials left out), and said at start', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const moved = `https://user:pa55@idp.example/.well-known/${'x'.repeat(300)}?sig=s3cr3t`;
    jwks.redirect({ status: 301, location: moved });
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url } });
    try {
      const response = await stack.gql('{ __typename }', await sign(privateKey, 'RS256', 'k'));
      assert.equal(response.status, 503);
      const logged = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
      assert.equal(logged.length, 1);
      const said = `the key set's URL answered 301, a redirect (not followed) to https://idp.example/.well-known/${'x'.repeat(100 - 'https://idp.example/.well-known/'.length)}…`;
      assert.equal(JSON.parse(logged[0]!)['error'], said);
      assert.ok(stack.logs.every((line) => !line.includes('pa55') && !line.includes('s3cr3t')), "a line holds the redirect's credentials");
      assert.equal(await keySetProblem(jwks.url), `it could not be fetched and read (${said})`);
      // A relative Location, as where it points from the key set's URL.
      jwks.redirect({ status: 302, location: '/keys?v=2' });
      assert.equal(await keySetProblem(jwks.url), `it could not be fetched and read (the key set's URL answered 302, a redirect (not followed) to ${new URL('/keys', jwks.url).href}?v=…)`);
    } finally {
      await stack.close();
      await jwks.close();
    }
  });

  test('answering a redirect whose Location is no URL: its credentials are left out all the same', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    try {
      // A port out of range: the URL parser refuses it, so it is said as written, but for its user name and password.
      jwks.redirect({ status: 302, location: 'https://user:pa55@idp.example:99999/keys?sig=s3cr3t' });
      const problem = await keySetProblem(jwks.url);
      assert.equal(problem, "it could not be fetched and read (the key set's URL answered 302, a redirect (not followed) to https://idp.example:99999/keys?sig=…)");
    } finally {
      await jwks.close();
    }
  });

  test('answering a redirect whose Location is no URL and writes its slashes otherwise: its credentials are left out all the same', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    try {
      // The URL parser reads an authority after backslashes, after a third slash, or after no slash at all (for an
      // https: Location beside an http: base) as it does after two: these carry a user name and password too.
      for (const [location, said] of [
        ['https:\\\\user:pa55@idp.example:99999/keys', 'https:\\\\idp.example:99999/keys'],
        ['https:///user:pa55@idp.example:99999/keys', 'https:///idp.example:99999/keys'],
        ['https:user:pa55@idp.example:99999/keys', 'https:idp.example:99999/keys'],
      ]) {
        jwks.redirect({ status: 302, location: location! });
        const problem = await keySetProblem(jwks.url);
        assert.equal(problem, `it could not be fetched and read (the key set's URL answered 302, a redirect (not followed) to ${said})`);
      }
    } finally {
      await jwks.close();
    }
  });

  test('is not asked for again for a while after a failed fetch: no fetch and no error line per request', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    jwks.setFailing(true);
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url, jwksFailureBackoffMs: 60_000 } });
    try {
      const token = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setExpirationTime('5m').sign(privateKey);
      // Anyone can send such a header: a forged token names a key, and each request used to refetch the set.
      // The first ones at once, all waiting on the same fetch; then one at a time.
      const statuses = (await Promise.all(Array.from({ length: 10 }, () => stack.gql('{ __typename }', token)))).map((r) => r.status);
      for (let i = 0; i < 10; i++) statuses.push((await stack.gql('{ __typename }', token)).status);
      assert.deepEqual(new Set(statuses), new Set([503]));
      assert.equal(jwks.fetches, 1);
      assert.equal(stack.logs.filter((line) => line.includes('the JWKS could not be fetched')).length, 1);

      // Once the identity provider is back and the pause is over, tokens verify again.
      jwks.setFailing(false);
      await withClockAhead(60_000, async () => {
        const response = await stack.gql('{ __typename }', token);
        assert.equal(response.status, 200);
        assert.equal(jwks.fetches, 2);
      });
      assert.deepEqual(stack.upstreamCalls(), []);
    } finally {
      await stack.close();
      await jwks.close();
    }
  });

  test('while it is not asked for again, the keys fetched before still verify their tokens: only other kids wait', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    // jose refetches for an unknown kid once its cooldown after a fetch (30 s) is over: the clock is moved past
    // it below, so that the forged token makes it try.
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url, jwksFailureBackoffMs: 60_000 } });
    try {
      // Each token unlike the last (its own jti): one seen before would be answered from the verified tokens
      // remembered, never reaching the key set, so it would say nothing of how the keys behave in the pause.
      let issued = 0;
      const sign = (kid: string) =>
        new SignJWT({ scope: 'contextio:admin', jti: String(++issued) }).setProtectedHeader({ alg: 'RS256', kid }).setExpirationTime('5m').sign(privateKey);
      assert.equal((await stack.gql('{ __typename }', await sign('k'))).status, 200);
      jwks.setFailing(true);
      await withClockAhead(30_000, async () => {
        // Anyone can name a kid the set lacks: the refetch fails, and the pause begins.
        const fetches = jwks.fetches;
        const forged = await stack.gql('{ __typename }', await sign('forged'));
        assert.equal(forged.status, 503);
        assert.equal(forged.headers.get('retry-after'), '60');
        assert.equal(jwks.fetches, fetches + 1, 'the forged kid made it try');
        for (let i = 0; i < 3; i++) assert.equal((await stack.gql('{ __typename }', await sign('k'))).status, 200, 'a cached key went on verifying');
        assert.equal((await stack.gql('{ __typename }', await sign('forged'))).status, 503);
        assert.equal(jwks.fetches, fetches + 1, 'nothing fetched during the pause');
      }, { wallClock: true });
    } finally {
      await stack.close();
      await jwks.close();
    }
  });

  test('while it cannot be fetched, the keys of its last fetch verify their tokens up to an hour after it, and no longer', async () => {
    await withKeySetThenFailing('status', async (stack, jwks, signed) => {
      const failures = () => stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read')).map((line) => JSON.parse(line) as Record<string, unknown>);
      // Eleven minutes on, past the 10 min max age: the set is asked for again, that fails, and the keys of the
      // last fetch verify the token all the same (an outage of the set alone refuses nobody), said at error.
      await withClockAhead(11 * 60_000, async () => {
        const verified = await stack.gql('{ __typename }', await signed());
        assert.equal(verified.status, 200);
        assert.equal(jwks.fetches, 2);
        const [failure] = failures();
        // Said with the id of the request that met the failure, as the 503's line is.
        assert.equal(failure!['requestId'], verified.headers.get('x-request-id'));
        // One message whatever the last fetch's keys did, so that an alert rule matching it sees every failed fetch;
        // what they did is a field of its own.
        assert.equal(failure!['message'], 'the JWKS could not be fetched or read');
        assert.equal(failure!['meanwhile'], 'the keys of its last fetch verify tokens, up to 60 minutes after it');
        assert.ok(Math.abs(Number(failure!['lastFetchedSecondsAgo']) - 660) < 30, String(failure!['lastFetchedSecondsAgo']));
        // In the pause that follows, the same without a fetch; a key the last fetch lacked gets the 503.
        assert.equal((await stack.gql('{ __typename }', await signed())).status, 200);
        assert.equal((await stack.gql('{ __typename }', await signed('another'))).status, 503);
        assert.equal(jwks.fetches, 2, 'nothing fetched during the pause');
        assert.equal(failures().length, 1, 'the one failed fetch said once');
      }, { wallClock: true });
      // An hour and a minute on, the keys are trusted no longer: 503, and the same in the pause after.
      await withClockAhead(61 * 60_000, async () => {
        const refused = await stack.gql('{ __typename }', await signed());
        assert.equal(refused.status, 503);
        assert.deepEqual(codes(refused), ['INTERNAL_SERVER_ERROR']);
        assert.equal(jwks.fetches, 3);
        assert.equal((await stack.gql('{ __typename }', await signed())).status, 503);
        assert.equal(jwks.fetches, 3, 'nothing fetched during the pause');
        assert.equal(failures().at(-1)!['message'], 'the JWKS could not be fetched or read');
        assert.ok(!('meanwhile' in failures().at(-1)!), 'past the hour, no keys are said to verify tokens meanwhile');
      }, { wallClock: true });
      // Back, the set is fetched once the pause is over, and its keys verify again.
      jwks.setFailing(false);
      await withClockAhead(63 * 60_000, async () => {
        assert.equal((await stack.gql('{ __typename }', await signed())).status, 200);
        assert.equal(jwks.fetches, 4);
      }, { wallClock: true });
    });
  });

  test('while it cannot be fetched, a token the keys of its last fetch verify is answered at once, not held while the set is tried again', async () => {
    await withKeySetThenFailing('status', async (stack, jwks, signed) => {
      const failures = () => stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read')).length;
      // Past the 10 min max age: the set is asked for again and cannot be had, the outage begins.
      await withClockAhead(11 * 60_000, async () => assert.equal((await stack.gql('{ __typename }', await signed())).status, 200), { wallClock: true });
      assert.equal(failures(), 1);
      // Past the pause after it, the set is tried again, and now the identity provider does not answer (it hangs):
      // every such token was held for the fetch's 5 s, then verified by the same keys, each time the pause ended.
      await withClockAhead(11 * 60_000 + 61_000, async () => {
        const held = jwks.hold();
        const answered = stack.gql('{ __typename }', await signed());
        await held.arrived;
        assert.equal((await answered).status, 200);
        assert.equal(failures(), 1, 'answered once the fetch had timed out, not while it was out');
        held.release();
        // The fetch goes on without the request, and its failure is said as any other's.
        await eventually(() => failures() === 2);
      }, { wallClock: true });
      assert.equal(jwks.fetches, 3);
    });
  });

  test('an answer broken off mid-body is a key set that could not be read: the last keys verify, no 401, no fetch per request', async () => {
    await withKeySetThenFailing('broken off', async (stack, jwks, signed) => {
      // Past the 10 min max age, the set is asked for again and its answer breaks off after half the set.
      await withClockAhead(11 * 60_000, async () => {
        for (let i = 0; i < 3; i++) assert.equal((await stack.gql('{ __typename }', await signed())).status, 200, 'the keys of the last fetch verify');
        const other = await stack.gql('{ __typename }', await signed('another'));
        assert.equal(other.status, 503);
        assert.deepEqual(codes(other), ['INTERNAL_SERVER_ERROR']);
        assert.equal(jwks.fetches, 2, 'nothing fetched during the pause');
      }, { wallClock: true });
      const failures = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
      assert.equal(failures.length, 1);
      assert.match(String(JSON.parse(failures[0]!)['error']), /broke off/);
      assert.equal(stack.logs.filter((line) => line.includes('cannot verify tokens')).length, 0, 'no key of the set is blamed');
    });
  });

  test('a failed fetch is said even when the token has no kid and the keys of the last fetch hold several of its type (a rotation)', async () => {
    const [older, newer] = await Promise.all([1, 2].map(() => generateKeyPair('RS256', { extractable: true })));
    const jwkOf = async (publicKey: CryptoKey, kid: string) => ({ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' });
    await withKeySet(
      [await jwkOf(older!.publicKey, 'rsa-old'), await jwkOf(newer!.publicKey, 'rsa-new')],
      async (stack, jwks) => {
        let issued = 0;
        const withoutKid = () => sign(newer!.privateKey, 'RS256', undefined, { jti: String(++issued) });
        assert.equal((await stack.gql('{ __typename }', await withoutKid())).status, 200);
        jwks.setFailing(true);
        // Past the 10 min max age: the set is asked for again, that fails, and the keys of the last fetch verify.
        await withClockAhead(11 * 60_000, async () => {
          const verified = await stack.gql('{ __typename }', await withoutKid());
          assert.equal(verified.status, 200);
          assert.equal(jwks.fetches, 2);
        }, { wallClock: true });
        const failures = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
        assert.equal(failures.length, 1, 'the failed fetch said once');
        assert.equal(JSON.parse(failures[0]!)['meanwhile'], 'the keys of its last fetch verify tokens, up to 60 minutes after it');
      },
      { jwksFailureBackoffMs: 60_000 },
    );
  });

  test('in an outage after a rotation, the keys of the last fetch are those trusted, not those of an earlier one', async () => {
    const first = await generateKeyPair('RS256', { extractable: true });
    const second = await generateKeyPair('RS256', { extractable: true });
    const jwkOf = async (publicKey: CryptoKey, kid: string) => ({ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' });
    await withKeySet(
      [await jwkOf(first.publicKey, 'k1')],
      async (stack, jwks) => {
        let issued = 0;
        const signed = (kid: 'k1' | 'k2') => sign(kid === 'k1' ? first.privateKey : second.privateKey, 'RS256', kid, { jti: String(++issued) });
        const status = async (kid: 'k1' | 'k2') => (await stack.gql('{ __typename }', await signed(kid))).status;
        assert.equal(await status('k1'), 200);
        // A first outage: k1 verified with the keys of the first fetch.
        jwks.setFailing(true);
        await withClockAhead(11 * 60_000, async () => assert.equal(await status('k1'), 200), { wallClock: true });
        assert.equal(jwks.fetches, 2);
        // Back, with k1 withdrawn for k2: a token naming k2 has the set fetched.
        jwks.setKeys([await jwkOf(second.publicKey, 'k2')]);
        jwks.setFailing(false);
        await withClockAhead(13 * 60_000, async () => assert.equal(await status('k2'), 200), { wallClock: true });
        assert.equal(jwks.fetches, 3);
        // A second outage, past that fetch's max age: k2 still verifies, and the withdrawn k1 no longer does.
        jwks.setFailing(true);
        await withClockAhead(25 * 60_000, async () => {
          assert.equal(await status('k2'), 200);
          assert.equal(jwks.fetches, 4);
          assert.equal(await status('k1'), 503);
          assert.equal(await status('k2'), 200);
          assert.equal(jwks.fetches, 4, 'nothing fetched during the pause');
        }, { wallClock: true });
      },
      { jwksFailureBackoffMs: 60_000 },
    );
  });
});

/**
 * What a token's fetch of the key set at `jwksUrl` through `jwksProxy` logged when it failed: it is answered 503,
 * and its one failure line's `error` is returned, with every line the gateway wrote.
 */
async function failedFetchThroughProxy(jwksUrl: string, jwksProxy: NonNullable<Parameters<typeof keySetProblem>[1]>): Promise<{ errors: unknown[]; lines: string[] }> {
  const { privateKey } = await generateKeyPair('RS256');
  const stack = await startAuthStack({ auth: { jwksUrl, jwksProxy } });
  try {
    assert.equal((await stack.gql('{ __typename }', await sign(privateKey, 'RS256', 'k'))).status, 503);
    const logged = stack.logs.filter((line) => line.includes('the JWKS could not be fetched or read'));
    return { errors: logged.map((line) => JSON.parse(line)['error']), lines: stack.logs };
  } finally {
    await stack.close();
  }
}

describe('a key set fetched through the egress proxy', () => {
  test('the connection the key set was fetched over is closed when the gateway stops', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    // Its connections kept a minute when idle: one still open after the stop was left open, not yet timed out.
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }], { keepAliveMs: 60_000 });
    const jwksPort = Number(new URL(jwks.url).port);
    // keys.test does not resolve (.test is reserved): only the proxy reaches it.
    const proxy = await startConnectProxy((authority) => (authority === 'keys.test:80' ? jwksPort : undefined));
    try {
      const stack = await startAuthStackWithKeySet(jwks, {
        auth: { jwksUrl: 'http://keys.test/jwks.json', jwksProxy: { origin: proxy.url, authorization: undefined, variable: 'HTTPS_PROXY', shown: proxy.hostPort } },
      });
      try {
        assert.equal((await stack.gql('{ __typename }', await sign(privateKey, 'RS256', 'k'))).status, 200);
        assert.deepEqual([jwks.fetches, proxy.counts.tunnels, proxy.openConnections], [1, 1, 1], 'the set fetched through a tunnel kept open');
      } finally {
        await stack.close();
      }
      await eventually(() => proxy.openConnections === 0, { what: 'the key set\'s tunnel closed' });
    } finally {
      await proxy.close();
      await jwks.close();
    }
  });

  test('the check at start closes the connection it fetched the set over, which is the check\'s alone', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    // Kept a minute when idle (and the client told so), a connection the check left open would outlast the wait below.
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }], { keepAliveMs: 60_000 });
    const jwksPort = Number(new URL(jwks.url).port);
    const proxy = await startConnectProxy((authority) => (authority === 'keys.test:80' ? jwksPort : undefined));
    try {
      const jwksProxy = { origin: proxy.url, authorization: undefined, variable: 'HTTPS_PROXY', shown: proxy.hostPort };
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), undefined);
      assert.deepEqual([jwks.fetches, proxy.counts.tunnels], [1, 1], 'the set fetched through a tunnel');
      await eventually(() => proxy.openConnections === 0, { what: 'the check\'s tunnel closed' });
    } finally {
      await proxy.close();
      await jwks.close();
    }
  });
  /**
   * undici's fetch reports a tunnel the proxy would not open as a request "cancelled", the proxy's status two causes
   * down: the check at start and a token's failed fetch said only "Request was cancelled.", which sent the operator
   * nowhere (a proxy wanting credentials, or refusing the identity provider's host).
   */
  test('a tunnel the proxy refuses is said as the proxy\'s refusal with its status, at start and in a token\'s failed fetch', async () => {
    const proxy = await startConnectProxy(() => undefined);
    try {
      const jwksProxy = { origin: proxy.url, authorization: undefined, variable: 'https_proxy', shown: proxy.hostPort };
      const said = (status: number, hint: string) => `the egress proxy ${proxy.hostPort} refused to open a tunnel to the key set's host (HTTP ${status})${hint}`;
      await proxy.refuseWith(407);
      const credentials = said(407, ': it wants credentials, which https_proxy lacks: http://user:password@host:port');
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), `it could not be fetched and read (${credentials})`);
      await proxy.refuseWith(403);
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), `it could not be fetched and read (${said(403, ': does it allow CONNECT to AUTH_JWKS_URL’s host and port?')})`);
      await proxy.refuseWith(502);
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), `it could not be fetched and read (${said(502, '')})`);
      await proxy.refuseWith(407);
      assert.deepEqual((await failedFetchThroughProxy('http://keys.test/jwks.json', jwksProxy)).errors, [credentials]);
    } finally {
      await proxy.close();
    }
  });
  /**
   * A proxy that stalls (its CONNECT unanswered, as squid stopped with SIGSTOP leaves even its TLS handshake) used up
   * the fetch's deadline, said only as "request timed out": nothing pointed at the proxy, where the upstream
   * calls' own deadline names it.
   */
  test('a tunnel the proxy leaves unanswered past the fetch\'s deadline is said as the proxy\'s, naming it; a key set\'s host that does not answer through an open tunnel is not', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const jwksPort = Number(new URL(jwks.url).port);
    const proxy = await startConnectProxy((authority) => (authority === 'keys.test:80' ? jwksPort : undefined));
    try {
      const jwksProxy = { origin: proxy.url.replace('://', '://proxy-user:pa55@'), authorization: 'Basic cHJveHktdXNlcjpwYTU1', variable: 'HTTPS_PROXY', shown: proxy.hostPort };
      const stalled = `the egress proxy ${proxy.hostPort} did not open a tunnel to the key set's host within 5000 ms`;
      await proxy.refuseWith('no answer');
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), `it could not be fetched and read (${stalled})`);
      const failed = await failedFetchThroughProxy('http://keys.test/jwks.json', jwksProxy);
      assert.deepEqual(failed.errors, [stalled]);
      assert.ok(failed.lines.every((line) => !line.includes('pa55') && !line.includes('cHJveHktdXNlcjpwYTU1')), 'a line shows the proxy\'s credentials');
      // The tunnel opened, the key set's host silent: not the proxy's doing.
      await proxy.refuseWith(undefined);
      const held = jwks.hold();
      assert.equal(await keySetProblem('http://keys.test/jwks.json', jwksProxy), 'it could not be fetched and read (request timed out)');
      assert.equal(proxy.counts.tunnels, 1, 'the tunnel the second check was fetched through');
      held.release();
    } finally {
      await proxy.close();
      await jwks.close();
    }
  });
  /**
   * An https:// proxy whose certificate the gateway does not trust: said as a bare "self-signed certificate", the
   * failure did not say whose certificate, the proxy's or the identity provider's, where the upstream calls name the proxy.
   */
  test('a certificate of an https:// proxy refused is said as the proxy\'s, naming it, at start and in a token\'s failed fetch', async () => {
    const tls = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url)));
    // Self-signed, so trusted by no process; never asked to CONNECT, as the handshake fails first.
    const proxy = await startConnectProxy(() => undefined, { key: tls('key.pem'), cert: tls('self-signed.pem') });
    try {
      const jwksProxy = { origin: proxy.url, authorization: undefined, variable: 'HTTPS_PROXY', shown: proxy.hostPort };
      const refused = `the TLS certificate of the egress proxy ${proxy.hostPort} was refused (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate)`;
      assert.equal(await keySetProblem('https://keys.test/jwks.json', jwksProxy), `it could not be fetched and read (${refused})`);
      assert.deepEqual((await failedFetchThroughProxy('https://keys.test/jwks.json', jwksProxy)).errors, [refused]);
      assert.equal(proxy.counts.connects, 0, 'no CONNECT: the handshake failed first');
    } finally {
      await proxy.close();
    }
  });
  /**
   * A proxy URL of the wrong scheme, or a proxy dropping the connection before it answers the CONNECT: said as
   * squid's `read ECONNRESET`, or as the egress proxy closing "the connection", the key set's failure did not say
   * which proxy, or that it was one (OpenSSL's reason came with its internals: error codes, a source path).
   */
  test('a connection to the proxy that fails before its CONNECT is answered is said as the proxy\'s, naming it', async () => {
    const tls = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url)));
    const tlsProxy = await startConnectProxy(() => undefined, { key: tls('key.pem'), cert: tls('localhost.pem') });
    const plainProxy = await startConnectProxy(() => undefined);
    // Reset as its CONNECT arrives, as squid's https_port resets one sent in the clear.
    const resetting = createTcpServer((socket) => socket.on('data', () => socket.resetAndDestroy()));
    const resettingPort = await listenOnLoopback(resetting);
    try {
      const through = (origin: string, shown: string) => keySetProblem('https://keys.test/jwks.json', { origin, authorization: undefined, variable: 'HTTPS_PROXY', shown });
      assert.equal(await through(`http://127.0.0.1:${resettingPort}`, `127.0.0.1:${resettingPort}`), `it could not be fetched and read (the egress proxy 127.0.0.1:${resettingPort} could not be reached: read ECONNRESET)`);
      assert.equal(
        await through(tlsProxy.url.replace('https:', 'http:'), tlsProxy.hostPort),
        `it could not be fetched and read (the egress proxy ${tlsProxy.hostPort} closed the connection without answering the request for a tunnel to the key set's host)`,
      );
      assert.equal(
        await through(plainProxy.url.replace('http:', 'https:'), plainProxy.hostPort),
        `it could not be fetched and read (the TLS handshake with the egress proxy ${plainProxy.hostPort} failed (ERR_SSL_WRONG_VERSION_NUMBER: wrong version number))`,
      );
    } finally {
      await tlsProxy.close();
      await plainProxy.close();
      await closeServer(resetting);
    }
  });
});

describe('a client leaving while its token is verified', () => {
  test('leaves nothing to run: no upstream call, no operation in flight at shutdown', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url }, shutdownGraceMs: 60_000 });
    try {
      const account = stack.emulator.store.createAccount({ email: 'left@example.com' }).id;
      const token = await sign(privateKey, 'RS256', 'k', { scope: 'contextio:admin' });
      const held = jwks.hold();
      // A GET: nothing left to read once its headers are in, so only the closed connection can stop it.
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      const path = `/graphql?query=${encodeURIComponent(`{ account(id: "${account}") { id } }`)}`;
      socket.end(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n\r\n`);
      await held.arrived;
      socket.destroy();
      await eventually(() => stack.logs.some((line) => line.includes('"message":"operation"') && line.includes('"clientWentAway":true')));
      held.release();
      // The same token, verified again with the keys the first one's held fetch brought (no fetch of its own); not
      // answered from the tokens remembered as verified, since the first's verification began before the set was
      // fetched. Answered, and the only upstream call made.
      const answered = await stack.gql(`{ account(id: "${account}") { id } }`, token);
      assert.deepEqual(answered.body, { data: { account: { id: account } } });
      assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${account}`]);
      // Nothing of the first is left in flight: shutdown does not wait out its grace period.
      await stack.gateway.close();
      assert.ok(!stack.logs.some((line) => line.includes('shutdown grace period over')), 'shutdown had nothing in flight to wait out');
    } finally {
      await stack.close();
      await jwks.close();
    }
  });

  test('in the middle of its body: said at debug, as for any client leaving before its request was complete', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url } });
    try {
      const token = await sign(privateKey, 'RS256', 'k', { scope: 'contextio:admin' });
      const held = jwks.hold();
      const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: 100\r\n\r\n{"query"`);
      await held.arrived;
      socket.destroy();
      held.release();
      await eventually(() => stack.logs.some((line) => line.includes('the client left before its request was complete')));
      assert.deepEqual(stack.upstreamCalls(), []);
    } finally {
      await stack.close();
      await jwks.close();
    }
  });
});
