import { DEFAULTS } from '../src/config/defaults.ts';
import { isContender, loadContender, measureLoad, startContender, target } from './contender.ts';
import { startChild } from './ipc.ts';
import { scenarios, type BenchSeed } from './scenarios.ts';

/**
 * A quick CPU-per-operation loop for profiling work: one scenario against one contender at 0 ms upstream
 * latency, repeated, with none of the full run's probes and checks. Not a substitute for `npm run bench`.
 *
 *   npx tsx bench/quick.ts [scenario=account] [contender=gateway] [seconds=5] [repeats=3]
 *   BENCH_CPU_PROF=gateway npx tsx bench/quick.ts fanout   # with a profile in bench/profiles/
 */
const [scenarioId = 'account', contender = 'gateway', seconds = '5', repeats = '3'] = process.argv.slice(2);
const scenario = scenarios.find((s) => s.id === scenarioId);
if (!scenario) throw new Error(`unknown scenario ${scenarioId}`);
if (!isContender(contender)) throw new Error(`unknown contender ${contender}`);

const emulator = await startChild('./emulator-child.ts', ['emulator']);
const child = await startContender(emulator, contender, DEFAULTS.upstreamMaxInFlight);
try {
  const to = target(child, contender, scenario, emulator.ready['seed'] as BenchSeed);
  const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 10);
  await loadContender(to, 5, connections);
  for (let i = 0; i < Number(repeats); i++) {
    const { result, cpuMicrosPerOp, systemMicrosPerOp, contextSwitchesPerOp } = await measureLoad(child, to, Number(seconds), connections);
    console.log(
      `${scenario.id} × ${contender}: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, ` +
        `${cpuMicrosPerOp.toFixed(0)} µs CPU/op (${systemMicrosPerOp.toFixed(0)} system), ` +
        `${contextSwitchesPerOp.toFixed(2)} context switches/op, ${result.non2xx + result.errors + result.mismatches} bad`,
    );
  }
} finally {
  await child.stop();
  await emulator.stop();
}
