import { performance } from 'node:perf_hooks';
import type { Pool } from 'undici';
import { ErrorCode, HttpRefusalCode, OPERATION_CODES } from '../../src/errors.ts';
import { CLIENT_TIMEOUT_MS, settings } from './settings.ts';

/** The soak's clients: one request sent and its answer checked, and the tallies of all of them. */

/**
 * Codes a well-formed answer may carry: the contract's, those Apollo and graphql-js raise themselves, and the
 * gateway's refusal of an operation for load (past MAX_OPERATIONS_IN_FLIGHT, with `--connections` above it; the
 * caps on bodies and answers held, MAX_BODY_BYTES_IN_FLIGHT and MAX_ANSWER_BYTES_IN_FLIGHT, answer the same).
 */
const KNOWN_CODES: ReadonlySet<string> = new Set([...Object.values(ErrorCode), ...OPERATION_CODES, HttpRefusalCode.SERVICE_UNAVAILABLE]);

export interface KindStats {
  sent: number;
  answered: number;
  aborted: number;
  latenciesMs: number[];
  codes: Map<string, number>;
}

export const totals = {
  sent: 0,
  answered: 0,
  abortedOnPurpose: 0,
  transportErrors: 0,
  noAnswer: 0,
  malformed: 0,
  wrong: 0,
  latenciesMs: [] as number[],
  byStatus: new Map<number, number>(),
  byCode: new Map<string, number>(),
  byKind: new Map<string, KindStats>(),
  samples: { malformed: [] as string[], wrong: [] as string[], transport: [] as string[], internal: [] as string[] },
};
export const bump = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by);
const kindStats = (kind: string): KindStats => {
  let stats = totals.byKind.get(kind);
  if (!stats) totals.byKind.set(kind, (stats = { sent: 0, answered: 0, aborted: 0, latenciesMs: [], codes: new Map() }));
  return stats;
};
const sample = (list: string[], text: string) => {
  if (list.length < 5) list.push(text.slice(0, 800));
};

export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message?: unknown; extensions?: { code?: unknown; stacktrace?: unknown } }>;
}

/** Why an answer is not well-formed GraphQL over HTTP, or undefined when it is. */
function malformation(status: number, contentType: string, text: string, secret: string): string | undefined {
  if (!/^application\/(graphql-response\+)?json\b/.test(contentType)) return `content-type ${JSON.stringify(contentType)}`;
  if (text.includes(secret)) return 'the body contains the consumer secret';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'the body is not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body is not a JSON object';
  const { data, errors } = body as GraphQLBody;
  if (data === undefined && errors === undefined) return 'neither data nor errors';
  if (data !== undefined && data !== null && (typeof data !== 'object' || Array.isArray(data))) return 'data is not an object';
  if (status === 200 && data === undefined) return '200 without data';
  if (status !== 200 && errors === undefined) return `${status} without errors`;
  // The one 5xx a well-behaved gateway answers: an operation refused for load, to be retried.
  const refusedForLoad = status === 503 && Array.isArray(errors) && errors.every((error) => error?.extensions?.code === HttpRefusalCode.SERVICE_UNAVAILABLE);
  if (status >= 500 && !refusedForLoad) return `HTTP ${status}`;
  if (errors !== undefined) {
    if (!Array.isArray(errors) || errors.length === 0) return 'errors is not a non-empty array';
    for (const error of errors) {
      if (typeof error !== 'object' || error === null || typeof error.message !== 'string') return 'an error without a message';
      const code = error.extensions?.code;
      if (typeof code !== 'string' || !KNOWN_CODES.has(code)) return `an error with code ${JSON.stringify(code)}`;
      if (error.extensions?.stacktrace !== undefined) return 'an error with a stack trace';
    }
  }
  return undefined;
}

export interface Answer {
  status: number;
  body: GraphQLBody;
}

const ABORTED_ON_PURPOSE = new Error('soak: aborted on purpose');
const CLIENT_TIMEOUT = new Error('soak: no answer in time');

/** What the load shares: whether it is stopping, the clients' connection pool, the secret no answer may hold. */
export const run = {
  stopping: false,
  pool: undefined as Pool | undefined,
  consumerSecret: '',
};

/**
 * Sends one request and checks its answer; undefined when there is none to use (aborted, failed, or the
 * request cap is reached).
 */
export async function send(
  kind: string,
  request: { method?: 'GET' | 'POST'; path?: string; body?: string; headers?: Record<string, string> },
  abortAfterMs?: number,
): Promise<Answer | undefined> {
  if (totals.sent >= settings.maxRequests) {
    run.stopping = true;
    return undefined;
  }
  totals.sent++;
  const stats = kindStats(kind);
  stats.sent++;
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(CLIENT_TIMEOUT), CLIENT_TIMEOUT_MS);
  const abortTimer = abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(ABORTED_ON_PURPOSE), abortAfterMs);
  const started = performance.now();
  try {
    const response = await run.pool!.request({
      method: request.method ?? 'POST',
      path: request.path ?? '/graphql',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...request.headers },
      body: request.body,
      signal: controller.signal,
    });
    const text = await response.body.text();
    const latency = performance.now() - started;
    totals.answered++;
    stats.answered++;
    totals.latenciesMs.push(latency);
    stats.latenciesMs.push(latency);
    bump(totals.byStatus, response.statusCode);
    const contentType = String(response.headers['content-type'] ?? '');
    const problem = malformation(response.statusCode, contentType, text, run.consumerSecret);
    if (problem) {
      totals.malformed++;
      sample(totals.samples.malformed, `${kind}: ${problem}: HTTP ${response.statusCode} ${text}`);
      return undefined;
    }
    const body = JSON.parse(text) as GraphQLBody;
    for (const error of body.errors ?? []) {
      const code = String(error.extensions?.code);
      bump(totals.byCode, code);
      bump(stats.codes, code);
      if (code === 'INTERNAL_SERVER_ERROR') sample(totals.samples.internal, `${kind}: ${text}`);
    }
    if (!body.errors?.length) bump(stats.codes, 'ok');
    return { status: response.statusCode, body };
  } catch (error) {
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
    if (reason === ABORTED_ON_PURPOSE) {
      totals.abortedOnPurpose++;
      stats.aborted++;
    } else if (reason === CLIENT_TIMEOUT) {
      totals.noAnswer++;
      sample(totals.samples.transport, `${kind}: no answer within ${CLIENT_TIMEOUT_MS} ms`);
    } else {
      totals.transportErrors++;
      sample(totals.samples.transport, `${kind}: ${error instanceof Error ? `${error.name} ${(error as { code?: string }).code ?? ''} ${error.message}` : String(error)}`);
    }
    return undefined;
  } finally {
    clearTimeout(timeout);
    clearTimeout(abortTimer);
  }
}

export const post = (query: string, variables?: Record<string, unknown>) => ({ body: JSON.stringify({ query, variables }) });

/** Records an answer that is well-formed but wrong for the question asked. */
export function wrong(kind: string, answer: Answer, why: string): void {
  totals.wrong++;
  sample(totals.samples.wrong, `${kind}: ${why}: ${JSON.stringify(answer.body).slice(0, 600)}`);
}
