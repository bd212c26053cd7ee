import { once } from 'node:events';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { runScript, spawnScript, type RunningScript } from './script.ts';

/*
 * `src/main.ts` run as `npm start` runs it, in a process of its own: for test/gateway/start.test.ts,
 * start-stop.test.ts and start-failures.test.ts, three files so that each stays well within the runner's 300 s
 * a file on a loaded machine (as one, they took 278 s, and once 302 s, cut, at a load of ~12 to ~18 on 2 cores).
 */

export interface Started {
  lines: string[];
  pid: number;
  url: string;
  /** Sends `signal` (SIGTERM unless told) and resolves to the exit code once all its output has been read. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The key pair of an emulator standing for a remote upstream (CONTEXTIO_API_URL), not the embedded one's. */
export const REMOTE_KEY_PAIR = { consumerKey: 'remote-key', consumerSecret: 'remote-secret' } as const;

/** An emulator standing for a remote upstream: empty, with its own key pair. */
export function startRemoteUpstream(): Promise<Emulator> {
  return startEmulator({ port: 0, seed: 'none', ...REMOTE_KEY_PAIR });
}

/** The settings that point `npm start` at `upstream`, a remote upstream of startRemoteUpstream's, with its key pair. */
export function remoteUpstreamEnv(upstream: Pick<Emulator, 'url'>): Record<string, string> {
  return { CONTEXTIO_API_URL: upstream.url, CONTEXTIO_CONSUMER_KEY: REMOTE_KEY_PAIR.consumerKey, CONTEXTIO_CONSUMER_SECRET: REMOTE_KEY_PAIR.consumerSecret };
}

/** Runs `src/main.ts` as `npm start` does (without the build step) and waits for its ready line. */
export async function startMain(env: Record<string, string>, preload: string[] = []): Promise<Started> {
  const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', ...env }, preload);
  const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
  return { lines: run.lines, pid: run.child.pid!, url: url!, stop: stopper(run) };
}

/** Stops a started `src/main.ts` with `signal` and resolves to its exit code once all it printed is read. */
export function stopper(run: RunningScript): (signal?: NodeJS.Signals) => Promise<number | null> {
  return async (signal = 'SIGTERM') => {
    run.child.kill(signal);
    const [code] = await run.exited;
    return code;
  };
}

/** Posts GraphQL operation `q` to `url` and returns its parsed answer. */
export async function query(url: string, q: string) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q }) });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: Array<{ extensions?: Record<string, unknown> }> };
}

/** How long to wait for what main does: a process of its own, started under tsx, on a machine that may be busy. */
export const IN_MAIN = { timeoutMs: 30_000 };

/**
 * Runs `src/main.ts` with only `env` (and PATH) until it exits on its own, stdout and stderr apart; under a limit
 * of `openFiles` open files when one is given (`runScript`'s).
 */
export async function runToExit(env: Record<string, string>, preload: string[] = [], args: string[] = [], openFiles?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnScript('src/main.ts', env, preload, args, openFiles);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
