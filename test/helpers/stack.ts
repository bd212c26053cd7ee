import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, beforeEach } from 'node:test';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import { createLogger, silentLogger, type LogLevel } from '../../src/logging/logger.ts';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/http/server.ts';
import { eventually } from './eventually.ts';
import { rawGraphQLPost } from './net.ts';

export interface GraphQLResponse<D = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: { data?: D | null; errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>; extensions?: Record<string, unknown> };
}

export interface Stack {
  emulator: Emulator;
  gateway: Gateway;
  /** POSTs an operation to the gateway over HTTP, as a frontend would. */
  gql<D = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<D>>;
  /** The upstream requests made since the last call (or since start), as `METHOD path` strings. */
  upstreamCalls(): string[];
  close(): Promise<void>;
}

/**
 * A real emulator and a real gateway pointed at it, both on loopback with free ports: the setup every
 * integration test starts from. Upstream requests are counted from the emulator's own log.
 */
export async function startStack(
  options: { emulator?: EmulatorOptions; gateway?: Partial<GatewayOptions> } = {},
): Promise<Stack> {
  const emulator = await startEmulator({ port: 0, seed: 'none', ...options.emulator });
  let gateway: Gateway;
  try {
    gateway = await startTestGateway({ baseUrl: emulator.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret }, options.gateway);
  } catch (error) {
    await emulator.close();
    throw error;
  }
  return {
    emulator,
    gateway,
    async gql<D>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<D>> {
      const response = await sendGraphQL(gateway.url, query, variables, headers);
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<D>['body'] };
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

/** A gateway on a free loopback port against `upstream`, with the tests' settings (silent, quick deadlines). */
export function startTestGateway(upstream: GatewayOptions['upstream'], options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return startGateway({
    port: 0,
    host: '127.0.0.1',
    upstream,
    upstreamTimeoutMs: 5_000,
    upstreamMaxInFlight: 64,
    development: false,
    logger: silentLogger,
    // Tests inject runs of upstream failures; only the breaker's own tests want it to trip.
    breakerFailureThreshold: 1_000,
    ...options,
  });
}

/** Posts one GraphQL operation to `url`, as a client would, and returns its parsed body. */
export async function postGraphQL<T = GraphQLResponse['body']>(url: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  return (await (await sendGraphQL(url, query, variables)).json()) as T;
}

/** The POST a GraphQL client makes, given up after 30 s so that a hung gateway fails its test instead of stalling it. */
function sendGraphQL(url: string, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<Response> {
  return fetch(url, {
    signal: AbortSignal.timeout(30_000),
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

/** A stack whose gateway logs at `level` into `lines`, as an operator would read them. */
export async function startLoggingStack(level: LogLevel, options: Parameters<typeof startStack>[0] = {}): Promise<Stack & { lines: string[] }> {
  const lines: string[] = [];
  const stack = await startStack({ ...options, gateway: { ...options.gateway, logger: createLogger(level, (line) => lines.push(line)) } });
  return Object.assign(stack, { lines });
}

/** The `extensions.code` of each error, in order. */
export const codes = (response: GraphQLResponse): unknown[] => (response.body.errors ?? []).map((e) => e.extensions?.['code']);

/** The message of each error, in order. */
export const messages = (response: GraphQLResponse): string[] => (response.body.errors ?? []).map((e) => e.message);

/**
 * One stack for a whole `describe`, reset before each test: empty store, no faults, no logged requests.
 * The stack exists only once `before` has run, so what is returned stands in for it until then.
 */
export function useStack(options: Parameters<typeof startStack>[0] = {}): Stack {
  let stack: Stack | undefined;
  before(async () => {
    stack = await startStack(options);
  });
  after(() => stack?.close());
  beforeEach(() => {
    stack!.emulator.store.reset('none');
    stack!.emulator.clearFaults();
    stack!.emulator.clearRequests();
  });
  return new Proxy({} as Stack, { get: (_, key) => Reflect.get(stack!, key) });
}

/**
 * A client that goes away mid-operation: asks the gateway for a new account whose upstream request hangs,
 * and aborts its HTTP request once that upstream request is in flight. `'aborted'` when it left before any
 * answer (what the callers expect), `'answered'` if one came first.
 */
export async function leaveWhileUpstreamHangs(stack: Stack, email: string): Promise<'aborted' | 'answered'> {
  const id = stack.emulator.store.createAccount({ email }).id;
  stack.emulator.addFault({ path: `/accounts/${id}`, hang: true });
  const controller = new AbortController();
  const pending = fetch(stack.gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ account(id: "${id}") { id } }` }),
    signal: controller.signal,
  }).then(
    () => 'answered' as const,
    () => 'aborted' as const,
  );
  await eventually(() => stack.emulator.inFlight > 0, { timeoutMs: 10_000, what: 'the upstream request started' });
  controller.abort();
  return pending;
}

/** A client reading an answer slowly, through the raw socket it sent its request on. */
export interface SlowRead {
  /** Paused: it reads nothing until resumed. */
  socket: Socket;
  /** The answer's Content-Length. */
  contentLength: number;
  /** The answer's body bytes received so far. */
  received(): number;
}

/** Sends `request` (raw HTTP/1.1) to the gateway at `url` and returns once its answer has begun, reading nothing more. */
export async function startSlowRead(url: string, request: string): Promise<SlowRead> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write(request);
  const [first] = (await once(socket, 'data')) as [Buffer];
  socket.pause();
  const head = first.toString('latin1');
  const contentLength = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(head)?.[1]);
  let bodyBytes = first.length - (head.indexOf('\r\n\r\n') + 4);
  socket.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
  return { socket, contentLength, received: () => bodyBytes };
}

/**
 * A client downloading a ~20 MB GraphQL answer slowly: more than loopback's socket buffers hold, so most of
 * it waits in the gateway's process.
 */
export async function startSlowDownload(emulator: Emulator, url: string): Promise<SlowRead> {
  for (let i = 0; i < 100; i++) emulator.store.createAccount({ email: `big${i}@example.com`, first_name: 'x'.repeat(200_000) });
  return startSlowRead(url, rawGraphQLPost('{ accounts(first: 100) { nodes { firstName } } }'));
}

/**
 * Starts the gateway's shutdown while `download` reads nothing, waits until Node's close() and two of the
 * gateway's idle sweeps (every 50 ms) have passed over its connection, then reads the rest of the answer until
 * the gateway closes the connection. Counted, not waited for by a sleep: each pass is one call of the
 * server's closeIdleConnections() (close() makes one too), so a connection they wrongly close is closed by then.
 */
export async function readRestDuringShutdown(stack: Stack, download: SlowRead): Promise<void> {
  const { httpServer } = stack.gateway;
  let passes = 0;
  let swept: () => void;
  const sweptThrice = new Promise<void>((resolve) => (swept = resolve));
  const closeIdle = httpServer.closeIdleConnections.bind(httpServer);
  httpServer.closeIdleConnections = () => {
    closeIdle();
    if (++passes === 3) swept();
  };
  const closing = stack.gateway.close();
  // Or the shutdown's end, should the connection be closed before then: the caller's checks then fail.
  await Promise.race([sweptThrice, closing]);
  const ended = once(download.socket, 'close');
  download.socket.resume();
  await ended;
  await closing;
}


/** A POST to the gateway whose body has not all arrived: see {@link startArrivingPost}. */
export interface ArrivingPost {
  socket: Socket;
  /** What the gateway sent back so far, as text. */
  answer(): string;
  /** Sends the rest of the body. */
  finish(): void;
}

/**
 * Sends a POST of `body` to the gateway at `url` with `Expect: 100-continue` and, once the gateway asked for the
 * body (Node answers it as it hands the request to the gateway, which then waits for the body), only its first
 * 5 bytes: a request still arriving, until `finish()`. The caller destroys `socket`.
 */
export async function startArrivingPost(url: string, body: string): Promise<ArrivingPost> {
  let answer = '';
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  try {
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await once(socket, 'connect');
    socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
    await eventually(() => answer.includes('100 Continue'));
    socket.write(body.slice(0, 5));
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return { socket, answer: () => answer, finish: () => socket.write(body.slice(5)) };
}
