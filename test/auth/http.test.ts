import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { startGateway, type GatewayOptions } from '../../src/http/server.ts';
import { assertEveryPlaceFree } from '../helpers/admission.ts';
import { configProblems } from '../helpers/config.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { exchange } from '../helpers/net.ts';
import { messages } from '../helpers/stack.ts';
import { codes, hsToken, SECRET, startAuthStack, startAuthStackWithKeySet, startJwksServer, type AuthStack } from './helpers.ts';

const INTROSPECT = '{ __schema { queryType { name } } }';

describe('open mode (no AUTH_JWT_SECRET, no AUTH_JWKS_URL)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack();
    stack.emulator.store.createAccount({ email: 'open@example.com' });
  });
  after(() => stack.close());

  test('every caller is admin, without a token, and one warning says so', async () => {
    const response = await stack.gql('{ accounts { nodes { emailAddresses } } }');
    assert.deepEqual(response.body, { data: { accounts: { nodes: [{ emailAddresses: ['open@example.com'] }] } } });
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
    const warnings = stack.logs.filter((line) => (JSON.parse(line) as { level: string }).level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /AUTH_JWT_SECRET/);
  });

  test('introspection is on by default', async () => {
    const response = await stack.gql(INTROSPECT);
    assert.deepEqual(response.body, { data: { __schema: { queryType: { name: 'Query' } } } });
  });

  test('answers only requests addressed to a loopback host name: a rebound DNS name gets 403 and no upstream call', async () => {
    const query = JSON.stringify({ query: '{ accounts { nodes { emailAddresses } } }' });
    for (const host of ['rebind.attacker.example', 'rebind.attacker.example:4000', '10.0.0.5', '[2001:db8::1]:4000', '127.0.0.1.attacker.example']) {
      const answer = await postWithHost(stack.gateway.url, host, query);
      assert.equal(answer.status, 403, host);
      assert.match(answer.body, /"code":"FORBIDDEN"/);
      assert.match(answer.body, /loopback host name/);
      assert.doesNotMatch(answer.body, /attacker|emailAddresses|open@example/);
      // Like every answer of the gateway's own, kept by no cache.
      assert.equal(answer.cacheControl, 'private, no-store');
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    for (const host of ['127.0.0.1', '127.0.0.1:4000', 'localhost:4000', 'LOCALHOST', '[::1]:4000']) {
      const answer = await postWithHost(stack.gateway.url, host, query);
      assert.equal(answer.status, 200, `${host}: ${answer.body}`);
    }
  });

  test('judges a request target in absolute form by the host it names, which stands for the Host header there (RFC 9112 §3.2.2)', async () => {
    stack.upstreamCalls();
    const body = JSON.stringify({ query: '{ accounts { nodes { emailAddresses } } }' });
    const send = (target: string, host: string) =>
      exchange(stack.gateway.url, `POST ${target} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    const refused = await send('http://rebind.attacker.example/graphql', '127.0.0.1');
    assert.match(refused, /^HTTP\/1\.1 403 /, refused);
    assert.match(refused, /"code":"FORBIDDEN"/);
    assert.deepEqual(stack.upstreamCalls(), []);
    // A loopback target is answered whatever Host says: the target names the host.
    const answered = await send('http://127.0.0.1/graphql', 'rebind.attacker.example');
    assert.match(answered, /^HTTP\/1\.1 200 /, answered);
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
  });

  test('answers an HTTP/1.0 request that names no host: no browser sends one, so no page of a rebound name can', async () => {
    stack.upstreamCalls();
    const body = JSON.stringify({ query: '{ accounts { nodes { emailAddresses } } }' });
    const answer = await exchange(stack.gateway.url, `POST /graphql HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /open@example\.com/);
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
  });

  /** A gateway started from code, as an embedding application would, with `options` over minimal settings. */
  const startFromCode = (options: Partial<GatewayOptions>) =>
    startGateway({
      port: 0,
      host: '127.0.0.1',
      upstream: { baseUrl: stack.emulator.url, consumerKey: 'k', consumerSecret: 's' },
      upstreamTimeoutMs: 1000,
      upstreamMaxInFlight: 1,
      development: false,
      logger: silentLogger,
      ...options,
    });

  /** A start that must be refused; a gateway that starts all the same is closed, so that it fails the test and no more. */
  const refusedStart = (options: Partial<GatewayOptions>) => startFromCode(options).then((gateway) => gateway.close());

  test('a programmatic start on a non-loopback interface is refused', async () => {
    await assert.rejects(refusedStart({ host: '0.0.0.0' }), /AUTH_JWT_SECRET or AUTH_JWKS_URL/);
  });

  test('a programmatic start with a JWKS URL carrying credentials is refused without quoting them', async () => {
    await assert.rejects(
      refusedStart({ host: '127.0.0.1', auth: { jwksUrl: 'https://jwksuser:S3cretPass@idp.example.com/jwks.json' } }),
      (error: Error) => /must not carry credentials/.test(error.message) && !/jwksuser|S3cretPass/.test(error.message),
    );
  });
});

describe('configuration', () => {
  test('open mode on a non-loopback HOST is one line naming the missing settings', () => {
    const problems = configProblems({ HOST: '0.0.0.0' });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^HOST=0\.0\.0\.0 .*AUTH_JWT_SECRET or AUTH_JWKS_URL/);
    assert.deepEqual(configProblems({ HOST: '0.0.0.0', AUTH_JWT_SECRET: SECRET }), []);
    assert.deepEqual(configProblems({ HOST: '::1' }), []);
  });

  test('bad values are each one line, and a secret is never printed', () => {
    const problems = configProblems({
      AUTH_JWT_SECRET: 'short-secret-value',
      AUTH_JWKS_URL: 'http://idp.example.com/jwks.json',
      CORS_ORIGINS: 'https://app.example.com, *, https://x.example.com/path',
      INTROSPECTION: 'yes',
    });
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.ok(problems.every((p) => !p.includes('short-secret-value')), 'no problem repeats the short secret');
    assert.ok(problems.some((p) => p.startsWith('AUTH_JWT_SECRET must be at least 32 bytes')), 'a problem says AUTH_JWT_SECRET is too short');
    assert.ok(problems.some((p) => p.startsWith('AUTH_JWKS_URL must be an https URL')), 'a problem says AUTH_JWKS_URL must be https');
    assert.ok(problems.some((p) => p.includes('"*"')), 'a problem names the "*" origin');
    assert.ok(problems.some((p) => p.includes('"https://x.example.com/path"')), 'a problem names the origin with a path');
    assert.ok(problems.some((p) => p.startsWith('INTROSPECTION must be true or false')), 'a problem says INTROSPECTION must be true or false');
  });

  test('an AUTH_JWT_SECRET of exactly 32 bytes is long enough, however many characters it is written in', () => {
    assert.deepEqual(configProblems({ AUTH_JWT_SECRET: 'a'.repeat(32) }), []);
    // 16 characters of 2 bytes each in UTF-8: the bytes HS256 keys with.
    assert.deepEqual(configProblems({ AUTH_JWT_SECRET: 'é'.repeat(16) }), []);
    assert.match(configProblems({ AUTH_JWT_SECRET: 'a'.repeat(31) })[0] ?? '', /^AUTH_JWT_SECRET must be at least 32 bytes/);
  });

  test('an AUTH_JWKS_URL with credentials is refused without quoting them', () => {
    const problems = configProblems({ AUTH_JWKS_URL: 'https://jwksuser:JWKSPASSWD@idp.example.com/jwks.json' });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /^AUTH_JWKS_URL must not carry credentials/);
    assert.doesNotMatch(problems[0]!, /jwksuser|JWKSPASSWD/);
  });

  test('a CORS_ORIGINS entry spelt otherwise than browsers send it (capitals, a default port) is refused with the spelling to list', () => {
    // Browsers send `Origin` lowercase and without their scheme's default port: listed otherwise, it would never match.
    assert.deepEqual(configProblems({ CORS_ORIGINS: 'https://App.Example.com, https://b.example.com:443, https://c.example.com/path' }), [
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://App.Example.com": browsers send it as https://app.example.com, which is what to list)',
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://b.example.com:443": browsers send it as https://b.example.com, which is what to list)',
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://c.example.com/path")',
    ]);
  });

  test('a CORS_ORIGINS entry with a wildcard in its host is refused: no browser sends one, so it would match nothing', () => {
    // `*` may stand in a URL's host, so `https://*.example.com` parses as an origin of its own, which no
    // `Origin` header ever equals: its subdomains were refused in silence.
    assert.deepEqual(configProblems({ CORS_ORIGINS: 'https://*.example.com, http://localhost:*, https://app.example.*' }), [
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://*.example.com": wildcards are not supported, list each origin)',
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "http://localhost:*": wildcards are not supported, list each origin)',
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://app.example.*": wildcards are not supported, list each origin)',
    ]);
  });

  test('a CORS_ORIGINS list with credentials repeats none of its entries, even a password split by a comma', () => {
    const problems = configProblems({ CORS_ORIGINS: 'https://deploy:pass,word@app.example.com, deploy:secret@host' });
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.every((p) => p.endsWith('(got an entry, not shown: the list holds an @, as credentials in a URL would)')), 'every problem says its entry is not shown');
    assert.ok(problems.every((p) => !/pass|word|secret|deploy/.test(p)), problems.join('\n'));
  });

  test('an AUTH_* variable set but blank is refused, rather than read as unset (open mode, for the secret)', () => {
    // A deployment template that left the secret empty ran open: every caller admin, on loopback.
    const problems = configProblems({ AUTH_JWT_SECRET: '', AUTH_JWKS_URL: '  ', AUTH_ISSUER: '', AUTH_AUDIENCE: '\t' });
    assert.deepEqual(problems, ['AUTH_JWT_SECRET', 'AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'].map((name) => `${name} is set but empty: give it a value, or unset it`));
    assert.deepEqual(configProblems({ AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: '' }), ['AUTH_AUDIENCE is set but empty: give it a value, or unset it']);
    // Its key left blank, the issuer and a HOST off loopback are not said to be without one ("neither AUTH_JWT_SECRET
    // nor AUTH_JWKS_URL is" set, right below the line saying it is): the one problem is the blank value.
    assert.deepEqual(configProblems({ AUTH_JWT_SECRET: ' ', AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'app', HOST: '0.0.0.0' }), [
      'AUTH_JWT_SECRET is set but empty: give it a value, or unset it',
    ]);
  });

  test('AUTH_AUDIENCE may list several audiences, separated by commas; an empty one in the list stops start-up', async () => {
    // Azure AD's v1 tokens carry `api://<app id>` or the bare app id, as the client asked for it: one API, two audiences.
    const env = { AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: 'api://app-id , app-id' };
    const { auth } = loadConfig(env);
    assert.deepEqual(auth.audience, ['api://app-id', 'app-id']);
    assert.equal(loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: 'https://api.example.com' }).auth.audience, 'https://api.example.com');
    for (const listed of ['a,,b', 'a,', ',a', 'a, ,b']) {
      assert.deepEqual(configProblems({ AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: listed }), [
        `AUTH_AUDIENCE=${listed} lists an empty audience: separate audiences by single commas, with none at either end`,
      ]);
    }
    const stack = await startAuthStack({ auth });
    try {
      const token = (aud: string | string[]) => hsToken({ aud, scope: 'contextio:admin' });
      for (const aud of ['api://app-id', 'app-id', ['https://graph.example', 'app-id']]) {
        const response = await stack.gql('{ accounts { nodes { id } } }', await token(aud));
        assert.deepEqual(response.body, { data: { accounts: { nodes: [] } } }, `a token for ${JSON.stringify(aud)} is accepted`);
      }
      const other = await stack.gql('{ accounts { nodes { id } } }', await token('api://other-app'));
      assert.equal(other.status, 401);
      assert.equal(other.body.errors?.[0]?.message, 'The token is meant for another audience');
      const slash = await stack.gql('{ accounts { nodes { id } } }', await token('app-id/'));
      assert.equal(slash.body.errors?.[0]?.message, 'The token is meant for another audience: its "aud" and AUTH_AUDIENCE differ only by a trailing slash');
      assert.deepEqual(stack.upstreamCalls(), ['GET /accounts', 'GET /accounts', 'GET /accounts'], 'the refused tokens cost no upstream call');
    } finally {
      await stack.close();
    }
  });

  test('AUTH_ISSUER without a key would check nothing', () => {
    assert.match(configProblems({ AUTH_ISSUER: 'https://issuer.test' }).join('\n'), /AUTH_ISSUER is set but neither/);
  });

  test('defaults: no CORS origins; introspection on in open mode and development, off otherwise', () => {
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.equal(loadConfig({}).introspection, true);
    assert.equal(loadConfig({ AUTH_JWT_SECRET: SECRET }).introspection, false);
    assert.equal(loadConfig({ AUTH_JWT_SECRET: SECRET, NODE_ENV: 'development' }).introspection, true);
    assert.equal(loadConfig({ AUTH_JWT_SECRET: SECRET, INTROSPECTION: 'true' }).introspection, true);
    // INTROSPECTION=false turns it off where it would be on.
    assert.equal(loadConfig({ INTROSPECTION: 'false' }).introspection, false);
    assert.equal(loadConfig({ AUTH_JWT_SECRET: SECRET, NODE_ENV: 'development', INTROSPECTION: 'false' }).introspection, false);
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://app.example.com,http://localhost:5173/' }).corsOrigins, [
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });
});

/** The codes of a JSON answer's errors. */
const codesOf = (body: unknown) => ((body as { errors?: Array<{ extensions?: { code?: string } }> }).errors ?? []).map((e) => e.extensions?.code);

describe('CORS and introspection with auth on', () => {
  let stack: AuthStack;
  let admin: string;
  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET }, corsOrigins: ['https://app.example.com'] });
    admin = await hsToken({ scope: 'contextio:admin' });
  });
  after(() => stack.close());

  const preflight = (origin: string) =>
    fetch(stack.gateway.url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });

  test('a preflight from an allowed origin is answered with the methods and headers a frontend needs', async () => {
    const response = await preflight('https://app.example.com');
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.deepEqual(response.headers.get('access-control-allow-methods')?.split(', ').sort(), ['GET', 'OPTIONS', 'POST']);
    // Every header a frontend sends: the token, the JSON body, a request id to trace, Apollo's CSRF-preflight
    // ones, and what client libraries add once configured (Apollo Client's name and version, tracing).
    assert.deepEqual(response.headers.get('access-control-allow-headers')?.split(', ').sort(), [
      'apollo-require-preflight',
      'apollographql-client-name',
      'apollographql-client-version',
      'authorization',
      'baggage',
      'content-type',
      'newrelic',
      'sentry-trace',
      'traceparent',
      'tracestate',
      'x-apollo-operation-name',
      'x-datadog-origin',
      'x-datadog-parent-id',
      'x-datadog-sampling-priority',
      'x-datadog-trace-id',
      'x-request-id',
    ]);
    // Reused by the browser for 10 minutes, not preflighted again before each request.
    assert.equal(response.headers.get('access-control-max-age'), '600');
    assert.match(response.headers.get('vary') ?? '', /Origin/);
    assert.equal(response.headers.get('access-control-allow-credentials'), null);
    // As an OPTIONS answer names the methods the resource has (RFC 9110 §9.3.7), as its 405s do.
    assert.equal(response.headers.get('allow'), 'GET, POST, OPTIONS');
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('an answer varies by Origin (CORS) and by Accept (its media type)', async () => {
    const answer = await fetch(`${stack.gateway.url}?query=%7B__typename%7D`, { headers: { origin: 'https://app.example.com', authorization: `Bearer ${admin}` } });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('vary'), 'Origin, Accept');
  });

  test('a preflight from another origin gets no CORS headers', async () => {
    const response = await preflight('https://evil.example.com');
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
    assert.equal(response.headers.get('access-control-allow-headers'), null);
    assert.equal(response.headers.get('allow'), 'GET, POST, OPTIONS');
  });

  test('a preflight of a path not served, from an allowed origin, is granted: the request that follows reads its 404, not a CORS failure', async () => {
    const origin = 'https://app.example.com';
    // A frontend configured with the gateway's URL without /graphql, or with a trailing slash: every request a
    // GraphQL client sends (JSON, a token) is preflighted, and a refused preflight shows only a CORS error.
    for (const url of [`${stack.gateway.origin}/`, `${stack.gateway.url}/`]) {
      const granted = await fetch(url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      assert.equal(granted.status, 204, url);
      assert.equal(granted.headers.get('access-control-allow-origin'), origin, url);
      assert.match(granted.headers.get('access-control-allow-headers') ?? '', /\bauthorization\b.*\bcontent-type\b/, url);
      const answer = await fetch(url, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      assert.equal(answer.status, 404, url);
      assert.equal(answer.headers.get('access-control-allow-origin'), origin, url);
      const { errors } = (await answer.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
      assert.equal(errors[0]?.extensions.code, 'NOT_FOUND', url);
      assert.match(errors[0]?.message ?? '', /GraphQL is served on \/graphql/, url);
    }
    // Another origin's preflight, or an OPTIONS that is no preflight, is the 404 of a path not served.
    const refused = await fetch(`${stack.gateway.origin}/`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });
    assert.equal(refused.status, 404);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    const plain = await fetch(`${stack.gateway.origin}/`, { method: 'OPTIONS', headers: { origin } });
    assert.equal(plain.status, 404);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('an actual request from an allowed origin carries the CORS headers, refusals included', async () => {
    const ok = await fetch(stack.gateway.url, {
      method: 'POST',
      headers: { origin: 'https://app.example.com', 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const refused = await fetch(stack.gateway.url, {
      method: 'POST',
      headers: { origin: 'https://app.example.com', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('access-control-allow-origin'), 'https://app.example.com');
    // What a frontend reads of a refusal: the request id, the 401's challenge, when to retry a 429 or 503.
    assert.deepEqual(refused.headers.get('access-control-expose-headers')?.split(', ').sort(), ['retry-after', 'www-authenticate', 'x-request-id']);
  });

  test('the IDE\'s page and files carry no CORS grant, even asked for from an allowed origin: every other origin gets the same cached file', async () => {
    const origin = 'https://app.example.com';
    // The page (503 without a build), one of its files (404 unless built), and the page's trailing-slash redirect.
    const answers = [
      await fetch(stack.gateway.url, { headers: { origin, accept: 'text/html' } }),
      await fetch(`${stack.gateway.origin}/graphql/ide/app.js`, { headers: { origin } }),
      await fetch(`${stack.gateway.url}/`, { headers: { origin, accept: 'text/html' }, redirect: 'manual' }),
    ];
    for (const answer of answers) {
      assert.match(answer.headers.get('content-type') ?? '', /^text\/(html|plain)/, answer.url);
      assert.equal(answer.headers.get('access-control-allow-origin'), null, answer.url);
      assert.equal(answer.headers.get('access-control-expose-headers'), null, answer.url);
    }
    // The endpoint's own answers, beside them, still carry it.
    const refusal = await fetch(`${stack.gateway.origin}/nowhere`, { headers: { origin } });
    assert.equal(refusal.headers.get('access-control-allow-origin'), origin);
  });

  test('any Host is served: behind a load balancer the name is the public one, and a token is needed anyway', async () => {
    const answer = await postWithHost(stack.gateway.url, 'graphql.example.com', JSON.stringify({ query: '{ __typename }' }));
    assert.equal(answer.status, 401); // no token: refused for that, not for the name
    assert.match(answer.body, /UNAUTHENTICATED/);
  });

  test('a GET a cross-site page could send without a preflight is refused: 401, as any request without a token', async () => {
    const get = (headers: Record<string, string>) => fetch(`${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`, { headers });
    for (const headers of [{}, { authorization: 'Basic YWxpY2U6c2VjcmV0' }] as Record<string, string>[]) {
      // Nothing, or credentials a browser attaches by itself (cached Basic auth). Apollo's CSRF check used to
      // answer these first, a 400 about preflight headers, where the contract says a missing token is
      // UNAUTHENTICATED.
      const response = await get(headers);
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="contextio-graphql"');
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      assert.deepEqual(body.errors.map((e) => e.extensions.code), ['UNAUTHENTICATED']);
    }
    // Answered in the media type the client asked for, as every GraphQL answer is.
    const typed = await get({ accept: 'application/graphql-response+json' });
    assert.equal(typed.status, 401);
    assert.match(typed.headers.get('content-type') ?? '', /^application\/graphql-response\+json/);
    // A Bearer token no browser attaches on its own: the request was preflighted, or comes from no browser.
    const withToken = await get({ authorization: `Bearer ${admin}` });
    assert.equal(withToken.status, 200);
    assert.deepEqual(await withToken.json(), { data: { __typename: 'Query' } });
  });

  test('a request with nothing to run is told first that it needs a token: 401, where a caller with one gets 400, 406 or 415', async () => {
    const withQuery = `${stack.gateway.url}?query=${encodeURIComponent('{ __typename }')}`;
    const requests: Array<[string, string, Record<string, string>, number]> = [
      ['no query', stack.gateway.url, { accept: 'application/json' }, 400],
      ['no JSON answer accepted', withQuery, { accept: 'application/xml' }, 406],
      ['a GET typed otherwise than JSON', withQuery, { accept: 'application/json', 'content-type': 'text/plain' }, 415],
      // More line breaks than MAX_QUERY_TOKENS (3,000): refused before Apollo reads it, for a caller with a token.
      ['a GET of a document of too many lines', `${stack.gateway.url}?query=${encodeURIComponent(`${'\n'.repeat(3_001)}{ __typename }`)}`, { accept: 'application/json' }, 400],
    ];
    for (const [what, url, headers, refused] of requests) {
      assert.equal((await fetch(url, { headers })).status, 401, what);
      assert.equal((await fetch(url, { headers: { ...headers, authorization: `Bearer ${admin}` } })).status, refused, what);
    }
  });

  test('verifies the token before reading the body: without one, a body too large or not JSON is 401, and the connection stays usable', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: Buffer | string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string; reused: boolean; closes: boolean }>((resolve, reject) => {
        const req = request(stack.gateway.url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body: text, reused: req.reusedSocket, closes: res.headers.connection === 'close' }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      // Read first, these were buffered (up to MAX_BODY_BYTES each) and parsed for anyone: 400 and 413.
      const notJson = await post('{"query": ');
      assert.equal(notJson.status, 401);
      assert.match(notJson.body, /UNAUTHENTICATED/);
      // Node discards the unread body: the connection serves the next request (a token refreshed after a 401).
      const ok = await post(JSON.stringify({ query: '{ __typename }' }), { authorization: `Bearer ${admin}` });
      assert.deepEqual([ok.status, JSON.parse(ok.body), ok.reused], [200, { data: { __typename: 'Query' } }, true]);
      // With a token the body is read and checked as before.
      assert.equal((await post('{"query": ', { authorization: `Bearer ${admin}` })).status, 400);
      const large = await post(Buffer.alloc(2 * 1024 * 1024, 0x20));
      assert.equal(large.status, 401);
      assert.match(large.body, /UNAUTHENTICATED/);
      // A chunked body, of no declared length, is read to its end up to MAX_BODY_BYTES (the default's 1 MiB)
      // and thrown away, the connection kept; past it the rest is left unread and the connection closed.
      const chunked = { 'transfer-encoding': 'chunked' };
      assert.deepEqual(await post(Buffer.alloc(DEFAULTS.maxBodyBytes, 0x20), chunked).then((r) => [r.status, r.closes]), [401, false]);
      assert.equal((await post(JSON.stringify({ query: '{ __typename }' }), { authorization: `Bearer ${admin}` })).reused, true);
      assert.deepEqual(await post(Buffer.alloc(DEFAULTS.maxBodyBytes + 1, 0x20), chunked).then((r) => [r.status, r.closes]), [401, true]);
      // Nor is its content type looked at: a form's, or none (curl -d), is no 400 about CSRF preflights.
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
        const typed = await fetch(stack.gateway.url, { method: 'POST', headers: type ? { 'content-type': type } : {}, body: '{"query":"{__typename}"}' });
        assert.deepEqual([type, typed.status, codesOf(await typed.json())], [type, 401, ['UNAUTHENTICATED']]);
      }
      assert.deepEqual(stack.upstreamCalls(), []);
    } finally {
      agent.destroy();
    }
  });

  test('reads a body without a token in no more pieces than a body with one: past 16,384 (MAX_BODY_BYTES / 64), 401 and the connection closed', async () => {
    const head = 'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n';
    const inBytes = (length: number) => '1\r\nx\r\n'.repeat(length);
    // As many as a body may come in: read and dropped, the connection serving the next request.
    const read = await exchange(stack.gateway.url, `${head}\r\n${inBytes(16_384)}0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    assert.match(read, /^HTTP\/1\.1 401 .*"code":"UNAUTHENTICATED".*HTTP\/1\.1 200 .*\{"status":"ok"\}$/s);
    // One more, never ended: answered there, the rest unread, the connection closed by the gateway.
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('error', () => {}); // the gateway may reset a connection it closed while the body still came
      socket.write(`${head}\r\n${inBytes(16_385)}`);
      await once(socket, 'close');
      assert.match(received, /^HTTP\/1\.1 401 .*\r\nconnection: close\r\n.*"code":"UNAUTHENTICATED"/is);
    } finally {
      socket.destroy();
    }
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('does not ask a client waiting for 100 Continue to send a body it would refuse for want of a token: 401 at once, the connection closed', async () => {
    const received = await exchange(
      stack.gateway.url,
      'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 500000\r\n\r\n',
    );
    assert.match(received, /^HTTP\/1\.1 401 .*"code":"UNAUTHENTICATED"/s);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('introspection is off by default with auth on, even for an admin', async () => {
    const response = await stack.gql(INTROSPECT, admin);
    assert.deepEqual(codes(response), ['GRAPHQL_VALIDATION_FAILED']);
    // Named as the operator's setting, not as Apollo's constructor option.
    assert.match(response.body.errors![0]!.message, /Introspection is off on this gateway \(its operator can set INTROSPECTION=true\)/);
  });

  /** The messages of the errors answering a misspelt field and a misspelt field of a variable's input object. */
  const misspelt = async (gql: typeof stack.gql) => [
    ...messages(await gql('{ acount(id: "a") { id } }', admin)),
    ...messages(await gql('mutation ($input: UpdateAccountInput!) { updateAccount(id: "a", input: $input) { account { id } } }', admin, { input: { fristName: 'x' } })),
  ];

  test('with introspection off, an error names no field the caller did not (graphql-js suggests the nearest ones)', async () => {
    assert.deepEqual(await misspelt(stack.gql), [
      'Cannot query field "acount" on type "Query".',
      'Variable "$input" got invalid value { fristName: "x" }; Field "fristName" is not defined by type "UpdateAccountInput".',
    ]);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test("with introspection off, only graphql-js's suggestion is cut, not a caller's value that says \"Did you mean\" too", async () => {
    const update = 'mutation ($input: UpdateAccountInput!) { updateAccount(id: "a", input: $input) { account { id } } }';
    // Several: each was a start the suggestion was looked for from, to the end of the message.
    const value = Array.from({ length: 20 }, () => 'Did you mean x').join(' ');
    const response = await stack.gql(update, admin, { input: { fristName: value } });
    assert.deepEqual(messages(response), [
      `Variable "$input" got invalid value { fristName: "${value}" }; Field "fristName" is not defined by type "UpdateAccountInput".`,
    ]);
    // A message graphql-js suggested nothing in (it ends with no question mark) keeps every word of the caller's.
    const quoted = await stack.gql('query ($n: Int) { accounts(first: $n) { nodes { id } } }', admin, { n: 'Did you mean x' });
    assert.deepEqual(messages(quoted), ['Variable "$n" got invalid value "Did you mean x"; Int cannot represent non-integer value: "Did you mean x"']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('with introspection off, graphql-js is not asked for the names nearest a misspelt one at all (for a name of 1 MiB, ~150 ms of the event loop)', async () => {
    // Counted where graphql-js's validation rules call it, through its module's exports at each call.
    const suggestions = createRequire(import.meta.url)('graphql/jsutils/suggestionList.js') as { suggestionList: (...args: unknown[]) => unknown };
    const suggestionList = suggestions.suggestionList;
    let calls = 0;
    suggestions.suggestionList = (...args) => (calls++, suggestionList(...args));
    const open = await startAuthStack({ auth: { jwtSecret: SECRET }, introspection: true });
    try {
      // A field, a type, an argument and an enum value, each misspelt: each rule that suggests.
      const misspeltNames = ['{ acount(id: "a") { id } }', 'query ($v: Strin) { __typename }', '{ account(idd: "a") { id } }', '{ accounts(filter: { status: OKK }) { nodes { id } } }'];
      for (const query of misspeltNames) assert.deepEqual([...new Set(codes(await stack.gql(query, admin)))], ['GRAPHQL_VALIDATION_FAILED']);
      assert.equal(calls, 0);
      // Whoever may read the schema is still helped with its names.
      for (const query of misspeltNames) assert.match(messages(await open.gql(query, admin))[0]!, /Did you mean/);
      assert.ok(calls >= misspeltNames.length, `${calls} calls`);
    } finally {
      suggestions.suggestionList = suggestionList;
      await open.close();
    }
  });

  test('INTROSPECTION=true turns it on, for authenticated callers only', async () => {
    const open = await startAuthStack({ auth: { jwtSecret: SECRET }, introspection: true });
    try {
      assert.deepEqual((await open.gql(INTROSPECT, admin)).body, { data: { __schema: { queryType: { name: 'Query' } } } });
      assert.equal((await open.gql(INTROSPECT)).status, 401);
      // Whoever may read the schema is helped with its names.
      assert.deepEqual(await misspelt(open.gql), [
        'Cannot query field "acount" on type "Query". Did you mean "account" or "accounts"?',
        'Variable "$input" got invalid value { fristName: "x" }; Field "fristName" is not defined by type "UpdateAccountInput". Did you mean "firstName" or "lastName"?',
      ]);
    } finally {
      await open.close();
    }
  });
});

describe('MAX_OPERATIONS_IN_FLIGHT with auth on', () => {
  test('a caller without a valid token is answered 401 while the operations running fill the cap; one with a token, 503', async () => {
    const stack = await startAuthStack({ auth: { jwtSecret: SECRET }, maxOperationsInFlight: 1 });
    const hung = new AbortController();
    try {
      const admin = await hsToken({ scope: 'contextio:admin' });
      const stuck = stack.emulator.store.createAccount({ email: 'stuck@example.com' }).id;
      stack.emulator.addFault({ path: `/accounts/${stuck}`, hang: true });
      const pending = fetch(stack.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: `{ account(id: "${stuck}") { id } }` }),
        signal: hung.signal,
      }).catch(() => undefined);
      await eventually(() => stack.emulator.inFlight === 1);
      const withoutToken = await stack.gql('{ __typename }');
      assert.equal(withoutToken.status, 401);
      assert.deepEqual(codes(withoutToken), ['UNAUTHENTICATED']);
      const withToken = await stack.gql('{ __typename }', admin);
      assert.equal(withToken.status, 503);
      assert.deepEqual(codes(withToken), ['SERVICE_UNAVAILABLE']);
      hung.abort();
      await pending;
    } finally {
      hung.abort();
      await stack.close();
    }
  });

  test('every place is given back after callers refused for their token, over POST and GET, and mutations refused for a caller’s write budget or scope', async () => {
    const cap = 2;
    const stack = await startAuthStack({ auth: { jwtSecret: SECRET }, maxOperationsInFlight: cap, callerWritesPerHour: 1 });
    try {
      const admin = { authorization: `Bearer ${await hsToken({ scope: 'contextio:admin' })}` };
      const user = await hsToken({ sub: 'user-1' });
      const theirs = stack.emulator.store.createAccount({ email: 'theirs@example.com' }).id;
      const expired = await hsToken({ scope: 'contextio:admin', exp: Math.floor(Date.now() / 1000) - 3600 });
      const forged = await hsToken({ scope: 'contextio:admin' }, `${SECRET}-not-this-one`);
      const createToken = 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }';
      assert.deepEqual(codes(await stack.gql(createToken, user)), [], 'the one write of the hour');
      for (let i = 0; i <= cap; i++) {
        for (const token of [undefined, expired, forged]) {
          assert.equal((await stack.gql('{ __typename }', token)).status, 401);
          const get = await fetch(`${stack.gateway.url}?query=%7B__typename%7D`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
          assert.equal(get.status, 401, await get.text());
        }
        const overBudget = await stack.gql(createToken, user);
        assert.equal(overBudget.status, 429);
        assert.deepEqual(codes(overBudget), ['RATE_LIMITED']);
        assert.deepEqual(codes(await stack.gql(`{ account(id: "${theirs}") { id } }`, user)), ['FORBIDDEN']);
      }
      await assertEveryPlaceFree(stack, cap, admin);
    } finally {
      await stack.close();
    }
  });

  test('every place is given back after clients that left while their token was verified', async () => {
    const cap = 2;
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url }, maxOperationsInFlight: cap });
    const sockets: Socket[] = [];
    try {
      const token = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuedAt().setExpirationTime('10m').sign(privateKey);
      let arrived = 0;
      stack.gateway.httpServer.on('request', () => (arrived += 1));
      const held = jwks.hold();
      // Each waits for the key set the first one's verification fetches: a GET whole, a POST with its body in
      // part and in full.
      const body = JSON.stringify({ query: '{ __typename }' });
      const requests = [
        `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n\r\n`,
        `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: 100\r\n\r\n{"query"`,
        `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      ];
      for (let i = 0; i <= cap; i++) {
        for (const request of requests) {
          const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
          socket.on('error', () => {});
          socket.write(request);
          sockets.push(socket);
        }
      }
      await held.arrived;
      await eventually(() => arrived === sockets.length, { what: 'every request arrived, its token being verified' });
      for (const socket of sockets) socket.destroy();
      held.release();
      // Each was an operation that never ran: a request whose whole body had come is logged as one whose
      // client went away, the others as requests that never arrived whole (once their verification ended).
      await eventually(() => stack.logs.filter((line) => line.includes('"clientWentAway":true') || line.includes('the client left before its request was complete')).length === sockets.length, {
        what: 'every client gone while its token was verified, logged',
      });
      await assertEveryPlaceFree(stack, cap, { authorization: `Bearer ${token}` });
    } finally {
      for (const socket of sockets) socket.destroy();
      await stack.close();
      await jwks.close();
    }
  });

  test('no room for bodies is held for a client that left, its body whole, while its token was verified', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    // Room for one body of the largest size: a chunked one, counted as that size, needs all of it.
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url }, maxBodyBytesInFlight: DEFAULTS.maxBodyBytes });
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    try {
      const token = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuedAt().setExpirationTime('10m').sign(privateKey);
      const arrived = once(stack.gateway.httpServer, 'request');
      const held = jwks.hold();
      const body = JSON.stringify({ query: '{ __typename }' });
      socket.on('error', () => {});
      socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      await held.arrived;
      await arrived;
      socket.destroy();
      await eventually(() => stack.logs.some((line) => line.includes('"clientWentAway":true')), { what: 'the client gone while its token was verified, logged' });
      held.release();
      const chunked = await fetch(stack.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: new Blob([body]).stream(),
        duplex: 'half',
      } as RequestInit);
      assert.equal(chunked.status, 200, await chunked.text());
    } finally {
      socket.destroy();
      await stack.close();
      await jwks.close();
    }
  });
});

describe('npm run token', () => {
  const script = fileURLToPath(new URL('../../scripts/token.ts', import.meta.url));
  const run = (args: string[], env: Record<string, string | undefined>) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { PATH: process.env['PATH'], ...env },
    });

  test('mints an HS256 token the gateway accepts, with iss/aud when configured, and prints only the token', async () => {
    const env = { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'gw' };
    const { stdout } = await run(['--accounts', 'a1, a2', '--expires', '15m', '--sub', 'ada'], env);
    assert.match(stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { payload, protectedHeader } = await jwtVerify(stdout.trim(), new TextEncoder().encode(SECRET), {
      issuer: 'https://issuer.test',
      audience: 'gw',
    });
    assert.equal(protectedHeader.alg, 'HS256');
    assert.deepEqual(payload['accounts'], ['a1', 'a2']);
    assert.equal(payload.sub, 'ada');
    assert.ok(payload.exp! - payload.iat! === 15 * 60, 'the token lasts 15 minutes');

    const stack = await startAuthStack({ auth: { jwtSecret: SECRET, issuer: 'https://issuer.test', audience: 'gw' } });
    try {
      const admin = (await run(['--admin'], env)).stdout.trim();
      assert.equal(decodeJwt(admin)['scope'], 'contextio:admin');
      const response = await stack.gql('{ accounts { nodes { id } } }', admin);
      assert.deepEqual(response.body, { data: { accounts: { nodes: [] } } });
    } finally {
      await stack.close();
    }
  });

  test('mints a token for the first audience when AUTH_AUDIENCE lists several', async () => {
    const { stdout } = await run(['--admin'], { AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: ' api://app-id, app-id' });
    assert.equal(decodeJwt(stdout.trim()).aud, 'api://app-id');
  });

  test('mints with --sub alone the token of a user with no account yet, who may start a connect flow', async () => {
    const { stdout } = await run(['--sub', 'newcomer'], { AUTH_JWT_SECRET: SECRET });
    const claims = decodeJwt(stdout.trim());
    assert.equal(claims.sub, 'newcomer');
    assert.equal(claims['scope'], undefined);
    assert.equal(claims['accounts'], undefined);
    const stack = await startAuthStack({ auth: { jwtSecret: SECRET } });
    try {
      const response = await stack.gql('mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }', stdout.trim());
      assert.equal(response.body.errors, undefined);
    } finally {
      await stack.close();
    }
  });

  test('refuses clearly without AUTH_JWT_SECRET, or without --admin/--accounts/--sub', async () => {
    await assert.rejects(run(['--admin'], {}), (error: { code: number; stderr: string; stdout: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr, /AUTH_JWT_SECRET is not set/);
      assert.equal(error.stdout, '');
      return true;
    });
    await assert.rejects(run([], { AUTH_JWT_SECRET: SECRET }), /give --admin, --accounts with at least one id, or --sub/);
    await assert.rejects(run(['--admin', '--expires', 'soon'], { AUTH_JWT_SECRET: SECRET }), /--expires must be a duration/);
    // jose takes these as durations too; each would mint a token expired as it is issued.
    for (const expires of ['0s', '1h ago', '--expires=-5m']) {
      const args = expires.startsWith('--') ? ['--admin', expires] : ['--admin', '--expires', expires];
      await assert.rejects(run(args, { AUTH_JWT_SECRET: SECRET }), (error: { code: number; stderr: string; stdout: string }) => {
        assert.match(error.stderr, /--expires must be a positive duration .*the token would be expired when issued/);
        assert.equal(error.stdout, '', 'no token printed');
        return true;
      });
    }
  });

  test('refuses a secret shorter than the gateway accepts, printing no token', async () => {
    // The gateway will not start with it (AUTH_JWT_SECRET must be at least 32 bytes), so a token signed with it
    // would verify nowhere; the secret itself is not quoted.
    await assert.rejects(run(['--admin'], { AUTH_JWT_SECRET: 'short-secret' }), (error: { code: number; stderr: string; stdout: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr, /AUTH_JWT_SECRET must be at least 32 bytes long/);
      assert.doesNotMatch(error.stderr, /short-secret/);
      assert.equal(error.stdout, '');
      return true;
    });
  });
});

/** A POST whose Host header says `host` (fetch would not let a test set it), as a rebound DNS name would. */
async function postWithHost(url: string, host: string, body: string): Promise<{ status: number; body: string; cacheControl: string | undefined }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { host, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text, cacheControl: res.headers['cache-control'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('shutdown while a token is being verified', () => {
  test('a request whose key set fetch is still out at the cut logs its operation line, cutAtShutdown, before close() ends', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
    const timer = manualTimer();
    const stack = await startAuthStackWithKeySet(jwks, { auth: { jwksUrl: jwks.url }, shutdownGraceMs: 1_000, shutdownTimer: timer.timer });
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    socket.on('error', () => {});
    const held = jwks.hold();
    try {
      const token = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuedAt().setExpirationTime('10m').sign(privateKey);
      const body = JSON.stringify({ query: '{ __typename }' });
      const requestId = 'verifying-at-shutdown';
      socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-request-id: ${requestId}\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      await held.arrived;
      const closing = stack.gateway.close();
      await timer.asked();
      timer.fireFirst(); // the grace period
      timer.fireFirst(); // the cut, a second later
      await closing;
      const lines = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'operation' && line['requestId'] === requestId);
      assert.deepEqual(
        lines.map((line) => [line['status'], line['cutAtShutdown']]),
        [[null, true]],
        'its line, written before close() ends (the process exits next)',
      );
    } finally {
      held.release();
      socket.destroy();
      await stack.close();
      await jwks.close();
    }
  });
});
