import { HttpRefusalCode } from '../errors.ts';
import type { LineThrottle } from '../logging/line-throttle.ts';
import type { Logger } from '../logging/logger.ts';
import type { Refusal } from './respond.ts';

/** Refusing a request for load (503 and Retry-After), and the throttled warnings that say so. */

/** How often requests refused for load by each cap are logged at most. */
export const LOAD_REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Where refusals for load are said: the gateway's log, through the throttle of their warnings (one per cap). */
type LoadRefusalLog = { logger: Logger; refusalsForLoad: LineThrottle };

/** The caps that refuse a request for load: operations running, bodies arriving, answers not yet taken. */
type LoadCap = 'operations' | 'bodies' | 'answers';

/**
 * What each cap's refusal says: the warning an operator looks for, the line of its refusals left unsaid, and the
 * answer's message, given the cap's limit.
 */
const LOAD_CAPS: Record<LoadCap, { warning: string; unsaid: string; message: (limit: number) => string }> = {
  operations: {
    warning: 'operation refused: as many run as MAX_OPERATIONS_IN_FLIGHT allows',
    unsaid: 'operations refused for load left unsaid: as many ran as MAX_OPERATIONS_IN_FLIGHT allows',
    message: (limit) => `The gateway is running as many operations as it may at once (${limit}); retry shortly`,
  },
  bodies: {
    warning: 'request refused: the bodies being received take as many bytes as MAX_BODY_BYTES_IN_FLIGHT allows',
    unsaid: 'requests refused for load left unsaid: the bodies being received took as many bytes as MAX_BODY_BYTES_IN_FLIGHT allows',
    message: (limit) => `The gateway is receiving as many request bodies as it may hold at once (${limit} bytes); retry shortly`,
  },
  answers: {
    warning: 'operation refused: the answers not yet taken by their clients take as many bytes as MAX_ANSWER_BYTES_IN_FLIGHT allows',
    unsaid: 'operations refused for load left unsaid: the answers not yet taken by their clients took as many bytes as MAX_ANSWER_BYTES_IN_FLIGHT allows',
    message: (limit) => `The gateway holds as many bytes of answers not yet taken by their clients as it may (${limit}); retry shortly`,
  },
};

/**
 * A request refused by `cap` (whose limit is `limit`) before it runs: an operation past MAX_OPERATIONS_IN_FLIGHT,
 * a body that would take the bodies arriving past MAX_BODY_BYTES_IN_FLIGHT (before any of it is read), or an
 * operation while the answers not yet taken hold MAX_ANSWER_BYTES_IN_FLIGHT. Besides its own `operation` line, a
 * warning an operator looks for: once every LOAD_REFUSAL_LOG_INTERVAL_MS at most for each cap, with how many since.
 */
export function refusalForLoad(
  { logger, refusalsForLoad }: LoadRefusalLog,
  cap: LoadCap,
  limit: number,
  requestId: string,
  headers: Record<string, string> = {},
): Refusal {
  const due = refusalsForLoad.admit(cap, performance.now());
  if (due) logger.warn(LOAD_CAPS[cap].warning, { requestId, maximum: limit, ...due });
  return { status: 503, message: LOAD_CAPS[cap].message(limit), code: HttpRefusalCode.SERVICE_UNAVAILABLE, headers: { 'retry-after': '1', ...headers } };
}

/**
 * Once refusals for load have stopped for an interval, the first operation admitted says how many went unsaid
 * since the last warning: without it, the count of a burst's end waited for the next burst, perhaps for ever.
 */
export function refusalsForLoadOver({ logger, refusalsForLoad }: LoadRefusalLog): void {
  for (const [load, unsaid] of refusalsForLoad.unsaidOnceQuiet(performance.now())) sayRefusalsForLoadUnsaid(logger, load, unsaid);
}

export function sayRefusalsForLoadUnsaid(logger: Logger, cap: string, unsaid: number): void {
  logger.warn(LOAD_CAPS[cap as LoadCap].unsaid, { sinceLastLine: unsaid });
}
