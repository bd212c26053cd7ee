import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manualTimer } from '../helpers/clock.ts';
import { costBound, depth, errorsOf, Expecter, Generator, kept, render, seedWorld, sortedQuery, type Expectation } from '../helpers/operation-model.ts';
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
