import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Runs `npm run --silent <script> -- <args>` in the project, in a process group of its own, until its output shows
 * `begun`; then sends SIGTERM to npm alone, as a supervisor or `timeout` does (a terminal's Ctrl-C signals the whole
 * group), and returns all it printed once npm and every process holding its output pipes have ended. npm passes the
 * signal to its child: unless the script execs its command, the shell between them dies alone and the command runs
 * on, orphaned, printing on. The group is killed when the test ends, whatever happened.
 */
export async function outputOfNpmStoppedMidRun(t: TestContext, script: string, args: string[], env: Record<string, string>, begun: RegExp): Promise<string> {
  const child = spawn('npm', ['run', '--silent', script, ...(args.length > 0 ? ['--', ...args] : [])], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // The group is gone, as it should be.
    }
  });
  let output = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (begun.test(output)) resolve();
    });
    child.once('exit', () => reject(new Error(`npm run ${script} exited before ${begun}:\n${output}`)));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await started;
  // 'close': npm has exited and every process holding its output pipes (the command and what it started) too.
  const closed = once(child, 'close');
  child.kill('SIGTERM');
  await closed;
  return output;
}
