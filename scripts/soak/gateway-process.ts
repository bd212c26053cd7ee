import { readdirSync } from 'node:fs';
import { createLogger } from '../../src/logging/logger.ts';
import { startGateway } from '../../src/http/server.ts';

/**
 * The gateway under soak, in its own process (forked by scripts/soak/gateway.ts with `--import tsx --expose-gc`),
 * so its memory and a crash are its own. Settings come from the environment; it answers the parent over IPC:
 * `stats` (memory now and peak, and its open handles by type), `gc` (a full collection first, then `stats`) and `close`. Log lines go to
 * stderr, which the parent reads and tallies.
 */

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`soak gateway process: ${name} is not set`);
  return value;
};

const gateway = await startGateway({
  port: 0,
  host: '127.0.0.1',
  upstream: {
    baseUrl: env('SOAK_UPSTREAM_URL'),
    consumerKey: env('SOAK_UPSTREAM_KEY'),
    consumerSecret: env('SOAK_UPSTREAM_SECRET'),
  },
  upstreamTimeoutMs: Number(env('SOAK_UPSTREAM_TIMEOUT_MS')),
  upstreamMaxInFlight: Number(env('SOAK_UPSTREAM_MAX_IN_FLIGHT')),
  development: false,
  logger: createLogger('warn'),
});

/** The process's open handles (timers, sockets, servers, file requests…), counted by type: the HANDLE RULE's figures. */
const handles = () => {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
};

/**
 * Its open file descriptors (Linux: /proc/self/fd, less the one reading it; elsewhere -1, not judged): a file opened
 * and never closed holds one and is no active resource, and a socket kept open but unreferenced is none either.
 */
const openFds = () => {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return -1;
  }
};

const stats = () => {
  const memory = process.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    // ru_maxrss is in KiB on Linux: the VmHWM of /proc/self/status.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    handles: handles(),
    openFds: openFds(),
  };
};

type Request = { type: string; id: number };

process.on('message', (raw) => {
  const message = raw as Request;
  const reply = (payload: Record<string, unknown>) => process.send?.({ ...payload, id: message.id });
  switch (message.type) {
    case 'stats':
      reply(stats());
      return;
    case 'gc': {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      reply({ ...stats(), collected: gc !== undefined });
      return;
    }
    case 'close':
      gateway.close().then(
        () => {
          reply({});
          setImmediate(() => process.exit(0));
        },
        (error: unknown) => {
          reply({ error: String(error) });
          setImmediate(() => process.exit(1));
        },
      );
      return;
    default:
      reply({ error: `unknown message ${message.type}` });
  }
});
// The soak runner going away (finished, crashed or killed) takes the gateway with it.
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', url: gateway.url });
