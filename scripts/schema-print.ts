// `npm run schema:print` publishes the merged schema for consumers: the SDL in schema.graphql and the
// introspection result in schema.json, both at the project root and committed, so a consumer's codegen can
// use them without a running gateway (or when introspection is turned off). `--check` (in `npm test`) fails
// when the committed files no longer match schema/*.graphql.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { introspectionFromSchema, printSchema } from 'graphql';
import { projectRoot } from '../src/support/project-root.ts';
import { buildSchema as servedSchema } from '../src/graphql/schema.ts';
import { currentSchema, scriptOptions } from './schema-source.ts';

const HEADER = '# The Context.IO GraphQL gateway\'s schema, merged from schema/*.graphql by `npm run schema:print`: do not edit.\n\n';

/**
 * The schema the gateway serves, once schema/*.graphql is known to hold one (said by file and line where not): in
 * its order too, which is the order the executable schema merged the files in (Query and Mutation first), so that
 * a consumer diffing a running gateway's introspection with these files sees only real changes.
 */
function publishedArtifacts(): Record<string, string> {
  currentSchema(check ? 'schema:check' : 'schema:print');
  const schema = servedSchema();
  return {
    'schema.graphql': HEADER + printSchema(schema) + '\n',
    'schema.json': JSON.stringify(introspectionFromSchema(schema), null, 2) + '\n',
  };
}

const root = projectRoot();
const USAGE = 'usage: npm run schema:print (writes schema.graphql and schema.json) | npm run schema:check (exits 1 when they are stale)';
const check = scriptOptions(process.argv.includes('--check') ? 'schema:check' : 'schema:print', USAGE, { check: { type: 'boolean', default: false } }).check;
let stale = false;
for (const [name, content] of Object.entries(publishedArtifacts())) {
  const path = join(root, name);
  if (!check) {
    writeFileSync(path, content);
    console.log(`schema:print: wrote ${name}`);
    continue;
  }
  let committed: string | undefined;
  try {
    committed = readFileSync(path, 'utf8');
  } catch {
    committed = undefined;
  }
  if (committed !== content) {
    stale = true;
    console.error(`schema:check: ${name} ${committed === undefined ? 'is missing' : 'differs from schema/*.graphql'}: run \`npm run schema:print\` and commit it.`);
  }
}
if (stale) process.exit(1);
if (check) console.log('schema:check: schema.graphql and schema.json match schema/.');
