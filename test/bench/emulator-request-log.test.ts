import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startChild } from '../../bench/ipc.ts';
import type { BenchSeed } from '../../bench/scenarios.ts';
import { silentLogger } from '../../src/logger.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';

/**
 * The bench's upstream requests per operation under load are the emulator's request log read at the end of a
 * measurement. The log keeps its latest 100 000 entries, fewer than a long or fast measurement makes: the
 * emulator child must then say its count is short (`full`), not hand the runner a capped count as the total.
 */

const LOG_LIMIT = 3;

test('the bench emulator says when its request log filled, so a capped count is not taken for the total', async (t) => {
  const emulator = await startChild('./emulator-child.ts', ['emulator', String(LOG_LIMIT)]);
  t.after(() => emulator.stop());
  const client = new UpstreamClient({
    baseUrl: String(emulator.ready['url']),
    consumerKey: String(emulator.ready['consumerKey']),
    consumerSecret: String(emulator.ready['consumerSecret']),
    timeoutMs: 10_000,
    maxInFlight: 1,
    logger: silentLogger,
  });
  t.after(() => client.close());
  const [accountId] = (emulator.ready['seed'] as BenchSeed).accountIds;

  for (let i = 0; i < LOG_LIMIT - 1; i++) await client.getAccount(accountId!);
  const under = await emulator.call('count');
  assert.equal(under['count'], LOG_LIMIT - 1);
  assert.equal(under['full'], false);

  for (let i = 0; i < 2; i++) await client.getAccount(accountId!);
  const over = await emulator.call('count');
  assert.equal(over['count'], LOG_LIMIT, 'the log keeps its limit');
  assert.equal(over['full'], true, 'a count of more requests than the log keeps is said to be short');

  await emulator.call('clear');
  assert.equal((await emulator.call('count'))['full'], false);
});
