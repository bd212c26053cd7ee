import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import {
  getDirectiveValues,
  GraphQLDeprecatedDirective,
  GraphQLDirective,
  GraphQLError,
  GraphQLSchema,
  GraphQLSpecifiedByDirective,
  isScalarType,
  parse,
  Source,
  type DocumentNode,
} from 'graphql';
import { locatingFieldErrors } from './error-locations.ts';
import { projectRoot } from '../support/project-root.ts';
import { resolvers } from '../resolvers/index.ts';

/** A syntax error in one of `schema/`'s files, its message beginning with the file, line and column. */
export class SchemaSyntaxError extends Error {}

/**
 * The SDL files of `schema/`, in a stable order, each parsed: the source of truth for the schema. A syntax
 * error names its file and line (graphql's own names neither: one of six files, line 42).
 */
export function loadTypeDefs(): DocumentNode[] {
  const folder = join(projectRoot(), 'schema');
  return readdirSync(folder)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => parseSdl(readFileSync(join(folder, name), 'utf8'), `schema/${name}`));
}

/** `sdl`, the text of `file`, parsed: a syntax error is a SchemaSyntaxError naming the file and line. */
export function parseSdl(sdl: string, file: string): DocumentNode {
  try {
    return parse(new Source(sdl, file));
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    throw new SchemaSyntaxError(inSdlFile(error), { cause: error });
  }
}

/**
 * A GraphQL error about SDL as `file:line:column: message`, the file being the name its text was parsed under
 * (graphql's own message names neither).
 */
export function inSdlFile(error: GraphQLError): string {
  const at = error.locations?.[0];
  const file = error.source?.name ?? error.nodes?.[0]?.loc?.source.name;
  return `${file ?? 'the schema'}${at ? `:${at.line}:${at.column}` : ''}: ${error.message}`;
}

/** The executable schema from `schema/`'s SDL and the resolvers: each gateway builds it once, when it starts. */
export function buildSchema(): GraphQLSchema {
  const schema = withDeprecatedOnSpecLocations(makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers }));
  // graphql-tools copies a scalar resolver's own fields over the SDL's type, its `description` and `specifiedByURL`
  // even when unset: the SDL's are the ones published (schema.graphql), and the ones introspection must show.
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isScalarType(type) || !type.astNode) continue;
    if (type.description == null && type.astNode.description) type.description = type.astNode.description.value;
    type.specifiedByURL ??= getDirectiveValues(GraphQLSpecifiedByDirective, type.astNode)?.['url'] as string | undefined;
  }
  locatingFieldErrors(schema);
  return schema;
}

/**
 * `schema` with the built-in @deprecated on the spec's locations only. graphql-js 16.14 added DIRECTIVE_DEFINITION
 * to them, and introspection (and so schema.json) says so: graphql-js before 16.14, which many frontends' lockfiles
 * still hold, loads such an introspection but can neither print and parse it again (@graphql-codegen/typescript:
 * `Syntax Error: Unexpected Name "DIRECTIVE_DEFINITION"`) nor introspect it (its introspection plugin, `graphql-inspector
 * introspect`: `Unexpected invariant triggered`), and Python's graphql-core before 3.2.11 refuses it. The schema
 * declares no directive of its own that could be deprecated, so the location offers nothing; deprecating a field
 * is unchanged (graphql-js reads a deprecation with its own directive, whatever the schema lists).
 */
export function withDeprecatedOnSpecLocations(schema: GraphQLSchema): GraphQLSchema {
  const directives = schema.getDirectives().map((directive) =>
    directive.name === GraphQLDeprecatedDirective.name
      ? new GraphQLDirective({ ...directive.toConfig(), locations: directive.locations.filter((location) => String(location) !== 'DIRECTIVE_DEFINITION') })
      : directive,
  );
  return new GraphQLSchema({ ...schema.toConfig(), directives });
}
