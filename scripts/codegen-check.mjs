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
    if (readFileSync(join(dir, 'graphql.ts'), 'utf8') !== readFileSync(committed, 'utf8')) {
      return `${committed} is stale: run \`npm run codegen\` and commit the result.`;
    }
    return undefined;
  } finally {
    // Before any exit: process.exit() would skip it and leave the directory behind.
    rmSync(dir, { recursive: true, force: true });
  }
}

const problem = problemWithCommitted();
if (problem) {
  console.error(problem);
  process.exit(1);
}
console.log(`${committed} is up to date with schema/.`);
