import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** How long a started command may take to print what a test waits for. */
const LINE_WAIT_MS = 30_000;
/** How long a started command may live at all: longer than any test that uses one. */
const SCRIPT_LIFETIME_MS = 90_000;

/** `script` started as `runScript` starts it (see there), its output piped. */
export function spawnScript(script: string, env: Record<string, string>, preload: string[] = [], args: string[] = [], openFiles?: number): ChildProcessByStdio<null, Readable, Readable> {
  const command = [process.execPath, '--import', 'tsx', ...preload.flatMap((file) => ['--import', file]), script, ...args];
  const [file, ...argv] = openFiles === undefined ? command : ['sh', '-c', `ulimit -n ${openFiles} && exec "$0" "$@"`, ...command];
  return spawn(file!, argv, {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface RunningScript {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr, line by line. */
  lines: string[];
  /** Its exit code and signal, once it exited and all it printed is in `lines`. */
  exited: Promise<[code: number | null, signal: NodeJS.Signals | null]>;
  /** The first line matching `pattern`, printed already or later; rejects if the process exits first. */
  waitForLine(pattern: RegExp): Promise<RegExpExecArray>;
}

/**
 * One of the project's commands as `npm` runs it, without its build step: `script` under tsx in a process of
 * its own, with only `PATH` and `env` for environment, `preload` modules `--import`ed before it, and `args` after it;
 * under a limit of `openFiles` open files (`ulimit -n`, through `sh`) when one is given.
 */
export function runScript(script: string, env: Record<string, string>, preload: string[] = [], args: string[] = [], openFiles?: number): RunningScript {
  const child = spawnScript(script, env, preload, args, openFiles);
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const listener of listeners) listener(line);
    });
  }
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes (Node's docs).
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  // However a test ends (an assertion failing before it stops the process, a timeout), the process cannot
  // outlive it for long: a live child would keep the test file, and so the suite, from ending.
  const reaper = setTimeout(() => child.kill('SIGKILL'), SCRIPT_LIFETIME_MS);
  reaper.unref();
  void exited.then(() => clearTimeout(reaper));
  const waitForLine = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`${script} did not print ${pattern} within ${LINE_WAIT_MS} ms:\n${lines.join('\n')}`));
      }, LINE_WAIT_MS);
      const check = (line: string) => {
        const match = pattern.exec(line);
        if (!match) return false;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(match);
        return true;
      };
      if (lines.some(check)) return;
      listeners.add(check);
      void exited.then(([code]) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited (${code}) before printing ${pattern}:\n${lines.join('\n')}`));
      });
    });
  return { child, lines, exited, waitForLine };
}

/** The log lines (JSON objects, one a line) among everything a process printed. */
export function logEntries(lines: string[]): Array<Record<string, unknown>> {
  return lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Whether the process `pid` is still running (one a test started, or one that process started). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
