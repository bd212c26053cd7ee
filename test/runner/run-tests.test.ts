import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import test from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';

const FIXTURE = join('test', 'runner', 'fixtures', 'leaves-children.ts');

/** Whether `pid` is a live process (not a zombie). */
function processRuns(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Whether `pid` is a live process started by the fixture (not a zombie, not a later process given its id). */
function leftoverRunning(pid: number): boolean {
  try {
    return processRuns(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('run-tests-leftover');
  } catch {
    return false;
  }
}

const NEEDS_PROC = existsSync('/proc/self/stat') ? undefined : 'needs /proc';

/** `node scripts/run-tests.mjs ...args` in the project, with `env` added; everything it prints, as `output()`. */
function startRun(args: string[], env: Record<string, string> = {}) {
  // Without NODE_TEST_CONTEXT, which tells a `node --test` inside a test file to run nothing.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const run = spawn(process.execPath, [join('scripts', 'run-tests.mjs'), ...args], {
    cwd: projectRoot(),
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [run.stdout, run.stderr]) stream.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  // 'close', not 'exit': at 'exit' the last of its output (the leftovers it names) may still be unread.
  const exited = once(run, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  return { run, exited, output: () => output };
}

type Run = ReturnType<typeof startRun>;

/**
 * A run of `FIXTURE`, once it has reported its own process id and its two children's (at REPORT_PORT); then
 * `use`. Whatever is left of it is killed after.
 */
async function withFixtureRun(use: (report: { file: number; children: number[] }, run: Run) => Promise<void>): Promise<void> {
  const server = createServer();
  const reported = new Promise<{ file: number; children: number[] }>((resolve) =>
    server.once('connection', (socket) => {
      let body = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      socket.on('end', () => resolve(JSON.parse(body) as { file: number; children: number[] }));
    }),
  );
  const port = await listenOnLoopback(server);
  const run = startRun([FIXTURE], { REPORT_PORT: String(port) });
  let children: number[] = [];
  try {
    const report = await Promise.race([reported, run.exited.then(() => assert.fail(`the run ended before the fixture reported:\n${run.output()}`))]);
    children = report.children;
    await use(report, run);
  } finally {
    run.run.kill('SIGKILL');
    for (const pid of children) if (leftoverRunning(pid)) process.kill(pid, 'SIGKILL');
    await closeServer(server);
  }
}

// Node kills a test file at its time limit with SIGTERM, and whatever the file started lives on: the runner
// must stop it once the run ends. Killing the file here is that, without waiting for a time limit.
test('scripts/run-tests.mjs stops what a test file killed mid-run left running', { skip: NEEDS_PROC }, async () => {
  await withFixtureRun(async ({ file, children }, { exited, output }) => {
    assert.equal(children.length, 2);
    for (const pid of children) assert.ok(leftoverRunning(pid), `process ${pid} was not started`);
    process.kill(file, 'SIGTERM');
    const [code] = await exited;
    assert.equal(code, 1, output());
    for (const pid of children) {
      assert.equal(leftoverRunning(pid), false, `process ${pid} still runs after the run:\n${output()}`);
      assert.match(output(), new RegExp(`^  ${pid} .*run-tests-leftover$`, 'm'));
    }
  });
});

// Detached in a group of its own, the run no longer gets the terminal's Ctrl-C: the runner passes it on.
test('scripts/run-tests.mjs stopped by Ctrl-C (SIGINT) stops its test files and what they started, and exits 130', { skip: NEEDS_PROC, timeout: 60_000 }, async () => {
  await withFixtureRun(async ({ file, children }, { run, exited, output }) => {
    run.kill('SIGINT');
    // 128 + the signal's number, as a shell gives a command that a signal stopped.
    assert.deepEqual(await exited, [130, null], output());
    for (const pid of [file, ...children]) assert.equal(processRuns(pid), false, `process ${pid} still runs after the run:\n${output()}`);
  });
});

test('scripts/run-tests.mjs given a folder runs only its *.test.ts files: a fixture beside them is no test', async () => {
  // A time limit for a fixture run as a test after all (it never ends): such a run fails soon, not in minutes.
  const { exited, output } = startRun([join('test', 'runner', 'fixtures'), '--test-timeout=5000']);
  assert.deepEqual(await exited, [1, null], output());
  assert.equal(output(), `no test files under ${join('test', 'runner', 'fixtures')}\n`);
});


test('scripts/run-tests.mjs given a path that does not exist says so in one line, not with a stack trace', async () => {
  // A folder mistyped, or a file's name without its `.ts`: a name the runner cannot read as either.
  const { exited, output } = startRun([join('test', 'unit'), join('test', 'nope'), join('test', 'unit', 'shortened.test')]);
  assert.deepEqual(await exited, [1, null], output());
  assert.equal(output(), `run-tests: no such test file or folder: ${join('test', 'nope')}, ${join('test', 'unit', 'shortened.test')}\n`);
});

// A test that fails with no stack trace (it never settles, or its time limit cut it) is found by the line the
// runner names alone, which Node takes from tsx's compiled text (line 1) unless source maps are on.
test('scripts/run-tests.mjs names the line of a failing test in its file, not line 1 of the compiled file', async () => {
  const fixture = join('test', 'runner', 'fixtures', 'unsettled.ts');
  // Its own time limit, short: Node 20 and 22 fail a test left unsettled once its file's event loop is empty,
  // Node 24 only at the time limit, which by default (300 s) is this test's own too.
  const { exited, output } = startRun([fixture, '--test-timeout=10000']);
  assert.deepEqual(await exited, [1, null], output());
  const line = readFileSync(join(projectRoot(), fixture), 'utf8').split('\n').findIndex((text) => text.startsWith("test('never settles'")) + 1;
  assert.match(output(), new RegExp(`unsettled\\.ts:${line}:\\d+`), output());
});
