// GraphQL Code Generator's CLI, run with require() of ES modules on: it require()s packages published as ES
// modules only (yargs 18, chalk 5 …), which Node does without a flag only from 20.19; this project supports
// 20.18 (package.json `engines`), where `graphql-codegen` alone stops with ERR_REQUIRE_ESM. (Its plugins' auto-bind
// is not among them: 20.18's require() of auto-bind 5 breaks them even with the flag, so `overrides` in
// package.json pins the CommonJS 4.) The arguments are
// the CLI's (`--config codegen.yml`, `--silent` …); the exit code is its. When it fails, a syntax error in
// schema/ is printed after its output with the file and line the CLI does not give.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, Source } from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The command the package declares in its `bin`, found as Node finds the package: not a path into its files
// spelt out here, which a release moving them, or npm nesting the package elsewhere, would leave pointing at nothing.
const manifest = createRequire(import.meta.url).resolve('@graphql-codegen/cli/package.json');
const bin = join(dirname(manifest), JSON.parse(readFileSync(manifest, 'utf8')).bin['graphql-codegen']);
const flags = ['--experimental-require-module', '--disable-warning=ExperimentalWarning'];
const args = process.argv.slice(2);
// The CLI's `--silent` silences its errors too: a schema change breaking an operation said only "One or more
// errors occurred", not which field of which document. So `--silent` is taken here: the CLI's output is kept,
// and shown only when it fails.
const silent = args.includes('--silent');
const cliArgs = [...flags, bin, ...args.filter((arg) => arg !== '--silent')];
const run = spawnSync(process.execPath, cliArgs, silent ? { encoding: 'utf8' } : { stdio: 'inherit' });
if (run.error) throw run.error;
if (silent && run.status !== 0) process.stderr.write(run.stdout + run.stderr);
if (run.status !== 0) printSyntaxErrors();
process.exit(run.status ?? 1);

/** The generator names neither the file nor the line of a syntax error in schema/: graphql's parser does. */
function printSyntaxErrors() {
  // None in a copy made for the example's generator alone, which reads the published schema.graphql.
  if (!existsSync(join(root, 'schema'))) return;
  for (const name of readdirSync(join(root, 'schema')).filter((file) => file.endsWith('.graphql'))) {
    const path = join('schema', name);
    try {
      parse(new Source(readFileSync(join(root, path), 'utf8'), path));
    } catch (error) {
      console.error(String(error));
    }
  }
}
