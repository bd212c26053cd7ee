import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildStep, OUTPUTS, runAs, stampedBuild } from '../helpers/build-step.ts';
import { projectCopy, sourcesCopy } from '../helpers/project-copy.ts';
import { runScript } from '../helpers/script.ts';

const root = join(import.meta.dirname, '..', '..');

describe('npm start’s build step', () => {
  it('builds once for two starts at once, and at once over the lock of a build that died', { timeout: 270_000 }, async () => {
    // Two builds: ~15 s each on a quiet machine, ~40 s at a load of 9. The others are build-changes.test.ts's,
    // so that each file stays well within the runner's 300 s a file (see test/helpers/build-step.ts).
    const dir = await projectCopy();
    try {

      assert.deepEqual(await buildStep(dir, '--check'), { code: 1, output: 'build: needed\n' });
      // Two starts at once (npm start beside npm run emulator): one builds, the other waits and finds it done.
      const [one, other] = await Promise.all([buildStep(dir), buildStep(dir)]);
      assert.equal(one.code, 0, one.output);
      assert.equal(other.code, 0, other.output);
      const builders = [one, other].filter((r) => r.output.includes('build: building'));
      assert.equal(builders.length, 1, one.output + other.output);
      // Tens of seconds with nothing else printed: the line says how long to expect.
      assert.match(builders[0]!.output, /^build: building dist\/ \(no build yet\); the first build takes up to a minute, then the gateway starts\n/);
      // The other waited (or, started late, came after): either way it found the build done.
      assert.match((builders[0] === one ? other : one).output, /build: up to date \(dist\/\)\n$/);
      await rm(join(dir, 'dist', '.build-inputs'));

      // A lock left by a build that died is taken over at once, not waited on.
      const dead = spawn(process.execPath, ['-e', '']);
      await once(dead, 'exit');
      await writeFile(join(dir, 'dist', '.build-lock'), String(dead.pid));
      const afterDeath = await buildStep(dir);
      assert.equal(afterDeath.code, 0, afterDeath.output);
      assert.doesNotMatch(afterDeath.output, /waiting/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const NOBODY = { uid: 65534, gid: 65534 };
const isRoot = () => process.getuid?.() === 0;

/**
 * Why the unprivileged build step cannot run here, if it cannot: root runs it as nobody, who may not run a Node
 * installed in root's private home (nvm's, or `npx node@…`'s under /root); it would fail on spawn's EACCES,
 * which says nothing about the build step.
 */
async function nobodyCannotRunNode(): Promise<string | undefined> {
  if (!isRoot()) return undefined;
  const child = spawn(process.execPath, ['--version'], { stdio: 'ignore', ...NOBODY });
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.on('error', resolve);
    child.on('exit', () => resolve(undefined));
  });
  return error ? `nobody (uid ${NOBODY.uid}) cannot run this Node, ${process.execPath} (${error.code}): run the tests with a Node outside root's home` : undefined;
}
const unprivilegedSkip = await nobodyCannotRunNode();

/**
 * The build step in `dir` by a user who can read it but not write `readOnly`. Root writes whatever the modes
 * say: the step then runs as nobody.
 */
async function buildStepUnprivileged(dir: string, readOnly: string) {
  const root_ = isRoot();
  await chmod(dir, 0o755);
  if (!root_) await chmod(readOnly, 0o555);
  try {
    return await runAs(root_ ? NOBODY : {}, dir, process.execPath, join(dir, 'scripts', 'build-if-needed.mjs'));
  } finally {
    await chmod(readOnly, 0o755);
  }
}

describe('npm start’s build step where its files cannot be written', () => {
  // A hardened deployment: the image's files belong to root and the gateway runs as another user (a
  // Dockerfile's `USER node`), or the container's filesystem is read-only. Built in the image, dist/ is up to
  // date, and npm start must start without writing anything there.
  it('finds an up-to-date build up to date without writing in dist/', { skip: unprivilegedSkip }, async () => {
    const dir = await sourcesCopy('contextio-read-only-');
    try {
      await stampedBuild(dir);
      assert.deepEqual(await buildStepUnprivileged(dir, join(dir, 'dist')), { code: 0, output: 'build: up to date (dist/)\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start’s build step where dist/ must be built but cannot be written', () => {
  // The same hardened deployment, its sources changed after the image's build (a file edited, copied in), or
  // never built there: the build cannot proceed, and says so in a line, not as a stack trace of the first
  // file it could not write.
  const whatToDo = 'build as a user who may write dist/ (`npm run build`, in the image or as its owner), then start again';

  it('says in one line what it could not write and what to do, and fails', { skip: unprivilegedSkip }, async () => {
    const dir = await sourcesCopy('contextio-unwritable-');
    try {
      await stampedBuild(dir);
      await appendFile(join(dir, 'src', 'logging', 'logger.ts'), '\n// changed\n');
      assert.deepEqual(await buildStepUnprivileged(dir, join(dir, 'dist')), {
        code: 1,
        output: `build: dist/ must be built (sources changed since the last build), but dist/.build-lock cannot be written (EACCES): ${whatToDo}\n`,
      });

      // No dist/ at all, in a project folder this user cannot write.
      await rm(join(dir, 'dist'), { recursive: true });
      assert.deepEqual(await buildStepUnprivileged(dir, dir), {
        code: 1,
        output: `build: dist/ must be built (no build yet), but dist cannot be written (EACCES): ${whatToDo}\n`,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start’s build step without the build tools', () => {
  it('says what to do when dist/ must be built and the development dependencies were pruned', async () => {
    const dir = await sourcesCopy('contextio-pruned-');
    try {
      const { code, output } = await buildStep(dir);
      assert.equal(code, 1);
      assert.match(output, /^build: dist\/ must be built \(no build yet\), but the build tools are not installed \(development dependencies pruned\?\): run `npm ci`, then start again\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start’s build step, by what the build reads', () => {
  it('needs a build when any input of the build changed, not the sources alone: the schema, the compiler settings, the IDE build script, package.json, the lock file', async () => {
    const dir = await sourcesCopy('contextio-inputs-');
    try {
      await stampedBuild(dir);
      for (const input of ['schema/account.graphql', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build-ide.mjs', 'package.json', 'package-lock.json']) {
        const file = join(dir, input);
        const original = await readFile(file);
        await appendFile(file, '\n');
        assert.deepEqual(await buildStep(dir, '--check'), { code: 1, output: 'build: needed\n' }, input);
        await writeFile(file, original);
        assert.equal((await buildStep(dir, '--check')).code, 0, input);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start’s build step, by what the build wrote', () => {
  it('needs a build when any of its outputs is gone, though the stamp says dist/ was built from these inputs (a cleaned folder)', async () => {
    const dir = await sourcesCopy('contextio-outputs-');
    try {
      await stampedBuild(dir);
      for (const output of OUTPUTS) {
        await rm(join(dir, output));
        assert.deepEqual(await buildStep(dir, '--check'), { code: 1, output: 'build: needed\n' }, output);
        await writeFile(join(dir, output), '');
        assert.equal((await buildStep(dir, '--check')).code, 0, output);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start’s build step beside another', () => {
  it('waits while a live process holds the build lock, saying which, and takes over a lock older than any build', { timeout: 60_000 }, async () => {
    // Without the build tools: once it holds the lock, the step stops at once, saying so.
    const dir = await sourcesCopy('contextio-lock-');
    try {
      const lock = join(dir, 'dist', '.build-lock');
      await mkdir(join(dir, 'dist'));
      // This test's own process: alive, and never the step's.
      await writeFile(lock, String(process.pid));
      const run = runScript(join(dir, 'scripts', 'build-if-needed.mjs'), {});
      try {
        await run.waitForLine(/^build: waiting/);
        assert.deepEqual(run.lines, [`build: waiting for the build process ${process.pid} is running (dist/.build-lock; taken over after 10 minutes)`]);
        // Its pid since reused by a process that lives on: only its age tells the build is long gone.
        const longAgo = new Date(Date.now() - 11 * 60_000);
        await utimes(lock, longAgo, longAgo);
        const [code] = await run.exited;
        assert.equal(code, 1, run.lines.join('\n'));
        assert.match(run.lines.join('\n'), /\nbuild: dist\/ must be built \(no build yet\), but the build tools are not installed/);
      } finally {
        run.child.kill('SIGKILL'); // still waiting, after a failed assertion; a no-op once exited
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm in the project', () => {
  it('never asks the registry for a newer npm at npm start, whatever the user\'s own npm settings (a fresh HOME)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'contextio-home-'));
    try {
      // A server's npm, run with a fresh HOME, otherwise contacts the registry at each start and logs the offer.
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_config_/i.test(name)));
      const child = spawn('npm', ['config', 'get', 'update-notifier'], { cwd: root, env: { ...env, HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await once(child, 'close');
      assert.equal(output.trim(), 'false');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
