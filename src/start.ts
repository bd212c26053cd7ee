// First: sets NODE_ENV before graphql-js is imported (see the module).
import './production-default.ts';
import cluster from 'node:cluster';
import type { AccessConfig } from './auth/config.ts';
import type { AuthSettings } from './auth/index.ts';
import { ConfigError, loadConfig, settingReader, type GatewayConfig, type UpstreamConfig } from './config/index.ts';
import { publicSecretWarning } from './emulator/config.ts';
import { startEmulator, type Emulator } from './emulator/index.ts';
import { describeListenFailure, mayShareAPort } from './http/listen.ts';
import { createLogger, errorFields, messageOf, stderrLines, type Logger } from './logging/logger.ts';
import { startGateway, type Gateway } from './http/server.ts';
import { argumentsProblem, extraCertificatesProblem, ignoredEmulatorSettings, namesApiVersion, SETTINGS_REFUSED_EXIT_CODE, unknownSettings } from './config/settings.ts';
import { exitOnceSaved, StopSignals } from './support/stop-signals.ts';
import { ignoredAllProxy } from './upstream/egress-proxy.ts';
import { portOf, urlForLog } from './support/url.ts';
import { onOneLine } from './support/shortened.ts';
import { openFilesShortfall } from './support/file-descriptors.ts';
import { projectVersion } from './support/project-root.ts';
import { sayFailedToStart, sayStartRefused } from './logging/journal.ts';

/**
 * `npm start`: configuration from the environment, the embedded emulator when no upstream is configured,
 * the gateway, and an orderly shutdown on SIGTERM/SIGINT (SIGHUP, SIGQUIT, SIGUSR2 too: `STOP_SIGNALS`).
 */
async function main(): Promise<void> {
  // A log stream that fails (its reader gone: EPIPE; a full disk: ENOSPC) would otherwise crash the gateway
  // at its next line. Its lines are lost while it fails (for good once a pipe's reader is gone; a file on a
  // full disk takes them again once there is room); the requests are still served.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  exitOnCrash(logger, config.development);
  if (!config.development) keepInspectorClosed(logger);
  logNodeWarnings(logger);
  // A typo of a setting leaves the default in force, authentication off included: said at start.
  for (const line of unknownSettings(process.env)) logger.announce('warn', line);
  const extraCertificates = extraCertificatesProblem(process.env);
  if (extraCertificates !== undefined) logger.announce('warn', extraCertificates, { file: process.env['NODE_EXTRA_CA_CERTS'] });
  warnOfOpenFilesShortfall(config, logger);

  const { upstream, emulator } = config.upstream.kind === 'remote' ? remoteUpstream(config.upstream, logger) : await embeddedUpstream(config.upstream, config.development, logger);
  const gateway = await startGateway({ ...config, upstream, logger }).catch(async (error: unknown) => {
    // A failed save on the way out is already logged: the reason the gateway could not start comes next.
    await emulator?.close().catch(() => undefined);
    return failToStart(portTakenByEmulator(error, config, emulator) ?? describeListenFailure(error, { host: config.host, port: config.port, hostVariable: 'HOST', portVariable: 'PORT' }) ?? messageOf(error));
  });
  const signals = stopOnSignals(gateway, emulator, logger);

  // Only now: until a handler is installed, a SIGTERM sent on seeing this line would kill the process
  // outright, without closing the gateway or saving the emulator's data file.
  // Announced: PORT=0 picks the port, and this line is the only one that says which.
  // Which upstream it calls: the embedded emulator has its own line above.
  const remote = config.upstream.kind === 'remote' ? { upstream: config.upstream.baseUrl, ...proxyShown(config.upstream) } : {};
  const version = projectVersion();
  logger.announce('info', 'gateway ready', {
    graphql: gateway.url,
    ...(config.ide ? { ide: gateway.url } : {}),
    health: `${gateway.origin}/healthz`,
    // What runs, for a fleet mid-deploy or after a rollback: the package's version and the Node.js it runs on.
    ...(version === undefined ? {} : { version }),
    node: process.version,
    ...remote,
    ...accessShown(config),
  });
  // And to a parent on an IPC channel: pm2's --wait-ready (and its reload, which stops the old process only then)
  // waits for this message; in a cluster worker, the embedded emulator's listen alone would have looked ready.
  // A parent that has gone, or that listens for nothing, is no failure of the start.
  if (process.send && process.connected) process.send('ready', undefined, {}, () => undefined);
  warnOfUnusableKeySet(gateway, config.auth, logger);
  if (config.upstream.kind === 'remote') warnOfUnusableUpstream(gateway, config.upstream, signals, logger);
}

/**
 * A limit of open files below what the caps let in: under a burst, the connections past it fail without a line
 * in the log (a client's is reset by Node's library), so it is said at start.
 */
function warnOfOpenFilesShortfall({ maxOperationsInFlight, upstreamMaxInFlight }: GatewayConfig, logger: Logger): void {
  const shortfall = openFilesShortfall(maxOperationsInFlight + upstreamMaxInFlight);
  if (shortfall === undefined) return;
  logger.announce(
    'warn',
    `the limit of open files (ulimit -n) is below what MAX_OPERATIONS_IN_FLIGHT and UPSTREAM_MAX_IN_FLIGHT let in: under a burst, clients' connections past it are reset, unlogged, and upstream calls fail UPSTREAM_ERROR; raise the limit to ${shortfall.needed} or more, or lower those settings`,
    { openFilesLimit: shortfall.limit, needed: shortfall.needed },
  );
}

/**
 * The egress proxy the upstream is reached through, for the lines that name the upstream: `host:port` and its
 * variable, never its credentials. An operator whose calls fail looks here first for which way they go.
 */
function proxyShown({ proxy }: RemoteConfig): { egressProxy?: string } {
  return proxy === undefined ? {} : { egressProxy: `${proxy.shown} (${proxy.variable})` };
}

/** The configuration, or each of its problems on a line of its own and exit code SETTINGS_REFUSED_EXIT_CODE. */
function configOrExit(): GatewayConfig {
  const refusedArguments = argumentsProblem(process.argv.slice(2), 'PORT, HOST and the other settings of docs/configuration.md');
  if (refusedArguments !== undefined) {
    sayStartRefused(refusedArguments);
    process.exit(SETTINGS_REFUSED_EXIT_CODE);
  }
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) sayStartRefused(problem);
    process.exit(SETTINGS_REFUSED_EXIT_CODE);
  }
}

type RemoteConfig = Extract<UpstreamConfig, { kind: 'remote' }>;
type EmbeddedConfig = Extract<UpstreamConfig, { kind: 'embedded' }>;
/** The upstream the gateway calls, and the embedded emulator serving it when it does. */
interface Upstream {
  upstream: { baseUrl: string; consumerKey: string; consumerSecret: string };
  emulator?: Emulator;
}

/** `CONTEXTIO_API_URL`'s upstream, with a warning for what is set that it makes pointless or likely wrong. */
function remoteUpstream(upstream: RemoteConfig, logger: Logger): Upstream {
  const ignored = ignoredEmulatorSettings(process.env);
  if (ignored !== undefined) logger.announce('warn', ignored);
  const allProxy = ignoredAllProxy(upstream.baseUrl, settingReader(process.env));
  if (allProxy !== undefined) logger.announce('warn', allProxy);
  if (!namesApiVersion(upstream.baseUrl)) {
    logger.announce('warn', 'CONTEXTIO_API_URL names no API version (such as …/2.0): Context.IO serves its API under its version, and without it every call answers 404', {
      upstream: upstream.baseUrl,
    });
  }
  return { upstream };
}

/** The embedded emulator, started, and a line saying where it is and with which key. */
async function embeddedUpstream({ emulator: options, randomSecret }: EmbeddedConfig, development: boolean, logger: Logger): Promise<Upstream> {
  // Its failed saves as the gateway's log lines (JSON), not a bare line of text among them.
  const onSaveError = (error: Error) => logger.error('the embedded emulator could not save its state to EMULATOR_DATA_FILE', { error: error.message });
  // A developer whose app never hears of a completed flow looks here first.
  const onSourceCallbackFailed = (error: Error) => logger.warn('the embedded emulator could not POST a source_callback_url', { error: error.message });
  // Its own errors too (a bug: the request answered 500), the stack only in development, as the gateway's.
  const onInternalError = (error: unknown, request: string) =>
    logger.error('the embedded emulator failed on an error of its own', { request, ...errorFields(error, development) });
  const emulator = await startEmulator({ ...options, onSaveError, onSourceCallbackFailed, onInternalError }).catch((error: unknown) =>
    failToStart(describeListenFailure(error, { host: options.host, port: options.port, hostVariable: 'EMULATOR_HOST', portVariable: 'EMULATOR_PORT' }) ?? messageOf(error)),
  );
  logger.announce('info', 'CONTEXTIO_API_URL is not set: using the embedded Context.IO emulator', {
    upstream: emulator.url,
    // Where browsers and other clients reach it (EMULATOR_PUBLIC_URL): its links start there.
    ...(emulator.publicUrl !== emulator.url ? { publicUrl: emulator.publicUrl } : {}),
    consumerKey: emulator.consumerKey,
    // It answers 429 past it, as the real API would: the operator who set it sees it took effect.
    ...(options.rateLimitPerHour === undefined ? {} : { rateLimitPerHour: options.rateLimitPerHour }),
    ...(randomSecret ? { consumerSecret: 'made up at start: the emulator is reachable beyond loopback (set EMULATOR_CONSUMER_SECRET to call its API yourself; filtered cursors then outlive a restart)' } : {}),
  });
  // Node's cluster (pm2's cluster mode) shares one listening port among its workers, the emulator's as the
  // gateway's: each worker's emulator keeps its own accounts, so a write reaches one and the reads after it any.
  if (cluster.isWorker) {
    logger.announce(
      'warn',
      "the embedded emulator runs in a cluster worker (pm2's cluster mode, Node's cluster): each worker starts one with accounts of its own, all on a port the workers share, so that a write reaches one of them and the reads after it any; set CONTEXTIO_API_URL (in development, to one npm run emulator)",
    );
  }
  const portWarning = publicPortWarning(options, emulator.url);
  if (portWarning !== undefined) logger.announce('warn', portWarning);
  // A secret is made up only when none is set: one set to the public development secret is kept, and anyone who
  // reaches the emulator may then use its API past the gateway's authentication (`npm run emulator` says so too).
  if (publicSecretWarning(options) !== undefined) {
    logger.announce(
      'warn',
      "EMULATOR_CONSUMER_SECRET is the public development secret while the embedded emulator is reachable beyond loopback (EMULATOR_HOST, EMULATOR_PUBLIC_URL or EMULATOR_ALLOWED_HOSTS): anyone who reaches it can read and change every account, past the gateway's authentication; unset it (a secret is then made up at start) or set another",
    );
  }
  return { upstream: { baseUrl: emulator.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret }, emulator };
}

/**
 * SIGUSR1 opens Node's inspector on 127.0.0.1:9229, through which any local process, whatever its user, may run
 * code inside the gateway, its secrets in reach: a `kill -USR1` meant for log rotation (a habit from other
 * servers) would have opened it. With a listener of its own, Node does not: outside development it is said and
 * ignored. A debugger is for a process started to be debugged (`node --inspect`, or NODE_ENV=development).
 */
function keepInspectorClosed(logger: Logger): void {
  process.on('SIGUSR1', () => {
    logger.warn("SIGUSR1 ignored: it would open Node's inspector, through which any local process could run code in the gateway; to debug, start it with node --inspect or NODE_ENV=development");
  });
}

/**
 * EMULATOR_PUBLIC_URL naming one port while the emulator listens on a free one picked at start: its connect links
 * lead to the URL's port, where nothing listens unless something forwards to a port that changes with every start
 * (setting the URL and forgetting EMULATOR_PORT left the connect page unreachable, said nowhere).
 */
function publicPortWarning({ publicUrl, port }: EmbeddedConfig['emulator'], listening: string): string | undefined {
  if (publicUrl === undefined || port !== 0) return undefined;
  const named = portOf(new URL(publicUrl));
  const picked = portOf(new URL(listening));
  if (named === picked) return undefined;
  return `EMULATOR_PUBLIC_URL names port ${named}, but the embedded emulator listens on port ${picked}, picked at start (EMULATOR_PORT unset or 0): its connect links lead to the URL's port, which reaches it only through a proxy forwarding to a port that changes with every start; set EMULATOR_PORT=${named} to listen where the URL says`;
}

/**
 * PORT taken by the gateway's own embedded emulator (EMULATOR_PORT set to it): said as such, since "already in
 * use" sends the operator looking for another process, and none holds the port once this one has exited.
 */
function portTakenByEmulator(error: unknown, config: GatewayConfig, emulator: Emulator | undefined): string | undefined {
  if ((error as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE' || emulator === undefined || config.upstream.kind !== 'embedded') return undefined;
  // A URL leaves out its scheme's default port: EMULATOR_PORT=80 reads back as none.
  if (portOf(new URL(emulator.url)) !== config.port || !mayShareAPort(config.upstream.emulator.host, config.host)) return undefined;
  return `PORT=${config.port}: the embedded emulator listens on this port (EMULATOR_PORT=${config.port}): give the two different ports (EMULATOR_PORT unset picks a free one)`;
}

/** A stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR2) closes the gateway, then the emulator; a second one during that exits at once. */
function stopOnSignals(gateway: Gateway, emulator: Emulator | undefined, logger: Logger): StopSignals {
  const signals = new StopSignals();
  const stop = async (signal: string) => {
    // Announced, as the start-up lines are: a log read at warn or error must still tell a graceful stop (this
    // line, then `stopped`) from a process that was killed or crashed (neither).
    logger.announce('info', 'shutting down', { signal });
    let failed = false;
    for (const [part, close] of [['gateway', () => gateway.close()], ['emulator', () => emulator?.close()]] as const) {
      try {
        await close();
      } catch (error) {
        failed = true;
        logger.error('shutdown failed', { part, error: messageOf(error) });
      }
    }
    // The last line: the shutdown ended here, not by a kill, and how (a supervisor's log shows only the code).
    const exitCode = failed ? 1 : 0;
    logger.announce('info', 'stopped', { exitCode });
    process.exit(exitCode);
  };
  signals.listen({
    stop: (signal) => void stop(signal),
    repeat: (signal) => logger.info('the same signal again within a second, taken as the same (as npm, or a process manager signalling the group, passes it on): send it once more to stop at once', { signal }),
    force: (signal) => {
      // An operator who will not wait for the grace period. The embedded emulator's last change is still
      // written (it saves each change as it is made), unless its save hangs.
      logger.warn('second signal during shutdown: exiting without waiting for operations in flight', { signal });
      exitOnceSaved(emulator?.store.flush() ?? Promise.resolve(), 1);
    },
  });
  return signals;
}

/**
 * After the ready line, without holding it up: a key set that cannot be used is said now, not at the first
 * token, and so are the private keys or secrets it publishes. Its own fetch, apart from the one verifying
 * tokens, whose pause after a failure it must not start.
 */
function warnOfUnusableKeySet(gateway: Gateway, { jwksUrl }: AuthSettings, logger: Logger): void {
  if (jwksUrl === undefined) return;
  void gateway
    .keySetProblem()
    .catch((error: unknown) => `it could not be checked (${messageOf(error)})`)
    .then((problem) => {
      if (problem === undefined) return;
      logger.announce('warn', `AUTH_JWKS_URL's key set cannot be used now: ${problem}. Tokens it should verify are refused until it can (503 while it cannot be fetched)`, { jwksUrl: urlForLog(jwksUrl) });
    });
}

/**
 * The same for the upstream, whose wrong URL or key pair would otherwise show only with the first operation
 * (the health check answers for the gateway alone): one call of the key's quota per start. The embedded
 * emulator is the gateway's own, started with the key pair it is given.
 */
function warnOfUnusableUpstream(gateway: Gateway, upstream: RemoteConfig, signals: StopSignals, logger: Logger): void {
  void gateway.upstreamProblem().then((problem) => {
    // A call cut short by a shutdown says nothing of the upstream.
    if (problem === undefined || signals.stopping) return;
    logger.announce('warn', `CONTEXTIO_API_URL cannot be used now: ${problem}. Operations that need it fail until it can`, { upstream: upstream.baseUrl, ...proxyShown(upstream) });
  });
}

/**
 * How callers are let in, for the ready line: with authentication on nothing else at start says it is (open
 * mode has its warning). Never a secret: the HS256 one is named by its variable only.
 */
function accessShown({ auth, introspection, corsOrigins }: AccessConfig): Record<string, unknown> {
  const modes = [...(auth.jwtSecret ? ['HS256 (AUTH_JWT_SECRET)'] : []), ...(auth.jwksUrl ? [`JWKS ${urlForLog(auth.jwksUrl)}`] : [])];
  const authentication = modes.length > 0 ? modes.join(' and ') : 'off';
  return {
    authentication,
    ...(auth.issuer ? { issuer: auth.issuer } : {}),
    // One string whether one audience or several, so that the field has one type in every ready line.
    ...(auth.audience ? { audience: [auth.audience].flat().join(', ') } : {}),
    introspection,
    ...(corsOrigins.length > 0 ? { corsOrigins } : {}),
  };
}

/**
 * An uncaught exception or unhandled rejection (a bug): one JSON line at `error`, as every other line, and
 * exit code 1, as Node's own handling gives. Node's report is plain text and a stack, which a log collector
 * reading JSON lines misses. The lines still held are written on exit (the logger's `exit` hook).
 */
function exitOnCrash(logger: Logger, development: boolean): void {
  process.on('uncaughtException', (error: unknown, origin: string) => {
    logger.error('crashed: exiting', { origin, ...errorFields(error, development) });
    process.exit(1);
  });
}

/**
 * A warning Node emits (a deprecated API a dependency calls, a listener leak): one JSON line at `warn`, `Node
 * warning: …` with the warning's type and code, instead of Node's plain-text lines among the JSON a log collector
 * reads. The listener replaced is Node's own printer, the only one at this point, and there is none to replace
 * under `--no-warnings` or NODE_NO_WARNINGS=1: those still silence them.
 */
function logNodeWarnings(logger: Logger): void {
  const printers = process.listeners('warning');
  if (printers.length === 0) return;
  for (const printer of printers) process.off('warning', printer);
  process.on('warning', (warning: Error & { code?: string }) => {
    logger.warn(`Node warning: ${warning.message}`, { warning: warning.name, ...(warning.code === undefined ? {} : { code: warning.code }) });
  });
}

function failToStart(reason: string): never {
  // After the log lines that led here, which are held until the turn ends (on a busy gateway, up to 20 ms).
  stderrLines.finish();
  // One line, whatever the reason quotes: a data file's path with a line break in it, say.
  sayFailedToStart(onOneLine(reason));
  process.exit(1);
}

main().catch((error: unknown) => failToStart(messageOf(error)));
