import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { getDirectiveValues, GraphQLError, GraphQLSpecifiedByDirective, isScalarType, parse, Source, type DocumentNode, type GraphQLSchema } from 'graphql';
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
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
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
