import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, parse, type FieldNode, type GraphQLResolveInfo, type OperationDefinitionNode } from 'graphql';
import { selectsFullAccountField } from '../../src/resolvers/selection.ts';
import { buildSchema } from '../../src/schema.ts';

const schema = buildSchema();

/** The `account` field of `{ connectTokens { nodes { account … } } }`, as graphql hands it to every token's account. */
function tokenAccountNodes(query: string): readonly FieldNode[] {
  const operation = parse(query).definitions[0] as OperationDefinitionNode;
  let set = operation.selectionSet;
  for (const name of ['connectTokens', 'nodes']) set = (set.selections.find((s) => s.kind === Kind.FIELD && s.name.value === name) as FieldNode).selectionSet!;
  return [set.selections[0] as FieldNode];
}

/** A resolver's info for those nodes, with variables whose reads are counted. */
function infoFor(fieldNodes: readonly FieldNode[], variables: Record<string, unknown>, reads: { count: number }): GraphQLResolveInfo {
  const variableValues = new Proxy(variables, {
    get(target, name) {
      reads.count++;
      return Reflect.get(target, name);
    },
  });
  return { fieldNodes, variableValues, fragments: {}, schema } as unknown as GraphQLResolveInfo;
}

describe('what a selection needs', () => {
  it('is read once for every item of a list, @include and @skip included: the variables are the same for every item', () => {
    const fields = Array.from({ length: 300 }, () => 'firstName @include(if: $yes)').join(' ');
    const nodes = tokenAccountNodes(`query ($yes: Boolean!) { connectTokens { nodes { account { ${fields} username @skip(if: $yes) } } } }`);
    const reads = { count: 0 };
    const info = infoFor(nodes, { yes: true }, reads);
    assert.equal(selectsFullAccountField(info), false);
    const oneWalk = reads.count;
    assert.ok(oneWalk >= 300, `${oneWalk} reads`);
    // graphql passes the same nodes and variables for each of a list's items: 2,500 items of such a
    // selection, walked for each, held the event loop for seconds.
    for (let item = 1; item < 2_500; item++) selectsFullAccountField(info);
    assert.equal(reads.count, oneWalk);
  });

  it('is read again for other variable values', () => {
    const nodes = tokenAccountNodes('query ($yes: Boolean!) { connectTokens { nodes { account { firstName username @include(if: $yes) } } } }');
    const reads = { count: 0 };
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: true }, reads)), true);
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: false }, reads)), false);
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: true }, reads)), true);
  });
});
