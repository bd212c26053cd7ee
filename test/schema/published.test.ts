import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { buildClientSchema, buildSchema as buildFromSdl, printSchema, type GraphQLSchema, type IntrospectionQuery } from 'graphql';
import { projectRoot } from '../../src/support/project-root.ts';
import { buildSchema } from '../../src/graphql/schema.ts';

/**
 * What the running gateway introspects as must be what it publishes (schema.graphql, schema.json): a
 * consumer's codegen may point at either. `schema:check` compares the published files with schema/*.graphql;
 * this compares them with the executable schema, whose resolvers (a scalar's own description) could differ.
 */
describe('the published schema', () => {
  /**
   * In the order the gateway serves: a consumer diffing its introspection with the files saw changes where there
   * were none (the files listed Query and Mutation where schema/base.graphql stands among the SDL files).
   */
  const printed = (schema: GraphQLSchema) => printSchema(schema);
  const served = printed(buildSchema());
  const published = (name: string) => readFileSync(join(projectRoot(), name), 'utf8');

  it('is the schema the gateway serves, descriptions included (schema.graphql)', () => {
    assert.equal(printed(buildFromSdl(published('schema.graphql'))), served);
  });

  it('is the schema the gateway serves (schema.json)', () => {
    assert.equal(printed(buildClientSchema(JSON.parse(published('schema.json')) as IntrospectionQuery)), served);
  });
});

/**
 * The drift checks compare these files byte for byte with their generators' LF output: a checkout with CRLF
 * lines (Git for Windows' core.autocrlf) failed `npm test` on a clean clone, asking for a regeneration that
 * left nothing to commit. .gitattributes keeps them LF in every checkout.
 */
test('the generated and published files are checked out with LF lines, whatever core.autocrlf says', (t) => {
  const files = ['src/generated/graphql.ts', 'schema.graphql', 'schema.json'];
  const attributes = spawnSync('git', ['check-attr', 'eol', '--', ...files], { cwd: projectRoot(), encoding: 'utf8' });
  if (attributes.status !== 0) {
    t.skip(`not a git checkout (git check-attr: ${attributes.error?.message ?? attributes.stderr.trim()})`);
    return;
  }
  assert.deepEqual(attributes.stdout.trim().split('\n'), files.map((file) => `${file}: eol: lf`));
});
