import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { refuseToStart } from '../scripts/refuse-to-start.ts';
import { startNodeFlags } from '../scripts/start-flags.ts';
import { DEFAULTS } from '../src/config/defaults.ts';
import { wholeNumberSetting } from '../src/config/settings.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { quotedSetting } from '../src/support/shortened.ts';
import { UpstreamClient } from '../src/upstream/client.ts';
import { startChild } from './ipc.ts';
import type { BenchSeed } from './scenarios.ts';

/**
 * The upstream client alone, in this process, against the benchmark's emulator (in its own process):
 * the CPU one `getAccount` costs with 1, 3, 10… calls in flight. It shows how much of an upstream call is
 * paid per event-loop wake-up rather than per call (bench/README.md, "Scenario 1").
 *
 *   npx tsx bench/client-calls.ts [in-flight list=1,3,10] [seconds per figure=3]
 */
// Run under the node flags `npm start` gives the gateway: how the collector treats the client's objects is most of
// what those flags change (without --no-allocation-site-pretenuring a call with 10 in flight cost ~60% more).
const missingFlags = startNodeFlags().filter((flag) => !process.execArgv.includes(flag));
if (missingFlags.length > 0) {
  const child = fork(fileURLToPath(import.meta.url), process.argv.slice(2), { execArgv: [...process.execArgv, ...missingFlags], stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  process.exit(code ?? 1);
}
// Forked by the above: the process started going away (a SIGTERM, a kill) takes this one with it, as the bench's
// children go with their runner; orphaned, it loaded its emulator until its figures were done. The channel, unref'd,
// does not keep this process alive once they are.
if (typeof process.send === 'function') {
  if (!process.connected) process.exit(1);
  process.once('disconnect', () => process.exit(1));
  process.channel?.unref();
}

const USAGE = 'usage: npx tsx bench/client-calls.ts [in-flight list, e.g. 1,3,10] [seconds]';
const [inFlightList = '1,3,10', secondsArg = '3'] = process.argv.slice(2);
const levels = inFlightList.split(',').map(Number);
// Said in one line with the usage, not thrown: a stack trace for a mistyped argument says nothing more. Seconds are
// read as bench/quick.ts reads its own: `Infinity` or `1e9`, "a number above 0", ran a load that never ended.
const problems: string[] = [];
if (levels.some((n) => !Number.isInteger(n) || n < 1)) problems.push(`the in-flight list must be whole numbers from 1, comma-separated (got ${quotedSetting(inFlightList)})`);
const seconds = wholeNumberSetting('seconds', secondsArg, { min: 1, max: 3600 }, problems);
if (seconds === undefined || problems.length > 0) refuseToStart('client-calls', USAGE, problems);

const emulator = await startChild('./emulator-child.ts', ['emulator']);
const client = new UpstreamClient({
  baseUrl: String(emulator.ready['url']),
  consumerKey: String(emulator.ready['consumerKey']),
  consumerSecret: String(emulator.ready['consumerSecret']),
  timeoutMs: 10_000,
  maxInFlight: DEFAULTS.upstreamMaxInFlight,
  logger: silentLogger,
});
const { accountIds } = emulator.ready['seed'] as BenchSeed;
// The gateway passes each operation's signal; so does this, so the per-call bookkeeping is the same.
const operation = new AbortController();

/** Calls `getAccount` with `inFlight` calls out at all times until `ms` pass; resolves to the calls made. */
async function load(inFlight: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let calls = 0;
  const worker = async (offset: number) => {
    for (let i = offset; performance.now() < end; i += inFlight) {
      await client.getAccount(accountIds[i % accountIds.length]!, operation.signal);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, i) => worker(i)));
  return calls;
}

try {
  await load(10, 1_000);
  for (const inFlight of levels) {
    const before = process.cpuUsage();
    const calls = await load(inFlight, seconds * 1_000);
    const cpu = process.cpuUsage(before);
    console.log(
      `${String(inFlight).padStart(3)} in flight: ${((cpu.user + cpu.system) / calls).toFixed(1)} µs CPU a call ` +
        `(user ${(cpu.user / calls).toFixed(1)}, system ${(cpu.system / calls).toFixed(1)}), ${(calls / seconds).toFixed(0)} calls/s`,
    );
  }
} finally {
  await client.close();
  await emulator.stop();
}
