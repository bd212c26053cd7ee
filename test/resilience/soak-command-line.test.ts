import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { outputOfNpmStoppedMidRun } from '../helpers/npm-script.ts';

/** `npm run soak -- …`: a command line it cannot use is refused with the usage, before anything starts. */

const soak = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));

function runSoak(...args: string[]) {
  // Killed if it hangs: a run that starts ends by itself within seconds here.
  return spawnSync(process.execPath, ['--import', 'tsx', soak, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' }, timeout: 90_000, killSignal: 'SIGKILL' });
}

test('a mistyped option is named with the usage, not thrown as a stack trace', () => {
  const result = runSoak('--durration', '5');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: Unknown option '--durration'/);
  assert.match(result.stderr, /usage: npm run soak -- \[options\]\n\s+--duration <s>/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
});

test('an option without its value is said the same way', () => {
  const result = runSoak('--duration');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: Option '--duration <value>' argument missing/);
  assert.match(result.stderr, /usage: npm run soak/);
});

test('a run too short for its own warm-up says so of --duration, not of a --warmup it was not given', () => {
  const result = runSoak('--duration', '1');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: --duration must be at least 2/);
  assert.match(result.stderr, /usage: npm run soak/);
});

/**
 * The gateway under soak is started from these values directly, not from its environment: one its own settings
 * refuse (UPSTREAM_MAX_IN_FLIGHT above 10000, UPSTREAM_TIMEOUT_MS above 2 minutes) was soaked as if deployable.
 */
for (const [option, value, setting] of [
  ['--max-in-flight', '20000', /UPSTREAM_MAX_IN_FLIGHT must be a whole number from 1 to 10000 \(got "20000"\)/],
  ['--upstream-timeout-ms', '600000', /UPSTREAM_TIMEOUT_MS must be a whole number from 1 to 120000 \(got "600000"\)/],
] as const) {
  test(`${option} ${value}, which the gateway's own setting refuses, is refused as the gateway would`, () => {
    // A short run, should the option be taken.
    const result = runSoak('--duration', '2', '--connections', '1', option, value);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^soak: the gateway's ${setting.source}: set by ${option}`));
    assert.match(result.stderr, /usage: npm run soak/);
  });
}

/**
 * A value past what a Node timer holds (2^31 - 1 ms, some 24.8 days) was taken, and its timer fired at once: a
 * `--duration` of 3000000 s ended the load after a second as "too few memory samples (run longer)", a
 * `--ready-timeout` as large gave up on the gateway at once, "not ready within 3000000 s".
 */
for (const [option, most] of [
  ['--duration', 86_400],
  ['--ready-timeout', 3_600],
] as const) {
  test(`${option} past what the soak can time is refused with its range, and starts nothing`, () => {
    const result = runSoak('--duration', option === '--duration' ? '3000000' : '10', '--connections', '1', option, '3000000');
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(result.stdout, '', 'a run began');
    assert.match(result.stderr, new RegExp(`^soak: ${option} must be a whole number from 1 to ${most} \\(got "3000000"\\)\n`));
  });
}

/**
 * `--out` naming a directory (`--out docs`, for docs/soak.md) ran the whole soak, printed its report, then failed
 * with a stack trace (EISDIR) and no file written; an empty `--out` (the current directory) wrote nothing and said
 * nothing. Both are refused before anything starts.
 */
for (const out of ['docs', '']) {
  test(`--out ${JSON.stringify(out)}, a directory, is refused before the run, and starts nothing`, () => {
    const result = runSoak('--duration', '2', '--connections', '1', '--out', out);
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(result.stdout, '', 'a run began');
    assert.match(result.stderr, new RegExp(`^soak: --out must name a file, not the directory ${JSON.stringify(out)}\n`));
    assert.match(result.stderr, /usage: npm run soak/);
  });
}

/**
 * `--out` in a folder that cannot be made (`/proc/nope`): Node 20's `mkdir -p` never settles there, spinning a CPU, so
 * the run, its report printed, hung for ever, deaf to Ctrl-C and SIGTERM (which only ask the load to stop).
 */
test('--out in a folder that cannot be made: the run ends, failing, and says why', { timeout: 120_000 }, () => {
  const result = runSoak('--duration', '2', '--connections', '1', '--out', '/proc/nope/soak.md');
  assert.equal(result.signal, null, `the soak hung and was killed:\n${result.stderr}`);
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stdout, /## Result: /, 'the report is printed');
  assert.match(result.stderr, /^soak: the report could not be written to \/proc\/nope\/soak\.md: ENOENT/m);
});

/**
 * A supervisor or `timeout` signals the process it started, npm, not the whole group as a terminal's Ctrl-C does. npm
 * passes the signal to its child: `npm run soak` has to make that child the soak itself (exec), or the shell between
 * them dies alone and the soak, orphaned, drives its gateway on for its whole duration (and writes its `--out`).
 */
test('npm run soak: a SIGTERM sent to npm alone stops the run and what it started', { timeout: 120_000 }, async (t) => {
  const output = await outputOfNpmStoppedMidRun(t, 'soak', ['--duration', '60', '--warmup', '1', '--connections', '2'], {}, /^soak: gateway /m);
  // Left running, the soak prints its progress every 5 s until its minute is up.
  assert.doesNotMatch(output, /soak: +\d+ s +sent/, 'the run went on after npm was stopped');
});
