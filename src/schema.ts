import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { isScalarType, type GraphQLSchema } from 'graphql';
import { projectRoot } from './project-root.ts';
import { resolvers } from './resolvers/index.ts';

/** The SDL files of `schema/`, in a stable order: the source of truth for the schema. */
export function loadTypeDefs(): string[] {
  const folder = join(projectRoot(), 'schema');
  return readdirSync(folder)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(folder, name), 'utf8'));
}

/** The executable schema from `schema/`'s SDL and the resolvers: each gateway builds it once, when it starts. */
export function buildSchema(): GraphQLSchema {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
  // graphql-tools copies a scalar resolver's own fields over the SDL's type, its `description` even when unset:
  // the SDL's text is the one published (schema.graphql), and the one introspection must show.
  for (const type of Object.values(schema.getTypeMap())) {
    if (isScalarType(type) && type.description == null && type.astNode?.description) type.description = type.astNode.description.value;
  }
  return schema;
}
