import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startNodeFlags } from '../scripts/start-flags.ts';

/**
 * Request/response over the IPC channel between the bench runner and its child processes (the emulator
 * and each contender), so each child's CPU time and memory are its own and nothing is exposed over HTTP.
 */

export type Message = { type: string; id?: number } & Record<string, unknown>;
export type Handler = (message: Message) => Promise<Record<string, unknown> | void> | Record<string, unknown> | void;

/** Child side: answers each request with `{id, ...reply}` (or `{id, error}`), and reports `ready`. */
export function serveParent(handlers: Record<string, Handler>): void {
  process.on('message', (raw) => {
    const message = raw as Message;
    const handler = handlers[message.type];
    Promise.resolve(handler ? handler(message) : Promise.reject(new Error(`unknown message ${message.type}`)))
      .then((reply) => process.send?.({ ...(reply ?? {}), id: message.id }))
      .catch((error: unknown) => process.send?.({ id: message.id, error: error instanceof Error ? error.stack : String(error) }));
  });
  // The runner going away takes the child with it.
  process.on('disconnect', () => process.exit(0));
}

export interface Child {
  readonly process: ChildProcess;
  /** The `ready` message's payload. */
  readonly ready: Message;
  /** Lines the child wrote to stderr so far, when started with `drainStderr` (else 0: its stderr is the runner's). */
  stderrLines(): number;
  call(type: string, payload?: Record<string, unknown>): Promise<Message>;
  /** Asks the child to close, then kills it if it lingers. */
  stop(): Promise<void>;
}

/** BENCH_NODE_FLAGS="--max-semi-space-size=64 …": extra node flags for the contenders (not the emulator), to try some. */
const extraNodeFlags = (): string[] => (process.env['BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);

/**
 * What is wrong with BENCH_NODE_FLAGS, if anything, found by starting node with them (and tsx, as a contender
 * starts) on an empty script: a flag node refuses (`--nope`) ended the first contender at once, and the runner
 * with a stack trace, after the emulator had started and the run had begun.
 */
export function nodeFlagsProblem(): string | undefined {
  const flags = extraNodeFlags();
  if (flags.length === 0) return undefined;
  const tried = spawnSync(process.execPath, ['--import', 'tsx', ...flags, '--eval', ''], { encoding: 'utf8', timeout: 60_000 });
  if (tried.status === 0) return undefined;
  const said = tried.stderr.trim().split('\n')[0] || (tried.error?.message ?? `exit ${tried.status ?? tried.signal}`);
  return `BENCH_NODE_FLAGS must be flags node takes: with them, node says ${said}`;
}

/**
 * How long a child may take to say it is ready (a contender starts in 1–3 s, the emulator with the bench's seed in
 * less): one stuck before it (a port it waits for, a hung import) held the run, silent, for ever.
 */
const READY_TIMEOUT_MS = 120_000;

/** How much of a drained stderr is kept, to show with a child that failed. */
const STDERR_TAIL_BYTES = 4096;

/**
 * Forks `file` (relative to bench/) under tsx and waits for its `{type: 'ready'}` message. With `drainStderr`,
 * the child's stderr goes into a pipe this process reads and counts instead of onto the runner's terminal;
 * its last few KiB are printed if the child exits with a failure.
 */
export async function startChild(file: string, args: string[], env: Record<string, string> = {}, { drainStderr = false, readyTimeoutMs = READY_TIMEOUT_MS } = {}): Promise<Child> {
  const execArgv = ['--import', 'tsx'];
  // BENCH_CPU_PROF=<contender> profiles that contender's processes (node --cpu-prof) into bench/profiles/.
  if (args[0] !== undefined && process.env['BENCH_CPU_PROF'] === args[0]) {
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${fileURLToPath(new URL('./profiles/', import.meta.url))}`);
  }
  // The gateway runs with the node flags `npm start` gives it, so it is measured as it is deployed; so does the
  // direct REST floor, the same upstream client without GraphQL, so that it stays the floor of that deployment
  // (with node's defaults its scenario-1 CPU measured ~12% more). Bare Apollo and the naive baseline, the
  // others, keep node's defaults.
  if (args[0] === 'gateway' || args[0] === 'deployed' || args[0] === 'direct') execArgv.push(...startNodeFlags());
  if (args[0] !== 'emulator') execArgv.push(...extraNodeFlags());
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, {
    execArgv,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', drainStderr ? 'pipe' : 'inherit', 'ipc'],
  });
  let lines = 0;
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    tail = (tail + text).slice(-STDERR_TAIL_BYTES);
  });
  /**
   * How the child ended, once it has: its exit code, or the signal that ended it (the OOM killer's SIGKILL, a
   * segfault), which leaves no exit code: taken for alive, such a child was written to over its closed channel, an
   * unhandled 'error' that ended the runner with "Channel closed", and waited for on stop() for ever.
   */
  const ended = (): number | string | null => child.exitCode ?? child.signalCode;
  child.once('exit', () => {
    if (child.exitCode !== 0 && tail) console.error(`${file} ${args.join(' ')} exited (${ended()}); the end of its stderr:\n${tail}`);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  const ready = await new Promise<Message>((resolve, reject) => {
    const onExit = () => {
      clearTimeout(notReady);
      reject(new Error(`${file} ${args.join(' ')} exited (${ended()}) before it was ready`));
    };
    const notReady = setTimeout(() => {
      child.off('exit', onExit);
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} was not ready within ${readyTimeoutMs / 1000} s (killed)`));
    }, readyTimeoutMs);
    child.once('exit', onExit);
    child.on('message', (raw) => {
      const message = raw as Message;
      if (message.type === 'ready') {
        clearTimeout(notReady);
        child.off('exit', onExit);
        resolve(message);
        return;
      }
      const waiter = message.id === undefined ? undefined : pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id!);
      if (typeof message['error'] === 'string') waiter.reject(new Error(`${file}: ${message['error']}`));
      else waiter.resolve(message);
    });
  });
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${file} exited (${ended()})`));
    pending.clear();
  });
  const call = (type: string, payload: Record<string, unknown> = {}): Promise<Message> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (ended() !== null) return reject(new Error(`${file} exited (${ended()})`));
      pending.set(id, { resolve, reject });
      // Its channel may close before its exit is seen: the send's failure is this call's, not an unhandled 'error'.
      child.send({ ...payload, type, id }, (error) => {
        if (error === null || !pending.delete(id)) return;
        reject(new Error(`${file}: ${error.message}`));
      });
    });
  };
  return {
    process: child,
    ready,
    stderrLines: () => lines,
    call,
    async stop() {
      if (ended() !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      try {
        await call('close');
      } catch {
        // It may exit before answering.
      }
      await exited;
      clearTimeout(timer);
    },
  };
}
