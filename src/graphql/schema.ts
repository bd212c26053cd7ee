import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GraphQLError, isScalarType, parse, Source, type DocumentNode, type GraphQLSchema } from 'graphql';
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

function parseSdl(sdl: string, file: string): DocumentNode {
  try {
    return parse(new Source(sdl, file));
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    const at = error.locations?.[0];
    throw new SchemaSyntaxError(`${file}${at ? `:${at.line}:${at.column}` : ''}: ${error.message}`, { cause: error });
  }
}

/** The executable schema from `schema/`'s SDL and the resolvers: each gateway builds it once, when it starts. */
export function buildSchema(): GraphQLSchema {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
  // graphql-tools copies a scalar resolver's own fields over the SDL's type, its `description` even when unset:
  // the SDL's text is the one published (schema.graphql), and the one introspection must show.
  for (const type of Object.values(schema.getTypeMap())) {
    if (isScalarType(type) && type.description == null && type.astNode?.description) type.description = type.astNode.description.value;
  }
  locatingFieldErrors(schema);
  return schema;
}
