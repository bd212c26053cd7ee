import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { refuseToStart } from '../refuse-to-start.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { wholeNumberSetting } from '../../src/config/settings.ts';

/** The soak's command line, the settings read from it, and the small helpers every part uses. */

const HELP = `usage: npm run soak -- [options]
  --duration <s>             seconds of load after start-up (default 60, at most 86400)
  --connections <n>          concurrent clients (default 64, at most 10000)
  --max-requests <n>         hard cap on requests sent (default 400000)
  --warmup <s>               seconds before the memory baseline is taken (default 10, or a third of a shorter run)
  --upstream-timeout-ms <n>  the gateway's UPSTREAM_TIMEOUT_MS (default 2000)
  --max-in-flight <n>        the gateway's UPSTREAM_MAX_IN_FLIGHT (default: the gateway's own, ${DEFAULTS.upstreamMaxInFlight})
  --accounts <n>             seeded accounts (default 40; fewer than 12, which the faults need, are taken as 12)
  --ready-timeout <s>        seconds the gateway process may take to start (default 30, at most 3600; a slow machine may need more)
  --out <file>               also write the report (markdown) to this file`;

const OPTIONS = {
  duration: { type: 'string', default: '60' },
  connections: { type: 'string', default: '64' },
  'max-requests': { type: 'string', default: '400000' },
  warmup: { type: 'string' },
  'upstream-timeout-ms': { type: 'string', default: '2000' },
  'max-in-flight': { type: 'string', default: String(DEFAULTS.upstreamMaxInFlight) },
  accounts: { type: 'string', default: '40' },
  'ready-timeout': { type: 'string', default: '30' },
  out: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** The command line; a mistyped option (`--durration`) is said with the usage, as the other refusals are, not as a stack trace. */
function readArgs() {
  try {
    return parseArgs({ options: OPTIONS }).values;
  } catch (error) {
    return refuseToStart('soak', HELP, [error instanceof Error ? error.message : String(error)]);
  }
}
const args = readArgs();
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
/**
 * A whole-number option from 1 to `max`, read as the gateway's and the bench's settings are. Seconds are bounded
 * below what a Node timer holds (2^31 - 1 ms): a `--duration` or `--ready-timeout` of 3000000 s was taken, and
 * its timer fired at once (the load ended after a second, "too few memory samples"; the gateway was given up on).
 */
const positiveInt = (name: keyof typeof args, max: number): number => {
  const problems: string[] = [];
  const value = wholeNumberSetting(`--${name}`, String(args[name]), { min: 1, max }, problems);
  return value ?? refuseToStart('soak', HELP, problems);
};
/** A day: the longest run and warm-up taken. */
const MOST_SECONDS = 86_400;
/**
 * The options that are the gateway's own settings, checked by the gateway's own reading of them: the gateway under
 * soak is started from these values directly, and one its environment refuses (UPSTREAM_MAX_IN_FLIGHT 20000) was
 * soaked as if a deployment could run it.
 */
const GATEWAY_SETTINGS = { 'upstream-timeout-ms': 'UPSTREAM_TIMEOUT_MS', 'max-in-flight': 'UPSTREAM_MAX_IN_FLIGHT' } as const;
function gatewaySettings() {
  try {
    return loadConfig(Object.fromEntries(Object.entries(GATEWAY_SETTINGS).map(([option, name]) => [name, args[option as keyof typeof GATEWAY_SETTINGS]])));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const optionOf = (problem: string) => Object.entries(GATEWAY_SETTINGS).find(([, name]) => problem.startsWith(`${name} `))?.[0];
    return refuseToStart('soak', HELP, error.problems.map((problem) => `the gateway's ${problem}: set by --${optionOf(problem) ?? '?'}`));
  }
}
const gateway = gatewaySettings();
export const settings = {
  durationS: positiveInt('duration', MOST_SECONDS),
  connections: positiveInt('connections', 10_000),
  maxRequests: positiveInt('max-requests', 1_000_000_000),
  // A short run (--duration 10) gets a proportionate warm-up rather than a refusal.
  warmupS: args.warmup === undefined ? Math.max(1, Math.min(10, Math.floor(Number(args.duration) / 3))) : positiveInt('warmup', MOST_SECONDS),
  upstreamTimeoutMs: gateway.upstreamTimeoutMs,
  maxInFlight: gateway.upstreamMaxInFlight,
  accounts: Math.max(12, positiveInt('accounts', 10_000)),
  readyTimeoutS: positiveInt('ready-timeout', 3_600),
  usedTokens: 100,
  unusedTokens: 20,
};
if (settings.warmupS >= settings.durationS) {
  // Without --warmup, only a --duration of 1 gets here (its warm-up is at least a second): named, not the option not given.
  refuseToStart('soak', HELP, [args.warmup === undefined ? "--duration must be at least 2: the load's first second is its warm-up" : '--warmup must be shorter than --duration']);
}

/** A request with no answer after this long is a failure (the gateway's own deadlines are far shorter). */
export const CLIENT_TIMEOUT_MS = 30_000;
/**
 * MEMORY RULE. The baseline is the gateway's peak RSS over the first window after warm-up, the end figure
 * its peak RSS over the last window of load (a window is a quarter of the measured time, 5 to 10 s). The
 * memory is judged unbounded when end > 2 × baseline + RSS_MARGIN, or when the memory left after a full GC
 * once the load has drained (the heap used and the external memory its objects hold: Buffers) exceeds 2 × the
 * same after a full GC at the end of warm-up + HEAP_MARGIN. The heap alone missed a leak of Buffers, which the
 * RSS rule, its baseline taken after the leak began, let grow by hundreds of MiB in a short run.
 */
export const RSS_MARGIN_BYTES = 64 * 1024 * 1024;
export const HEAP_MARGIN_BYTES = 32 * 1024 * 1024;
/**
 * HANDLE RULE. The gateway's open handles (`process.getActiveResourcesInfo()`: timers, sockets, servers, file
 * requests) are counted once it is ready, before any load, and again once the load has ended, the soak's clients
 * have hung up and the gateway has been idle for a moment: it is asked every HANDLE_POLL_MS until the count is back
 * within HANDLE_ALLOWANCE of the first, for at most HANDLE_SETTLE_MS (its upstream sockets, kept alive, go when the
 * upstream closes them, 5 s idle for the emulator). Still above it then, the run fails: a handle left behind per
 * request (a timer never cleared, a socket or a file never closed) holds too little memory for the memory rules,
 * and 2,400 such timers passed them. Its open file descriptors (Linux) are judged the same way, with the same
 * allowance: a file opened and never closed is no active resource, nor is an idle socket undici has unreferenced.
 * Calibrated on 8 clean 15 s runs (64 clients): 4 handles before (3 pipes, the listening server), 500–610 during the
 * load, 4 again within 0.5–2 s after it; 26–28 descriptors before, 26–29 after (upstream sockets the emulator had not
 * yet closed). A timer, a socket or a file left per request failed the rule with +967, +1418 and +2230.
 */
export const HANDLE_ALLOWANCE = 8;
export const HANDLE_SETTLE_MS = 10_000;
export const HANDLE_POLL_MS = 500;

export const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
export const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));
export const hex24 = () => randomBytes(12).toString('hex');

/**
 * `--out`: where the report is also written. A directory (`--out docs`; an empty value, the current one) is refused
 * before the run: it ran the whole soak, then failed on EISDIR with a stack trace (or, empty, wrote nothing unsaid).
 */
export const outFile: string | undefined = args.out;
if (outFile !== undefined && statSync(resolve(outFile), { throwIfNoEntry: false })?.isDirectory()) {
  refuseToStart('soak', HELP, [`--out must name a file, not the directory ${JSON.stringify(outFile)}`]);
}
