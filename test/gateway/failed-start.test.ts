import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { runScript } from '../helpers/script.ts';

describe('startGateway that cannot listen', () => {
  let emulator: Emulator;
  before(async () => {
    emulator = await startEmulator({ port: 0, seed: 'none' });
  });
  after(() => emulator.close());

  for (const [failBy, code] of [
    ['port-in-use', 'EADDRINUSE'],
    ['address', 'EADDRNOTAVAIL'],
  ] as const) {
    it(`(${failBy}) rejects with the listen error and leaves nothing open: a process embedding it exits by itself`, async () => {
      const run = runScript('test/gateway/fixtures/failed-start.ts', { UPSTREAM_URL: emulator.url, FAIL_BY: failBy });
      // Killed after the scripts' lifetime if anything the failed start opened kept it alive.
      const [exitCode, signal] = await run.exited;
      assert.deepEqual([exitCode, signal], [0, null], run.lines.join('\n'));
      const [outcome] = run.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { code?: string; message?: string });
      assert.equal(outcome?.code, code, run.lines.join('\n'));
      assert.match(outcome.message ?? '', failBy === 'address' ? /192\.0\.2\.1/ : /address already in use/);
      // It never reached the upstream: nothing of it is left for the upstream to see either.
      assert.deepEqual(emulator.requests, []);
    });
  }
});
