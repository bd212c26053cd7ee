import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

/**
 * `npm run codegen:check` (the second step of `npm test`, after schema:check, which names a broken schema/ file and line) and the schema scripts as a contributor meets them after
 * editing schema/, run on a copy of the files they read so that the project's own schema stays as it is.
 */

const root = projectRoot();

const CODEGEN_CHECK_READS = ['scripts/codegen-check.mjs', 'scripts/codegen.mjs', 'codegen.yml', 'schema', 'src/generated/graphql.ts'];

/** A copy of `paths` (what the check reads), with `edit` applied to schema/account.graphql, and an empty temporary folder. */
function projectWithAccountSchema(t: TestContext, edit: (sdl: string) => string, paths = CODEGEN_CHECK_READS) {
  const dir = mkdtempSync(join(tmpdir(), 'codegen-check-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const path of paths) {
    cpSync(join(root, path), join(dir, path), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const account = join(dir, 'schema', 'account.graphql');
  const sdl = readFileSync(account, 'utf8');
  assert.notEqual(edit(sdl), sdl, 'the edit changes the schema');
  writeFileSync(account, edit(sdl));
  const temporary = join(dir, 'tmp');
  mkdirSync(temporary);
  return { dir, temporary };
}

function runCheck(dir: string, temporary: string) {
  const result = spawnSync(process.execPath, ['scripts/codegen-check.mjs'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: temporary },
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

test('a syntax error in schema/ fails the check with the parser error, its file and line, not only "Command failed"', (t) => {
  const { dir, temporary } = projectWithAccountSchema(t, (sdl) => sdl.replace('  firstName: String\n', '  firstName String\n'));
  const { status, output } = runCheck(dir, temporary);
  assert.equal(status, 1, output);
  assert.match(output, /Syntax Error: Expected ":", found Name "String"/);
  assert.match(output, /schema\/account\.graphql:\d+:13/);
  assert.match(output, /codegen:check: GraphQL Code Generator failed on schema\/\*\.graphql/);
  assert.deepEqual(readdirSync(temporary), []);
});

test('npm run codegen on a syntax error in schema/ names its file and line: the generator names neither', (t) => {
  const { dir } = projectWithAccountSchema(t, (sdl) => sdl.replace('  firstName: String\n', '  firstName String\n'));
  const result = spawnSync(process.execPath, ['scripts/codegen.mjs', '--config', 'codegen.yml'], { cwd: dir, encoding: 'utf8' });
  const output = result.stdout + result.stderr;
  assert.equal(result.status, 1, output);
  assert.match(output, /Syntax Error: Expected ":", found Name "String"/);
  assert.match(output, /schema\/account\.graphql:\d+:13/);
});

test('a schema change not regenerated fails the check, names the command, and leaves no temporary folder', (t) => {
  const { dir, temporary } = projectWithAccountSchema(t, (sdl) => sdl.replace("The account's id, 24 hex characters.", "The account's id (24 hex characters)."));
  const { status, output } = runCheck(dir, temporary);
  assert.equal(status, 1, output);
  assert.match(output, /src\/generated\/graphql\.ts is stale: run `npm run codegen` and commit the result \(it is generated from schema\/\*\.graphql: an edit by hand is lost\)\./);
  // Where it differs, so that a contributor sees what changed.
  assert.match(output, /First difference at line \d+: committed ".*The account's id, 24 hex characters\..*", generated ".*The account's id \(24 hex characters\)\..*"\.\n$/);
  assert.deepEqual(readdirSync(temporary), []);
});

test('a generated file edited by hand fails the check, naming the first line that differs', (t) => {
  const { dir, temporary } = projectWithAccountSchema(t, (sdl) => `${sdl}\n`);
  const generated = join(dir, 'src/generated/graphql.ts');
  writeFileSync(generated, `${readFileSync(generated, 'utf8')}export type HandMade = string;\n`);
  const { status, output } = runCheck(dir, temporary);
  assert.equal(status, 1, output);
  assert.match(output, /First difference at line \d+: committed "export type HandMade = string;", generated \(the end of the file\)\.\n$/);
  assert.deepEqual(readdirSync(temporary), []);
});

test('a generated file that is missing fails the check, names the command, and leaves no temporary folder, without a stack trace', (t) => {
  // Deleted to regenerate it, or in a merge that left it out: schema:check says as much of schema.graphql.
  const withoutGenerated = CODEGEN_CHECK_READS.filter((path) => path !== 'src/generated/graphql.ts');
  const { dir, temporary } = projectWithAccountSchema(t, (sdl) => `${sdl}\n`, withoutGenerated);
  const { status, output } = runCheck(dir, temporary);
  assert.equal(status, 1, output);
  assert.equal(output, 'src/generated/graphql.ts is missing: run `npm run codegen` and commit the result.\n');
  assert.deepEqual(readdirSync(temporary), []);
});

test('a syntax error in schema/ fails schema:check and schema:breaking with its file, line and column, without a stack trace', (t) => {
  const reads = ['scripts', 'src', 'schema', 'releases', 'schema.graphql', 'schema.json', 'package.json', 'tsconfig.json'];
  const { dir } = projectWithAccountSchema(t, (sdl) => sdl.replace('  firstName: String\n', '  firstName String\n'), reads);
  for (const [tool, args] of [['schema:check', ['scripts/schema-print.ts', '--check']], ['schema:breaking', ['scripts/schema-breaking.ts']]] as const) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: dir, encoding: 'utf8' });
    const output = result.stdout + result.stderr;
    assert.equal(result.status, 1, output);
    assert.match(output, new RegExp(`^${tool}: schema/account\\.graphql:\\d+:13: Syntax Error: Expected ":", found Name "String"\\.\\n$`), output);
  }
});

test('a schema/ that parses but is no valid schema fails schema:check and schema:breaking with its file, line and column, without a stack trace', (t) => {
  const reads = ['scripts', 'src', 'schema', 'releases', 'schema.graphql', 'schema.json', 'package.json', 'tsconfig.json'];
  const invalid = [
    // A misspelt type: graphql-js says it without its file or line, thrown with a stack trace.
    [(sdl: string) => sdl.replace('  firstName: String\n', '  firstName: Strin\n'), /schema\/account\.graphql:\d+:14: Unknown type "Strin"\. Did you mean "String"\?/],
    // An input type as a field's type: a fault only the built schema's validation finds.
    [(sdl: string) => sdl.replace('  firstName: String\n', '  firstName: AccountFilter\n'), /schema\/account\.graphql:\d+:14: The type of Account\.firstName must be Output Type but got: AccountFilter\./],
  ] as const;
  for (const [edit, fault] of invalid) {
    const { dir } = projectWithAccountSchema(t, edit, reads);
    for (const [tool, args] of [['schema:check', ['scripts/schema-print.ts', '--check']], ['schema:breaking', ['scripts/schema-breaking.ts']]] as const) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: dir, encoding: 'utf8' });
      const output = result.stdout + result.stderr;
      assert.equal(result.status, 1, output);
      assert.match(output, new RegExp(`^${tool}: ${fault.source}\\n$`), output);
    }
  }
});

test('a release file that does not parse or is no valid schema fails schema:breaking naming it, without a stack trace', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-releases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ACCEPTED_BREAKING_CHANGES.md'), '# Accepted breaking schema changes\n\n## Since 0.2.0\n\n(none)\n');
  const published = readFileSync(join(root, 'schema.graphql'), 'utf8');
  const releases = [
    // The release how-to has its first line replaced by hand: here with one that is no comment.
    [published.replace(/^#/, 'Release 0.2.0:'), /:1:1: Syntax Error: Unexpected Name "Release"\./],
    [published.replace('type Account {\n', 'type Account {\n  legacyField: Strin\n'), /:\d+:16: Unknown type "Strin"\. Did you mean "String"\?/],
  ] as const;
  for (const [release, fault] of releases) {
    writeFileSync(join(dir, '0.2.0.graphql'), release);
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'schema-breaking.ts'), '--releases', dir], { cwd: root, encoding: 'utf8' });
    const output = result.stdout + result.stderr;
    assert.equal(result.status, 1, output);
    // Outside the project's folder, the file is named by its whole path.
    const file = join(dir, '0.2.0.graphql').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(output, new RegExp(`^schema:breaking: ${file}${fault.source}\\n$`), output);
  }
});

test('the schema scripts refuse an option they do not know or a folder they cannot read, naming it, and write nothing', (t) => {
  const reads = ['scripts', 'src', 'schema', 'releases', 'schema.graphql', 'schema.json', 'package.json', 'tsconfig.json'];
  const { dir } = projectWithAccountSchema(t, (sdl) => sdl.replace("The account's id, 24 hex characters.", "The account's id (24 hex characters)."), reads);
  const published = readFileSync(join(dir, 'schema.graphql'), 'utf8');
  const refusals = [
    // A usage error exits 2, told apart from the scripts' findings (exit 1: a stale schema, a breaking change).
    [['scripts/schema-print.ts', '--chek'], /^schema:print: Unknown option '--chek'.*\nusage: npm run schema:print/, 2],
    [['scripts/schema-print.ts', '--check', 'now'], /^schema:check: Unexpected argument 'now'.*\nusage: /, 2],
    [['scripts/schema-breaking.ts', '--chek'], /^schema:breaking: Unknown option '--chek'.*\nusage: npm run schema:breaking/, 2],
    [['scripts/schema-breaking.ts', '--releases', join(dir, 'missing')], /^schema:breaking: cannot read the releases folder .*missing: ENOENT/, 1],
  ] as const;
  for (const [args, message, status] of refusals) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: dir, encoding: 'utf8' });
    const output = result.stdout + result.stderr;
    assert.equal(result.status, status, output);
    assert.match(output, message);
    assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
  }
  assert.equal(readFileSync(join(dir, 'schema.graphql'), 'utf8'), published, 'schema.graphql is left as it was');
});
