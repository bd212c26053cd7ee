import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scenarios } from '../../bench/scenarios.ts';
import { startBenchEmulator } from './bench-emulator.ts';

/**
 * The bench times an answer only once its scenario's check passed. The mutation's check must tell an account
 * updated from one as seeded: a contender answering `success` without making the update must not pass it.
 */

test('the bench mutation check refuses the account as seeded and accepts it once updated', async (t) => {
  const { client, seed } = await startBenchEmulator(t);
  const mutation = scenarios.find((s) => s.id === 'mutation')!;
  const variables = mutation.variables(seed);

  const seeded = await client.getAccount(String(variables['id']));
  const notUpdated = { updateAccount: { success: true, account: { id: seeded.id, firstName: seeded.first_name ?? null, lastName: seeded.last_name ?? null } } };
  assert.ok(mutation.check(notUpdated), 'an answer with the account as seeded passed the check');

  const updated = (await mutation.direct(client, variables)) as Record<string, unknown>;
  assert.equal(mutation.check(updated), undefined);
});
