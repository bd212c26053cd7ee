import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { TestContext } from 'node:test';
import {
  authorizationHeader,
  encodeFormPairs,
  parseFormPairs,
  protocolParams,
  sign,
  type OAuthParam,
} from '../../src/oauth/signature.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';

/** Test helpers: a started emulator that closes itself, and requests signed like a real client. */

/** Starts an emulator on 127.0.0.1:0 and closes it when the test ends. */
export async function emulatorFor(t: TestContext, options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await startEmulator({ port: 0, host: '127.0.0.1', ...options });
  t.after(() => emulator.close());
  return emulator;
}

export interface SignedOptions {
  method?: string;
  /** Form body, sent as application/x-www-form-urlencoded and signed. */
  form?: Record<string, string> | OAuthParam[];
  key?: string;
  secret?: string;
  nonce?: string;
  /** Unix seconds; defaults to the wall clock. */
  timestamp?: number;
  /** Replaces the Authorization header (`null` sends none). */
  authorization?: string | null;
  signal?: AbortSignal;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** The Authorization header a client would send for this request. */
export function signRequest(
  method: string,
  url: string,
  formPairs: readonly OAuthParam[],
  key: string,
  secret: string,
  nonce = randomBytes(12).toString('hex'),
  timestamp = Math.floor(Date.now() / 1000),
): string {
  const q = url.indexOf('?');
  const baseUrl = q < 0 ? url : url.slice(0, q);
  const queryPairs = q < 0 ? [] : parseFormPairs(url.slice(q + 1));
  const protocol = protocolParams(key, nonce, String(timestamp));
  const signature = sign({ method, baseUrl, params: [...queryPairs, ...formPairs, ...protocol], consumerSecret: secret });
  return authorizationHeader(protocol, signature);
}

/** A signed API call; `path` is relative to the emulator's `/2.0` base and may carry a query. */
export async function api(emulator: Emulator, path: string, options: SignedOptions = {}): Promise<ApiResponse> {
  const method = options.method ?? (options.form ? 'POST' : 'GET');
  const url = `${emulator.url}${path}`;
  const formPairs: OAuthParam[] = options.form
    ? Array.isArray(options.form)
      ? options.form
      : Object.entries(options.form)
    : [];
  const headers: Record<string, string> = {};
  const authorization =
    options.authorization !== undefined
      ? options.authorization
      : signRequest(
          method,
          url,
          formPairs,
          options.key ?? emulator.consumerKey,
          options.secret ?? emulator.consumerSecret,
          options.nonce,
          options.timestamp,
        );
  if (authorization !== null) headers.authorization = authorization;
  let body: string | undefined;
  if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = encodeFormPairs(formPairs);
  }
  const response = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A plain node:http request, for what fetch will not do (a custom Host header, no redirect following). */
export function rawRequest(
  origin: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<RawResponse> {
  const target = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: {
          ...(options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(options.body)) }),
          ...options.headers,
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The connect page's form for `token` sent as a browser sends it (no redirect followed). */
export function submitConnectForm(origin: string, token: string, form: Record<string, string>): Promise<RawResponse> {
  return rawRequest(origin, {
    method: 'POST',
    path: `/connect/${token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

/** A controllable clock in ms for `EmulatorOptions.now`. */
export function manualClock(startMs = Date.now()): { now: () => number; advance: (seconds: number) => void } {
  let current = startMs;
  return {
    now: () => current,
    advance: (seconds) => {
      current += seconds * 1000;
    },
  };
}

/** A loopback server that takes each request and never answers, for callers' deadlines and cancellations. */
export interface SilentServer {
  port: number;
  /** One per request, in order: whether its connection has closed since. */
  requests: Array<{ closed: boolean }>;
  /** Cuts the connections it holds (none of them would ever end), then stops listening. */
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const requests: Array<{ closed: boolean }> = [];
  const server = createServer((req) => {
    const request = { closed: false };
    requests.push(request);
    req.socket.on('close', () => (request.closed = true));
    req.resume();
  });
  return {
    port: await listenOnLoopback(server),
    requests,
    close: () => closeServer(server),
  };
}
