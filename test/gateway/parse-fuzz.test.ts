import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../src/http/server.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { Random } from '../helpers/random.ts';
import { postGraphQL, startTestGateway, type GraphQLResponse } from '../helpers/stack.ts';
import {
  ACCOUNT_ID,
  embeddedAccountShape,
  mutate,
  toText,
  validAccount,
  validCreateConnectToken,
  validToken,
  type Json,
} from '../helpers/upstream-mutations.ts';

/**
 * The integration part of test/unit/parse-fuzz.test.ts: mutated upstream answers served by a small upstream
 * of the test's own to a real gateway, under operations that select every field. However malformed an
 * answer, the gateway's answer holds no INTERNAL_SERVER_ERROR, no graphql-js serialization error ("Int cannot
 * represent …", "Enum … cannot represent …") and no stack trace; a refused answer is UPSTREAM_ERROR on the
 * fields that read it, and the fields that read another answer resolve. PARSE_FUZZ_SEED replays a run,
 * PARSE_FUZZ_GATEWAY_CASES widens it.
 */

const SEED = Number(process.env['PARSE_FUZZ_SEED'] ?? 20_261_205);
const CASES = Number(process.env['PARSE_FUZZ_GATEWAY_CASES'] ?? 250);

const SOURCE = 'label email username server port useSsl type status statusMessage syncPeriod authenticationType';
const ACCOUNT = `id username createdAt suspendedAt emailAddresses firstName lastName passwordExpiredAt messageCount fileCount sources { ${SOURCE} }`;
const TOKEN_FIELDS = 'token email createdAt used usedAt expiresAt callbackUrl firstName lastName';
const READ = `{
  account(id: "${ACCOUNT_ID}") { ${ACCOUNT} connectTokens { ${TOKEN_FIELDS} account { ${ACCOUNT} } } }
  connectToken(token: "abcdef0123456789") { ${TOKEN_FIELDS} account { ${ACCOUNT} } }
}`;
const CREATE = `mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/connected" }) { token resourceUrl browserRedirectUrl connectToken { token } } }`;

/** The answers the upstream gives, by route: valid unless the case mutated one. */
type Route = 'account' | 'accountTokens' | 'token' | 'create';
const answers = new Map<Route, string>();

function routeOf(method: string, path: string): Route | undefined {
  if (method === 'POST' && path === '/2.0/connect_tokens') return 'create';
  if (method !== 'GET') return undefined;
  if (path === `/2.0/accounts/${ACCOUNT_ID}`) return 'account';
  if (path === `/2.0/accounts/${ACCOUNT_ID}/connect_tokens`) return 'accountTokens';
  if (path === '/2.0/connect_tokens/abcdef0123456789') return 'token';
  return undefined;
}

function validAnswers(): void {
  answers.set('account', toText(validAccount()));
  answers.set('accountTokens', toText([validToken(true, 'fedcba9876543210'), validToken(false, '0123456789abcdef')]));
  answers.set('token', toText(validToken(true)));
  answers.set('create', toText(validCreateConnectToken()));
}

/** Where each route's answer is read: the errors of a refused one are under these paths only. */
const READ_AT: Record<Route, string[]> = {
  account: ['account', 'connectToken.account', 'account.connectTokens'],
  accountTokens: ['account.connectTokens'],
  token: ['connectToken'],
  create: ['createConnectToken'],
};

function basesOf(route: Route, random: Random): Json {
  if (route === 'account') return validAccount();
  if (route === 'create') return validCreateConnectToken();
  const token = { ...validToken(random.chance(0.7)), ...(random.chance(0.6) ? { account: embeddedAccountShape(random) } : {}) };
  return route === 'token' ? token : [token, validToken(false, '0123456789abcdef')];
}

describe('the gateway in front of an upstream answering mutated JSON (seeded)', () => {
  let upstream: Server;
  let gateway: Gateway;

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      const route = routeOf(req.method ?? '', new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, ''));
      const body = route === undefined ? '{"type":"error","value":"not here"}' : answers.get(route)!;
      res.writeHead(route === undefined ? 404 : route === 'create' ? 201 : 200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const baseUrl = `http://127.0.0.1:${await listenOnLoopback(upstream)}/2.0`;
    gateway = await startTestGateway({ baseUrl, consumerKey: 'key', consumerSecret: 'secret' });
  });

  after(async () => {
    await gateway?.close();
    if (upstream) await closeServer(upstream);
  });

  it('answers every operation with the fields resolved or UPSTREAM_ERROR where the mutated answer is read, never an internal or serialization error', async () => {
    const random = new Random(SEED);
    const failures: string[] = [];
    // Of each route's mutated answers, how many were read (no UPSTREAM_ERROR) and how many refused.
    const tally = new Map<Route, { read: number; refused: number }>();
    for (let index = 0; index < CASES; index++) {
      validAnswers();
      const route = random.pick<Route>(['account', 'account', 'accountTokens', 'token', 'token', 'create']);
      const { value, what } = mutate(random, basesOf(route, random));
      const text = toText(value);
      answers.set(route, text);
      const operation = route === 'create' ? CREATE : READ;
      const answer = await postGraphQL<GraphQLResponse['body']>(gateway.url, operation);
      const problems = problemsOf(answer, route);
      const counts = tally.get(route) ?? { read: 0, refused: 0 };
      counts[(answer.errors ?? []).some((error) => error.extensions?.['code'] === 'UPSTREAM_ERROR') ? 'refused' : 'read'] += 1;
      tally.set(route, counts);
      if (problems.length > 0) {
        const json = text.length > 1_500 ? `${text.slice(0, 1_500)}… (${text.length} characters)` : text;
        failures.push(`PARSE_FUZZ_SEED=${SEED} case ${index}, ${route} answered: ${problems.join('; ')}\nmutations: ${what.join('; ')}\nJSON: ${json}`);
      }
    }
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${CASES} failed`);
    // Each route's answers both read and refused: UPSTREAM_ERROR is allowed wherever the mutated answer is read, so a
    // gateway refusing every answer of a route (every create) kept the invariants above of it and tested nothing of
    // its reading. A short run (PARSE_FUZZ_GATEWAY_CASES) may not reach both.
    const mix = JSON.stringify(Object.fromEntries(tally));
    if (CASES >= 100) for (const route of Object.keys(READ_AT) as Route[]) assert.ok((tally.get(route)?.read ?? 0) > 0 && (tally.get(route)?.refused ?? 0) > 0, `seed ${SEED}: ${route} answers read and refused: ${mix}`);
  });
});

function problemsOf(answer: GraphQLResponse['body'], route: Route): string[] {
  const problems: string[] = [];
  const text = JSON.stringify(answer);
  if (/cannot represent/i.test(text)) problems.push('a serialization error');
  if (/INTERNAL_SERVER_ERROR/.test(text)) problems.push('INTERNAL_SERVER_ERROR');
  if (/stacktrace|\n\s+at |\bat .*\.ts:\d+/.test(text)) problems.push('a stack trace');
  for (const error of answer.errors ?? []) {
    const path = (error.path ?? []).filter((p) => typeof p === 'string').join('.');
    const code = error.extensions?.['code'];
    // NOT_FOUND: a mutated id or token names another resource, which this upstream does not have.
    if (code !== 'UPSTREAM_ERROR' && code !== 'NOT_FOUND') problems.push(`${code} at ${path}: ${error.message}`);
    else if (!READ_AT[route].some((at) => path === at || path.startsWith(`${at}.`))) problems.push(`UPSTREAM_ERROR at ${path}, which does not read the ${route} answer`);
  }
  // The fields that do not read the mutated answer resolve: its siblings.
  const data = answer.data as Record<string, { token?: unknown; id?: unknown } | null> | null | undefined;
  if (route === 'token' && (data?.['account']?.id !== ACCOUNT_ID)) problems.push('account (a sibling) did not resolve');
  if ((route === 'account' || route === 'accountTokens') && data?.['connectToken']?.token !== 'abcdef0123456789') problems.push('connectToken (a sibling) did not resolve');
  return problems;
}
