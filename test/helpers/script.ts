import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface RunningScript {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr, line by line. */
  lines: string[];
  /** Its exit code and signal, once it exits. */
  exited: Promise<[code: number | null, signal: NodeJS.Signals | null]>;
  /** The first line matching `pattern`, printed already or later; rejects if the process exits first. */
  waitForLine(pattern: RegExp): Promise<RegExpExecArray>;
}

/**
 * One of the project's commands as `npm` runs it, without its build step: `script` under tsx in a process of
 * its own, with only `PATH` and `env` for environment, and `preload` modules `--import`ed before it.
 */
export function runScript(script: string, env: Record<string, string>, preload: string[] = []): RunningScript {
  const child = spawn(process.execPath, ['--import', 'tsx', ...preload.flatMap((file) => ['--import', file]), script], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const waitForLine = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = (line: string) => {
        const match = pattern.exec(line);
        if (!match) return false;
        listeners.delete(check);
        resolve(match);
        return true;
      };
      if (lines.some(check)) return;
      listeners.add(check);
      void exited.then(([code]) => reject(new Error(`${script} exited (${code}) before printing ${pattern}:\n${lines.join('\n')}`)));
    });
  return { child, lines, exited, waitForLine };
}
