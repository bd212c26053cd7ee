import { randomBytes } from 'node:crypto';
import { DEFAULTS, maxAnswerBytesInFlightFor } from './defaults.ts';
import { egressProxyFor, type EgressProxy } from '../upstream/egress-proxy.ts';
import { emulatorOptionsFromEnv, reachableFromElsewhere } from '../emulator/config.ts';
import { hasCredentials, isHttpUrl } from '../support/url.ts';
import type { EmulatorOptions } from '../emulator/server.ts';
import { readAccessConfig, type AccessConfig } from '../auth/config.ts';
import { DEFAULT_OPERATION_LIMITS, MAX_NESTING, type OperationLimits } from '../limits/index.ts';
import { LOG_LEVELS, type LogLevel } from '../logging/logger.ts';
import { shownSetting } from '../support/shortened.ts';
import { booleanSetting, listenHostProblem, urlControlProblem, wholeNumberSetting } from './settings.ts';

/** Where the gateway sends its REST calls. */
export type UpstreamConfig =
  /** `proxy`: the egress proxy its calls go through (`HTTPS_PROXY`/`HTTP_PROXY`, unless `NO_PROXY` or loopback). */
  | { kind: 'remote'; baseUrl: string; consumerKey: string; consumerSecret: string; proxy?: EgressProxy }
  /** No `CONTEXTIO_API_URL`: start the embedded emulator in-process, with these settings, and use it. */
  | {
      kind: 'embedded';
      emulator: EmulatorOptions & { host: string; port: number };
      /** The emulator's secret was made up at start (it listens beyond loopback and none was set). */
      randomSecret: boolean;
    };

export interface GatewayConfig extends AccessConfig {
  port: number;
  host: string;
  upstream: UpstreamConfig;
  /** Deadline of one upstream request, retries included. */
  upstreamTimeoutMs: number;
  /** Upstream requests in flight at once, per process; further ones queue. */
  upstreamMaxInFlight: number;
  /** Deadline of a whole GraphQL operation. */
  operationTimeoutMs: number;
  /** How long a shutdown lets in-flight operations finish. */
  shutdownGraceMs: number;
  /** How long a shutdown keeps accepting connections, with /healthz at 503, before the grace period. */
  shutdownDrainMs: number;
  /** How long an idle keep-alive connection waits for its client's next request. */
  keepAliveTimeoutMs: number;
  /** Consecutive upstream failures that open the circuit breaker, and how long it stays open. */
  breakerFailureThreshold: number;
  breakerCooldownMs: number;
  /** `CALLER_WRITES_PER_HOUR`: upstream writes a caller without the admin scope may make in any hour; 0, not counted. */
  callerWritesPerHour: number;
  /** `CALLER_READS_PER_HOUR`: upstream reads a caller without the admin scope may make an hour; 0, not counted. */
  callerReadsPerHour: number;
  /** `MAX_BODY_BYTES`: larger request bodies get 413. */
  maxBodyBytes: number;
  /** `MAX_ANSWER_BYTES`: larger answers are not sent (QUERY_TOO_COMPLEX). */
  maxAnswerBytes: number;
  /** `MAX_OPERATIONS_IN_FLIGHT`: operations running at once; past it, 503. */
  maxOperationsInFlight: number;
  /** `MAX_BODY_BYTES_IN_FLIGHT`: bytes of request bodies held at once while they arrive; past it, 503. */
  maxBodyBytesInFlight: number;
  /** `MAX_ANSWER_BYTES_IN_FLIGHT`: bytes of answers held at once for clients that have not taken them; past it, 503. */
  maxAnswerBytesInFlight: number;
  /** `MAX_QUERY_DEPTH`, `MAX_ALIASES`, `MAX_ROOT_FIELDS`, `MAX_QUERY_COST`, `MAX_QUERY_TOKENS` (docs/limits.md). */
  operationLimits: OperationLimits;
  logLevel: LogLevel;
  /** `NODE_ENV=development`: stack traces in error responses. */
  development: boolean;
  /** `IDE`: whether a browser opening /graphql gets the GraphQL IDE (default true). */
  ide: boolean;
}

export type Env = Record<string, string | undefined>;

/**
 * Configuration problems, one line each naming the variable. A refused value is quoted only where it cannot
 * be a secret (a port, a log level); secrets, and URLs that may carry credentials, never are.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** A setting of `env` as read: trimmed, and set but blank taken as unset. */
export const settingReader =
  (env: Env) =>
  (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };

/**
 * Reads and validates the environment, collecting every problem instead of stopping at the first, so a
 * misconfigured deployment is fixed in one round.
 */
export function loadConfig(env: Env = process.env): GatewayConfig {
  const problems: string[] = [];
  const read = settingReader(env);
  const integer = (name: string, fallback: number, min: number, max: number, minFrom?: string): number =>
    wholeNumberSetting(name, read(name), { min, max, ...(minFrom === undefined ? {} : { minFrom }) }, problems) ?? fallback;

  const port = integer('PORT', 4000, 0, 65535);
  const host = read('HOST') ?? '127.0.0.1';
  const hostRefused = listenHostProblem('HOST', 'PORT', host);
  if (hostRefused !== undefined) problems.push(hostRefused);
  // At most 2 minutes: a request is signed (its oauth_timestamp) before it waits for one of the gateway's
  // connections, and that wait counts within this deadline. OAuth servers refuse timestamps a few minutes old
  // (the emulator, 5): a longer deadline let a request queued that long go out stale, refused as if the key
  // or the clock were wrong.
  const upstreamTimeoutMs = integer('UPSTREAM_TIMEOUT_MS', DEFAULTS.upstreamTimeoutMs, 1, 120_000);
  const upstreamMaxInFlight = integer('UPSTREAM_MAX_IN_FLIGHT', DEFAULTS.upstreamMaxInFlight, 1, 10_000);
  const operationTimeoutMs = integer('OPERATION_TIMEOUT_MS', DEFAULTS.operationTimeoutMs, 1, 600_000);
  const shutdownGraceMs = integer('SHUTDOWN_GRACE_MS', DEFAULTS.shutdownGraceMs, 0, 600_000);
  const shutdownDrainMs = integer('SHUTDOWN_DRAIN_MS', DEFAULTS.shutdownDrainMs, 0, 600_000);
  // Not 0, which Node reads as "never": idle connections would pile up for good.
  const keepAliveTimeoutMs = integer('KEEP_ALIVE_TIMEOUT_MS', DEFAULTS.keepAliveTimeoutMs, 1_000, 3_600_000);
  const breakerFailureThreshold = integer('BREAKER_FAILURE_THRESHOLD', DEFAULTS.breakerFailureThreshold, 1, 1_000);
  const breakerCooldownMs = integer('BREAKER_COOLDOWN_MS', DEFAULTS.breakerCooldownMs, 1, 600_000);
  const callerWritesPerHour = integer('CALLER_WRITES_PER_HOUR', DEFAULTS.callerWritesPerHour, 0, 1_000_000);
  const callerReadsPerHour = integer('CALLER_READS_PER_HOUR', DEFAULTS.callerReadsPerHour, 0, 1_000_000);
  const maxBodyBytes = integer('MAX_BODY_BYTES', DEFAULTS.maxBodyBytes, 1024, 100 * 1024 * 1024);
  // At most what one JavaScript string holds (2^29 − 24 UTF-16 units): larger answers cannot be made at all.
  const maxAnswerBytes = integer('MAX_ANSWER_BYTES', DEFAULTS.maxAnswerBytes, 64 * 1024, 512 * 1024 * 1024);
  const maxOperationsInFlight = integer('MAX_OPERATIONS_IN_FLIGHT', DEFAULTS.maxOperationsInFlight, 1, 1_000_000);
  // At least one body of the largest size, or such a body would never be read.
  const maxBodyBytesInFlight = integer('MAX_BODY_BYTES_IN_FLIGHT', DEFAULTS.maxBodyBytesInFlight, maxBodyBytes, 64 * 1024 * 1024 * 1024, 'MAX_BODY_BYTES');
  // At least one answer of the largest size, or such an answer, held, would refuse every operation.
  const maxAnswerBytesInFlight = integer('MAX_ANSWER_BYTES_IN_FLIGHT', maxAnswerBytesInFlightFor(maxAnswerBytes), maxAnswerBytes, 64 * 1024 * 1024 * 1024, 'MAX_ANSWER_BYTES');
  const operationLimits: OperationLimits = {
    // Deeper documents are refused before they are validated (MAX_NESTING, not a setting): a larger maximum would not be.
    maxDepth: integer('MAX_QUERY_DEPTH', DEFAULT_OPERATION_LIMITS.maxDepth, 1, MAX_NESTING),
    maxAliases: integer('MAX_ALIASES', DEFAULT_OPERATION_LIMITS.maxAliases, 0, 100_000),
    maxRootFields: integer('MAX_ROOT_FIELDS', DEFAULT_OPERATION_LIMITS.maxRootFields, 1, 100_000),
    maxCost: integer('MAX_QUERY_COST', DEFAULT_OPERATION_LIMITS.maxCost, 1, 1_000_000_000),
    maxTokens: integer('MAX_QUERY_TOKENS', DEFAULT_OPERATION_LIMITS.maxTokens, 100, 1_000_000),
  };

  const rawLevel = read('LOG_LEVEL') ?? 'info';
  const logLevel = (LOG_LEVELS as readonly string[]).includes(rawLevel) ? (rawLevel as LogLevel) : 'info';
  if (logLevel !== rawLevel) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${shownSetting(rawLevel)})`);

  const upstream = readUpstreamConfig(read, env, problems);

  const development = read('NODE_ENV') === 'development';
  const ide = booleanSetting('IDE', read('IDE'), true, problems);
  const setButBlank = (name: string) => env[name] !== undefined && read(name) === undefined;
  const access = readAccessConfig(read, hostRefused === undefined ? host : undefined, development, problems, setButBlank);
  if (problems.length > 0 || upstream === undefined) throw new ConfigError(problems);
  return {
    port,
    host,
    upstream,
    upstreamTimeoutMs,
    upstreamMaxInFlight,
    operationTimeoutMs,
    shutdownGraceMs,
    shutdownDrainMs,
    keepAliveTimeoutMs,
    breakerFailureThreshold,
    breakerCooldownMs,
    callerWritesPerHour,
    callerReadsPerHour,
    maxBodyBytes,
    maxAnswerBytes,
    maxOperationsInFlight,
    maxBodyBytesInFlight,
    maxAnswerBytesInFlight,
    operationLimits,
    logLevel,
    development,
    ide,
    ...access,
  };
}

/**
 * `CONTEXTIO_API_URL` and its key pair, or the embedded emulator's settings when it is unset; undefined when
 * what is set cannot make either (each problem pushed onto `problems`).
 */
function readUpstreamConfig(read: (name: string) => string | undefined, env: Env, problems: string[]): UpstreamConfig | undefined {
  const baseUrl = read('CONTEXTIO_API_URL');
  const consumerKey = read('CONTEXTIO_CONSUMER_KEY');
  const consumerSecret = read('CONTEXTIO_CONSUMER_SECRET');
  if (baseUrl !== undefined) {
    const control = urlControlProblem('CONTEXTIO_API_URL', baseUrl);
    const validUrl = control === undefined && isBaseUrl(baseUrl);
    if (control !== undefined) {
      problems.push(control);
    } else if (!validUrl) {
      problems.push(`CONTEXTIO_API_URL must be an http(s) URL including the version, e.g. https://api.context.io/2.0`);
    } else if (hasCredentials(baseUrl)) {
      // They would never be sent (requests are signed with the key pair), and a 401 would then send the
      // operator to the key pair instead.
      problems.push('CONTEXTIO_API_URL must not carry a user name or password (not shown): the gateway signs its requests with CONTEXTIO_CONSUMER_KEY/CONTEXTIO_CONSUMER_SECRET');
    }
    const proxy = validUrl ? egressProxyFor(baseUrl, read, problems) : undefined;
    if (consumerKey === undefined) problems.push('CONTEXTIO_CONSUMER_KEY is required when CONTEXTIO_API_URL is set');
    if (consumerSecret === undefined) problems.push('CONTEXTIO_CONSUMER_SECRET is required when CONTEXTIO_API_URL is set');
    if (consumerKey !== undefined && consumerSecret !== undefined) {
      return { kind: 'remote', baseUrl: baseUrl.replace(/\/+$/, ''), consumerKey, consumerSecret, ...(proxy === undefined ? {} : { proxy }) };
    }
    return undefined;
  } else {
    if (consumerKey !== undefined || consumerSecret !== undefined) {
      problems.push(
        'CONTEXTIO_CONSUMER_KEY/CONTEXTIO_CONSUMER_SECRET are set but CONTEXTIO_API_URL is not: set it, or unset both to use the embedded emulator',
      );
    }
    const emulator = emulatorOptionsFromEnv(env, 0, problems);
    // Embedded, only this process calls the emulator's API. Reachable from elsewhere (for the connect page:
    // listening beyond loopback, or behind a proxy) with the public development secret, it would let anyone
    // who reaches it read and change every account, past the gateway's authentication: a secret made up at
    // start instead, unless one is set.
    const randomSecret = reachableFromElsewhere(emulator) && read('EMULATOR_CONSUMER_SECRET') === undefined;
    if (randomSecret) emulator.consumerSecret = randomBytes(24).toString('base64url');
    return { kind: 'embedded', emulator, randomSecret };
  }
}

/**
 * Whether `value` is an http(s) URL without a query or a fragment, which the paths appended to it would land
 * in. Read from its `href`: `search` and `hash` are empty for a bare `?` or `#` as for none.
 */
function isBaseUrl(value: string): boolean {
  return isHttpUrl(value) && !/[?#]/.test(new URL(value).href);
}
