import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Result } from 'autocannon';
import { DEFAULTS } from '../src/config/defaults.ts';
import { wholeNumberSetting } from '../src/config/settings.ts';
import { writeAtomically } from '../src/support/atomic-file.ts';
import { quotedSetting } from '../src/support/shortened.ts';
import { refuseToStart } from '../scripts/refuse-to-start.ts';
import { checkedTarget, connectionsSetting, CONTENDERS, isContender, loadContender, measureLoad, post, startContender, target, type CheckedTarget, type Contender } from './contender.ts';
import { median } from './figures.ts';
import { CONTENDER_LABEL, cpuTable, table, targets, type CpuRounds, type Row } from './report.ts';
import { nodeFlagsProblem, startChild, type Child } from './ipc.ts';
import { scenarios, type BenchSeed, type Scenario } from './scenarios.ts';

/**
 * `npm run bench`: every scenario against every contender, on one emulator with injected latency, all on
 * loopback. Contenders and the emulator run in child processes; this process only generates load.
 */

const USAGE = `usage: npm run bench (no options: it is set through the environment; bench/README.md says more)
  BENCH_ONLY=<scenario,...>       only these scenarios (account, fanout, dashboard, mutation); bench/results.md untouched
  BENCH_CONTENDERS=<contender,...> with BENCH_ONLY, only these contenders (gateway, deployed, direct, naive, bare)
  BENCH_DURATION=<s>              seconds of each measurement (default 5)
  BENCH_WARMUP=<s>                seconds of a fresh contender's warm-up (default 5)
  BENCH_CONNECTIONS=<n>           concurrent connections (default 10)
  BENCH_CPU_ROUNDS=<n>            interleaved scenario-1 CPU rounds (default 3; 0: none)
  BENCH_CPU_ROUND=<s>             seconds of each round (default 3)
  BENCH_MAX_IN_FLIGHT=<n>         the gateway's UPSTREAM_MAX_IN_FLIGHT (default ${DEFAULTS.upstreamMaxInFlight})
  BENCH_NODE_FLAGS=<flags>        with BENCH_ONLY, node flags for the contenders
  BENCH_CPU_PROF=<contender>      with BENCH_ONLY, node --cpu-prof of that contender (or the emulator), into bench/profiles/
The full run takes about 7 minutes and, when every check passes, rewrites bench/results.md.`;

/** What is wrong with how the bench was started, said before anything starts. */
const refuse: (problems: readonly string[]) => never = (problems) => refuseToStart('bench', USAGE, problems);

/**
 * The command line, read before anything starts: the bench takes no argument, and one given (`--help`, as
 * `npm run soak` takes, or a mistyped setting) must not start a run of several minutes that rewrites results.md.
 */
function readCommandLine(): void {
  let help: boolean | undefined;
  try {
    help = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } }).values.help;
  } catch (error) {
    refuse([error instanceof Error ? error.message : String(error)]);
  }
  if (help) {
    console.log(USAGE);
    process.exit(0);
  }
}
readCommandLine();

/** What is wrong with the BENCH_* settings, all said at once before anything starts. */
const settingProblems: string[] = [];
/**
 * A whole-number setting (empty is unset), checked as the gateway's own are: one that is no number
 * (`BENCH_DURATION=5s`) ran as NaN, autocannon's own duration with "NaN s per measurement" in the report.
 */
const env = (name: string, fallback: number, min = 1, max = 3600) =>
  wholeNumberSetting(name, process.env[name]?.trim() || undefined, { min, max }, settingProblems) ?? fallback;
/**
 * Seconds of each measurement, and of the warm-up of a fresh contender process before its first one: on the
 * Intel machine of bench/README.md, the first 3 s after 1 s or even 3 s of warm-up cost up to twice the CPU
 * per operation of the runs after them (the JIT and the young generation still growing), for the gateway and
 * bare Apollo alike. A figure taken later in the same process warms up 1 s.
 */
const DURATION_S = env('BENCH_DURATION', 5);
const WARMUP_S = env('BENCH_WARMUP', 5, 0);
const REWARM_S = Math.min(1, WARMUP_S);
const CONNECTIONS = connectionsSetting(settingProblems);
const LATENCIES_MS = [0, 20];
/**
 * Upstream latency while counting round trips: long enough that the requests a contender sends together all arrive
 * before the first of them is answered.
 */
const PROBE_LATENCY_MS = 50;
const PROBE_RUNS = 3;
/** Operations sent one at a time for the unloaded latency. */
const ALONE_RUNS = 15;
/** The gateway's default UPSTREAM_MAX_IN_FLIGHT (also given to the direct contender's client); BENCH_MAX_IN_FLIGHT overrides it. */
const MAX_IN_FLIGHT = env('BENCH_MAX_IN_FLIGHT', DEFAULTS.upstreamMaxInFlight, 1, 10_000);
/**
 * The names BENCH_ONLY, BENCH_CONTENDERS and BENCH_CPU_PROF give, checked before anything starts: one the bench
 * does not have (a typo, `fanut`) selected nothing, and the run measured nothing and exited 0.
 */
function namesSetting(name: string, what: string, known: readonly string[]): string[] | undefined {
  // Empty is unset, as for the numbers.
  const names = (process.env[name] || undefined)?.split(',').map((item) => item.trim());
  const unknown = names?.filter((item) => !known.includes(item));
  if (unknown !== undefined && unknown.length > 0) settingProblems.push(`${name} must name ${what} among ${known.join(', ')} (got ${unknown.map(quotedSetting).join(', ')})`);
  return names;
}
const ONLY = namesSetting('BENCH_ONLY', 'scenarios', scenarios.map((s) => s.id));
/** BENCH_CONTENDERS narrows a partial (BENCH_ONLY) run to some contenders. */
const ONLY_CONTENDERS = namesSetting('BENCH_CONTENDERS', 'contenders', CONTENDERS);
if (ONLY_CONTENDERS && !ONLY) {
  // A full run measures every contender: the setting was ignored for a run of minutes that rewrites results.md.
  settingProblems.push('BENCH_CONTENDERS narrows a BENCH_ONLY run: give BENCH_ONLY too (a full run measures every contender)');
}
const cpuProf = process.env['BENCH_CPU_PROF'] || undefined;
if (cpuProf !== undefined && cpuProf !== 'emulator' && !isContender(cpuProf)) {
  settingProblems.push(`BENCH_CPU_PROF must name a contender among ${CONTENDERS.join(', ')}, or emulator (got ${quotedSetting(cpuProf)})`);
} else if (cpuProf !== undefined && isContender(cpuProf) && ONLY_CONTENDERS && !ONLY_CONTENDERS.includes(cpuProf)) {
  // A contender the run never starts is never profiled: the run ended without the profile it was started for.
  settingProblems.push(`BENCH_CPU_PROF names ${cpuProf}, which BENCH_CONTENDERS leaves out: no profile would be made`);
}
const scenarioSelected = (id: Scenario['id']) => !ONLY || ONLY.includes(id);
const contenderSelected = (contender: Contender) => !ONLY_CONTENDERS || ONLY_CONTENDERS.includes(contender);
/**
 * The scenario-1 CPU and throughput targets are judged on interleaved repeats rather than the one figure of
 * the table: on a shared 2-CPU machine one 5 s figure varies by ±30–40%, and noise only ever adds CPU (and
 * takes throughput away), so the best of several runs taken in turns is the steadier comparison.
 */
const CPU_ROUNDS = env('BENCH_CPU_ROUNDS', 3, 0, 100);
/** Seconds of each interleaved run. */
const CPU_ROUND_S = env('BENCH_CPU_ROUND', 3);
const flagsProblem = nodeFlagsProblem();
if (flagsProblem !== undefined) settingProblems.push(flagsProblem);
if (!ONLY) {
  // A full run rewrites results.md, whose contenders bench/README.md describes as they run here by default: a run set
  // otherwise wrote figures that said nothing of it.
  if (cpuProf !== undefined) {
    settingProblems.push("BENCH_CPU_PROF profiles a BENCH_ONLY run: give BENCH_ONLY too (a full run rewrites bench/results.md, whose figures would carry the profiler's cost)");
  }
  if (process.env['BENCH_NODE_FLAGS']?.trim()) {
    settingProblems.push('BENCH_NODE_FLAGS tries flags on a BENCH_ONLY run: give BENCH_ONLY too (a full run rewrites bench/results.md, whose contenders run with the flags bench/README.md gives them)');
  }
  const nodeEnv = process.env['NODE_ENV']?.trim();
  if (nodeEnv && nodeEnv !== 'production') {
    settingProblems.push(
      `NODE_ENV ${quotedSetting(nodeEnv)} would run graphql-js outside production in every contender, as npm start does not: unset it, or give BENCH_ONLY (a full run rewrites bench/results.md)`,
    );
  }
}
if (settingProblems.length > 0) refuse(settingProblems);
/** The interleaved runs need the three the targets compare; the deployed gateway joins them when selected. */
const CPU_TARGET_CONTENDERS = ['gateway', 'bare', 'naive'] as const satisfies readonly Contender[];
const CPU_CONTENDERS: readonly Contender[] = ['gateway', 'deployed', 'bare', 'naive'];
/**
 * Measured at 0 ms upstream latency only: bare Apollo never calls the upstream, and what the deployed gateway
 * adds to the gateway (a token verified, a log line) does not depend on the upstream's latency.
 */
const ONLY_AT_0_MS: readonly Contender[] = ['deployed', 'bare'];

const failures: string[] = [];
const fail = (message: string) => {
  failures.push(message);
  console.error(`FAIL: ${message}`);
};

const load = (to: CheckedTarget, seconds: number) => loadContender(to, seconds, CONNECTIONS);
const measuredLoad = (child: Child, to: CheckedTarget, seconds: number) => measureLoad(child, to, seconds, CONNECTIONS);

/** Fails the run when a load's answers were not all 2xx and the checked first answer; returns the operations done. */
function checkLoad(label: string, result: Result): number {
  const operations = result.requests.total;
  const broken = result.non2xx + result.errors + result.timeouts + result.mismatches;
  if (broken > 0 || operations === 0) {
    fail(
      `${label}: ${operations} operations, ${result.non2xx} non-2xx, ${result.errors} errors, ` +
        `${result.timeouts} timeouts, ${result.mismatches} other than the checked first answer (GraphQL errors or other data)`,
    );
  }
  return operations;
}

async function measure(emulator: Child, scenario: Scenario, contender: Contender, seed: BenchSeed, reference: Map<string, string>): Promise<Row[]> {
  const child = await startContender(emulator, contender, MAX_IN_FLIGHT);
  const rows: Row[] = [];
  const label = `${scenario.id} × ${contender}`;
  try {
    // The answer must be right before it is timed, and each one under load the same.
    const to = await checkedTarget(target(child, contender, scenario, seed), scenario);
    if (typeof to === 'string') {
      fail(`${label}: ${to}`);
      return rows;
    }
    if (contender !== 'bare') {
      // Every contender over the same data (GraphQL implementations of one schema, and the direct floor answering
      // their shape) must answer the same: the scenario's check alone reads only a few fields.
      const text = JSON.stringify((JSON.parse(to.answer) as { data: unknown }).data);
      const other = reference.get(scenario.id);
      if (other === undefined) reference.set(scenario.id, text);
      else if (other !== text) fail(`${label}: answer differs from the other contenders':\n  ${text.slice(0, 300)}\n  ${other.slice(0, 300)}`);
    }
    for (let i = 0; i < 20; i++) await post(to);

    let upstreamPerOp: number | null = null;
    let roundTrips: number | null = null;
    if (contender !== 'bare') {
      await emulator.call('clear');
      await post(to);
      upstreamPerOp = Number((await emulator.call('count'))['count']);
      // Counted by the emulator from which requests arrived after which answers (emulator-child.ts); a stall of the
      // contender's could only add one, so the least of a few operations.
      await emulator.call('latency', { ms: PROBE_LATENCY_MS });
      roundTrips = Infinity;
      for (let i = 0; i < PROBE_RUNS; i++) {
        await emulator.call('clear');
        await post(to);
        roundTrips = Math.min(roundTrips, Number((await emulator.call('count'))['roundTrips']));
      }
      await emulator.call('latency', { ms: 0 });
    }

    let warmup = WARMUP_S;
    for (const latencyMs of ONLY_AT_0_MS.includes(contender) ? [0] : LATENCIES_MS) {
      await emulator.call('latency', { ms: latencyMs });
      // Operations cut off when a load stops still finish upstream; this waits for them.
      const settle = () => sleep(latencyMs * 3 + 100);
      // Warm before the operations alone too: a cold gateway took twice as long on one fan-out at 0 ms.
      if (warmup > 0) await load(to, warmup);
      warmup = REWARM_S;
      await settle(); // before the operations alone
      const alone: number[] = [];
      for (let i = 0; i < ALONE_RUNS; i++) alone.push((await post(to)).ms);
      const p50Alone = median(alone);
      await emulator.call('clear');
      const linesBefore = child.stderrLines();
      const { result, cpuMicrosPerOp, peakRssBytes } = await measuredLoad(child, to, DURATION_S);
      await settle(); // before counting: their requests are few against the total
      const upstream = await emulator.call('count');
      const upstreamCount = Number(upstream['count']);
      const statuses = upstream['statuses'] as Record<string, number>;
      if (upstream['full'] === true) {
        // The log kept only its latest entries: the count, hence the req/op under load, and the statuses are short.
        fail(`${label} at ${latencyMs} ms: ${upstreamCount} upstream requests or more filled the emulator's request log; shorten BENCH_DURATION`);
      }
      // Status 0: the operation was cut off when the load stopped and its upstream call cancelled with it.
      const upstreamFailed = Object.entries(statuses).filter(([status]) => status !== '0' && !status.startsWith('2'));
      if (upstreamFailed.length > 0) {
        fail(`${label} at ${latencyMs} ms: the emulator answered ${upstreamFailed.map(([s, n]) => `${n} × ${s}`).join(', ')}`);
      }
      const operations = checkLoad(`${label} at ${latencyMs} ms`, result);
      if (contender === 'deployed') {
        // Its figures are what logging costs only if it logged: its `operation` line for every operation. The
        // last lines (held at most 20 ms) reached the pipe during settle() above.
        const logged = child.stderrLines() - linesBefore;
        if (logged < operations) fail(`${label} at ${latencyMs} ms: ${logged} log lines for ${operations} operations`);
      }
      rows.push({
        scenario,
        contender,
        latencyMs,
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        p50Alone,
        operations,
        upstreamPerOp,
        upstreamPerOpUnderLoad: contender === 'bare' ? null : upstreamCount / Math.max(1, operations),
        roundTrips,
        cpuMicrosPerOp,
        peakRssBytes,
      });
      console.log(
        `  ${label.padEnd(22)} ${String(latencyMs).padStart(2)} ms: ${result.requests.average.toFixed(0).padStart(6)} req/s, ` +
          `p50 ${result.latency.p50} ms (alone ${p50Alone.toFixed(1)}), p99 ${result.latency.p99} ms, ${upstreamPerOp ?? '-'} upstream/op, ` +
          `${roundTrips ?? '-'} round trips, ${cpuMicrosPerOp.toFixed(0)} µs CPU/op`,
      );
    }
  } catch (error) {
    // An operation sent alone answered wrong, or the contender stopped answering: this contender's figures end here.
    fail(`${label}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await child.stop();
    await emulator.call('latency', { ms: 0 });
  }
  return rows;
}

/**
 * Scenario 1 at 0 ms upstream latency on the gateway (open, and as deployed when selected), bare Apollo and the naive baseline, all started at
 * once and loaded in turns (the order rotating each round), so that whatever else the machine does while
 * one runs is spread over all of them.
 */
async function interleavedCpu(emulator: Child, seed: BenchSeed): Promise<CpuRounds> {
  const scenario = scenarios.find((s) => s.id === 'account')!;
  const rounds: CpuRounds = new Map();
  const children: Child[] = [];
  await emulator.call('latency', { ms: 0 });
  try {
    const runners = [];
    for (const contender of CPU_CONTENDERS.filter(contenderSelected)) {
      const child = await startContender(emulator, contender, MAX_IN_FLIGHT);
      children.push(child);
      const to = await checkedTarget(target(child, contender, scenario, seed), scenario);
      if (typeof to === 'string') {
        fail(`${scenario.id} × ${contender}, interleaved: ${to}`);
        continue;
      }
      if (WARMUP_S > 0) await load(to, WARMUP_S);
      const runs = { cpu: [] as number[], rps: [] as number[] };
      rounds.set(contender, runs);
      runners.push(async () => {
        // Idle while the others ran, the process may have shrunk its heap (V8's memory reducer): warm it again.
        if (REWARM_S > 0) await load(to, REWARM_S);
        const { result, cpuMicrosPerOp } = await measuredLoad(child, to, CPU_ROUND_S);
        checkLoad(`${scenario.id} × ${contender}, interleaved`, result);
        runs.cpu.push(cpuMicrosPerOp);
        runs.rps.push(result.requests.average);
      });
    }
    for (let round = 0; round < CPU_ROUNDS; round++) {
      for (let i = 0; i < runners.length; i++) await runners[(round + i) % runners.length]!();
    }
    console.log(`  interleaved CPU µs/op: ${[...rounds].map(([c, r]) => `${c} ${r.cpu.map((x) => x.toFixed(0)).join('/')}`).join(', ')}`);
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
  return rounds;
}


async function main() {
  const started = new Date();
  const loadBefore = loadavg();
  const machine = {
    cpus: availableParallelism(),
    model: cpus()[0]?.model ?? 'unknown',
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
  };
  console.log(`bench: ${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`bench: ${DURATION_S} s per measurement after ${WARMUP_S} s warm-up (${REWARM_S} s in a warm process), ${CONNECTIONS} connections, upstream latency ${LATENCIES_MS.join(' and ')} ms`);

  const emulator = await startChild('./emulator-child.ts', ['emulator']);
  const seed = emulator.ready['seed'] as BenchSeed;
  const rows: Row[] = [];
  let cpuRounds: CpuRounds | null = null;
  try {
    for (const scenario of scenarios) {
      if (!scenarioSelected(scenario.id)) continue;
      console.log(scenario.title);
      const reference = new Map<string, string>();
      for (const contender of CONTENDERS) {
        if (!contenderSelected(contender)) continue;
        rows.push(...(await measure(emulator, scenario, contender, seed, reference)));
      }
    }
    if (CPU_ROUNDS > 0 && scenarioSelected('account') && CPU_TARGET_CONTENDERS.every(contenderSelected)) {
      console.log(`scenario 1 CPU: ${CPU_ROUNDS} interleaved runs of ${CPU_ROUND_S} s each`);
      cpuRounds = await interleavedCpu(emulator, seed);
    }
  } finally {
    await emulator.stop();
  }

  const loadAfter = loadavg();
  const seconds = (Date.now() - started.getTime()) / 1000;
  const report = [
    '# Benchmark results',
    '',
    `Produced by \`npm run bench\` on ${started.toISOString()} in ${seconds.toFixed(0)} s. What each figure means and how it`,
    'is measured: [README.md](README.md).',
    '',
    `- Machine: ${machine.cpus} CPUs (\`os.availableParallelism()\`), ${machine.model}, ${machine.memory} RAM`,
    `- Node.js ${machine.node}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' / ')} before, ${loadAfter.map((l) => l.toFixed(2)).join(' / ')} after`,
    `- Each figure: ${DURATION_S} s of load after ${WARMUP_S} s of warm-up (${REWARM_S} s for a later figure of the same process), ${CONNECTIONS}`,
    '  connections, on loopback; the emulator, each contender and the load generator in separate processes sharing',
    '  the machine.',
    '',
    '## Targets (gateway)',
    '',
    targets(rows, cpuRounds, { connections: CONNECTIONS, maxInFlight: MAX_IN_FLIGHT }),
    '',
    ...(cpuRounds
      ? [
          '## Scenario 1 CPU, interleaved',
          '',
          `${[...cpuRounds.keys()].map((c) => CONTENDER_LABEL[c]).join(', ')}: started together and loaded in turns, ${CPU_ROUNDS} runs of ${CPU_ROUND_S} s each (the`,
          'order rotating each round) at 0 ms upstream latency. Noise on a shared machine only adds CPU and takes throughput away,',
          'so the scenario-1 targets are judged on the lowest CPU and the highest throughput of each.',
          '',
          cpuTable(cpuRounds),
          '',
        ]
      : []),
    '## All figures',
    '',
    'Upstream req/op: one operation alone (under load in brackets). Round trips: sequential upstream requests on',
    `the critical path, at ${PROBE_LATENCY_MS} ms upstream latency, from which requests reached the emulator after which answers. CPU and`,
    'peak RSS: the contender process only.',
    '',
    table(rows),
    '',
  ].join('\n');
  console.log(`\n${report}`);
  if (failures.length > 0) {
    console.error(`\nbench: ${failures.length} failure(s); bench/results.md left unchanged:\n- ${failures.join('\n- ')}`);
    process.exit(1);
  }
  if (ONLY) {
    console.log('bench: partial run (BENCH_ONLY): bench/results.md left unchanged');
    return;
  }
  // Whole or not at all: a temporary file renamed over it, as the soak writes its report.
  await writeAtomically(fileURLToPath(new URL('./results.md', import.meta.url)), report);
  console.log('bench: written to bench/results.md');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
