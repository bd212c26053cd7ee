import { AccessGuard, type Identity } from '../auth/index.ts';
import { ListLengthBudget } from '../limits/index.ts';
import { RequestApi, type CallerBudgets } from '../loaders/request-api.ts';
import { cursorKeyFrom } from '../resolvers/connection.ts';
import type { WriteMade } from '../resolvers/writes-made.ts';
import type { CancelSignal } from '../upstream/cancellation.ts';
import type { UpstreamClient } from '../upstream/client.ts';

/** What every resolver of one GraphQL request receives. Built per request, so nothing leaks between callers. */
export interface GatewayContext {
  /** The upstream, through this request's loaders. */
  readonly api: RequestApi;
  readonly requestId: string;
  /** What the operation's log line reports besides HTTP: filled in as Apollo resolves and answers it. */
  readonly outcome: OperationOutcome;
  /** The key of filtered lists' cursor digests (see `filteredCursorKind`). */
  readonly cursorKey: Buffer;
  /** What lists longer than the cost estimate assumed add to it while the operation runs. */
  readonly lists: ListLengthBudget;
}

export interface OperationOutcome {
  operationName?: string | null;
  /** The codes of the errors answered, each once, in order of first appearance. */
  errorCodes: Set<string>;
  /**
   * The settings named by the errors' `extensions.limit` (MAX_QUERY_COST, CALLER_WRITES_PER_HOUR,
   * UPSTREAM_REQUESTS…), each once: which limit refused the operation, where its code alone (RATE_LIMITED for
   * the upstream's 429 and for the caller's budget alike) does not say.
   */
  limits: Set<string>;
  /**
   * Why the token was refused (`UNAUTHENTICATED`): the refusal's message, one of the authenticator's fixed
   * texts, which name what was wrong with a token and never what it contained.
   */
  authFailure?: string;
  /**
   * The mutation's writes made so far (writes-made.ts), for an answer that would otherwise lose them: a later
   * field's failure blanking it (`data: null`), or its size (MAX_ANSWER_BYTES) replacing it.
   */
  writesMade?: WriteMade[];
  /**
   * The mutations of the writes whose request went out and whose outcome is unknown: it failed in a way that may
   * have taken effect (a broken connection, a 502, a deadline), for the log line, which names them by mutation.
   */
  writesMaybeMade?: string[];
  /**
   * The write being made now, and the upstream requests the operation had sent when it began: a client leaving
   * while it is out has the log line written before it settles, and it may have been made if a request went out.
   */
  writeUnderway?: { field: string; requestsBefore: number };
}

/** What every request's context is built from, made once per gateway. */
export interface ContextDeps {
  client: UpstreamClient;
  /** The key of filtered lists' cursor digests, derived from the consumer secret. */
  cursorKey: Buffer;
  /** What each non-admin caller's writes and reads are counted against; absent, they are not. */
  budgets: CallerBudgets;
}

export function contextDeps(client: UpstreamClient, consumerSecret: string, budgets: CallerBudgets): ContextDeps {
  return { client, cursorKey: cursorKeyFrom(consumerSecret), budgets };
}

/**
 * Builds a request's context for an already verified caller, whose access every upstream call of the
 * request is checked against; `signal` aborts its upstream work when the client goes away.
 */
export function createContext(deps: ContextDeps, requestId: string, identity: Identity, outcome: OperationOutcome, signal?: CancelSignal): GatewayContext {
  return { api: new RequestApi(deps.client, new AccessGuard(identity), signal, deps.budgets), requestId, outcome, cursorKey: deps.cursorKey, lists: new ListLengthBudget() };
}
