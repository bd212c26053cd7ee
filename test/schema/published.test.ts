import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import {
  buildClientSchema,
  buildSchema as buildFromSdl,
  getIntrospectionQuery,
  introspectionFromSchema,
  isEnumType,
  isInputObjectType,
  printSchema,
  validateSchema,
  type GraphQLSchema,
  type IntrospectionQuery,
} from 'graphql';
import { projectRoot } from '../../src/support/project-root.ts';
import { buildSchema, withDeprecatedOnSpecLocations } from '../../src/graphql/schema.ts';
import { useStack } from '../helpers/stack.ts';

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
 * The directive locations of the October 2021 spec, all that graphql-js 15 to 16.13 and graphql-core 3.2.10 know.
 * graphql-js 16.14 added DIRECTIVE_DEFINITION to its built-in @deprecated; a schema built from an introspection
 * naming it loads in those, but graphql-js cannot print and parse it again nor introspect it, which
 * @graphql-codegen/typescript (`Syntax Error: Unexpected Name "DIRECTIVE_DEFINITION"`), its introspection plugin
 * and `graphql-inspector introspect` (`Unexpected invariant triggered`) do, and graphql-core refuses it outright.
 */
const LOCATIONS_EVERY_CONSUMER_KNOWS = new Set([
  'QUERY', 'MUTATION', 'SUBSCRIPTION', 'FIELD', 'FRAGMENT_DEFINITION', 'FRAGMENT_SPREAD', 'INLINE_FRAGMENT', 'VARIABLE_DEFINITION',
  'SCHEMA', 'SCALAR', 'OBJECT', 'FIELD_DEFINITION', 'ARGUMENT_DEFINITION', 'INTERFACE', 'UNION', 'ENUM', 'ENUM_VALUE',
  'INPUT_OBJECT', 'INPUT_FIELD_DEFINITION',
]);
/** Each directive of `introspection` with the locations it lists that some consumers' GraphQL libraries refuse. */
const unknownLocations = (introspection: IntrospectionQuery): string[] =>
  introspection.__schema.directives.flatMap((directive) => {
    const unknown = directive.locations.filter((location) => !LOCATIONS_EVERY_CONSUMER_KNOWS.has(location));
    return unknown.length > 0 ? [`@${directive.name} on ${unknown.join(' | ')}`] : [];
  });

describe('the introspection consumers load', () => {
  const stack = useStack();

  it('lists only directive locations graphql-js 15 to 16.13 and graphql-core 3.2 know, live and in schema.json', async () => {
    const live = await stack.gql<IntrospectionQuery>(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true, oneOf: true }));
    assert.equal(live.body.errors, undefined);
    assert.ok(live.body.data, 'the gateway answers the introspection');
    assert.deepEqual(unknownLocations(live.body.data), [], 'the running gateway');
    const published = JSON.parse(readFileSync(join(projectRoot(), 'schema.json'), 'utf8')) as IntrospectionQuery;
    assert.deepEqual(unknownLocations(published), [], 'schema.json');
  });

  it('still marks a field, an argument, an input field and an enum value deprecated, with its reason', () => {
    const deprecated = introspectionFromSchema(buildSchema()).__schema.directives.find((directive) => directive.name === 'deprecated');
    assert.deepEqual(deprecated?.locations, ['FIELD_DEFINITION', 'ARGUMENT_DEFINITION', 'INPUT_FIELD_DEFINITION', 'ENUM_VALUE']);
    assert.deepEqual(deprecated.args.map((arg) => [arg.name, arg.defaultValue]), [['reason', '"No longer supported"']]);
    // schema/ deprecates nothing yet: a schema that does, given the same directive, reads each deprecation as before.
    const schema = withDeprecatedOnSpecLocations(buildFromSdl(`
      type Query { a: Int @deprecated(reason: "use b") b(old: Int @deprecated, new: In): E }
      input In { old: Int @deprecated }
      enum E { X @deprecated(reason: "gone") Y }`));
    assert.deepEqual(validateSchema(schema), []);
    const query = schema.getQueryType()?.getFields();
    const input = schema.getType('In');
    const enumType = schema.getType('E');
    assert.ok(isInputObjectType(input) && isEnumType(enumType), 'In and E are built');
    assert.deepEqual(
      [query?.['a']?.deprecationReason, query?.['b']?.args[0]?.deprecationReason, input.getFields()['old']?.deprecationReason, enumType.getValue('X')?.deprecationReason, enumType.getValue('Y')?.deprecationReason],
      ['use b', 'No longer supported', 'No longer supported', 'gone', undefined],
    );
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

  it('lists no DIRECTIVE_DEFINITION among @deprecated’s locations, in schema.json and the gateway’s introspection, which graphql-js before 16.14 and graphql-core before 3.2.11 refuse', () => {
    assert.ok(!deprecatedLocations(JSON.parse(file('schema.json')) as IntrospectionQuery)?.includes('DIRECTIVE_DEFINITION'), 'schema.json: no @deprecated on DIRECTIVE_DEFINITION');
    assert.ok(!deprecatedLocations(introspectionFromSchema(buildSchema()))?.includes('DIRECTIVE_DEFINITION'), 'the introspection: no @deprecated on DIRECTIVE_DEFINITION');
    assert.match(otherLanguages, /leaves `DIRECTIVE_DEFINITION` out of the built-in\s+`@deprecated` directive's locations/);
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
