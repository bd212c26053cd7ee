import autocannon from 'autocannon';
import { DEFAULT_UPSTREAM_MAX_IN_FLIGHT } from '../src/config.ts';
import { startChild } from './ipc.ts';
import { scenarios } from './scenarios.ts';

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

const emulator = await startChild('./emulator-child.ts', ['emulator']);
const child = await startChild('./contender-child.ts', [contender], {
  BENCH_UPSTREAM_URL: String(emulator.ready['url']),
  BENCH_UPSTREAM_KEY: String(emulator.ready['consumerKey']),
  BENCH_UPSTREAM_SECRET: String(emulator.ready['consumerSecret']),
  BENCH_UPSTREAM_MAX_IN_FLIGHT: String(DEFAULT_UPSTREAM_MAX_IN_FLIGHT),
});
try {
  const base = String(child.ready['url']);
  const url = contender === 'direct' ? `${base}/${scenario.id}` : base;
  const body = JSON.stringify({ query: scenario.query, variables: scenario.variables(emulator.ready['seed'] as never) });
  const run = (duration: number) =>
    autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: Number(process.env['BENCH_CONNECTIONS'] ?? 10), duration, verifyBody: (t) => !t.includes('"errors"') });
  await run(5);
  for (let i = 0; i < Number(repeats); i++) {
    const before = Number((await child.call('stats'))['cpuMicros']);
    const result = await run(Number(seconds));
    const after = Number((await child.call('stats'))['cpuMicros']);
    const ops = result.requests.total;
    console.log(
      `${scenario.id} × ${contender}: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, ` +
        `${((after - before) / Math.max(1, ops)).toFixed(0)} µs CPU/op, ${result.non2xx + result.errors + result.mismatches} bad`,
    );
  }
} finally {
  await child.stop();
  await emulator.stop();
}
