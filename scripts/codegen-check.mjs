// Regenerates the resolver types into a temporary file and fails when the committed ones differ, so a
// schema change can never land without the types that the resolvers are checked against.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const committed = 'src/generated/graphql.ts';

/** Why the committed file fails the check, or undefined when it is what the generator writes now. */
function problemWithCommitted() {
  const dir = mkdtempSync(join(tmpdir(), 'codegen-check-'));
  try {
    const config = readFileSync('codegen.yml', 'utf8').replace(`  ${committed}:`, `  ${join(dir, 'graphql.ts')}:`);
    // The config's import paths (contextType, mappers) are written into the output as they are, not resolved:
    // the copy generated here has the same text as the committed file, though its imports lead nowhere.
    writeFileSync(join(dir, 'codegen.yml'), config);
    // scripts/codegen.mjs's `--silent` shows the generator's output, the error among it, when it fails, and a
    // syntax error's file and line.
    const run = spawnSync(process.execPath, ['scripts/codegen.mjs', '--config', join(dir, 'codegen.yml'), '--silent'], { stdio: 'inherit' });
    if (run.error) throw run.error;
    if (run.status !== 0) {
      return `codegen:check: GraphQL Code Generator failed on schema/*.graphql (its output above): fix the schema, then run \`npm run codegen\`.`;
    }
    if (!existsSync(committed)) return `${committed} is missing: run \`npm run codegen\` and commit the result.`;
    const difference = firstDifference(readFileSync(committed, 'utf8'), readFileSync(join(dir, 'graphql.ts'), 'utf8'));
    if (difference !== undefined) {
      return `${committed} is stale: run \`npm run codegen\` and commit the result (it is generated from schema/*.graphql: an edit by hand is lost). ${difference}`;
    }
    return undefined;
  } finally {
    // Before any exit: process.exit() would skip it and leave the directory behind.
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where `committed` first differs from `generated`, as a line of each (cut at 120 characters), or undefined when
 * they are the same: "stale" alone gave whoever edited the file by hand, or a schema change they forgot, no clue.
 */
function firstDifference(committed, generated) {
  if (committed === generated) return undefined;
  const [was, now] = [committed.split('\n'), generated.split('\n')];
  let line = 0;
  while (was[line] === now[line]) line += 1;
  // The empty text after a file's last line break is its end, not a line.
  const quoted = (lines) => (line >= lines.length - 1 && !lines[line] ? '(the end of the file)' : JSON.stringify(lines[line].length > 120 ? `${lines[line].slice(0, 120)}…` : lines[line]));
  return `First difference at line ${line + 1}: committed ${quoted(was)}, generated ${quoted(now)}.`;
}

const problem = problemWithCommitted();
if (problem) {
  console.error(problem);
  process.exit(1);
}
console.log(`${committed} is up to date with schema/.`);
