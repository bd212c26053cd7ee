import { DEFAULTS } from '../src/config/defaults.ts';
import { quotedSetting } from '../src/support/shortened.ts';
import { wholeNumberSetting } from '../src/config/settings.ts';
import { refuseToStart } from '../scripts/refuse-to-start.ts';
import { checkedTarget, connectionsSetting, CONTENDERS, isContender, loadContender, measureLoad, startContender, target } from './contender.ts';
import { nodeFlagsProblem, startChild } from './ipc.ts';
import { scenarios, type BenchSeed } from './scenarios.ts';

/**
 * A quick CPU-per-operation loop for profiling work: one scenario against one contender at 0 ms upstream
 * latency, repeated, with none of the full run's probes and checks. Not a substitute for `npm run bench`.
 *
 *   npx tsx bench/quick.ts [scenario=account] [contender=gateway] [seconds=5] [runs=3]
 *   BENCH_CPU_PROF=gateway npx tsx bench/quick.ts fanout   # with a profile in bench/profiles/
 */
const USAGE = 'usage: npx tsx bench/quick.ts [scenario=account] [contender=gateway] [seconds=5] [runs=3] (BENCH_CONNECTIONS=10)';

/**
 * What is wrong with the arguments, said before anything starts: a name it does not have was thrown with its stack
 * trace, and seconds that were no number ran as NaN, autocannon's own duration.
 */
const refuse: (problems: readonly string[]) => never = (problems) => refuseToStart('quick', USAGE, problems);

const argv = process.argv.slice(2);
if (argv.length > 4) refuse([`at most 4 arguments, not ${argv.length}`]);
const [scenarioId = 'account', contender = 'gateway', secondsArg = '5', repeatsArg = '3'] = argv;
const scenario = scenarios.find((s) => s.id === scenarioId);
if (!scenario) refuse([`no scenario ${quotedSetting(scenarioId)} (${scenarios.map((s) => s.id).join(', ')})`]);
if (!isContender(contender)) refuse([`no contender ${quotedSetting(contender)} (${CONTENDERS.join(', ')})`]);
// It profiles the processes it names (ipc.ts): here one contender and the emulator, so another name made no profile.
const cpuProf = process.env['BENCH_CPU_PROF'] || undefined;
if (cpuProf !== undefined && cpuProf !== contender && cpuProf !== 'emulator') {
  refuse([`BENCH_CPU_PROF must name the contender run (${contender}) or emulator (got ${quotedSetting(cpuProf)})`]);
}
const problems: string[] = [];
const seconds = wholeNumberSetting('seconds', secondsArg, { min: 1, max: 3600 }, problems);
const repeats = wholeNumberSetting('runs', repeatsArg, { min: 1, max: 100 }, problems);
const connections = connectionsSetting(problems);
const flagsProblem = nodeFlagsProblem();
if (flagsProblem !== undefined) problems.push(flagsProblem);
if (seconds === undefined || repeats === undefined || problems.length > 0) refuse(problems);

const emulator = await startChild('./emulator-child.ts', ['emulator']);
const child = await startContender(emulator, contender, DEFAULTS.upstreamMaxInFlight);
try {
  // Its figures are of right answers only: the first is checked, and each one under load must be the same ("bad").
  const to = await checkedTarget(target(child, contender, scenario, emulator.ready['seed'] as BenchSeed), scenario);
  if (typeof to === 'string') throw new Error(`${scenario.id} × ${contender}: ${to}`);
  await loadContender(to, 5, connections);
  for (let i = 0; i < repeats; i++) {
    const { result, cpuMicrosPerOp, systemMicrosPerOp, contextSwitchesPerOp } = await measureLoad(child, to, seconds, connections);
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
