import { Kind, type FieldNode, type GraphQLObjectType, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { ACCOUNT_FIELDS_ANSWERED_BY_ID, FULL_ONLY_ACCOUNT_FIELDS } from '../graphql/schema-shape.ts';
import { isIncluded } from '../graphql/skip-include.ts';

/**
 * The fields named in `names` directly in the selection sets of `parents`, through inline fragments and
 * fragment spreads, leaving out what @skip/@include leave out: what graphql itself will resolve there.
 * `uses.variables` is set when a directive made the answer depend on the operation's variables. `info`: a
 * resolver's, or the same two things for an operation not yet running (the mutation precheck).
 */
export function childFields(
  info: Pick<GraphQLResolveInfo, 'fragments' | 'variableValues'>,
  parents: ReadonlyArray<{ readonly selectionSet?: SelectionSetNode | undefined }>,
  names: ReadonlySet<string>,
  uses: { variables: boolean },
): FieldNode[] {
  const found: FieldNode[] = [];
  // Each fragment once, as graphql's own field collection does: spread twice by each of K nested fragments,
  // one would otherwise be walked 2^K times (a 1 KB query held the event loop for seconds).
  const visited = new Set<string>();
  const visit = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.directives?.length) {
        uses.variables = true;
        if (!isIncluded(selection, info.variableValues)) continue;
      }
      if (selection.kind === Kind.FIELD) {
        if (names.has(selection.name.value)) found.push(selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else if (!visited.has(selection.name.value)) {
        visited.add(selection.name.value);
        visit(info.fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const parent of parents) visit(parent.selectionSet);
  return found;
}

/** Each response key of `nodes` with its first node, in order: execution runs the nodes of one key as one field. */
export function byResponseKey(nodes: readonly FieldNode[]): Array<[string, FieldNode]> {
  const fields = new Map<string, FieldNode>();
  for (const node of nodes) {
    const key = responseKey(node);
    if (!fields.has(key)) fields.set(key, node);
  }
  return [...fields];
}

export const responseKey = (node: FieldNode): string => (node.alias ?? node.name).value;

/**
 * A question about the selection of the field being resolved, answered once per field-node list:
 * graphql passes the same list for every item of a list, so a page of 100 items asks once. An answer that
 * depends on variables (through @skip/@include) holds for the variable values it was read with, which are
 * the same for every item of one operation: asked again for each item, a selection of a few hundred
 * `@include(if: true)` fields under 2,500 connect tokens' accounts held the event loop ~2 s.
 */
function perSelection<T>(question: (info: GraphQLResolveInfo, uses: { variables: boolean }) => T): (info: GraphQLResolveInfo) => T {
  const answers = new WeakMap<readonly FieldNode[], { answer: T; variables: GraphQLResolveInfo['variableValues'] | undefined }>();
  return (info) => {
    const known = answers.get(info.fieldNodes);
    if (known && (known.variables === undefined || known.variables === info.variableValues)) return known.answer;
    const uses = { variables: false };
    const answer = question(info, uses);
    answers.set(info.fieldNodes, { answer, variables: uses.variables ? info.variableValues : undefined });
    return answer;
  };
}

// What an account field's selection needs: whether the account must be loaded, and which of its token
// fields will be.

/** Whether the account field being resolved selects a field only the full account has. */
export const selectsFullAccountField = perSelection((info, uses) => childFields(info, info.fieldNodes, FULL_ONLY_ACCOUNT_FIELDS, uses).length > 0);

const TOKEN_FIELDS: ReadonlySet<string> = new Set(['connectTokens', 'connectToken']);

/**
 * Whether the account field being resolved selects a field the account's own data answers: any but `id`
 * (and `__typename`) and its token fields, which make requests of their own that need only the id.
 */
export const selectsAccountData = perSelection((info, uses) => {
  const fields = Object.keys((info.schema.getType('Account') as GraphQLObjectType).getFields());
  const answeredByData = fields.filter((name) => !ACCOUNT_FIELDS_ANSWERED_BY_ID.has(name));
  return childFields(info, info.fieldNodes, new Set(answeredByData), uses).length > 0;
});

/** The account's `connectTokens` and `connectToken(token:)` fields in the selection of the field being resolved. */
export const selectedTokenFields = perSelection((info, uses) => {
  // One node per response key: graphql runs the nodes of a key as one field (validation made their names and
  // arguments the same), while the prefetch reads the arguments of each node it is given for every item of a
  // list: 95 copies of `connectToken(token: …)` on a page of 100 tokens' accounts read them 9,500 times
  // (~40 ms of CPU for a 3.9 KB body), for the 100 loads that one copy makes.
  return byResponseKey(childFields(info, info.fieldNodes, TOKEN_FIELDS, uses)).map(([, node]) => node);
});

const NODES = new Set(['nodes']);
const EDGES = new Set(['edges']);
const NODE = new Set(['node']);
const ACCOUNT = new Set(['account']);

/** Whether a page of connect tokens selects, on a token's account, a field only the full account has. */
export const selectsTokenFullAccount = perSelection((info, uses) => {
  const tokens = [
    ...childFields(info, info.fieldNodes, NODES, uses),
    ...childFields(info, childFields(info, info.fieldNodes, EDGES, uses), NODE, uses),
  ];
  return childFields(info, childFields(info, tokens, ACCOUNT, uses), FULL_ONLY_ACCOUNT_FIELDS, uses).length > 0;
});
