import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
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
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
}
