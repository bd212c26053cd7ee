import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manualTimer } from '../helpers/clock.ts';
import type { UpstreamAccount, UpstreamConnectToken } from '../../src/upstream/types.ts';
import {
  accountsPageRequest,
  costBound,
  createPagingAccount,
  createPagingToken,
  depth,
  errorsOf,
  Expecter,
  Generator,
  kept,
  pageAt,
  pagedAccountView,
  pagedListKey,
  pagedTokenView,
  render,
  seedPagingWorld,
  seedWorld,
  SHARED_ADDRESSES,
  sortedQuery,
  UPSTREAM_STATUSES,
  type Expectation,
  type PagedList,
  type PagingFilter,
} from '../helpers/operation-model.ts';
import { Random } from '../helpers/random.ts';
import { eventually } from '../helpers/eventually.ts';
import { useStack, type GraphQLResponse } from '../helpers/stack.ts';

/*
 * The gateway's core promise, checked on many random operations: every upstream resource an operation needs is
 * fetched exactly once, independent ones together, and the data is right. Each operation is drawn from a
 * fixed-seed PRNG over a small world seeded in the emulator; the test works out on its own (from the rules written
 * in test/helpers/operation-model.ts, not from the gateway's resolvers, selection or cost code) which upstream
 * requests the operation needs, in which waves, and what it answers, then compares.
 *
 * RANDOM_OPERATIONS_SEED=<n> explores another seed; a failure names the seed, the operation's index and its text.
 * The paging walks below have their own: RANDOM_PAGING_SEED, RANDOM_PAGING_WALKS and RANDOM_PAGING_ONLY.
 */

const SEED = Number(process.env['RANDOM_OPERATIONS_SEED'] ?? 20_240_611);
const OPERATIONS = 150;

// ---- the test -------------------------------------------------------------------------------------------------

describe('random operations: each needed upstream resource once, independent ones together, and the right data', () => {
  // Every upstream answer is held until the test lets it go (the emulator's fault waits run on this timer), so
  // which requests went out together is seen, not timed.
  const held = manualTimer();
  const stack = useStack({ emulator: { faultTimer: held.timer } });

  /** The requests answered so far, as `METHOD path[?sorted query]`. */
  const answeredCalls = (): string[] =>
    stack.emulator.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${sortedQuery(new URLSearchParams(r.query))}` : ''}`);

  /**
   * Runs the operation, letting the upstream answer wave by wave when the expectation knows the waves: the
   * requests of a wave must all be out (held) before any of it is answered, and be exactly those expected.
   */
  async function run(text: string, variables: Record<string, unknown>, expected: Expectation): Promise<GraphQLResponse> {
    const pending = stack.gql(text, variables);
    let pump: NodeJS.Timeout | undefined;
    try {
      let answered = new Set<string>();
      for (let wave = expected.waves?.(answered); wave && wave.size > answered.size; wave = expected.waves!(answered)) {
        const out = [...wave].filter((r) => !answered.has(r)).sort();
        await eventually(() => stack.emulator.requests.length + held.waiting().length >= wave!.size, {
          what: `the requests ${JSON.stringify(out)} out together, once ${JSON.stringify([...answered].sort())} were answered`,
        });
        held.fireAll();
        await eventually(() => stack.emulator.requests.length >= wave!.size, { what: `the answers to ${JSON.stringify(out)}` });
        assert.deepEqual(answeredCalls().sort(), [...wave].sort(), `the requests out together once ${JSON.stringify([...answered].sort())} were answered`);
        answered = wave;
      }
      // Whatever is left (every request, when the waves are not known) is answered as it comes.
      held.fireAll();
      pump = setInterval(() => held.fireAll(), 2);
      return await pending;
    } finally {
      clearInterval(pump);
      held.fireAll();
    }
  }

  it(`answers ${OPERATIONS} operations drawn from seed ${SEED}`, async () => {
    const world = seedWorld(stack.emulator.store);
    stack.emulator.addFault({ path: /.*/, answerAfterMs: 1 });
    const random = new Random(SEED);
    const generator = new Generator(random, world);
    for (let index = 0; index < OPERATIONS; index++) {
      let drawn = generator.operation();
      let expected = new Expecter(world).run(kept(drawn.fields));
      // Within the gateway's limits (MAX_QUERY_COST 10,000, MAX_QUERY_DEPTH 12), and with fewer requests than the
      // test gateway sends at once (upstreamMaxInFlight 64): a wave held whole must fit.
      while (costBound(drawn.fields) > 6_000 || depth(drawn.fields) > 11 || expected.required.length + expected.optional.length > 60) {
        drawn = generator.operation();
        expected = new Expecter(world).run(kept(drawn.fields));
      }
      const text = render(drawn.fields, drawn.variables, random);
      const variables = Object.fromEntries(drawn.variables.map((v) => [v.name, v.value]));

      stack.emulator.clearRequests();
      try {
        const response = await run(text, variables, expected);
        const calls = answeredCalls();
        assert.equal(response.status, 200);
        assert.deepEqual(errorsOf(response), expected.errors, 'errors');
        assert.deepEqual(response.body.data, expected.data, 'data');
        const counted = new Map<string, number>();
        for (const call of calls) counted.set(call, (counted.get(call) ?? 0) + 1);
        const made = [...counted.keys()];
        assert.deepEqual(
          {
            missing: expected.required.filter((r) => !counted.has(r)),
            unexpected: made.filter((c) => !expected.required.includes(c) && !expected.optional.includes(c)).sort(),
            repeated: [...counted].filter(([, n]) => n > 1).map(([c]) => c),
          },
          { missing: [], unexpected: [], repeated: [] },
          `upstream requests: ${JSON.stringify(calls.sort())}; required: ${JSON.stringify(expected.required)}; optional: ${JSON.stringify(expected.optional)}`,
        );
      } catch (error) {
        if (error instanceof Error) error.message = `seed ${SEED}, operation ${index}:\n${text}\nvariables: ${JSON.stringify(variables)}\n${error.message}`;
        throw error;
      }
    }
  });
});

// ---- paging with cursors --------------------------------------------------------------------------------------

/*
 * Lists walked page by page with cursors, against operation-model.ts' paging rules (P1–P5, from CONTRACT.md, the
 * docs and the schema's descriptions): each walk seeds its own world in the emulator's store, draws a list
 * (`accounts` under a random filter, or `connectTokens`) and walks it with `endCursor`, each page of a random size
 * from 1 to 100 (now and then the size that ends the list exactly, one either side, one leaving a last page of 100,
 * or 100). Each page must make
 * exactly the upstream request P1/P3 say (counted at the emulator once it is idle) and answer the items, cursors
 * and pageInfo P2–P4 say; now and then the page after another of its edges is asked for aside, and a cursor is
 * tried on another list or filter (P5: refused, no request).
 *
 * Two phases: nothing changing (the pages, put end to end, are the list: each item once, in order), then writes
 * made straight on the emulator's store between pages (accounts and top-level tokens created, and deleted: already
 * shown, the one the cursor names, not yet shown, or elsewhere). What the docs say then is checked: accounts page
 * by position, so each deleted before the cursor makes the next page skip one; a token's cursor continues after
 * that token wherever it now is, and once that token is gone at the first token created in its second or later
 * (P3).
 *
 * RANDOM_PAGING_SEED=<n> explores another seed, RANDOM_PAGING_WALKS=<n> walks more lists in each phase, and
 * RANDOM_PAGING_ONLY=<walk> replays one walk of each phase (each walk has its own world and draws); a failure
 * names the seed, the phase, the walk and the steps that led to it.
 */

const PAGING_SEED = Number(process.env['RANDOM_PAGING_SEED'] ?? 20_261_206);
const PAGING_WALKS = Number(process.env['RANDOM_PAGING_WALKS'] ?? 40);
const PAGING_ONLY = process.env['RANDOM_PAGING_ONLY'] === undefined ? undefined : Number(process.env['RANDOM_PAGING_ONLY']);

type PagedItem = UpstreamAccount | UpstreamConnectToken;

/** What the model knows of a cursor: its list and filter, the position its edge had, and that edge's item. */
interface CursorMeaning {
  paged: PagedList;
  position: number;
  key: string;
  created: number;
}

interface Connection {
  edges: Array<{ cursor: string; node: Record<string, unknown> }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null; hasPreviousPage: boolean; startCursor: string | null };
}

const PAGED_SELECTION = { accounts: 'id emailAddresses sources { label status }', connectTokens: 'token createdAt' };

function pageQuery(paged: PagedList): string {
  const filter = paged.list === 'accounts' ? [', $filter: AccountFilter', ', filter: $filter'] : ['', ''];
  return (
    `query Page($first: Int, $after: String${filter[0]}) { ${paged.list}(first: $first, after: $after${filter[1]}) ` +
    `{ edges { cursor node { ${PAGED_SELECTION[paged.list]} } } pageInfo { hasNextPage endCursor hasPreviousPage startCursor } } }`
  );
}

function drawPagedList(random: Random): PagedList {
  if (random.chance(0.35)) return { list: 'connectTokens' };
  const filter: PagingFilter = {};
  const kind = random.int(7);
  if (kind === 1 || kind === 4) filter.email = random.chance(0.7) ? random.pick(SHARED_ADDRESSES) : random.chance(0.7) ? `paged${random.int(60)}@example.com` : 'nobody@example.com';
  if (kind === 2 || kind === 4) filter.status = random.pick(UPSTREAM_STATUSES);
  if (kind === 3 || kind === 5) filter.statusOk = random.chance(0.5);
  if (kind === 5 && random.chance(0.5)) filter.status = random.pick(UPSTREAM_STATUSES);
  return { list: 'accounts', filter };
}

/** `filter` with one of its values changed, added or left out (the same filter now and then: drawn again then). */
function nearFilter(random: Random, filter: PagingFilter): PagedList {
  const near = { ...filter };
  const given = (['email', 'status', 'statusOk'] as const).filter((k) => filter[k] !== undefined);
  // Mostly one of its own values: a cursor must not continue a list whose filter differs by one value alone.
  const which = given.length > 0 && random.chance(0.7) ? random.pick(given) : random.pick(['email', 'status', 'statusOk'] as const);
  if (which === 'email') near.email = random.chance(0.25) ? undefined : random.pick([...SHARED_ADDRESSES, 'nobody@example.com']);
  if (which === 'status') near.status = random.chance(0.25) ? undefined : random.pick(UPSTREAM_STATUSES);
  if (which === 'statusOk') near.statusOk = random.chance(0.25) ? undefined : !filter.statusOk;
  return { list: 'accounts', filter: Object.fromEntries(Object.entries(near).filter(([, v]) => v !== undefined)) };
}

/** A page size: mostly the walk's style (small pages, or any), now and then one at the list's end or leaving 100 of it, or 100. */
function drawFirst(random: Random, style: 'small' | 'any', remaining: number): number {
  if (remaining === 100 && random.chance(0.6)) return 100; // a full last page: hasNextPage all the same (P2)
  if (remaining > 100 && remaining <= 200 && random.chance(0.2)) return remaining - 100; // leaving 100
  const r = random.next();
  if (r < 0.12) return Math.min(100, Math.max(1, remaining - 1 + random.int(3)));
  if (r < 0.2) return 100;
  return style === 'small' ? 1 + random.int(5) : 1 + random.int(100);
}

/** Each walk's own draws, so that one replays alone. */
const walkRandom = (phase: 'quiet' | 'writes', walk: number): Random => new Random((PAGING_SEED + Math.imul(walk + 1, 0x9e3779b1) + (phase === 'writes' ? 0x5bd1e995 : 0)) >>> 0);

describe('random paging: pages walked with cursors, the upstream requests and pageInfo the docs say, with and without writes between pages', () => {
  const stack = useStack();
  /** Token pages asked for after a deleted token's cursor: a run that meets none checks nothing of them. */
  let goneTokenPages = 0;

  const keyOf = (paged: PagedList, item: PagedItem): string => (paged.list === 'accounts' ? (item as UpstreamAccount).id : (item as UpstreamConnectToken).token);
  const viewOf = (paged: PagedList, item: PagedItem) => (paged.list === 'accounts' ? pagedAccountView(item as UpstreamAccount) : pagedTokenView(item as UpstreamConnectToken));

  /** The upstream's list as it is now (the emulator's, in its order). */
  function upstreamList(paged: PagedList): PagedItem[] {
    if (paged.list === 'connectTokens') return stack.emulator.store.listConnectTokens(null);
    const { email, status, statusOk } = paged.filter;
    return stack.emulator.store.listAccounts({ ...(email !== undefined && { email }), ...(status !== undefined && { status }), ...(statusOk !== undefined && { status_ok: statusOk }) });
  }

  /** The upstream requests the operation made, once the emulator is idle. */
  async function requestsMade(): Promise<string[]> {
    await eventually(() => stack.emulator.inFlight === 0, { what: 'the emulator idle' });
    return stack.emulator.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${sortedQuery(new URLSearchParams(r.query))}` : ''}`);
  }

  async function ask(paged: PagedList, first: number, after: string | undefined, steps: string[]): Promise<GraphQLResponse> {
    const filter = paged.list === 'accounts' && Object.keys(paged.filter).length > 0 ? paged.filter : undefined;
    const variables = { first, ...(after !== undefined && { after }), ...(filter && { filter }) };
    steps.push(`${pagedListKey(paged)}: ${JSON.stringify(variables)}`);
    stack.emulator.clearRequests();
    return stack.gql(pageQuery(paged), variables);
  }

  /**
   * Asks for the page of `paged` after `after` (none: the first) and checks it against P1–P4; returns it with
   * what each of its cursors means.
   */
  async function checkedPage(paged: PagedList, first: number, after: { cursor: string; meaning: CursorMeaning } | undefined, steps: string[]) {
    const list = upstreamList(paged);
    let offset: number | undefined = 0;
    if (after && paged.list === 'accounts') offset = after.meaning.position + 1;
    if (after && paged.list === 'connectTokens') {
      const at = list.findIndex((item) => keyOf(paged, item) === after.meaning.key);
      offset = at === -1 ? undefined : at + 1;
    }
    const response = await ask(paged, first, after?.cursor, steps);
    const made = await requestsMade();
    const connection = (response.body.data?.[paged.list] ?? null) as Connection | null;
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.errors, undefined, 'no errors');
    assert.ok(connection, 'a page');
    const cursors = connection.edges.map((e) => e.cursor);
    assert.ok(cursors.every((c) => typeof c === 'string' && c.length > 0) && new Set(cursors).size === cursors.length, `distinct cursors: ${JSON.stringify(cursors)}`);

    // The cursor's token gone: the page starts at the first token created in its second or later (the
    // connectTokens description; the emulator lists tokens oldest first), those of its second already shown again.
    if (offset === undefined) {
      const next = list.findIndex((item) => item.created >= after!.meaning.created);
      offset = next === -1 ? list.length : next;
      goneTokenPages++;
      steps.push(`  (its token gone: the page starts at ${offset} of ${list.length}; the cursor's edge was at ${after!.meaning.position})`);
    }
    const expectedRequest = paged.list === 'accounts' ? accountsPageRequest(first, offset, paged.filter) : 'GET /connect_tokens';
    assert.deepEqual(made, [expectedRequest], 'upstream requests');
    const { items, hasNextPage } = pageAt(paged, list, offset, first);
    const expected: Connection = {
      edges: items.map((item, i) => ({ cursor: connection.edges[i]?.cursor ?? '(a cursor)', node: viewOf(paged, item) })),
      // P4: items before the page, which one after a gone token's cursor may not have.
      pageInfo: { hasNextPage, endCursor: cursors.at(-1) ?? null, hasPreviousPage: after !== undefined && offset > 0, startCursor: cursors[0] ?? null },
    };
    assert.deepEqual(connection, expected, `the page at offset ${offset} of ${list.length}`);
    const start = offset;
    const meanings = connection.edges.map((_, i): CursorMeaning => {
      const item = list[start + i]!;
      return { paged, position: start + i, key: keyOf(paged, item), created: item.created };
    });
    steps.push(`  → ${connection.edges.length} items from ${start} of ${list.length}, hasNextPage ${connection.pageInfo.hasNextPage}`);
    return { connection, meanings, listLength: list.length };
  }

  /**
   * P5: `cursor` (of `meaning.paged`) on another list or filter is refused, with no upstream request. Half the
   * the time and more on the nearest other: the same filter with one of its values changed, added or left out.
   */
  async function refusedElsewhere(random: Random, cursor: string, meaning: CursorMeaning, steps: string[]): Promise<void> {
    let other = meaning.paged.list === 'accounts' && random.chance(0.7) ? nearFilter(random, meaning.paged.filter) : drawPagedList(random);
    while (pagedListKey(other) === pagedListKey(meaning.paged)) other = drawPagedList(random);
    const response = await ask(other, 1 + random.int(100), cursor, steps);
    assert.deepEqual(await requestsMade(), [], 'no upstream request for a cursor of another list');
    const errors = response.body.errors ?? [];
    assert.deepEqual(
      { data: response.body.data, errors: errors.map((e) => ({ path: e.path, code: e.extensions?.['code'], field: e.extensions?.['field'] })) },
      { data: null, errors: [{ path: [other.list], code: 'BAD_USER_INPUT', field: 'after' }] },
      `a cursor of ${pagedListKey(meaning.paged)} on ${pagedListKey(other)}`,
    );
  }

  /** Writes on the store between two pages of `paged`, its cursor at `cursor`; returns the next second to create at. */
  function writeBetweenPages(random: Random, paged: PagedList, cursor: CursorMeaning, shown: readonly string[], second: number, steps: string[], gone: Set<string>): number {
    const store = stack.emulator.store;
    for (let n = random.chance(0.6) ? 1 + random.int(3) : 0; n > 0; n--) {
      const accounts = paged.list === 'accounts';
      const write = random.pick(accounts ? (['create', 'create', 'delete', 'delete', 'delete', 'other'] as const) : (['create', 'create', 'delete', 'delete', 'delete', 'other'] as const));
      const onAccounts = accounts === (write !== 'other');
      if (write === 'create' || write === 'other') {
        const before = onAccounts ? store.listAccounts().length : store.listConnectTokens(null).length;
        second = onAccounts ? createPagingAccount(store, random, second, `later${before}.${second}@example.com`) : createPagingToken(store, random, second);
        steps.push(`create ${onAccounts ? "account" : "token"}`);
        continue;
      }
      const list = upstreamList(paged).map((item) => keyOf(paged, item));
      const where = random.pick(['shown', 'cursor', 'ahead', 'anywhere'] as const);
      const candidates =
        where === 'cursor' ? [cursor.key].filter((k) => list.includes(k))
        : where === 'shown' ? shown.filter((k) => list.includes(k))
        : where === 'ahead' ? list.filter((k) => !shown.includes(k))
        : (accounts ? store.listAccounts().map((a) => a.id) : store.listConnectTokens(null).map((t) => t.token));
      if (candidates.length === 0) continue;
      const key = random.pick(candidates);
      assert.ok(accounts ? store.deleteAccount(key) : store.deleteConnectToken(key, null), `deleted ${key}`);
      gone.add(key);
        steps.push(`delete ${accounts ? 'account' : 'token'} ${key} (${where === 'cursor' ? "the cursor's" : where})`);
    }
    return second;
  }

  async function walk(phase: 'quiet' | 'writes', index: number): Promise<void> {
    const random = walkRandom(phase, index);
    const steps: string[] = [];
    stack.emulator.store.reset('none');
    const firstSecond = Math.floor(Date.now() / 1000) - 3 * 3_600; // unused tokens live 24 hours: none expires here
    let second = seedPagingWorld(stack.emulator.store, random, firstSecond);
    const paged = drawPagedList(random);
    const style = random.chance(0.3) ? 'small' : 'any';
    const atStart = upstreamList(paged).map((item) => keyOf(paged, item));
    steps.push(`world: ${stack.emulator.store.listAccounts().length} accounts, ${stack.emulator.store.listConnectTokens(null).length} tokens; walking ${pagedListKey(paged)} (${atStart.length} items), ${style} pages, each asked for as`);
    steps.push(`  ${pageQuery(paged)}`);
    const shown: string[] = [];
    const gone = new Set<string>();
    let goneCursor = false;
    try {
      let after: { cursor: string; meaning: CursorMeaning } | undefined;
      for (let pages = 0; ; pages++) {
        assert.ok(pages <= atStart.length + 400, 'the walk ends');
        if (phase === 'writes' && after) {
          second = writeBetweenPages(random, paged, after.meaning, shown, second, steps, gone);
          if (paged.list === 'connectTokens' && gone.has(after.meaning.key)) goneCursor = true;
        }
        const remaining = upstreamList(paged).length - (after ? after.meaning.position + 1 : 0);
        const { connection, meanings } = await checkedPage(paged, drawFirst(random, style, remaining), after, steps);
        shown.push(...meanings.map((m) => m.key));
        // Aside: the page after another of its edges (not one the walk takes), and a cursor on another list.
        if (connection.edges.length > 1 && random.chance(0.15)) {
          const i = random.int(connection.edges.length - 1);
          steps.push(`aside: the page after edge ${i}`);
          await checkedPage(paged, 1 + random.int(100), { cursor: connection.edges[i]!.cursor, meaning: meanings[i]! }, steps);
        }
        if (connection.edges.length > 0 && random.chance(0.3)) {
          const i = random.int(connection.edges.length);
          steps.push(`aside: edge ${i}'s cursor on another list`);
          await refusedElsewhere(random, connection.edges[i]!.cursor, meanings[i]!, steps);
        }
        if (!connection.pageInfo.hasNextPage) break;
        assert.ok(connection.pageInfo.endCursor !== null, 'a page with a next one has an endCursor');
        after = { cursor: connection.pageInfo.endCursor, meaning: meanings.at(-1)! };
      }
      const atEnd = upstreamList(paged).map((item) => keyOf(paged, item));
      if (phase === 'quiet') assert.deepEqual(shown, atStart, 'the pages end to end: every item once, in order');
      // A token cursor continues after its token, and new tokens come last: unless a page started from a token
      // gone, every token there at the end was shown once, and none twice.
      else if (paged.list === 'connectTokens' && !goneCursor) {
        assert.deepEqual(shown.filter((k) => atEnd.includes(k)), atEnd, 'every token there at the end shown once, in order');
        assert.equal(new Set(shown).size, shown.length, 'no token shown twice');
      }
    } catch (error) {
      if (error instanceof Error) {
        const told = steps.length > 60 ? [`(${steps.length - 60} steps before)`, ...steps.slice(-60)] : steps;
        error.message = `paging seed ${PAGING_SEED}, ${phase} walk ${index} (RANDOM_PAGING_SEED=${PAGING_SEED} RANDOM_PAGING_ONLY=${index} replays it):\n${told.join('\n')}\n${error.message}`;
      }
      throw error;
    }
  }

  const walks = PAGING_ONLY === undefined ? Array.from({ length: PAGING_WALKS }, (_, i) => i) : [PAGING_ONLY];

  it(`walks ${walks.length} lists drawn from seed ${PAGING_SEED}, nothing changing between pages`, async () => {
    for (const index of walks) await walk('quiet', index);
  });

  it(`walks ${walks.length} lists drawn from seed ${PAGING_SEED} with writes on the emulator between pages`, async (t) => {
    for (const index of walks) await walk('writes', index);
    t.diagnostic(`token pages after a deleted token's cursor: ${goneTokenPages}`);
    if (PAGING_ONLY === undefined && PAGING_WALKS >= 40) assert.ok(goneTokenPages > 0, 'the walks met a page after a deleted token’s cursor');
  });
});
