import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLimits, DEFAULT_OPERATION_LIMITS, MAX_MERGED_PAIRS, mergingRefusal, resolveLimits, upstreamRequestBudget } from '../../src/limits/index.ts';
import { MAX_SELECTIONS_VISITED } from '../../src/limits/measure.ts';
import { doublingDocument, measuredDocument } from '../helpers/documents.ts';

function measure(query: string, variables?: Record<string, unknown>) {
  return measuredDocument(query, variables).measure;
}

/** What ListLengthBudget charges for one further item of each list: the most any node execution merges into it carries. */
function itemCostsByField(query: string): number[] {
  const costs = new Map<string, number>();
  for (const [node, cost] of measure(query).assumedListItemCosts) costs.set(node.name.value, Math.max(costs.get(node.name.value) ?? 0, cost));
  return [...costs.values()];
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

  it('counts an alias on each field that carries one, fields merged under that key included', () => {
    // Run once (one response key), yet each aliased node counts: what MAX_ALIASES bounds is what the document asks.
    assert.equal(measure('{ a: account(id: "1") { id } a: account(id: "1") { username } a: account(id: "1") { id } }').aliases, 3);
    assert.equal(measure('{ account(id: "1") { x: id x: id id } }').aliases, 2);
    // In two inline fragments the same: two nodes written. A named fragment spread twice is one node, run once.
    const inline = measure('{ ... on Query { a: account(id: "1") { id } } ... on Query { a: account(id: "1") { id } } }');
    const spread = measure('{ ...F ...F } fragment F on Query { a: account(id: "1") { id } }');
    assert.deepEqual([inline.aliases, spread.aliases, inline.cost], [2, 1, spread.cost]);
    // Spread under each of two fields merged into one: execution runs the merged field's fragment once too.
    assert.equal(measure('{ account(id: "1") { ...F } account(id: "1") { ...F } } fragment F on Account { a: id }').aliases, 1);
  });

  it('measures the fields of an inline fragment with no type condition, as of the type it is in', () => {
    const bare = measure('{ ... @include(if: true) { account(id: "1") { id } } }');
    assert.deepEqual([bare.cost, bare.depth, bare.rootFields], [10 + 1, 2, 1]);
  });

  it('weighs every mutation field as an upstream request, whatever its payload selects', () => {
    // The write (10) and the payload's own field (1), as docs/limits.md has it: "every Mutation field" weighs 10.
    assert.equal(measure('mutation { deleteConnectToken(token: "t") { success } }').cost, 10 + 1);
    assert.equal(measure('mutation { a: deleteConnectToken(token: "t") { success } b: deleteAccount(id: "1") { success } }').cost, 2 * (10 + 1));
  });

  it('loads the full account once under a used token’s account, and nowhere else', () => {
    // `account(id:)` already loads the full account: its full-only fields cost a field each.
    assert.equal(measure('{ account(id: "1") { username messageCount } }').cost, 10 + 2);
    assert.equal(measure('{ connectToken(token: "t") { account { username messageCount } } }').cost, 10 + 1 + 10 + 2);
    // Whichever of its fields comes last: one the embedded account answers after one it lacks still needs the load.
    assert.equal(measure('{ connectToken(token: "t") { account { username id } } }').cost, 10 + 1 + 10 + 2);
    // The inner token's account is loaded; the outer one, selecting only a token of it, is not.
    const nested = measure('{ connectToken(token: "t") { account { connectToken(token: "u") { account { username } } } } }');
    assert.equal(nested.cost, 10 + 1 + 10 + (1 + 10 + 1));
  });

  it('reads a written account only when its payload selects more than its id and its tokens', () => {
    // The write (10), the payload's account (1), its id (1) and its tokens (10 + 10 × 1): no read of the account.
    const byId = 'mutation { updateAccount(id: "1", input: { firstName: "W" }) { account { __typename id connectTokens { token } } } }';
    assert.equal(measure(byId).cost, 10 + 1 + 1 + (10 + 10 * 1));
    // One of its tokens, by the id too (10 + 1).
    assert.equal(measure('mutation { updateAccount(id: "1", input: { firstName: "W" }) { account { id connectToken(token: "t") { token } } } }').cost, 10 + 1 + 1 + (10 + 1));
    assert.equal(measure('mutation { createAccount(input: { email: "a@example.com" }) { account { id } } }').cost, 10 + 1 + 1);
    // Any other field reads it: one request for all of them.
    assert.equal(measure('mutation { updateAccount(id: "1", input: { firstName: "W" }) { account { id firstName username } } }').cost, 10 + 1 + 10 + 3);
    assert.equal(measure('mutation { updateAccount(id: "1", input: { firstName: "W" }) { account { firstName id } } }').cost, 10 + 1 + 10 + 2);
    assert.equal(measure('mutation { createAccount(input: { email: "a@example.com" }) { account { ... on Account { sources { label } } } } }').cost, 10 + 1 + 10 + (1 + 10 * 1));
  });

  it('counts nothing of what @skip/@include leave out, as the request’s variables decide, for they never run', () => {
    const tokens = '{ account(id: "1") { id connectTokens { token email } } }';
    // The account (10) and its id (1); its tokens (10 + 10 × 2) only when they run.
    const all = 10 + 1 + (10 + 10 * 2);
    assert.equal(measure(tokens).cost, all);
    assert.equal(measure('{ account(id: "1") { id connectTokens @skip(if: true) { token email } } }').cost, 10 + 1);
    assert.equal(measure('{ account(id: "1") { id connectTokens @include(if: false) { token email } } }').cost, 10 + 1);
    assert.equal(measure('{ account(id: "1") { id connectTokens @include(if: true) @skip(if: false) { token email } } }').cost, all);
    // Through variables, their defaults and fragments: the measure then holds for these values only.
    const query = 'query ($with: Boolean!, $without: Boolean = true) { account(id: "1") { id ...T @include(if: $with) ... @skip(if: $without) { firstName } } } fragment T on Account { connectTokens { token email } }';
    const withTokens = measure(query, { with: true });
    assert.deepEqual([withTokens.cost, withTokens.usesVariables], [all, true]);
    assert.equal(measure(query, { with: false }).cost, 10 + 1);
    assert.equal(measure(query, { with: false, without: false }).cost, 10 + 1 + 1);
    // A field merged from a node that runs and one that does not runs with the first's selections alone.
    assert.equal(measure('{ account(id: "1") { id connectTokens { token } connectTokens @skip(if: true) { email } } }').cost, 10 + 1 + (10 + 10 * 1));
    // Left out, a token's account field that needs the full account costs no load: its fields are not read.
    assert.equal(measure('{ connectToken(token: "t") { account { id username @skip(if: true) } } }').cost, 10 + 1 + 1);
    // Nor do the other figures count it: root fields, depth, aliases.
    const skipped = measure('{ a: account(id: "1") { id } b: account(id: "2") @skip(if: true) { c: connectTokens { token } } }');
    assert.deepEqual([skipped.rootFields, skipped.depth, skipped.aliases], [1, 2, 1]);
    // A literal decides for every request: the measure does not depend on variables.
    assert.equal(skipped.usesVariables, false);
  });

  it('counts a selection whose directive cannot be read (a variable missing or null): execution refuses the operation', () => {
    const query = 'query ($with: Boolean!) { account(id: "1") { id connectTokens @include(if: $with) { token } } }';
    const whole = 10 + 1 + (10 + 10 * 1);
    assert.equal(measure(query).cost, whole);
    assert.equal(measure(query, { with: null }).cost, whole);
    assert.equal(measure(query, { with: 'yes' }).cost, whole);
  });

  it('counts first as its resolver sees it: an explicit null is the default, not the variable’s, and below 0 an empty page', () => {
    const query = 'query ($n: Int = 5) { accounts(first: $n) { nodes { id } } }';
    assert.equal(measure(query, { n: null }).cost, 10 + 1 + 20);
    assert.equal(measure(query).cost, 10 + 1 + 5);
    // A negative `first` is refused by its resolver; counted negative, it would pay for the operation's other fields.
    assert.equal(measure('{ accounts(first: -1000) { nodes { id } } }').cost, 10 + 1);
    assert.equal(measure(query, { n: -1000 }).cost, 10 + 1);
  });

  it('measures a set spread under connections of different page sizes once for each', () => {
    const pages = measure('{ a: accounts(first: 1) { ...Page } b: accounts(first: 100) { ...Page } } fragment Page on AccountConnection { nodes { id } }');
    assert.equal(pages.cost, 10 + 1 + 1 + (10 + 1 + 100));
  });

  it('gives each node of a long list the most its merged items cost, so that no field it runs in is charged less', () => {
    // Under `a` the sources of F and G run as one list of 3 fields an item; under `b` and `c` each runs alone.
    const query = `{ a: account(id: "1") { ...F ...G } b: account(id: "2") { ...F } c: account(id: "3") { ...G } }
      fragment F on Account { sources { label } } fragment G on Account { sources { status email } }`;
    assert.deepEqual(itemCostsByField(query), [3]);
  });

  it('measures fragments spreading each other too deep to measure as of unbounded depth, not as an unexpected error', () => {
    // 3,000 levels, each its own fragment: the text nests a few levels only, but measuring it, a field at a time
    // down the fragments, ran out of stack (a masked 500). The gateway now refuses such a document before it is
    // validated (MAX_NESTING); this guard stays behind that.
    const fragments = Array.from({ length: 3_000 }, (_, level) => {
      const onToken = level % 2 === 0;
      const inner = level === 2_999 ? (onToken ? 'id' : 'token') : `...L${level + 1}`;
      return `fragment L${level} on ${onToken ? 'ConnectToken' : 'Account'} { ${onToken ? 'account' : 'connectToken(token: "t")'} { ${inner} } }`;
    });
    const { depth } = measure(`{ connectToken(token: "t") { ...L0 } } ${fragments.join('\n')}`);
    // Out of stack on Node 20; with a larger stack it measures them.
    assert.ok(depth === Infinity || depth > 1_000, String(depth));
  });

  it('counts a page of no items (`first: 0`) as nothing beneath, even past what a number holds: its siblings are still counted', () => {
    // 320 nested lists of 10 overflow the estimate to Infinity; under `first: 0`, 0 × Infinity was NaN, which no
    // limit exceeds, so the whole operation passed the estimate whatever its other fields cost. (The gateway now
    // refuses a document this deep before it is validated, MAX_NESTING; the estimate still must not be NaN.)
    const overflowing = `${'connectTokens { account { '.repeat(320)} id ${'} } '.repeat(320)}`;
    const heavy = 'connectTokens(first: 100) { nodes { account { connectTokens { account { connectTokens { token } } } } } }';
    const measured = measure(`{ ${heavy} empty: accounts(first: 0) { nodes { ${overflowing} } } }`);
    // 22,111 (docs/limits.md) and the empty page's 11.
    assert.equal(measured.cost, 22_122);
    const refusal = checkLimits(measured, { ...DEFAULT_OPERATION_LIMITS, maxDepth: 1_000 })!;
    assert.deepEqual([refusal.extensions['limit'], refusal.extensions['value']], ['MAX_QUERY_COST', 22_122]);
  });

  it('stops measuring a document whose merged selections it cannot measure within bounds', () => {
    // Measured fully, 15 levels took a second (and changing a literal defeats every cache).
    const doubling = measure(doublingDocument(15));
    assert.ok(doubling.selectionsVisited > MAX_SELECTIONS_VISITED, 'the doubling document is past the bound');
    assert.equal(doubling.cost, Infinity);
    // Refused under a name of its own: no setting raises it (MAX_QUERY_COST would not help).
    const refusal = checkLimits(doubling, DEFAULT_OPERATION_LIMITS)!;
    assert.deepEqual([refusal.extensions['code'], refusal.extensions['limit'], refusal.extensions['maximum']], ['QUERY_TOO_COMPLEX', 'MERGED_SELECTIONS', MAX_SELECTIONS_VISITED]);
    assert.match(refusal.message, /merge across fragments in more ways than the gateway measures/);
    assert.ok(Number.isFinite(measure(doublingDocument(5)).cost), 'a small doubling document is measured');
    // The bound docs/limits.md states: 20,000 selections are measured, one more is not.
    const flat = (selections: number) => measure(`{ ${'__typename '.repeat(selections)}}`);
    assert.deepEqual([flat(20_000).selectionsVisited, flat(20_000).cost], [20_000, 0]);
    assert.equal(flat(20_001).cost, Infinity);
  });

  it('measures sets that spread the same fragments once, whatever field they are under', () => {
    // 100 aliased tokens, each a card of 21 colocated fragments: each alias's `{ ...TokenCard }` is the same.
    const fields = 'token email createdAt used usedAt expiresAt callbackUrl firstName lastName';
    const fragments = Array.from({ length: 21 }, (_, i) => `fragment T${i} on ConnectToken { ${fields} }`).join('\n');
    const card = `fragment TokenCard on ConnectToken { ${Array.from({ length: 21 }, (_, i) => `...T${i}`).join(' ')} }`;
    const aliases = Array.from({ length: 100 }, (_, i) => `t${i}: connectToken(token: "t${i}") { ...TokenCard }`).join(' ');
    const cards = measure(`{ account(id: "x") { id ${aliases} } }\n${card}\n${fragments}`);
    // The root, the account's 101 selections, and one card: 1 + 21 + 21 × 9 (each alias's walked anew: 21,100).
    assert.equal(cards.selectionsVisited, 1 + 101 + 1 + 21 + 21 * 9);
    // The account, and 100 tokens of 9 fields, each an upstream request.
    assert.equal(cards.cost, 10 + 1 + 100 * (10 + 9));
  });

  it('weighs __typename aliased to its own name as the plain one: nothing, wherever it comes among the nodes merged with it', () => {
    // The same response key as the plain one, so merged with it into one answer per item: only an alias of another name adds one.
    const plain = measure('{ accounts(first: 100) { nodes { __typename } } }').cost;
    assert.equal(plain, 10 + 1);
    assert.equal(measure('{ accounts(first: 100) { nodes { __typename: __typename } } }').cost, plain);
    assert.equal(measure('{ accounts(first: 100) { nodes { __typename: __typename __typename } } }').cost, plain);
    assert.equal(measure('{ accounts(first: 100) { nodes { t: __typename } } }').cost, plain + 100);
  });

  it('counts the root response keys as execution groups them: through fragments, merged by key, aliases apart', () => {
    const query = `query { a: account(id: "1") { id } account(id: "2") { id } ...Roots ... on Query { accounts { nodes { id } } a: account(id: "1") { username } } ...Roots }
      fragment Roots on Query { connectTokens { nodes { token } } account(id: "2") { username } }`;
    // a, account, connectTokens, accounts: a fragment spread twice and keys selected again add nothing.
    assert.equal(measure(query).rootFields, 4);
  });
});

describe('upstreamRequestBudget', () => {
  it('is twice MAX_QUERY_COST ÷ 10, rounded up (docs/limits.md): a cost between two tens keeps the requests of the ten above it', () => {
    const budget = (maxCost: number) => upstreamRequestBudget({ ...DEFAULT_OPERATION_LIMITS, maxCost });
    assert.deepEqual([budget(10_000), budget(150), budget(145), budget(141), budget(5)], [2_000, 30, 30, 30, 2]);
  });
});

describe('the bounds that are not settings', () => {
  it('refuse only past them (docs/limits.md): 20,000 selections visited and 10,000 merged pairs pass, one more does not', () => {
    const within = measure('{ account(id: "1") { id } }');
    assert.equal(checkLimits({ ...within, selectionsVisited: MAX_SELECTIONS_VISITED }, DEFAULT_OPERATION_LIMITS), undefined);
    assert.equal(checkLimits({ ...within, selectionsVisited: MAX_SELECTIONS_VISITED + 1 }, DEFAULT_OPERATION_LIMITS)?.extensions['limit'], 'MERGED_SELECTIONS');
    assert.equal(mergingRefusal({ pairs: MAX_MERGED_PAIRS, visited: MAX_SELECTIONS_VISITED }), undefined);
    assert.equal(mergingRefusal({ pairs: MAX_MERGED_PAIRS + 1, visited: 0 })?.extensions['limit'], 'MERGED_PAIRS');
    assert.equal(mergingRefusal({ pairs: 0, visited: MAX_SELECTIONS_VISITED + 1 })?.extensions['limit'], 'MERGED_SELECTIONS');
  });
});

describe('resolveLimits', () => {
  it('keeps the default of a limit given as undefined, as of one left out: an embedder passing an unset value does not turn it off', () => {
    // `value > undefined` is false: a limit taken as given would refuse nothing.
    assert.deepEqual(resolveLimits({ maxDepth: undefined, maxCost: 500 }), { ...DEFAULT_OPERATION_LIMITS, maxCost: 500 });
    assert.deepEqual(resolveLimits(undefined), DEFAULT_OPERATION_LIMITS);
  });
});

describe('checkLimits', () => {
  it('reports the first limit exceeded in the order docs/limits.md gives: the bounds that are not settings, then depth, aliases, root fields, cost', () => {
    const within = measure('{ account(id: "1") { id } }');
    const past = {
      ...within,
      selectionsVisited: MAX_SELECTIONS_VISITED + 1,
      longestAlias: 129,
      schemaFields: 2,
      introspectionAliases: 1,
      depth: DEFAULT_OPERATION_LIMITS.maxDepth + 1,
      aliases: DEFAULT_OPERATION_LIMITS.maxAliases + 1,
      rootFields: DEFAULT_OPERATION_LIMITS.maxRootFields + 1,
      cost: DEFAULT_OPERATION_LIMITS.maxCost + 1,
    };
    const order = ['MERGED_SELECTIONS', 'ALIAS_LENGTH', 'SCHEMA_FIELDS', 'INTROSPECTION_ALIASES', 'MAX_QUERY_DEPTH', 'MAX_ALIASES', 'MAX_ROOT_FIELDS', 'MAX_QUERY_COST'];
    const figuresInOrder = ['selectionsVisited', 'longestAlias', 'schemaFields', 'introspectionAliases', 'depth', 'aliases', 'rootFields', 'cost'] as const;
    const reported: unknown[] = [];
    const measured = { ...past };
    for (const figure of figuresInOrder) {
      reported.push(checkLimits(measured, DEFAULT_OPERATION_LIMITS)?.extensions['limit']);
      measured[figure] = within[figure];
    }
    assert.deepEqual(reported, order);
    assert.equal(checkLimits(measured, DEFAULT_OPERATION_LIMITS), undefined);
  });
});
