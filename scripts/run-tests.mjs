// Runs every test/**/*.test.ts file with Node's own test runner. Node 20 does not expand glob patterns
// given to `--test`, so the files are listed here; extra arguments (e.g. a folder) narrow the set.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test'];
const files = roots
  .flatMap((root) => (root.endsWith('.ts') ? [root] : readdirSync(root, { recursive: true }).map((f) => join(root, String(f)))))
  .filter((file) => file.endsWith('.test.ts'))
  .sort();
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`);
  process.exit(1);
}
// One file at a time: several tests count upstream requests in flight, which a parallel file's load would blur.
// A time limit per test (node:test has none), so that a regression that leaves a wait unanswered fails that
// test instead of hanging the suite; the slow ones (a browser, a build) set their own. Node applies it to each
// file as a whole too: the build tests' file (several builds) took 93 s on a busy machine, and 120 s failed it.
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
