import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { eventually } from '../helpers/eventually.ts';
import { IN_MAIN, query, remoteUpstreamEnv, startMain, startRemoteUpstream, stopper, type Started } from '../helpers/main-process.ts';
import { logEntries, runScript } from '../helpers/script.ts';
import { startSlowDownload, type SlowRead } from '../helpers/stack.ts';

/**
 * Main against an emulator of the test's own, with an operation in flight on an account whose upstream
 * request hangs (its deadlines far off), and `SHUTDOWN_GRACE_MS=shutdownGraceMs`. The operation's answer, or
 * `'connection closed'` when it got none.
 */
async function withOperationInFlight(
  shutdownGraceMs: string,
  run: (started: Started, inFlight: Promise<Awaited<ReturnType<typeof query>> | 'connection closed'>) => Promise<void>,
): Promise<void> {
  const upstream = await startRemoteUpstream();
  try {
    const { id } = upstream.store.createAccount({ email: 'stuck@example.com' });
    upstream.addFault({ path: `/accounts/${id}`, hang: true });
    const started = await startMain({
      ...remoteUpstreamEnv(upstream),
      SHUTDOWN_GRACE_MS: shutdownGraceMs,
      UPSTREAM_TIMEOUT_MS: '120000',
      OPERATION_TIMEOUT_MS: '600000',
    });
    // Its check of the upstream at start answered first: the request in flight below is then the operation's.
    await eventually(() => upstream.requests.length > 0, IN_MAIN);
    const inFlight = query(started.url, `{ account(id: "${id}") { id } }`).catch(() => 'connection closed' as const);
    await eventually(() => upstream.inFlight > 0, IN_MAIN);
    await run(started, inFlight);
  } finally {
    await upstream.close();
  }
}

// Apart from start.test.ts so that each file stays well within the runner's 300 s a file (see
// test/helpers/main-process.ts).
describe('npm start, stopping: the signals, the grace period, a save under way', () => {
  // SIGHUP (a terminal closing), SIGQUIT (a stop signal some images set) and SIGUSR2 (nodemon's restart) too:
  // Node's default ends the process at once.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const) {
    it(`on ${signal} persists the embedded emulator’s state to EMULATOR_DATA_FILE, says which signal stopped it, and exits 0`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
      const dataFile = join(dir, 'state.json');
      try {
        const started = await startMain({ EMULATOR_DATA_FILE: dataFile, EMULATOR_SEED: 'none' });
        let token: string;
        let code: number | null;
        try {
          const created = await query(started.url, 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }');
          token = (created.data!['createConnectToken'] as { token: string }).token;
          // The emulator saves after every change as well: once that save is on disk the file is removed,
          // so that only the save at shutdown can bring it back.
          await eventually(async () => (await readFile(dataFile, 'utf8').catch(() => '')).includes(token), { ...IN_MAIN, what: `${dataFile} to hold ${token}` });
          await rm(dataFile);
        } finally {
          code = await started.stop(signal);
        }
        assert.equal(code, 0, started.lines.join('\n'));
        const shutdown = logEntries(started.lines).filter((entry) => entry['message'] === 'shutting down');
        assert.deepEqual(
          shutdown.map((entry) => ({ level: entry['level'], signal: entry['signal'] })),
          [{ level: 'info', signal }],
        );
        const last = logEntries(started.lines).at(-1)!;
        assert.deepEqual([last['level'], last['message'], last['exitCode']], ['info', 'stopped', 0], 'the last line says the shutdown ended');
        assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
        assert.deepEqual((await readdir(dir)).filter((f) => f !== 'state.json'), [], 'no temporary file left behind');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('on a second signal during the grace period exits 1 at once instead of waiting for operations in flight', async () => {
    // A grace period far longer than the test may take: only the second signal can end the process in time.
    await withOperationInFlight('600000', async (started, inFlight) => {
      started.stop('SIGTERM').catch(() => undefined);
      await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
      // Another signal than the first: an operator, not npm passing the first one on (next test).
      assert.equal(await started.stop('SIGINT'), 1, started.lines.join('\n'));
      const forced = logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal during shutdown'));
      assert.deepEqual(forced.map((entry) => ({ level: entry['level'], signal: entry['signal'] })), [{ level: 'warn', signal: 'SIGINT' }]);
      assert.equal(await inFlight, 'connection closed');
    });
  });

  it('on a second signal while the embedded emulator’s save hangs (a disk that hangs), exits 1 instead of waiting on it for ever', async () => {
    await withSaveUnderWay('hang-saves-after-first.mjs', async (started) => {
      // Without a bound on the wait for the save, this never ends.
      const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref());
      assert.equal(await Promise.race([started.stop('SIGINT'), hung]), 1, started.lines.join('\n'));
      assert.equal(logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal during shutdown')).length, 1);
    });
  });

  it('on a second signal while the embedded emulator’s save is under way (a slow disk), exits 1 once the save is done: the change is kept', async () => {
    await withSaveUnderWay('hold-saves-until-sigwinch.mjs', async (started, dataFile, created) => {
      const exited = started.stop('SIGINT');
      await eventually(() => started.lines.some((l) => l.includes('second signal during shutdown')), IN_MAIN);
      // The disk finishes the save the forced stop waits for.
      process.kill(started.pid, 'SIGWINCH');
      assert.equal(await exited, 1, started.lines.join('\n'));
      const saved = JSON.stringify(JSON.parse(await readFile(dataFile, 'utf8')));
      assert.match(saved, /app\.example\.com\/cb/, 'the change whose save was under way is in the data file');
      await created;
    });
  });

  it('takes a signal repeated within a second (the process group signalled: directly and again through npm) as one, and shuts down gracefully', async () => {
    await withOperationInFlight('1000', async (started, inFlight) => {
      started.stop('SIGINT').catch(() => undefined);
      // npm's copy arrives just after the gateway handled its own (two signals sent together would merge).
      await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
      assert.equal(await started.stop('SIGINT'), 0, started.lines.join('\n'));
      // Answered at the end of the grace period, not cut off.
      const answer = await inFlight;
      assert.notEqual(answer, 'connection closed');
      assert.deepEqual(((answer as { errors: Array<{ extensions: { code: string } }> }).errors).map((e) => e.extensions.code), ['UPSTREAM_TIMEOUT']);
      assert.equal(logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal')).length, 0);
      // Said, though: one more such signal would stop the gateway at once.
      const repeated = logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('the same signal again'));
      assert.deepEqual(repeated.map((entry) => ({ level: entry['level'], signal: entry['signal'] })), [{ level: 'info', signal: 'SIGINT' }]);
    });
  });

  it('writes the operation line of an answer cut at the end of the grace period before it exits', { timeout: 60_000 }, async () => {
    const upstream = await startRemoteUpstream();
    let download: SlowRead | undefined;
    try {
      const started = await startMain({
        ...remoteUpstreamEnv(upstream),
        SHUTDOWN_GRACE_MS: '200',
      });
      download = await startSlowDownload(upstream, started.url);
      assert.equal(await started.stop(), 0, started.lines.join('\n'));
      const operations = logEntries(started.lines).filter((entry) => entry['message'] === 'operation');
      assert.deepEqual(operations.map((entry) => [entry['status'], entry['cutAtShutdown']]), [[null, true]]);
    } finally {
      download?.socket.destroy();
      await upstream.close();
    }
  });

  it('with SHUTDOWN_DRAIN_MS, serves new connections on SIGTERM with /healthz at 503, then exits cleanly', { timeout: 30_000 }, async () => {
    const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', EMULATOR_SEED: 'none', SHUTDOWN_DRAIN_MS: '3000' });
    const closed = once(run.child, 'close');
    const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
    run.child.kill('SIGTERM');
    await run.waitForLine(/"message":"draining/);
    const health = await fetch(new URL('/healthz', url));
    assert.equal(health.status, 503);
    assert.deepEqual(await query(url!, '{ __typename }'), { data: { __typename: 'Query' } });
    // The embedded emulator is closed after the gateway: operations the drain admits still reach it.
    assert.deepEqual(await query(url!, '{ accounts { nodes { id } } }'), { data: { accounts: { nodes: [] } } });
    const [code] = await run.exited;
    await closed;
    assert.equal(code, 0, run.lines.join('\n'));
  });

  it('keeps serving when whatever reads its log goes away (a closed pipe), and still stops cleanly', async () => {
    const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', EMULATOR_SEED: 'none' });
    const stop = stopper(run);
    const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
    run.child.stderr!.destroy();
    try {
      // Each answered operation writes a log line to the closed pipe.
      for (let i = 0; i < 20; i++) assert.deepEqual(await query(url!, '{ __typename }'), { data: { __typename: 'Query' } });
      assert.equal(run.child.exitCode, null, 'still running');
    } finally {
      assert.equal(await stop('SIGTERM'), 0);
    }
  });
});

/**
 * `npm start` with the embedded emulator on a data file of its own, its saves slowed by `fixture` (one of
 * test/emulator/fixtures/), a change made whose save is under way (its answer waits on it, so it is only
 * handed over, as `created`), and its shutdown begun (SIGTERM); then `use`. The process is killed after.
 */
async function withSaveUnderWay(fixture: string, use: (started: Started, dataFile: string, created: Promise<unknown>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
  const dataFile = join(dir, 'state.json');
  const preload = [new URL(`../emulator/fixtures/${fixture}`, import.meta.url).href];
  const started = await startMain({ EMULATOR_SEED: 'none', EMULATOR_DATA_FILE: dataFile, SHUTDOWN_DRAIN_MS: '0' }, preload);
  try {
    const created = query(started.url, 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }').catch(() => undefined);
    await eventually(async () => (await readdir(dir)).some((name) => name !== 'state.json'), { ...IN_MAIN, what: 'the save to begin' });
    started.stop('SIGTERM').catch(() => undefined);
    await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
    await use(started, dataFile, created);
  } finally {
    try {
      process.kill(started.pid, 'SIGKILL'); // after a failed assertion
    } catch {
      // It exited.
    }
    await rm(dir, { recursive: true, force: true });
  }
}
