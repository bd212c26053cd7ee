import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { createLogger } from '../../src/logging/logger.ts';
import type { Gateway } from '../../src/http/server.ts';
import type { WaitTimer } from '../../src/support/wait-timer.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { Random } from '../helpers/random.ts';
import { logEntries, runScript } from '../helpers/script.ts';
import { startTestGateway } from '../helpers/stack.ts';

/*
 * The graceful shutdown, over seeded random mixes of what it may find in flight, checked against a model
 * written from the docs (docs/operations.md "Under a process manager, behind a load balancer",
 * docs/configuration.md's SHUTDOWN_DRAIN_MS and SHUTDOWN_GRACE_MS, docs/logs.md's operation line and its
 * cutAtShutdown / clientWentAway, docs/errors.md's /healthz row), not from src/http/shutdown.ts:
 *   - an operation whose upstream answer comes before the grace period ends is answered normally; once the
 *     shutdown (or its drain) has begun, its answer says `Connection: close`;
 *   - one still running when the grace period ends is answered UPSTREAM_TIMEOUT (also one waiting in the
 *     gateway's queue for an upstream slot, never sent), or RATE_LIMITED when its call is waiting out the
 *     upstream's rate limit (its own 429's), or its 502 when a 502 came before it waited out another call's
 *     pause; however late its upstream answer then comes;
 *   - a client that leaves during the shutdown gets its line with `clientWentAway: true`;
 *   - an answer still undelivered after the grace period (a client that stopped reading) is cut, its line
 *     `cutAtShutdown: true` with `status: null`; one its client reads meanwhile is delivered whole;
 *   - during the drain new connections are served: /healthz answers 503 {"status":"shutting down"}, every
 *     answer closes its connection; after it a new connection is refused;
 *   - a request still arriving is answered if its body comes during the shutdown, and is no operation (no line)
 *     if it never does; one whose body comes after the grace period, before the cut, has its operation stopped
 *     as it starts: answered at once, closing its connection, what needs the upstream UPSTREAM_TIMEOUT (its
 *     message: the period was over when the operation began, its call not sent, a write so not taken effect),
 *     what needs nothing answered, nothing of it sent upstream (its line's upstreamRequests 0), and the shutdown
 *     ends without the cut on its account;
 *   - idle keep-alive connections, and connections that sent nothing, are closed;
 *   - every operation has exactly one `operation` line; the stop settles; no upstream request is made after it.
 * A couple of cases run `src/main.ts` and SIGTERM it: its `shutting down` comes before, and `stopped` after,
 * every operation line of the shutdown, and it exits 0.
 *
 * The drain, the grace period and the cut after it are the test's (the gateway's shutdownTimer, run by hand):
 * at each mark (the drain begun, the listener closed, the grace period over) the test does what the case holds
 * for it (lets held answers go, sends requests, leaves) and waits until the gateway has done with it (read what
 * was sent, made or delivered the answer, written the line) before it ends the drain or the grace period; it
 * ends the grace period only when something must outlast it, and cuts the connections only when something
 * must be cut. No real-time margin is left in process; the SIGTERM cases, which cannot inject a timer, keep to
 * requests let go before the shutdown or never, under a drain and grace period of over a second.
 *
 * RANDOM_SHUTDOWN_SEED=<n> replays a run, RANDOM_SHUTDOWN_CASES=<n> widens it, RANDOM_SHUTDOWN_ONLY=<case>
 * runs one case of it. A failure names the seed, the case and what it drew.
 */

const SEED = Number(process.env['RANDOM_SHUTDOWN_SEED'] ?? 20_261_205);
const CASES = Number(process.env['RANDOM_SHUTDOWN_CASES'] ?? 14);
const ONLY = process.env['RANDOM_SHUTDOWN_ONLY'] === undefined ? undefined : Number(process.env['RANDOM_SHUTDOWN_ONLY']);
const PROCESS_CASES = Number(process.env['RANDOM_SHUTDOWN_PROCESS_CASES'] ?? 2);

/** When a held upstream answer is let go, relative to the shutdown's marks. */
type Release = 'before' | 'drain' | 'listenerClosed' | 'afterGrace' | 'never';

/**
 * What an arriving request asks: nothing of the upstream (`__typename`), an account's read (with `__typename`
 * beside it or not), or a write (updateAccount).
 */
type Asks = 'nothing' | 'read' | 'readAndTypename' | 'write';

type Item =
  | { kind: 'held'; release: Release }
  | { kind: 'rateLimited'; beside502: boolean }
  | { kind: 'idle' }
  | { kind: 'unused' }
  | { kind: 'slowReader'; reads: 'duringShutdown' | 'never' }
  | { kind: 'arriving'; finish: 'drain' | 'listenerClosed' | 'afterGrace' | 'never'; asks: Asks }
  | { kind: 'pipelinedBehindHeld'; release: Release; behind: number }
  | { kind: 'pipelinedDuringDrain'; count: number }
  | { kind: 'newDuringDrain'; path: '/healthz' | '/graphql' }
  | { kind: 'heldFromDrain'; release: Release }
  | { kind: 'idleReusedDuringDrain' }
  | { kind: 'leaves'; at: 'drain' | 'listenerClosed' }
  | { kind: 'headersArriving'; path: '/healthz' | '/graphql'; finish: 'drain' | 'listenerClosed' }
  | { kind: 'pipelinedDuringShutdown'; release: Release; at: 'drain' | 'listenerClosed'; behind: number }
  | { kind: 'queued' }
  | { kind: 'afterListenerClosed' };

interface Case {
  drainMs: number;
  graceMs: number;
  /** The gateway's upstream slots: as many as the requests held when the shutdown begins when `queued` items wait for one. */
  queue: boolean;
  items: Item[];
}

/** Whether the item keeps the shutdown to the end of its grace period (which the test then ends). */
const outlastsGrace = (item: Item): boolean =>
  ((item.kind === 'held' || item.kind === 'pipelinedBehindHeld' || item.kind === 'heldFromDrain' || item.kind === 'pipelinedDuringShutdown') && (item.release === 'afterGrace' || item.release === 'never')) ||
  item.kind === 'rateLimited' ||
  item.kind === 'queued' ||
  (item.kind === 'slowReader' && item.reads === 'never') ||
  (item.kind === 'arriving' && (item.finish === 'afterGrace' || item.finish === 'never'));

function drawCase(random: Random): Case {
  const drainMs = random.chance(0.5) ? 0 : 300 + random.int(700);
  const releases: Release[] = drainMs > 0 ? ['before', 'drain', 'listenerClosed', 'afterGrace', 'never'] : ['before', 'listenerClosed', 'afterGrace', 'never'];
  const elapses = random.chance(0.6);
  const asks: Asks[] = ['nothing', 'read', 'readAndTypename', 'write'];
  const items: Item[] = [];
  const count = 2 + random.int(6);
  for (let i = 0; i < count; i++) {
    const kinds: Array<() => Item> = [
      () => ({ kind: 'held', release: random.pick(releases) }),
      () => ({ kind: 'held', release: random.pick(releases) }),
      () => ({ kind: 'idle' }),
      () => ({ kind: 'unused' }),
      () => ({ kind: 'arriving', finish: random.pick(drainMs > 0 ? (['drain', 'listenerClosed', 'never'] as const) : (['listenerClosed', 'never'] as const)), asks: random.pick(asks) }),
      // Its body completed once the grace period is over, before the cut a second later.
      () => ({ kind: 'arriving', finish: 'afterGrace', asks: random.pick(asks) }),
      () => ({ kind: 'pipelinedBehindHeld', release: random.pick(releases), behind: 1 + random.int(3) }),
      () => ({ kind: 'afterListenerClosed' }),
      () => ({ kind: 'leaves', at: random.pick(drainMs > 0 ? (['drain', 'listenerClosed'] as const) : (['listenerClosed'] as const)) }),
      () => ({
        kind: 'headersArriving',
        path: random.pick(['/healthz', '/graphql'] as const),
        finish: random.pick(drainMs > 0 ? (['drain', 'listenerClosed'] as const) : (['listenerClosed'] as const)),
      }),
      () => {
        // Its head released after the requests behind it arrive: released first, its answer would close the connection.
        const at = random.pick(drainMs > 0 ? (['drain', 'listenerClosed'] as const) : (['listenerClosed'] as const));
        const later: Release[] = at === 'drain' ? ['listenerClosed', 'afterGrace', 'never'] : ['afterGrace', 'never'];
        return { kind: 'pipelinedDuringShutdown', release: random.pick(later), at, behind: 1 + random.int(3) };
      },
    ];
    if (random.chance(0.3)) kinds.push(() => ({ kind: 'rateLimited', beside502: random.chance(0.5) }));
    if (drainMs > 0) {
      kinds.push(() => ({ kind: 'pipelinedDuringDrain', count: 2 + random.int(3) }));
      kinds.push(() => ({ kind: 'newDuringDrain', path: random.pick(['/healthz', '/graphql'] as const) }));
      kinds.push(() => ({ kind: 'heldFromDrain', release: random.pick(['listenerClosed', 'afterGrace', 'never'] as const) }));
      kinds.push(() => ({ kind: 'idleReusedDuringDrain' }));
    }
    let item = random.pick(kinds)();
    // A case whose grace period is not to end holds nothing that outlasts it: the shutdown must end before it.
    while (!elapses && outlastsGrace(item)) item = random.pick(kinds)();
    items.push(item);
  }
  // One slow reader at most (its answer is ~20 MB), in some cases only.
  if (random.chance(0.25)) items.push({ kind: 'slowReader', reads: elapses && random.chance(0.5) ? 'never' : 'duringShutdown' });
  // At most one call waits out the rate limit: the pause its 429 begins is the gateway's, for every call; and
  // then no call starts after it (it would wait out the pause too).
  const limited = items.filter((item) => item.kind === 'rateLimited');
  for (const extra of limited.slice(1)) items.splice(items.indexOf(extra), 1);
  if (limited.length > 0) for (const later of items.filter((item) => item.kind === 'heldFromDrain')) items.splice(items.indexOf(later), 1);
  // Operations waiting for an upstream slot the held ones keep: stopped at the grace period's end, never sent.
  const queue = elapses && random.chance(0.3);
  if (queue) {
    // Left out: what needs a slot of its own at some point (the slots are exactly those held when the shutdown begins).
    const needsSlot = (item: Item) =>
      item.kind === 'rateLimited' || item.kind === 'heldFromDrain' || item.kind === 'slowReader' || ((item.kind === 'held' || item.kind === 'pipelinedBehindHeld') && item.release === 'before');
    for (const excluded of items.filter(needsSlot)) items.splice(items.indexOf(excluded), 1);
    items.push({ kind: 'held', release: 'never' });
    for (let i = 1 + random.int(3); i > 0; i--) items.push({ kind: 'queued' });
  }
  // A request whose body comes during the shutdown, before the grace period ends, would call the upstream then:
  // after a 429 it would wait out the pause too, with the queue wait for a slot the held ones keep. There it
  // asks nothing of the upstream. (One whose body comes after the grace period calls nothing: it is stopped.)
  if (limited.length > 0 || queue) {
    for (const [at, item] of items.entries()) if (item.kind === 'arriving' && (item.finish === 'drain' || item.finish === 'listenerClosed')) items[at] = { ...item, asks: 'nothing' };
  }
  // Lengths only (the test's timer ends the drain and the grace period), drawn as when they were real time.
  const graceMs = items.some(outlastsGrace) ? 200 + random.int(600) : 5_000 + random.int(5_000);
  return { drainMs, graceMs, queue, items };
}

/**
 * The emulator's fault timer, each wait keyed by its length: each held account gets a fault of its own length,
 * so the test releases one request's answer, not all.
 */
function keyedTimer(): { timer: WaitTimer; release: (ms: number) => void; releaseAll: () => void; waiting: (ms: number) => boolean } {
  const waits = new Map<number, Array<() => void>>();
  // A key released before its request arrived answers that request at once.
  const released = new Set<number>();
  return {
    timer: (callback, ms) => {
      if (released.has(ms)) {
        setImmediate(callback);
        return () => {};
      }
      waits.set(ms, [...(waits.get(ms) ?? []), callback]);
      return () => waits.set(ms, (waits.get(ms) ?? []).filter((c) => c !== callback));
    },
    release: (ms) => {
      released.add(ms);
      const due = waits.get(ms) ?? [];
      waits.delete(ms);
      for (const fire of due) fire();
    },
    releaseAll: () => {
      const due = [...waits.values()].flat();
      waits.clear();
      for (const fire of due) fire();
    },
    waiting: (ms) => (waits.get(ms) ?? []).length > 0,
  };
}

/** One wait the shutdown asked of its timer, in the order asked. */
interface ShutdownWait {
  ms: number;
  state: 'waiting' | 'fired' | 'cancelled';
  fire: () => void;
}

/**
 * The gateway's shutdownTimer, run by hand: every wait the shutdown asks for (the drain, the grace period, the
 * cut a second after it, the wait for the last operation lines) kept in the order asked, until the test fires
 * it or the gateway cancels it. Time never ends one.
 */
function shutdownWaits(): { timer: WaitTimer; asked: ShutdownWait[] } {
  const asked: ShutdownWait[] = [];
  return {
    asked,
    timer: (callback, ms) => {
      const wait: ShutdownWait = {
        ms,
        state: 'waiting',
        fire: () => {
          assert.equal(wait.state, 'waiting', `the shutdown's wait of ${ms} ms fired while ${wait.state}`);
          wait.state = 'fired';
          callback();
        },
      };
      asked.push(wait);
      return () => {
        if (wait.state === 'waiting') wait.state = 'cancelled';
      };
    },
  };
}

/** An HTTP/1.1 answer read off a socket. */
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw connection to the gateway: what it wrote back, parsed into answers, and whether it closed. */
class Connection {
  readonly socket: Socket;
  #chunks: Buffer[] = [];
  closed = false;
  error: string | undefined;
  readonly ended: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error.code ?? error.message));
    this.socket.on('data', (chunk: Buffer) => this.#chunks.push(chunk));
    // Not events.once: it rejects on the 'error' a refused connection emits before its 'close'.
    this.ended = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  async opened(): Promise<void> {
    await once(this.socket, 'connect');
  }

  /** The whole answers received so far, interim ones (100 Continue) left out. */
  answers(): Answer[] {
    const answers: Answer[] = [];
    // Joined when read, not per chunk: a 20 MB answer comes in hundreds of them.
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    let rest = this.#chunks[0] ?? Buffer.alloc(0);
    for (;;) {
      const end = rest.indexOf('\r\n\r\n');
      if (end < 0) return answers;
      const [statusLine, ...headerLines] = rest.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(statusLine!.split(' ')[1]);
      const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      if (status === 100) {
        rest = rest.subarray(end + 4);
        continue;
      }
      const length = Number(headers['content-length']);
      if (!Number.isFinite(length) || rest.length < end + 4 + length) return answers;
      answers.push({ status, headers, body: rest.subarray(end + 4, end + 4 + length).toString() });
      rest = rest.subarray(end + 4 + length);
    }
  }
}

const post = (requestId: string, query: string, extraHeaders = ''): string => {
  const body = JSON.stringify({ query });
  return `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-request-id: ${requestId}\r\n${extraHeaders}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

const TYPENAME = '{ __typename }';

/** An error answer: its one code; where the model says them, its data beside it and what its message says. */
interface Failed {
  error: string;
  data?: unknown;
  message?: RegExp;
}

/**
 * What an arriving request asks of an account, what its answer holds when it runs, and what when it is stopped
 * as it starts (the grace period over): each field that needs the upstream UPSTREAM_TIMEOUT (null, and with it
 * the non-null mutation payload's parent, `data`), its message that the period was over and its call not sent.
 */
function askedOf(asks: Asks, accountId: string): { query: string; data: unknown; stopped: { data: unknown } | Failed } {
  const over = /over when the operation began[\s\S]*was not sent/;
  switch (asks) {
    case 'nothing':
      return { query: TYPENAME, data: { __typename: 'Query' }, stopped: { data: { __typename: 'Query' } } };
    case 'read':
      return { query: `{ account(id: "${accountId}") { id } }`, data: { account: { id: accountId } }, stopped: { error: 'UPSTREAM_TIMEOUT', data: { account: null }, message: over } };
    case 'readAndTypename':
      return {
        query: `{ __typename account(id: "${accountId}") { id } }`,
        data: { __typename: 'Query', account: { id: accountId } },
        stopped: { error: 'UPSTREAM_TIMEOUT', data: { __typename: 'Query', account: null }, message: over },
      };
    case 'write':
      return {
        query: `mutation { updateAccount(id: "${accountId}", input: { lastName: "Changed" }) { success } }`,
        data: { updateAccount: { success: true } },
        stopped: { error: 'UPSTREAM_TIMEOUT', data: null, message: /over when the operation began[\s\S]*was not sent[\s\S]*did not take effect/ },
      };
  }
}

/** What the model says of one operation: its answer (when the client reads it) and its log line. */
interface Expected {
  requestId: string;
  what: string;
  /** `data` answered; an error code; or cut. */
  outcome: { data: unknown } | Failed | 'cut' | 'wentAway';
  /** Whether the answer must close its connection (made once the shutdown began). */
  closes: boolean | undefined;
  /** The connection and the index of its answer on it; undefined when the client does not read it. */
  connection: Connection | undefined;
  index: number;
  /** The line's `upstreamRequests`, where the model knows it (when the line carries the field). */
  upstreamRequests?: number;
}

interface Running {
  gateway: Gateway;
  emulator: Emulator;
  lines: string[];
  held: ReturnType<typeof keyedTimer>;
  waits: ReturnType<typeof manualTimer>;
  shutdownTimer: ReturnType<typeof shutdownWaits>;
}

async function startCase(): Promise<Running & { setGrace: (drainMs: number, graceMs: number, upstreamMaxInFlight: number) => Promise<Gateway> }> {
  const held = keyedTimer();
  // The gateway's wait timer (backoffs, rate-limit pauses), run by hand: fired one at a time, or all.
  const waits = manualTimer();
  const shutdownTimer = shutdownWaits();
  const emulator = await startEmulator({ port: 0, seed: 'none', faultTimer: held.timer });
  const lines: string[] = [];
  const running = { emulator, lines, held, waits, shutdownTimer } as Running;
  return Object.assign(running as Running & { setGrace: (drainMs: number, graceMs: number, upstreamMaxInFlight: number) => Promise<Gateway> }, {
    async setGrace(drainMs: number, graceMs: number, upstreamMaxInFlight: number) {
      running.gateway = await startTestGateway(
        { baseUrl: emulator.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret },
        {
          logger: createLogger('info', (line) => lines.push(line)),
          shutdownDrainMs: drainMs,
          shutdownGraceMs: graceMs,
          // Nothing ends on its own deadline: only the shutdown stops what runs.
          upstreamTimeoutMs: 120_000,
          operationTimeoutMs: 300_000,
          upstreamWaitTimer: waits.timer,
          shutdownTimer: shutdownTimer.timer,
          upstreamMaxInFlight,
        },
      );
      return running.gateway;
    },
  });
}

/**
 * How long the slow reader's ~20 MB answer may take to begin, and to be read whole: ~1.5 s of CPU in this one
 * process (the emulator's JSON, the gateway's parse and answer, the client's read), several times that in wall
 * time on a loaded machine (6–8 s at a load of 13 on two cores, past eventually's 5 s). A deadline against a hang.
 */
const BIG_ANSWER_MS = 30_000;

async function runCase(seed: number, index: number, drawn: Case): Promise<void> {
  const marks: Record<'drain' | 'listenerClosed' | 'afterGrace', Array<() => void>> = { drain: [], listenerClosed: [], afterGrace: [] };
  /** What the gateway must have done with a mark's actions before the test ends the drain or the grace period. */
  const settles: Record<'drain' | 'listenerClosed', Array<{ what: string; holds: () => boolean; timeoutMs?: number }>> = { drain: [], listenerClosed: [] };
  const settle = (mark: Release | 'drain' | 'listenerClosed', what: string, holds: () => boolean, timeoutMs?: number) => {
    if (mark === 'drain' || mark === 'listenerClosed') settles[mark].push({ what, holds, ...(timeoutMs !== undefined && { timeoutMs }) });
  };
  const fire = (mark: keyof typeof marks) => {
    const due = marks[mark];
    marks[mark] = [];
    for (const action of due) action();
  };
  const running = await startCase();
  const { emulator, held, waits, shutdownTimer } = running;
  const gateway = await running.setGrace(drawn.drainMs, drawn.graceMs, drawn.queue ? heldCount(drawn.items) : 64);
  const port = Number(new URL(gateway.url).port);
  const connections: Connection[] = [];
  // The gateway's side of each connection (by the client's port) and each answer it makes (by request id): what
  // the test waits on instead of a margin of real time.
  const gatewaySockets = new Map<number, Socket>();
  gateway.httpServer.on('connection', (socket: Socket) => gatewaySockets.set(socket.remotePort!, socket));
  const answersMade = new Map<string, ServerResponse>();
  gateway.httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const id = req.headers['x-request-id'];
    if (typeof id === 'string') answersMade.set(id, res);
  });
  /** The gateway has read all its client sent (or one side closed it): a request in it has been parsed. */
  const readByGateway = (connection: Connection): boolean => {
    if (connection.socket.destroyed) return true;
    if (connection.socket.connecting) return false;
    const socket = gatewaySockets.get(connection.socket.localPort!);
    return socket !== undefined && (socket.destroyed || socket.bytesRead === connection.socket.bytesWritten);
  };
  // Its status and headers written (its operation done): queued behind a held answer, it is not ended until its
  // turn on the connection comes.
  const made = (requestId: string): boolean => answersMade.get(requestId)?.headersSent === true;
  const logged = (requestId: string): boolean => logEntries(running.lines).some((entry) => entry['message'] === 'operation' && entry['requestId'] === requestId);
  const answered = (connection: Connection, count: number) => () => connection.answers().length >= count;
  const open = async (): Promise<Connection> => {
    const connection = new Connection(port);
    connections.push(connection);
    await connection.opened();
    return connection;
  };
  const expected: Expected[] = [];
  /** Checks of what is no operation (a connection closed, refused, a /healthz answer), run once stopped. */
  const checks: Array<() => void> = [];
  /** Request ids the gateway must write no operation line for. */
  const noLine: string[] = [];
  /** Requests of which nothing may reach the upstream (by their id, nor for their account). */
  const notSent: Array<{ requestId: string; accountId: string }> = [];
  let slowDone: Promise<void> | undefined;
  try {
    // The slow reader's accounts first: the store is then filled before anything is held.
    const slow = drawn.items.find((item) => item.kind === 'slowReader');
    if (slow) for (let i = 0; i < 100; i++) emulator.store.createAccount({ email: `big${i}@example.com`, first_name: 'x'.repeat(200_000) });

    let heldKey = 1_000;
    /** A held account: its one upstream request answered only when the test releases it. */
    const holdAccount = (release: Release): { id: string; key: number; query: string; data: unknown; terminal: boolean } => {
      const { id } = emulator.store.createAccount({ email: `held${heldKey}@example.com` });
      const key = heldKey++;
      emulator.addFault({ path: `/accounts/${id}`, answerAfterMs: key });
      if (release === 'drain' || release === 'listenerClosed' || release === 'afterGrace') marks[release].push(() => held.release(key));
      if (release === 'before') marksBefore.push(async () => {
        await eventually(() => held.waiting(key), { what: `held request ${key} arrived` });
        held.release(key);
      });
      return { id, key, query: `{ account(id: "${id}") { id } }`, data: { account: { id } }, terminal: release === 'afterGrace' || release === 'never' };
    };
    const marksBefore: Array<() => Promise<void>> = [];
    /** What the gateway must have done before the shutdown begins, besides reading what was sent. */
    const settledBefore: Array<{ what: string; holds: () => boolean }> = [];
    const queuedSends: Array<() => Promise<void>> = [];
    const afterStarted: Array<() => Promise<void>> = [];
    let n = 0;
    for (const item of drawn.items) {
      const requestId = `case${index}-${n++}-${item.kind}`;
      switch (item.kind) {
        case 'held': {
          const account = holdAccount(item.release);
          const connection = await open();
          connection.socket.write(post(requestId, account.query));
          const before = item.release === 'before';
          settle(item.release, `${requestId}: released, answered`, answered(connection, 1));
          expected.push({
            requestId,
            what: `held, released ${item.release}`,
            outcome: account.terminal ? { error: 'UPSTREAM_TIMEOUT' } : { data: account.data },
            closes: before ? undefined : true,
            connection,
            index: 0,
          });
          break;
        }
        case 'pipelinedBehindHeld': {
          const account = holdAccount(item.release);
          const connection = await open();
          let bytes = post(`${requestId}-head`, account.query);
          for (let i = 0; i < item.behind; i++) bytes += post(`${requestId}-behind${i}`, TYPENAME);
          connection.socket.write(bytes);
          expected.push({
            requestId: `${requestId}-head`,
            what: `pipelined head, released ${item.release}`,
            outcome: account.terminal ? { error: 'UPSTREAM_TIMEOUT' } : { data: account.data },
            closes: undefined,
            connection,
            index: 0,
          });
          for (let i = 0; i < item.behind; i++) {
            expected.push({ requestId: `${requestId}-behind${i}`, what: `pipelined behind a held one`, outcome: { data: { __typename: 'Query' } }, closes: undefined, connection, index: i + 1 });
            // Made before the shutdown (queued behind the head): the grace period's end has nothing of it to stop.
            settledBefore.push({ what: `${requestId}-behind${i}: its answer made`, holds: () => made(`${requestId}-behind${i}`) });
          }
          settle(item.release, `${requestId}: released, it and those behind it answered`, answered(connection, 1 + item.behind));
          checks.push(() => assert.ok(connection.closed, `${requestId}: its connection is closed by the shutdown`));
          break;
        }
        case 'rateLimited': {
          const { id } = emulator.store.createAccount({ email: `limited${n}@example.com` });
          // Its 429 pauses every call of the gateway (docs/operations.md), and it waits to retry. With beside502,
          // another call whose first attempt failed 502 then waits out that pause: stopped, it ends with its 502.
          emulator.addFault({ path: `/accounts/${id}`, status: 429, retryAfter: 5, times: 1 });
          const beside = item.beside502 ? emulator.store.createAccount({ email: `beside${n}@example.com` }).id : undefined;
          if (beside) emulator.addFault({ path: `/accounts/${beside}`, status: 502, times: 1 });
          afterStarted.push(async () => {
            if (beside) {
              const connection = await open();
              connection.socket.write(post(`${requestId}-beside502`, `{ account(id: "${beside}") { id } }`));
              expected.push({ requestId: `${requestId}-beside502`, what: 'waiting out the pause after its own 502', outcome: { error: 'UPSTREAM_ERROR' }, closes: true, connection, index: 0 });
              await eventually(() => waits.waiting().length === 1, { what: 'the backoff after the 502' });
            }
            const connection = await open();
            connection.socket.write(post(requestId, `{ account(id: "${id}") { id } }`));
            expected.push({ requestId, what: 'waiting out its own 429', outcome: { error: 'RATE_LIMITED' }, closes: true, connection, index: 0 });
            await eventually(() => waits.waiting().length === (beside ? 2 : 1), { what: 'the call waits out the 429' });
            if (beside) {
              // The 502's backoff ends inside the pause: its retry waits the pause out instead of going out.
              waits.fireFirst();
              await eventually(() => waits.waiting().length === 2, { what: 'the retry after the 502 waits out the pause' });
            }
          });
          break;
        }
        case 'idle': {
          const connection = await open();
          connection.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
          await eventually(() => connection.answers().length === 1, { what: 'the idle connection answered before the shutdown' });
          const [answer] = connection.answers();
          assert.equal(answer!.status, 200);
          checks.push(() => assert.ok(connection.closed, `${requestId}: an idle keep-alive connection is closed by the shutdown`));
          break;
        }
        case 'unused': {
          const connection = await open();
          checks.push(() => assert.ok(connection.closed, `${requestId}: a connection that sent nothing is closed by the shutdown`));
          break;
        }
        case 'arriving': {
          const connection = await open();
          // Its account held at the emulator when its body comes after the grace period: a call the gateway sent
          // then would never be answered, nor the request, and the shutdown would need the cut.
          const accountId = item.finish === 'afterGrace' ? holdAccount('never').id : emulator.store.createAccount({ email: `arriving${n}@example.com` }).id;
          const asked = askedOf(item.asks, accountId);
          const body = JSON.stringify({ query: asked.query });
          connection.socket.write(
            `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${requestId}\r\nexpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
          );
          afterStarted.push(async () => {
            await eventually(() => connection.socket.bytesRead > 0, { what: '100 Continue' });
            connection.socket.write(body.slice(0, 5));
          });
          if (item.finish === 'never') {
            noLine.push(requestId);
            notSent.push({ requestId, accountId });
            checks.push(() => assert.ok(connection.closed, `${requestId}: a request that never arrived whole has its connection closed by the shutdown`));
          } else if (item.finish === 'afterGrace') {
            // Stopped as its operation starts: what needs the upstream fails, saying the grace period was over when
            // it began, and nothing of it goes out (a write does not take effect); what needs nothing is answered.
            marks.afterGrace.push(() => connection.socket.write(body.slice(5)));
            notSent.push({ requestId, accountId });
            expected.push({ requestId, what: `arriving (${item.asks}), its body finished after the grace period`, outcome: asked.stopped, closes: true, connection, index: 0, upstreamRequests: 0 });
            if (item.asks === 'write') checks.push(() => assert.equal(emulator.store.getAccount(accountId)?.last_name, '', `${requestId}: its write did not take effect`));
          } else {
            marks[item.finish].push(() => connection.socket.write(body.slice(5)));
            settle(item.finish, `${requestId}: its body finished, answered`, answered(connection, 1));
            expected.push({ requestId, what: `arriving (${item.asks}), its body finished at ${item.finish}`, outcome: { data: asked.data }, closes: true, connection, index: 0 });
            if (item.asks === 'write') checks.push(() => assert.equal(emulator.store.getAccount(accountId)?.last_name, 'Changed', `${requestId}: its write took effect`));
          }
          break;
        }
        case 'pipelinedDuringDrain': {
          marks.drain.push(() => {
            const connection = new Connection(port);
            connections.push(connection);
            let bytes = '';
            for (let i = 0; i < item.count; i++) bytes += post(`${requestId}-${i}`, TYPENAME);
            connection.socket.write(bytes);
            settle('drain', `${requestId}: all ${item.count} answered`, answered(connection, item.count));
            for (let i = 0; i < item.count; i++) {
              // The last answer closes the connection; those ahead of it must not, or Node drops the rest.
              expected.push({ requestId: `${requestId}-${i}`, what: `pipelined during the drain, ${i + 1} of ${item.count}`, outcome: { data: { __typename: 'Query' } }, closes: i === item.count - 1 ? true : undefined, connection, index: i });
            }
          });
          break;
        }
        case 'newDuringDrain': {
          marks.drain.push(() => {
            const connection = new Connection(port);
            connections.push(connection);
            settle('drain', `${requestId}: ${item.path} during the drain answered`, answered(connection, 1));
            if (item.path === '/healthz') {
              connection.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
              checks.push(() => {
                const answers = connection.answers();
                assert.equal(answers.length, 1, `${requestId}: /healthz during the drain answered`);
                assert.deepEqual([answers[0]!.status, JSON.parse(answers[0]!.body), answers[0]!.headers['connection']], [503, { status: 'shutting down' }, 'close'], `${requestId}: /healthz during the drain`);
              });
            } else {
              connection.socket.write(post(requestId, TYPENAME));
              expected.push({ requestId, what: 'a new connection during the drain', outcome: { data: { __typename: 'Query' } }, closes: true, connection, index: 0 });
            }
          });
          break;
        }
        case 'heldFromDrain': {
          // Begun during the drain: the shutdown waits for it, and stops it at the grace period's end, as any.
          const account = holdAccount(item.release);
          marks.drain.push(() => {
            const connection = new Connection(port);
            connections.push(connection);
            connection.socket.write(post(requestId, account.query));
            settle('drain', `${requestId}: its upstream request held`, () => held.waiting(account.key));
            settle(item.release, `${requestId}: released, answered`, answered(connection, 1));
            expected.push({ requestId, what: `begun during the drain, released ${item.release}`, outcome: account.terminal ? { error: 'UPSTREAM_TIMEOUT' } : { data: account.data }, closes: true, connection, index: 0 });
          });
          break;
        }
        case 'idleReusedDuringDrain': {
          // Idle when the shutdown begins, its client sends its next request during the drain: served, closing it.
          const connection = await open();
          connection.socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
          await eventually(() => connection.answers().length === 1, { what: 'the idle connection answered before the shutdown' });
          marks.drain.push(() => connection.socket.write(post(requestId, TYPENAME)));
          settle('drain', `${requestId}: answered on its reused connection`, answered(connection, 2));
          expected.push({ requestId, what: 'an idle connection reused during the drain', outcome: { data: { __typename: 'Query' } }, closes: true, connection, index: 1 });
          break;
        }
        case 'leaves': {
          const account = holdAccount('never');
          const connection = await open();
          connection.socket.write(post(requestId, account.query));
          marks[item.at].push(() => connection.socket.destroy());
          settle(item.at, `${requestId}: its line written`, () => logged(requestId));
          expected.push({ requestId, what: `its client left at ${item.at}`, outcome: 'wentAway', closes: undefined, connection: undefined, index: 0 });
          break;
        }
        case 'headersArriving': {
          // Its headers not yet all in when the shutdown begins: a request still arriving, on a connection left open.
          const connection = await open();
          const request = item.path === '/healthz' ? 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n' : post(requestId, TYPENAME);
          const split = request.indexOf('\r\n') + 2;
          connection.socket.write(request.slice(0, split));
          marks[item.finish].push(() => connection.socket.write(request.slice(split)));
          settle(item.finish, `${requestId}: its headers finished, answered`, answered(connection, 1));
          if (item.path === '/graphql') {
            expected.push({ requestId, what: `headers finished at ${item.finish}`, outcome: { data: { __typename: 'Query' } }, closes: true, connection, index: 0 });
          } else {
            checks.push(() => {
              const answers = connection.answers();
              assert.equal(answers.length, 1, `${requestId}: /healthz finished at ${item.finish} answered`);
              assert.deepEqual([answers[0]!.status, JSON.parse(answers[0]!.body), answers[0]!.headers['connection']], [503, { status: 'shutting down' }, 'close'], `${requestId}: /healthz finished at ${item.finish}`);
            });
          }
          break;
        }
        case 'pipelinedDuringShutdown': {
          // Its head held; more requests sent behind it once the shutdown has begun: each answered, the last closing.
          const account = holdAccount(item.release);
          const connection = await open();
          connection.socket.write(post(`${requestId}-head`, account.query));
          expected.push({
            requestId: `${requestId}-head`,
            what: `head of requests pipelined at ${item.at}, released ${item.release}`,
            outcome: account.terminal ? { error: 'UPSTREAM_TIMEOUT' } : { data: account.data },
            closes: undefined,
            connection,
            index: 0,
          });
          marks[item.at].unshift(() => {
            let bytes = '';
            for (let i = 0; i < item.behind; i++) bytes += post(`${requestId}-behind${i}`, TYPENAME);
            connection.socket.write(bytes);
          });
          // Made (queued behind the head) before the test goes on: the grace period's end has nothing of them to stop.
          for (let i = 0; i < item.behind; i++) settle(item.at, `${requestId}-behind${i}: its answer made`, () => made(`${requestId}-behind${i}`));
          settle(item.release, `${requestId}: released, it and those behind it answered`, answered(connection, 1 + item.behind));
          for (let i = 0; i < item.behind; i++) {
            expected.push({
              requestId: `${requestId}-behind${i}`,
              what: `pipelined at ${item.at} behind a held one`,
              outcome: { data: { __typename: 'Query' } },
              closes: i === item.behind - 1 ? true : undefined,
              connection,
              index: i + 1,
            });
          }
          break;
        }
        case 'queued': {
          // Sent once every upstream slot is held (below): it waits in the gateway's queue.
          const { id } = emulator.store.createAccount({ email: `queued${n}@example.com` });
          emulator.addFault({ path: `/accounts/${id}`, answerAfterMs: 999 });
          queuedSends.push(async () => {
            const connection = await open();
            connection.socket.write(post(requestId, `{ account(id: "${id}") { id } }`));
            expected.push({ requestId, what: 'waiting for an upstream slot', outcome: { error: 'UPSTREAM_TIMEOUT' }, closes: true, connection, index: 0 });
          });
          break;
        }
        case 'afterListenerClosed': {
          marks.listenerClosed.push(() => {
            const connection = new Connection(port);
            connections.push(connection);
            settle('listenerClosed', `${requestId}: refused`, () => connection.closed);
            checks.push(() => assert.equal(connection.error, 'ECONNREFUSED', `${requestId}: a connection after the listener closed is refused`));
          });
          break;
        }
        case 'slowReader': {
          const connection = await open();
          connection.socket.write(post(requestId, '{ accounts(first: 100) { nodes { firstName } } }'));
          await eventually(() => connection.socket.bytesRead > 0, { what: 'the slow answer began', timeoutMs: BIG_ANSWER_MS });
          connection.socket.pause();
          if (item.reads === 'never') {
            expected.push({ requestId, what: 'a client that stopped reading', outcome: 'cut', closes: undefined, connection: undefined, index: 0 });
          } else {
            marks.listenerClosed.push(() => connection.socket.resume());
            settle('listenerClosed', `${requestId}: the whole answer read`, answered(connection, 1), BIG_ANSWER_MS);
            expected.push({ requestId, what: 'a slow reader reading during the shutdown', outcome: { data: 'big' }, closes: undefined, connection, index: 0 });
          }
          // A paused socket never reads the gateway's close: only the one that reads is waited for.
          if (item.reads === 'duringShutdown') slowDone = connection.ended;
          break;
        }
      }
    }
    // Every held request is at the emulator, and the rate-limited call waits, before the shutdown begins.
    for (const action of afterStarted) await action();
    for (const action of marksBefore) await action();
    // The answers released before have left the emulator: what is still in it is held.
    await eventually(() => emulator.inFlight === heldCount(drawn.items), { what: 'the held requests in flight upstream, and only they' });
    for (const send of queuedSends) await send();
    if (queuedSends.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(emulator.inFlight, heldCount(drawn.items), 'the queued operations wait in the gateway, none of their requests sent');
    }
    for (const { what, holds } of settledBefore) await eventually(holds, { what });
    await eventually(() => connections.every(readByGateway), { what: 'the gateway has read all sent before the shutdown' });

    if (drawn.drainMs === 0) {
      marks.listenerClosed.push(...marks.drain.splice(0));
      settles.listenerClosed.push(...settles.drain.splice(0));
    }
    /** Does a mark's actions and waits until the gateway has done with them (read, answered, logged). */
    const atMark = async (mark: 'drain' | 'listenerClosed') => {
      fire(mark);
      for (const { what, holds, timeoutMs } of settles[mark]) await eventually(holds, { what: `at ${mark}: ${what}`, ...(timeoutMs !== undefined && { timeoutMs }) });
      await eventually(() => connections.every(readByGateway), { what: `at ${mark}: the gateway has read all sent` });
    };
    /** The shutdown's next wait, asked of its timer, in order: its length as configured. */
    let waitsSeen = 0;
    const nextWait = async (what: string, ms: number): Promise<ShutdownWait> => {
      const at = waitsSeen++;
      await eventually(() => shutdownTimer.asked.length > at, { what: `the shutdown asks for ${what}` });
      const wait = shutdownTimer.asked[at]!;
      assert.equal(wait.ms, ms, `${what}: its length`);
      return wait;
    };

    let settled = false;
    const stopping = gateway.close().then(() => (settled = true));
    if (drawn.drainMs > 0) {
      const drain = await nextWait('the drain', drawn.drainMs);
      await atMark('drain');
      assert.equal(drain.state, 'waiting', 'the drain ends only as its timer fires');
      drain.fire();
    }
    // Asked as the listener closes (its close() called just before).
    const grace = await nextWait('the grace period', drawn.graceMs);
    await atMark('listenerClosed');
    /** The cut's wait, when the grace period ended: fired only when something must be cut. */
    let cut: ShutdownWait | undefined;
    if (drawn.items.some(outlastsGrace)) {
      assert.equal(grace.state, 'waiting', 'the grace period still running: something outlasts it');
      grace.fire();
      // The gateway aborted what still ran as the timer fired: answers let go now reach it only after.
      fire('afterGrace');
      for (const e of expected) {
        if (e.connection && e.outcome !== 'cut' && e.outcome !== 'wentAway') await eventually(answered(e.connection, e.index + 1), { what: `after the grace period: ${e.requestId} (${e.what}) answered` });
      }
      cut = await nextWait('the cut, a second after the grace period', 1_000);
      // Only what must be cut waits for it (a client that stopped reading, a request that never arrived): the
      // rest has closed its connection or been swept idle (a request whose body came after the grace period
      // answered at once), and the stop settles without it.
      if (drawn.items.some((item) => (item.kind === 'slowReader' && item.reads === 'never') || (item.kind === 'arriving' && item.finish === 'never'))) cut.fire();
    }
    // A hang guard, not a margin: the stop needs no timer of the test's from here.
    await Promise.race([stopping, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
    assert.ok(settled, `the stop settles (within 30 s; the shutdown's waits: ${JSON.stringify(shutdownTimer.asked.map(({ ms, state }) => ({ ms, state })))})`);
    if (!drawn.items.some(outlastsGrace)) assert.equal(grace.state, 'cancelled', 'nothing outlasts the grace period: the shutdown ends before it, and cancels it');
    if (cut && cut.state !== 'fired') assert.equal(cut.state, 'cancelled', 'nothing had to be cut: the shutdown ends without the cut, and cancels it');
    const upstreamAtStop = emulator.requests.length + emulator.inFlight;

    // Whatever the gateway still had waiting: none of it may reach the upstream now.
    waits.fireAll();
    held.releaseAll();
    await eventually(() => emulator.inFlight === 0, { what: 'the upstream idle' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(emulator.requests.length, upstreamAtStop, `no upstream request after the stop: ${JSON.stringify(emulator.requests.slice(upstreamAtStop).map((r) => `${r.method} ${r.path}`))}`);
    for (const { requestId, accountId } of notSent) {
      const sent = emulator.requests.filter((r) => r.requestId === requestId || r.path.includes(accountId));
      assert.deepEqual(sent.map((r) => `${r.method} ${r.path}`), [], `${requestId}: nothing of it reaches the upstream`);
    }

    for (const connection of connections) await Promise.race([connection.ended, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    if (slowDone) await slowDone;
    for (const check of checks) check();

    const operations = logEntries(running.lines).filter((entry) => entry['message'] === 'operation');
    const byId = new Map<string, Array<Record<string, unknown>>>();
    for (const line of operations) byId.set(String(line['requestId']), [...(byId.get(String(line['requestId'])) ?? []), line]);
    assert.deepEqual(
      [...byId.keys()].sort(),
      expected.map((e) => e.requestId).sort(),
      'one operation line for each operation the model counts, none for the rest',
    );
    for (const id of noLine) assert.ok(!byId.has(id), `${id}: no operation line`);
    for (const e of expected) {
      const lines = byId.get(e.requestId)!;
      assert.equal(lines.length, 1, `${e.requestId} (${e.what}): exactly one operation line`);
      const [line] = lines as [Record<string, unknown>];
      if (e.outcome === 'cut') {
        assert.deepEqual([line['status'], line['cutAtShutdown'], line['clientWentAway']], [null, true, undefined], `${e.requestId} (${e.what}): its line`);
        continue;
      }
      if (e.outcome === 'wentAway') {
        assert.deepEqual([line['status'], line['cutAtShutdown'], line['clientWentAway']], [null, undefined, true], `${e.requestId} (${e.what}): its line`);
        continue;
      }
      assert.deepEqual([line['status'], line['cutAtShutdown'], line['clientWentAway']], [200, undefined, undefined], `${e.requestId} (${e.what}): its line ${JSON.stringify(line)}`);
      assert.deepEqual(line['errors'], 'error' in e.outcome ? [e.outcome.error] : undefined, `${e.requestId} (${e.what}): its line's errors`);
      if (e.upstreamRequests !== undefined && 'upstreamRequests' in line) assert.equal(line['upstreamRequests'], e.upstreamRequests, `${e.requestId} (${e.what}): its line's upstreamRequests`);
      if (!e.connection) continue;
      const answer = e.connection.answers()[e.index];
      assert.ok(answer, `${e.requestId} (${e.what}): answered whole (answers on its connection: ${e.connection.answers().length})`);
      assert.equal(answer.status, 200, `${e.requestId}: status`);
      const body = JSON.parse(answer.body) as { data?: unknown; errors?: Array<{ message?: string; extensions?: { code?: string } }> };
      if ('error' in e.outcome) {
        assert.deepEqual(body.errors?.map((error) => error.extensions?.code), [e.outcome.error], `${e.requestId} (${e.what}): ${answer.body}`);
        if ('data' in e.outcome) assert.deepEqual(body.data, e.outcome.data, `${e.requestId} (${e.what}): its data`);
        if (e.outcome.message) assert.match(body.errors![0]!.message ?? '', e.outcome.message, `${e.requestId} (${e.what}): its message`);
      } else if (e.outcome.data === 'big') assert.equal((body.data as { accounts: { nodes: unknown[] } }).accounts.nodes.length, 100, `${e.requestId}: the whole answer`);
      else assert.deepEqual(body, { data: e.outcome.data }, `${e.requestId} (${e.what})`);
      if (e.closes === true) assert.equal(answer.headers['connection'], 'close', `${e.requestId} (${e.what}): its answer closes its connection`);
      // Only the last answer a connection gets may close it (Node drops what waits behind one that does).
      if (e.index < e.connection.answers().length - 1) assert.notEqual(answer.headers['connection'], 'close', `${e.requestId} (${e.what}): answers wait behind it`);
    }
  } catch (error) {
    if (error instanceof Error) {
      const grace = running.lines.filter((line) => !line.includes('"operation"')).join('\n');
      error.message = `seed ${seed}, case ${index} (RANDOM_SHUTDOWN_SEED=${seed} RANDOM_SHUTDOWN_ONLY=${index}): ${JSON.stringify(drawn)}\n${error.message}\nother log lines:\n${grace}`;
    }
    throw error;
  } finally {
    for (const connection of connections) connection.socket.destroy();
    // A case that failed midway: its shutdown's waits (those asked and any asked later) ended by hand as they come.
    let closed = running.gateway === undefined;
    void running.gateway?.close().then(() => (closed = true));
    while (!closed) {
      for (const wait of shutdownTimer.asked) if (wait.state === 'waiting') wait.fire();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    held.releaseAll();
    await emulator.close();
  }
}

/** The upstream requests the case holds at the emulator when the shutdown begins. */
const heldCount = (items: readonly Item[]): number =>
  items.filter((item) => ((item.kind === 'held' || item.kind === 'pipelinedBehindHeld' || item.kind === 'pipelinedDuringShutdown') && item.release !== 'before') || item.kind === 'leaves').length;

describe('random graceful shutdowns: every operation answered, cut or refused as the docs say, each logged once, nothing sent upstream after', () => {
  it(`runs ${CASES} seeded cases in process (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const random = new Random(SEED);
    for (let index = 0; index < CASES; index++) {
      const drawn = drawCase(random);
      if (ONLY !== undefined && ONLY !== index) continue;
      await runCase(SEED, index, drawn);
    }
  });

  it(`runs ${PROCESS_CASES} seeded cases as npm start does, stopped by SIGTERM (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const random = new Random(SEED ^ 0x5157);
    for (let index = 0; index < PROCESS_CASES; index++) {
      // Real time here (a process takes no timer): nothing is let go during the shutdown, and a drain and grace
      // period of over a second leave the rest (answering what the grace period stopped) ample time.
      const drainMs = random.chance(0.5) ? 0 : 1_000 + random.int(500);
      const graceMs = 1_000 + random.int(500);
      const releases = Array.from({ length: 1 + random.int(4) }, () => random.pick(['before', 'never'] as const));
      const drawn = { drainMs, graceMs, releases };
      const held = keyedTimer();
      const upstream = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret', faultTimer: held.timer });
      const connections: Connection[] = [];
      let run: ReturnType<typeof runScript> | undefined;
      try {
        run = runScript('src/main.ts', {
          PORT: '0',
          LOG_LEVEL: 'info',
          CONTEXTIO_API_URL: upstream.url,
          CONTEXTIO_CONSUMER_KEY: 'remote-key',
          CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
          SHUTDOWN_DRAIN_MS: String(drainMs),
          SHUTDOWN_GRACE_MS: String(graceMs),
          UPSTREAM_TIMEOUT_MS: '120000',
          OPERATION_TIMEOUT_MS: '300000',
        });
        const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
        // Its check of the upstream at start answered first.
        await eventually(() => upstream.requests.length > 0, { timeoutMs: 30_000 });
        const port = Number(new URL(url!).port);
        const ids: string[] = [];
        for (const [i, release] of releases.entries()) {
          const { id } = upstream.store.createAccount({ email: `held${i}@example.com` });
          upstream.addFault({ path: `/accounts/${id}`, answerAfterMs: 1_000 + i });
          const connection = new Connection(port);
          connections.push(connection);
          await connection.opened();
          connection.socket.write(post(`process${index}-${i}`, `{ account(id: "${id}") { id } }`));
          ids.push(`process${index}-${i}`);
          await eventually(() => held.waiting(1_000 + i), { timeoutMs: 30_000 });
          if (release === 'before') {
            held.release(1_000 + i);
            await eventually(() => connection.answers().length === 1, { timeoutMs: 30_000 });
          }
        }
        run.child.kill('SIGTERM');
        const [code] = await run.exited;
        const lines = run.lines;
        const upstreamAtStop = upstream.requests.length + upstream.inFlight;
        held.releaseAll();
        await eventually(() => upstream.inFlight === 0);
        await new Promise((resolve) => setTimeout(resolve, 50));
        try {
          assert.equal(code, 0, 'exits 0');
          assert.equal(upstream.requests.length, upstreamAtStop, 'no upstream request after the process stopped');
          const entries = logEntries(lines);
          const last = entries.at(-1)!;
          assert.deepEqual([last['message'], last['exitCode']], ['stopped', 0], 'the stopped line comes last');
          const begins = entries.findIndex((entry) => entry['message'] === 'shutting down');
          assert.ok(begins >= 0, 'a shutting down line');
          const operations = entries.map((entry, at) => ({ entry, at })).filter(({ entry }) => entry['message'] === 'operation');
          assert.deepEqual(operations.map(({ entry }) => entry['requestId']).sort(), [...ids].sort(), 'one operation line each');
          for (const [i, release] of releases.entries()) {
            const { entry, at } = operations.find(({ entry }) => entry['requestId'] === ids[i])!;
            if (release === 'never') {
              assert.ok(at > begins, `${ids[i]}: logged during the shutdown`);
              assert.deepEqual([entry['status'], entry['errors']], [200, ['UPSTREAM_TIMEOUT']], `${ids[i]}: ${JSON.stringify(entry)}`);
              const answer = connections[i]!.answers()[0];
              assert.equal(answer?.headers['connection'], 'close', `${ids[i]}: answered, closing its connection`);
            } else {
              assert.deepEqual([entry['status'], entry['errors']], [200, undefined], `${ids[i]}: ${JSON.stringify(entry)}`);
            }
          }
        } catch (error) {
          if (error instanceof Error) error.message = `seed ${SEED}, process case ${index}: ${JSON.stringify(drawn)}\n${error.message}\n${lines.join('\n')}`;
          throw error;
        }
      } finally {
        // A case that failed before its SIGTERM leaves no process behind.
        if (run && run.child.exitCode === null && run.child.signalCode === null) {
          run.child.kill('SIGKILL');
          await run.exited;
        }
        for (const connection of connections) connection.socket.destroy();
        held.releaseAll();
        await upstream.close();
      }
    }
  });
});
