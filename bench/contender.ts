import { wholeNumberSetting } from '../src/config/settings.ts';
import { startChild, type Child } from './ipc.ts';
import { performance } from 'node:perf_hooks';
import autocannon, { type Result } from 'autocannon';
import type { BenchSeed, Scenario } from './scenarios.ts';

/** What the benchmark measures, each in a process of its own (`contender-child.ts`). */
export const CONTENDERS = ['gateway', 'deployed', 'direct', 'naive', 'bare'] as const;
export type Contender = (typeof CONTENDERS)[number];

export const isContender = (name: string): name is Contender => (CONTENDERS as readonly string[]).includes(name);

/** BENCH_CONNECTIONS: the load's concurrent connections (10 when unset or empty); a problem with it joins `problems`. */
export const connectionsSetting = (problems: string[]): number =>
  wholeNumberSetting('BENCH_CONNECTIONS', process.env['BENCH_CONNECTIONS']?.trim() || undefined, { min: 1, max: 10_000 }, problems) ?? 10;

/** A contender in a fresh process of its own, given the emulator's address and key and the connection cap. */
export function startContender(emulator: Child, contender: Contender, maxInFlight: number): Promise<Child> {
  return startChild(
    './contender-child.ts',
    [contender],
    {
      BENCH_UPSTREAM_URL: String(emulator.ready['url']),
      BENCH_UPSTREAM_KEY: String(emulator.ready['consumerKey']),
      BENCH_UPSTREAM_SECRET: String(emulator.ready['consumerSecret']),
      BENCH_UPSTREAM_MAX_IN_FLIGHT: String(maxInFlight),
    },
    // The deployed gateway logs a line an operation: read from a pipe, as a log collector would, not printed.
    { drainStderr: contender === 'deployed' },
  );
}

/** What a scenario's operations are sent as: where, with what body, with which headers besides the JSON content type. */
export interface Target {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** Where a scenario is posted on a contender (the direct contender has a path per scenario), with what body and headers. */
export function target(child: Child, contender: Contender, scenario: Scenario, seed: BenchSeed): Target {
  const base = String(child.ready['url']);
  return {
    url: contender === 'direct' ? `${base}/${scenario.id}` : base,
    body: JSON.stringify({ query: scenario.query, variables: scenario.variables(seed) }),
    headers: { 'content-type': 'application/json', ...(child.ready['headers'] as Record<string, string> | undefined) },
  };
}

/** A target whose first answer was checked (`checkedTarget`): each answer under load must be that one. */
export interface CheckedTarget extends Target {
  answer: string;
}

/**
 * How long an operation sent alone may take: far longer than any of the bench's, even at 50 ms upstream latency on a
 * loaded machine, so that a contender that stopped answering fails the run rather than holding it for ever.
 */
const ALONE_TIMEOUT_MS = 60_000;

/**
 * One operation sent alone: its HTTP status, its answer as sent, and how long the whole exchange took. On a checked
 * target it throws unless the answer is the checked first one: the operations alone and the round-trip probes are
 * figures only of right answers (errors answered at once would look fast).
 */
export async function post(to: Target | CheckedTarget, timeoutMs = ALONE_TIMEOUT_MS): Promise<{ status: number; text: string; ms: number }> {
  const { url, body, headers } = to;
  const started = performance.now();
  try {
    const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    const ms = performance.now() - started;
    if ('answer' in to && (response.status !== 200 || text !== to.answer)) {
      throw new Error(`${url} answered other than its checked first answer: HTTP ${response.status} ${text.slice(0, 300)}`);
    }
    return { status: response.status, text, ms };
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError') throw new Error(`${url} gave no answer within ${timeoutMs / 1000} s`);
    throw error;
  }
}

/**
 * The scenario's first answer on `to`, checked before anything is timed (HTTP 200, data without errors, the scenario's
 * own check of that data): `to` with that answer, which every answer under load must then be; or what is wrong with it.
 */
export async function checkedTarget(to: Target, scenario: Scenario): Promise<CheckedTarget | string> {
  const { status, text } = await post(to);
  let json: { data?: Record<string, unknown> | null; errors?: unknown } | undefined;
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // Said below with the text itself.
  }
  if (status !== 200 || !json?.data || json.errors) return `HTTP ${status} ${text.slice(0, 500)}`;
  const problem = scenario.check(json.data);
  return problem === undefined ? { ...to, answer: text } : `wrong answer: ${problem}`;
}

/**
 * `connections` clients POSTing the target's body for `seconds`. An answer other than the checked first one, byte for
 * byte, counts as a mismatch: GraphQL errors, and an answer with less in it (`"account": null`, part of a list) that
 * holds none, which counting only `"errors"` timed as done. The bench's operations read data nothing changes, or
 * change it to what it already is, so each answer is the same (its seed is ASCII: autocannon joins a body's chunks as
 * UTF-8 text one by one, which would garble a character split between two).
 */
export async function loadContender({ url, body, headers, answer }: CheckedTarget, seconds: number, connections: number): Promise<Result> {
  return await autocannon({
    url,
    method: 'POST',
    headers,
    body,
    connections,
    duration: seconds,
    verifyBody: (text) => text === answer,
  });
}

async function stats(child: Child) {
  const reply = await child.call('stats');
  return {
    cpuMicros: Number(reply['cpuMicros']),
    systemMicros: Number(reply['systemMicros']),
    contextSwitches: Number(reply['contextSwitches']),
    maxRssBytes: Number(reply['maxRssBytes']),
  };
}

/** A load on a contender, with the CPU its process spent per completed operation and its peak RSS after. */
export async function measureLoad(child: Child, to: CheckedTarget, seconds: number, connections: number) {
  const before = await stats(child);
  const result = await loadContender(to, seconds, connections);
  const after = await stats(child);
  const ops = Math.max(1, result.requests.total);
  return {
    result,
    cpuMicrosPerOp: (after.cpuMicros - before.cpuMicros) / ops,
    systemMicrosPerOp: (after.systemMicros - before.systemMicros) / ops,
    contextSwitchesPerOp: (after.contextSwitches - before.contextSwitches) / ops,
    peakRssBytes: after.maxRssBytes,
  };
}
