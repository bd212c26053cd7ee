import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

/** `npm run soak` against a gateway process that stops answering: the run ends, and fails, instead of hanging. */

const soak = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));
const silentGateway = new URL('./fixtures/soak-gateway-silent.mjs', import.meta.url).href;

test('a gateway process that no longer answers the memory queries fails the run, which ends', { timeout: 120_000 }, () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', soak, '--duration', '2', '--connections', '1'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: `--import ${silentGateway}` },
    // Before the fix the run waited for the answer for ever (SIGTERM only set its "interrupted" flag).
    timeout: 90_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(result.signal, null, `the soak hung and was killed:\n${result.stdout}\n${result.stderr}`);
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /## Result: FAIL/);
  assert.match(result.stdout, /- the gateway process did not answer `stats` within 10 s/);
});
