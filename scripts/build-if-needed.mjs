// `npm start` and `npm run emulator` build first, but only when something the build reads has changed since
// the last successful build: a restart then takes a moment instead of a full TypeScript and IDE build.
// "Changed" means the contents, hashed, not modification times, which checkouts and copies do not keep.
// `--check` only says whether a build is needed (exit 0: up to date, 1: needed); `--stamp` is the last step
// of `npm run build` itself, so a build run by hand counts too.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** What `npm run build` reads: the sources, their compiler settings (package.json's `type` among them), the IDE build script, the exact dependencies. */
const INPUTS = ['src', 'schema', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build-ide.mjs', 'package.json', 'package-lock.json'];
/** What it writes that the two commands run: with one missing, the build is not there, whatever the stamp says. */
const OUTPUTS = ['dist/src/main.js', 'dist/src/emulator/cli.js', 'dist/ide/manifest.json'];
const STAMP = join(root, 'dist', '.build-inputs');

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

const before = inputsHash();
const outputsPresent = () => OUTPUTS.every((output) => existsSync(join(root, output)));
const stampedHash = () => (existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : undefined);
const upToDate = outputsPresent() && stampedHash() === before;

if (process.argv.includes('--stamp')) {
  // The last step of `npm run build`: records what it was built from, so a later start need not rebuild.
  if (!outputsPresent()) fail('the build left some of its outputs missing');
  writeFileSync(STAMP, `${before}\n`);
  process.exit(0);
}
if (process.argv.includes('--check')) {
  // For a deployment script: exit 0 when the build is current, 1 when `npm run build` is needed.
  console.log(upToDate ? 'build: up to date (dist/)' : 'build: needed');
  process.exit(upToDate ? 0 : 1);
}
if (upToDate) {
  console.log('build: up to date (dist/)');
} else {
  console.log('build: building dist/ (sources changed since the last build)');
  // A failed or interrupted build must never look current (tsc writes its output even with type errors):
  // the stamp goes first. So does tsc's incremental record, which would skip files it believes are in dist/.
  rmSync(STAMP, { force: true });
  rmSync(join(root, 'dist', '.tsbuildinfo'), { force: true });
  const npm = process.env['npm_execpath'];
  const result = npm
    ? spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  if (!outputsPresent()) fail('the build left some of its outputs missing');
  // Stamped with the inputs as they were when the build began: a file edited during the build rebuilds next time.
  writeFileSync(STAMP, `${before}\n`);
}

function fail(message) {
  console.error(`build: ${message} (${OUTPUTS.join(', ')})`);
  process.exit(1);
}
