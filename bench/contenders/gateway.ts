import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { ADMIN_SCOPE } from '../../src/auth/index.ts';
import { createLogger, silentLogger } from '../../src/logging/logger.ts';
import { startGateway } from '../../src/http/server.ts';
import type { Served } from '../http-wrapper.ts';
import type { UpstreamSettings } from './settings.ts';

/**
 * The gateway itself, as `npm start` runs it (production settings). `deployed: false` (the `gateway`
 * contender): open and logging nothing, to compare its GraphQL and upstream path with the others'. `deployed:
 * true` (the `deployed` contender): what a deployment adds on top, authentication on (`AUTH_JWT_SECRET`) with
 * every request carrying a Bearer token, and `LOG_LEVEL`'s default, `info`, into stderr, which the runner
 * reads through a pipe as a log collector would.
 */
export async function startGatewayContender(upstream: UpstreamSettings, { deployed }: { deployed: boolean }): Promise<Served> {
  // A fresh secret per run: nothing outside this process and the runner's requests ever holds the token.
  const secret = randomBytes(32).toString('hex');
  const gateway = await startGateway({
    port: 0,
    host: '127.0.0.1',
    upstream,
    upstreamTimeoutMs: 10_000,
    upstreamMaxInFlight: upstream.maxInFlight,
    development: false,
    logger: deployed ? createLogger('info') : silentLogger,
    ...(deployed && { auth: { jwtSecret: secret } }),
  });
  // The admin scope, as a backend calling the gateway would hold: no per-caller budget applies to it.
  const token = deployed
    ? await new SignJWT({ scope: ADMIN_SCOPE, sub: 'bench' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(new TextEncoder().encode(secret))
    : undefined;
  return {
    url: gateway.url,
    ...(token && { headers: { authorization: `Bearer ${token}` } }),
    close: () => gateway.close(),
  };
}
