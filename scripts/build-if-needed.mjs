// `npm start` and `npm run emulator` build first, but only when something the build reads has changed since
// the last successful build: a restart then takes a moment instead of a full TypeScript and IDE build.
// "Changed" means the contents, hashed, not modification times, which checkouts and copies do not keep.
// `--check` only says whether a build is needed (exit 0: up to date, 1: needed); `--unstamp` and `--stamp` are
// the first and last steps of `npm run build` itself, so a build run by hand counts too, and one that failed
// never does.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** What `npm run build` reads: the sources, their compiler settings (package.json's `type` among them), the IDE build script, the exact dependencies. */
const INPUTS = ['src', 'schema', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build-ide.mjs', 'package.json', 'package-lock.json'];
/**
 * What it writes that the two commands run: with one missing, the build is not there, whatever the stamp says.
 * In a file of its own, which the build's tests read too (this script runs as it is imported).
 */
const OUTPUTS = JSON.parse(readFileSync(join(root, 'scripts', 'build-outputs.json'), 'utf8'));
const STAMP = join(root, 'dist', '.build-inputs');
/**
 * A lock older than this outlived its build, whose pid another process now has. Well past the longest build
 * seen: seconds on a quiet machine, up to a minute and a half on a busy one, where a lock taken over from a
 * build still running would let a second build empty dist/ under the first.
 */
const STALE_LOCK_MS = 10 * 60_000;

/** The files of an input, a file or a folder (recursively), as paths relative to the root. */
function filesOf(input) {
  const full = join(root, input);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [input];
  return readdirSync(full, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name)));
}

function inputsHash() {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap(filesOf).sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

const outputsPresent = () => OUTPUTS.every((output) => existsSync(join(root, output)));
/** Whether dist/ is there and was built from inputs with this hash. */
const builtFrom = (hash) => outputsPresent() && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === hash;

if (process.argv.includes('--unstamp')) {
  // The first step of `npm run build`: tsc writes its output even when it refuses the sources, so a build that
  // fails must leave no stamp behind, or sources brought back as stamped (`git stash`) would run what it wrote.
  rmSync(STAMP, { force: true });
  process.exit(0);
}
if (process.argv.includes('--stamp')) {
  // The last step of `npm run build`: records what it was built from, so a later start need not rebuild.
  if (!outputsPresent()) process.exit(missingOutputs());
  writeFileSync(STAMP, `${inputsHash()}\n`);
  process.exit(0);
}
if (process.argv.includes('--check')) {
  // For a deployment script: exit 0 when the build is current, 1 when `npm run build` is needed.
  const upToDate = builtFrom(inputsHash());
  console.log(upToDate ? 'build: up to date (dist/)' : 'build: needed');
  process.exit(upToDate ? 0 : 1);
}
// Up to date, there is nothing to build and so no lock to take: a deployment whose files its user cannot
// write (the image's files root's, the gateway run as another user; a read-only filesystem) starts all the
// same. A build under way has removed the stamp first, so this never takes a half-written dist/ for current.
if (builtFrom(inputsHash())) {
  console.log('build: up to date (dist/)');
  process.exit(0);
}
// `npm start` and `npm run emulator` side by side on a fresh checkout would otherwise build at the same
// time, one deleting dist/ide while the other writes it: the second waits, then finds the build done.
process.exit(unlessUnwritable(() => withBuildLock(buildDist)));

/** The build, holding the lock: exit status 0 when dist/ is built from the inputs as they are now. */
function buildDist() {
  const current = inputsHash(); // inside the lock: another process may have built while this one waited
  if (builtFrom(current)) {
    console.log('build: up to date (dist/)');
    return 0;
  }
  const why = existsSync(STAMP) ? 'sources changed since the last build' : 'no build yet';
  // Deployed with `npm prune --omit=dev` after building, an edited source cannot be built: said plainly, not
  // as npm's `tsc: not found`.
  if (!existsSync(join(root, 'node_modules', 'typescript', 'bin', 'tsc'))) {
    console.error(`build: dist/ must be built (${why}), but the build tools are not installed (development dependencies pruned?): run \`npm ci\`, then start again`);
    return 1;
  }
  // The first build compiles every source and bundles the IDE's editors: tens of seconds in which nothing
  // else is printed, which a newcomer could take for a hang.
  console.log(`build: building dist/ (${why}); the first build takes up to a minute, then the gateway starts`);
  // A failed or interrupted build must never look current (tsc writes its output even with type errors):
  // the stamp goes first. So does tsc's incremental record, which would skip files it believes are in dist/.
  rmSync(STAMP, { force: true });
  rmSync(join(root, 'dist', '.tsbuildinfo'), { force: true });
  const npm = process.env['npm_execpath'];
  const result = npm
    ? spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) return result.status ?? 1;
  if (!outputsPresent()) return missingOutputs();
  // Stamped with the inputs as they were when the build began: a file edited during the build rebuilds next time.
  writeFileSync(STAMP, `${current}\n`);
  return 0;
}

/**
 * Runs `build`; where it cannot write (the hardened deployment above, with sources changed since its build),
 * says so in one line with what to do, and fails, rather than with the stack trace of the first file refused.
 */
function unlessUnwritable(build) {
  const why = existsSync(STAMP) ? 'sources changed since the last build' : 'no build yet';
  try {
    return build();
  } catch (error) {
    if (!['EACCES', 'EPERM', 'EROFS'].includes(error?.code) || typeof error.path !== 'string') throw error;
    console.error(
      `build: dist/ must be built (${why}), but ${relative(root, error.path)} cannot be written (${error.code}): ` +
        'build as a user who may write dist/ (`npm run build`, in the image or as its owner), then start again',
    );
    return 1;
  }
}

/**
 * Runs `build` holding dist/.build-lock; waits while another live process holds it. A lock is taken over
 * when its holder is gone: its process no longer runs, it names this very process (a reused pid), or it is
 * older than any build (a pid reused by some other process). Best effort, for two starts side by side.
 */
function withBuildLock(build) {
  const lock = join(root, 'dist', '.build-lock');
  mkdirSync(dirname(lock), { recursive: true });
  for (let announced = false; ; ) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let holder;
    let ageMs;
    try {
      holder = Number(readFileSync(lock, 'utf8'));
      ageMs = Date.now() - statSync(lock).mtimeMs;
    } catch (error) {
      if (error.code === 'ENOENT') continue; // released meanwhile: try again
      throw error;
    }
    const written = holder > 0; // an empty file is a lock being written right now
    if ((written && (holder === process.pid || !isAlive(holder))) || ageMs > STALE_LOCK_MS) {
      // Moved aside rather than deleted: of several processes finding it stale, one succeeds; the others
      // find no file (ENOENT) and try again. The one that moved it drops it.
      const aside = `${lock}.stale-${process.pid}`;
      try {
        renameSync(lock, aside);
        rmSync(aside, { force: true });
      } catch (error) {
        if (error.code !== 'ENOENT') throw error;
      }
      continue;
    }
    if (!announced) {
      const who = written ? `process ${holder}` : 'another process';
      console.log(`build: waiting for the build ${who} is running (dist/.build-lock; taken over after ${STALE_LOCK_MS / 60_000} minutes)`);
    }
    announced = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
  try {
    return build();
  } finally {
    rmSync(lock, { force: true });
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function missingOutputs() {
  console.error(`build: the build left some of its outputs missing (${OUTPUTS.join(', ')})`);
  return 1;
}
