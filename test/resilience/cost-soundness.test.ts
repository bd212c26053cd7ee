import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../src/http/server.ts';
import { Expecter, Generator, included, kept, depth, render, seedWorld, type Field, type TypeName, type Variable, type WorldOptions } from '../helpers/operation-model.ts';
import { eventually } from '../helpers/eventually.ts';
import { Random } from '../helpers/random.ts';
import { startStack, startTestGateway, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/*
 * The estimated cost (docs/limits.md, "The estimated cost") checked against what random operations really do, on
 * the world and operations of test/helpers/operation-model.ts. The test computes each operation's estimate on its
 * own, from the rules docs/limits.md writes down (not from src/limits/), and sends the operation to a gateway with
 * the default MAX_QUERY_COST and to one with a low one. For each:
 *   - over the gateway's MAX_QUERY_COST: refused (400 QUERY_TOO_COMPLEX, `limit: "MAX_QUERY_COST"`, `value` the
 *     estimate, `maximum` the setting) before any upstream request;
 *   - within it: run, and never failed for UPSTREAM_REQUESTS, its requests within twice (MAX_QUERY_COST ÷ 10,
 *     rounded up);
 *   - with lists no longer than the 10 the estimate assumes: the estimate bounds the work, a request weighing
 *     ten and any other field answered one (so requests × 10 ≤ estimate);
 *   - with longer lists (an account's sources and connect tokens): what their further items add, at what an item
 *     of the list's selection costs (at least 1), fails a list with LIST_LENGTHS exactly when it goes past twice
 *     MAX_QUERY_COST.
 *
 * COST_SOUNDNESS_SEED=<n> explores another seed, COST_SOUNDNESS_CASES=<n> more cases; a failure names the seed,
 * the case, the operation, the test's estimate, the gateway's `value` and the requests made.
 */

const SEED = Number(process.env['COST_SOUNDNESS_SEED'] ?? 20_261_205);
const CASES = Number(process.env['COST_SOUNDNESS_CASES'] ?? 200);
const DEFAULT_MAX_COST = 10_000;
/** The low MAX_QUERY_COSTs, one gateway each: from one that refuses nearly everything to one that refuses few. */
const LOW_MAX_COSTS = [12, 25, 40, 60, 100, 150, 250, 400, 700, 1_200, 2_000, 4_000];

// ---- the estimate, from docs/limits.md ---------------------------------------------------------------------------

/** Fields whose resolver makes an upstream request (weight 10), by the type they are selected on; and every Mutation field. */
const UPSTREAM: Partial<Record<TypeName, ReadonlySet<string>>> = {
  Query: new Set(['account', 'accounts', 'connectToken', 'connectTokens']),
  Account: new Set(['connectTokens', 'connectToken']),
  CreateConnectTokenPayload: new Set(['connectToken']),
};
/** Account fields the id of an account a write named answers (`__typename` too): any other loads it (10) under a payload's `account`. */
const ANSWERED_BY_ID = new Set(['id', '__typename', 'connectTokens', 'connectToken']);
/** Account fields a used token's embedded account lacks: under `ConnectToken.account` they load it (10, once). */
const FULL_ONLY = new Set(['username', 'passwordExpiredAt', 'messageCount', 'fileCount']);
const ASSUMED_LIST_LENGTH = 10;
const DEFAULT_FIRST = 20;
const LARGEST_FIRST = 100;

const isUpstream = (parent: TypeName, f: Field): boolean => parent === 'Mutation' || (UPSTREAM[parent]?.has(f.name) ?? false);
const isConnection = (f: Field): boolean => f.type === 'AccountConnection' || f.type === 'ConnectTokenConnection';
/** Lists of objects: a connection's `nodes` and `edges`, and an account's `sources` and `connectTokens`. */
const isList = (parent: TypeName, f: Field): boolean =>
  f.name === 'nodes' || f.name === 'edges' || (parent === 'Account' && (f.name === 'sources' || f.name === 'connectTokens'));

/** `first` as its resolver sees it, counted at most at the largest page; the schema's 20 when left out. */
function pageOf(f: Field): number {
  const first = f.args.find((a) => a.name === 'first')?.value;
  return first === undefined ? DEFAULT_FIRST : Math.min(LARGEST_FIRST, Math.max(0, Number(first)));
}

/**
 * cost(selection set) = Σ weight + load + size × cost(the field's selections), over the fields that run: those
 * `@skip`/`@include` leave out (as the request's variables decide) count nothing; fields sharing a response key
 * are one Field here already (the generator merges them).
 */
export function estimate(fields: Field[], parent: TypeName, page?: number): number {
  let cost = 0;
  for (const f of fields) {
    if (!included(f)) continue;
    const weight = f.name === '__typename' ? (f.alias ? 1 : 0) : isUpstream(parent, f) ? 10 : 1;
    if (!f.children) {
      cost += weight;
      continue;
    }
    const size = isList(parent, f) ? (page ?? ASSUMED_LIST_LENGTH) : 1;
    const writtenAccount = (parent === 'CreateAccountPayload' || parent === 'UpdateAccountPayload') && f.name === 'account';
    const load =
      (parent === 'ConnectToken' && f.name === 'account' && f.children.some((c) => included(c) && FULL_ONLY.has(c.name))) ||
      (writtenAccount && f.children.some((c) => included(c) && !ANSWERED_BY_ID.has(c.name)))
        ? 10
        : 0;
    cost += weight + load + (size === 0 ? 0 : size * estimate(f.children, f.type!, isConnection(f) ? pageOf(f) : undefined));
  }
  return cost;
}

/** What one more item of an account's list adds past the 10 assumed: its selection's cost, at least 1. */
const itemCost = (f: Field): number => Math.max(1, estimate(f.children!, f.type!));

// ---- what the operation did ------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/**
 * Fields answered that make no request of their own (each weighs 1 in the estimate, an unaliased `__typename`
 * nothing), in `data` as answered.
 */
function plainFieldsAnswered(fields: Field[], parent: TypeName, value: Json): number {
  let count = 0;
  for (const f of fields) {
    if (!included(f) || !(f.key in value)) continue;
    if (!isUpstream(parent, f) && !(f.name === '__typename' && !f.alias)) count += 1;
    const child = value[f.key];
    if (!f.children || child === null || child === undefined) continue;
    for (const item of Array.isArray(child) ? child : [child]) if (item !== null) count += plainFieldsAnswered(f.children, f.type!, item as Json);
  }
  return count;
}

/**
 * What each account list longer than assumed adds, in the full answer the model expects (nothing failed): an
 * item costs what the list's selection does in the estimate.
 */
function longListCharges(fields: Field[], parent: TypeName, value: Json, charges: number[] = []): number[] {
  for (const f of fields) {
    if (!included(f)) continue;
    const child = value[f.key];
    if (!f.children || child === null || child === undefined) continue;
    if (parent === 'Account' && Array.isArray(child) && child.length > ASSUMED_LIST_LENGTH && (f.name === 'sources' || f.name === 'connectTokens')) {
      charges.push((child.length - ASSUMED_LIST_LENGTH) * itemCost(f));
    }
    for (const item of Array.isArray(child) ? child : [child]) if (item !== null) longListCharges(f.children, f.type!, item as Json, charges);
  }
  return charges;
}

/** Whether `total` is the sum of some of `parts` (each used once at most). */
function isSumOfSome(parts: readonly number[], total: number): boolean {
  if (!Number.isInteger(total) || total <= 0) return false;
  const reachable = new Uint8Array(total + 1);
  reachable[0] = 1;
  for (const part of parts) for (let sum = total; sum >= part; sum--) if (reachable[sum - part]) reachable[sum] = 1;
  return reachable[total] === 1;
}

// ---- the test ----------------------------------------------------------------------------------------------------

interface Target {
  gateway: Gateway;
  maxCost: number;
}

async function send(target: Target, query: string, variables: Record<string, unknown>): Promise<GraphQLResponse> {
  const response = await fetch(target.gateway.url, {
    signal: AbortSignal.timeout(30_000),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] };
}

const limitOf = (response: GraphQLResponse, limit: string) => (response.body.errors ?? []).filter((e) => e.extensions?.['limit'] === limit);

describe('the estimated cost against what random operations do', () => {
  let stack: Stack;
  const targets: Target[] = [];
  before(async () => {
    stack = await startStack();
    targets.push({ gateway: stack.gateway, maxCost: DEFAULT_MAX_COST });
    const upstream = { baseUrl: stack.emulator.url, consumerKey: stack.emulator.consumerKey, consumerSecret: stack.emulator.consumerSecret };
    for (const maxCost of LOW_MAX_COSTS) targets.push({ gateway: await startTestGateway(upstream, { operationLimits: { maxCost } }), maxCost });
  });
  after(async () => {
    for (const target of targets.slice(1)) await target.gateway.close();
    await stack?.close();
  });

  /**
   * Waits for the upstream requests of the operation just answered: a load started ahead for a field that then
   * needs none (the tokens of an account that turns out unknown, R5) may still be on its way to the emulator
   * when the answer is sent, and would otherwise be counted for the next operation. One round trip through the
   * emulator's event loop reads what the gateway wrote before answering; then each request is waited for.
   */
  async function settled(): Promise<void> {
    await (await fetch(`${stack.emulator.origin}/settle`)).arrayBuffer();
    await eventually(() => stack.emulator.inFlight === 0, { what: 'the upstream requests of the operation answered' });
  }

  /**
   * Draws `cases` operations over a world seeded with `world`, sends each to the default gateway and to a low one,
   * and checks what each answered against the estimate.
   */
  async function explore(seed: number, cases: number, world: WorldOptions, operation: 'query' | 'mutation' = 'query'): Promise<{ refused: number; ran: number; listsFailed: number }> {
    const random = new Random(seed);
    const seeded = () => {
      stack.emulator.store.reset('none');
      return seedWorld(stack.emulator.store, world);
    };
    let model = seeded();
    let generator = new Generator(random, model);
    const long = (world.longer ?? []).length > 0;
    const tally = { refused: 0, ran: 0, listsFailed: 0 };
    const draw = () => (operation === 'mutation' ? generator.mutation() : generator.operation({ largestFirst: random.pick([8, 30, 100]), omittedFirst: 0.2 }));
    for (let index = 0; index < cases; index++) {
      // Each mutation on the world as seeded: the writes before it would make its lists longer, its ids stale.
      if (operation === 'mutation' && index > 0) generator = new Generator(random, (model = seeded()));
      let drawn = draw();
      // Within MAX_QUERY_DEPTH (12), which is checked before the cost.
      while (depth(drawn.fields) > 11) drawn = draw();
      const text = render(drawn.fields, drawn.variables, random, operation);
      const variables = Object.fromEntries(drawn.variables.map((v: Variable) => [v.name, v.value]));
      const root = operation === 'query' ? 'Query' : 'Mutation';
      const expected = estimate(drawn.fields, root);
      // Lists within the 10 assumed: a low maximum picked at random, and the default one too for an operation the low
      // one refuses, so that each runs somewhere (but past 10,000) and each low maximum is seen from both sides.
      // Longer lists: the lowest maximum that lets the operation run, whose room for them is the tightest.
      const low = random.pick(targets.slice(1));
      const tightest = targets.slice(1).find((t) => t.maxCost >= expected) ?? targets[0]!;
      for (const target of long ? [tightest] : expected > low.maxCost ? [low, targets[0]!] : [low]) {
        stack.emulator.clearRequests();
        const response = await send(target, text, variables);
        await settled();
        const requests = stack.emulator.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`);
        const costError = limitOf(response, 'MAX_QUERY_COST')[0];
        try {
          if (expected > target.maxCost) {
            tally.refused++;
            assert.equal(response.status, 400, 'an operation over MAX_QUERY_COST is refused');
            assert.deepEqual(response.body.errors?.map((e) => e.extensions), [
              { code: 'QUERY_TOO_COMPLEX', limit: 'MAX_QUERY_COST', value: expected, maximum: target.maxCost },
            ]);
            assert.deepEqual(requests, [], 'refused before any upstream request');
            continue;
          }
          tally.ran++;
          // (A mutation may be refused whole by its precheck, before any write: a 400 of another code.)
          if (operation === 'query') assert.equal(response.status, 200, 'an operation within MAX_QUERY_COST runs');
          assert.equal(costError, undefined, 'an operation within MAX_QUERY_COST is not refused for it');
          assert.deepEqual(limitOf(response, 'UPSTREAM_REQUESTS'), [], 'never out of upstream requests within the estimate');
          assert.ok(requests.length <= 2 * Math.ceil(target.maxCost / 10), 'within the request budget');
          const listErrors = limitOf(response, 'LIST_LENGTHS');
          if (!long) {
            assert.deepEqual(listErrors, [], 'no list longer than assumed: nothing charged');
            const plain = plainFieldsAnswered(drawn.fields, root, response.body.data ?? {});
            assert.ok(requests.length * 10 <= expected, `requests × 10 (${requests.length * 10}) within the estimate`);
            assert.ok(requests.length * 10 + plain <= expected, `the work (${requests.length} requests, ${plain} other fields answered) within the estimate`);
            continue;
          }
          // What the lists longer than assumed add, each list counted where it resolves (aliases apart, merged
          // fields once). A list in a fragment spread in several places is charged at its dearest place
          // (docs/limits.md), which may be more than the test counts: for those, only what must fail is checked.
          const charges = longListCharges(drawn.fields, 'Query', new Expecter(model).run(kept(drawn.fields)).data);
          const added = charges.reduce((sum, c) => sum + c, 0);
          const maximum = 2 * target.maxCost;
          const exact = !/^fragment .*\b(sources|connectTokens) \{/m.test(text);
          for (const error of listErrors) {
            assert.equal(error.extensions!['code'], 'QUERY_TOO_COMPLEX');
            assert.equal(error.extensions!['maximum'], maximum, 'twice MAX_QUERY_COST');
            assert.ok(Number(error.extensions!['value']) > maximum, 'a list fails only past the maximum');
            // What the lists charged before it and its own add: some of the charges, whichever resolved first.
            if (exact) assert.ok(isSumOfSome(charges, Number(error.extensions!['value'])), `a failed list's value (${String(error.extensions!['value'])}) is a sum of the lists' charges ${JSON.stringify(charges)}`);
          }
          if (added > maximum) assert.ok(listErrors.length > 0, `long lists adding ${added} past ${maximum}: one fails`);
          if (exact && added <= maximum) assert.deepEqual(listErrors, [], `long lists adding ${added}, within ${maximum}: none fails`);
          if (listErrors.length > 0) tally.listsFailed++;
          else assert.deepEqual(response.body.errors?.filter((e) => e.extensions?.['code'] === 'QUERY_TOO_COMPLEX') ?? [], []);
        } catch (error) {
          if (error instanceof Error) {
            error.message =
              `seed ${seed}, case ${index}, MAX_QUERY_COST ${target.maxCost}:\n${text}\nvariables: ${JSON.stringify(variables)}\n` +
              `the test's estimate: ${expected}; the gateway's value: ${String(costError?.extensions?.['value'] ?? '(ran)')}\n` +
              `requests (${requests.length}): ${JSON.stringify(requests)}\nerrors: ${JSON.stringify(response.body.errors ?? [])}\n${error.message}`;
          }
          throw error;
        }
      }
    }
    return tally;
  }

  it(`holds for ${CASES} operations from seed ${SEED}, lists within the 10 assumed`, async () => {
    const tally = await explore(SEED, CASES, {});
    // The draws reach both sides of the low maxima.
    assert.ok(tally.refused > CASES / 4 && tally.ran > CASES / 2, JSON.stringify(tally));
  });

  it(`holds for ${Math.ceil(CASES / 3)} mutations from seed ${SEED + 2}, lists within the 10 assumed`, async () => {
    const tally = await explore(SEED + 2, Math.ceil(CASES / 3), {}, 'mutation');
    assert.ok(tally.refused > 0 && tally.ran > 0, JSON.stringify(tally));
  });

  it(`holds for ${Math.ceil(CASES / 2)} operations from seed ${SEED + 1}, some accounts' sources and tokens longer than 10`, async () => {
    const tally = await explore(SEED + 1, Math.ceil(CASES / 2), {
      longer: [
        { account: 1, tokens: 24 },
        { account: 2, sources: 17, tokens: 13 },
        { account: 3, sources: 110 },
        { account: 5, tokens: 110, sources: 12 },
      ],
    });
    // The default seed's draws reach both outcomes (another seed may draw no operation whose lists go past).
    if (!process.env['COST_SOUNDNESS_SEED']) assert.ok(tally.listsFailed > 0 && tally.ran > tally.listsFailed, JSON.stringify(tally));
  });
});
