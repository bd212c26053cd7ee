import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { isAlive } from '../helpers/script.ts';

/**
 * `npm run soak` whose gateway process misbehaves (a fixture preloaded into it through NODE_OPTIONS): the run
 * ends, fails, and says why, instead of hanging or failing without a reason.
 */

const soak = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

/** A short soak run with `fixtureName` preloaded, killed if it hangs (what the fixes here prevent). */
function soakWith(fixtureName: string, args: string[] = [], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', soak, '--duration', '2', '--connections', '1', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: `--import ${fixture(fixtureName)}`, ...env },
    timeout: 90_000,
    killSignal: 'SIGKILL',
  });
}

/** The run ended by itself (before the fixes it waited for ever: SIGTERM only set its "interrupted" flag), and failed. */
function assertEndedFailing(result: ReturnType<typeof soakWith>): void {
  assert.equal(result.signal, null, `the soak hung and was killed:\n${result.stdout}\n${result.stderr}`);
  assert.equal(result.status, 1, result.stdout + result.stderr);
}

test('a gateway process that no longer answers the memory queries fails the run, which ends', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-silent.mjs');
  assertEndedFailing(result);
  assert.match(result.stdout, /## Result: FAIL/);
  assert.match(result.stdout, /- the gateway process did not answer `stats` within 10 s/);
});

test('a gateway process that never says it is ready fails the run, which ends, and is stopped', { timeout: 120_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'soak-never-ready-'));
  const pidFile = join(dir, 'gateway.pid');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const result = soakWith('soak-gateway-never-ready.mjs', ['--ready-timeout', '3'], { SOAK_FIXTURE_PID_FILE: pidFile });
  const gatewayPid = Number(readFileSync(pidFile, 'utf8'));
  // Left running (the soak hung, or ended without stopping it), it is stopped here: the assertion below says so.
  const gatewayLeftRunning = isAlive(gatewayPid);
  if (gatewayLeftRunning) process.kill(gatewayPid, 'SIGKILL');

  assertEndedFailing(result);
  assert.equal(
    result.stderr.trim(),
    `soak: the gateway process (pid ${gatewayPid}) did not say it was ready within 3 s (stuck starting up?), so it was stopped`,
  );
  assert.equal(gatewayLeftRunning, false, 'the soak left its gateway process running');
});

test('a gateway process that exits before it is ready fails the run with its last lines, the reason', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-fails-to-start.mjs');
  assertEndedFailing(result);
  // Before, only "exited (1) before it was ready": the operator had to rerun the gateway by hand to learn why.
  assert.equal(
    result.stderr.trim(),
    'soak: the gateway process exited (1) before it was ready; its last lines:\ncontextio-graphql: failed to start: injected start-up failure',
  );
});

/**
 * Memory held outside the JS heap (Buffers: the bytes of upstream answers or requests kept by a leak) after the
 * warm-up's baseline, and still held once the load has drained, fails the run as a heap that grew does: the check
 * read the heap alone, and the RSS check compares two peaks taken after the leak began, so a run whose gateway held
 * 650 MiB more of Buffers at its end than at its warm-up said PASS and "memory bounded".
 */
test('memory outside the heap held after warm-up fails the run', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-holds-buffers.mjs', ['--duration', '4']);
  assertEndedFailing(result);
  assert.match(result.stdout, /## Result: FAIL/);
  assert.match(result.stdout, /^- memory left after a full GC \(heap used and external\) grew: \d+\.\d MiB > 2 × \d+\.\d MiB \+ 32\.0 MiB$/m);
});

/**
 * A gateway that leaves a handle behind per request (here a timer, never cleared) holds hardly any more memory, so
 * the memory rules passed it: a run whose gateway had 2,400 more timers at its end than at its start said PASS.
 * A file left open per request is no active resource of Node's: its descriptor (Linux) shows it. Handles that come
 * and go with the load (a timer per request that ends a moment later) are no leak and pass.
 */
test('open handles left behind by the load fail the run, naming the rule', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-per-request.mjs', ['--duration', '4'], { SOAK_FIXTURE_TIMER_MS: '3600000' });
  assertEndedFailing(result);
  assert.match(result.stdout, /## Result: FAIL/);
  assert.match(result.stdout, /^- open handles grew: \d+ once the load had ended > \d+ before it \+ \d+ \(Timeout \+\d+/m);
});

test('files left open by the load fail the run, though Node counts them as no active resource', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-per-request.mjs', ['--duration', '4'], { SOAK_FIXTURE_OPEN_FILE: '1' });
  assertEndedFailing(result);
  assert.match(result.stdout, /## Result: FAIL/);
  assert.match(result.stdout, /^- open file descriptors grew: \d+ once the load had ended > \d+ before it \+ \d+$/m);
  assert.doesNotMatch(result.stdout, /open handles grew/, 'an open file is no active resource: only its descriptor shows it');
});

test('open handles that come and go with the load pass', { timeout: 120_000 }, () => {
  const result = soakWith('soak-gateway-per-request.mjs', ['--duration', '4'], { SOAK_FIXTURE_TIMER_MS: '300' });
  assert.equal(result.signal, null, `the soak hung and was killed:\n${result.stdout}\n${result.stderr}`);
  assert.doesNotMatch(result.stdout, /open handles grew/);
  assert.match(result.stdout, /## Result: PASS/, result.stdout + result.stderr);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
