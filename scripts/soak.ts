import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { DEFAULTS } from '../src/defaults.ts';
import { ErrorCode, OPERATION_CODES } from '../src/errors.ts';
import { startEmulator, type Emulator } from '../src/emulator/index.ts';

/**
 * `npm run soak`: the gateway under sustained mixed load while its upstream misbehaves.
 *
 * The emulator runs in this process (so faults can be steered) and the gateway in a child process (so its
 * memory and a crash are its own). Many concurrent clients send a mix of reads, fan-outs, mutations,
 * refused operations and requests they abort mid-flight, for a bounded time and a bounded number of
 * requests, on loopback only. Every answer is checked to be well-formed GraphQL. Exit 1 when an answer is
 * malformed or wrong, a request gets no answer, the gateway crashes, or its memory grows without bound
 * (see MEMORY RULE below). `--out docs/soak.md` writes the report.
 */

const HELP = `usage: npm run soak -- [options]
  --duration <s>             seconds of load after start-up (default 60)
  --connections <n>          concurrent clients (default 64)
  --max-requests <n>         hard cap on requests sent (default 400000)
  --warmup <s>               seconds before the memory baseline is taken (default 10, or a third of a shorter run)
  --upstream-timeout-ms <n>  the gateway's UPSTREAM_TIMEOUT_MS (default 2000)
  --max-in-flight <n>        the gateway's UPSTREAM_MAX_IN_FLIGHT (default: the gateway's own, ${DEFAULTS.upstreamMaxInFlight})
  --accounts <n>             seeded accounts (default 40)
  --out <file>               also write the report (markdown) to this file`;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    connections: { type: 'string', default: '64' },
    'max-requests': { type: 'string', default: '400000' },
    warmup: { type: 'string' },
    'upstream-timeout-ms': { type: 'string', default: '2000' },
    'max-in-flight': { type: 'string', default: String(DEFAULTS.upstreamMaxInFlight) },
    accounts: { type: 'string', default: '40' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const positiveInt = (name: keyof typeof args): number => {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`soak: --${name} must be a positive integer\n${HELP}`);
    process.exit(2);
  }
  return value;
};
const settings = {
  durationS: positiveInt('duration'),
  connections: positiveInt('connections'),
  maxRequests: positiveInt('max-requests'),
  // A short run (--duration 10) gets a proportionate warm-up rather than a refusal.
  warmupS: args.warmup === undefined ? Math.max(1, Math.min(10, Math.floor(Number(args.duration) / 3))) : positiveInt('warmup'),
  upstreamTimeoutMs: positiveInt('upstream-timeout-ms'),
  maxInFlight: positiveInt('max-in-flight'),
  accounts: Math.max(12, positiveInt('accounts')),
  usedTokens: 100,
  unusedTokens: 20,
};
if (settings.warmupS >= settings.durationS) {
  console.error('soak: --warmup must be shorter than --duration');
  process.exit(2);
}

/** A request with no answer after this long is a failure (the gateway's own deadlines are far shorter). */
const CLIENT_TIMEOUT_MS = 30_000;
/**
 * MEMORY RULE. The baseline is the gateway's peak RSS over the first window after warm-up, the end figure
 * its peak RSS over the last window of load (a window is a quarter of the measured time, 5 to 10 s). The
 * memory is judged unbounded when end > 2 × baseline + RSS_MARGIN, or when the heap left after a full GC
 * once the load has drained exceeds 2 × the heap after a full GC at the end of warm-up + HEAP_MARGIN.
 */
const RSS_MARGIN_BYTES = 64 * 1024 * 1024;
const HEAP_MARGIN_BYTES = 32 * 1024 * 1024;

/** Codes a well-formed answer may carry: the contract's, and those Apollo and graphql-js raise themselves. */
const KNOWN_CODES: ReadonlySet<string> = new Set([...Object.values(ErrorCode), ...OPERATION_CODES]);

const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));
const hex24 = () => randomBytes(12).toString('hex');

// ---- seed data and faults -------------------------------------------------------------------------

interface Seed {
  /** Accounts without permanent faults (some with latency). */
  healthy: string[];
  broken: string[];
  throttled: string[];
  flaky: string[];
  hanging: string[];
  all: string[];
  usedTokens: string[];
  unusedTokens: string[];
}

/**
 * Dozens of accounts with one to three sources each (some not OK) and account-level tokens for half of
 * them; 100 used top-level connect tokens attached to the accounts (a few tokens per account, as an app
 * whose users reconnect has), and 20 unused ones. The hanging accounts are reached by no token, so a
 * fan-out over the first page is not always held to the deadline.
 */
function seed(emulator: Emulator): Seed {
  const store = emulator.store;
  const statuses = ['OK', 'OK', 'OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'TEMP_DISABLED'];
  const all: string[] = [];
  for (let i = 0; i < settings.accounts; i++) {
    const email = `user${i}@soak.example.com`;
    const sources = Array.from({ length: 1 + (i % 3) }, (_, s) => ({
      email: s === 0 ? email : `user${i}.alt${s}@soak.example.org`,
      server: s === 0 ? 'imap.soak.example.com' : 'imap.soak.example.org',
      username: `user${i}.${s}`,
      status: statuses[(i + s) % statuses.length]!,
    }));
    const account = store.createAccount({ email, first_name: 'Soak', last_name: `User ${i}`, nb_messages: 500 + i * 7, nb_files: i, sources });
    all.push(account.id);
    if (i % 2 === 0) {
      store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback', email });
      store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback' });
    }
  }
  const [broken, throttled, flaky, hanging] = [all.slice(0, 2), all.slice(2, 3), all.slice(3, 4), all.slice(4, 6)];
  const reachable = all.filter((id) => !hanging.includes(id));
  const usedTokens: string[] = [];
  for (let i = 0; i < settings.usedTokens; i++) {
    const email = `connect${i}@soak.example.com`;
    const token = store.createConnectToken(null, { callback_url: 'http://127.0.0.1/callback', email }).token;
    store.useConnectToken(token, { existingAccountId: reachable[i % reachable.length]! });
    usedTokens.push(token);
  }
  const unusedTokens = Array.from(
    { length: settings.unusedTokens },
    (_, i) => store.createConnectToken(null, { callback_url: 'http://127.0.0.1/callback', email: `pending${i}@soak.example.com` }).token,
  );
  return { healthy: all.slice(6), broken, throttled, flaky, hanging, all, usedTokens, unusedTokens };
}

const FAULT_DESCRIPTION = [
  '2 accounts answer `GET /accounts/{id}` with 500 always',
  '1 account answers 429 without `Retry-After` always (retried with backoff, then RATE_LIMITED); 1 more answers 429 with `Retry-After: 0` once a second (the retry succeeds)',
  'every 10 s the next `GET /accounts/{id}` answers 429 with `Retry-After: 1`: the key is limited, so every call waits 1 s (or fails at once when that would pass its deadline)',
  '2 accounts never answer `GET /accounts/{id}` (hang; reached by no connect token)',
  'a third of the other accounts answer after 5–50 ms, `GET /connect_tokens` after 5–50 ms (changing every 0.5 s), `GET /accounts` after 10 ms',
  'every 0.5 s: the next 3 `GET /accounts/{id}` answer 503, the next `GET /connect_tokens/{token}` 500; every 2 s the next `POST /connect_tokens` 500',
];

/** Permanent per-account faults, then rotating ones; returns a stop function. */
function injectFaults(emulator: Emulator, data: Seed): () => void {
  for (const id of data.broken) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 500 });
  // No Retry-After: the gateway cannot tell how long, so it retries this call alone rather than pausing the key.
  for (const id of data.throttled) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 429 });
  for (const id of data.hanging) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, hang: true });
  data.healthy.forEach((id, i) => {
    if (i % 3 === 0) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, latencyMs: between(5, 50) });
  });
  emulator.addFault({ method: 'GET', path: '/accounts', latencyMs: 10 });

  let rotating: Array<() => void> = [];
  let ticks = 0;
  const rotate = () => {
    for (const remove of rotating) remove();
    rotating = [
      emulator.addFault({ method: 'GET', path: '/connect_tokens', latencyMs: between(5, 50) }),
      emulator.addFault({ method: 'GET', path: /^\/accounts\/[0-9a-f]+$/, status: 503, times: 3 }),
      emulator.addFault({ method: 'GET', path: /^\/connect_tokens\/[^/]+$/, status: 500, times: 1 }),
    ];
    if (ticks % 2 === 0) rotating.push(...data.flaky.map((id) => emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 429, retryAfter: 0, times: 1 })));
    // The key's limit reached now and then: a 429 with a Retry-After pauses every call of the gateway.
    if (ticks % 20 === 0) rotating.push(emulator.addFault({ method: 'GET', path: /^\/accounts\/[0-9a-f]+$/, status: 429, retryAfter: 1, times: 1 }));
    if (ticks % 4 === 0) rotating.push(emulator.addFault({ method: 'POST', path: '/connect_tokens', status: 500, times: 1 }));
    ticks++;
  };
  rotate();
  const timer = setInterval(rotate, 500);
  return () => {
    clearInterval(timer);
    emulator.clearFaults();
  };
}

// ---- the gateway in its own process ---------------------------------------------------------------

interface MemoryStats {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  maxRssBytes: number;
}

interface GatewayChild {
  url: string;
  origin: string;
  process: ChildProcess;
  /** Set when the process ended without being asked to. */
  crashed: string | undefined;
  /** Log lines by `level: message`, and the first error lines. */
  logCounts: Map<string, number>;
  errorSamples: string[];
  call(type: 'stats' | 'gc'): Promise<MemoryStats>;
  stop(): Promise<void>;
}

async function startGatewayChild(emulator: Emulator): Promise<GatewayChild> {
  const file = fileURLToPath(new URL('./soak-gateway.ts', import.meta.url));
  const child = fork(file, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      SOAK_UPSTREAM_URL: emulator.url,
      SOAK_UPSTREAM_KEY: emulator.consumerKey,
      SOAK_UPSTREAM_SECRET: emulator.consumerSecret,
      SOAK_UPSTREAM_TIMEOUT_MS: String(settings.upstreamTimeoutMs),
      SOAK_UPSTREAM_MAX_IN_FLIGHT: String(settings.maxInFlight),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // Its own process group: Ctrl-C reaches only this script, which then stops the gateway itself.
    detached: true,
  });
  const logCounts = new Map<string, number>();
  const errorSamples: string[] = [];
  const tally = (line: string) => {
    let key = `(not JSON) ${line.slice(0, 120)}`;
    let level = 'unknown';
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string };
      level = String(entry.level);
      key = `${level}: ${entry.message}`;
    } catch {
      // counted as not JSON
    }
    logCounts.set(key, (logCounts.get(key) ?? 0) + 1);
    if (level !== 'warn' && level !== 'info' && errorSamples.length < 5) errorSamples.push(line.slice(0, 600));
  };
  createInterface({ input: child.stdout! }).on('line', tally);
  createInterface({ input: child.stderr! }).on('line', tally);

  let nextId = 1;
  const pending = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let stopping = false;
  const handle: GatewayChild = {
    url: '',
    origin: '',
    process: child,
    crashed: undefined,
    logCounts,
    errorSamples,
    call(type) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('the gateway process has exited'));
        pending.set(id, { resolve: (m) => resolve(m as unknown as MemoryStats), reject });
        child.send({ type, id });
      });
    },
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.send({ type: 'close', id: nextId++ }, () => undefined);
      await exited;
      clearTimeout(timer);
    },
  };
  const ready = new Promise<string>((resolveReady, rejectReady) => {
    child.on('message', (raw) => {
      const message = raw as Record<string, unknown>;
      if (message['type'] === 'ready') return resolveReady(String(message['url']));
      const waiter = pending.get(Number(message['id']));
      if (!waiter) return;
      pending.delete(Number(message['id']));
      if (typeof message['error'] === 'string') waiter.reject(new Error(message['error']));
      else waiter.resolve(message);
    });
    child.once('exit', (code, signal) => {
      rejectReady(new Error(`the gateway process exited (${signal ?? code}) before it was ready`));
      for (const waiter of pending.values()) waiter.reject(new Error('the gateway process exited'));
      pending.clear();
      if (!stopping) handle.crashed = `exited unasked with ${signal ? `signal ${signal}` : `code ${code}`}`;
    });
  });
  handle.url = await ready;
  handle.origin = new URL(handle.url).origin;
  return handle;
}

// ---- the load -------------------------------------------------------------------------------------

interface KindStats {
  sent: number;
  answered: number;
  aborted: number;
  latenciesMs: number[];
  codes: Map<string, number>;
}

const totals = {
  sent: 0,
  answered: 0,
  abortedOnPurpose: 0,
  transportErrors: 0,
  noAnswer: 0,
  malformed: 0,
  wrong: 0,
  latenciesMs: [] as number[],
  byStatus: new Map<number, number>(),
  byCode: new Map<string, number>(),
  byKind: new Map<string, KindStats>(),
  samples: { malformed: [] as string[], wrong: [] as string[], transport: [] as string[], internal: [] as string[] },
};
const bump = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by);
const kindStats = (kind: string): KindStats => {
  let stats = totals.byKind.get(kind);
  if (!stats) totals.byKind.set(kind, (stats = { sent: 0, answered: 0, aborted: 0, latenciesMs: [], codes: new Map() }));
  return stats;
};
const sample = (list: string[], text: string) => {
  if (list.length < 5) list.push(text.slice(0, 800));
};

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message?: unknown; extensions?: { code?: unknown; stacktrace?: unknown } }>;
}

/** Why an answer is not well-formed GraphQL over HTTP, or undefined when it is. */
function malformation(status: number, contentType: string, text: string, secret: string): string | undefined {
  if (!/^application\/(graphql-response\+)?json\b/.test(contentType)) return `content-type ${JSON.stringify(contentType)}`;
  if (text.includes(secret)) return 'the body contains the consumer secret';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'the body is not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body is not a JSON object';
  const { data, errors } = body as GraphQLBody;
  if (data === undefined && errors === undefined) return 'neither data nor errors';
  if (data !== undefined && data !== null && (typeof data !== 'object' || Array.isArray(data))) return 'data is not an object';
  if (status === 200 && data === undefined) return '200 without data';
  if (status !== 200 && errors === undefined) return `${status} without errors`;
  if (status >= 500) return `HTTP ${status}`;
  if (errors !== undefined) {
    if (!Array.isArray(errors) || errors.length === 0) return 'errors is not a non-empty array';
    for (const error of errors) {
      if (typeof error !== 'object' || error === null || typeof error.message !== 'string') return 'an error without a message';
      const code = error.extensions?.code;
      if (typeof code !== 'string' || !KNOWN_CODES.has(code)) return `an error with code ${JSON.stringify(code)}`;
      if (error.extensions?.stacktrace !== undefined) return 'an error with a stack trace';
    }
  }
  return undefined;
}

interface Answer {
  status: number;
  body: GraphQLBody;
}

const ABORTED_ON_PURPOSE = new Error('soak: aborted on purpose');
const CLIENT_TIMEOUT = new Error('soak: no answer in time');

let stopping = false;
let pool: Pool;
let consumerSecret = '';

/**
 * Sends one request and checks its answer; undefined when there is none to use (aborted, failed, or the
 * request cap is reached).
 */
async function send(
  kind: string,
  request: { method?: 'GET' | 'POST'; path?: string; body?: string; headers?: Record<string, string> },
  abortAfterMs?: number,
): Promise<Answer | undefined> {
  if (totals.sent >= settings.maxRequests) {
    stopping = true;
    return undefined;
  }
  totals.sent++;
  const stats = kindStats(kind);
  stats.sent++;
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(CLIENT_TIMEOUT), CLIENT_TIMEOUT_MS);
  const abortTimer = abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(ABORTED_ON_PURPOSE), abortAfterMs);
  const started = performance.now();
  try {
    const response = await pool.request({
      method: request.method ?? 'POST',
      path: request.path ?? '/graphql',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...request.headers },
      body: request.body,
      signal: controller.signal,
    });
    const text = await response.body.text();
    const latency = performance.now() - started;
    totals.answered++;
    stats.answered++;
    totals.latenciesMs.push(latency);
    stats.latenciesMs.push(latency);
    bump(totals.byStatus, response.statusCode);
    const contentType = String(response.headers['content-type'] ?? '');
    const problem = malformation(response.statusCode, contentType, text, consumerSecret);
    if (problem) {
      totals.malformed++;
      sample(totals.samples.malformed, `${kind}: ${problem}: HTTP ${response.statusCode} ${text}`);
      return undefined;
    }
    const body = JSON.parse(text) as GraphQLBody;
    for (const error of body.errors ?? []) {
      const code = String(error.extensions?.code);
      bump(totals.byCode, code);
      bump(stats.codes, code);
      if (code === 'INTERNAL_SERVER_ERROR') sample(totals.samples.internal, `${kind}: ${text}`);
    }
    if (!body.errors?.length) bump(stats.codes, 'ok');
    return { status: response.statusCode, body };
  } catch (error) {
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
    if (reason === ABORTED_ON_PURPOSE) {
      totals.abortedOnPurpose++;
      stats.aborted++;
    } else if (reason === CLIENT_TIMEOUT) {
      totals.noAnswer++;
      sample(totals.samples.transport, `${kind}: no answer within ${CLIENT_TIMEOUT_MS} ms`);
    } else {
      totals.transportErrors++;
      sample(totals.samples.transport, `${kind}: ${error instanceof Error ? `${error.name} ${(error as { code?: string }).code ?? ''} ${error.message}` : String(error)}`);
    }
    return undefined;
  } finally {
    clearTimeout(timeout);
    clearTimeout(abortTimer);
  }
}

const post = (query: string, variables?: Record<string, unknown>) => ({ body: JSON.stringify({ query, variables }) });

/** Records an answer that is well-formed but wrong for the question asked. */
function wrong(kind: string, answer: Answer, why: string): void {
  totals.wrong++;
  sample(totals.samples.wrong, `${kind}: ${why}: ${JSON.stringify(answer.body).slice(0, 600)}`);
}

const ACCOUNT = `query Account($id: ID!) { account(id: $id) { id username firstName emailAddresses createdAt messageCount sources { label email status } } }`;
const ACCOUNTS = `query Accounts($first: Int, $after: String, $filter: AccountFilter) {
  accounts(first: $first, after: $after, filter: $filter) { edges { cursor node { id username } } nodes { id createdAt } pageInfo { hasNextPage endCursor } } }`;
const FANOUT = `query FanOut { connectTokens(first: 100) { nodes { token used account { id username } } pageInfo { hasNextPage } } }`;
const TOKENS_PAGE = `query Tokens($first: Int, $after: String) { connectTokens(first: $first, after: $after) { nodes { token email used expiresAt } pageInfo { hasNextPage endCursor } } }`;
const DASHBOARD = `query Dashboard($id: ID!, $token: ID!) {
  account(id: $id) { id firstName lastName emailAddresses messageCount fileCount sources { label email status useSsl } connectTokens { token used createdAt expiresAt } }
  connectToken(token: $token) { token used usedAt account { id emailAddresses firstName } } }`;
const TOKEN = `query Token($token: ID!) { connectToken(token: $token) { token used usedAt expiresAt callbackUrl account { id username sources { label } } } }`;
const CREATE = `mutation Create($input: CreateConnectTokenInput!) { createConnectToken(input: $input) { token resourceUrl browserRedirectUrl connectToken { token used } } }`;
const DELETE = `mutation Delete($token: ID!) { deleteConnectToken(token: $token) { success token } }`;
const UPDATE = `mutation Rename($id: ID!, $firstName: String!) { updateAccount(id: $id, input: { firstName: $firstName }) { success account { id firstName } } }`;

/** `account { connectTokens { token account { connectTokens { … id } } } }`, `levels` selection sets deep. */
function deepQuery(id: string, levels: number): string {
  let inner = 'id';
  for (let i = 1; i < levels / 2; i++) inner = `connectTokens { token account { ${inner} } }`;
  return `{ account(id: "${id}") { ${inner} } }`;
}
const aliasQuery = (id: string, count: number) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: account(id: "${id}") { id }`).join(' ')} }`;

/** Connect tokens created by the load whose deletion has not succeeded yet; deleted before new ones are made. */
const undeleted: string[] = [];
/** The last cursor of each filter's list (`''`: unfiltered): a cursor continues only the list it came from. */
const accountsCursors = new Map<string, string | null>();
let tokensCursor: string | null = null;

type Scenario = { kind: string; weight: number; run: (data: Seed) => Promise<void> };

const scenarios: Scenario[] = [
  {
    kind: 'account',
    weight: 18,
    run: async (data) => {
      const id = Math.random() < 0.8 ? pick(data.healthy) : pick(data.all);
      const answer = await send('account', post(ACCOUNT, { id }));
      if (!answer) return;
      const account = answer.body.data?.['account'] as { id?: string } | null | undefined;
      if (account ? account.id !== id : !answer.body.errors?.length) wrong('account', answer, `asked for ${id}`);
    },
  },
  {
    kind: 'account (unknown id)',
    weight: 3,
    run: async () => {
      const answer = await send('account (unknown id)', post(ACCOUNT, { id: hex24() }));
      if (answer && answer.body.data?.['account']) wrong('account (unknown id)', answer, 'an unknown account was found');
    },
  },
  {
    kind: 'accounts page',
    weight: 10,
    run: async () => {
      const first = between(1, 50);
      const variables: Record<string, unknown> = { first };
      if (Math.random() < 0.2) variables['filter'] = pick([{ status: 'OK' }, { statusOk: false }, { email: 'user7@soak.example.com' }]);
      const list = variables['filter'] === undefined ? '' : JSON.stringify(variables['filter']);
      const cursor = accountsCursors.get(list);
      if (cursor && Math.random() < 0.5) variables['after'] = cursor;
      const answer = await send('accounts page', post(ACCOUNTS, variables));
      const page = answer?.body.data?.['accounts'] as { nodes: unknown[]; edges: unknown[]; pageInfo: { endCursor: string | null } } | null | undefined;
      if (!answer || !page) return;
      if (page.nodes.length > first || page.edges.length !== page.nodes.length) wrong('accounts page', answer, `first: ${first}`);
      accountsCursors.set(list, page.pageInfo.endCursor);
    },
  },
  {
    kind: 'connectTokens fan-out',
    weight: 8,
    run: async () => {
      const answer = await send('connectTokens fan-out', post(FANOUT));
      const page = answer?.body.data?.['connectTokens'] as { nodes: unknown[] } | null | undefined;
      if (answer && page && page.nodes.length > 100) wrong('connectTokens fan-out', answer, 'more than 100 tokens');
    },
  },
  {
    kind: 'connectTokens page',
    weight: 4,
    run: async () => {
      const variables: Record<string, unknown> = { first: between(5, 40) };
      if (tokensCursor && Math.random() < 0.5) variables['after'] = tokensCursor;
      const answer = await send('connectTokens page', post(TOKENS_PAGE, variables));
      const page = answer?.body.data?.['connectTokens'] as { pageInfo: { endCursor: string | null } } | null | undefined;
      if (page) tokensCursor = page.pageInfo.endCursor;
    },
  },
  {
    kind: 'dashboard',
    weight: 14,
    run: async (data) => {
      const id = Math.random() < 0.85 ? pick(data.healthy) : pick(data.all);
      const token = Math.random() < 0.8 ? pick(data.usedTokens) : pick(data.unusedTokens);
      const answer = await send('dashboard', post(DASHBOARD, { id, token }));
      if (!answer) return;
      const account = answer.body.data?.['account'] as { id?: string } | null | undefined;
      const connectToken = answer.body.data?.['connectToken'] as { token?: string } | null | undefined;
      if (account && account.id !== id) wrong('dashboard', answer, `asked for account ${id}`);
      if (connectToken && connectToken.token !== token) wrong('dashboard', answer, `asked for token ${token}`);
    },
  },
  {
    kind: 'connectToken',
    weight: 5,
    run: async (data) => {
      const token = Math.random() < 0.7 ? pick(data.usedTokens) : pick(data.unusedTokens);
      const answer = await send('connectToken', post(TOKEN, { token }));
      const found = answer?.body.data?.['connectToken'] as { token?: string } | null | undefined;
      if (answer && found && found.token !== token) wrong('connectToken', answer, `asked for ${token}`);
    },
  },
  {
    kind: 'create + delete connect token',
    weight: 10,
    run: async () => {
      const leftover = undeleted.shift();
      const created = leftover
        ? leftover
        : await (async () => {
            const answer = await send(
              'createConnectToken',
              post(CREATE, { input: { callbackUrl: 'http://127.0.0.1/callback', email: `soak${between(1, 1e6)}@soak.example.com`, firstName: 'Soak' } }),
            );
            const payload = answer?.body.data?.['createConnectToken'] as { token?: unknown } | null | undefined;
            if (answer && payload && typeof payload.token !== 'string') wrong('createConnectToken', answer, 'no token');
            return typeof payload?.token === 'string' ? payload.token : undefined;
          })();
      if (created === undefined || stopping) {
        if (created !== undefined) undeleted.push(created);
        return;
      }
      const answer = await send('deleteConnectToken', post(DELETE, { token: created }));
      const payload = answer?.body.data?.['deleteConnectToken'] as { success?: boolean; token?: string } | null | undefined;
      if (answer && payload && payload.token !== created) wrong('deleteConnectToken', answer, `deleted ${created}`);
      const codes = (answer?.body.errors ?? []).map((e) => e.extensions?.code);
      // Deleted, or already gone (a retried DELETE): done. Anything else: try again later.
      if (!payload?.success && !codes.includes('NOT_FOUND')) undeleted.push(created);
    },
  },
  {
    kind: 'updateAccount',
    weight: 3,
    run: async (data) => {
      const id = pick(data.healthy);
      const answer = await send('updateAccount', post(UPDATE, { id, firstName: `Soak${between(1, 99)}` }));
      const account = (answer?.body.data?.['updateAccount'] as { account?: { id?: string } | null } | null | undefined)?.account;
      if (answer && account && account.id !== id) wrong('updateAccount', answer, `updated ${id}`);
    },
  },
  {
    kind: 'parse error',
    weight: 4,
    run: async () => void (await send('parse error', post(pick(['{ account(id: "x" { id }', 'query {', 'mutation { deleteConnectToken(token: ) }', '}}}'])))),
  },
  {
    kind: 'validation error',
    weight: 3,
    run: async (data) => void (await send('validation error', post(pick([`{ account(id: "${pick(data.all)}") { password } }`, '{ accounts { nodes { nope } } }', '{ account { id } }'])))),
  },
  {
    kind: 'first: 1000',
    weight: 2,
    run: async () => void (await send('first: 1000', post('{ accounts(first: 1000) { nodes { id } } }'))),
  },
  {
    kind: 'too deep (40 levels)',
    weight: 3,
    run: async (data) => void (await send('too deep (40 levels)', post(deepQuery(pick(data.healthy), 40)))),
  },
  {
    kind: '1000 aliases',
    weight: 2,
    run: async (data) => void (await send('1000 aliases', post(aliasQuery(pick(data.healthy), 1000)))),
  },
  {
    kind: 'malformed JSON body',
    weight: 2,
    run: async () => void (await send('malformed JSON body', { body: '{"query": "{ accounts { nodes { id } } }"' })),
  },
  {
    kind: 'GET query',
    weight: 3,
    run: async (data) => {
      const query = encodeURIComponent(ACCOUNT);
      const variables = encodeURIComponent(JSON.stringify({ id: pick(data.healthy) }));
      await send('GET query', { method: 'GET', path: `/graphql?query=${query}&variables=${variables}`, headers: { 'apollo-require-preflight': 'true' } });
    },
  },
  {
    kind: 'aborted by client',
    weight: 8,
    run: async (data) => {
      const body = pick([post(FANOUT), post(DASHBOARD, { id: pick(data.all), token: pick(data.usedTokens) }), post(ACCOUNT, { id: pick(data.all) })]);
      await send('aborted by client', body, between(1, 60));
    },
  },
];
const totalWeight = scenarios.reduce((sum, s) => sum + s.weight, 0);
function pickScenario(): Scenario {
  let r = Math.random() * totalWeight;
  for (const scenario of scenarios) {
    r -= scenario.weight;
    if (r < 0) return scenario;
  }
  return scenarios[0]!;
}

// ---- report ---------------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const ms = (value: number) => (Number.isNaN(value) ? '–' : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`);
const table = (header: string[], rows: Array<Array<string | number>>) =>
  [`| ${header.join(' | ')} |`, `| ${header.map((_h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
const sortedCounts = <K>(map: Map<K, number>) => [...map].sort((a, b) => b[1] - a[1]);

interface MemorySample {
  atS: number;
  rssBytes: number;
  heapUsedBytes: number;
}

interface Outcome {
  failures: string[];
  elapsedS: number;
  memory: {
    samples: MemorySample[];
    /** Heap after a full GC: at the end of warm-up, every 10 s, and once the load has drained. */
    gcSamples: MemorySample[];
    warmup?: MemoryStats;
    startPeak: number;
    endPeak: number;
    windowS: number;
    end?: MemoryStats;
    drainedGc?: MemoryStats;
    slopeMiBPerMin: number;
  };
  upstream: { requests: number; byStatus: Map<number, number>; peakInFlight: number };
  gateway: GatewayChild;
  loadBefore: number[];
  loadAfter: number[];
  startedAt: Date;
}

function report(outcome: Outcome): string {
  const { memory, upstream, gateway } = outcome;
  const all = [...totals.latenciesMs].sort((a, b) => a - b);
  const cpu = cpus();
  const lines: string[] = [];
  lines.push('# Soak test');
  lines.push('');
  lines.push(
    '`npm run soak` (scripts/soak.ts) drives the gateway, in its own process, with many concurrent clients ' +
      'while the embedded emulator, its upstream, injects latency, errors and hangs. Every answer must be ' +
      'well-formed GraphQL (a JSON object with `data` and/or `errors`, every error with a message and a known ' +
      '`extensions.code`, no stack trace, no secret; `data` on every 200, `errors` on every other status, no 5xx); ' +
      'an answer must also be for the question asked (the account or token requested). The run fails on any ' +
      'malformed or wrong answer, a request without an answer (30 s) or a broken connection that the client did ' +
      'not cause, a crash of the gateway, or unbounded memory: peak RSS over the last window of load above ' +
      `2 × the peak RSS over the first window after warm-up + ${MiB(RSS_MARGIN_BYTES)}, or the heap left after a ` +
      `full GC once the load has drained above 2 × the heap after a full GC at the end of warm-up + ${MiB(HEAP_MARGIN_BYTES)}. ` +
      '`INTERNAL_SERVER_ERROR` answers are well-formed but listed as findings.',
  );
  lines.push('');
  lines.push(`Re-run: \`npm run soak -- --duration ${settings.durationS} --warmup ${settings.warmupS} --connections ${settings.connections} --out docs/soak.md\`.`);
  lines.push('');
  lines.push(`## Result: ${outcome.failures.length === 0 ? 'PASS' : 'FAIL'}`);
  lines.push('');
  for (const failure of outcome.failures) lines.push(`- ${failure}`);
  if (outcome.failures.length === 0) lines.push('- no crash, no malformed or wrong answer, every request answered, memory bounded');
  lines.push('');
  lines.push('## Run');
  lines.push('');
  lines.push(
    table(
      ['setting', 'value'],
      [
        ['date', outcome.startedAt.toISOString()],
        ['machine', `${cpu.length} CPU (${cpu[0]?.model.trim() ?? 'unknown'}), shared with other work`],
        ['load average before / after (1 min)', `${outcome.loadBefore[0]!.toFixed(2)} / ${outcome.loadAfter[0]!.toFixed(2)}`],
        ['Node.js', process.version],
        ['duration (load)', `${settings.durationS} s (measured ${outcome.elapsedS.toFixed(1)} s), warm-up ${settings.warmupS} s`],
        ['concurrent clients', settings.connections],
        ['request cap', settings.maxRequests],
        ['gateway', `child process, UPSTREAM_TIMEOUT_MS=${settings.upstreamTimeoutMs}, upstream in-flight cap ${settings.maxInFlight}, log level warn`],
        ['data', `${settings.accounts} accounts (1–3 sources each, half with 2 account-level tokens), ${settings.usedTokens} used connect tokens over them, ${settings.unusedTokens} unused`],
      ],
    ),
  );
  lines.push('');
  lines.push('Faults injected by the emulator throughout:');
  lines.push('');
  for (const fault of FAULT_DESCRIPTION) lines.push(`- ${fault}`);
  lines.push('');
  lines.push('## Requests');
  lines.push('');
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['requests sent', totals.sent],
        ['answered (requests served)', `${totals.answered} (${(totals.answered / outcome.elapsedS).toFixed(0)}/s)`],
        ['aborted by the client on purpose', totals.abortedOnPurpose],
        ['malformed answers', totals.malformed],
        ['wrong answers', totals.wrong],
        ['no answer within 30 s', totals.noAnswer],
        ['connection errors not caused by the client', totals.transportErrors],
        ['latency p50 / p90 / p99 / max (answered)', `${ms(percentile(all, 50))} / ${ms(percentile(all, 90))} / ${ms(percentile(all, 99))} / ${ms(all.at(-1) ?? Number.NaN)}`],
      ],
    ),
  );
  lines.push('');
  lines.push('### Answers by HTTP status');
  lines.push('');
  lines.push(table(['status', 'answers'], [...totals.byStatus].sort((a, b) => a[0] - b[0])));
  lines.push('');
  lines.push('### Errors by code');
  lines.push('');
  lines.push('One answer may carry several errors (a fan-out over several failing accounts).');
  lines.push('');
  lines.push(table(['extensions.code', 'errors'], sortedCounts(totals.byCode)));
  lines.push('');
  lines.push('### By kind of request');
  lines.push('');
  lines.push(
    table(
      ['kind', 'sent', 'answered', 'aborted', 'p50', 'p99', 'outcomes (answers without errors: ok; else errors by code)'],
      [...totals.byKind].map(([kind, s]) => {
        const sorted = [...s.latenciesMs].sort((a, b) => a - b);
        const outcomes = sortedCounts(s.codes)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ');
        return [kind, s.sent, s.answered, s.aborted, ms(percentile(sorted, 50)), ms(percentile(sorted, 99)), outcomes || '–'];
      }),
    ),
  );
  lines.push('');
  lines.push('## Gateway memory');
  lines.push('');
  const window = `${memory.windowS} s`;
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['RSS at the end of warm-up', memory.warmup ? MiB(memory.warmup.rssBytes) : '–'],
        [`peak RSS, first ${window} after warm-up (start)`, MiB(memory.startPeak)],
        [`peak RSS, last ${window} of load (end)`, MiB(memory.endPeak)],
        ['limit on the end peak', MiB(2 * memory.startPeak + RSS_MARGIN_BYTES)],
        ['RSS trend after warm-up (least squares)', `${memory.slopeMiBPerMin.toFixed(1)} MiB/min`],
        ['peak RSS of the process (VmHWM)', memory.end ? MiB(memory.end.maxRssBytes) : '–'],
        [
          'load drained, before GC: heap used / heap total / external / array buffers',
          memory.end ? [memory.end.heapUsedBytes, memory.end.heapTotalBytes, memory.end.externalBytes, memory.end.arrayBuffersBytes].map(MiB).join(' / ') : '–',
        ],
        [
          'load drained, after full GC: RSS / heap used / heap total / external',
          memory.drainedGc ? [memory.drainedGc.rssBytes, memory.drainedGc.heapUsedBytes, memory.drainedGc.heapTotalBytes, memory.drainedGc.externalBytes].map(MiB).join(' / ') : '–',
        ],
        ['heap after full GC: end of warm-up / load drained', `${memory.warmup ? MiB(memory.warmup.heapUsedBytes) : '–'} / ${memory.drainedGc ? MiB(memory.drainedGc.heapUsedBytes) : '–'}`],
      ],
    ),
  );
  lines.push('');
  const series = memory.samples.filter((_, i) => i % Math.max(1, Math.ceil(memory.samples.length / 12)) === 0);
  lines.push(
    `Heap after full GC over time: ${memory.gcSamples.map((s, i) => `${s.atS.toFixed(0)} s${i === memory.gcSamples.length - 1 && memory.drainedGc ? ' (drained)' : ''} ${(s.heapUsedBytes / 1024 / 1024).toFixed(0)}`).join(', ')} (MiB).`,
  );
  lines.push('');
  lines.push(`RSS over time: ${series.map((s) => `${s.atS.toFixed(0)} s ${(s.rssBytes / 1024 / 1024).toFixed(0)}`).join(', ')} (MiB).`);
  lines.push('');
  lines.push('## Upstream (emulator)');
  lines.push('');
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['requests reaching the emulator', upstream.requests],
        ['by status (0: no answer, the gateway gave up or hung up)', sortedCounts(upstream.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')],
        ['peak in flight (hanging ones included)', `${upstream.peakInFlight} (gateway cap ${settings.maxInFlight})`],
      ],
    ),
  );
  lines.push('');
  lines.push('## Gateway log (level warn and above)');
  lines.push('');
  lines.push(gateway.logCounts.size === 0 ? 'No lines.' : table(['line', 'count'], sortedCounts(gateway.logCounts).slice(0, 15)));
  lines.push('');
  const findings: Array<[string, string[]]> = [
    ['Malformed answers', totals.samples.malformed],
    ['Wrong answers', totals.samples.wrong],
    ['Unanswered requests and connection errors', totals.samples.transport],
    ['INTERNAL_SERVER_ERROR answers', totals.samples.internal],
    ['Gateway log lines above warn', gateway.errorSamples],
  ];
  if (findings.some(([, list]) => list.length > 0)) {
    lines.push('## Samples (first 5 of each)');
    lines.push('');
    for (const [title, list] of findings) {
      if (list.length === 0) continue;
      lines.push(`### ${title}`);
      lines.push('');
      for (const item of list) lines.push(`    ${item.replace(/\n/g, ' ')}`);
      lines.push('');
    }
  }
  return `${lines.join('\n')}\n`;
}

function slope(samples: MemorySample[]): number {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const mx = samples.reduce((s, p) => s + p.atS, 0) / n;
  const my = samples.reduce((s, p) => s + p.rssBytes, 0) / n;
  const num = samples.reduce((s, p) => s + (p.atS - mx) * (p.rssBytes - my), 0);
  const den = samples.reduce((s, p) => s + (p.atS - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den / 1024 / 1024) * 60;
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  consumerSecret = randomBytes(16).toString('hex');
  const emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'none', consumerKey: 'soak-key', consumerSecret });
  let gateway: GatewayChild | undefined;
  let stopFaults: (() => void) | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    stopping = true;
    console.error('soak: interrupted, stopping');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const timers: NodeJS.Timeout[] = [];
  try {
    const data = seed(emulator);
    gateway = await startGatewayChild(emulator);
    const child = gateway;
    pool = new Pool(gateway.origin, { connections: settings.connections, pipelining: 1, headersTimeout: CLIENT_TIMEOUT_MS, bodyTimeout: CLIENT_TIMEOUT_MS });
    stopFaults = injectFaults(emulator, data);
    console.log(
      `soak: gateway ${gateway.url} (pid ${gateway.process.pid}), upstream ${emulator.url}; ${settings.connections} clients for ${settings.durationS} s, at most ${settings.maxRequests} requests`,
    );

    // The upstream log is tallied and emptied every second, so it stays small.
    const upstream = { requests: 0, byStatus: new Map<number, number>(), peakInFlight: 0 };
    const tallyUpstream = () => {
      for (const entry of emulator.requests) bump(upstream.byStatus, entry.status);
      upstream.requests += emulator.requests.length;
      emulator.clearRequests();
    };
    timers.push(setInterval(tallyUpstream, 1_000));

    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const samples: MemorySample[] = [];
    const gcSamples: MemorySample[] = [];
    let warmup: MemoryStats | undefined;
    let sampling = false;
    timers.push(
      setInterval(() => {
        if (sampling || child.crashed) return;
        sampling = true;
        const atS = elapsed();
        const atWarmup = warmup === undefined && atS >= settings.warmupS;
        // A full GC at the end of warm-up and every 10 s after: the live heap's trend, garbage aside.
        const collect = atWarmup || (warmup !== undefined && atS - (gcSamples.at(-1)?.atS ?? 0) >= 10);
        child
          .call(collect ? 'gc' : 'stats')
          .then((stats) => {
            if (atWarmup) warmup = stats;
            samples.push({ atS, rssBytes: stats.rssBytes, heapUsedBytes: stats.heapUsedBytes });
            if (collect) gcSamples.push({ atS, rssBytes: stats.rssBytes, heapUsedBytes: stats.heapUsedBytes });
          })
          .catch(() => undefined)
          .finally(() => (sampling = false));
      }, 1_000),
    );
    let lastPrint = 0;
    timers.push(
      setInterval(() => {
        const atS = elapsed();
        const rate = (totals.answered - lastPrint) / 5;
        lastPrint = totals.answered;
        const rss = samples.at(-1);
        console.log(
          `soak: ${atS.toFixed(0).padStart(3)} s  sent ${totals.sent}  answered ${totals.answered} (${rate.toFixed(0)}/s)  aborted ${totals.abortedOnPurpose}  malformed ${totals.malformed}  wrong ${totals.wrong}  failed ${totals.noAnswer + totals.transportErrors}  gateway RSS ${rss ? MiB(rss.rssBytes) : '–'}`,
        );
      }, 5_000),
    );
    timers.push(setTimeout(() => (stopping = true), settings.durationS * 1000));

    const worker = async () => {
      while (!stopping && !child.crashed) await pickScenario().run(data);
    };
    await Promise.all(Array.from({ length: settings.connections }, worker));
    const elapsedS = elapsed();
    for (const timer of timers) clearInterval(timer);
    stopFaults();
    stopFaults = undefined;

    // Tokens the load created and could not delete (the delete failed under faults) go directly.
    for (const token of undeleted.splice(0)) emulator.store.deleteConnectToken(token);

    const windowS = Math.max(5, Math.min(10, Math.floor((elapsedS - settings.warmupS) / 4)));
    const peak = (from: number, to: number) => Math.max(0, ...samples.filter((s) => s.atS >= from && s.atS <= to).map((s) => s.rssBytes));
    const after = samples.filter((s) => s.atS >= settings.warmupS);
    let end: MemoryStats | undefined;
    let drainedGc: MemoryStats | undefined;
    if (!child.crashed) {
      end = await child.call('stats').catch(() => undefined);
      drainedGc = await child.call('gc').catch(() => undefined);
    }
    tallyUpstream();
    upstream.peakInFlight = emulator.peakInFlight;
    if (drainedGc) gcSamples.push({ atS: elapsed(), rssBytes: drainedGc.rssBytes, heapUsedBytes: drainedGc.heapUsedBytes });
    const memory = {
      samples,
      gcSamples,
      warmup,
      startPeak: peak(settings.warmupS, settings.warmupS + windowS),
      endPeak: peak(elapsedS - windowS, elapsedS),
      windowS,
      end,
      drainedGc,
      slopeMiBPerMin: slope(after),
    };

    const failures: string[] = [];
    if (interrupted) failures.push('interrupted before the end');
    if (child.crashed) failures.push(`the gateway process crashed: ${child.crashed}`);
    if (totals.malformed > 0) failures.push(`${totals.malformed} malformed answers`);
    if (totals.wrong > 0) failures.push(`${totals.wrong} wrong answers`);
    if (totals.noAnswer > 0) failures.push(`${totals.noAnswer} requests without an answer within ${CLIENT_TIMEOUT_MS} ms`);
    if (totals.transportErrors > 0) failures.push(`${totals.transportErrors} connection errors the client did not cause`);
    if (!warmup || memory.startPeak === 0 || memory.endPeak === 0) failures.push('too few memory samples to judge memory (run longer)');
    else if (memory.endPeak > 2 * memory.startPeak + RSS_MARGIN_BYTES) {
      failures.push(`RSS grew without bound: end peak ${MiB(memory.endPeak)} > 2 × ${MiB(memory.startPeak)} + ${MiB(RSS_MARGIN_BYTES)}`);
    }
    if (warmup && drainedGc && drainedGc.heapUsedBytes > 2 * warmup.heapUsedBytes + HEAP_MARGIN_BYTES) {
      failures.push(`heap after GC grew: ${MiB(drainedGc.heapUsedBytes)} > 2 × ${MiB(warmup.heapUsedBytes)} + ${MiB(HEAP_MARGIN_BYTES)}`);
    }

    await pool.close();
    await child.stop();
    // A crash during shutdown counts too.
    if (child.crashed && !failures.some((f) => f.startsWith('the gateway process crashed'))) failures.push(`the gateway process crashed: ${child.crashed}`);

    const text = report({ failures, elapsedS, memory, upstream, gateway: child, loadBefore, loadAfter: loadavg(), startedAt });
    console.log(`\n${text}`);
    if (args.out) {
      const out = resolve(args.out);
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, text);
      console.log(`soak: report written to ${out}`);
    }
    return failures.length === 0 ? 0 : 1;
  } finally {
    for (const timer of timers) clearInterval(timer);
    stopFaults?.();
    await pool?.destroy().catch(() => undefined);
    await gateway?.stop();
    await emulator.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
