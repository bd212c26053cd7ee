import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, parse, type FieldNode, type GraphQLResolveInfo, type OperationDefinitionNode } from 'graphql';
import type { GatewayContext } from '../../src/graphql/context.ts';
import { prefetchTokensOf } from '../../src/resolvers/prefetch.ts';
import { selectsFullAccountField } from '../../src/resolvers/selection.ts';
import { buildSchema } from '../../src/graphql/schema.ts';

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

  it('walks each named fragment once, however many times it is spread: a chain of fragments each spreading the next twice stays linear', () => {
    const levels = 16;
    const chain = Array.from({ length: levels }, (_, i) => `fragment F${i} on Account { ...F${i + 1} ...F${i + 1} }`).join(' ');
    const document = parse(`query ($yes: Boolean!) { connectTokens { nodes { account { ...F0 } } } } ${chain} fragment F${levels} on Account { username @include(if: $yes) }`);
    const operation = document.definitions[0] as OperationDefinitionNode;
    let set = operation.selectionSet;
    for (const name of ['connectTokens', 'nodes']) set = (set.selections.find((s) => s.kind === Kind.FIELD && s.name.value === name) as FieldNode).selectionSet!;
    const fragments = Object.fromEntries(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d]] : [])));
    const reads = { count: 0 };
    const info = { ...infoFor([set.selections[0] as FieldNode], { yes: true }, reads), fragments } as GraphQLResolveInfo;
    assert.equal(selectsFullAccountField(info), true);
    // Its one directive read once (a few reads of the variable), not once for each of the 2^16 paths to it.
    assert.ok(reads.count < 10, `${reads.count} reads`);
  });

  it('is read again for other variable values', () => {
    const nodes = tokenAccountNodes('query ($yes: Boolean!) { connectTokens { nodes { account { firstName username @include(if: $yes) } } } }');
    const reads = { count: 0 };
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: true }, reads)), true);
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: false }, reads)), false);
    assert.equal(selectsFullAccountField(infoFor(nodes, { yes: true }, reads)), true);
  });
});

describe('the token fields an account prefetches', () => {
  it('are each prefetched once however often the selection repeats them: graphql runs them as one field', () => {
    // 95 copies of `connectToken(token: …)` under a page of 100 tokens' accounts read the argument and started
    // a (cached) load 9,500 times, for 100 loads.
    const copies = Array.from({ length: 95 }, () => 'connectToken(token: "t1") { token }').join(' ');
    const nodes = tokenAccountNodes(`{ connectTokens { nodes { account { id ${copies} other: connectToken(token: "t2") { token } connectTokens { token } connectTokens { used } } } } }`);
    const info = infoFor(nodes, {}, { count: 0 });
    const prefetched: string[] = [];
    const api = {
      prefetchConnectToken: (accountId: string, token: string) => prefetched.push(`${accountId} token ${token}`),
      prefetchConnectTokens: (accountId: string) => prefetched.push(`${accountId} tokens`),
    };
    for (const accountId of ['a1', 'a2']) prefetchTokensOf(accountId, { api } as unknown as GatewayContext, info);
    assert.deepEqual(prefetched, ['a1 token t1', 'a1 token t2', 'a1 tokens', 'a2 token t1', 'a2 token t2', 'a2 tokens']);
  });
});
