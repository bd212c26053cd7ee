import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { isScalarType, type GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers/index.ts';

/** The project's root folder, found from this file whether it runs from `src/` or from the build in `dist/`. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'schema', 'base.graphql'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the schema/ folder above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

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
