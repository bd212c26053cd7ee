import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { EgressProxy } from '../../src/upstream/egress-proxy.ts';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { createLogger } from '../../src/logging/logger.ts';
import type { Gateway } from '../../src/http/server.ts';
import type { WaitTimer } from '../../src/support/wait-timer.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, forwardWhole, listenOnLoopback, readAll } from '../helpers/net.ts';
import { Random } from '../helpers/random.ts';
import { startTestGateway } from '../helpers/stack.ts';

/*
 * What random-upstream.test.ts leaves out, over seeded random operations: behaviours that do not belong to one
 * call but meet its siblings and the operations after it.
 *
 * 1. A refused connection for some of an operation's calls (the nested ones, which start once the page of accounts
 *    they hang from is answered: the front then stops listening, or the egress proxy the gateway goes through
 *    answers their tunnels 502), beside healthy siblings. docs/operations.md: a connection that failed is retried (a read: 3
 *    attempts, each asking the proxy for a tunnel), and answers `UPSTREAM_ERROR` with `extensions.upstream.status`
 *    null (no answer arrived); docs/limits.md: a request that never went out (a connection refused) spends nothing
 *    of the operation's ceiling of requests (so each refused call makes its 3 attempts, however many of them pass
 *    it), nor of the `operation` log line's `upstreamRequests` ("every request sent to Context.IO").
 * 2. A 429 whose Retry-After pauses the key (docs/operations.md, retries and the rate limit): a sibling whose request was out already
 *    is answered as ever, but its retry meets the pause: it waits when the pause ends with more than a quarter of
 *    its UPSTREAM_TIMEOUT_MS to go, else it fails at once, with its earlier failure (a 502) rather than
 *    `RATE_LIMITED`; a call of a later operation that starts during the pause waits, or fails at once with
 *    `RATE_LIMITED`, `retryAfter` the seconds left, and no request sent.
 * 3. The circuit breaker (BREAKER_FAILURE_THRESHOLD, BREAKER_COOLDOWN_MS): consecutive "upstream down" failures
 *    (here a 502, 504 or a proxy's 503, on every attempt of a read) open it, a call retried counting once when it
 *    fails for good, none when the upstream answered another call with a success while it was out (the front
 *    answers an operation's healthy calls before its failing ones, so that is always so); while it is open every
 *    call fails at once (`UPSTREAM_ERROR`, nothing sent: the `operation` line's `breakerRefusals`); after the
 *    cooldown one trial is let through, the others refused while it is out; its success closes the circuit, its
 *    failure reopens it for another cooldown.
 *
 * Time: as in random-upstream.test.ts, the client's waits go through `upstreamWaitTimer`, which fires at once and
 * moves `performance.now()` (the clock of the client's deadlines, pause and breaker) on by a Retry-After's or a
 * pause's length; the test moves that clock on between operations too (past a pause, a cooldown, or not). No
 * case sleeps.
 *
 * RANDOM_BREAKER_SEED=<n> explores another seed, RANDOM_BREAKER_CASES=<n> runs more cases of each part,
 * RANDOM_BREAKER_ONLY=<i> replays one case; a failure prints the seed, the case, its operations and what the
 * upstream was scripted to do.
 */

const SEED = Number(process.env['RANDOM_BREAKER_SEED'] ?? 20_261_206);
const CASES = Number(process.env['RANDOM_BREAKER_CASES'] ?? 40);
const ONLY = process.env['RANDOM_BREAKER_ONLY'] === undefined ? undefined : Number(process.env['RANDOM_BREAKER_ONLY']);

const TIMEOUT_MS = 3_000;
/** README and docs/operations.md: "up to 3 attempts" for a read. */
const MAX_ATTEMPTS = 3;
const COOLDOWN_MS = 5_000;
const CONSUMER_SECRET = 'breaker-consumer-secret-4Kd8pQ2w';
const UNKNOWN_ACCOUNT = '0123456789abcdef01234567';

type Behaviour =
  | { kind: 'normal' }
  /** An answer of an upstream that looks down: a proxy's 502, 504 or 503 (not the API's own body). */
  | { kind: 'down'; status: 502 | 504 | 503 }
  | { kind: '429'; retryAfter: string }
  /** A 200 in a coding the gateway does not read: the upstream answering (docs/configuration.md, BREAKER_FAILURE_THRESHOLD), not retried. */
  | { kind: 'unread' };

const describeBehaviour = (b: Behaviour) => (b.kind === 'normal' ? 'normal' : b.kind === 'down' ? `${b.status}` : b.kind === 'unread' ? '200 in an unknown coding' : `429 Retry-After: ${b.retryAfter}`);

interface Field {
  alias: string;
  text: string;
  method: 'GET';
  path: string;
  /** Its nested call, if it selects the account's connect tokens. */
  nested?: string;
}

interface Expected {
  code: string;
  status: number | null;
  retryAfter?: number;
}

// ---- the front: the emulator's answers, or the scripted ones -----------------------------------------------------

interface Front {
  port: number;
  url: string;
  script: Map<string, Behaviour[]>;
  received: string[];
  /** Requests whose answer waits for `release` (by key). */
  hold: (key: string) => boolean;
  /** Answers with `Connection: close`, so that every request opens a connection of its own. */
  closeConnections: boolean;
  stopListening(): Promise<void>;
  listen(): Promise<void>;
  close(): Promise<void>;
  held: Array<{ key: string; answer: () => void }>;
  onRequest?: () => void;
}

async function startFront(emulator: Emulator): Promise<Front> {
  let closed: Promise<unknown> = Promise.resolve();
  const front: Front = {
    port: 0,
    url: '',
    script: new Map(),
    received: [],
    hold: () => false,
    closeConnections: false,
    held: [],
    stopListening: async () => {
      closed = once(server, 'close');
      server.close();
      server.closeIdleConnections();
    },
    listen: async () => {
      if (server.listening) return;
      // Closed only once its last connection is: the operation's are, each answer having closed its own.
      server.closeAllConnections();
      await closed;
      server.listen(front.port, '127.0.0.1');
      await once(server, 'listening');
    },
    // Listening or not (stopListening closed it, its connections perhaps still open), closed once they are cut.
    close: () => closeServer(server),
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://upstream').pathname.replace(/^\/2\.0/, '');
    const key = `${String(req.headers['x-request-id'])} ${req.method} ${path}`;
    front.received.push(key);
    const behaviour = front.script.get(key)?.shift() ?? { kind: 'normal' };
    readAll(req)
      .then(async (body) => {
        const answer = await answerOf(emulator, behaviour, req, body);
        const send = () => play(res, answer, front.closeConnections);
        if (front.hold(key)) front.held.push({ key, answer: send });
        else send();
        front.onRequest?.();
      })
      .catch(() => req.socket.destroy());
  });
  server.keepAliveTimeout = 120_000;
  front.port = await listenOnLoopback(server);
  front.url = `http://127.0.0.1:${front.port}/2.0`;
  return front;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function answerOf(emulator: Emulator, b: Behaviour, req: IncomingMessage, body: Buffer): Promise<Answer> {
  switch (b.kind) {
    case 'normal': {
      const answer = await forwardWhole(emulator.origin, req, body);
      return {
        status: answer.status,
        headers: { 'content-type': 'application/json' },
        body: answer.body,
      };
    }
    case 'down':
      return {
        status: b.status,
        headers: { 'content-type': 'text/html' },
        body: Buffer.from(`<html><body>${b.status}</body></html>`),
      };
    case '429':
      return {
        status: 429,
        headers: {
          'content-type': 'application/json',
          'retry-after': b.retryAfter,
        },
        body: Buffer.from('{"type":"error","value":"rate limited"}'),
      };
    case 'unread':
      return { status: 200, headers: { 'content-type': 'application/json', 'content-encoding': 'x-unheard-of' }, body: Buffer.from('{}') };
  }
}

function play(res: ServerResponse, answer: Answer, closeConnection: boolean): void {
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-length': answer.body.length,
    ...(closeConnection ? { connection: 'close' } : {}),
  });
  res.end(answer.body);
}

/**
 * An egress proxy opening CONNECT tunnels to the front; while `refusing`, it answers each 502 (it could not reach
 * the upstream), counting them: a connection refused before the gateway's request went out.
 */
interface Tunnels {
  origin: string;
  refusing: boolean;
  refused: number;
  close(): Promise<void>;
}

async function startTunnels(front: Front): Promise<Tunnels> {
  const server = createServer((_, res) => res.writeHead(405).end());
  const tunnels: Tunnels = {
    origin: '',
    refusing: false,
    refused: 0,
    close: () => closeServer(server),
  };
  server.on('connect', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    if (tunnels.refusing) {
      tunnels.refused++;
      socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    const onward = connect(front.port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      onward.write(head);
      onward.pipe(socket);
      socket.pipe(onward);
    });
    onward.on('error', () => socket.destroy());
    socket.on('close', () => onward.destroy());
  });
  tunnels.origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  return tunnels;
}

// ---- the run -----------------------------------------------------------------------------------------------------

interface GraphQLAnswer {
  data?: Record<string, unknown> | null;
  errors?: Array<{
    message: string;
    path?: Array<string | number>;
    extensions?: Record<string, unknown>;
  }>;
}

describe('a gateway meeting refused connections, a rate-limit pause and its circuit breaker, at random', () => {
  let emulator: Emulator;
  let front: Front;
  let tunnels: Tunnels;
  const logLines: string[] = [];
  const realNow = performance.now.bind(performance);
  let clockAhead = 0;
  /** The waits the client asked for (backoffs, Retry-Afters, pauses), in ms. */
  const waits: number[] = [];
  const accounts: string[] = [];
  /** Each account's one connect token. */
  const tokens = new Map<string, string>();
  const waitTimer: WaitTimer = (callback, ms) => {
    waits.push(ms);
    // A Retry-After's or a pause's wait (a second or more) moves the clock on by its length, as if waited out; a
    // backoff (300 ms at most) does not: concurrent calls' backoffs, added up, would eat into each one's deadline.
    if (ms > 250) clockAhead += ms;
    const immediate = setImmediate(callback);
    return () => clearImmediate(immediate);
  };
  const logger = createLogger('debug', (line) => logLines.push(line));

  before(async () => {
    emulator = await startEmulator({
      port: 0,
      seed: 'none',
      consumerSecret: CONSUMER_SECRET,
    });
    front = await startFront(emulator);
    tunnels = await startTunnels(front);
    performance.now = () => realNow() + clockAhead;
    for (const name of ['ada', 'bob', 'cy', 'dee']) accounts.push(emulator.store.createAccount({ email: `${name}@example.com` }).id);
    for (const id of accounts)
      tokens.set(
        id,
        emulator.store.createConnectToken(id, {
          callback_url: 'https://app.example.com/cb',
        }).token,
      );
  });

  after(async () => {
    await tunnels?.close();
    await front?.close();
    await emulator?.close();
    performance.now = realNow;
  });

  const startGateway = (options: Parameters<typeof startTestGateway>[1], proxy?: EgressProxy) =>
    startTestGateway(
      {
        baseUrl: front.url,
        consumerKey: emulator.consumerKey,
        consumerSecret: CONSUMER_SECRET,
        proxy,
      },
      {
        logger,
        upstreamWaitTimer: waitTimer,
        upstreamTimeoutMs: TIMEOUT_MS,
        ...options,
      },
    );

  /** Posts `query` as request `requestId`; the answer, and its `operation` log line once written. */
  async function run(
    gateway: Gateway,
    requestId: string,
    query: string,
  ): Promise<{
    answer: GraphQLAnswer;
    text: string;
    line: Record<string, unknown>;
  }> {
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': requestId,
      },
      body: JSON.stringify({ query }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    const find = () => logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['message'] === 'operation' && l['requestId'] === requestId);
    await eventually(() => find() !== undefined, {
      timeoutMs: 10_000,
      what: `the operation line of ${requestId}`,
    });
    return { answer: JSON.parse(text) as GraphQLAnswer, text, line: find()! };
  }

  const accountField = (alias: string, id: string, nested: boolean): Field => ({
    alias,
    text: `${alias}: account(id: "${id}") { id${nested ? ' connectTokens { token }' : ''} }`,
    method: 'GET',
    path: `/accounts/${id}`,
    ...(nested ? { nested: `/accounts/${id}/connect_tokens` } : {}),
  });

  /** An error's code, `extensions.upstream` and `retryAfter` against the model's. */
  function checkError(answer: GraphQLAnswer, path: Array<string | number>, method: string, upstreamPath: string, expected: Expected): void {
    const error = answer.errors?.find((e) => JSON.stringify(e.path) === JSON.stringify(path));
    assert.ok(error, `an error at ${path.join('.')}`);
    assert.equal(error.extensions?.['code'], expected.code, `${path.join('.')}'s code (${error.message})`);
    assert.deepEqual(error.extensions?.['upstream'], { status: expected.status, method, path: upstreamPath }, `${path.join('.')}'s extensions.upstream`);
    if (expected.retryAfter !== undefined) {
      const told = error.extensions?.['retryAfter'] as number;
      // The pause's end is read against the clock as the call starts: up to a second may have gone by.
      assert.ok(told === expected.retryAfter || told === expected.retryAfter - 1, `${path.join('.')}'s retryAfter ${told}, expected ${expected.retryAfter}`);
    }
  }

  /**
   * Runs `body` for CASES cases of `part`, reporting a failure with what replays it; where `covered` is given,
   * more (up to four times as many) until it holds: a seed whose first cases happen not to reach some state of
   * the model goes on until they do. `sequential`: each case starts from the state the ones before it left (the
   * breaker's), so replaying one runs those before it too.
   */
  async function cases(part: string, body: (index: number, random: Random, report: string[]) => Promise<void>, sequential = false, covered?: () => boolean): Promise<void> {
    for (let index = 0; index < CASES || (covered !== undefined && index < 4 * CASES && !covered()); index++) {
      if (ONLY !== undefined && (sequential ? index > ONLY : index !== ONLY)) continue;
      const random = new Random((SEED ^ Math.imul(index + 1, 0x9e3779b1) ^ part.length) >>> 0);
      const report: string[] = [];
      const linesBefore = logLines.length;
      clockAhead += 2 * 3_600_000; // any pause of an earlier case is over
      try {
        await body(index, random, report);
      } catch (error) {
        throw new Error(
          [
            `${part}: seed ${SEED}, case ${index} (RANDOM_BREAKER_SEED=${SEED} RANDOM_BREAKER_ONLY=${index})`,
            ...report,
            `received: ${front.received.join(', ')}`,
            'log:',
            ...logLines.slice(linesBefore).map((l) => `  ${l.trim().slice(0, 400)}`),
            String((error as Error).message),
          ].join('\n'),
          { cause: error },
        );
      } finally {
        front.script.clear();
        front.held.length = 0;
        front.hold = () => false;
        front.onRequest = undefined;
      }
    }
  }

  it(`fails the calls whose connection is refused, retried, beside healthy siblings, spending none of the operation's requests (seed ${SEED})`, async () => {
    // The estimated cost of a query, as a gateway whose MAX_QUERY_COST is 1 reports it refusing it.
    const costGateway = await startGateway({ operationLimits: { maxCost: 1 } });
    const costOf = async (query: string) => {
      const refusal = (await (
        await fetch(costGateway.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query }),
        })
      ).json()) as GraphQLAnswer;
      return refusal.errors?.[0]?.extensions?.['value'] as number;
    };
    try {
      await cases('refused connections', async (index, random, report) => {
        const requestId = `refused-${index}`;
        // A page of accounts, with up to three connect tokens read under each (its own, or one it does not have):
        // nested calls, which can only start once the page is answered (the accounts' ids come with it); beside
        // it, up to two accounts read at the root.
        const listed = accounts.slice(0, 1 + random.int(accounts.length));
        const nested = listed.map(() => Array.from({ length: random.int(4) }, (_, i) => i));
        const tokenOf = (id: string, i: number, n: number) => (i === 0 && n % 3 !== 2 ? tokens.get(id)! : `nosuchtoken${index}x${i}`);
        const siblings = accounts.filter(() => random.chance(0.3)).slice(0, 2);
        const query = `{ list: accounts(first: ${listed.length}) { nodes { id ${nested
          .map((list, n) => list.map((i) => `t${n}_${i}: connectToken(token: "${tokenOf(listed[n]!, i, index + n)}") { token }`).join(' '))
          .join(' ')} } } ${siblings.map((id, r) => `s${r}: account(id: "${id}") { id }`).join(' ')} }`;
        const refuse = random.chance(0.8);
        // Refused by the upstream's port closed (its attempts then leave no trace but their backoffs), or by an
        // egress proxy answering the tunnel 502 (each attempt a CONNECT it counts).
        const viaProxy = random.chance(0.5);
        // Every node selects every alias; each resolves for its own account, the others' tokens of it included.
        const nestedCalls = listed.flatMap((id) =>
          nested.flatMap((list, n) =>
            list.map((i) => ({
              id,
              alias: `t${n}_${i}`,
              token: tokenOf(listed[n]!, i, index + n),
            })),
          ),
        );
        const cost = await costOf(query);
        // The least MAX_QUERY_COST that lets the operation run: its ceiling of requests is twice that ÷ 10
        // (docs/limits.md), which the refused attempts, were they counted, may pass.
        const ceiling = 2 * Math.ceil(cost / 10);
        const rootKeys = new Set([`${requestId} GET /accounts`, ...siblings.map((id) => `${requestId} GET /accounts/${id}`)]);
        report.push(
          query,
          `${viaProxy ? 'tunnels refused by the egress proxy' : 'listener closed'} once the root calls are answered: ${refuse}; MAX_QUERY_COST ${cost}, ceiling ${ceiling}, ${rootKeys.size} sent and ${refuse ? MAX_ATTEMPTS * nestedCalls.length : 0} refused attempts`,
        );
        // Every answer closes its connection, the start's check of the upstream's too: none is kept to reuse.
        front.closeConnections = true;
        front.received.length = 0;
        const proxy = viaProxy ? { origin: tunnels.origin, authorization: undefined, variable: 'HTTP_PROXY', shown: tunnels.origin.slice('http://'.length) } : undefined;
        const gateway = await startGateway({ upstreamMaxInFlight: 16, operationLimits: { maxCost: cost } }, proxy);
        tunnels.refused = 0;
        waits.length = 0;
        // The root calls' answers are held until all are in, then given at once and the listener closed in the
        // same turn (each answer closes its connection): every nested call starts after it, and is refused.
        front.hold = (key) => rootKeys.has(key);
        front.onRequest = () => {
          if (front.held.length < rootKeys.size) return;
          for (const { answer } of front.held.splice(0)) answer();
          if (refuse && viaProxy) tunnels.refusing = true;
          else if (refuse) void front.stopListening();
        };
        try {
          const { answer, text, line } = await run(gateway, requestId, query);
          report.push(`answer: ${text}`);
          const sent = front.received.filter((r) => r.startsWith(`${requestId} `));
          const nestedKeys = [...new Set(nestedCalls.map(({ id, token }) => `${requestId} GET /accounts/${id}/connect_tokens/${token}`))];
          const expectedSent = [...rootKeys, ...(refuse ? [] : nestedKeys)];
          assert.deepEqual([...sent].sort(), expectedSent.sort(), 'the requests received');
          // What went out, and only that, counted: the refused attempts spent nothing.
          assert.equal(line['upstreamRequests'], expectedSent.length, 'upstreamRequests');
          // Each refused call tried 3 times: two backoffs between its attempts, and no other wait; a tunnel asked
          // for each attempt. Were the refused attempts spending requests, those past the ceiling would not be made.
          if (viaProxy) assert.equal(tunnels.refused, refuse ? nestedKeys.length * MAX_ATTEMPTS : 0, 'the tunnels refused');
          assert.equal(waits.length, refuse ? nestedKeys.length * (MAX_ATTEMPTS - 1) : 0, `the backoffs asked for (${waits.join(', ')})`);
          siblings.forEach((id, r) => assert.deepEqual(answer.data?.[`s${r}`], { id }, `s${r}`));
          const nodes = (answer.data?.['list'] as { nodes: Array<Record<string, unknown>> } | undefined)?.nodes;
          assert.deepEqual(
            nodes?.map((node) => node['id']),
            listed,
            'the page',
          );
          let expectedErrors = 0;
          for (const { id, alias, token } of nestedCalls) {
            const at = listed.indexOf(id);
            const path = `/accounts/${id}/connect_tokens/${token}`;
            // Nullable: each nested failure nulls its own field, its siblings keep theirs.
            if (refuse) {
              expectedErrors++;
              assert.equal(nodes![at]![alias], null, `${id}'s ${alias}: null`);
              checkError(answer, ['list', 'nodes', at, alias], 'GET', path, {
                code: 'UPSTREAM_ERROR',
                status: null,
              });
            } else if (token === tokens.get(id)) assert.deepEqual(nodes![at]![alias], { token }, `${id}'s ${alias}`);
            else {
              expectedErrors++;
              checkError(answer, ['list', 'nodes', at, alias], 'GET', path, {
                code: 'NOT_FOUND',
                status: 404,
              });
            }
          }
          assert.equal(answer.errors?.length ?? 0, expectedErrors, 'one error per failed call, none other (no QUERY_TOO_COMPLEX)');
        } finally {
          front.closeConnections = false;
          tunnels.refusing = false;
          await front.listen();
          await gateway.close();
        }
      });
    } finally {
      await costGateway.close();
    }
  });

  it(`pauses the key on a 429, for the retries of its siblings and the calls of the operations after it (seed ${SEED})`, async () => {
    const gateway = await startGateway({ upstreamMaxInFlight: 16 });
    try {
      await cases('rate-limit pause', async (index, random, report) => {
        const requestId = `pause-${index}`;
        // The first operation: one call answered 429 with a pause (1 s: waited out; 60 s: longer than any call
        // can wait), its siblings' requests already out, answered once the pause has begun.
        const fields = random
          .shuffled(accounts.map((id, i) => accountField(`a${i}`, id, false)))
          .slice(0, 2 + random.int(3));
        const seconds = random.pick([1, 60]);
        const [limited, ...siblings] = fields as [Field, ...Field[]];
        const siblingBehaviours = siblings.map((): Behaviour[] => (random.chance(0.5) ? [{ kind: 'normal' }] : [{ kind: 'down', status: random.pick([502, 504, 503] as const) }]));
        front.script.set(`${requestId} GET ${limited.path}`, [{ kind: '429', retryAfter: String(seconds) }]);
        siblings.forEach((field, i) => front.script.set(`${requestId} GET ${field.path}`, [...siblingBehaviours[i]!]));
        const query = `{ ${fields.map((f) => f.text).join(' ')} }`;
        report.push(query, `${limited.alias}: 429 Retry-After: ${seconds}`, ...siblings.map((f, i) => `${f.alias}: ${siblingBehaviours[i]!.map(describeBehaviour).join(', ')}`));
        front.received.length = 0;
        const roots = new Set(fields.map((f) => `${requestId} GET ${f.path}`));
        let firstRound = true;
        /** When the 429 was written, on the client's clock: the pause runs from (a moment after) then. */
        let answeredAt = 0;
        front.hold = (key) => firstRound && roots.has(key);
        const paused = () => logLines.some((l) => l.includes('the upstream rate limit was reached') && l.includes(requestId));
        front.onRequest = () => {
          if (!firstRound || front.held.length < roots.size) return;
          firstRound = false;
          const held = front.held.splice(0);
          // The 429 first; its siblings' answers once the gateway has read it and paused the key.
          held.find((h) => h.key === `${requestId} GET ${limited.path}`)!.answer();
          answeredAt = performance.now();
          void eventually(paused, {
            timeoutMs: 10_000,
            what: 'the pause begun',
          }).then(() => held.filter((h) => !h.key.endsWith(limited.path)).forEach((h) => h.answer()));
        };
        const { answer, text, line } = await run(gateway, requestId, query);
        report.push(`answer: ${text}`);
        // The model: a pause of 1 s ends with more than a quarter of a call's 3 s left: waited out, and the
        // retry goes out (the front answers it normally). One of 60 s cannot be waited: the 429's own call
        // ends RATE_LIMITED, a sibling's retry fails at once with the 502 that called for it.
        const waitable = seconds * 1000 + TIMEOUT_MS / 4 < TIMEOUT_MS;
        const expected: string[] = [...roots];
        if (waitable) expected.push(`${requestId} GET ${limited.path}`);
        else
          checkError(answer, [limited.alias], 'GET', limited.path, {
            code: 'RATE_LIMITED',
            status: 429,
            retryAfter: seconds,
          });
        siblings.forEach((field, i) => {
          const b = siblingBehaviours[i]![0]!;
          if (b.kind === 'normal') return assert.equal((answer.data?.[field.alias] as Record<string, unknown>)?.['id'], field.path.split('/')[2]);
          if (waitable) {
            expected.push(`${requestId} GET ${field.path}`);
            return assert.equal((answer.data?.[field.alias] as Record<string, unknown>)?.['id'], field.path.split('/')[2]);
          }
          assert.equal(answer.data?.[field.alias], null);
          checkError(answer, [field.alias], 'GET', field.path, {
            code: 'UPSTREAM_ERROR',
            status: (b as { status: number }).status,
          });
        });
        const received = front.received.filter((r) => r.startsWith(`${requestId} `));
        assert.deepEqual([...received].sort(), expected.sort(), 'the requests received');
        assert.equal(line['upstreamRequests'], expected.length, 'upstreamRequests');

        // The next operations: each after the clock moved on by a drawn step, or to 2.5 s or 1.5 s before the
        // pause ends. A call starting during the pause waits when it ends with more than a quarter of its 3 s
        // still to go (1.5 s left), and otherwise fails at once (2.5 s left), sending nothing.
        let pauseEnd = waitable ? Number.NEGATIVE_INFINITY : answeredAt + seconds * 1000;
        for (let step = 0; step < 3; step++) {
          const draw = random.pick([0, 20_000, 45_000, 61_000, 'to 2.5 s', 'to 1.5 s'] as const);
          const before = pauseEnd - performance.now();
          const advance = typeof draw === 'number' ? draw : before > 3_000 ? before - (draw === 'to 2.5 s' ? 2_500 : 1_500) : 0;
          clockAhead += advance;
          const left = pauseEnd - performance.now();
          const waitsItOut = left > 0 && left + TIMEOUT_MS / 4 < TIMEOUT_MS;
          if (waitsItOut) pauseEnd = Number.NEGATIVE_INFINITY; // waited out: the clock moved past it
          const next = random
            .shuffled([...accounts, UNKNOWN_ACCOUNT].map((id, i) => accountField(`n${i}`, id, false)))
            .slice(0, 1 + random.int(3));
          const nextId = `${requestId}-next-${step}`;
          const nextQuery = `{ ${next.map((f) => f.text).join(' ')} }`;
          report.push(`then, ${Math.round(advance)} ms later (pause left ${Math.round(Math.max(0, left))} ms): ${nextQuery}`);
          front.received.length = 0;
          const result = await run(gateway, nextId, nextQuery);
          report.push(`answer: ${result.text}`);
          const got = front.received.filter((r) => r.startsWith(`${nextId} `));
          if (left > 0 && !waitsItOut) {
            assert.deepEqual(got, [], 'no request during the pause');
            for (const field of next) {
              assert.equal(result.answer.data?.[field.alias], null);
              checkError(result.answer, [field.alias], 'GET', field.path, {
                code: 'RATE_LIMITED',
                status: null,
                retryAfter: Math.ceil(left / 1000),
              });
            }
          } else {
            assert.deepEqual([...got].sort(), next.map((f) => `${nextId} GET ${f.path}`).sort(), 'the requests received');
            for (const field of next) {
              if (field.path.endsWith(UNKNOWN_ACCOUNT))
                checkError(result.answer, [field.alias], 'GET', field.path, {
                  code: 'NOT_FOUND',
                  status: 404,
                });
              else assert.equal((result.answer.data?.[field.alias] as Record<string, unknown>)?.['id'], field.path.split('/')[2]);
            }
          }
        }
      });
    } finally {
      await gateway.close();
    }
  });

  it(`opens its circuit breaker after the threshold's failures, refuses without a request, and half-opens after the cooldown (seed ${SEED})`, async () => {
    const random = new Random(SEED);
    const threshold = 2 + random.int(3);
    const gateway = await startGateway({
      upstreamMaxInFlight: 16,
      breakerFailureThreshold: threshold,
      breakerCooldownMs: COOLDOWN_MS,
    });
    // The test's model of the breaker, from docs/configuration.md and docs/logs.md (the circuit breaker).
    let state: 'closed' | 'open' = 'closed';
    let failures = 0;
    /** On the client's clock (`performance.now()`), when it last opened. */
    let openedAt = 0;
    /**
     * A 200 unread set the count back to 0 since the circuit last opened, and no success since: the next opening is
     * counted from it (a breaker that took the 200 for no answer at all would open sooner).
     */
    let countedFromUnread = false;
    const history: string[] = [`threshold ${threshold}, cooldown ${COOLDOWN_MS} ms`];
    /** What the history must show the run went through: opened, refused while open, half-open trials either way. */
    const MODEL_STATES = ['now open', 'open, ', 'trial normal, now closed', 'trial down, now open', 'opened counting from a 200 unread'];
    try {
      await cases(
        'circuit breaker',
        async (index, caseRandom, report) => {
          report.push(...history.slice(-8));
          // Each case moves on by two seconds (none of an earlier case's successes is in the second before a
          // failure) or past the cooldown.
          clockAhead -= 2 * 3_600_000; // `cases`' step is not wanted here: the breaker's time is the model's
          clockAhead += caseRandom.pick([2_000, 2_000, COOLDOWN_MS + 1_000]);
          const now = performance.now();
          const halfOpen = state === 'open' && now - openedAt >= COOLDOWN_MS;
          let fields = caseRandom
            .shuffled(accounts.map((id, i) => accountField(`a${i}`, id, false)))
            .slice(0, 1 + caseRandom.int(3));
          let behaviours = fields.map((): Behaviour =>
            caseRandom.chance(0.55)
              ? {
                  kind: 'down',
                  status: caseRandom.pick([502, 504, 503] as const),
                }
              : { kind: 'normal' },
          );
          // After a 200 unread set the count back, mostly failures only: the circuit opens counting from it.
          if (state === 'closed' && countedFromUnread && caseRandom.chance(0.7)) behaviours = behaviours.map((b) => (b.kind === 'down' ? b : { kind: 'down', status: 502 }));
          // A closed circuit opened by an operation's last failing call only: the calls that failed before it all
          // ended (one still out when it opens would have its retry refused, at a moment the model cannot know).
          if (state === 'closed' && behaviours.every((b) => b.kind === 'down') && failures + fields.length > threshold) {
            fields = fields.slice(0, threshold - failures);
            behaviours = behaviours.slice(0, fields.length);
          }
          // Alone in its operation (which of its siblings' answers came first would decide whether theirs counted),
          // a call answered a 200 it cannot read: the upstream answering, which sets the count back to 0 and closes a
          // half-open circuit, as a success does.
          if (fields.length === 1 && !halfOpen && caseRandom.chance(countedFromUnread ? 0 : failures > 0 ? 0.5 : 0.1)) behaviours = [{ kind: 'unread' }];
          else if (fields.length === 1 && halfOpen && caseRandom.chance(0.2)) behaviours = [{ kind: 'unread' }];
          // Half-open, the trial is whichever call asks first: all of the operation's calls behave alike.
          if (halfOpen) behaviours = behaviours.map(() => behaviours[0]!);
          const requestId = `breaker-${index}`;
          fields.forEach((field, i) =>
            front.script.set(
              `${requestId} GET ${field.path}`,
              Array.from({ length: MAX_ATTEMPTS }, () => behaviours[i]!),
            ),
          );
          const query = `{ ${fields.map((f) => f.text).join(' ')} }`;
          const healthy = fields.filter((_, i) => behaviours[i]!.kind === 'normal').map((f) => `${requestId} GET ${f.path}`);
          // The healthy calls are answered first: a failing sibling's failure comes after their success.
          let answeredHealthy = 0;
          front.hold = (key) => !healthy.includes(key) && answeredHealthy < healthy.length;
          front.onRequest = () => {
            answeredHealthy = front.received.filter((r) => healthy.includes(r)).length;
            if (answeredHealthy >= healthy.length) for (const { answer } of front.held.splice(0)) answer();
          };
          const phase = state === 'closed' ? `closed (${failures} failures)` : halfOpen ? 'half-open' : `open (${Math.round(now - openedAt)} ms of ${COOLDOWN_MS})`;
          report.push(`breaker ${phase}: ${query}`, ...fields.map((f, i) => `  ${f.alias}: ${describeBehaviour(behaviours[i]!)}`));
          front.received.length = 0;
          const { answer, text, line } = await run(gateway, requestId, query);
          report.push(`answer: ${text}`);
          const received = front.received.filter((r) => r.startsWith(`${requestId} `));
          const refusedByBreaker = (field: Field) => {
            assert.equal(answer.data?.[field.alias], null, `${field.alias}: null`);
            checkError(answer, [field.alias], 'GET', field.path, {
              code: 'UPSTREAM_ERROR',
              status: null,
            });
          };
          const downFailure = (field: Field, b: Behaviour) => {
            assert.equal(answer.data?.[field.alias], null, `${field.alias}: null`);
            checkError(answer, [field.alias], 'GET', field.path, {
              code: 'UPSTREAM_ERROR',
              status: (b as { status: number }).status,
            });
          };
          const served = (field: Field) => assert.equal((answer.data?.[field.alias] as Record<string, unknown>)?.['id'], field.path.split('/')[2], `${field.alias}'s id`);
          const unread = (field: Field) => {
            assert.equal(answer.data?.[field.alias], null, `${field.alias}: null`);
            checkError(answer, [field.alias], 'GET', field.path, { code: 'UPSTREAM_ERROR', status: 200 });
          };
          /** The upstream answered (a success, or a 200 it could not use): no failure. */
          const answered = (b: Behaviour) => b.kind === 'normal' || b.kind === 'unread';
          if (state === 'open' && !halfOpen) {
            // Open: every call fails at once, none sent.
            assert.deepEqual(received, [], 'no request while the circuit is open');
            fields.forEach(refusedByBreaker);
            assert.equal(line['breakerRefusals'], fields.length, 'breakerRefusals');
            history.push(`${index}: open, ${fields.length} refused`);
          } else if (halfOpen) {
            // One trial: the call that asked first; the others refused while it is out.
            assert.equal(new Set(received).size, 1, `one trial call (${received.join(', ')})`);
            const trial = fields.find((f) => received[0] === `${requestId} GET ${f.path}`)!;
            assert.ok(trial, "the trial is one of the operation's calls");
            assert.equal(line['breakerRefusals'] ?? 0, fields.length - 1, 'breakerRefusals');
            for (const field of fields) if (field !== trial) refusedByBreaker(field);
            const b = behaviours[0]!;
            if (answered(b)) {
              (b.kind === 'normal' ? served : unread)(trial);
              assert.equal(received.length, 1, 'the trial sent once');
              state = 'closed';
              failures = 0;
            } else {
              // Its failure reopens the circuit at once: its retry finds it open, and the call ends with the
              // failure that called for the retry.
              assert.equal(received.length, 1, 'the failing trial, not retried through the reopened circuit');
              downFailure(trial, b);
              state = 'open';
              openedAt = performance.now();
            }
            history.push(`${index}: half-open, trial ${b.kind === 'unread' ? 'answered unread' : b.kind}, now ${state}`);
          } else {
            // Closed: each call as the retry policy says; the failures count, unless a sibling succeeded.
            const expected = fields.flatMap((f, i) => Array.from({ length: answered(behaviours[i]!) ? 1 : MAX_ATTEMPTS }, () => `${requestId} GET ${f.path}`));
            assert.deepEqual([...received].sort(), expected.sort(), 'the requests received');
            assert.equal(line['breakerRefusals'], undefined, 'breakerRefusals');
            fields.forEach((field, i) => (behaviours[i]!.kind === 'normal' ? served(field) : behaviours[i]!.kind === 'unread' ? unread(field) : downFailure(field, behaviours[i]!)));
            const unreadCount = behaviours.filter((b) => b.kind === 'unread').length;
            if (healthy.length > 0) countedFromUnread = false;
            else if (unreadCount > 0 && failures > 0) countedFromUnread = true;
            if (behaviours.some(answered)) failures = 0;
            else failures += fields.length;
            const opening = failures >= threshold;
            if (opening) {
              state = 'open';
              openedAt = performance.now();
              failures = 0;
            }
            history.push(`${index}: closed, ${healthy.length} served, ${unreadCount} unread, ${fields.length - healthy.length - unreadCount} down, now ${state} (${failures})${opening && countedFromUnread ? ', opened counting from a 200 unread' : ''}`);
            if (opening) countedFromUnread = false;
          }
          assert.equal(line['upstreamRequests'], received.length, 'upstreamRequests');
        },
        true,
        () => MODEL_STATES.every((seen) => history.some((h) => h.includes(seen))),
      );
      // The run met every state of the model: a seed that did not is no test of it.
      if (ONLY === undefined && CASES >= 40)
        for (const seen of MODEL_STATES)
          assert.ok(
            history.some((h) => h.includes(seen)),
            `no case ${seen} in:\n${history.join('\n')}`,
          );
    } finally {
      await gateway.close();
    }
  });
});
