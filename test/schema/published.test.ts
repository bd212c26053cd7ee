import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { buildClientSchema, buildSchema as buildFromSdl, introspectionFromSchema, printSchema, type GraphQLSchema, type IntrospectionQuery } from 'graphql';
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

/**
 * docs/frontend.md tells consumers in other languages what their tools meet in the published files (its "Other
 * languages"); these are the facts its advice rests on, so that a graphql-js upgrade or a change to the printed
 * files that makes one untrue fails here rather than leaving the advice wrong.
 */
describe('what docs/frontend.md tells other languages of the published schema', () => {
  const file = (name: string) => readFileSync(join(projectRoot(), name), 'utf8');
  const otherLanguages = file('docs/frontend.md').split('## Other languages')[1]?.split('\n## ')[0] ?? '';
  // As strings: graphql-js's own type of a location does not name DIRECTIVE_DEFINITION, which it lists all the same.
  const deprecatedLocations = (introspection: IntrospectionQuery): readonly string[] | undefined =>
    introspection.__schema.directives.find((directive) => directive.name === 'deprecated')?.locations;

  it('has the section', () => assert.ok(otherLanguages.length > 0, 'docs/frontend.md has a section "Other languages"'));

  it('lists DIRECTIVE_DEFINITION among @deprecated’s locations, in schema.json and the gateway’s introspection, which graphql-core before 3.2.11 refuses', () => {
    assert.ok(deprecatedLocations(JSON.parse(file('schema.json')) as IntrospectionQuery)?.includes('DIRECTIVE_DEFINITION'), 'schema.json: @deprecated on DIRECTIVE_DEFINITION');
    assert.ok(deprecatedLocations(introspectionFromSchema(buildSchema()))?.includes('DIRECTIVE_DEFINITION'), 'the introspection: @deprecated on DIRECTIVE_DEFINITION');
    assert.match(otherLanguages, /`DIRECTIVE_DEFINITION` among the built-in\s+`@deprecated` directive's locations/);
  });

  it('publishes schema.json as an introspection result’s data alone, without the "data" key Ruby’s graphql-client reads', () => {
    assert.deepEqual(Object.keys(JSON.parse(file('schema.json')) as object), ['__schema']);
    assert.match(otherLanguages, /load_schema\(\{ "data" => JSON\.parse\(File\.read\("schema\.json"\)\) \}\)/);
  });

  it('applies @specifiedBy to DateTime in schema.graphql without declaring it, which graphql-ruby 1.13 then refuses', () => {
    const sdl = file('schema.graphql');
    assert.match(sdl, /^scalar DateTime @specifiedBy\(url: /m);
    assert.doesNotMatch(sdl, /^directive @specifiedBy/m);
    assert.match(otherLanguages, /`directive @specifiedBy\(url: String!\) on SCALAR` is put before it/);
  });
});
