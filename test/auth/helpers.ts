import { createServer, type ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import { SignJWT, type JWK, type JWTPayload } from 'jose';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import type { GatewayOptions } from '../../src/http/server.ts';
import { answerGate } from '../helpers/deferred.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { codes, startStack, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/** An HS256 secret of the length the configuration asks for. */
export const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

export type GqlResponse = GraphQLResponse;

export interface AuthStack extends Omit<Stack, 'gql'> {
  /** Every log line the gateway wrote, to check that no token leaks into them. */
  logs: string[];
  /** POSTs an operation over HTTP, with `Authorization: Bearer <token>` when a token is given. */
  gql(query: string, token?: string, variables?: Record<string, unknown>): Promise<GqlResponse>;
}

/** The shared stack (empty emulator, gateway on loopback) with the given access options and a recorded log. */
export async function startAuthStack(options: Partial<GatewayOptions> = {}): Promise<AuthStack> {
  const logs: string[] = [];
  const logger: Logger = createLogger('debug', (line) => logs.push(line));
  const stack = await startStack({ gateway: { upstreamMaxInFlight: 16, logger, ...options } });
  return {
    ...stack,
    logs,
    gql: (query, token, variables) => stack.gql(query, variables, token === undefined ? {} : { authorization: `Bearer ${token}` }),
  };
}

/**
 * `startAuthStack(options)` for a gateway verifying tokens against `jwks`, whose server is closed should the stack
 * not start: left open, it kept the test file's process alive to the run's time limit instead of failing at once.
 */
export async function startAuthStackWithKeySet(jwks: JwksServer, options: Partial<GatewayOptions> = {}): Promise<AuthStack> {
  try {
    return await startAuthStack(options);
  } catch (error) {
    await jwks.close();
    throw error;
  }
}

/**
 * `startAuthStack(options)` started before the suite's tests and stopped after them, as a stand-in that reaches
 * it; unlike `useStack`, its state carries over from one test to the next.
 */
export function useAuthStack(options: Partial<GatewayOptions> = {}): AuthStack {
  let stack: AuthStack | undefined;
  before(async () => {
    stack = await startAuthStack(options);
  });
  after(() => stack?.close());
  return new Proxy({} as AuthStack, { get: (_, key) => Reflect.get(stack!, key) });
}

export { codes };

/** A token signed HS256 with `secret` (default: {@link SECRET}), valid for an hour unless `exp` is given. */
export function hsToken(claims: JWTPayload, secret: string | Uint8Array = SECRET): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  return new SignJWT({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(key);
}

export interface JwksServer {
  /** The key set's URL, e.g. `http://127.0.0.1:4321/jwks.json`. */
  url: string;
  /** How many times the key set was fetched. */
  fetches: number;
  /** Replaces the served keys (a rotation). */
  setKeys(keys: JWK[]): void;
  /**
   * While failing, every fetch answers 500 (an identity provider that is down), or with `how: 'broken off'`, 200
   * and the start of the set before the connection breaks (a proxy or provider restarting mid-answer).
   */
  setFailing(failing: boolean, how?: 'status' | 'broken off'): void;
  /** From now on, every fetch is answered `status` with `location` as its `Location` (a moved key set), or as before (`undefined`). */
  redirect(to: { status: number; location: string } | undefined): void;
  /** From now on, the key set is served whole with `status` instead of 200 (a proxy's 203, a 206). */
  serveWithStatus(status: number): void;
  /** Holds the answers of the fetches from now on until `release` (a slow identity provider); `arrived` once one came. */
  hold(): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

/**
 * A JWKS endpoint on loopback, as an identity provider serves one. `keepAliveMs`: how long it keeps an idle
 * connection (and tells its clients so); Node's 5 s unless given.
 */
export async function startJwksServer(keys: JWK[], { keepAliveMs }: { keepAliveMs?: number } = {}): Promise<JwksServer> {
  let served = keys;
  const state: { fetches: number; failing: false | 'status' | 'broken off' } = { fetches: 0, failing: false };
  const gate = answerGate();
  let redirect: { status: number; location: string } | undefined;
  let servedStatus = 200;
  async function serve(res: ServerResponse): Promise<void> {
    state.fetches += 1;
    await gate.pass();
    if (redirect !== undefined) {
      res.writeHead(redirect.status, { location: redirect.location }).end();
      return;
    }
    if (state.failing === 'status') {
      res.writeHead(500).end('identity provider down');
      return;
    }
    if (state.failing === 'broken off') {
      const body = JSON.stringify({ keys: served });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.write(body.slice(0, body.length / 2), () => res.destroy());
      return;
    }
    res.writeHead(servedStatus, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served }));
  }
  const server = createServer((_req, res) => void serve(res));
  if (keepAliveMs !== undefined) server.keepAliveTimeout = keepAliveMs;
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    get fetches() {
      return state.fetches;
    },
    setKeys(next) {
      served = next;
    },
    setFailing(failing, how = 'status') {
      state.failing = failing && how;
    },
    redirect(to) {
      redirect = to;
    },
    serveWithStatus(status) {
      servedStatus = status;
    },
    hold: () => gate.hold(),
    close: () => closeServer(server),
  };
}
