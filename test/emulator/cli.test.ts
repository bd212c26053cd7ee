import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import type { Emulator } from '../../src/emulator/index.ts';
import { runScript, type RunningScript } from '../helpers/script.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { api, type ApiResponse } from './helpers.ts';

/** `npm run emulator` without its build step, printing its one line. */
const LISTENING = /listening at /;
const runCli = (env: Record<string, string>, preload: string[] = []) => runScript('src/emulator/cli.ts', { EMULATOR_PORT: '0', ...env }, preload);

describe('npm run emulator', () => {
  test('prints one line with its URL and key, never a custom secret, serves signed requests and, signalled on that line, saves its data file and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contextio-emulator-cli-'));
    const runs: RunningScript[] = [];
    try {
      const dataFile = join(dir, 'state.json');
      const env = { EMULATOR_CONSUMER_KEY: 'cli-key', EMULATOR_CONSUMER_SECRET: 'cli-secret-value', EMULATOR_SEED: 'none', EMULATOR_DATA_FILE: dataFile };
      const first = runCli(env);
      runs.push(first);
      const { input: line } = await first.waitForLine(LISTENING);
      assert.deepEqual(first.lines, [line], 'one line');
      const url = /listening at (http:\/\/127\.0\.0\.1:\d+\/2\.0) \(consumer key cli-key, secret \(hidden\)\)$/.exec(line)?.[1];
      assert.ok(url, line);
      const emulator = { url, consumerKey: 'cli-key', consumerSecret: 'cli-secret-value' } as Emulator;
      const created = await api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } });
      assert.equal(created.status, 201);
      const token = (created.body as { token: string }).token;
      first.child.kill('SIGTERM');
      assert.deepEqual(await first.exited, [0, null]);
      assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
      assert.ok(first.lines.every((l) => !l.includes('cli-secret-value')), first.lines.join('\n'));

      // Signalled the moment it prints its line, it still closes in order: the state it loaded is kept.
      const second = runCli(env);
      runs.push(second);
      await second.waitForLine(LISTENING);
      second.child.kill('SIGTERM');
      assert.deepEqual(await second.exited, [0, null]);
      assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
    } finally {
      for (const run of runs) run.child.kill('SIGKILL'); // after a failed assertion; a no-op once exited
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('signalled again while its closing save hangs (a disk that hangs), exits 1 at once instead of never', async () => {
    await withCliOnDataFile('./fixtures/hang-saves-after-first.mjs', async (run, emulator) => {
      const port = Number(new URL(emulator.url).port);
      run.child.kill('SIGTERM');
      // Closing began: the port no longer takes connections, and the save on closing hangs.
      await eventually(() => connects(port).then((connected) => !connected), { what: 'the emulator to stop listening' });
      run.child.kill('SIGINT');
      // Without the second signal's forced exit this never ends: the process waits on the save for ever.
      const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref());
      assert.deepEqual(await Promise.race([run.exited, hung]), [1, null], run.lines.join('\n'));
      assert.deepEqual(run.lines.slice(1), ['Context.IO emulator: second signal while closing: exiting now (a save under way gets 2 s at most)']);
    });
  });

  test('signalled again while its closing save is under way (a slow disk), exits 1 once the save is done: the change is kept', async () => {
    await withSaveUnderWay(async (run, port, dataFile) => {
      run.child.kill('SIGTERM');
      await eventually(() => connects(port).then((connected) => !connected), { what: 'the emulator to stop listening' });
      run.child.kill('SIGINT');
      await run.waitForLine(/second signal while closing/);
      // The disk finishes the save the forced stop waits for.
      run.child.kill('SIGWINCH');
      assert.deepEqual(await run.exited, [1, null], run.lines.join('\n'));
      assert.match(await readFile(dataFile, 'utf8'), /app\.example\.com\/held/, 'the change whose save was under way is in the data file');
    });
  });

  test('signalled while a change’s save is under way, answers that change once it is saved, then exits 0: its client is not cut off from a change that was kept', async () => {
    await withSaveUnderWay(async (run, port, dataFile, answer) => {
      run.child.kill('SIGTERM');
      await eventually(() => connects(port).then((connected) => !connected), { what: 'the emulator to stop listening' });
      // The disk finishes the save.
      run.child.kill('SIGWINCH');
      assert.deepEqual(await run.exited, [0, null], run.lines.join('\n'));
      const answered = await answer;
      assert.ok(answered !== 'connection failed', 'the change is in the data file, yet its client was told nothing');
      assert.equal(answered.status, 201);
      const { token } = answered.body as { token: string };
      assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
    });
  });

  test('signalled while its data file cannot be written (a full disk), says its last save failed and exits 1: the changes since are lost', async () => {
    await withCliOnDataFile('../gateway/fixtures/fail-saves-after-first.mjs', async (run, emulator) => {
      // A change whose save fails: the one on closing fails too.
      await api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/lost' } });
      run.child.kill('SIGTERM');
      const [code] = await run.exited;
      assert.equal(code, 1, run.lines.join('\n'));
      assert.match(run.lines.at(-1)!, /^Context\.IO emulator: error while closing: .*could not save state on closing \(the changes since the last save are lost\)/);
    });
  });

  test('its stderr\'s reader gone (a pipe closed), a line it cannot write costs it nothing: it serves on, and still closes on a signal', async () => {
    await withCliOnDataFile('../gateway/fixtures/fail-saves-after-first.mjs', async (run, emulator) => {
      run.child.stderr!.destroy();
      // A change whose save fails: its line goes to the closed pipe (EPIPE).
      await api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/lost' } });
      await eventually(async () => (await api(emulator, '/connect_tokens')).status === 200, { what: 'the emulator to answer after the line it could not write' });
      assert.equal(run.child.exitCode, null, 'the emulator is still running');
      run.child.kill('SIGTERM');
      // Its last save fails too (exit 1), said on the closed pipe: what counts is that the signal was taken.
      assert.deepEqual(await run.exited, [1, null], run.lines.join('\n'));
    });
  });

  test('takes the same signal again within a second (npm passing on a Ctrl-C the emulator got too) as the same request: it closes in order, exit 0', async () => {
    await withSaveUnderWay(async (run, port, dataFile) => {
      run.child.kill('SIGINT');
      // npm's copy arrives just after the emulator handled its own (two signals sent together would merge).
      await eventually(() => connects(port).then((connected) => !connected), { what: 'the emulator to stop listening' });
      run.child.kill('SIGINT');
      run.child.kill('SIGWINCH');
      assert.deepEqual(await run.exited, [0, null], run.lines.join('\n'));
      assert.deepEqual(run.lines.slice(1), [], 'no forced exit');
      assert.match(await readFile(dataFile, 'utf8'), /app\.example\.com\/held/);
    });
  });

  test('names the public address on its line when EMULATOR_PUBLIC_URL is set, and warns that the development secret is then public', async () => {
    const run = runCli({ EMULATOR_PORT: '0', EMULATOR_PUBLIC_URL: 'http://devbox.lan:4010' });
    try {
      const { input: line } = await run.waitForLine(LISTENING);
      assert.match(line, /listening at http:\/\/127\.0\.0\.1:\d+\/2\.0, reached at http:\/\/devbox\.lan:4010\/2\.0 \(consumer key dev-key, secret dev-secret\)$/);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    // Anyone who reaches it may use its API with the key pair the README publishes: said at start.
    const warnings = run.lines.filter((l) => l.includes('warning'));
    assert.equal(warnings.length, 1, run.lines.join('\n'));
    assert.match(warnings[0]!, /^Context\.IO emulator: warning: reachable beyond loopback \(.*\) with the public development secret: .*; set EMULATOR_CONSUMER_SECRET$/);
  });

  test('warns of a variable that looks like one of its settings and is none, with the setting it is closest to', async () => {
    const run = runCli({ EMULATOR_SEEDS: 'none' });
    try {
      await run.waitForLine(LISTENING);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    assert.deepEqual(
      run.lines.filter((l) => l.includes('warning')),
      ['Context.IO emulator: warning: EMULATOR_SEEDS is not a setting and is ignored (did you mean EMULATOR_SEED?)'],
    );
  });

  test('writes a variable name it warns of on one line, its line breaks and directional controls escaped, as the gateway\'s JSON lines do', async () => {
    // An environment's names may hold anything but `=`: a line break in one made a line that passed for another.
    const run = runCli({ 'EMULATOR_X\nContext.IO emulator listening at http://elsewhere': '1', 'EMULATOR_Y\u202eZ': '1' });
    try {
      await run.waitForLine(LISTENING);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    assert.deepEqual(run.lines.filter((l) => l.includes('warning')), [
      'Context.IO emulator: warning: EMULATOR_X\\nContext.IO emulator listening at http://elsewhere is not a setting and is ignored',
      'Context.IO emulator: warning: EMULATOR_Y\\u202eZ is not a setting and is ignored',
    ]);
  });

  test('says on stderr a source callback it could not make, naming the host only, as the embedded one logs it: the flow went on and nothing else told of it', async () => {
    // The app's callback endpoint fails: its answer, not a timing, makes the failure.
    const app = createHttpServer((_req, res) => res.writeHead(500).end());
    const appPort = await listenOnLoopback(app);
    const run = runCli({ EMULATOR_SEED: 'none' });
    try {
      const { input: line } = await run.waitForLine(LISTENING);
      const url = /listening at (http:\/\/127\.0\.0\.1:\d+\/2\.0) /.exec(line)![1]!;
      const emulator = { url, consumerKey: 'dev-key', consumerSecret: 'dev-secret' } as Emulator;
      const hook = `http://127.0.0.1:${appPort}/hooks/source?key=app-secret`;
      const created = await api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb', source_callback_url: hook } });
      assert.equal(created.status, 201, created.text);
      const page = await fetch(created.body.browser_redirect_url as string, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'ada@example.com', port: '993', use_ssl: '1' }),
        redirect: 'manual',
      });
      assert.equal(page.status, 303, 'the flow completes whatever the callback answers');
      await run.waitForLine(/source callback/);
      assert.deepEqual(run.lines.filter((l) => l.includes('source callback')), [`Context.IO emulator: source callback to 127.0.0.1:${appPort} answered 500`]);
      assert.ok(run.lines.every((l) => !l.includes('app-secret') && !l.includes('/hooks/')), `the callback's path and query are never said:\n${run.lines.join('\n')}`);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      await closeServer(app);
    }
  });

  test('names its rate limit on its line when EMULATOR_RATE_LIMIT is set', async () => {
    const run = runCli({ EMULATOR_RATE_LIMIT: '120' });
    try {
      const { input: line } = await run.waitForLine(LISTENING);
      assert.match(line, /\(consumer key dev-key, secret dev-secret\); at most 120 calls an hour \(EMULATOR_RATE_LIMIT\)$/);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  test('refuses a bad configuration with a message and exit code 78 (EX_CONFIG), which no retry mends', async () => {
    const run = runCli({ EMULATOR_PORT: 'not-a-port', EMULATOR_SEED: 'empty' });
    const [code] = await run.exited;
    assert.equal(code, 78);
    assert.deepEqual(run.lines, [
      'Context.IO emulator: EMULATOR_PORT must be a whole number from 0 to 65535 (got "not-a-port")',
      'Context.IO emulator: EMULATOR_SEED must be "demo" or "none" (got "empty")',
    ]);
  });

  test('refuses an argument (npm run emulator -- --port 5000) with one line saying it is set through the environment, and exits 78: the argument was ignored, and the emulator listened on 4010', async () => {
    const run = runScript('src/emulator/cli.ts', { EMULATOR_PORT: '0' }, [], ['--port', '5000']);
    const [code] = await run.exited;
    assert.equal(code, 78, run.lines.join('\n'));
    assert.deepEqual(run.lines, [
      'Context.IO emulator: takes no arguments (got "--port" "5000"): it is set through the environment, EMULATOR_PORT, EMULATOR_HOST and the other EMULATOR_* variables of docs/configuration.md',
    ]);
  });

  test('refuses a corrupt data file with one line saying so, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contextio-cli-'));
    try {
      const dataFile = join(dir, 'state.json');
      await writeFile(dataFile, '{ not json');
      const run = runCli({ EMULATOR_DATA_FILE: dataFile });
      const [code] = await run.exited;
      assert.equal(code, 1);
      assert.deepEqual(run.lines, [`Context.IO emulator: data file ${dataFile} is corrupt (not valid JSON at line 1, column 3); fix or delete it`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('names EMULATOR_PORT when its port is in use, and exits 1', async () => {
    const taken = createServer();
    const port = await listenOnLoopback(taken);
    try {
      const run = runCli({ EMULATOR_PORT: String(port) });
      const [code] = await run.exited;
      assert.equal(code, 1);
      assert.deepEqual(run.lines, [`Context.IO emulator: EMULATOR_PORT=${port}: the port is already in use on 127.0.0.1 (choose another; 0 picks a free one)`]);
    } finally {
      await closeServer(taken);
    }
  });

  test('names EMULATOR_HOST when its name does not resolve, and exits 1', async () => {
    // .invalid never resolves (RFC 6761): nothing is listened on.
    const run = runCli({ EMULATOR_HOST: 'emulator.invalid' });
    const [code] = await run.exited;
    assert.equal(code, 1);
    assert.deepEqual(run.lines, ['Context.IO emulator: EMULATOR_HOST=emulator.invalid: the name does not resolve to an address']);
  });
});

/** Whether a connection to `port` on loopback is taken. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * `npm run emulator` on a data file of its own, with `fixture` (a module, its path from this file; preloaded) slowing or
 * failing its saves; then `use(run, the emulator as the API helpers call it, the data file)`. Killed after.
 */
async function withCliOnDataFile(fixture: string, use: (run: RunningScript, emulator: Emulator, dataFile: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'contextio-emulator-cli-'));
  const dataFile = join(dir, 'state.json');
  const run = runCli({ EMULATOR_SEED: 'none', EMULATOR_DATA_FILE: dataFile }, [new URL(fixture, import.meta.url).href]);
  try {
    const { input: line } = await run.waitForLine(LISTENING);
    const url = /listening at (http:\/\/127\.0\.0\.1:\d+\/2\.0)/.exec(line)![1]!;
    await use(run, { url, consumerKey: 'dev-key', consumerSecret: 'dev-secret' } as Emulator, dataFile);
  } finally {
    run.child.kill('SIGKILL'); // after a failed assertion; a no-op once exited
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `npm run emulator` on a data file of its own, whose saves are held until it gets SIGWINCH (a slow disk), with a
 * change made whose save is under way (its answer waits on it, so it is not awaited); then `use(run, its port,
 * the data file)`.
 */
async function withSaveUnderWay(
  use: (run: RunningScript, port: number, dataFile: string, answer: Promise<ApiResponse | 'connection failed'>) => Promise<void>,
): Promise<void> {
  await withCliOnDataFile('./fixtures/hold-saves-until-sigwinch.mjs', async (run, emulator, dataFile) => {
    const answer = api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/held' } }).catch(() => 'connection failed' as const);
    await eventually(async () => (await readdir(dirname(dataFile))).some((name) => name !== 'state.json'), { what: 'the save to begin' });
    await use(run, Number(new URL(emulator.url).port), dataFile, answer);
  });
}
