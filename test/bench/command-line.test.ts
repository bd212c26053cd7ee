import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { eventually } from '../helpers/eventually.ts';
import { outputOfNpmStoppedMidRun } from '../helpers/npm-script.ts';
import { isAlive } from '../helpers/script.ts';

/**
 * `npm run bench -- …`: the bench is set through the environment and takes no argument. One given (`--help`, as
 * `npm run soak` takes it) is answered before anything starts: ignored, it started a run of several minutes
 * that rewrites bench/results.md.
 */

const bench = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
/** The bench's first line once a run has begun (the machine it measures on). */
const RUN_BEGUN = /^bench: \d+ CPUs/m;

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
  runBegun: boolean;
}

/**
 * Runs the bench with `args` and the BENCH_* settings of `env`; a run that begins is stopped at its first line
 * (with whatever it started) and said so.
 */
function runBenchWith(env: Record<string, string>, ...args: string[]): Promise<Outcome> {
  return runScript(bench, env, ...args);
}

/** Runs `script` (bench/run.ts or bench/quick.ts) as runBenchWith says. */
function runScript(script: string, env: Record<string, string>, ...args: string[]): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { detached: true, env: { PATH: process.env['PATH'] ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  let runBegun = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (!runBegun && RUN_BEGUN.test(stdout)) {
      runBegun = true;
      process.kill(-child.pid!, 'SIGKILL');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr, runBegun })));
}

const runBench = (...args: string[]) => runBenchWith({}, ...args);

test('--help prints how the bench is set, and starts no run', async () => {
  const result = await runBench('--help');
  assert.equal(result.runBegun, false, 'a run began');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^usage: npm run bench/);
  for (const setting of ['BENCH_ONLY', 'BENCH_CONTENDERS', 'BENCH_DURATION', 'BENCH_WARMUP', 'BENCH_CONNECTIONS', 'BENCH_CPU_ROUNDS', 'BENCH_MAX_IN_FLIGHT']) {
    assert.match(result.stdout, new RegExp(`^\\s+${setting}=`, 'm'), setting);
  }
});

test('an option it does not take is refused with the usage, and starts no run', async () => {
  const result = await runBench('--duration', '10');
  assert.equal(result.runBegun, false, 'a run began');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^bench: Unknown option '--duration'/);
  assert.match(result.stderr, /usage: npm run bench/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
});

test('a scenario given as an argument (as bench/quick.ts takes it) is refused, not ignored for a full run', async () => {
  const result = await runBench('fanout');
  assert.equal(result.runBegun, false, 'a run began');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^bench: Unexpected argument 'fanout'/);
});

/**
 * A setting naming what the bench does not have (a typo) selected nothing: the run started an emulator, measured
 * nothing, printed a table of "not measured" and exited 0 as a partial run.
 */
for (const [env, named] of [
  [{ BENCH_ONLY: 'fanut' }, /^bench: BENCH_ONLY must name scenarios among account, fanout, dashboard, mutation \(got "fanut"\)/],
  [{ BENCH_ONLY: 'account', BENCH_CONTENDERS: 'gateway,gatway' }, /^bench: BENCH_CONTENDERS must name contenders among gateway, deployed, direct, naive, bare \(got "gatway"\)/],
  [{ BENCH_ONLY: 'account', BENCH_CPU_PROF: 'gatway' }, /^bench: BENCH_CPU_PROF must name a contender among gateway, deployed, direct, naive, bare, or emulator \(got "gatway"\)/],
] as const) {
  test(`${Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' ')} is refused with the names it takes, and starts no run`, async () => {
    const result = await runBenchWith(env);
    assert.equal(result.runBegun, false, 'a run began');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, named);
    assert.match(result.stderr, /usage: npm run bench/);
  });
}

/**
 * BENCH_CPU_PROF naming a contender the run does not start (BENCH_CONTENDERS leaves it out) profiled nothing and said
 * nothing: the run of minutes ended without the profile it was started for.
 */
test('BENCH_CPU_PROF naming a contender BENCH_CONTENDERS leaves out is refused, and starts no run', async () => {
  const result = await runBenchWith({ BENCH_ONLY: 'account', BENCH_CONTENDERS: 'gateway,bare', BENCH_CPU_PROF: 'naive' });
  assert.equal(result.runBegun, false, 'a run began');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^bench: BENCH_CPU_PROF names naive, which BENCH_CONTENDERS leaves out: no profile would be made/);
});

test('BENCH_CONTENDERS without BENCH_ONLY is refused: it narrows only a partial run, and was ignored for a full one', async () => {
  const result = await runBenchWith({ BENCH_CONTENDERS: 'gateway' });
  assert.equal(result.runBegun, false, 'a run began');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^bench: BENCH_CONTENDERS narrows a BENCH_ONLY run: give BENCH_ONLY too/);
});

/**
 * A full run rewrites bench/results.md, whose contenders bench/README.md describes as they run by default. Profiling a
 * contender (its figures then carry the profiler's cost), trying node flags, or a NODE_ENV other than production
 * (graphql-js's development checks in every contender) made a results.md that said none of it.
 */
for (const [env, said] of [
  [{ BENCH_CPU_PROF: 'gateway' }, /^bench: BENCH_CPU_PROF profiles a BENCH_ONLY run: give BENCH_ONLY too \(a full run rewrites bench\/results\.md, whose figures would carry the profiler's cost\)/],
  [{ BENCH_NODE_FLAGS: '--max-semi-space-size=64' }, /^bench: BENCH_NODE_FLAGS tries flags on a BENCH_ONLY run: give BENCH_ONLY too \(a full run rewrites bench\/results\.md, whose contenders run with the flags bench\/README\.md gives them\)/],
  [{ NODE_ENV: 'development' }, /^bench: NODE_ENV "development" would run graphql-js outside production in every contender, as npm start does not: unset it, or give BENCH_ONLY \(a full run rewrites bench\/results\.md\)/],
] as const) {
  test(`a full run with ${Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' ')} is refused, and starts no run`, async () => {
    const result = await runBenchWith(env);
    assert.equal(result.runBegun, false, 'a run began');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, said);
  });
}

/**
 * A number setting that is no number (`BENCH_DURATION=5s`) ran as NaN: autocannon's own default duration, and
 * "NaN s per measurement" in the report; `BENCH_CONNECTIONS=0` loaded nothing.
 */
for (const [name, value, range] of [
  ['BENCH_DURATION', '5s', 'from 1 to 3600'],
  ['BENCH_WARMUP', '-1', 'from 0 to 3600'],
  ['BENCH_CONNECTIONS', '0', 'from 1 to 10000'],
  ['BENCH_CPU_ROUNDS', '1.5', 'from 0 to 100'],
  ['BENCH_CPU_ROUND', 'abc', 'from 1 to 3600'],
  ['BENCH_MAX_IN_FLIGHT', '0', 'from 1 to 10000'],
] as const) {
  test(`${name}=${value} is refused with the range it takes, and starts no run`, async () => {
    const result = await runBenchWith({ BENCH_ONLY: 'account', [name]: value });
    assert.equal(result.runBegun, false, 'a run began');
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr.split('\n')[0], `bench: ${name} must be a whole number ${range} (got "${value}")`);
  });
}

/**
 * `npx tsx bench/quick.ts <scenario> <contender> <seconds> <runs>` (bench/README.md): a name it does not have was
 * thrown with its stack trace, and seconds or runs that were no number ran as NaN (autocannon's own duration).
 */
const quick = fileURLToPath(new URL('../../bench/quick.ts', import.meta.url));
for (const [args, said] of [
  [['fanut'], /^quick: no scenario "fanut" \(account, fanout, dashboard, mutation\)\n/],
  [['account', 'gatway'], /^quick: no contender "gatway" \(gateway, deployed, direct, naive, bare\)\n/],
  [['account', 'bare', '5s', '1'], /^quick: seconds must be a whole number from 1 to 3600 \(got "5s"\)\n/],
  [['account', 'bare', '1', '0'], /^quick: runs must be a whole number from 1 to 100 \(got "0"\)\n/],
  [['account', 'bare', '1', '1', 'more'], /^quick: at most 4 arguments, not 5\n/],
] as const) {
  test(`bench/quick.ts ${args.join(' ')} is refused in one line with the usage, and starts nothing`, async () => {
    const result = await runScript(quick, {}, ...args);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, said);
    assert.match(result.stderr, /usage: npx tsx bench\/quick\.ts/);
    assert.equal(result.stdout, '', 'a run began');
  });
}

/** The same for bench/quick.ts, which runs one contender: a BENCH_CPU_PROF naming another (or a typo) profiled nothing. */
for (const cpuProf of ['gatway', 'naive']) {
  test(`bench/quick.ts account gateway with BENCH_CPU_PROF=${cpuProf} is refused with what it may name, and starts nothing`, async () => {
    const result = await runScript(quick, { BENCH_CPU_PROF: cpuProf }, 'account', 'gateway', '1', '1');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^quick: BENCH_CPU_PROF must name the contender run \\(gateway\\) or emulator \\(got "${cpuProf}"\\)\n`));
    assert.equal(result.stdout, '', 'a run began');
  });
}

/**
 * A node flag node refuses (BENCH_NODE_FLAGS=--nope) ended the first contender at once, after the emulator had
 * started and the run had begun, and the runner with a stack trace: it is tried before anything starts.
 */
for (const [script, tool, args] of [[bench, 'bench', []], [quick, 'quick', ['account', 'bare', '1', '1']]] as const) {
  test(`${tool === 'bench' ? 'the bench' : 'bench/quick.ts'} with BENCH_NODE_FLAGS node refuses says node's words with the usage, and starts nothing`, async () => {
    const result = await runScript(script, { BENCH_NODE_FLAGS: '--max-semi-space-size=16  --nope' }, ...args);
    assert.equal(result.runBegun, false, 'a run began');
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^${tool}: BENCH_NODE_FLAGS must be flags node takes: with them, node says .*bad option: --nope\n`));
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace');
  });
}

test('bench/client-calls.ts with an in-flight list or seconds it cannot use says so in one line with the usage, not a stack trace', async () => {
  const clientCalls = fileURLToPath(new URL('../../bench/client-calls.ts', import.meta.url));
  const result = await runScript(clientCalls, {}, '1,x', '3');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^client-calls: the in-flight list must be whole numbers from 1, comma-separated \(got "1,x"\)\nusage: npx tsx bench\/client-calls\.ts/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
});

/**
 * Seconds per figure past a bound (`Infinity`, `1e9`) were taken as "a number above 0": the first figure's load
 * never ended. They are read as bench/quick.ts reads its own, a whole number from 1 to 3600.
 */
test('bench/client-calls.ts with seconds past an hour says so with the usage, and starts nothing', async () => {
  const clientCalls = fileURLToPath(new URL('../../bench/client-calls.ts', import.meta.url));
  const result = await runScript(clientCalls, {}, '1', 'Infinity');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^client-calls: seconds must be a whole number from 1 to 3600 \(got "Infinity"\)\nusage: npx tsx bench\/client-calls\.ts/);
  assert.equal(result.stdout, '', 'a run began');
});

/** The processes whose parent is `pid` (none once it has exited). */
const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const until = (what: string, done: () => boolean) => eventually(done, { timeoutMs: 60_000, what });

/**
 * bench/client-calls.ts runs itself again under npm start's node flags, in a forked process. A SIGTERM to the one
 * started (a `timeout`, a supervisor) ended it alone: the fork, orphaned, kept loading its emulator until its figures
 * were done (an hour per figure at most).
 */
test('bench/client-calls.ts stopped by SIGTERM takes its run under the node flags, and the emulator of that run, with it', { timeout: 120_000 }, async (t) => {
  const clientCalls = fileURLToPath(new URL('../../bench/client-calls.ts', import.meta.url));
  const outer = spawn(process.execPath, ['--import', 'tsx', clientCalls, '1', '600'], { detached: true, stdio: 'ignore', env: { PATH: process.env['PATH'] ?? '' } });
  t.after(() => {
    try {
      process.kill(-outer.pid!, 'SIGKILL');
    } catch {
      // Gone already, as it should be.
    }
  });
  let inner: number | undefined;
  await until('the run under the node flags to start', () => (inner = childrenOf(outer.pid!)[0]) !== undefined);
  // Its emulator started: the run is under way, past its start-up.
  await until('its emulator to start', () => childrenOf(inner!).length > 0);
  const emulator = childrenOf(inner!)[0]!;
  const exited = new Promise((resolve) => outer.once('exit', resolve));
  outer.kill('SIGTERM');
  await exited;
  await until('the run under the node flags, orphaned, to end', () => !isAlive(inner!));
  await until('its emulator to end', () => !isAlive(emulator));
});

/**
 * A supervisor or `timeout` signals the process it started, npm, not the whole group as a terminal's Ctrl-C does. npm
 * passes the signal to its child: `npm run bench` has to make that child the bench itself (exec), or the shell between
 * them dies alone and the bench, orphaned, runs on for its minutes and, on a full run, rewrites bench/results.md after
 * it was stopped.
 */
test('npm run bench: a SIGTERM sent to npm alone stops the run and what it started', { timeout: 120_000 }, async (t) => {
  // bare Apollo alone, its one scenario's figures taking a minute: a run left going prints them before it ends.
  const env = { BENCH_ONLY: 'account', BENCH_CONTENDERS: 'bare', BENCH_WARMUP: '0', BENCH_DURATION: '60' };
  const output = await outputOfNpmStoppedMidRun(t, 'bench', [], env, /^1\. one account by id$/m);
  assert.doesNotMatch(output, /account × bare|partial run/, 'the run went on after npm was stopped');
});
