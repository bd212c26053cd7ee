import autocannon, { type Result } from 'autocannon';
import { startChild, type Child } from './ipc.ts';
import type { BenchSeed, Scenario } from './scenarios.ts';

/** What the benchmark measures, each in a process of its own (`contender-child.ts`). */
export const CONTENDERS = ['gateway', 'direct', 'naive', 'bare'] as const;
export type Contender = (typeof CONTENDERS)[number];

export const isContender = (name: string): name is Contender => (CONTENDERS as readonly string[]).includes(name);

/** A contender in a fresh process of its own, given the emulator's address and key and the connection cap. */
export function startContender(emulator: Child, contender: Contender, maxInFlight: number): Promise<Child> {
  return startChild('./contender-child.ts', [contender], {
    BENCH_UPSTREAM_URL: String(emulator.ready['url']),
    BENCH_UPSTREAM_KEY: String(emulator.ready['consumerKey']),
    BENCH_UPSTREAM_SECRET: String(emulator.ready['consumerSecret']),
    BENCH_UPSTREAM_MAX_IN_FLIGHT: String(maxInFlight),
  });
}

/** Where a scenario is posted on a contender, and with what body (the direct contender has a path per scenario). */
export function target(child: Child, contender: Contender, scenario: Scenario, seed: BenchSeed): { url: string; body: string } {
  const base = String(child.ready['url']);
  return {
    url: contender === 'direct' ? `${base}/${scenario.id}` : base,
    body: JSON.stringify({ query: scenario.query, variables: scenario.variables(seed) }),
  };
}

/** `connections` clients POSTing `body` to `url` for `seconds`; any GraphQL error counts as a mismatch. */
export async function loadContender(url: string, body: string, seconds: number, connections: number): Promise<Result> {
  return await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
    verifyBody: (text) => !text.includes('"errors"'),
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
export async function measureLoad(child: Child, url: string, body: string, seconds: number, connections: number) {
  const before = await stats(child);
  const result = await loadContender(url, body, seconds, connections);
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
