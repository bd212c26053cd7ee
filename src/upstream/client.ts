import { randomUUID } from 'node:crypto';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { proxyRefusalHint, throughProxy, type EgressProxy } from './egress-proxy.ts';
import { DEFAULTS } from '../config/defaults.ts';
import { ErrorCode, gatewayError, type UpstreamErrorInfo } from '../errors.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import type { Logger } from '../logging/logger.ts';
import { CallVerdicts, CircuitBreaker, type BreakerPermit } from './breaker.ts';
import { CallCancellation, OperationDeadlineExceeded, type CancelSignal } from './cancellation.ts';
import { authorizationHeader, encodeFormPairs, protocolParams, sign, type OAuthParam } from '../oauth/signature.ts';
import { forLog, redactedErrorBody } from './redact.ts';
import { connectTokenResource, connectTokensPath, quotedId, requestTarget, type Method, type Params } from './request.ts';
import { ACCEPTED_CODINGS } from './content-coding.ts';
import { AnswerCutShort, Exchanges, HeldBack, UnreadableAnswer, type UpstreamRequest, type UpstreamResponse } from './exchange.ts';
import { FailureLog } from './failure-log.ts';
import { RateLimitPause } from './rate-limit-pause.ts';
import {
  answerMayFollowTheChange,
  CONNECTION_ERROR_CODES,
  failureOf,
  isBrokenHttp,
  keepingClientCertificateDemand,
  mayHaveTakenEffect,
  SIGNATURE_REFUSED,
  statusOfBrokenHttp,
  tlsFailureAfter,
  tookNoEffect,
  proxyRefusalOf,
  tlsFailureBehindProxy,
  tunnelNotOpened,
  upstreamTlsFailure,
} from './failures.ts';
import { isOutOfFileDescriptors } from '../support/file-descriptors.ts';
import {
  answeredFor,
  apiErrorOf,
  isMailboxUnreachable,
  listOf,
  NotCreated,
  parseAccount,
  parseConnectToken,
  parseCreateAccount,
  parseCreateConnectToken,
  parseSuccess,
  ShapeError,
  tokenOf,
} from './parse.ts';
import type {
  UpstreamAccount,
  UpstreamAccountListQuery,
  UpstreamAccountUpdateForm,
  UpstreamConnectTokenForm,
  UpstreamNewAccountForm,
  UpstreamConnectToken,
  UpstreamCreateAccountResult,
  UpstreamCreateConnectTokenResult,
  UpstreamSuccess,
} from './types.ts';
import { shortened } from '../support/shortened.ts';
import { realTimer, type WaitTimer } from '../support/wait-timer.ts';

export interface UpstreamClientOptions {
  /** Base URL including the version, e.g. `https://api.context.io/2.0` (a trailing slash is dropped: paths are joined with one). */
  baseUrl: string;
  consumerKey: string;
  consumerSecret: string;
  /** Deadline of one call, retries and queueing included. */
  timeoutMs: number;
  /** Connections to the upstream, hence requests in flight at once; the rest wait in the pool's queue. */
  maxInFlight: number;
  logger: Logger;
  /** Attempts for an idempotent call (GET, DELETE), the first included. */
  maxAttempts?: number;
  /** First retry delay; doubled each time, with full jitter. */
  retryBaseDelayMs?: number;
  /**
   * Where requests go instead of the client's own pool: an undici `MockAgent` in the client's unit tests
   * (a `MockPool` passed directly would not do: it calls only undici's legacy handler methods).
   */
  dispatcher?: Dispatcher;
  /** The egress proxy every connection is tunnelled through (CONNECT); unset, the pool connects directly. */
  proxy?: EgressProxy | undefined;
  /** Consecutive "upstream down" failures that open the circuit. */
  breakerFailureThreshold?: number;
  /** How long an open circuit fails calls at once before it lets a probe through. */
  breakerCooldownMs?: number;
  /**
   * The timer of the client's own waits: a retry's backoff or a 429's Retry-After, and a rate-limit pause
   * waited out (not the calls' deadlines, nor undici's timers). Default: `setTimeout`. A test passes its own
   * to see each wait asked for, and how long, and to end it when it chooses instead of waiting it out.
   */
  waitTimer?: WaitTimer;
}

interface Call<T> {
  method: Method;
  /** Path segments after the base URL; each is percent-encoded as exactly one segment. */
  segments: readonly string[];
  query?: Params;
  form?: Params;
  parse: (json: unknown) => T;
  /** Aborts the call, e.g. when the GraphQL client went away. */
  signal?: CancelSignal | undefined;
  /** What a 404 means, in words a caller understands ("account 52da…"). */
  resource: string;
  /**
   * What the call was doing, for its other failures' messages ("reading account 52da…"): beside aliases
   * and list items of one type, a caller must not have to read `extensions.upstream.path` to tell which failed.
   */
  action: string;
  /**
   * Called once, when the call's first request is about to be sent (its checks passed, a rate-limit pause
   * waited out, the breaker and the operation's request budget willing), before it is; a throw refuses the
   * call. Retries do not call it again. What it returns is called if the call ends without any request having
   * gone out after all (held back in the pool's queue by a pause or the breaker, cancelled there). The
   * gateway spends a write's or a read's share of its caller's budget so, and gets it back.
   */
  claim?: CallClaim | undefined;
}

/** Taken as a call's first request is about to be sent, and how to give it back (see `Call.claim`). */
export type CallClaim = () => (() => void) | undefined;

/** A call's claim (`Call.claim`): how to give it back, and whether any request went out, which keeps it spent. */
interface ClaimState {
  giveBack: (() => void) | undefined;
  anySent: boolean;
}

/** What a call's attempts share (see `#attempts`): where it stands, carried from one attempt to the next. */
interface CallRun<T> {
  readonly call: Call<T>;
  readonly cancellation: CallCancellation;
  readonly claimState: ClaimState;
  /** What its errors say of the call; `status` is the last answer's. */
  readonly info: UpstreamErrorInfo;
  /** `performance.now()` past which the call is cut. */
  readonly deadline: number;
  readonly verdicts: CallVerdicts;
  /**
   * Whether an earlier attempt may have done what was asked: a connection broken after the request went
   * out, or a 502, 503 or 504 from in front of the API (a proxy may answer so after forwarding), may come
   * after the upstream acted; only a request that never went out, or a 429, says it did not.
   */
  mayHaveLanded: boolean;
  /**
   * The error the previous attempt would have ended the call with: what a retry refused by the operation's
   * request budget, the breaker or a rate-limit pause ends it with instead (the upstream's 502 or 429, which
   * also says whether a write may have taken effect, not a limit of the gateway's).
   */
  previousFailure: (() => Error) | undefined;
  /** Whether that was a 429: a pause that the call cannot wait out then says more (how long it is now). */
  previousRateLimited: boolean;
  /** The call's claim (`Call.claim`) until its first request is about to go out. */
  claim: CallClaim | undefined;
}

/** One attempt's exchange: the breaker's permit it went with, whether and when its request went out. */
interface Exchange {
  readonly permit: BreakerPermit;
  sent: boolean;
  /** `performance.now()` when it went out. */
  sentAt: number;
  /** `performance.now()` when it began to wait for a connection. */
  readonly waitingSince: number;
}

/** What `#answeredInError` returns when the call is to be tried again. */
const TRY_AGAIN = Symbol('try again');
/** A DELETE's answer when it is known done without one to read: the API's own success body. */
const DELETED = '{"success":true}';

/** How a call of a check-only signal (`CancelSignal.checkOnly`) ends once its request could be built. */
export class CallChecked extends Error {
  constructor() {
    super('call checked, not sent');
    this.name = 'CallChecked';
  }
}

const parseConnectTokens = listOf(parseConnectToken);

/**
 * The one Context.IO 2.0 client: everything that talks to the upstream goes through it. It owns the
 * connection pool (keep-alive, and a cap on requests in flight), OAuth signing, deadlines, retries of
 * idempotent calls, response parsing, and the mapping of every failure to the contract's error codes.
 */
export class UpstreamClient {
  readonly #pool: Dispatcher;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #options: Required<Omit<UpstreamClientOptions, 'dispatcher' | 'proxy'>>;
  /** The egress proxy connections go through, for the messages of its failures; `undefined` without one. */
  readonly #proxy: EgressProxy | undefined;
  readonly #breaker: CircuitBreaker;
  /** Configuration faults and call failures, said at most once a while each (see `FailureLog`). */
  readonly #failures: FailureLog;
  /** The key-wide pause a 429 begins: every call waits it out (see `RateLimitPause`). */
  readonly #pause: RateLimitPause;
  /** Each attempt's request sent through `#pool` and its answer read, and when answers last came (see `Exchanges`). */
  readonly #exchanges: Exchanges;

  constructor(options: UpstreamClientOptions) {
    const { dispatcher, proxy, ...rest } = options;
    // `??` rather than spreading defaults first: an option passed as undefined still gets its default.
    this.#options = {
      ...rest,
      maxAttempts: rest.maxAttempts ?? 3,
      retryBaseDelayMs: rest.retryBaseDelayMs ?? 100,
      breakerFailureThreshold: rest.breakerFailureThreshold ?? DEFAULTS.breakerFailureThreshold,
      breakerCooldownMs: rest.breakerCooldownMs ?? DEFAULTS.breakerCooldownMs,
      waitTimer: rest.waitTimer ?? realTimer,
    };
    this.#pause = new RateLimitPause(options.logger);
    this.#failures = new FailureLog(options.logger);
    this.#breaker = new CircuitBreaker({
      failureThreshold: this.#options.breakerFailureThreshold,
      cooldownMs: this.#options.breakerCooldownMs,
      // Opening and closing at the same level, so that a log read at `error` shows the upstream back too; the
      // half-open trials in between at `info`.
      onChange: (state, { cause, openForMs }) => {
        if (state === 'open') options.logger.error('upstream circuit breaker opened: calls fail at once for a while', { state, cooldownMs: this.#options.breakerCooldownMs, lastFailure: cause });
        else if (state === 'closed') options.logger.error('upstream circuit breaker closed: the upstream answers again', { state, openForMs });
        else options.logger.info('upstream circuit breaker changed state', { state });
      },
    });
    const url = new URL(options.baseUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#proxy = proxy;
    const poolOptions = { connections: options.maxInFlight, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000 };
    this.#pool =
      dispatcher ?? (proxy === undefined ? new Pool(this.#origin, { ...poolOptions, connect: keepingClientCertificateDemand(buildConnector({})) }) : throughProxy(proxy, poolOptions, options.timeoutMs));
    this.#exchanges = new Exchanges(this.#pool, this.#origin, this.#pause, this.#breaker);
  }

  /** `closed` while the upstream answers; `open` while calls fail fast; `half-open` while a probe is out. */
  get breakerState() {
    return this.#breaker.state;
  }

  /**
   * Closes every connection at once. For when nothing waits on a call any more (the gateway closes it once
   * every operation is answered): what is left in the pool was cancelled, and a graceful close would still
   * wait on it, a connection that never completes included, for undici's 10 s connect timeout.
   */
  async close(): Promise<void> {
    await this.#pool.destroy();
    // Its calls are over (those cut short by the pool's end included): the failures they left unsaid are said.
    this.#failures.ended();
  }

  /* `claim`: see `Call.claim`. */

  getAccount(id: string, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamAccount> {
    const parse = (value: unknown) => {
      const account = parseAccount(value);
      answeredFor(account.id, id, 'account');
      return account;
    };
    return this.#call({ method: 'GET', segments: ['accounts', id], parse, signal, resource: `account ${quotedId(id)}`, action: `reading account ${quotedId(id)}`, claim });
  }

  listAccounts(query: UpstreamAccountListQuery, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamAccount[]> {
    return this.#call({ method: 'GET', segments: ['accounts'], query, parse: listOf(parseAccount), signal, resource: 'accounts', action: 'listing accounts', claim });
  }

  createAccount(form: UpstreamNewAccountForm, signal?: CancelSignal): Promise<UpstreamCreateAccountResult> {
    return this.#call({ method: 'POST', segments: ['accounts'], form, parse: parseCreateAccount, signal, resource: 'accounts', action: 'creating an account' });
  }

  updateAccount(id: string, form: UpstreamAccountUpdateForm, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamSuccess> {
    return this.#call({ method: 'POST', segments: ['accounts', id], form, parse: parseSuccess, signal, resource: `account ${quotedId(id)}`, action: `updating account ${quotedId(id)}`, claim });
  }

  deleteAccount(id: string, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamSuccess> {
    return this.#call({ method: 'DELETE', segments: ['accounts', id], parse: parseSuccess, signal, resource: `account ${quotedId(id)}`, action: `deleting account ${quotedId(id)}`, claim });
  }

  /** Top-level tokens when `accountId` is null, else the tokens of that account. */
  listConnectTokens(accountId: string | null, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamConnectToken[]> {
    return this.#call({
      method: 'GET',
      segments: connectTokensPath(accountId),
      parse: (value) => {
        const tokens = parseConnectTokens(value);
        if (accountId !== null) tokens.forEach((found, index) => tokenOf(found, accountId, index));
        return tokens;
      },
      signal,
      resource: accountId === null ? 'connect tokens' : `account ${quotedId(accountId)}`,
      action: accountId === null ? 'listing connect tokens' : `listing the connect tokens of account ${quotedId(accountId)}`,
      claim,
    });
  }

  getConnectToken(accountId: string | null, token: string, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamConnectToken> {
    return this.#call({
      method: 'GET',
      segments: [...connectTokensPath(accountId), token],
      parse: (value) => {
        const found = parseConnectToken(value);
        answeredFor(found.token, token, 'connect token');
        if (accountId !== null) tokenOf(found, accountId);
        return found;
      },
      signal,
      resource: connectTokenResource(accountId, token),
      action: `reading ${connectTokenResource(accountId, token)}`,
      claim,
    });
  }

  createConnectToken(accountId: string | null, form: UpstreamConnectTokenForm, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamCreateConnectTokenResult> {
    return this.#call({
      method: 'POST',
      segments: connectTokensPath(accountId),
      form,
      parse: parseCreateConnectToken,
      signal,
      resource: accountId === null ? 'connect tokens' : `account ${quotedId(accountId)}`,
      action: accountId === null ? 'creating a connect token' : `creating a connect token for account ${quotedId(accountId)}`,
      claim,
    });
  }

  deleteConnectToken(accountId: string | null, token: string, signal?: CancelSignal, claim?: CallClaim): Promise<UpstreamSuccess> {
    return this.#call({
      method: 'DELETE',
      segments: [...connectTokensPath(accountId), token],
      parse: parseSuccess,
      signal,
      resource: connectTokenResource(accountId, token),
      action: `deleting ${connectTokenResource(accountId, token)}`,
      claim,
    });
  }

  /**
   * One call: a deadline for all its attempts, and the caller's signal. One cancellation object and one
   * timer per call: `AbortSignal.timeout` + `AbortSignal.any` cost ~50 µs a call on Node 20 (weak
   * references and finalizers the GC has to chase), which a 21-request fan-out pays 21 times.
   */
  async #call<T>(call: Call<T>): Promise<T> {
    const cancellation = new CallCancellation();
    const timer = setTimeout(() => cancellation.cancel('deadline'), this.#options.timeoutMs);
    timer.unref();
    const dependants = call.signal && dependantsOf(call.signal);
    if (call.signal?.aborted) cancellation.cancel('caller');
    dependants?.add(cancellation);
    const claimState: ClaimState = { giveBack: undefined, anySent: false };
    try {
      return await this.#attempts(call, cancellation, claimState);
    } finally {
      clearTimeout(timer);
      dependants?.delete(cancellation);
      if (!claimState.anySent) claimState.giveBack?.();
    }
  }

  /**
   * A call's attempts: the first, and the retries an idempotent call is allowed (a broken connection, a 429 or
   * an API that looked down), each after the waits it owes (a rate-limit pause, a backoff), within the call's
   * deadline and its operation's request budget. Each attempt goes out only with the breaker's permit.
   */
  async #attempts<T>(call: Call<T>, cancellation: CallCancellation, claimState: ClaimState): Promise<T> {
    const { relativePath, query, form, queryString } = requestTarget(this.#basePath, call.segments, call.query, call.form);
    if (call.signal?.checkOnly) throw new CallChecked();
    const run: CallRun<T> = {
      call,
      cancellation,
      claimState,
      info: { status: null, method: call.method, path: relativePath },
      // Monotonic, as every time the client keeps: a wall clock stepped back must not lengthen a wait.
      deadline: performance.now() + this.#options.timeoutMs,
      verdicts: new CallVerdicts(this.#breaker),
      mayHaveLanded: false,
      previousFailure: undefined,
      previousRateLimited: false,
      claim: call.claim,
    };
    // Its operation was stopped (out of time, or by the shutdown) before this call began, while earlier fields
    // ran: a mutation's next write, a read nested under a slow one. Nothing is sent or waited for, and its
    // error says so, not that it waited for a connection (which would send an operator to the pool's size).
    if (call.signal?.aborted) throw this.#stoppedBeforeItBegan(call, run.info);
    const idempotent = call.method !== 'POST';

    for (let attempt = 1; ; attempt++) {
      const lastAttempt = !idempotent || attempt >= this.#options.maxAttempts;
      // Before any wait below: a call the budget will refuse must not wait out a rate-limit pause first.
      if (call.signal?.requestsLeft === 0) {
        run.verdicts.settle();
        throw this.#outOfBudget(run);
      }
      if (this.#pause.leftMs() > 0) await this.#waitOutPause(run);
      // Signed afresh each attempt (a new nonce and timestamp), before the breaker is asked: only the
      // exchange itself, below, can count as the upstream failing.
      const request = this.#request(call.method, this.#basePath + relativePath, query, form, queryString, call.signal);
      const permit = this.#admit(run);
      const exchange: Exchange = { permit, sent: false, sentAt: 0, waitingSince: performance.now() };
      let response: UpstreamResponse;
      try {
        response = await this.#exchanges.send(request, permit, cancellation, call.signal, () => {
          exchange.sent = true;
          claimState.anySent = true;
          exchange.sentAt = performance.now();
          run.verdicts.wentOut();
          call.signal?.countRequest?.();
        });
      } catch (error) {
        if (!exchange.sent) call.signal?.releaseRequest?.();
        if (error instanceof HeldBack) {
          // Not an attempt: nothing went out. The loop's head waits the pause out, asks the breaker again, or
          // ends the call.
          this.#breaker.release(permit);
          attempt--;
          continue;
        }
        // No answer to this attempt: an earlier attempt's status (a 502, a 429) must not stand beside an
        // error saying none came. One that came and was cut short or too large sets its own below.
        run.info.status = null;
        await this.#retryAfterFailedExchange(run, error, exchange, request.headers.authorization!, attempt, lastAttempt);
        continue;
      }
      // Succeeded, the call's value comes with no further wait (this is every call's path but a failing one's).
      if (response.status >= 200 && response.status < 300) {
        run.info.status = response.status;
        run.verdicts.answered(permit, response.status);
        this.#failures.answered();
        // A DELETE answered 204 (No Content) is done, as HTTP has it: the API answers 200 {"success":true}, but a
        // server or proxy speaking plain HTTP in front of it may not, and no body is then no unexpected one.
        return this.#parse(call, call.method === 'DELETE' && response.status === 204 ? DELETED : response.text, run.info);
      }
      const answer = await this.#answeredInError(run, response, permit, request.headers.authorization!, attempt, lastAttempt);
      if (answer !== TRY_AGAIN) return answer;
    }
  }

  /**
   * Waits out the key-wide rate-limit pause (another call's 429) when a useful share of the call's time is
   * left after it; ends the call otherwise.
   */
  async #waitOutPause<T>(run: CallRun<T>): Promise<void> {
    const { call, cancellation, info } = run;
    // Checked again after each wait: another call's 429 may have made the pause longer meanwhile.
    for (let pausedMs = this.#pause.leftMs(); pausedMs > 0; pausedMs = this.#pause.leftMs()) {
      // Waited out only when a useful share of the call's time is left after it: calls set free with
      // milliseconds to go would time out together and open the breaker just as the limit lifts. A little
      // jitter keeps the waiting calls from all leaving at the same instant.
      const wait = pastPause(pausedMs);
      const usefulAfter = this.#options.timeoutMs / 4;
      if (performance.now() + wait + usefulAfter < run.deadline && (await this.#sleep(wait, run.deadline, cancellation))) continue;
      run.verdicts.settle();
      const reason: unknown = call.signal?.reason;
      // Cut while it waited: by its operation's deadline or the shutdown, it ends as one that could not
      // wait (below): the rate limit is what kept it, the upstream never had it to answer, and when calls
      // resume is what its caller can act on; unless an earlier attempt failed otherwise (a 502 after
      // which a write may have taken effect says more). Cut by its caller leaving, nobody reads the answer.
      const stoppedBy = cancellation.reason !== undefined && reason instanceof OperationDeadlineExceeded ? reason : undefined;
      if (cancellation.reason !== undefined) {
        this.#logTimeout(call, cancellation, info, { sent: false, waitedForRateLimit: true, countedByBreaker: false });
        if (stoppedBy === undefined) throw this.#cancelledError(call, cancellation, info, run.mayHaveLanded);
      }
      if (run.previousFailure && !run.previousRateLimited) throw run.previousFailure();
      const retryAfter = retryAfterSeconds(this.#pause.leftMs());
      const what = stoppedBy ? `${stoppedBy.message} while ${call.action} (it was waiting out the upstream rate limit)` : `The upstream rate limit was reached while ${call.action}`;
      const landed = mayHaveTakenEffect(call.method, run.mayHaveLanded, 'an earlier attempt');
      throw this.#fail(ErrorCode.RATE_LIMITED, `${what}; calls resume in ${retryAfter} s${landed}`, info, { retryAfter });
    }
  }

  /** One attempt's request, signed: its path, headers and form body. */
  #request(method: Method, path: string, query: OAuthParam[], form: OAuthParam[], queryString: string, signal: CancelSignal | undefined): UpstreamRequest {
    const headers: Record<string, string> = {
      authorization: this.#authorization(method, path, [...query, ...form]),
      accept: 'application/json',
      'accept-encoding': ACCEPTED_CODINGS,
      // Who calls (undici sends no User-Agent of its own), and for which operation: the id the gateway's log
      // lines carry, so that an upstream's logs and the gateway's can be put side by side.
      'user-agent': 'contextio-graphql',
    };
    if (signal?.requestId !== undefined) headers['x-request-id'] = signal.requestId;
    if (signal?.trace !== undefined) {
      headers.traceparent = signal.trace.traceparent;
      if (signal.trace.tracestate !== undefined) headers.tracestate = signal.trace.tracestate;
    }
    let body: string | undefined;
    if (form.length > 0 || method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = encodeFormPairs(form);
    }
    return { method, path: path + queryString, headers, body };
  }

  /**
   * Lets an attempt go out: the breaker's permit, a request of the operation's budget, and for the call's first
   * request its claim. Ends the call when one of them refuses.
   */
  #admit<T>(run: CallRun<T>): BreakerPermit {
    const { call, info } = run;
    const permit = this.#breaker.tryAcquire();
    if (!permit) {
      // The call ends here, an owed failure unrecorded: the circuit is not closed, so it has nothing left to open.
      if (run.previousFailure) throw run.previousFailure();
      call.signal?.countBreakerRefusal?.();
      const waitMs = this.#breaker.retryInMs();
      if (waitMs <= 0) {
        throw this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream is failing; one trial call is checking whether it has recovered, retry in a moment (circuit half-open): the request ${call.action} was not sent`, info);
      }
      // When calls resume, for a client to wait before it retries, as a rate limit's `retryAfter` says: the
      // message alone would have a frontend parse it.
      const retryAfter = retryAfterSeconds(waitMs);
      throw this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream is failing; calls are paused for ${retryAfter} s (circuit open): the request ${call.action} was not sent`, info, { retryAfter });
    }
    // The operation's budget of requests: a ceiling for what its estimated cost could not foresee. Claimed
    // only now, for a request about to go out, and given back if it never does.
    if (call.signal?.claimRequest?.() === false) {
      run.verdicts.noVerdict(permit);
      throw this.#outOfBudget(run);
    }
    if (run.claim !== undefined) {
      try {
        run.claimState.giveBack = run.claim();
      } catch (refusal) {
        call.signal?.releaseRequest?.();
        run.verdicts.noVerdict(permit);
        throw refusal;
      }
      run.claim = undefined;
    }
    return permit;
  }

  /**
   * After an exchange that brought no answer (cancelled, broken, unreadable): resolves when the call is to
   * try again (a connection that failed, an idempotent call with attempts and time left, after its backoff);
   * throws the call's error otherwise.
   */
  async #retryAfterFailedExchange<T>(run: CallRun<T>, error: unknown, exchange: Exchange, authorization: string, attempt: number, lastAttempt: boolean): Promise<void> {
    const { call, cancellation, info, verdicts } = run;
    const { permit, sent } = exchange;
    if (cancellation.reason !== undefined) {
      // A success cut short by the call's end had come: `extensions.upstream.status` is null only when no answer did.
      if (error instanceof AnswerCutShort) info.status = error.status;
      throw this.#timedOut(run, exchange);
    }
    if (error instanceof UnreadableAnswer) {
      // A success it answered (an error answer's status decides without its body, in `Exchanges.send`): a fault of
      // this answer, the same on every attempt, not retried; and the upstream serving, as any other answer says
      // (an earlier attempt's 502 is forgotten, as when a 404 follows it; a half-open circuit closes).
      verdicts.answered(permit, error.status);
      this.#failures.answered();
      info.status = error.status;
      // A success: a write was carried out, whatever its body. The upstream's words it carries (a coding it
      // named) are cleared of the gateway's credentials, as its error bodies are.
      const cleared = error.clearedOf((words) => redactedErrorBody(words, this.#options.consumerSecret, authorization, info));
      throw this.#unexpectedBody(call, info, cleared.message, true, cleared.said(call.action));
    }
    const { failure, code, ofProxy } = failureOf(error);
    if (isBrokenHttp(error, code)) {
      // It was reached, and answered: saying it could not be would send an operator to the network. A
      // fault of this answer (one resource's oversized headers, say), like a too-large one: the breaker
      // does not count it.
      verdicts.noVerdict(permit);
      // undici's reason is fixed text (never the answer's bytes), cut short all the same.
      const reason = error instanceof Error ? shortened(error.message, 200) : undefined;
      // Once a second at most for each code: an upstream (or what is in front of it) answering every call so
      // would write a line a call.
      this.#failures.callFailure('upstream answer was not valid HTTP', code ?? 'no code', { ...forLog(info, call.signal), code, reason });
      const detail = code === 'UND_ERR_HEADERS_OVERFLOW' ? ' (its headers were too large)' : '';
      // A success whose body then broke came with its status: null only when no answer arrived at all.
      info.status = statusOfBrokenHttp(error);
      throw this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream's answer was not valid HTTP${detail} while ${call.action}${mayHaveTakenEffect(call.method, run.mayHaveLanded || sent)}`, info);
    }
    if (isOutOfFileDescriptors(code)) {
      // The gateway's own shortage, not the upstream's: pausing every caller's calls would not help, and
      // would send an operator to the upstream. Not retried at once either: it would fail the same way.
      verdicts.noVerdict(permit);
      // Every call meets it until descriptors are freed: once a second at most for each code, at error.
      this.#failures.callFailure('the gateway could not open an upstream connection: it is out of file descriptors (raise its limit, ulimit -n)', code ?? 'no code', { ...forLog(info, call.signal), code }, 'error');
      const landed = mayHaveTakenEffect(call.method, run.mayHaveLanded, 'an earlier attempt');
      throw this.#fail(ErrorCode.UPSTREAM_ERROR, `The gateway could not open a connection to the upstream (it is out of file descriptors) while ${call.action}${landed}`, info);
    }
    // Behind a proxy, a connection that failed before its request went out failed on the way to the proxy or in
    // its CONNECT: saying the upstream could not be reached would hide which.
    const proxy = sent || error instanceof AnswerCutShort ? undefined : this.#proxy;
    // A tunnel the egress proxy would not open: the same on every attempt until the deployment changes. undici
    // reports it with a cancelled request's code (UND_ERR_ABORTED): told apart by its message, as it is not the
    // call's own cancellation (checked first, above).
    const tunnelStatus = proxy === undefined ? undefined : proxyRefusalOf(error);
    // Its own 4xx (407 or 401, 403) is the proxy's rules or credentials. Its 5xx (502, 504) says it could not reach the
    // upstream, or is failing itself: the upstream out of reach as far as the gateway can tell, as below.
    if (proxy !== undefined && tunnelStatus !== undefined && tunnelStatus < 500) {
      verdicts.noVerdict(permit);
      throw this.#proxyRefused(run, tunnelStatus, proxy);
    }
    // A TLS handshake happens before a request goes out (but for a TLS 1.3 server's demand for a client
    // certificate, see `tlsFailureAfter`); one failing is not an upstream down but the same on every attempt until
    // the deployment changes (see `#tlsFailure`).
    const tls = tlsFailureAfter(code, sent);
    if (tls !== undefined) {
      verdicts.noVerdict(permit);
      throw this.#tlsFailure(run, tls, code!, failure, ofProxy);
    }
    // A CONNECT the proxy left unanswered, given up (`throughProxy`), fails every request waiting for its tunnel
    // with undici's headers timeout: a connection that could not be opened, as one whose opening timed out.
    const tunnelTimedOut = proxy !== undefined && code === 'UND_ERR_HEADERS_TIMEOUT';
    const connectionFailed = tunnelStatus !== undefined || tunnelTimedOut || (code !== undefined && CONNECTION_ERROR_CODES.has(code));
    const willRetry = !lastAttempt && connectionFailed && call.signal?.requestsLeft !== 0;
    verdicts.failedRetrying(permit, { ...forLog(info, call.signal), code }, willRetry);
    // Only a request that went out may have been carried out (a refused connection or TLS handshake never
    // sent it; undici starts a request only on a connected socket).
    run.mayHaveLanded ||= sent;
    const unreachable = () => {
      if (proxy === undefined) this.#failures.callFailure('upstream connection failed', code ?? 'no code', { ...forLog(info, call.signal), code, sent });
      else {
        const how = tunnelStatus === undefined ? { code } : { status: tunnelStatus };
        this.#failures.callFailure('egress proxy connection failed', tunnelStatus === undefined ? (code ?? 'no code') : `HTTP ${tunnelStatus}`, { ...forLog(info, call.signal), ...how, proxy: proxy.shown });
      }
      // A write sent (on this attempt or an earlier one) may have been carried out: the caller must not
      // take the failure for a refusal.
      const what =
        error instanceof AnswerCutShort
          ? `The connection to the upstream broke during its answer (HTTP ${error.status})`
          : sent
            ? 'The connection to the upstream broke before it answered'
            : proxy === undefined
              ? 'The upstream could not be reached'
              : tunnelNotOpened(proxy, tunnelStatus, tunnelTimedOut, code);
      // Its status came: `extensions.upstream.status` is null only when no answer arrived at all.
      if (error instanceof AnswerCutShort) info.status = error.status;
      return this.#fail(ErrorCode.UPSTREAM_ERROR, `${what} while ${call.action}${mayHaveTakenEffect(call.method, run.mayHaveLanded)}`, info);
    };
    if (willRetry) {
      run.previousFailure = unreachable;
      run.previousRateLimited = false;
      if (await this.#backoff(attempt, undefined, run.deadline, cancellation)) return;
      verdicts.settle();
    }
    throw unreachable();
  }

  /**
   * A call whose connection failed at TLS: its certificate refused (expired, for another host name, or signed by
   * an authority this machine does not trust), or a handshake that failed otherwise (an http:// server at the
   * https:// address). Every call meets it until the deployment changes, as a refused key pair: not retried (it
   * would fail the same), not counted by the breaker (an open circuit would tell callers and operators that
   * the upstream is failing, hiding what is), and logged at `error` once a minute for each code, with Node's
   * reason (what the certificate lacks; never a secret).
   */
  #tlsFailure<T>(run: CallRun<T>, failure: 'certificate' | 'handshake', code: string, error: unknown, ofProxy: boolean): Error {
    const { call, info } = run;
    // OpenSSL's own errors carry their reason apart ("wrong version number"), the message adding its internals.
    const openSslReason = (error as { reason?: unknown }).reason;
    const reason = failure === 'handshake' && typeof openSslReason === 'string' ? openSslReason : error instanceof Error ? shortened(error.message, 200) : undefined;
    // Behind an https:// egress proxy, reached over TLS too, the failure may be the proxy's: told apart (`ofProxy`,
    // see `throughProxy`), as the upstream's would send an operator to the wrong server.
    const proxy = ofProxy ? this.#proxy : undefined;
    const { fault, what } = proxy === undefined ? upstreamTlsFailure(failure, code) : tlsFailureBehindProxy(failure, code, proxy);
    this.#failures.configurationFault(fault, { ...forLog(info, call.signal), code, reason, ...(proxy === undefined ? {} : { proxy: proxy.shown }) });
    return this.#fail(ErrorCode.UPSTREAM_ERROR, `${what} while ${call.action}${mayHaveTakenEffect(call.method, run.mayHaveLanded, 'an earlier attempt')}`, info);
  }

  /**
   * A call whose egress proxy refused to open the tunnel to the upstream (its CONNECT answered `status`: 407
   * for credentials missing or refused, 403 for a destination its rules forbid). Every call meets it until the
   * deployment changes, as a certificate refused (`#tlsFailure`): not retried, no verdict for the breaker (the
   * upstream was never asked), logged at `error` once a minute for each status.
   */
  #proxyRefused<T>(run: CallRun<T>, status: number, proxy: EgressProxy): Error {
    const { call, info } = run;
    const hint = proxyRefusalHint(status, proxy, 'CONTEXTIO_API_URL') ?? 'its own log says why';
    this.#failures.configurationFault(`the egress proxy refused to open a tunnel to the upstream (HTTP ${status}): ${hint}`, { ...forLog(info, call.signal), proxy: proxy.shown, status });
    const landed = mayHaveTakenEffect(call.method, run.mayHaveLanded, 'an earlier attempt');
    return this.#fail(ErrorCode.UPSTREAM_ERROR, `The egress proxy ${proxy.shown} refused to open a tunnel to the upstream (HTTP ${status}) while ${call.action}${landed}`, info);
  }

  /**
   * The error of an exchange cut by the call's deadline or its caller, the breaker told whether it says the
   * upstream is failing.
   */
  #timedOut<T>(run: CallRun<T>, { permit, sent, sentAt, waitingSince }: Exchange): Error {
    const { call, cancellation, info } = run;
    // Out of time, the upstream counts as failing (an answer or a connection that never came). Not when
    // the upstream answered others while this one waited and it never went out, or went out with under
    // half its time left (it spent the rest in the client's own queue: a gateway short of connections is
    // no upstream down); nor when it went out in time but others were answered whole meanwhile (one
    // resource hanging); nor for a caller that went away: none says the upstream is down.
    // Nor for the half-open circuit's trial when it began with under half its time left (it spent the rest
    // queued, or waiting out a pause): timed out, it says nothing of an upstream that may have recovered,
    // and the circuit stays half-open for the next call to try.
    const now = performance.now();
    const hadItsTime = sent && now - sentAt >= this.#options.timeoutMs / 2;
    const lateTrial = permit !== 'call' && run.deadline - waitingSince < this.#options.timeoutMs / 2;
    const upstreamFailing = !lateTrial && (hadItsTime ? this.#exchanges.lastAnswerEndAt < sentAt : this.#exchanges.lastAnswerAt < waitingSince);
    const counted = cancellation.reason === 'deadline' && upstreamFailing;
    // Where its time went: waiting for one of the gateway's own upstream connections (`queuedMs`, all of
    // it when it never went out) or for the upstream; behind an egress proxy, unsent, for a tunnel through it.
    this.#logTimeout(call, cancellation, info, {
      sent,
      queuedMs: Math.round((sent ? sentAt : now) - waitingSince),
      countedByBreaker: counted,
      ...(sent || this.#proxy === undefined ? {} : { proxy: this.#proxy.shown }),
    });
    if (counted) run.verdicts.failed(permit, { ...forLog(info, call.signal), timedOut: true, sent });
    else run.verdicts.noVerdict(permit);
    return this.#cancelledError(call, cancellation, info, run.mayHaveLanded || sent, !run.claimState.anySent);
  }

  /**
   * An attempt's answer with an error status: `TRY_AGAIN` when a retry is due (a 429 or an API that looked
   * down, with attempts and time left, after its wait); the call's error otherwise, but for a DELETE whose
   * resource is gone after an earlier attempt may have deleted it.
   */
  async #answeredInError<T>(run: CallRun<T>, response: UpstreamResponse, permit: BreakerPermit, authorization: string, attempt: number, lastAttempt: boolean): Promise<T | typeof TRY_AGAIN> {
    const { call, info, verdicts } = run;
    const { status, text } = response;
    info.status = status;
    // 502/504 say the upstream (or what is in front of it) is down. A 500 is one request failing, and a 503
    // with the API's own error body is, in Context.IO's terms, one account's mail server out of reach: the
    // API itself answered, so neither may pause every caller's calls. A 503 without that body is what a
    // load balancer answers for an API that is down.
    const apiDown = status === 502 || status === 504 || (status === 503 && !isMailboxUnreachable(status, text));
    // Worth another attempt: a rate limit (after its Retry-After), or an API that looked down. Not a
    // mailbox out of reach, which will not be back in a few hundred ms and would spend the key's hourly
    // quota (5,000 calls) on each retry.
    const willRetry = !lastAttempt && (status === 429 || apiDown) && call.signal?.requestsLeft !== 0;
    if (apiDown) verdicts.failedRetrying(permit, { ...forLog(info, call.signal), status }, willRetry);
    else verdicts.answered(permit, status);
    run.mayHaveLanded ||= apiDown;
    const failure = () => this.#statusError(status, call, response, info, authorization, run.mayHaveLanded);
    if (willRetry) {
      run.previousFailure = failure;
      run.previousRateLimited = status === 429;
      if (await this.#backoff(attempt, response.retryAfterMs, run.deadline, run.cancellation)) return TRY_AGAIN;
      verdicts.settle();
    }
    // A DELETE whose earlier attempt may have landed: the resource being gone is what was asked for. After
    // only refusals (429s), a 404 means it never existed.
    if (call.method === 'DELETE' && status === 404 && run.mayHaveLanded) return this.#parse(call, DELETED, info);
    throw failure();
  }

  /** The error of a call the operation's request budget refuses: what the previous attempt failed with, if any. */
  #outOfBudget<T>(run: CallRun<T>): Error {
    return run.previousFailure?.() ?? this.#budgetExhausted(run.call, run.info);
  }

  /**
   * A call the operation's request budget refuses before its first request: said once in the log, a limit as the
   * others are. Its message says the request was not sent, as the circuit breaker's does: a mutation's write
   * refused so, after writes listed in `writesMade`, was not made.
   */
  #budgetExhausted<T>(call: Call<T>, info: UpstreamErrorInfo): Error {
    const maximum = call.signal?.maxRequests;
    if (call.signal !== undefined && !budgetLogged.has(call.signal)) {
      budgetLogged.add(call.signal);
      this.#options.logger.warn('operation ran out of upstream requests: its further fields fail', { ...forLog(info, call.signal), maximum });
    }
    const notSent = `the request ${call.action} was not sent${tookNoEffect(call.method)}`;
    return gatewayError(ErrorCode.QUERY_TOO_COMPLEX, `The operation has sent the most upstream requests one may (${maximum}, retries included: twice MAX_QUERY_COST ÷ 10, rounded up): ${notSent}`, undefined, {
      limit: 'UPSTREAM_REQUESTS',
      maximum,
    });
  }

  #authorization(method: Method, path: string, params: OAuthParam[]): string {
    const protocol = protocolParams(this.#options.consumerKey, randomUUID(), String(Math.floor(Date.now() / 1000)));
    const signature = sign({
      method,
      baseUrl: this.#origin + path,
      params: [...params, ...protocol],
      consumerSecret: this.#options.consumerSecret,
    });
    return authorizationHeader(protocol, signature);
  }

  /** Waits before the next attempt; false when that wait would pass the deadline or the call is cancelled. */
  #backoff(attempt: number, retryAfterMs: number | undefined, deadline: number, cancellation: CallCancellation): Promise<boolean> {
    const exponential = this.#options.retryBaseDelayMs * 2 ** (attempt - 1);
    // `Retry-After: 0` (or a date already past) says "now", which the jittered wait honours without all the
    // retrying calls arriving together. A later one is waited out as the pause it began is (the calls of one
    // operation's fan-out answered 429 together would otherwise all come back at the same instant).
    return this.#sleep(retryAfterMs ? pastPause(retryAfterMs) : Math.random() * exponential, deadline, cancellation);
  }

  /**
   * The error of a call cancelled by its own deadline or by its caller (gone, or out of time). `mayHaveLanded`:
   * a request of it went out, so a write may have been carried out all the same, which its message then says.
   * `neverSent`: no request of it went out, its whole time spent waiting for a connection (all of the
   * gateway's in use, or one to the upstream that could not be opened): the upstream was never asked, and a
   * write was not carried out, which is what its caller needs to know to try again.
   */
  #cancelledError<T>(call: Call<T>, cancellation: CallCancellation, info: UpstreamErrorInfo, mayHaveLanded: boolean, neverSent = false) {
    const landed = mayHaveTakenEffect(call.method, mayHaveLanded);
    const reason: unknown = call.signal?.reason;
    const timedOut = cancellation.reason === 'deadline' || reason instanceof OperationDeadlineExceeded;
    if (timedOut && neverSent) {
      const effect = tookNoEffect(call.method);
      // Behind an egress proxy, a connection is opened by a CONNECT: one the proxy leaves unanswered is given up
      // only at UPSTREAM_TIMEOUT_MS from its start (`throughProxy`), after the call that asked for it ran out of time.
      const through = this.#proxy === undefined ? '' : ` through the egress proxy ${this.#proxy.shown}`;
      const message =
        reason instanceof OperationDeadlineExceeded
          ? `${reason.message} while ${call.action} (the request never went out: no connection to the upstream became free or could be opened${through} in time${effect})`
          : `No connection to the upstream became free or could be opened${through} within ${this.#options.timeoutMs} ms while ${call.action}: the request never went out${effect}`;
      return this.#fail(ErrorCode.UPSTREAM_TIMEOUT, message, info);
    }
    if (cancellation.reason === 'deadline') {
      const what = info.status === null ? 'The upstream did not answer' : `The upstream’s HTTP ${info.status} answer did not arrive whole`;
      return this.#fail(ErrorCode.UPSTREAM_TIMEOUT, `${what} within ${this.#options.timeoutMs} ms while ${call.action}${landed}`, info);
    }
    if (reason instanceof OperationDeadlineExceeded) {
      // A success's status had come, its body still arriving: said so, as for the call's own deadline above.
      const cutShort = info.status === null ? '' : ` (the upstream’s HTTP ${info.status} answer had not arrived whole)`;
      return this.#fail(ErrorCode.UPSTREAM_TIMEOUT, `${reason.message} while ${call.action}${cutShort}${landed}`, info);
    }
    return this.#fail(ErrorCode.UPSTREAM_ERROR, `The request was cancelled${landed}`, info);
  }

  /** The error of a call whose operation was stopped before it began: nothing went out, so a write did not take effect. */
  #stoppedBeforeItBegan<T>(call: Call<T>, info: UpstreamErrorInfo) {
    const effect = tookNoEffect(call.method);
    const reason: unknown = call.signal?.reason;
    if (reason instanceof OperationDeadlineExceeded) {
      return this.#fail(ErrorCode.UPSTREAM_TIMEOUT, `${reason.message} (the request ${call.action} was not sent: the operation had been stopped before it began${effect})`, info);
    }
    return this.#fail(ErrorCode.UPSTREAM_ERROR, `The request ${call.action} was cancelled before it was sent${effect}`, info);
  }

  /** Waits `delay` ms; false, at once, when that would pass the deadline, or as soon as the call is cancelled. */
  #sleep(delay: number, deadline: number, cancellation: CallCancellation): Promise<boolean> {
    if (performance.now() + delay >= deadline || cancellation.reason !== undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const cancelWait = this.#options.waitTimer(() => {
        cancellation.onCancel = undefined;
        resolve(true);
      }, delay);
      cancellation.onCancel = () => {
        cancelWait();
        resolve(false);
      };
    });
  }

  #parse<T>(call: Call<T>, text: string, info: UpstreamErrorInfo): T {
    try {
      return call.parse(JSON.parse(text));
    } catch (error) {
      if (error instanceof NotCreated) {
        this.#options.logger.warn('upstream answered that it created nothing', { ...forLog(info, call.signal), status: info.status });
        // What the call was creating, and for which account: beside aliases of one mutation, which one declined.
        throw this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream answered success: false to ${call.action}: nothing was created`, info);
      }
      // The API's own error body under a success status (a server or a proxy in front of it answering errors
      // 200): said so, rather than as the first field it lacks ("account.id is not a string"). Its words, the
      // upstream's, are not shown.
      const reason = !(error instanceof ShapeError) ? 'the body is not JSON' : apiErrorOf(text) !== undefined ? `the body is the API's error shape ({"type": "error", …}) under HTTP ${info.status}` : error.message;
      // Only a success's body is parsed: a write was carried out, whatever its body says.
      throw this.#unexpectedBody(call, info, reason, true);
    }
  }

  /**
   * An answer the client cannot use (not the JSON expected, too large, or in a coding it cannot read): logged as
   * the upstream's fault, at error, once a second at most for each status and reason (an upstream answering them
   * all so comes by the call). `mayHaveLanded`: the write it answered may have been carried out, which the
   * message then says. `said`: the message before that, when not the usual one.
   */
  #unexpectedBody<T>(call: Call<T>, info: UpstreamErrorInfo, reason: string, mayHaveLanded: boolean, said = `The upstream answered with an unexpected body while ${call.action}: ${reason}`) {
    this.#failures.callFailure('upstream answered with an unexpected body', `HTTP ${info.status}: ${reason}`, { ...forLog(info, call.signal), status: info.status, reason }, 'error');
    return this.#fail(ErrorCode.UPSTREAM_ERROR, `${said}${mayHaveTakenEffect(call.method, mayHaveLanded)}`, info);
  }

  #statusError<T>(status: number, call: Call<T>, { text, retryAfterMs, location, unread }: UpstreamResponse, info: UpstreamErrorInfo, authorization: string, mayHaveLanded: boolean) {
    // The upstream's own message is logged, never returned: it may describe the gateway's key or internals.
    // Searching it for the gateway's credentials costs ~0.1 ms: done only when the line is written.
    if (this.#options.logger.enabled('debug')) {
      const clear = (words: string) => redactedErrorBody(words, this.#options.consumerSecret, authorization, info);
      // Why the body is unread may name the upstream's own words too (a coding it named): cleared alike.
      this.#options.logger.debug('upstream error response', { ...forLog(info, call.signal), status, ...(unread === undefined ? { body: clear(text) } : { unread: clear(unread) }) });
    }
    // A refusal of a retried DELETE (a 502 first, say) does not undo what an earlier attempt may have done.
    const earlier = mayHaveTakenEffect(call.method, mayHaveLanded, 'an earlier attempt');
    // The API document infers 401 for a bad signature; its body's code 105 says so whatever the status.
    const apiCode = apiErrorOf(text)?.code;
    switch (apiCode === SIGNATURE_REFUSED ? 401 : status) {
      case 400:
        // The caller sees BAD_USER_INPUT, as for the gateway's own refusals: the operator is told it came from the
        // upstream, which the gateway's checks of every input should have spared it (the API's code, never its
        // words, which may quote the caller's input: those at debug, above).
        this.#failures.callFailure('upstream refused a request’s parameters as invalid: the gateway’s own checks let them through', `HTTP ${status}`, {
          ...forLog(info, call.signal),
          status,
          ...(apiCode === undefined ? {} : { upstreamCode: apiCode }),
        });
        return this.#fail(ErrorCode.BAD_USER_INPUT, `The upstream refused the request’s parameters as invalid while ${call.action}${earlier}`, info);
      case 401:
        // A signature is refused for a wrong key pair, and also for a clock far off (it carries its time): the
        // upstream's own words, cleared of credentials, tell which.
        this.#failures.configurationFault('the upstream refused the gateway’s API key: check CONTEXTIO_CONSUMER_KEY and CONTEXTIO_CONSUMER_SECRET, and this machine’s clock (a signature carries its time)', () => ({
          ...forLog(info, call.signal),
          upstreamSaid: redactedErrorBody(text, this.#options.consumerSecret, authorization, info),
        }));
        return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream refused the gateway’s credentials while ${call.action}${earlier}`, info);
      case 402:
      case 403:
        return this.#fail(ErrorCode.FORBIDDEN, `The upstream does not allow access to ${call.resource}${earlier}`, info);
      case 404:
        // The API's own collections (`/accounts`, `/connect_tokens`) always exist: their 404 is a base URL
        // that is not the API's (its version left out, say), which no caller's data explains.
        if (call.segments.length === 1) {
          this.#failures.configurationFault('the upstream has no such resource as the API’s own collections at CONTEXTIO_API_URL: is it the API’s base URL, version included (…/2.0)?', forLog(info, call.signal));
          return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream does not serve ${call.resource} at the gateway’s configured address${earlier}`, info);
        }
        return this.#fail(ErrorCode.NOT_FOUND, `Not found: ${call.resource}`, info);
      case 301:
      case 302:
      case 303:
      case 307:
      case 308: {
        // The API redirecting its own calls is an address that moved (http:// to https://, another host), which
        // every call meets until CONTEXTIO_API_URL follows it. Not followed here: a request is signed for its URL.
        // Where to is logged cleared of credentials and tokens, as the upstream's words are.
        this.#failures.configurationFault('the upstream redirects the gateway’s requests: set CONTEXTIO_API_URL to the address it now answers at', () => ({
          ...forLog(info, call.signal),
          status,
          location: location === undefined ? undefined : redactedErrorBody(location, this.#options.consumerSecret, authorization, info),
        }));
        // A 303 (See Other) is the exception: it answers a request carried out, its result elsewhere (RFC 9110
        // §15.4.4), so a write answered so may have taken effect.
        const effect = status === 303 ? mayHaveTakenEffect(call.method, true) : earlier;
        return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream is no longer at the gateway’s configured address (it redirects, HTTP ${status}) while ${call.action}${effect}`, info);
      }
      case 421:
        this.#failures.configurationFault('the upstream does not answer to the host name in CONTEXTIO_API_URL (421 Misdirected Request)', forLog(info, call.signal));
        return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream refused the request as misdirected while ${call.action}${earlier}`, info);
      case 429: {
        // The upstream's own Retry-After, passed on: a client can wait exactly that long instead of guessing.
        // Counted from now, as what is left of the pause it began (or a later 429 made longer): the call may
        // have waited to retry, or for its body, until its deadline, and calls resume no later for it.
        if (!retryAfterMs) {
          // Nothing pauses then (`RateLimitPause` takes a Retry-After alone), so nothing else says the key's limit
          // was reached; the API document promises no Retry-After. At warn, once a second at most, as a call failure.
          this.#failures.callFailure('the upstream rate limit was reached, its 429 giving no Retry-After: nothing pauses calls, each retries on its own', `HTTP ${status}`, { ...forLog(info, call.signal), status });
          return this.#fail(ErrorCode.RATE_LIMITED, `The upstream rate limit was reached while ${call.action}; try again later${earlier}`, info);
        }
        const retryAfter = retryAfterSeconds(this.#pause.leftMs());
        return this.#fail(ErrorCode.RATE_LIMITED, `The upstream rate limit was reached while ${call.action}; try again in ${retryAfter} s${earlier}`, info, { retryAfter });
      }
      default: {
        // Said at warn (once a second at most for each status): callers only see UPSTREAM_ERROR, and the
        // operation's line only its code, not which call failed how.
        this.#failures.callFailure('upstream answered with an error', `HTTP ${status}`, { ...forLog(info, call.signal), status });
        // Any server error may come after a write was carried out: the API's own 500 failing after the change
        // (the emulator's, when its data file could not be saved), a proxy's 502 or 504; or an earlier attempt's.
        const effect = mayHaveTakenEffect(call.method, mayHaveLanded || answerMayFollowTheChange(status));
        // The API's own 503 is one mailbox out of reach, not the API down (see the retry rule): a caller told
        // "failed" would retry at once, or report an outage, where the account's mail settings are at fault.
        // Said as the call it failed, not as a mail server that call needed: a connect token's create needs none.
        if (isMailboxUnreachable(status, text)) {
          return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream could not reach a mail server (HTTP 503) while ${call.action}${effect}`, info);
        }
        return this.#fail(ErrorCode.UPSTREAM_ERROR, `The upstream failed with HTTP ${status} while ${call.action}${effect}`, info);
      }
    }
  }

  /**
   * Logs a call out of time (its own `UPSTREAM_TIMEOUT_MS`, its operation's deadline or the shutdown grace),
   * with which resource did not answer and whose time ran out; nothing for a call whose caller went away.
   */
  #logTimeout<T>(call: Call<T>, cancellation: CallCancellation, info: UpstreamErrorInfo, fields: { sent: boolean; countedByBreaker: boolean } & Record<string, unknown>): void {
    const reason = call.signal?.reason;
    const timeout = cancellation.reason === 'deadline' ? 'UPSTREAM_TIMEOUT_MS' : reason instanceof OperationDeadlineExceeded ? reason.setting : undefined;
    if (timeout === undefined) return;
    this.#failures.callFailure('upstream call timed out', `${timeout}${fields.countedByBreaker ? ', counted by the breaker' : ''}`, { ...forLog(info, call.signal), timeout, ...fields });
  }

  #fail(code: ErrorCode, message: string, info: UpstreamErrorInfo, more?: Record<string, unknown>) {
    return gatewayError(code, message, { ...info }, more);
  }
}

/**
 * The calls in flight under a caller's signal, aborted together by one listener: a listener per call would
 * pass EventTarget's limit of 10 (a warning per request) on any operation that fans out.
 */
const dependantsBySignal = new WeakMap<CancelSignal, Set<CallCancellation>>();

/** The operations whose running out of requests has been logged. */
const budgetLogged = new WeakSet<CancelSignal>();

function dependantsOf(signal: CancelSignal): Set<CallCancellation> {
  let dependants = dependantsBySignal.get(signal);
  if (!dependants) {
    const set = new Set<CallCancellation>();
    dependants = set;
    dependantsBySignal.set(signal, set);
    signal.addEventListener('abort', () => {
      for (const cancellation of set) cancellation.cancel('caller');
    }, { once: true });
  }
  return dependants;
}

/** A wait of `pausedMs` and a little jitter past it (a tenth of it, 500 ms at most), so that the calls it holds do not all leave at the same instant. */
function pastPause(pausedMs: number): number {
  return pausedMs + Math.random() * Math.min(500, pausedMs / 10);
}
