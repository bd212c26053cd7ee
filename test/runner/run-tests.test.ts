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

/** Whether `pid` is a live process started by the fixture (not a zombie, not a later process given its id). */
function leftoverRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('run-tests-leftover');
  } catch {
    return false;
  }
}

// Node kills a test file at its time limit with SIGTERM, and whatever the file started lives on: the runner
// must stop it once the run ends. Killing the file here is that, without waiting for a time limit.
test('scripts/run-tests.mjs stops what a test file killed mid-run left running', { skip: existsSync('/proc/self/stat') ? undefined : 'needs /proc' }, async () => {
  const server = createServer();
  const reported = new Promise<{ file: number; children: number[] }>((resolve) =>
    server.once('connection', (socket) => {
      let body = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      socket.on('end', () => resolve(JSON.parse(body) as { file: number; children: number[] }));
    }),
  );
  const port = await listenOnLoopback(server);
  // Without NODE_TEST_CONTEXT, which tells a `node --test` inside a test file to run nothing.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const run = spawn(process.execPath, [join('scripts', 'run-tests.mjs'), FIXTURE], {
    cwd: projectRoot(),
    env: { ...env, REPORT_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [run.stdout, run.stderr]) stream.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  // 'close', not 'exit': at 'exit' the last of its output (the leftovers it names) may still be unread.
  const exited = once(run, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let children: number[] = [];
  try {
    const report = await Promise.race([reported, exited.then(() => assert.fail(`the run ended before the fixture reported:\n${output}`))]);
    children = report.children;
    assert.equal(children.length, 2);
    for (const pid of children) assert.ok(leftoverRunning(pid), `process ${pid} was not started`);
    process.kill(report.file, 'SIGTERM');
    const [code] = await exited;
    assert.equal(code, 1, output);
    for (const pid of children) {
      assert.equal(leftoverRunning(pid), false, `process ${pid} still runs after the run:\n${output}`);
      assert.match(output, new RegExp(`^  ${pid} .*run-tests-leftover$`, 'm'));
    }
  } finally {
    run.kill('SIGKILL');
    for (const pid of children) if (leftoverRunning(pid)) process.kill(pid, 'SIGKILL');
    await closeServer(server);
  }
});
