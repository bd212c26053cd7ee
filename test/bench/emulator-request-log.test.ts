import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBenchEmulator } from './bench-emulator.ts';

/**
 * The bench's upstream requests per operation under load are the emulator's request log read at the end of a
 * measurement. The log keeps its latest 100 000 entries, fewer than a long or fast measurement makes: the
 * emulator child must then say its count is short (`full`), not hand the runner a capped count as the total.
 */

const LOG_LIMIT = 3;

test('the bench emulator says when its request log filled, so a capped count is not taken for the total', async (t) => {
  const { emulator, client, seed } = await startBenchEmulator(t, [String(LOG_LIMIT)]);
  const [accountId] = seed.accountIds;

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
