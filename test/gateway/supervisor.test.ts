import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { projectCopy } from '../helpers/project-copy.ts';

// Apart from build.test.ts: each of these builds a copy of the project first, and the runner's 300 s a file
// held all seven builds of the two files together, which a machine at a load of 9 passed.
describe('npm start under a supervisor', () => {
  // A container runtime or process manager signals the process it started, npm, not the whole group as a
  // terminal's Ctrl-C does. npm passes the signal to its child: the script has to make that child the
  // gateway itself (exec), or the gateway is orphaned and keeps listening.
  const readyLines = {
    start: /"message":"gateway ready","graphql":"(http:\/\/127\.0\.0\.1:\d+)/,
    emulator: /listening at (http:\/\/127\.0\.0\.1:\d+)/,
  };
  for (const script of ['start', 'emulator'] as const) {
    it(`npm run ${script}: a SIGTERM sent to npm alone stops the server it started`, { timeout: 180_000 }, async (t) => {
      const dir = await projectCopy();
      let cleanup = () => {};
      try {
        const child = spawn('npm', ['run', '--silent', script], {
          cwd: dir,
          env: { ...process.env, PORT: '0', EMULATOR_PORT: '0', CI: 'true' },
          stdio: ['ignore', 'pipe', 'pipe'],
          // Its own process group, so that whatever it leaves behind can be cleaned up below.
          detached: true,
        });
        cleanup = () => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // The group is already gone: nothing was left behind.
          }
        };
        let output = '';
        const ready = new Promise<string>((resolve, reject) => {
          const read = (chunk: Buffer) => {
            output += chunk.toString();
            const url = readyLines[script].exec(output)?.[1];
            if (url) resolve(url);
          };
          child.stdout.on('data', read);
          child.stderr.on('data', read);
          child.once('exit', () => reject(new Error(`npm run ${script} exited before it was ready:\n${output}`)));
        });
        const origin = await ready;
        // 'close': npm has exited and its output pipes are closed, so every process holding them has ended
        // too, the server among them (it writes to them). A server orphaned and still listening keeps them
        // open: the test then fails at its time limit, which aborts the wait so that the group is killed below.
        const ended = once(child, 'close', { signal: t.signal });
        child.kill('SIGTERM');
        await ended;
        const refused = await fetch(origin).then(() => false, () => true);
        assert.ok(refused, `${origin} still answers after npm was stopped:\n${output}`);
      } finally {
        cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
