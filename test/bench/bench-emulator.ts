import type { TestContext } from 'node:test';
import { startChild } from '../../bench/ipc.ts';
import type { BenchSeed } from '../../bench/scenarios.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';

/**
 * The bench's emulator child (`args` after `emulator`: its request log's limit) and the project's upstream
 * client of it, both stopped when the test `t` ends.
 */
export async function startBenchEmulator(t: TestContext, args: string[] = []) {
  const emulator = await startChild('./emulator-child.ts', ['emulator', ...args]);
  t.after(() => emulator.stop());
  const client = new UpstreamClient({
    baseUrl: String(emulator.ready['url']),
    consumerKey: String(emulator.ready['consumerKey']),
    consumerSecret: String(emulator.ready['consumerSecret']),
    timeoutMs: 10_000,
    // Room for the calls a test makes at once (the round trips), each on a connection of its own.
    maxInFlight: 4,
    logger: silentLogger,
  });
  t.after(() => client.close());
  return { emulator, client, seed: emulator.ready['seed'] as BenchSeed };
}
