import type { Contender } from './contender.ts';
import { median, shownAgainstBound } from './figures.ts';
import { scenarios, type Scenario } from './scenarios.ts';

/** The tables of `npm run bench`'s report (bench/results.md) and the targets judged on their figures. */

export const CONTENDER_LABEL: Record<Contender, string> = {
  gateway: 'gateway',
  deployed: 'gateway as deployed (token, info log)',
  direct: 'direct REST (floor)',
  naive: 'naive Apollo + DataLoader',
  bare: 'bare Apollo (constant)',
};

/** One figure of the table: a scenario against a contender at an upstream latency. */
export interface Row {
  scenario: Scenario;
  contender: Contender;
  latencyMs: number;
  rps: number;
  p50: number;
  p99: number;
  /** Median latency of operations sent one at a time: what the gateway adds when nothing queues. */
  p50Alone: number;
  operations: number;
  /** Upstream requests of one operation run alone; null for the bare contender (none by design). */
  upstreamPerOp: number | null;
  /** The same under load: the emulator's log delta over the operations completed. */
  upstreamPerOpUnderLoad: number | null;
  roundTrips: number | null;
  cpuMicrosPerOp: number;
  peakRssBytes: number;
}

/** Each interleaved run of one contender: its CPU µs per operation and its requests per second. */
export type CpuRounds = Map<Contender, { cpu: number[]; rps: number[] }>;

/** What the load was: its concurrent connections, and the gateway's upstream connections (UPSTREAM_MAX_IN_FLIGHT). */
export interface LoadShape {
  connections: number;
  maxInFlight: number;
}

const fmt = (n: number | null, digits = 0) => (n === null ? '–' : n.toFixed(digits));
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

export function table(rows: Row[]): string {
  const lines = [
    '| scenario | contender | upstream latency | req/s | p50 ms | p99 ms | p50 alone ms | upstream req/op | round trips | CPU µs/op | peak RSS MiB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const perOp = r.upstreamPerOp === null ? '–' : `${r.upstreamPerOp} (${fmt(r.upstreamPerOpUnderLoad, 1)})`;
    lines.push(
      `| ${r.scenario.title} | ${CONTENDER_LABEL[r.contender]} | ${r.latencyMs} ms | ${fmt(r.rps)} | ${r.p50} | ${r.p99} | ${fmt(r.p50Alone, 1)} | ${perOp} | ${fmt(r.roundTrips)} | ${fmt(r.cpuMicrosPerOp)} | ${mib(r.peakRssBytes)} |`,
    );
  }
  return lines.join('\n');
}

const lowest = (xs: readonly number[]) => Math.min(...xs);

export function cpuTable(rounds: CpuRounds): string {
  const lines = [
    '| contender | CPU µs/op in each run | min | median | req/s in each run | max |',
    '| --- | --- | ---: | ---: | --- | ---: |',
  ];
  for (const [contender, { cpu, rps }] of rounds) {
    lines.push(
      `| ${CONTENDER_LABEL[contender]} | ${cpu.map((x) => fmt(x)).join(', ')} | ${fmt(lowest(cpu))} | ${fmt(median(cpu))} | ` +
        `${rps.map((x) => fmt(x)).join(', ')} | ${fmt(Math.max(...rps))} |`,
    );
  }
  return lines.join('\n');
}

export function targets(rows: Row[], cpuRounds: CpuRounds | null, { connections, maxInFlight }: LoadShape): string {
  const find = (scenario: Scenario['id'], contender: Contender, latencyMs: number) =>
    rows.find((r) => r.scenario.id === scenario && r.contender === contender && r.latencyMs === latencyMs);
  const lines = ['| target | measured | met |', '| --- | --- | :---: |'];
  const add = (target: string, measured: string, met: boolean | undefined) =>
    lines.push(`| ${target} | ${measured} | ${met === undefined ? 'n/a' : met ? 'yes' : '**no**'} |`);
  for (const s of scenarios) {
    const g = find(s.id, 'gateway', 0);
    add(
      `${s.title}: ${s.expected.requests} upstream requests in ${s.expected.roundTrips} round trip(s)`,
      g ? `${g.upstreamPerOp} in ${g.roundTrips}` : 'not measured',
      g && g.upstreamPerOp === s.expected.requests && g.roundTrips === s.expected.roundTrips,
    );
  }
  const fan = find('fanout', 'gateway', 20);
  // The fan-out's account requests: all but its token list.
  const fanoutAccounts = scenarios.find((s) => s.id === 'fanout')!.expected.requests - 1;
  const fanFloor = find('fanout', 'direct', 20);
  add(
    'fan-out p50 at 20 ms upstream latency ≤ 2 × 20 + 10 = 50 ms (operations one at a time)',
    fan ? `${shownAgainstBound(fan.p50Alone, 'at most', 1)} ms (direct REST ${fanFloor ? fanFloor.p50Alone.toFixed(1) : '–'} ms)` : 'not measured',
    fan && fan.p50Alone <= 50,
  );
  add(
    `the same under load (${connections} connections: ${connections * fanoutAccounts} account requests at once against ${maxInFlight} upstream connections)`,
    fan ? `${fan.p50} ms (direct REST ${fanFloor ? fanFloor.p50 : '–'} ms)` : 'not measured',
    fan && fan.p50 <= 50,
  );
  // From the interleaved runs when made (noise only adds CPU and takes throughput away: the best of each),
  // else from the one run each of the table.
  const interleaved = cpuRounds !== null;
  const best = (contender: Contender, row: Row | undefined) => {
    const runs = cpuRounds?.get(contender);
    if (runs) return { cpu: lowest(runs.cpu), rps: Math.max(...runs.rps) };
    return row && { cpu: row.cpuMicrosPerOp, rps: row.rps };
  };
  const g1 = best('gateway', find('account', 'gateway', 0));
  const b1 = best('bare', find('account', 'bare', 0));
  const n1 = best('naive', find('account', 'naive', 0));
  const basis = interleaved ? 'the best of the interleaved runs below' : 'one run each: the interleaved runs were not made';
  add(
    `scenario 1 at 0 ms: gateway CPU/op ≤ 1.5 × bare Apollo’s (${basis})`,
    g1 && b1
      ? `${fmt(g1.cpu)} µs vs ${fmt(b1.cpu)} µs (${shownAgainstBound(g1.cpu / b1.cpu, 'at most', 2)} ×)` +
          (n1 ? `; naive ${fmt(n1.cpu)} µs, the gateway at ${(g1.cpu / n1.cpu).toFixed(2)} × it` : '')
      : 'not measured',
    g1 && b1 && g1.cpu <= 1.5 * b1.cpu,
  );
  add(
    `scenario 1 at 0 ms: gateway throughput ≥ 1.25 × naive’s (${basis})`,
    g1 && n1 ? `${fmt(g1.rps)} vs ${fmt(n1.rps)} req/s (${shownAgainstBound(g1.rps / n1.rps, 'at least', 2)} ×)` : 'not measured',
    g1 && n1 && g1.rps >= 1.25 * n1.rps,
  );
  // Not a target: the CPU target's own figures (bare Apollo ~140 µs, the naive baseline ~300, "the whole upstream
  // path may add at most about 70 µs") as a share that does not depend on how fast the machine runs Apollo:
  // what the gateway's upstream path adds to bare Apollo, of what the naive baseline's adds (70 of 160: 0.44).
  if (g1 && b1 && n1 && n1.cpu > b1.cpu) {
    add(
      `scenario 1 at 0 ms: what the gateway adds to bare Apollo’s CPU/op, as a share of what the naive baseline adds (the issue’s figures allow ~70 of ~160 µs, 0.44; ${basis})`,
      `${fmt(g1.cpu - b1.cpu)} of ${fmt(n1.cpu - b1.cpu)} µs (${((g1.cpu - b1.cpu) / (n1.cpu - b1.cpu)).toFixed(2)})`,
      undefined,
    );
  }
  // Not a target: the same figures with authentication and logging on, as a deployment runs.
  const d1 = best('deployed', find('account', 'deployed', 0));
  if (d1) {
    add(
      `scenario 1 at 0 ms as deployed (a Bearer token on every request, \`info\` log into a pipe; ${basis})`,
      `${fmt(d1.cpu)} µs CPU/op (${b1 ? `${(d1.cpu / b1.cpu).toFixed(2)} × bare Apollo’s, ` : ''}${g1 ? `${d1.cpu >= g1.cpu ? '+' : '−'}${fmt(Math.abs(d1.cpu - g1.cpu))} µs against the open gateway’s` : ''}); ` +
        `${fmt(d1.rps)} req/s${n1 ? ` (${(d1.rps / n1.rps).toFixed(2)} × naive’s)` : ''}`,
      undefined,
    );
  }
  return lines.join('\n');
}
