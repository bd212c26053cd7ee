import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { holdOperations } from '../helpers/admission.ts';
import { exchange } from '../helpers/net.ts';
import { hsToken, SECRET, startAuthStack, type AuthStack } from './helpers.ts';

/*
 * A browser frontend reads an answer only when it carries its CORS grant: without it, a refusal (a 413, a 503 to
 * retry) reaches its code as an opaque network failure. Every answer the gateway makes itself, before or beside
 * Apollo, is checked here from an allowed origin and from another, over real HTTP.
 */

const ALLOWED = 'https://app.example.com';
const OTHER = 'https://evil.example.com';

/** What the checks read of an answer: its status and headers (names in lowercase). */
interface Answered {
  status: number;
  header(name: string): string | null;
}

async function fetched(url: string, init: RequestInit): Promise<Answered> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000), ...init });
  await response.arrayBuffer();
  return { status: response.status, header: (name) => response.headers.get(name) };
}

/** The first answer to the raw HTTP/1.1 `bytes`, read once the gateway closed the connection. */
async function exchanged(url: string, bytes: string): Promise<Answered> {
  const text = await exchange(url, bytes);
  const [statusLine, ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
  const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine?.split(' ')[1]), header: (name) => headers.get(name) ?? null };
}

/** What is missing of the grant `origin` should get on `answer` (an allowed one), or what it got that it should not. */
function corsProblems(answer: Answered, origin: string, allowed: boolean): string[] {
  const problems: string[] = [];
  const grant = answer.header('access-control-allow-origin');
  if (allowed && grant !== origin) problems.push(`Access-Control-Allow-Origin ${grant}`);
  if (!allowed && grant !== null) problems.push(`Access-Control-Allow-Origin ${grant} for another origin`);
  if (!/(^|,)\s*origin\s*(,|$)/i.test(answer.header('vary') ?? '')) problems.push(`Vary ${answer.header('vary')}`);
  const exposed = (answer.header('access-control-expose-headers') ?? '').split(/,\s*/);
  if (allowed) {
    for (const name of ['x-request-id', 'retry-after']) if (!exposed.includes(name)) problems.push(`${name} not exposed`);
  } else if (answer.header('access-control-expose-headers') !== null) problems.push('headers exposed to another origin');
  return problems;
}

type Case = [what: string, status: number, send: (origin: string) => Promise<Answered>];

describe('CORS on the answers the gateway makes itself', () => {
  const RECEIVE_TIMEOUT_MS = 1_000;
  let stack: AuthStack;
  let token: string;
  before(async () => {
    stack = await startAuthStack({ auth: { jwtSecret: SECRET }, corsOrigins: [ALLOWED], maxOperationsInFlight: 1, requestReceiveTimeoutMs: RECEIVE_TIMEOUT_MS });
    token = await hsToken({ scope: 'contextio:admin' });
  });
  after(() => stack.close());

  const url = () => stack.gateway.url;
  const post = (origin: string, body: string, headers: Record<string, string> = {}) =>
    fetched(url(), { method: 'POST', headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers }, body });
  const typename = JSON.stringify({ query: '{ __typename }' });
  /** Raw bytes of a request to `target` from `origin`, with `head` for its other header lines. */
  const raw = (origin: string, requestLine: string, head: string, body = '') => exchanged(url(), `${requestLine}\r\norigin: ${origin}\r\n${head}\r\n${body}`);

  const cases: Case[] = [
    ['404 for another path', 404, (origin) => fetched(new URL('/nope', url()).href, { headers: { origin } })],
    ['405 for another method', 405, (origin) => fetched(url(), { method: 'PUT', headers: { origin, 'content-type': 'application/json' }, body: typename })],
    ['401 without a token', 401, (origin) => post(origin, typename, { authorization: '' })],
    ['415 for a body not JSON by its type', 415, (origin) => post(origin, typename, { 'content-type': 'text/plain' })],
    ['400 for malformed JSON', 400, (origin) => post(origin, '{"query"')],
    ['413 for a body over MAX_BODY_BYTES', 413, (origin) => post(origin, JSON.stringify({ query: '{ __typename }', pad: 'x'.repeat(1024 * 1024) }))],
    ['406 for an Accept the gateway cannot answer', 406, (origin) => post(origin, typename, { accept: 'image/png' })],
    ['400 for a GET without a query', 400, (origin) => fetched(url(), { headers: { origin, authorization: `Bearer ${token}` } })],
    ['400 for a document Apollo cannot parse', 400, (origin) => post(origin, JSON.stringify({ query: '{' }))],
    ['405 on /healthz', 405, (origin) => fetched(new URL('/healthz', url()).href, { method: 'POST', headers: { origin }, body: '' })],
    ['417 for an expectation other than 100-continue', 417, (origin) => raw(origin, 'GET /graphql HTTP/1.1', 'host: 127.0.0.1\r\nexpect: something-else\r\n')],
    ['400 for an HTTP/1.1 request without Host', 400, (origin) => raw(origin, 'GET /graphql HTTP/1.1', 'connection: close\r\n')],
    ['400 for a request target no URL parser accepts', 400, (origin) => raw(origin, 'GET http://[ HTTP/1.1', 'host: 127.0.0.1\r\nconnection: close\r\n')],
    [
      '408 for a body that did not arrive in time',
      408,
      (origin) => raw(origin, 'POST /graphql HTTP/1.1', `host: 127.0.0.1\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n`, '{"query":'),
    ],
    [
      '400 for a chunked body whose framing is broken',
      400,
      (origin) => raw(origin, 'POST /graphql HTTP/1.1', `host: 127.0.0.1\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n`, '5\r\n{"que\r\nzz\r\n'),
    ],
  ];

  /** Each case's problems, by what it is: all of them at once, so that a failure names every answer lacking its grant. */
  async function problemsOf(origin: string, allowed: boolean): Promise<Record<string, string[]>> {
    const found: Record<string, string[]> = {};
    for (const [what, status, send] of cases) {
      const answer = await send(origin);
      const problems = answer.status === status ? corsProblems(answer, origin, allowed) : [`status ${answer.status}`];
      if (problems.length > 0) found[what] = problems;
    }
    return found;
  }

  test('each carries the CORS grant for an allowed origin: its origin, Vary: Origin, and the headers a frontend reads exposed', async () => {
    assert.deepEqual(await problemsOf(ALLOWED, true), {});
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  test('none grants another origin anything, and each still varies by Origin', async () => {
    assert.deepEqual(await problemsOf(OTHER, false), {});
  });

  test('a 431 for headers too large carries none: Node refuses it before any header of it can be read', async () => {
    // The limitation client-error.ts documents: a frontend sees a network failure; it sends a long document by POST.
    const answer = await raw(ALLOWED, 'GET /graphql HTTP/1.1', `host: 127.0.0.1\r\nx-pad: ${'x'.repeat(20 * 1024)}\r\n`);
    assert.equal(answer.status, 431);
    assert.equal(answer.header('access-control-allow-origin'), null);
  });

  test('the IDE’s page carries no grant: a browser opens it from the gateway’s own origin', async () => {
    const page = await fetched(url(), { headers: { origin: ALLOWED, accept: 'text/html' } });
    assert.match(page.header('content-type') ?? '', /^text\/html/);
    assert.equal(page.header('access-control-allow-origin'), null);
  });

  test('the 503 of a load cap carries the grant, Retry-After exposed to read when to retry', async () => {
    const held = await holdOperations(stack, 1, { authorization: `Bearer ${token}` });
    try {
      const refused = await post(ALLOWED, typename);
      assert.equal(refused.status, 503);
      assert.equal(refused.header('retry-after'), '1');
      assert.deepEqual(corsProblems(refused, ALLOWED, true), []);
      const other = await post(OTHER, typename);
      assert.equal(other.status, 503);
      assert.deepEqual(corsProblems(other, OTHER, false), []);
    } finally {
      await held.release();
    }
  });
});

describe('CORS on open mode’s refusal of a host name that is not loopback', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ corsOrigins: [ALLOWED] });
  });
  after(() => stack.close());

  test('its 403 carries the grant for an allowed origin, and none for another', async () => {
    const send = (origin: string) => exchanged(stack.gateway.url, `POST /graphql HTTP/1.1\r\nhost: rebind.attacker.example\r\norigin: ${origin}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`);
    const allowed = await send(ALLOWED);
    assert.equal(allowed.status, 403);
    assert.deepEqual(corsProblems(allowed, ALLOWED, true), []);
    const other = await send(OTHER);
    assert.equal(other.status, 403);
    assert.deepEqual(corsProblems(other, OTHER, false), []);
  });
});
