import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { generateKeyPairSync, sign as signWithNode, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import type { JWK } from 'jose';
import { answerGate } from '../helpers/deferred.ts';
import { onHeldClocks } from '../helpers/clock.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { Random } from '../helpers/random.ts';
import { startAuthStack, type AuthStack } from './helpers.ts';

/**
 * Seeded random runs of the gateway's verification of key-set tokens (AUTH_JWKS_URL) over time, against a model
 * written from docs/auth.md alone (its Verification section; docs/errors.md's UNAUTHENTICATED and 503 rows;
 * docs/logs.md's operation line). A JWKS server of the test's own changes its set by random steps: a key added,
 * removed (often one whose token was lately accepted), rotated, replaced under its kid, published again; a key the
 * gateway cannot use (RSA of 1024 bits, an EC point off its curve); a private key published; an empty set; answers
 * of 500, 503, 429, 404, a redirect to the set itself (not followed), garbage (HTML, JSON that is no set, a set cut
 * short, broken off mid-answer, past 1 MiB), or none at all, so that the gateway's 5 s deadline ends the fetch (in
 * real time, RANDOM_JWKS_STALLS times). The wall and monotonic clocks are held still and moved on by steps (by
 * random amounts, or to within 2 s of a bound of the model's). At each step tokens signed by current, withdrawn,
 * never-published and unusable keys, forged under a published kid, expired, admin and scoped, new or sent before,
 * are each answered as the model says: 200 with the token's identity (its operation line's caller, issuer and
 * subject), 401 UNAUTHENTICATED with its challenge, or 503 INTERNAL_SERVER_ERROR with Retry-After (the seconds
 * until the gateway asks for the set again); the key set fetched exactly as often as the model says, counted at
 * the server, also when requests needing the set arrive while one fetch is held (they share it, and the others are
 * answered meanwhile); one error line per failed fetch; each unusable or private key said once. Apart from the
 * model, an accepted token is always signed by the key its kid names in the last set the server answered, usable
 * and public, and is not expired: a withdrawn key's token is never accepted once the gateway fetched the set
 * without it, remembered or not.
 *
 * The model's rules (docs/auth.md), its times in ms:
 * - remembered: a token that verified is answered without a fetch until its exp + 30 s, 5 min after it verified,
 *   and (key set) until the set is fetched again or 10 min after the fetch that verified it, whichever is first;
 * - the set is fetched on the first token, when the last fetch is 10 min old, and when a token names a kid the
 *   last fetch lacks, unless that fetch is under 30 s old (then 401 without a fetch);
 * - a failed fetch (500, garbage, the 5 s deadline) is not made again for 5 s; meanwhile and whenever a fetch
 *   fails, the keys of the last fetch verify their tokens until an hour after it, and any other token is 503;
 * - an unusable key is passed over: its token is 401, the key said once at warn, the set not unavailable.
 * A token is checked against its key before its claims (jose, as the docs imply: a token naming a kid the cache
 * lacks makes the gateway fetch, whatever it holds), so an expired token still counts in the fetches and, when its
 * key cannot be had, is 503. Tokens without a kid are left out: which keys of its type such a token is tried
 * against is documented, but not when one of a type the set lacks makes the gateway fetch.
 *
 * RANDOM_JWKS_SEED=<n> replays a run (a failure prints its seed and step), RANDOM_JWKS_RUNS (default 4) and
 * RANDOM_JWKS_STEPS (default 50) widen it, RANDOM_JWKS_STALLS (default 1 in all) bounds the fetches left to time
 * out, each costing the gateway's 5 real seconds.
 */
const SEED = Number(process.env['RANDOM_JWKS_SEED'] ?? 20_261_205);
const RUNS = Number(process.env['RANDOM_JWKS_RUNS'] ?? 4);
const STEPS = Number(process.env['RANDOM_JWKS_STEPS'] ?? 50);
const STALLS = Number(process.env['RANDOM_JWKS_STALLS'] ?? 1);

/** RANDOM_JWKS_TRACE=1: each step and answer on stderr, to read a failure's run. */
const TRACE = process.env['RANDOM_JWKS_TRACE'] === '1';

const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'contextio-graphql';
const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** docs/auth.md's times. */
const TOLERANCE = 30 * SECOND;
const COOLDOWN = 30 * SECOND;
const CACHE_AGE = 10 * MINUTE;
const BACKOFF = 5 * SECOND;
const LAST_GOOD = 60 * MINUTE;
const REMEMBERED = 5 * MINUTE;
/** The clock starts half a second into a second, and each step moves it on by whole seconds and 1 ms: no two events are ever a whole number of seconds apart, so no rule's bound (all whole seconds) is met exactly. */
const START = Date.UTC(2026, 11, 5, 12, 0, 0, 500);

type Mode = 'ok' | 'status' | 'garbage' | 'stall';

/**
 * How a key is published: as it should be; an RSA key of 1024 bits or an EC point off its curve (keys the gateway
 * cannot use); or its private half (an identity provider's mistake, left out by the gateway).
 */
type Publication = 'public' | 'weak' | 'off curve' | 'private';

interface SigningKey {
  /** This key's own number: a kid may be given to another key (key material replaced under its kid). */
  serial: number;
  kid: string;
  alg: 'ES256' | 'RS256';
  publication: Publication;
  /** Whether the gateway verifies with it, published: it is public and can be used. */
  usable: boolean;
  jwk: JWK;
  sign(payload: Record<string, unknown>, kid: string): string;
}

interface Token {
  n: number;
  text: string;
  /** The kid and algorithm its header names. */
  kid: string;
  alg: 'ES256' | 'RS256';
  /** The key that signed it (a never-published one for a forged token). */
  signer: number;
  exp: number;
  admin: boolean;
  sub: string;
  what: string;
}

type Route = 'remembered' | 'cooldown' | 'local' | 'lastGood' | 'fetch';

interface Expected {
  status: 200 | 401 | 503;
  route: Route;
  /** Why, for a failure's message. */
  why: string;
  /** A 503's Retry-After: the seconds until the gateway asks for the set again, rounded up. */
  retryAfter?: number;
}

/** What the gateway knows, as docs/auth.md says it keeps it. */
class GatewayModel {
  /** The last successful fetch's keys (`kid alg` → whether usable, which key), private ones left out, and when. */
  keys: Map<string, ServedKey> | undefined;
  fetchedAt: number | undefined;
  failedAt: number | undefined;
  fetches = 0;
  failedFetches = 0;
  readonly unusableSaid = new Set<string>();
  readonly privateSaid = new Set<string>();
  readonly remembered = new Map<string, { until: number; fetchedAt: number | undefined }>();

  /** When a rule of the model changes its answer: the ends of the cooldown, the cache, the hour, the back-off, of what is remembered. */
  bounds(): Array<{ at: number; token?: string }> {
    const fetched = this.fetchedAt === undefined ? [] : [this.fetchedAt + COOLDOWN, this.fetchedAt + CACHE_AGE, this.fetchedAt + LAST_GOOD];
    const failed = this.failedAt === undefined ? [] : [this.failedAt + BACKOFF];
    return [...[...fetched, ...failed].map((at) => ({ at })), ...[...this.remembered].map(([token, memory]) => ({ at: memory.until, token }))];
  }

  /** How a token sent at `now` is answered: its route, without changing anything but forgetting what expired. */
  route(token: Token, now: number): Route {
    const memory = this.remembered.get(token.text);
    if (memory !== undefined) {
      if (now < memory.until && memory.fetchedAt === this.fetchedAt) return 'remembered';
      this.remembered.delete(token.text);
    }
    if (this.failedAt !== undefined && now - this.failedAt < BACKOFF) return 'lastGood';
    if (this.fetchedAt === undefined || now - this.fetchedAt >= CACHE_AGE) return 'fetch';
    if (this.keys!.has(keyName(token))) return 'local';
    if (now - this.fetchedAt < COOLDOWN) return 'cooldown';
    return 'fetch';
  }

  /** Answers `token` at `now`; a fetch gets `served` (the set, or undefined when the answer is a failure). */
  answer(token: Token, now: number, served: () => ServedSet | undefined): Expected {
    const route = this.route(token, now);
    switch (route) {
      case 'remembered':
        return { status: 200, route, why: 'remembered' };
      case 'cooldown':
        return { status: 401, route, why: 'a kid the last fetch lacks, within 30 s of it' };
      case 'local':
        return this.#verify(token, now, route);
      case 'lastGood':
        return this.#lastGood(token, now, route);
      case 'fetch': {
        this.fetches += 1;
        const set = served();
        if (set === undefined) {
          this.failedAt = now;
          this.failedFetches += 1;
          return this.#lastGood(token, now, route);
        }
        this.keys = set.keys;
        for (const kid of set.privateKids) this.privateSaid.add(kid);
        this.fetchedAt = now;
        this.failedAt = undefined;
        return this.#verify(token, now, route);
      }
    }
  }

  #lastGood(token: Token, now: number, route: Route): Expected {
    const retryAfter = Math.max(1, Math.ceil((this.failedAt! + BACKOFF - now) / SECOND));
    if (this.fetchedAt === undefined || now - this.fetchedAt >= LAST_GOOD) return { status: 503, route, why: 'no keys trusted', retryAfter };
    if (!this.keys!.has(keyName(token))) return { status: 503, route, why: 'the set unavailable and its last keys lack the kid', retryAfter };
    return this.#verify(token, now, route);
  }

  #verify(token: Token, now: number, route: Route): Expected {
    const key = this.keys!.get(keyName(token));
    if (key === undefined) return { status: 401, route, why: 'the fetched set lacks the kid' };
    if (!key.usable) {
      this.unusableSaid.add(token.kid);
      return { status: 401, route, why: 'an unusable key' };
    }
    if (token.signer !== key.serial) return { status: 401, route, why: 'signed by another key than its kid names' };
    const ends = (token.exp * SECOND) + TOLERANCE;
    if (now >= ends) return { status: 401, route, why: 'expired' };
    const until = Math.min(ends, now + REMEMBERED, this.fetchedAt! + CACHE_AGE);
    if (until > now) this.remembered.set(token.text, { until, fetchedAt: this.fetchedAt });
    return { status: 200, route, why: 'verified' };
  }
}

/**
 * A key as the gateway finds one for a token: by kid and algorithm (jose's, as the JWK's `alg` and type must fit
 * the token's). A token naming a kid of the set under another algorithm names a key the set lacks: fetched again
 * after the cooldown, then 401 (docs/auth.md does not say; nothing the docs promise depends on it).
 */
function keyName(key: { kid: string; alg: string }): string {
  return `${key.kid} ${key.alg}`;
}

interface ServedKey {
  usable: boolean;
  serial: number;
}

/** A set as the gateway reads it: its public keys, and the kids of the private keys it left out. */
interface ServedSet {
  keys: Map<string, ServedKey>;
  privateKids: string[];
}

function servedSet(keys: SigningKey[]): ServedSet {
  return {
    keys: new Map(keys.filter((key) => key.publication !== 'private').map((key) => [keyName(key), { usable: key.usable, serial: key.serial }])),
    privateKids: keys.filter((key) => key.publication === 'private').map((key) => key.kid),
  };
}

/** The test's key set endpoint: what it serves, how it fails, and every fetch counted. */
interface KeySetServer {
  url: string;
  fetches: number;
  /** The usable public keys of the last set it answered with (200 and a set), undefined before one. */
  lastServed: Map<string, number> | undefined;
  keys: SigningKey[];
  mode: Mode;
  /** From now on, each answer waits for `release`; `arrived` settles with the first fetch held. */
  hold(): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

async function startKeySetServer(): Promise<KeySetServer> {
  const stalled = new Set<ServerResponse>();
  let garbage = 0;
  let failing = 0;
  const gate = answerGate();
  const state: KeySetServer = {
    url: '',
    fetches: 0,
    lastServed: undefined,
    keys: [],
    mode: 'ok',
    hold: () => gate.hold(),
    close: async () => {
      for (const res of stalled) res.destroy();
      await closeServer(server);
    },
  };
  async function serve(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    state.fetches += 1;
    // What is served is the set (and mode) as the request arrived.
    const mode = state.mode;
    const keys = state.keys;
    await gate.pass();
    // No keep-alive: the gateway's clock is held still, so its idle connections would never time out on its side.
    const headers = { 'content-type': 'application/json', connection: 'close' };
    if (mode === 'stall') {
      stalled.add(res);
      res.on('close', () => stalled.delete(res));
      return;
    }
    if (mode === 'status') {
      // A redirect is not followed (docs/auth.md): to the set itself, so that following it would show as a fetch.
      const status = [500, 302, 404, 429, 503][failing++ % 5]!;
      res.writeHead(status, status === 302 ? { ...headers, location: '/jwks.json?moved' } : headers).end('identity provider down');
      return;
    }
    if (mode === 'garbage') {
      const set = JSON.stringify({ keys: keys.map((key) => key.jwk) });
      const kind = garbage++ % 7;
      if (kind === 5) {
        // The set's first half, then the connection broken off.
        res.writeHead(200, { ...headers, 'content-length': String(set.length) });
        res.write(set.slice(0, set.length / 2), () => res.destroy());
        return;
      }
      // A set past 1 MiB (padded with a field the format does not have) is not read.
      const tooLarge = JSON.stringify({ keys: keys.map((key) => key.jwk), padding: 'x'.repeat(1024 * 1024) });
      const bodies = ['<!doctype html><title>Sign in</title>', '{"keys":"none"}', set.slice(0, -2), 'null', '{"keys":[1,2]}', '', tooLarge];
      res.writeHead(200, headers).end(bodies[kind]);
      return;
    }
    state.lastServed = new Map(keys.filter((key) => key.usable && key.publication === 'public').map((key) => [keyName(key), key.serial]));
    res.writeHead(200, headers).end(JSON.stringify({ keys: keys.map((key) => key.jwk) }));
  }
  const server = createServer((req, res) => void serve(req, res));
  state.url = `http://127.0.0.1:${await listenOnLoopback(server)}/jwks.json`;
  return state;
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

let serials = 0;

/**
 * A key pair of `kind` under `kid`, published as `publication` says, signing its tokens with node:crypto (jose
 * refuses to sign with RSA under 2048 bits).
 */
function keyPair(kid: string, kind: 'ES256' | 'RS256', publication: Publication = 'public'): SigningKey {
  const { privateKey, publicKey } =
    kind === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: publication === 'weak' ? 1024 : 2048 });
  const exported = (publication === 'private' ? privateKey : publicKey).export({ format: 'jwk' }) as JWK;
  if (publication === 'off curve') {
    // Its last bit flipped: a point off P-256, which WebCrypto refuses to import.
    const y = Buffer.from(exported.y!, 'base64url');
    y[31]! ^= 1;
    exported.y = base64url(y);
  }
  return {
    serial: ++serials,
    kid,
    alg: kind,
    publication,
    usable: publication === 'public' || publication === 'private',
    jwk: { ...exported, kid, alg: kind, use: 'sig' },
    sign: (payload, headerKid) => signedToken(privateKey, kind, headerKid, payload),
  };
}

function signedToken(key: KeyObject, alg: 'ES256' | 'RS256', kid: string, payload: Record<string, unknown>): string {
  const signingInput = `${base64url(JSON.stringify({ alg, kid, typ: 'JWT' }))}.${base64url(JSON.stringify(payload))}`;
  const signature = alg === 'ES256'
    ? signWithNode('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' })
    : signWithNode('sha256', Buffer.from(signingInput), key);
  return `${signingInput}.${base64url(signature)}`;
}

/** One seeded run: its own key set server and gateway, `STEPS` steps. */
async function run(seed: number, stallsLeft: { count: number }): Promise<Record<string, number>> {
  const random = new Random(seed);
  const server = await startKeySetServer();
  const tally: Record<string, number> = {};
  let stack: AuthStack | undefined;
  try {
    stack = await startAuthStack({ auth: { jwksUrl: server.url, issuer: ISSUER, audience: AUDIENCE } });
    const gateway = stack;
    assert.equal(server.fetches, 0, 'the test gateway does not check the set at start (npm start does)');
    await onHeldClocks(START, async (advance, wallNow) => {
      const model = new GatewayModel();
      const everKey: SigningKey[] = [];
      let keyCount = 0;
      const newKey = (publication: Publication = 'public', kid = `${publication === 'public' ? 'key' : publication.replace(' ', '-')}-${++keyCount}`) => {
        const key = keyPair(kid, publication === 'weak' || (publication !== 'off curve' && random.chance(0.3)) ? 'RS256' : 'ES256', publication);
        everKey.push(key);
        return key;
      };
      // Keys never published: their tokens name their own kid, or forge a published one.
      const ghosts = [keyPair('ghost-1', 'ES256'), keyPair('ghost-2', 'RS256')];
      server.keys = [newKey(), newKey()];
      const tokens: Token[] = [];
      let step = 0;
      const where = () => `seed ${seed} step ${step} (RANDOM_JWKS_SEED=${seed} replays it)`;

      const mint = (): Token => {
        const now = wallNow();
        const published = server.keys;
        const withdrawn = everKey.filter((key) => !published.includes(key));
        const kinds: Array<[string, number]> = [['current', 5], ['withdrawn', withdrawn.length > 0 ? 2 : 0], ['never published', 1], ['forged', 1], ['expired', 1]];
        const what = pickWeighted(random, kinds);
        const key = what === 'withdrawn' ? random.pick(withdrawn) : what === 'never published' || what === 'forged' ? random.pick(ghosts) : random.pick(published.length > 0 ? published : everKey);
        const kid = what === 'forged' ? random.pick(published.length > 0 ? published : everKey).kid : key.kid;
        const nowSeconds = Math.floor(now / SECOND);
        const exp = what === 'expired' ? nowSeconds - 31 - random.int(3_600) : nowSeconds + 1 + random.int(20 * 60);
        const admin = random.chance(0.3);
        const sub = `user-${tokens.length + 1}`;
        const payload = { iss: ISSUER, aud: AUDIENCE, sub, exp, iat: nowSeconds, ...(admin ? { scope: 'contextio:admin' } : { accounts: ['52daabefcea6f9c35a4a0997'] }) };
        const signer = key.kid === kid ? `#${key.serial}` : `${key.kid}#${key.serial}`;
        const publication = key.publication === 'public' ? '' : ` (${key.publication})`;
        const token: Token = { n: tokens.length + 1, text: key.sign(payload, kid), kid, alg: key.alg, signer: key.serial, exp, admin, sub, what: `${what} ${key.alg} ${kid}${publication} signed by ${signer}` };
        tokens.push(token);
        return token;
      };
      /** Tokens lately accepted, the last first: sent again, they test what the gateway remembers after the set changed. */
      const accepted: Token[] = [];
      const drawToken = (): Token => {
        if (tokens.length === 0 || random.chance(0.5)) return mint();
        return accepted.length > 0 && random.chance(0.6) ? random.pick(accepted.slice(0, 8)) : random.pick(tokens);
      };
      /** What the server answers a fetch now, as the model sees it: its set, or a failure. */
      const servedNow = (): ServedSet | undefined => (server.mode === 'ok' ? servedSet(server.keys) : undefined);

      const check = async (token: Token, expected: Expected, response: Awaited<ReturnType<AuthStack['gql']>>, now: number) => {
        const what = `${where()}: token ${token.n} (${token.what}, exp ${token.exp * SECOND - now} ms from now, ${token.admin ? 'admin' : 'scoped'}), expected ${expected.status} (${expected.route}: ${expected.why}), got ${response.status} ${JSON.stringify(response.body)}`;
        if (TRACE) console.error(`  token ${token.n} ${token.what}: ${expected.status} ${expected.route} (${expected.why}), got ${response.status}`);
        tally[`${expected.status} ${expected.route}`] = (tally[`${expected.status} ${expected.route}`] ?? 0) + 1;
        // The security property, apart from the model: accepted only if signed by the key it names, that key in the
        // last set the gateway could have fetched, and not expired.
        if (response.status === 200) {
          if (!accepted.includes(token)) accepted.unshift(token);
          assert.equal(server.lastServed?.get(keyName(token)), token.signer, `${what}: accepted, but the last set served has no usable public key ${keyName(token)} that signed it`);
          assert.ok(now < token.exp * SECOND + TOLERANCE, `${what}: an expired token was accepted`);
        }
        assert.equal(response.status, expected.status, what);
        if (expected.status === 200) {
          assert.deepEqual(response.body, { data: { __typename: 'Query' } }, what);
          const requestId = response.headers.get('x-request-id');
          const line = gateway.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((entry) => entry['message'] === 'operation' && entry['requestId'] === requestId);
          assert.deepEqual([line?.['caller'], line?.['subject'], line?.['issuer']], [token.admin ? 'admin' : 'scoped', token.sub, ISSUER], what);
          return;
        }
        const error = response.body.errors?.[0];
        if (expected.status === 401) {
          assert.equal(error?.extensions?.['code'], 'UNAUTHENTICATED', what);
          assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="contextio-graphql", error="invalid_token"', what);
          // The messages the docs give (docs/auth.md, docs/logs.md).
          const message = expected.why === 'expired' ? 'The token has expired' : expected.why.includes('lacks the kid') || expected.why.includes('kid the last fetch lacks') ? 'No key of the configured key set verifies the token' : undefined;
          if (message !== undefined) assert.equal(error?.message, message, what);
        } else {
          assert.equal(error?.extensions?.['code'], 'INTERNAL_SERVER_ERROR', what);
          assert.equal(response.headers.get('retry-after'), String(expected.retryAfter), what);
        }
        assert.equal(response.body.data, undefined, what);
      };
      const send = (token: Token) => gateway.gql('{ __typename }', token.text);

      for (step = 1; step <= STEPS; step += 1) {
        // Whole seconds and 1 ms (see START): by a random amount, or to within 2 s of a bound of the model's.
        // A bound of what the gateway remembers: that token is sent first, just before or after its memory ends.
        const bounds = model.bounds().filter((bound) => bound.at > wallNow());
        const bound = bounds.length > 0 && random.chance(0.3) ? random.pick(bounds) : undefined;
        const seconds = bound !== undefined
          ? Math.max(0, Math.round((bound.at - wallNow()) / SECOND) + random.int(5) - 2)
          : pickWeighted(random, [[0, 2], [1 + random.int(4), 3], [6 + random.int(20), 3], [31 + random.int(90), 5], [4 * 60 + random.int(120), 2], [9 * 60 + random.int(180), 1], [20 * 60 + random.int(50 * 60), 1]]);
        advance(seconds * SECOND + 1);
        const change = pickWeighted(random, [['none', 6], ['add', 3], ['remove', 3], ['rotate', 3], ['rekey', 1], ['restore', 1], ['unusable', 1], ['private', 1], ['empty', 1], ['status', 2], ['garbage', 2], ['stall', 1], ['ok', 8]]);
        switch (change) {
          case 'add':
            server.keys = [...server.keys, newKey()];
            break;
          case 'rekey': {
            // Another key under a published kid (and, maybe, another type).
            if (server.keys.length === 0) break;
            const replaced = random.pick(server.keys);
            server.keys = server.keys.map((key) => (key === replaced ? newKey('public', replaced.kid) : key));
            break;
          }
          case 'restore': {
            // A withdrawn key published again, unless its kid is now another key's.
            const withdrawn = everKey.filter((key) => !server.keys.some((published) => published.kid === key.kid));
            if (withdrawn.length > 0) server.keys = [...server.keys, random.pick(withdrawn)];
            break;
          }
          case 'empty':
            server.keys = [];
            break;
          case 'private':
            server.keys = [...server.keys, newKey('private')];
            break;
          case 'remove': {
            // Often the key of a token lately accepted: what the gateway remembers of it must end with the next fetch.
            const inUse = server.keys.filter((key) => accepted.slice(0, 8).some((token) => token.signer === key.serial));
            const removed = random.pick(inUse.length > 0 && random.chance(0.6) ? inUse : server.keys);
            if (server.keys.length > 1) server.keys = server.keys.filter((key) => key !== removed);
            break;
          }
          case 'rotate':
            server.keys = [...server.keys.slice(1), newKey()];
            break;
          case 'unusable':
            server.keys = [...server.keys, newKey(random.chance(0.5) ? 'weak' : 'off curve')];
            break;
          case 'status':
          case 'garbage':
          case 'ok':
            server.mode = change;
            break;
          case 'stall':
            break;
        }
        // A stall (the fetch left to the gateway's 5 s deadline) holds for its step alone, and costs real time.
        const modeBefore = server.mode;
        if (change === 'stall' && stallsLeft.count > 0) server.mode = 'stall';
        if (TRACE) console.error(`step ${step}: now ${wallNow() - START} ms, ${change}, mode ${server.mode}, keys ${server.keys.map((key) => key.kid).join(' ')}; model fetched ${model.fetchedAt === undefined ? '-' : wallNow() - model.fetchedAt} ms ago, failed ${model.failedAt === undefined ? '-' : wallNow() - model.failedAt} ms ago`);
        const count = 1 + random.int(6);
        const drawn = Array.from({ length: count }, drawToken);
        const boundToken = tokens.find((token) => token.text === bound?.token);
        if (boundToken !== undefined) drawn.unshift(boundToken);
        const now = wallNow();
        const routes = drawn.map((token) => model.route(token, now));
        const needFetch = drawn.filter((_, i) => routes[i] === 'fetch');
        if (needFetch.length > 0 && server.mode !== 'stall' && random.chance(0.35)) {
          // Concurrent: the requests needing the set wait on one held fetch; the others are answered meanwhile,
          // from what the gateway knew before it.
          const hold = server.hold();
          const waiting = needFetch.map((token) => ({ token, answer: send(token) }));
          await hold.arrived;
          const others = drawn.filter((_, i) => routes[i] !== 'fetch');
          try {
            for (const token of others) {
              const expected = model.answer(token, now, servedNow);
              assert.notEqual(expected.route, 'fetch', `${where()}: the model fetched for a token it said would not`);
              await check(token, expected, await answeredWhileHeld(send(token), where), now);
            }
          } finally {
            hold.release();
          }
          const answers = await Promise.all(waiting.map(({ answer }) => answer));
          for (const [i, { token }] of waiting.entries()) await check(token, model.answer(token, now, servedNow), answers[i]!, now);
          tally['concurrent fetches'] = (tally['concurrent fetches'] ?? 0) + 1;
          assert.equal(server.fetches, model.fetches, `${where()}: the key set's fetches after ${waiting.length} requests sharing one (${server.fetches}, expected ${model.fetches})`);
        } else {
          for (const token of drawn) {
            if (server.mode === 'stall' && model.route(token, now) === 'fetch') stallsLeft.count -= 1;
            const expected = model.answer(token, now, servedNow);
            await check(token, expected, await send(token), now);
            assert.equal(server.fetches, model.fetches, `${where()}: the key set's fetches after token ${token.n} (${server.fetches}, expected ${model.fetches})`);
            // Once one stalled fetch was waited out, the rest of the step is answered otherwise.
            if (server.mode === 'stall' && model.failedAt === now) server.mode = modeBefore;
          }
        }
        server.mode = modeBefore;
        const failedLines = gateway.logs.filter((line) => line.includes('"the JWKS could not be fetched or read'));
        assert.equal(failedLines.length, model.failedFetches, `${where()}: one error line per failed fetch\n${failedLines.join('')}`);
        const unusableLines = gateway.logs.filter((line) => line.includes('a key of the JWKS cannot verify tokens'));
        assert.deepEqual(unusableLines.map((line) => (JSON.parse(line) as { kid: string }).kid).sort(), [...model.unusableSaid].sort(), `${where()}: each unusable key said once`);
        const privateLines = gateway.logs.filter((line) => line.includes('the JWKS publishes a private key'));
        assert.deepEqual(privateLines.map((line) => (JSON.parse(line) as { kid: string }).kid).sort(), [...model.privateSaid].sort(), `${where()}: each private key said once`);
      }
      // No token, nor its signature, in any line.
      for (const token of tokens) {
        const signature = token.text.slice(token.text.lastIndexOf('.') + 1);
        assert.ok(gateway.logs.every((line) => !line.includes(signature)), `seed ${seed}: token ${token.n} in the log`);
      }
    });
  } finally {
    await stack?.close();
    await server.close();
  }
  return tally;
}

/** The answer to a request that needs no fetch, given while a fetch is held: if the gateway made it wait on that fetch, the test says so rather than hang. */
async function answeredWhileHeld<T>(answer: Promise<T>, where: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${where()}: a request the model answers without the held fetch waited on it`)), 15_000);
  });
  try {
    return await Promise.race([answer, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

function pickWeighted<T>(random: Random, choices: Array<[T, number]>): T {
  const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
  let at = random.next() * total;
  for (const [choice, weight] of choices) {
    at -= weight;
    if (at < 0 && weight > 0) return choice;
  }
  return choices.findLast(([, weight]) => weight > 0)![0];
}

describe('seeded random key rotation against the key set (RANDOM_JWKS_SEED)', () => {
  test(`${RUNS} runs of ${STEPS} steps from seed ${SEED}: answers and fetches as docs/auth.md says, no withdrawn or unknown key's token accepted`, async (t) => {
    const stallsLeft = { count: STALLS };
    const total: Record<string, number> = {};
    for (let i = 0; i < RUNS; i += 1) {
      const tally = await run(SEED + i, stallsLeft);
      for (const [key, value] of Object.entries(tally)) total[key] = (total[key] ?? 0) + value;
    }
    t.diagnostic(`answers by route: ${JSON.stringify(total)}`);
    // The runs reached each kind of answer (a seed that did not would test less than it says).
    for (const kind of ['200 remembered', '200 local', '200 fetch', '200 lastGood', '401 cooldown', '401 fetch', '401 local', '503 fetch', '503 lastGood', 'concurrent fetches']) {
      if (RUNS * STEPS >= 120) assert.ok((total[kind] ?? 0) > 0, `seed ${SEED}: no ${kind} in ${JSON.stringify(total)}`);
    }
  });
});
