// Regenerates the resolver types into a temporary file and fails when the committed ones differ, so a
// schema change can never land without the types that the resolvers are checked against.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const committed = 'src/generated/graphql.ts';
const dir = mkdtempSync(join(tmpdir(), 'codegen-check-'));
try {
  const config = readFileSync('codegen.yml', 'utf8').replace(`  ${committed}:`, `  ${join(dir, 'graphql.ts')}:`);
  // Paths in the config are relative to the output file, so the check's copy points back at src/.
  writeFileSync(join(dir, 'codegen.yml'), config);
  execFileSync(process.execPath, ['scripts/codegen.mjs', '--config', join(dir, 'codegen.yml'), '--silent'], { stdio: 'inherit' });
  const fresh = readFileSync(join(dir, 'graphql.ts'), 'utf8');
  if (fresh !== readFileSync(committed, 'utf8')) {
    console.error(`${committed} is stale: run \`npm run codegen\` and commit the result.`);
    process.exit(1);
  }
  console.log(`${committed} is up to date with schema/.`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
