import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/*
 * Runs npm start's build step, or npm, in a copy of the project: for test/gateway/build.test.ts,
 * build-changes.test.ts and build-by-hand.test.ts, apart so that each stays well within the runner's 300 s a file
 * on a loaded machine (their builds took 173 s of the file's 190 s with two CPU hogs running at a load of ~7 on
 * 2 cores).
 */

/** Runs the build step of `npm start` in `dir`; its exit code and output. */
export const buildStep = (dir: string, ...args: string[]) => run(dir, process.execPath, join(dir, 'scripts', 'build-if-needed.mjs'), ...args);
export const npm = (dir: string, ...args: string[]) => run(dir, 'npm', ...args);

async function run(dir: string, command: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  return runAs({}, dir, command, ...args);
}

/** `run`, as another user when `user` names one (`uid`, `gid`: only root may). */
export async function runAs(user: { uid?: number; gid?: number }, dir: string, command: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...user });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** What the build writes that `npm start` and `npm run emulator` run: with one gone, dist/ is not built (the build step's own list). */
export const OUTPUTS: string[] = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'scripts', 'build-outputs.json'), 'utf8')) as string[];

/** What the build leaves in `dir`, without a build: its three outputs (empty), and its stamp of the inputs. */
export async function stampedBuild(dir: string): Promise<void> {
  for (const output of OUTPUTS) {
    await mkdir(join(dir, output, '..'), { recursive: true });
    await writeFile(join(dir, output), '');
  }
  assert.equal((await buildStep(dir, '--stamp')).code, 0);
}
