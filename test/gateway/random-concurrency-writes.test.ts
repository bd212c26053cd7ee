import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import type { EmulatorRequestLogEntry } from '../../src/emulator/server.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { operationLines, pumpAnswers, runAtOnce, sendOperation } from '../helpers/held-operations.ts';
import { CALLBACK, errorsOf, UNKNOWN_IDS } from '../helpers/operation-model.ts';
import { Random } from '../helpers/random.ts';
import { startLoggingStack, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/*
 * Writes under concurrency, and clients that leave while their upstream requests wait in the gateway's queue.
 * The sibling of random-concurrency.test.ts, whose operations only read. Its model is written from the docs, not
 * from src/:
 *   - schema/base.graphql, docs/errors.md: a create or an update sends exactly one upstream request and is never
 *     retried (a POST); a mutation's fields run one after another; one failing after others wrote answers
 *     `data: null` with the writes made before it in `extensions.writesMade` (each field's `path`, its mutation as
 *     `field`, every scalar of its payload as `payload`, whatever was selected); no write failed, no writesMade;
 *   - schema/account.graphql, connect-token.graphql, docs/limits.md: a payload's `account` (past `id`) or
 *     `connectToken` is read by one more upstream request, after the write: a second update of the same account in
 *     one mutation reads it again and sees the second change (a write invalidates what its operation had read);
 *   - README.md, bench/README.md: each upstream resource once per operation, and no sharing between operations:
 *     an operation that starts once another's write has been answered sees it; one running beside the write
 *     sees the resource as it was before some write of it or after;
 *   - docs/configuration.md (UPSTREAM_MAX_IN_FLIGHT), docs/logs.md: requests past the cap wait in a queue; the
 *     `operation` line of a client that left says `clientWentAway: true`, `status: null`, and counts in
 *     `upstreamRequests` the requests sent (none, for one that left with all of them queued).
 * The upstream answers are held by the emulator's fault timer and let go by the test, as in the sibling suite;
 * with few upstream slots (MAX_IN_FLIGHT), requests queue in the gateway.
 *
 * A round: writers, each owning some accounts and connect tokens of the round (no two writers share one), and
 * readers of those same resources, all sent at once; once every one has answered, readers of every resource of
 * the round (those the writers made too) see the model's final state, each with its own requests.
 * The cancellation case: with the upstream slots taken by held requests, writers and readers queue; some
 * clients leave; none of their requests is ever sent (counted at the emulator and at the gateway's upstream
 * pool), the others are answered as the model says, and a last wave finds all the slots free again.
 *
 * RANDOM_CONCURRENCY_WRITES_SEED=<n> explores another seed, RANDOM_CONCURRENCY_WRITES_ROUNDS=<n> more rounds; a
 * failure names the seed, the round, every operation and the mismatch.
 */

const SEED = Number(process.env['RANDOM_CONCURRENCY_WRITES_SEED'] ?? 20_261_207);
const ROUNDS = Number(process.env['RANDOM_CONCURRENCY_WRITES_ROUNDS'] ?? 6);
/** Few upstream slots, so that a round's requests queue in the gateway. */
const MAX_IN_FLIGHT = 2;
const WRITERS = 3;
const READERS = 4;
const ACCOUNTS = 6;
const TOKENS = 3;
const NOBODY = UNKNOWN_IDS[0]!;
/** Operations of the cancellation case whose clients leave while their upstream requests are queued. */
const CANCELLED = 3;
const CANCEL_ROUNDS = Number(process.env['RANDOM_CONCURRENCY_WRITES_CANCEL_ROUNDS'] ?? 4);

interface AccountState {
  email: string;
  firstName: string | null;
  lastName: string | null;
}
interface TokenState {
  email: string;
}
/** The round's resources as the model has them: `null` once deleted. */
interface World {
  accounts: Map<string, AccountState | null>;
  tokens: Map<string, TokenState | null>;
}

type Write =
  | { kind: 'createAccount'; alias: string; email: string; firstName: string; read: boolean }
  | { kind: 'updateAccount'; alias: string; id: string; firstName: string; read: boolean }
  | { kind: 'deleteAccount'; alias: string; id: string }
  | { kind: 'createConnectToken'; alias: string; email: string; read: boolean }
  | { kind: 'deleteConnectToken'; alias: string; token: string }
  /** An update of an account the upstream does not know: NOT_FOUND after the writes before it. */
  | { kind: 'failing'; alias: string };

type Read = { alias: string } & ({ account: string } | { token: string });

interface Operation {
  id: string;
  token: string;
  text: string;
  writes?: Write[];
  reads?: Read[];
}

const ACCOUNT_SELECTION = '{ id firstName lastName emailAddresses }';

function writeText(w: Write): string {
  switch (w.kind) {
    case 'createAccount':
      return `${w.alias}: createAccount(input: { email: "${w.email}", firstName: "${w.firstName}" }) { id resourceUrl${w.read ? ` account ${ACCOUNT_SELECTION}` : ''} }`;
    case 'updateAccount':
      return `${w.alias}: updateAccount(id: "${w.id}", input: { firstName: "${w.firstName}" }) { success${w.read ? ` account ${ACCOUNT_SELECTION}` : ''} }`;
    case 'deleteAccount':
      return `${w.alias}: deleteAccount(id: "${w.id}") { success id }`;
    case 'createConnectToken':
      return `${w.alias}: createConnectToken(input: { callbackUrl: "${CALLBACK}", email: "${w.email}" }) { token resourceUrl browserRedirectUrl${w.read ? ' connectToken { token email callbackUrl used }' : ''} }`;
    case 'deleteConnectToken':
      return `${w.alias}: deleteConnectToken(token: "${w.token}") { success token }`;
    case 'failing':
      return `${w.alias}: updateAccount(id: "${NOBODY}", input: { firstName: "Nobody" }) { success }`;
  }
}

const readText = (r: Read): string =>
  'account' in r ? `${r.alias}: account(id: "${r.account}") ${ACCOUNT_SELECTION}` : `${r.alias}: connectToken(token: "${r.token}") { token email }`;

const accountView = (id: string, a: AccountState) => ({ id, firstName: a.firstName, lastName: a.lastName, emailAddresses: [a.email] });
const tokenView = (token: string, t: TokenState) => ({ token, email: t.email });
const resourceOf = (r: Read): string => ('account' in r ? `GET /accounts/${r.account}` : `GET /connect_tokens/${r.token}`);

const copyWorld = (w: World): World => ({ accounts: new Map(w.accounts), tokens: new Map(w.tokens) });

/** A writer of one to three writes over the accounts and tokens it owns, maybe followed by one that fails. */
function drawWrites(random: Random, world: World, accounts: string[], tokens: string[], tag: string): Write[] {
  const live = copyWorld(world);
  const writes: Write[] = [];
  const count = 1 + random.int(3);
  for (let i = 0; i < count; i++) {
    const alias = `w${i}`;
    const liveAccounts = accounts.filter((a) => live.accounts.get(a));
    const liveTokens = tokens.filter((t) => live.tokens.get(t));
    const kinds: Array<Write['kind']> = ['createAccount', 'createConnectToken'];
    // Updates weigh more: two of one account in a row is how a write's invalidation of its operation's reads shows.
    if (liveAccounts.length > 0) kinds.push('updateAccount', 'updateAccount', 'updateAccount', 'deleteAccount');
    if (liveTokens.length > 0) kinds.push('deleteConnectToken');
    const kind = random.pick(kinds);
    if (kind === 'createAccount') writes.push({ kind, alias, email: `made-${tag}-${i}@example.com`, firstName: `Made${tag}${i}`, read: random.chance(0.5) });
    if (kind === 'createConnectToken') writes.push({ kind, alias, email: `token-${tag}-${i}@example.com`, read: random.chance(0.5) });
    if (kind === 'updateAccount') writes.push({ kind, alias, id: random.pick(liveAccounts), firstName: `Changed${tag}${i}`, read: random.chance(0.7) });
    if (kind === 'deleteAccount') {
      const id = random.pick(liveAccounts);
      live.accounts.set(id, null);
      writes.push({ kind, alias, id });
    }
    if (kind === 'deleteConnectToken') {
      const token = random.pick(liveTokens);
      live.tokens.set(token, null);
      writes.push({ kind, alias, token });
    }
  }
  if (random.chance(0.35)) writes.push({ kind: 'failing', alias: `w${count}` });
  return writes;
}

/**
 * What a writer's answer must be, its upstream requests, and the world after it, from the model and the ids and
 * tokens the upstream gave the resources it made (read from the answer: the model cannot know them before).
 * Throws on a mismatch.
 */
function checkWriter(op: Operation, response: GraphQLResponse, before: World): { calls: string[]; after: World } {
  const writes = op.writes!;
  const world = copyWorld(before);
  const calls: string[] = [];
  const data: Record<string, unknown> = {};
  const writesMade: Array<{ path: string[]; field: string; payload: Record<string, unknown> }> = [];
  const failing = writes.find((w) => w.kind === 'failing');
  const given = (alias: string, key: string): unknown => {
    const fromData = (response.body.data?.[alias] as Record<string, unknown> | undefined)?.[key];
    const made = response.body.extensions?.['writesMade'] as Array<{ path: string[]; payload: Record<string, unknown> }> | undefined;
    return fromData ?? made?.find((m) => m.path[0] === alias)?.payload[key];
  };
  for (const w of writes) {
    if (w.kind === 'failing') {
      calls.push(`POST /accounts/${NOBODY}`);
      break;
    }
    if (w.kind === 'createAccount') {
      const id = given(w.alias, 'id');
      assert.match(String(id), /^[0-9a-f]{24}$/, `${w.alias}: the new account's id`);
      const made = { email: w.email, firstName: w.firstName, lastName: null };
      world.accounts.set(id as string, made);
      calls.push('POST /accounts');
      if (w.read) calls.push(`GET /accounts/${id as string}`);
      const resourceUrl = given(w.alias, 'resourceUrl');
      assert.ok(String(resourceUrl).endsWith(`/accounts/${id as string}`), `${w.alias}: resourceUrl ${String(resourceUrl)}`);
      data[w.alias] = { id, resourceUrl, ...(w.read ? { account: accountView(id as string, made) } : {}) };
      writesMade.push({ path: [w.alias], field: w.kind, payload: { id, resourceUrl } });
    }
    if (w.kind === 'updateAccount') {
      const changed = { ...world.accounts.get(w.id)!, firstName: w.firstName };
      world.accounts.set(w.id, changed);
      calls.push(`POST /accounts/${w.id}`);
      if (w.read) calls.push(`GET /accounts/${w.id}`);
      data[w.alias] = { success: true, ...(w.read ? { account: accountView(w.id, changed) } : {}) };
      writesMade.push({ path: [w.alias], field: w.kind, payload: { success: true } });
    }
    if (w.kind === 'deleteAccount') {
      world.accounts.set(w.id, null);
      calls.push(`DELETE /accounts/${w.id}`);
      data[w.alias] = { success: true, id: w.id };
      writesMade.push({ path: [w.alias], field: w.kind, payload: { success: true, id: w.id } });
    }
    if (w.kind === 'createConnectToken') {
      const token = given(w.alias, 'token');
      assert.equal(typeof token, 'string', `${w.alias}: the new token`);
      world.tokens.set(token as string, { email: w.email });
      calls.push('POST /connect_tokens');
      if (w.read) calls.push(`GET /connect_tokens/${token as string}`);
      const payload = { token, resourceUrl: given(w.alias, 'resourceUrl'), browserRedirectUrl: given(w.alias, 'browserRedirectUrl') };
      assert.ok(String(payload.resourceUrl).endsWith(`/connect_tokens/${token as string}`), `${w.alias}: resourceUrl ${String(payload.resourceUrl)}`);
      assert.ok(String(payload.browserRedirectUrl).includes(token as string), `${w.alias}: browserRedirectUrl ${String(payload.browserRedirectUrl)}`);
      data[w.alias] = { ...payload, ...(w.read ? { connectToken: { token, email: w.email, callbackUrl: CALLBACK, used: false } } : {}) };
      writesMade.push({ path: [w.alias], field: w.kind, payload });
    }
    if (w.kind === 'deleteConnectToken') {
      world.tokens.set(w.token, null);
      calls.push(`DELETE /connect_tokens/${w.token}`);
      data[w.alias] = { success: true, token: w.token };
      writesMade.push({ path: [w.alias], field: w.kind, payload: { success: true, token: w.token } });
    }
  }
  assert.equal(response.status, 200, 'status');
  if (failing) {
    assert.deepEqual(errorsOf(response), [`${failing.alias} NOT_FOUND`], 'errors');
    assert.equal(response.body.data, null, 'data: a later field failed');
    assert.deepEqual(response.body.extensions?.['writesMade'], writesMade, 'extensions.writesMade: the writes made before the failure');
  } else {
    assert.deepEqual(errorsOf(response), [], 'errors');
    assert.deepEqual(response.body.data, data, 'data');
    assert.equal(response.body.extensions?.['writesMade'], undefined, 'no writesMade when no field failed');
  }
  return { calls, after: world };
}

/**
 * Checks a reader's answer: each alias as one of the states `histories` allows for its resource (all aliases of
 * one resource alike: one request, one answer), an unknown or deleted one null with NOT_FOUND. Its requests: one
 * GET a distinct resource.
 */
function checkReader(op: Operation, response: GraphQLResponse, histories: (read: Read) => unknown[]): string[] {
  const reads = op.reads!;
  assert.equal(response.status, 200, 'status');
  const data = response.body.data ?? {};
  const seen = new Map<string, unknown>();
  for (const r of reads) {
    const value = data[r.alias];
    const allowed = histories(r);
    assert.ok(
      allowed.some((a) => JSON.stringify(a) === JSON.stringify(value)),
      `${r.alias} (${resourceOf(r)}) answered ${JSON.stringify(value)}; the model allows ${JSON.stringify(allowed)}`,
    );
    const key = resourceOf(r);
    if (seen.has(key)) assert.deepEqual(value, seen.get(key), `${r.alias}: the same resource, read once, answers alike`);
    seen.set(key, value);
  }
  assert.deepEqual(errorsOf(response), reads.filter((r) => data[r.alias] === null).map((r) => `${r.alias} NOT_FOUND`).sort(), 'errors');
  return [...seen.keys()];
}

/** The view a read of `r` answers in `world`: null once deleted. */
function viewIn(world: World, r: Read): unknown {
  if ('account' in r) {
    const a = world.accounts.get(r.account);
    return a ? accountView(r.account, a) : null;
  }
  const t = world.tokens.get(r.token);
  return t ? tokenView(r.token, t) : null;
}

/** The states a resource takes through a writer's writes, in order, the one before them first. */
function historyOf(before: World, writes: readonly Write[], r: Read): unknown[] {
  const world = copyWorld(before);
  const states = [viewIn(world, r)];
  for (const w of writes) {
    if (w.kind === 'failing') break;
    if (w.kind === 'updateAccount') world.accounts.set(w.id, { ...world.accounts.get(w.id)!, firstName: w.firstName });
    if (w.kind === 'deleteAccount') world.accounts.set(w.id, null);
    if (w.kind === 'deleteConnectToken') world.tokens.set(w.token, null);
    states.push(viewIn(world, r));
  }
  return states;
}

const callOf = (r: EmulatorRequestLogEntry): string => `${r.method} ${r.path}`;
const listed = (operations: readonly Operation[]): string => operations.map((o) => `--- ${o.id}: ${o.text}`).join('\n');
const sorted = (calls: readonly string[]): string[] => [...calls].sort();

/**
 * The requests the gateway hands its upstream pool (undici's `Pool.dispatch`, watched until `restore()`), each
 * with its request id, and how many wait in the pool's queue for one of the MAX_IN_FLIGHT connections.
 */
function watchUpstreamPool(origin: string) {
  const dispatched: Array<{ call: string; requestId: string | undefined }> = [];
  let queued = () => 0;
  const dispatch = Pool.prototype.dispatch;
  Pool.prototype.dispatch = function (this: Pool, options, handler) {
    if (String(options.origin) === origin) {
      queued = () => this.stats.queued;
      const headers = options.headers as Record<string, string | undefined> | undefined;
      dispatched.push({ call: `${options.method} ${options.path}`, requestId: headers?.['x-request-id'] });
    }
    return dispatch.call(this, options, handler);
  };
  return { dispatched, queued: () => queued(), restore: () => void (Pool.prototype.dispatch = dispatch) };
}

describe('random concurrent writes beside reads, and clients leaving with their upstream requests queued', () => {
  const held = manualTimer();
  let stack: Stack & { lines: string[] };
  let adminToken: string;
  before(async () => {
    stack = await startLoggingStack('info', { emulator: { faultTimer: held.timer }, gateway: { auth: { jwtSecret: SECRET }, upstreamMaxInFlight: MAX_IN_FLIGHT } });
    stack.emulator.addFault({ path: /.*/, answerAfterMs: 1 });
    adminToken = await hsToken({ sub: 'writer', scope: 'contextio:admin' });
  });
  after(() => stack?.close());

  const send = (operation: Operation, signal?: AbortSignal): Promise<GraphQLResponse> => sendOperation(stack.gateway.url, operation, signal);

  const answerHeld = (): (() => void) => pumpAnswers(held);

  const logLines = (ids: readonly string[]) => operationLines(stack.lines, ids);

  /** A round's resources, made in the emulator's store: accounts with names, top-level unused tokens. */
  function seedRound(tag: string): World {
    const { store } = stack.emulator;
    const world: World = { accounts: new Map(), tokens: new Map() };
    for (let i = 0; i < ACCOUNTS; i++) {
      const email = `acct-${tag}-${i}@example.com`;
      const id = store.createAccount({ email, first_name: `First${i}`, last_name: `Last${i}` }).id;
      world.accounts.set(id, { email, firstName: `First${i}`, lastName: `Last${i}` });
    }
    for (let i = 0; i < TOKENS; i++) {
      const email = `tok-${tag}-${i}@example.com`;
      world.tokens.set(store.createConnectToken(null, { callback_url: CALLBACK, email }).token, { email });
    }
    return world;
  }

  const writerOf = (id: string, writes: Write[]): Operation => ({ id, token: adminToken, writes, text: `mutation { ${writes.map(writeText).join(' ')} }` });
  const readerOf = (id: string, reads: Read[]): Operation => ({ id, token: adminToken, reads, text: `{ ${reads.map(readText).join(' ')} }` });

  /** Writers owning disjoint parts of `world`, and readers of any of its resources. */
  function drawRound(random: Random, world: World, tag: string, writers: number, readers: number): { writers: Operation[]; readers: Operation[] } {
    const accounts = [...world.accounts.keys()];
    const tokens = [...world.tokens.keys()];
    const drawnWriters: Operation[] = [];
    for (let i = 0; i < writers; i++) {
      const mine = accounts.splice(0, 1 + random.int(2));
      const myTokens = tokens.splice(0, random.int(2));
      drawnWriters.push(writerOf(`${tag}-writer${i}`, drawWrites(random, world, mine, myTokens, `${tag}w${i}`)));
    }
    const drawnReaders: Operation[] = [];
    for (let i = 0; i < readers; i++) drawnReaders.push(readerOf(`${tag}-reader${i}`, drawReads(random, world)));
    return { writers: drawnWriters, readers: drawnReaders };
  }

  /** Two to five reads of the world's resources, some read twice under two aliases. */
  function drawReads(random: Random, world: World): Read[] {
    const resources: Array<{ account: string } | { token: string }> = [...[...world.accounts.keys()].map((account) => ({ account })), ...[...world.tokens.keys()].map((token) => ({ token }))];
    const picked: typeof resources = [];
    const count = 2 + random.int(4);
    for (let i = 0; i < count; i++) picked.push(i > 0 && random.chance(0.2) ? picked[random.int(i)]! : random.pick(resources));
    return picked.map((resource, i) => ({ alias: `r${i}`, ...resource }));
  }

  /** A reader of every resource of `world`, each once. */
  const readerOfAll = (id: string, world: World): Operation =>
    readerOf(id, [...[...world.accounts.keys()].map((account, i) => ({ alias: `a${i}`, account })), ...[...world.tokens.keys()].map((token, i) => ({ alias: `t${i}`, token }))]);

  /** The histories readers running beside `writers` may see: a writer's resources pass through its states. */
  function historiesBeside(world: World, writers: readonly Operation[]): (r: Read) => unknown[] {
    return (r) => {
      for (const w of writers) {
        const history = historyOf(world, w.writes!, r);
        if (new Set(history.map((h) => JSON.stringify(h))).size > 1) return history;
      }
      return [viewIn(world, r)];
    };
  }

  /** Checks one operation's own upstream requests (exactly the model's, each answered) and its log line. */
  function checkRequests(op: Operation, calls: readonly string[], requests: readonly EmulatorRequestLogEntry[], line: Record<string, unknown>): void {
    const mine = requests.filter((r) => r.requestId === op.id);
    assert.deepEqual(sorted(mine.map(callOf)), sorted(calls), 'its upstream requests are the model\'s, each once (a POST never twice)');
    assert.deepEqual(mine.filter((r) => r.status === 0).map(callOf), [], 'each of its upstream requests answered');
    assert.equal(line['upstreamRequests'], calls.length, 'its log line counts its upstream requests');
    assert.equal(line['status'], 200, 'its log line\'s status');
  }

  const withCase = (error: unknown, seed: number, round: string, operations: readonly Operation[]): never => {
    if (error instanceof Error) error.message = `seed ${seed}, ${round}:\n${listed(operations)}\n\n${error.message}`;
    throw error;
  };

  /** Runs `operations` at once with the upstream's answers let go as they come; their responses (by id), requests and log lines. */
  async function runAll(operations: readonly Operation[]): Promise<{ responses: Map<string, GraphQLResponse>; requests: EmulatorRequestLogEntry[]; lines: Map<string, Record<string, unknown>> }> {
    const { responses, requests, lines } = await runAtOnce(stack, held, operations);
    return { responses: new Map(operations.map((o, i) => [o.id, responses[i]!])), requests, lines };
  }

  /** Checks one operation, naming it in a failure. */
  function checking<T>(op: Operation, response: GraphQLResponse | undefined, check: () => T): T {
    try {
      return check();
    } catch (error) {
      if (error instanceof Error) error.message = `operation ${op.id} answered ${JSON.stringify(response?.body)}\n${error.message}`;
      throw error;
    }
  }

  it(`runs ${ROUNDS} rounds of ${WRITERS} writers beside ${READERS} readers of their resources, then readers of all (seed ${SEED})`, async () => {
    const random = new Random(SEED);
    for (let round = 0; round < ROUNDS; round++) {
      const world = seedRound(`r${round}`);
      const { writers, readers } = drawRound(random, world, `round${round}`, WRITERS, READERS);
      const operations = [...writers, ...readers];
      // Sent in a drawn order: which operation's requests queue first is the seed's.
      const order = random.shuffled(operations);
      let checked: Operation[] = order;
      try {
        const { responses, requests, lines } = await runAll(order);
        const final = copyWorld(world);
        let total = 0;
        for (const w of writers) {
          checking(w, responses.get(w.id), () => {
            const { calls, after: afterIt } = checkWriter(w, responses.get(w.id)!, world);
            checkRequests(w, calls, requests, lines.get(w.id)!);
            total += calls.length;
            // The writers own disjoint resources: each one's changes add up.
            for (const [id, a] of afterIt.accounts) if (a !== world.accounts.get(id)) final.accounts.set(id, a);
            for (const [t, s] of afterIt.tokens) if (s !== world.tokens.get(t)) final.tokens.set(t, s);
          });
        }
        const beside = historiesBeside(world, writers);
        for (const r of readers) {
          checking(r, responses.get(r.id), () => {
            const calls = checkReader(r, responses.get(r.id)!, beside);
            checkRequests(r, calls, requests, lines.get(r.id)!);
            total += calls.length;
          });
        }
        assert.equal(requests.length, total, 'the round\'s upstream requests are the model\'s, in all');
        // Every writer has answered: readers started now see every write, each with its own requests.
        const afterReaders = [readerOfAll(`round${round}-after0`, final), readerOfAll(`round${round}-after1`, final)];
        checked = afterReaders;
        const second = await runAll(afterReaders);
        for (const r of afterReaders) {
          checking(r, second.responses.get(r.id), () => {
            const calls = checkReader(r, second.responses.get(r.id)!, (read) => [viewIn(final, read)]);
            checkRequests(r, calls, second.requests, second.lines.get(r.id)!);
          });
        }
        assert.equal(second.requests.length, afterReaders.reduce((sum, r) => sum + new Set(r.reads!.map(resourceOf)).size, 0), 'the readers\' upstream requests, in all');
      } catch (error) {
        withCase(error, SEED, `round ${round}`, checked);
      }
    }
  });

  it(`leaves no trace, in ${CANCEL_ROUNDS} rounds, of ${CANCELLED} operations whose clients left with their upstream requests queued, and keeps all ${MAX_IN_FLIGHT} upstream slots (seed ${SEED + 1})`, async () => {
    const random = new Random(SEED + 1);
    for (let round = 0; round < CANCEL_ROUNDS; round++) await cancellationRound(random, `cancel${round}`);
  });

  /**
   * With the upstream slots held by a blocker, writers and readers queue in the gateway; CANCELLED of them are
   * left by their clients; then the answers are let go, and a last wave reads every resource of the round.
   */
  async function cancellationRound(random: Random, tag: string): Promise<void> {
    const world = seedRound(tag);
    // The blocker's reads take every upstream slot, held: what is sent after it waits in the gateway's queue.
    const [blocked0, blocked1] = [...world.accounts.keys()].slice(-MAX_IN_FLIGHT);
    const blocker = readerOf(`${tag}-blocker`, [
      { alias: 'b0', account: blocked0! },
      { alias: 'b1', account: blocked1! },
    ]);
    const rest: World = { accounts: new Map([...world.accounts].slice(0, -MAX_IN_FLIGHT)), tokens: world.tokens };
    const { writers, readers } = drawRound(random, rest, tag, 4, 4);
    const queued = [...writers, ...readers];
    // Those whose clients leave: writers and readers both, drawn.
    const leaving = new Set<Operation>();
    while (leaving.size < CANCELLED) leaving.add(random.pick(queued));
    const staying = queued.filter((o) => !leaving.has(o));
    // What one sends first: a writer its first write, a reader each resource it reads, all at once.
    const firstWave = (o: Operation): number => (o.writes ? 1 : new Set(o.reads!.map(resourceOf)).size);
    const pool = watchUpstreamPool(stack.emulator.origin);
    stack.emulator.clearRequests();
    let stop: (() => void) | undefined;
    try {
      const blocking = send(blocker);
      await eventually(() => held.waiting().length === MAX_IN_FLIGHT, { what: 'the blocker\'s reads held upstream' });
      const controllers = new Map([...leaving].map((o) => [o.id, new AbortController()]));
      const pending = queued.map((o) => send(o, controllers.get(o.id)?.signal).then((response) => response, () => 'aborted' as const));
      const waiting = queued.reduce((sum, o) => sum + firstWave(o), 0);
      await eventually(() => pool.queued() === waiting, { what: `the queued operations' ${waiting} first requests in the gateway's queue` });
      assert.equal(held.waiting().length, MAX_IN_FLIGHT, 'no more upstream requests out than the slots');
      for (const controller of controllers.values()) controller.abort();
      // Their operations end while their requests are still queued: nothing was let go yet.
      const leftLines = await logLines([...leaving].map((o) => o.id));
      for (const o of leaving) {
        const line = leftLines.get(o.id)!;
        assert.deepEqual(
          { clientWentAway: line['clientWentAway'], status: line['status'], upstreamRequests: line['upstreamRequests'] },
          { clientWentAway: true, status: null, upstreamRequests: 0 },
          `${o.id}: its log line says its client left, before any request of its went out`,
        );
      }
      stop = answerHeld();
      const answers = await Promise.all([blocking, ...pending]);
      stop();
      await eventually(() => stack.emulator.inFlight === 0, { what: 'the emulator idle' });
      const requests = [...stack.emulator.requests];
      const lines = await logLines([blocker, ...queued].map((o) => o.id));
      const answered = new Map([blocker, ...queued].map((o, i) => [o.id, answers[i]!]));
      for (const o of leaving) {
        assert.equal(answered.get(o.id), 'aborted', `${o.id}: its client got no answer`);
        assert.deepEqual(requests.filter((r) => r.requestId === o.id).map(callOf), [], `${o.id}: none of its queued requests reached the upstream`);
        assert.deepEqual(pool.dispatched.filter((d) => d.requestId === o.id).length, firstWave(o), `${o.id}: only its first requests were ever handed to the upstream pool`);
      }
      // The writers that stayed made their writes; those that left made none (their resources stay as they were).
      const final = copyWorld(world);
      let total = 0;
      const check = (o: Operation, body: () => string[]): void => {
        const response = answered.get(o.id);
        checking(o, response === 'aborted' ? undefined : response, () => {
          assert.notEqual(response, 'aborted', 'its client stayed: it is answered');
          const calls = body();
          checkRequests(o, calls, requests, lines.get(o.id)!);
          total += calls.length;
        });
      };
      check(blocker, () => checkReader(blocker, answered.get(blocker.id) as GraphQLResponse, (r) => [viewIn(world, r)]));
      const stayingWriters = writers.filter((w) => !leaving.has(w));
      for (const w of stayingWriters) {
        check(w, () => {
          const { calls, after: afterIt } = checkWriter(w, answered.get(w.id) as GraphQLResponse, world);
          for (const [id, a] of afterIt.accounts) if (a !== world.accounts.get(id)) final.accounts.set(id, a);
          for (const [t, s] of afterIt.tokens) if (s !== world.tokens.get(t)) final.tokens.set(t, s);
          return calls;
        });
      }
      const beside = historiesBeside(world, stayingWriters);
      for (const r of readers.filter((o) => staying.includes(o))) check(r, () => checkReader(r, answered.get(r.id) as GraphQLResponse, beside));
      assert.equal(requests.length, total, 'the upstream requests made are the model\'s: the blocker\'s and those of the operations that stayed');
      assert.equal(
        [...lines.values()].reduce((sum, line) => sum + (line['upstreamRequests'] as number), 0),
        total,
        'the log lines count them all',
      );

      // Nothing of theirs holds a slot: the gateway serves, and a last wave has every upstream slot at once.
      const health = await fetch(new URL('/healthz', stack.gateway.url), { signal: AbortSignal.timeout(30_000) });
      assert.equal(health.status, 200, '/healthz');
      await health.arrayBuffer();
      const last = [readerOfAll(`${tag}-last0`, final), readerOfAll(`${tag}-last1`, final)];
      stack.emulator.clearRequests();
      const dispatchedBefore = pool.dispatched.length;
      const lastPending = last.map((o) => send(o));
      const lastWave = last.reduce((sum, o) => sum + firstWave(o), 0);
      await eventually(() => pool.dispatched.length - dispatchedBefore === lastWave, { what: 'the last wave\'s requests handed to the upstream pool' });
      await eventually(() => held.waiting().length === MAX_IN_FLIGHT, { what: `all ${MAX_IN_FLIGHT} upstream slots in use by the last wave` });
      assert.equal(pool.queued(), lastWave - MAX_IN_FLIGHT, 'the rest of the last wave queued behind them');
      stop = answerHeld();
      const lastAnswers = await Promise.all(lastPending);
      stop();
      await eventually(() => stack.emulator.inFlight === 0, { what: 'the emulator idle' });
      const lastLines = await logLines(last.map((o) => o.id));
      const lastRequests = [...stack.emulator.requests];
      last.forEach((o, i) =>
        checking(o, lastAnswers[i], () => {
          const calls = checkReader(o, lastAnswers[i]!, (r) => [viewIn(final, r)]);
          checkRequests(o, calls, lastRequests, lastLines.get(o.id)!);
        }),
      );
      assert.equal(lastRequests.length, lastWave, 'the last wave\'s upstream requests, in all');
    } catch (error) {
      withCase(error, SEED + 1, `the cancellation case, ${tag}`, [blocker, ...queued].map((o) => (leaving.has(o) ? { ...o, id: `${o.id} (its client leaves)` } : o)));
    } finally {
      stop?.();
      held.fireAll();
      pool.restore();
    }
  }
});
