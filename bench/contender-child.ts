// First, as in src/start.ts: every contender runs graphql-js as `npm start` runs the gateway (NODE_ENV unset → production).
import '../src/production-default.ts';
import { DEFAULTS } from '../src/config/defaults.ts';
import { serveParent } from './ipc.ts';
import { startBare } from './contenders/bare.ts';
import { startDirect } from './contenders/direct.ts';
import { startGatewayContender } from './contenders/gateway.ts';
import type { UpstreamSettings } from './contenders/settings.ts';
import type { Served } from './http-wrapper.ts';
import { startNaive } from './naive/gateway.ts';

/**
 * One contender in its own process, so `process.cpuUsage()` and the peak RSS are its own. The runner asks
 * for `stats` over IPC before and after each measurement; nothing is added to the contender's HTTP server.
 */
const name = process.argv[2];
const upstream: UpstreamSettings = {
  baseUrl: process.env['BENCH_UPSTREAM_URL']!,
  consumerKey: process.env['BENCH_UPSTREAM_KEY']!,
  consumerSecret: process.env['BENCH_UPSTREAM_SECRET']!,
  maxInFlight: Number(process.env['BENCH_UPSTREAM_MAX_IN_FLIGHT'] ?? DEFAULTS.upstreamMaxInFlight),
};

let served: Served;
switch (name) {
  case 'gateway':
  case 'deployed':
    served = await startGatewayContender(upstream, { deployed: name === 'deployed' });
    break;
  case 'direct':
    served = await startDirect(upstream);
    break;
  case 'naive':
    served = await startNaive(upstream);
    break;
  case 'bare':
    served = await startBare();
    break;
  default:
    throw new Error(`unknown contender ${name}`);
}

serveParent({
  stats: () => {
    const usage = process.resourceUsage();
    return {
      cpuMicros: usage.userCPUTime + usage.systemCPUTime,
      systemMicros: usage.systemCPUTime,
      contextSwitches: usage.voluntaryContextSwitches + usage.involuntaryContextSwitches,
      maxRssBytes: usage.maxRSS * 1024,
      rssBytes: process.memoryUsage.rss(),
    };
  },
  close: async () => {
    await served.close();
    // Let the reply go out first; exiting normally also writes a --cpu-prof profile.
    setImmediate(() => process.exit(0));
  },
});
process.send?.({ type: 'ready', url: served.url, headers: served.headers ?? {} });
