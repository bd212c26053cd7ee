import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, parse, type OperationDefinitionNode } from 'graphql';
import { measureOperation } from '../../src/limits/measure.ts';
import { buildSchema } from '../../src/schema.ts';

const schema = buildSchema();

function measure(query: string) {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  return measureOperation(schema, document, operation, undefined);
}

/** What ListLengthBudget charges for one further item of each list: the most any node execution merges into it carries. */
function itemCostsByField(query: string): number[] {
  const costs = new Map<string, number>();
  for (const [node, cost] of measure(query).assumedListItemCosts) costs.set(node.name.value, Math.max(costs.get(node.name.value) ?? 0, cost));
  return [...costs.values()];
}

/**
 * A document whose sets of merged selections double at each level (choosing alias `a` starts a chain of
 * fragments that keeps merging into both keys below): 15 levels are 2,890 tokens, within MAX_QUERY_TOKENS.
 */
function doublingDocument(levels: number): string {
  const parts = ['{ account(id: "x") { ...M1 } }'];
  for (let i = 1; i <= levels; i++) {
    const next = i < levels ? `...M${i + 1}` : 'id';
    const chain = i < levels ? ` ...C${i}_${i + 1}` : '';
    parts.push(`fragment M${i} on Account { a: connectTokens { account { ${next}${chain} } } connectTokens { account { ${next} } } }`);
    for (let j = i + 1; j <= levels; j++) {
      const inner = j < levels ? `...C${i}_${j + 1}` : 'id';
      parts.push(`fragment C${i}_${j} on Account { a: connectTokens { account { ${inner} } } connectTokens { account { ${inner} } } }`);
    }
  }
  return parts.join('\n');
}

const FLAT = '{ accounts(first: 100) { nodes { id firstName lastName sources { label status email } connectTokens { token used email } } } }';
const OVERLAPPING = `{ accounts(first: 100) { nodes { ...Row ...Detail } } }
  fragment Row on Account { id firstName sources { label status email } connectTokens { token used email } }
  fragment Detail on Account { id lastName sources { label status email } connectTokens { token used email } }`;

describe('measureOperation', () => {
  it('counts a field selected by two fragments once, as execution runs it once', () => {
    const flat = measure(FLAT);
    const overlapping = measure(OVERLAPPING);
    assert.equal(overlapping.cost, flat.cost);
    assert.equal(overlapping.depth, flat.depth);
    // The page (an upstream request, 10) and its `nodes` (1): 100 accounts × (3 fields, `sources` (1 + 10 × 3),
    // `connectTokens` (an upstream request, 10 + 10 × 3)).
    assert.equal(flat.cost, 10 + 1 + 100 * (3 + 31 + 40));
  });

  it('counts a field repeated in one selection once, its selections merged', () => {
    const repeated = measure('{ accounts(first: 100) { nodes { id sources { label } sources { status } sources { label status } } } }');
    assert.equal(repeated.cost, measure('{ accounts(first: 100) { nodes { id sources { label status } } } }').cost);
  });

  it('charges a long list once per further item, whatever number of nodes it was merged from', () => {
    assert.deepEqual(itemCostsByField(OVERLAPPING).sort(), itemCostsByField(FLAT).sort());
  });

  it('still counts fields with different response keys apart, and aliases wherever they are spread', () => {
    const twice = measure('{ a: accounts(first: 10) { nodes { ...F } } b: accounts(first: 10) { nodes { ...F } } } fragment F on Account { x: id y: id }');
    const once = measure('{ a: accounts(first: 10) { nodes { ...F } } } fragment F on Account { x: id y: id }');
    assert.equal(twice.cost, 2 * once.cost);
    assert.equal(twice.aliases, 2 * once.aliases);
    assert.equal(once.aliases, 1 + 2);
  });

  it('counts a document whose merged selections it cannot measure within bounds as of unbounded cost', () => {
    // Measured fully, 15 levels took a second (and changing a literal defeats every cache).
    assert.equal(measure(doublingDocument(15)).cost, Infinity);
    assert.ok(Number.isFinite(measure(doublingDocument(5)).cost));
  });
});
