import { getDirectiveValues, GraphQLIncludeDirective, GraphQLSkipDirective, Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * The fields named in `names` directly in the selection sets of `parents`, through inline fragments and
 * fragment spreads, leaving out what @skip/@include leave out: what graphql itself will resolve there.
 * `uses.variables` is set when a directive made the answer depend on the operation's variables.
 */
export function childFields(
  info: GraphQLResolveInfo,
  parents: readonly FieldNode[],
  names: ReadonlySet<string>,
  uses: { variables: boolean },
): FieldNode[] {
  const found: FieldNode[] = [];
  const visit = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.directives?.length) {
        uses.variables = true;
        if (getDirectiveValues(GraphQLSkipDirective, selection, info.variableValues)?.['if'] === true) continue;
        if (getDirectiveValues(GraphQLIncludeDirective, selection, info.variableValues)?.['if'] === false) continue;
      }
      if (selection.kind === Kind.FIELD) {
        if (names.has(selection.name.value)) found.push(selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else {
        visit(info.fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const parent of parents) visit(parent.selectionSet);
  return found;
}

/**
 * A question about the selection of the field being resolved, answered once per field-node list:
 * graphql passes the same list for every item of a list, so a page of 100 items asks once. Answers that
 * depend on variables (through @skip/@include) are not cached.
 */
export function perSelection<T>(question: (info: GraphQLResolveInfo, uses: { variables: boolean }) => T): (info: GraphQLResolveInfo) => T {
  const answers = new WeakMap<readonly FieldNode[], T>();
  return (info) => {
    if (answers.has(info.fieldNodes)) return answers.get(info.fieldNodes)!;
    const uses = { variables: false };
    const answer = question(info, uses);
    if (!uses.variables) answers.set(info.fieldNodes, answer);
    return answer;
  };
}
