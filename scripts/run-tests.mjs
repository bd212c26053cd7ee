// Runs every test/**/*.test.ts file with Node's own test runner. Node 20 does not expand glob patterns
// given to `--test`, so the files are listed here; extra arguments narrow the set (a folder: its *.test.ts
// files; a file: that file), and those starting with `--` go to `node --test` after this script's own
// (`--test-timeout=5000` wins over the default below; `--test-name-pattern=...` picks tests).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const args = process.argv.slice(2);
const flags = args.filter((arg) => arg.startsWith('--'));
const given = args.filter((arg) => !arg.startsWith('--'));
const roots = given.length > 0 ? given : ['test'];
// Said in one line: a folder mistyped otherwise ended in readdirSync's stack trace.
const missing = roots.filter((root) => !existsSync(root));
if (missing.length > 0) {
  console.error(`run-tests: no such test file or folder: ${missing.join(', ')}`);
  process.exit(1);
}
const files = roots
  .flatMap((root) =>
    statSync(root).isDirectory()
      ? readdirSync(root, { recursive: true })
          .map((f) => join(root, String(f)))
          .filter((file) => file.endsWith('.test.ts'))
      : [root],
  )
  .sort();
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`);
  process.exit(1);
}

// Every process of the run carries this variable (unless started with an environment of its own) and, unless
// started `detached` (Chromium is), is in the run's process group: what either finds once `node --test` has
// exited was left running, e.g. by a test file that Node killed at its time limit, whose children outlive it.
// A run inside a test (test/runner/) adds its own to the outer run's, so that both find its processes.
// Named outside the prefixes the gateway reads settings under (CONTEXTIO_, …): a gateway started with the run's
// environment would warn that it is no setting of its own.
const RUN_VARIABLE = 'TEST_RUN_IDS';
const runId = randomUUID();
const runIds = [process.env[RUN_VARIABLE], runId].filter(Boolean).join(' ');

// One file at a time: several tests count upstream requests in flight, which a parallel file's load would blur.
// A time limit per test (node:test has none), so that a regression that leaves a wait unanswered fails that
// test instead of hanging the suite; the slow ones (a browser, a build) set their own. Node applies it to each
// file as a whole too: the build tests' file (several builds) took 93 s on a busy machine, and 120 s failed it.
// Source maps on: Node names where a failing test is (`test at file:line`, TAP's `location`) from positions in
// tsx's compiled text, line 1 for nearly every test, and maps them back to the .ts file only with this flag
// (tsx maps stack traces itself, but a test that never settles or was cut at its time limit has none).
const child = spawn(process.execPath, ['--import', 'tsx', '--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=300000', ...flags, ...files], {
  stdio: 'inherit',
  // Its own process group (and session): the group can be signalled, and searched for leftovers, as a whole.
  detached: true,
  env: { ...process.env, [RUN_VARIABLE]: runIds },
});

// Detached, the run no longer gets the terminal's Ctrl-C (or a hang-up) with this script: pass them on.
let stoppedBy;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    stoppedBy ??= signal;
    signalGroup(signal);
  });
}

const code = await new Promise((resolve) => child.on('exit', resolve));
await stopLeftovers();
process.exit(stoppedBy ? 128 + osSignal(stoppedBy) : (code ?? 1));

function signalGroup(signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is empty already.
  }
}

function osSignal(name) {
  return { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[name];
}

/** Kills (SIGKILL) every live process of the run still there, and says which it found. */
async function stopLeftovers() {
  // A leftover may start another between a look and the kill: look again until none is left.
  for (let look = 0; look < 20; look++) {
    const found = runProcesses();
    signalGroup('SIGKILL');
    if (found.length === 0) return;
    if (look === 0) {
      console.error(`run-tests: stopping ${found.length} process(es) the tests left running:`);
      for (const { pid, command } of found) console.error(`  ${pid} ${command}`);
    }
    for (const { pid } of found) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    await delay(100);
  }
}

/** The run's live processes (not zombies), by process group or by the run's variable; none without /proc. */
function runProcesses() {
  let pids;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found = [];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After the command's name, which is in parentheses and may hold anything: state, parent, group.
      const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' || state === 'X') continue;
      const ours = Number(group) === child.pid || runVariable(readFileSync(`/proc/${pid}/environ`, 'utf8')).includes(runId);
      if (ours) found.push({ pid: Number(pid), command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // Gone meanwhile, or another user's.
    }
  }
  return found;
}

/** The run ids in a process's environment (as /proc has it: NUL-separated `NAME=value` entries). */
function runVariable(environ) {
  const entry = environ.split('\0').find((line) => line.startsWith(`${RUN_VARIABLE}=`));
  return entry ? entry.slice(RUN_VARIABLE.length + 1).split(' ') : [];
}
