import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

/**
 * The breaking-change gate as a contributor meets it: against a release that had a field the schema no
 * longer has, it fails and prints the line to add; with that line in ACCEPTED_BREAKING_CHANGES.md it passes.
 */

const root = projectRoot();

function run(releasesDir: string) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'schema-breaking.ts'), '--releases', releasesDir], {
    cwd: root,
    encoding: 'utf8',
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

test('the current schema has no unmarked breaking change against the last release', () => {
  const { status, output } = run(join(root, 'releases'));
  assert.equal(status, 0, output);
});

test('a removed field fails the check until it is listed as accepted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-releases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // An older release 0.0.9 must be ignored in favour of the highest version.
  copyFileSync(join(root, 'schema.graphql'), join(dir, '0.0.9.graphql'));
  const released = readFileSync(join(root, 'schema.graphql'), 'utf8').replace('type Account {\n', 'type Account {\n  legacyField: String\n');
  writeFileSync(join(dir, '0.1.0.graphql'), released);
  writeFileSync(join(dir, 'ACCEPTED_BREAKING_CHANGES.md'), '# Accepted breaking schema changes\n\n## Since 0.1.0\n\n(none)\n');

  const refused = run(dir);
  assert.equal(refused.status, 1, refused.output);
  assert.match(refused.output, /1 breaking change\(s\) since the 0\.1\.0 release/);
  assert.match(refused.output, /- `FIELD_REMOVED Account\.legacyField`/);

  writeFileSync(
    join(dir, 'ACCEPTED_BREAKING_CHANGES.md'),
    '# Accepted breaking schema changes\n\n## Since 0.1.0\n\n- `FIELD_REMOVED Account.legacyField` — never filled by the upstream.\n',
  );
  const accepted = run(dir);
  assert.equal(accepted.status, 0, accepted.output);
  assert.match(accepted.output, /1 accepted breaking/);
});

test('without ACCEPTED_BREAKING_CHANGES.md nothing is accepted: a break fails naming the file to add it to, no stack trace', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-releases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(root, 'schema.graphql'), join(dir, '0.1.0.graphql'));
  const unchanged = run(dir);
  assert.equal(unchanged.status, 0, unchanged.output);

  writeFileSync(join(dir, '0.1.0.graphql'), readFileSync(join(root, 'schema.graphql'), 'utf8').replace('type Account {\n', 'type Account {\n  legacyField: String\n'));
  const refused = run(dir);
  assert.equal(refused.status, 1, refused.output);
  assert.match(refused.output, /- `FIELD_REMOVED Account\.legacyField`/);
  assert.doesNotMatch(refused.output, /\n\s+at /, 'no stack trace');
});

test("the accepted-changes file's example and behaviour-change lists accept no break, only its Since list does", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-releases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const released = readFileSync(join(root, 'schema.graphql'), 'utf8').replace('type Account {\n', 'type Account {\n  legacyField: String\n');
  writeFileSync(join(dir, '0.1.0.graphql'), released);
  // The project's own file, its how-to example naming the field this release has and the schema lost.
  const projectFile = readFileSync(join(root, 'releases', 'ACCEPTED_BREAKING_CHANGES.md'), 'utf8');
  assert.match(projectFile, /^ +- `FIELD_REMOVED Account\.username`/m);
  const withExample = projectFile.replace('`FIELD_REMOVED Account.username`', '`FIELD_REMOVED Account.legacyField`');
  writeFileSync(join(dir, 'ACCEPTED_BREAKING_CHANGES.md'), withExample + '\n- `FIELD_REMOVED Account.legacyField` — under another heading.\n');

  const refused = run(dir);
  assert.equal(refused.status, 1, refused.output);
  assert.match(refused.output, /add under\n`## Since 0\.1\.0` in releases\/ACCEPTED_BREAKING_CHANGES\.md/);
  assert.match(refused.output, /- `FIELD_REMOVED Account\.legacyField`/);

  const listed = withExample.replace('## Since 0.1.0\n\n(none)\n', '## Since 0.1.0\n\n- `FIELD_REMOVED Account.legacyField` — never filled.\n');
  assert.notEqual(listed, withExample);
  writeFileSync(join(dir, 'ACCEPTED_BREAKING_CHANGES.md'), listed);
  const accepted = run(dir);
  assert.equal(accepted.status, 0, accepted.output);
  assert.match(accepted.output, /1 accepted breaking/);
});

test('removing what the release had deprecated is not advised to be deprecated instead: it says the deprecation announced it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'schema-releases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const withField = (field: string) => readFileSync(join(root, 'schema.graphql'), 'utf8').replace('type Account {\n', `type Account {\n  ${field}\n`);
  writeFileSync(join(dir, 'ACCEPTED_BREAKING_CHANGES.md'), '# Accepted breaking schema changes\n\n## Since 0.1.0\n\n(none)\n');

  writeFileSync(join(dir, '0.1.0.graphql'), withField('legacyField: String @deprecated(reason: "Use id.")'));
  const deprecated = run(dir);
  assert.equal(deprecated.status, 1, deprecated.output);
  assert.match(deprecated.output, /legacyField.*, deprecated in 0\.1\.0\n/);
  assert.match(deprecated.output, /Each was deprecated in 0\.1\.0: its removal is the break the deprecation announced/);
  assert.doesNotMatch(deprecated.output, /deprecate it instead/);
  assert.match(deprecated.output, /- `FIELD_REMOVED Account\.legacyField`/);

  // Not deprecated: the usual advice.
  writeFileSync(join(dir, '0.1.0.graphql'), withField('legacyField: String'));
  const plain = run(dir);
  assert.equal(plain.status, 1, plain.output);
  assert.match(plain.output, /Keep the old field\/type\/value \(deprecate it instead\)/);
  assert.doesNotMatch(plain.output, /deprecated in 0\.1\.0/);
});
