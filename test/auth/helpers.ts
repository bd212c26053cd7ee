import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWK, type JWTPayload } from 'jose';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/server.ts';

/** An HS256 secret of the length the configuration asks for. */
export const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

export interface GqlResponse {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
  };
}

export interface AuthStack {
  emulator: Emulator;
  gateway: Gateway;
  /** Every log line the gateway wrote, to check that no token leaks into them. */
  logs: string[];
  /** POSTs an operation over HTTP, with `Authorization: Bearer <token>` when a token is given. */
  gql(query: string, token?: string, variables?: Record<string, unknown>): Promise<GqlResponse>;
  /** Upstream requests since the last call, as `METHOD path`. */
  upstreamCalls(): string[];
  close(): Promise<void>;
}

/** The emulator (empty) and a gateway in front of it with the given access options, both on loopback. */
export async function startAuthStack(options: Partial<GatewayOptions> = {}): Promise<AuthStack> {
  const emulator = await startEmulator({ port: 0, seed: 'none' });
  const logs: string[] = [];
  const logger: Logger = createLogger('debug', (line) => logs.push(line));
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      port: 0,
      host: '127.0.0.1',
      upstream: { baseUrl: emulator.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret },
      upstreamTimeoutMs: 5_000,
      upstreamMaxInFlight: 16,
      development: false,
      logger,
      ...options,
    });
  } catch (error) {
    await emulator.close();
    throw error;
  }
  return {
    emulator,
    gateway,
    logs,
    async gql(query, token, variables) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      const response = await fetch(gateway.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GqlResponse['body'] };
    },
    upstreamCalls() {
      const calls = emulator.requests.map((r) => `${r.method} ${r.path}`);
      emulator.clearRequests();
      return calls;
    },
    async close() {
      await gateway.close();
      await emulator.close();
    },
  };
}

/** The `extensions.code` of every error of a response, in order. */
export const codes = (response: GqlResponse): unknown[] => (response.body.errors ?? []).map((e) => e.extensions?.['code']);

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
  close(): Promise<void>;
}

/** A JWKS endpoint on loopback, as an identity provider serves one. */
export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let served = keys;
  const state = { fetches: 0 };
  const server = createServer((_req, res) => {
    state.fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    get fetches() {
      return state.fetches;
    },
    setKeys(next) {
      served = next;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
