import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatorStore, startEmulator } from '../src/emulator/index.ts';
import { realTimer, type WaitTimer } from '../src/support/wait-timer.ts';
import { serveParent } from './ipc.ts';
import type { BenchSeed } from './scenarios.ts';

/**
 * The upstream of every contender: the project's emulator in its own process, so its CPU time counts
 * against no contender. The runner drives it over IPC: injected latency, the request log's length, and the round
 * trips since the log was cleared.
 */

const ACCOUNTS = 20;
const TOKENS = 100;
/**
 * The request log's length (the emulator's default), which `count` reads: past it the log keeps only the latest
 * entries, so a longer count is short and `count` says the log is `full`. A second argument sets another (test/bench).
 */
const REQUEST_LOG_LIMIT = Number(process.argv[3] ?? 100_000);

/**
 * 20 accounts with sources, and 100 used top-level connect tokens spread over them (5 each), written as an
 * emulator data file. The store's API makes each used top-level token create its own account, so the
 * accounts those 100 uses create are dropped and each token is pointed at one of the 20 instead, through
 * the data file format (`EMULATOR_DATA_FILE`) the emulator documents.
 */
async function writeSeed(file: string): Promise<BenchSeed> {
  const store = await EmulatorStore.open({ seed: 'none', dataFile: file });
  const accountIds: string[] = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    const email = `user${i}@bench.example.com`;
    const account = store.createAccount({
      email,
      first_name: 'Bench',
      last_name: `User ${i}`,
      nb_messages: 1000 + i,
      nb_files: 10 + i,
      sources: [
        { email, server: 'imap.bench.example.com', username: `user${i}` },
        { email: `user${i}.alt@bench.example.org`, server: 'imap.bench.example.org', username: `user${i}.alt`, status: i % 3 === 0 ? 'INVALID_CREDENTIALS' : 'OK' },
      ],
    });
    accountIds.push(account.id);
    // Two account-level tokens, for the dashboard's `account.connectTokens`.
    store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback', email });
    store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback' });
  }
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    const token = store.createConnectToken(null, { callback_url: 'http://127.0.0.1/callback', email: `connect${i}@bench.example.com` }).token;
    store.useConnectToken(token, {});
    tokens.push(token);
  }
  await store.close();

  const state = JSON.parse(await readFile(file, 'utf8')) as {
    accounts: { id: string }[];
    tokens: { token: string; account_id?: string; account_snapshot?: unknown }[];
  };
  const keep = new Set(accountIds);
  state.accounts = state.accounts.filter((a) => keep.has(a.id));
  const index = new Map(tokens.map((t, i) => [t, i]));
  for (const record of state.tokens) {
    const i = index.get(record.token);
    if (i === undefined) continue;
    record.account_id = accountIds[i % ACCOUNTS]!;
    delete record.account_snapshot;
  }
  await writeFile(file, JSON.stringify(state));
  return { accountIds, tokens };
}

const dir = await mkdtemp(join(tmpdir(), 'contextio-bench-'));
// Its data file is the bench's alone: removed however the child ends (closed, its runner gone, a Ctrl-C to the
// process group), not left in the temporary folder by each interrupted run.
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(1));
const dataFile = join(dir, 'emulator.json');
const seed = await writeSeed(dataFile);
/**
 * Round trips on the critical path, counted from the order of events rather than timed: with a latency injected
 * (`answerAfterMs`, whose wait this timer runs from each request's arrival), a request arriving after another's answer
 * was let go is one round trip deeper than that one, and one arriving before any was, the first. Timing an operation at
 * 50 ms and at 0 ms miscounted whenever noise moved those by 25 ms (a loaded machine read 1 round trip as 3). Only a
 * request of one round trip sent a whole injected latency after its fellows could still be counted one deeper.
 */
let deepestAnswered = 0;
let deepestArrived = 0;
const roundTripTimer: WaitTimer = (callback, ms) => {
  const depth = deepestAnswered + 1;
  deepestArrived = Math.max(deepestArrived, depth);
  return realTimer(() => {
    deepestAnswered = Math.max(deepestAnswered, depth);
    callback();
  }, ms);
};
const emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'none', dataFile, requestLogLimit: REQUEST_LOG_LIMIT, faultTimer: roundTripTimer });
let removeLatency: (() => void) | undefined;

serveParent({
  latency: (message) => {
    removeLatency?.();
    removeLatency = undefined;
    const ms = Number(message['ms']);
    if (ms > 0) removeLatency = emulator.addFault({ path: /^/, answerAfterMs: ms });
  },
  count: () => {
    // Read once: past its limit the log is a fresh copy on each read.
    const requests = emulator.requests;
    const statuses: Record<string, number> = {};
    for (const entry of requests) statuses[entry.status] = (statuses[entry.status] ?? 0) + 1;
    return { count: requests.length, full: requests.length >= REQUEST_LOG_LIMIT, peakInFlight: emulator.peakInFlight, statuses, roundTrips: deepestArrived };
  },
  clear: () => {
    emulator.clearRequests();
    emulator.resetPeak();
    deepestAnswered = 0;
    deepestArrived = 0;
  },
  close: async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
    setImmediate(() => process.exit(0));
  },
});
process.send?.({
  type: 'ready',
  url: emulator.url,
  consumerKey: emulator.consumerKey,
  consumerSecret: emulator.consumerSecret,
  seed,
});
