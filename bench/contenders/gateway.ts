import { silentLogger } from '../../src/logger.ts';
import { startGateway } from '../../src/server.ts';
import type { Served } from '../http-wrapper.ts';
import type { UpstreamSettings } from './settings.ts';

/** The gateway itself, exactly as `npm start` runs it (production settings, logging off). */
export async function startGatewayContender(upstream: UpstreamSettings): Promise<Served> {
  const gateway = await startGateway({
    port: 0,
    host: '127.0.0.1',
    upstream,
    upstreamTimeoutMs: 10_000,
    upstreamMaxInFlight: upstream.maxInFlight,
    development: false,
    logger: silentLogger,
  });
  return { url: gateway.url, close: () => gateway.close() };
}
