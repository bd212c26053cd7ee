import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Emulator } from '../../src/emulator/index.ts';
import { startNodeFlags } from '../start-flags.ts';
import { HANDLE_ALLOWANCE, settings } from './settings.ts';

/** The gateway under soak, in a child process of its own (`gateway-process.ts`): its memory and a crash are its own. */

export interface MemoryStats {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  maxRssBytes: number;
  /** Its open handles by type (`process.getActiveResourcesInfo()`: Timeout, TCPSocketWrap, FSReqCallback…), judged by the HANDLE RULE (settings.ts). */
  handles: Record<string, number>;
  /** Its open file descriptors (-1 where /proc/self/fd cannot be read), judged by the HANDLE RULE too. */
  openFds: number;
}

/** How many open handles `stats` counted, all types together. */
export const handleCount = (stats: MemoryStats): number => Object.values(stats.handles).reduce((sum, n) => sum + n, 0);

/** What changed between two counts of open handles, by type (`Timeout +2400, TCPSocketWrap -1`), or `none`. */
export function handleGrowth(before: MemoryStats, after: MemoryStats): string {
  const types = [...new Set([...Object.keys(before.handles), ...Object.keys(after.handles)])];
  const changes = types
    .map((type): [string, number] => [type, (after.handles[type] ?? 0) - (before.handles[type] ?? 0)])
    .filter(([, change]) => change !== 0)
    .sort((a, b) => b[1] - a[1]);
  return changes.length === 0 ? 'none' : changes.map(([type, change]) => `${type} ${change > 0 ? '+' : ''}${change}`).join(', ');
}

/** The HANDLE RULE (settings.ts): what the load left open beyond the allowance, said as the run's failures; none, `[]`. */
export function handlesLeftBehind(before: MemoryStats, after: MemoryStats): string[] {
  const failures: string[] = [];
  if (handleCount(after) > handleCount(before) + HANDLE_ALLOWANCE) {
    failures.push(`open handles grew: ${handleCount(after)} once the load had ended > ${handleCount(before)} before it + ${HANDLE_ALLOWANCE} (${handleGrowth(before, after)})`);
  }
  if (before.openFds >= 0 && after.openFds > before.openFds + HANDLE_ALLOWANCE) {
    failures.push(`open file descriptors grew: ${after.openFds} once the load had ended > ${before.openFds} before it + ${HANDLE_ALLOWANCE}`);
  }
  return failures;
}

/**
 * What a full GC leaves of the gateway's memory: the JS heap in use and the memory outside it that its objects hold
 * (`external`, Buffers and other ArrayBuffers included), judged by the MEMORY RULE (settings.ts).
 */
export const liveBytes = (stats: MemoryStats): number => stats.heapUsedBytes + stats.externalBytes;

export interface GatewayChild {
  url: string;
  origin: string;
  process: ChildProcess;
  /** Set when the process ended without being asked to. */
  crashed: string | undefined;
  /** Log lines by `level: message`, and the first error lines. */
  logCounts: Map<string, number>;
  errorSamples: string[];
  /** Rejects when the process has exited, or has not answered within CALL_TIMEOUT_MS (its event loop stuck). */
  call(type: 'stats' | 'gc'): Promise<MemoryStats>;
  stop(): Promise<void>;
}

/**
 * How long the gateway process may take to answer `stats` or `gc` (a full GC of its few hundred MiB takes well
 * under a second). Past it the process is stuck: waiting on for ever would hang the soak, Ctrl-C included.
 */
const CALL_TIMEOUT_MS = 10_000;
/** The gateway process could not be started: said in one line, no stack trace, the run failed. */
export class GatewayStartFailure extends Error {}

/** How many of its last lines the soak says when the gateway process exits before it is ready. */
const LAST_LINES_KEPT = 10;

export async function startGatewayChild(emulator: Emulator): Promise<GatewayChild> {
  const file = fileURLToPath(new URL('./gateway-process.ts', import.meta.url));
  const child = fork(file, [], {
    // Run with the node flags of `npm start`: its memory is measured as deployed.
    execArgv: ['--import', 'tsx', '--expose-gc', ...startNodeFlags()],
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
  /** Its last few lines: what it said before it exited, when it did so before it was ready. */
  const lastLines: string[] = [];
  const tally = (line: string) => {
    if (line.trim() !== '' && lastLines.push(line.slice(0, 600)) > LAST_LINES_KEPT) lastLines.shift();
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
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the gateway process did not answer \`${type}\` within ${CALL_TIMEOUT_MS / 1000} s (its event loop stuck?)`));
        }, CALL_TIMEOUT_MS);
        pending.set(id, {
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as unknown as MemoryStats);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
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
  // A process stuck starting up would otherwise hang the soak for ever, Ctrl-C included (--ready-timeout).
  const ready = new Promise<string>((resolveReady, rejectReady) => {
    const notReady = setTimeout(
      () => rejectReady(new GatewayStartFailure(`the gateway process (pid ${child.pid}) did not say it was ready within ${settings.readyTimeoutS} s (stuck starting up?), so it was stopped`)),
      settings.readyTimeoutS * 1000,
    );
    child.on('message', (raw) => {
      const message = raw as Record<string, unknown>;
      if (message['type'] === 'ready') {
        clearTimeout(notReady);
        return resolveReady(String(message['url']));
      }
      const waiter = pending.get(Number(message['id']));
      if (!waiter) return;
      pending.delete(Number(message['id']));
      if (typeof message['error'] === 'string') waiter.reject(new Error(message['error']));
      else waiter.resolve(message);
    });
    // Once its output has been read to the end ('close', after 'exit'): what it said is the reason.
    child.once('close', (code, signal) => {
      clearTimeout(notReady);
      const said = lastLines.length === 0 ? '' : `; its last lines:\n${lastLines.join('\n')}`;
      rejectReady(new GatewayStartFailure(`the gateway process exited (${signal ?? code}) before it was ready${said}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiter of pending.values()) waiter.reject(new Error('the gateway process exited'));
      pending.clear();
      if (!stopping) handle.crashed = `exited unasked with ${signal ? `signal ${signal}` : `code ${code}`}`;
    });
  });
  try {
    handle.url = await ready;
  } catch (error) {
    // Not ready, it has nothing to shut down gracefully, and stuck it would not hear `close`: the caller
    // never gets a handle to stop it with, so it is stopped here (its own process group outlives the soak).
    stopping = true;
    await kill(child);
    throw error;
  }
  handle.origin = new URL(handle.url).origin;
  return handle;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGKILL');
  await exited;
}
