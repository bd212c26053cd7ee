import { Kind, type DocumentNode, type FragmentDefinitionNode } from 'graphql';

/** A document's fragments by name, in the shape graphql-js's execution reads them (`info.fragments`). */
export type FragmentsByName = Readonly<Record<string, FragmentDefinitionNode>>;

/**
 * The fragments of `document` by name: of two of one name (which validation refuses, but the checks that run
 * before or beside it see), the last, as graphql-js's execution finds them. No prototype, so that a fragment
 * named `constructor` or `__proto__` is only itself.
 */
export function fragmentsByName(document: DocumentNode): FragmentsByName {
  const fragments: Record<string, FragmentDefinitionNode> = Object.create(null);
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  }
  return fragments;
}
