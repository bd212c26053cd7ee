import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import type { EmulatorRequestLogEntry } from '../../src/emulator/server.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { operationLines, pumpAnswers, runAtOnce, sendOperation } from '../helpers/held-operations.ts';
import {
  costBound,
  depth,
  errorsOf,
  Expecter,
  drawClaimedAccounts,
  Generator,
  kept,
  render,
  seedWorld,
  sortedQuery,
  type Access,
  type Expectation,
  type World,
} from '../helpers/operation-model.ts';
import { Random } from '../helpers/random.ts';
import { startLoggingStack, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/*
 * Isolation under concurrency: operations run at once on one gateway share nothing but the upstream. Each round
 * draws random queries (test/helpers/operation-model.ts) of random callers (admins, and callers whose `accounts`
 * claim names some of the accounts), sends them all at once over HTTP, and lets the upstream answer them
 * interleaved. Then, for each operation alone:
 *   - its answer (data and errors) is what the model says for that operation run alone: no other operation's
 *     per-request loaders, caches or access leaked into it;
 *   - the upstream requests carrying its request id (the gateway sends it upstream as X-Request-Id) are the ones
 *     the model says it needs, each once: its own resources, fetched by itself (bench/README.md: no sharing
 *     between operations, deliberately);
 *   - its `operation` log line counts exactly those requests: no other operation's.
 * And for the round: every upstream request, counted at the emulator once idle, is some operation's, and they
 * add up to the log lines' counts. A last round cancels a few operations (their clients leave while their
 * requests are held upstream): the others are answered as alone, and the cancelled ones' held requests end
 * unanswered (cancelled), none answered into another operation, nor made after.
 *
 * Writes beside reads, and clients leaving while their requests wait in the gateway's queue: the sibling
 * random-concurrency-writes.test.ts.
 *
 * RANDOM_CONCURRENCY_SEED=<n> explores another seed, RANDOM_CONCURRENCY_ROUNDS=<n> more rounds; a failure names
 * the seed, the round, every operation of the round and the mismatching answer.
 */

const SEED = Number(process.env['RANDOM_CONCURRENCY_SEED'] ?? 20_261_206);
const ROUNDS = Number(process.env['RANDOM_CONCURRENCY_ROUNDS'] ?? 10);
const OPERATIONS = 20;
const CANCELLED = 3;
/** The gateway's upstream requests in flight at most: the default, more than a round's first requests. */
const MAX_IN_FLIGHT = 256;

interface Operation {
  /** The request id it is sent with, which the gateway logs and passes upstream. */
  id: string;
  caller: string;
  token: string;
  access: Access;
  text: string;
  variables: Record<string, unknown>;
  expected: Expectation;
}

/** A random caller over `accountIds`: an admin, or one with some accounts in its claim (none, or an unknown one beside them). */
async function drawCaller(random: Random, accountIds: readonly string[], sub: string): Promise<{ caller: string; token: string; access: Access }> {
  if (random.chance(0.4)) {
    const claims: JWTPayload = { sub, scope: 'contextio:admin' };
    return { caller: `admin ${JSON.stringify(claims)}`, token: await hsToken(claims), access: { admin: true, accounts: new Set() } };
  }
  const accounts = drawClaimedAccounts(random, accountIds);
  const claims: JWTPayload = { sub, accounts };
  return { caller: `scoped ${JSON.stringify(claims)}`, token: await hsToken(claims), access: { admin: false, accounts: new Set(accounts) } };
}

/** One operation of a caller, within the gateway's limits, and its expectation run alone. */
async function drawOperation(random: Random, generator: Generator, world: World, id: string): Promise<Operation> {
  // `sub` is the operation's own: no caller's budget of reads runs out over the run.
  const { caller, token, access } = await drawCaller(random, world.accounts.map((a) => a.id), id);
  const options = { usedTokenRoots: random.chance(0.3) ? 1 : 0, adminRoots: access.admin };
  let drawn = generator.operation(options);
  let expected = new Expecter(world, access).run(kept(drawn.fields));
  while (costBound(drawn.fields) > 6_000 || depth(drawn.fields) > 11 || expected.required.length + expected.optional.length > 40) {
    drawn = generator.operation(options);
    expected = new Expecter(world, access).run(kept(drawn.fields));
  }
  const text = render(drawn.fields, drawn.variables, random);
  return { id, caller, token, access, text, variables: Object.fromEntries(drawn.variables.map((v) => [v.name, v.value])), expected };
}

const callOf = (r: EmulatorRequestLogEntry): string => `${r.method} ${r.path}${r.query ? `?${sortedQuery(new URLSearchParams(r.query))}` : ''}`;

/** The round's operations, for a failure's message. */
const listed = (operations: readonly Operation[]): string =>
  operations.map((o) => `--- ${o.id}, ${o.caller}, variables ${JSON.stringify(o.variables)}:\n${o.text}`).join('\n');

describe('random concurrent operations: each answered, and its upstream requests made and logged, as if it ran alone', () => {
  // Every upstream answer is held until the test lets it go (the emulator's fault waits run on this timer): the
  // round's requests are in flight together, and a cancelled operation's are still unanswered when it leaves.
  const held = manualTimer();
  let stack: Stack & { lines: string[] };
  let world: World;
  before(async () => {
    stack = await startLoggingStack('info', { emulator: { faultTimer: held.timer }, gateway: { auth: { jwtSecret: SECRET }, upstreamMaxInFlight: MAX_IN_FLIGHT } });
    world = seedWorld(stack.emulator.store);
    stack.emulator.addFault({ path: /.*/, answerAfterMs: 1 });
  });
  after(() => stack?.close());

  const send = (operation: Operation, signal?: AbortSignal): Promise<GraphQLResponse> => sendOperation(stack.gateway.url, operation, signal);

  const logLines = (ids: readonly string[]) => operationLines(stack.lines, ids);

  const answerHeld = (): (() => void) => pumpAnswers(held);

  /** Checks one answered operation against its expectation, its own upstream requests and its log line. */
  function checkAnswered(operation: Operation, response: GraphQLResponse, requests: readonly EmulatorRequestLogEntry[], line: Record<string, unknown>): void {
    const { expected } = operation;
    try {
      assert.equal(response.status, 200, 'status');
      assert.deepEqual(errorsOf(response), expected.errors, 'errors');
      assert.deepEqual(response.body.data, expected.data, 'data');
      const mine = requests.filter((r) => r.requestId === operation.id);
      const made = mine.map(callOf);
      const counted = new Map<string, number>();
      for (const call of made) counted.set(call, (counted.get(call) ?? 0) + 1);
      assert.deepEqual(
        {
          missing: expected.required.filter((r) => !counted.has(r)),
          unexpected: [...counted.keys()].filter((c) => !expected.required.includes(c) && !expected.optional.includes(c)).sort(),
          repeated: [...counted].filter(([, n]) => n > 1).map(([c]) => c),
          unanswered: mine.filter((r) => r.status === 0).map(callOf),
        },
        { missing: [], unexpected: [], repeated: [], unanswered: [] },
        `its upstream requests: ${JSON.stringify(made.sort())}; required: ${JSON.stringify(expected.required)}; optional: ${JSON.stringify(expected.optional)}`,
      );
      assert.equal(line['upstreamRequests'], mine.length, 'the log line counts its own upstream requests');
      if (expected.optional.length === 0) assert.equal(line['upstreamRequests'], expected.required.length, 'the log line counts the requests it needs');
    } catch (error) {
      if (error instanceof Error) error.message = `operation ${operation.id} answered ${JSON.stringify(response.body)}\n${error.message}`;
      throw error;
    }
  }

  /** The round's checks over all the upstream requests: each of one of its operations, adding up to the log lines'. */
  function checkRound(operations: readonly Operation[], requests: readonly EmulatorRequestLogEntry[], lines: Map<string, Record<string, unknown>>): void {
    const ids = new Set(operations.map((o) => o.id));
    assert.deepEqual(requests.filter((r) => !ids.has(r.requestId ?? '')).map((r) => `${callOf(r)} (${r.requestId})`), [], 'upstream requests of no operation of the round');
    const logged = [...lines.values()].reduce((sum, line) => sum + (line['upstreamRequests'] as number), 0);
    assert.equal(requests.length, logged, 'the upstream requests made are those the log lines count');
    const required = operations.reduce((sum, o) => sum + o.expected.required.length, 0);
    const optional = operations.reduce((sum, o) => sum + o.expected.optional.length, 0);
    assert.ok(required <= requests.length && requests.length <= required + optional, `${requests.length} upstream requests, ${required} needed and ${optional} more allowed`);
  }

  const withRound = (error: unknown, seed: number, round: number, operations: readonly Operation[]): never => {
    if (error instanceof Error) error.message = `seed ${seed}, round ${round}:\n${listed(operations)}\n\n${error.message}`;
    throw error;
  };

  it(`runs ${ROUNDS} rounds of ${OPERATIONS} random operations at once (seed ${SEED})`, async () => {
    const random = new Random(SEED);
    const generator = new Generator(random, world);
    for (let round = 0; round < ROUNDS; round++) {
      const operations: Operation[] = [];
      for (let i = 0; i < OPERATIONS; i++) operations.push(await drawOperation(random, generator, world, `round${round}-op${i}`));
      try {
        const { responses, requests, lines } = await runAtOnce(stack, held, operations);
        operations.forEach((o, i) => checkAnswered(o, responses[i]!, requests, lines.get(o.id)!));
        checkRound(operations, requests, lines);
      } catch (error) {
        withRound(error, SEED, round, operations);
      }
    }
  });

  it(`runs ${OPERATIONS} random operations at once, ${CANCELLED} of them cancelled while their upstream requests are held (seed ${SEED + 1})`, async () => {
    const random = new Random(SEED + 1);
    const generator = new Generator(random, world);
    const operations: Operation[] = [];
    for (let i = 0; i < OPERATIONS; i++) operations.push(await drawOperation(random, generator, world, `cancel-op${i}`));
    // Those cancelled: operations whose first requests are known (no load of theirs may go either way) and
    // whose answers the others' follow, so that they are in flight when their clients leave.
    const firstWave = (o: Operation): Set<string> => o.expected.waves?.(new Set()) ?? new Set();
    const cancelled = operations.filter((o) => firstWave(o).size > 0).slice(0, CANCELLED);
    const others = operations.filter((o) => !cancelled.includes(o));
    assert.equal(cancelled.length, CANCELLED, 'enough operations to cancel');
    stack.emulator.clearRequests();
    const controllers = new Map(cancelled.map((o) => [o.id, new AbortController()]));
    let stop: (() => void) | undefined;
    try {
      const leaving = cancelled.map((o) => send(o, controllers.get(o.id)!.signal).then(() => 'answered', () => 'aborted'));
      const theirs = cancelled.reduce((sum, o) => sum + firstWave(o).size, 0);
      await eventually(() => held.waiting().length >= theirs, { what: `the cancelled operations' ${theirs} first requests held upstream` });
      assert.equal(held.waiting().length, theirs, 'only their first requests are out before an answer');
      const pending = others.map((o) => send(o));
      // The others' first requests held beside them, where they are known (as many as the gateway sends at once).
      const alongside = Math.min(MAX_IN_FLIGHT, theirs + others.reduce((sum, o) => sum + firstWave(o).size, 0));
      await eventually(() => held.waiting().length >= alongside, { what: 'the others\' first requests held too' });
      for (const controller of controllers.values()) controller.abort();
      assert.deepEqual(await Promise.all(leaving), cancelled.map(() => 'aborted'), 'the cancelled operations got no answer');
      // Their held requests end, unanswered, before any answer is let go.
      const cancelledIds = new Set(cancelled.map((o) => o.id));
      await eventually(() => stack.emulator.requests.filter((r) => cancelledIds.has(r.requestId ?? '')).length >= theirs, {
        what: 'the cancelled operations\' upstream requests ended',
      });
      stop = answerHeld();
      const responses = await Promise.all(pending);
      stop();
      await eventually(() => stack.emulator.inFlight === 0, { what: 'the emulator idle' });
      const requests = [...stack.emulator.requests];
      const lines = await logLines(operations.map((o) => o.id));
      others.forEach((o, i) => checkAnswered(o, responses[i]!, requests, lines.get(o.id)!));
      for (const o of cancelled) {
        const mine = requests.filter((r) => r.requestId === o.id);
        assert.deepEqual(
          mine.map((r) => `${callOf(r)} ${r.status}`).sort(),
          [...firstWave(o)].map((call) => `${call} 0`).sort(),
          `${o.id}: its first requests, each ended unanswered, and none after`,
        );
        const line = lines.get(o.id)!;
        assert.equal(line['clientWentAway'], true, `${o.id}: logged as left`);
        assert.equal(line['upstreamRequests'], mine.length, `${o.id}: the log line counts its own upstream requests`);
      }
      const logged = [...lines.values()].reduce((sum, line) => sum + (line['upstreamRequests'] as number), 0);
      assert.equal(requests.length, logged, 'the upstream requests made are those the log lines count');
    } catch (error) {
      withRound(error, SEED + 1, 0, operations);
    } finally {
      stop?.();
      held.fireAll();
    }
  });
});
