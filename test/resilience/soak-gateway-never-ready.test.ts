import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

/** `npm run soak` whose gateway process never becomes ready: the run ends, fails with one line, and stops that process. */

const soak = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));
const stuckGateway = new URL('./fixtures/soak-gateway-never-ready.mjs', import.meta.url).href;

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a gateway process that never says it is ready fails the run, which ends, and is stopped', { timeout: 120_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'soak-never-ready-'));
  const pidFile = join(dir, 'gateway.pid');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const result = spawnSync(process.execPath, ['--import', 'tsx', soak, '--duration', '2', '--connections', '1', '--ready-timeout', '3'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: `--import ${stuckGateway}`, SOAK_FIXTURE_PID_FILE: pidFile },
    // Before the fix the run waited for the 'ready' message for ever (SIGTERM only set its "interrupted" flag).
    timeout: 90_000,
    killSignal: 'SIGKILL',
  });
  const gatewayPid = Number(readFileSync(pidFile, 'utf8'));
  // Left running (the soak hung, or ended without stopping it), it is stopped here: the assertion below says so.
  const gatewayLeftRunning = isAlive(gatewayPid);
  if (gatewayLeftRunning) process.kill(gatewayPid, 'SIGKILL');

  assert.equal(result.signal, null, `the soak hung and was killed:\n${result.stdout}\n${result.stderr}`);
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.equal(
    result.stderr.trim(),
    `soak: the gateway process (pid ${gatewayPid}) did not say it was ready within 3 s (stuck starting up?), so it was stopped`,
  );
  assert.equal(gatewayLeftRunning, false, 'the soak left its gateway process running');
});
