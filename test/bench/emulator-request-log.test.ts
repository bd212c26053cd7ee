import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startChild, type Child } from '../../bench/ipc.ts';
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

test('the bench emulator leaves no data file behind, however it ends: closed, its runner gone, or signalled (a Ctrl-C to the process group)', async () => {
  const scratch = await mkdtemp(join(tmpdir(), 'bench-emulator-scratch-'));
  // tsx keeps its cache under TMPDIR too: only the emulator's own folders count.
  const leftBehind = async () => (await readdir(scratch)).filter((name) => name.startsWith('contextio-bench-'));
  const started: Child[] = [];
  try {
    for (const end of ['stop', 'disconnect', 'SIGTERM', 'SIGINT'] as const) {
      const child = await startChild('./emulator-child.ts', ['emulator'], { TMPDIR: scratch });
      started.push(child);
      assert.equal((await leftBehind()).length, 1, 'its data file is in a folder of its own');
      const exited = child.process.exitCode === null ? once(child.process, 'exit') : Promise.resolve();
      if (end === 'stop') await child.stop();
      else if (end === 'disconnect') child.process.disconnect();
      else child.process.kill(end);
      await exited;
      assert.deepEqual(await leftBehind(), [], `ended by ${end}`);
    }
  } finally {
    for (const child of started) child.process.kill('SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  }
});

/**
 * A child ended by a signal (the kernel's OOM killer, a segfault, a stray `kill`) has no exit code: the runner took it
 * for alive, so its next call wrote to the closed channel, an unhandled 'error' that ended the runner with
 * "Channel closed" instead of naming the child, and stopping it waited for an exit already past.
 */
test('a bench child killed by a signal is said to be gone: a call to it rejects with the signal, and stopping it returns', async () => {
  // Killed, it cannot remove its data file's folder: made in a scratch folder of the test's, removed after (each
  // run of the suite left one in the system's temporary folder).
  const scratch = await mkdtemp(join(tmpdir(), 'bench-emulator-scratch-'));
  const child = await startChild('./emulator-child.ts', ['emulator'], { TMPDIR: scratch });
  try {
    const exited = once(child.process, 'exit');
    child.process.kill('SIGKILL');
    await exited;
    await assert.rejects(child.call('count'), /emulator-child\.ts exited \(SIGKILL\)/);
    await child.stop();
  } finally {
    child.process.kill('SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  }
});

/**
 * A child stuck before it says it is ready (a hung import, a port it waits for) held the bench, silent, for ever: it
 * is given a time, then killed and said.
 */
test('a bench child that never says it is ready is killed after its time, and said so', async () => {
  const started = startChild('../test/bench/fixtures/never-ready.ts', ['never-ready'], {}, { readyTimeoutMs: 1_000 });
  await assert.rejects(started, /never-ready\.ts never-ready was not ready within 1 s \(killed\)/);
});

/**
 * Round trips were timed: the fastest of three operations at 50 ms upstream latency, less the fastest at 0 ms, over
 * 50 ms, rounded. Any 25 ms of noise in those minima miscounted them: a full run on a loaded machine (load average
 * 7) reported the dashboard's 1 round trip as 3 for the gateway, and its target as not met. The emulator child now
 * counts them from the order of events: a request arriving after another's answer was let go is one round trip
 * deeper than it.
 */
test('the bench emulator counts round trips from which requests arrived after which answers, not from time', async (t) => {
  const { emulator, client, seed } = await startBenchEmulator(t);
  const [first, second, third] = seed.accountIds;
  await emulator.call('latency', { ms: 50 });

  await emulator.call('clear');
  await Promise.all([client.getAccount(first!), client.getAccount(second!)]);
  assert.equal((await emulator.call('count'))['roundTrips'], 1, 'two requests out together are one round trip');

  await emulator.call('clear');
  await Promise.all([client.getAccount(first!), client.getAccount(second!)]);
  await client.getAccount(third!);
  await client.getAccount(first!);
  assert.equal((await emulator.call('count'))['roundTrips'], 3, 'each request sent after the last answer is one more');

  await emulator.call('clear');
  assert.equal((await emulator.call('count'))['roundTrips'], 0, 'none since the log was cleared');
});
