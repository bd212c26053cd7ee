import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphQLError, Kind, type FieldNode, type GraphQLResolveInfo } from 'graphql';
import { ListLengthBudget } from '../../src/limits/lists.ts';
import { measuredDocument } from '../helpers/documents.ts';

/** The `sources` nodes of the fragments F and G, and the operation's measure. */
function measured(query: string) {
  const { document, measure } = measuredDocument(query);
  const sourcesOf = (fragment: string): FieldNode => {
    const definition = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === fragment);
    assert.ok(definition?.kind === Kind.FRAGMENT_DEFINITION, `fragment ${fragment} in the document`);
    return definition.selectionSet.selections[0] as FieldNode;
  };
  return { measure, sourcesOf };
}

/** What a resolver hands ListLengthBudget for a list field run from `fieldNodes`. */
function infoOf(fieldNodes: FieldNode[]): GraphQLResolveInfo {
  return { fieldNodes, fieldName: 'sources', parentType: { name: 'Account' } } as unknown as GraphQLResolveInfo;
}

describe('ListLengthBudget', () => {
  it('charges a list merged from several nodes the most any of them carries, whichever node comes last', () => {
    // F's sources run under `a` merged with H's (3 fields an item) and under `b` with G's (2): F's node carries 3, G's 2.
    const { measure, sourcesOf } = measured(`{ a: account(id: "1") { ...F ...H } b: account(id: "2") { ...F ...G } }
      fragment F on Account { sources { label } } fragment G on Account { sources { status } } fragment H on Account { sources { label status email } }`);
    const [f, g] = [sourcesOf('F'), sourcesOf('G')];
    assert.deepEqual([measure.assumedListItemCosts.get(f), measure.assumedListItemCosts.get(g)], [3, 2]);
    // 11 further items: 33 at 3 an item, past a maximum of 30; at 2 an item (22) they would fit.
    const items = Array.from({ length: 21 }, (_, i) => i);
    for (const fieldNodes of [[f, g], [g, f]]) {
      const lists = new ListLengthBudget();
      lists.plan(measure, 30, () => {});
      assert.throws(
        () => lists.charge(infoOf(fieldNodes), items),
        (error) => error instanceof GraphQLError && error.extensions['limit'] === 'LIST_LENGTHS' && error.extensions['value'] === 33,
      );
    }
  });
});
