import type DataLoader from 'dataloader';
import type { AccessGuard, AccountReach } from '../auth/index.ts';
import type { CallerReadBudget } from '../limits/caller-reads.ts';
import type { CallerWriteBudget, WriteReservation } from '../limits/caller-writes.ts';
import type { CancelSignal } from '../upstream/cancellation.ts';
import { CallChecked, type CallClaim, type UpstreamClient } from '../upstream/client.ts';
import { refuseUnsendableId } from '../upstream/request.ts';
import type { UpstreamAccount, UpstreamAccountUpdateForm, UpstreamConnectToken, UpstreamConnectTokenForm, UpstreamNewAccountForm } from '../upstream/types.ts';
import { resourceLoader } from './resource-loader.ts';

/** The query of one page of `GET /accounts`. */
export interface AccountPageQuery {
  limit: number;
  offset: number;
  email?: string | undefined;
  status?: string | undefined;
  statusOk?: boolean | undefined;
}

/** What the calls of each caller without the admin scope are counted against; absent, they are not. */
export interface CallerBudgets {
  writes?: CallerWriteBudget | undefined;
  reads?: CallerReadBudget | undefined;
}

/** A top-level token (`accountId` null) or one of an account's. */
interface TokenKey {
  accountId: string | null;
  token: string;
}

/**
 * Everything a resolver may ask of the upstream during one request, and the only way resolvers reach it.
 * Reads go through per-request DataLoaders (each resource fetched once, concurrently); lists prime the
 * loaders of the items they hold; writes go straight to the client, once, and forget what they changed.
 * Loaders are created on first use, so an operation pays only for the ones it needs.
 * Every method checks the caller's access first (see AccessGuard), so a refused field costs no request. The
 * writes of a caller without the admin scope are reserved from its hourly budget (`CallerWriteBudget`) before
 * the operation makes any (`reserveWrites`), and each is spent when the client sends it; each read is taken
 * from its budget of reads (`CallerReadBudget`) when the client sends it, but the first of what a write of the
 * operation made or changed (its payload's).
 */
export class RequestApi {
  readonly #client: UpstreamClient;
  readonly #signal: CancelSignal | undefined;
  readonly #guard: AccessGuard;
  readonly #budgets: CallerBudgets;
  /** The writes this operation took ahead of its budget (`reserveWrites`), spent as they are sent. */
  #reservation: WriteReservation | undefined;
  /** The operation is over (`releaseUnspentWrites`). */
  #ended = false;
  #accounts?: DataLoader<string, UpstreamAccount, string>;
  #accountPages?: DataLoader<AccountPageQuery, UpstreamAccount[], string>;
  #tokens?: DataLoader<TokenKey, UpstreamConnectToken, string>;
  /** Keyed by owner: `{accountId: null}` for the top-level tokens (DataLoader takes no null key). */
  #tokenLists?: DataLoader<{ accountId: string | null }, UpstreamConnectToken[], string>;
  /** Writes so far in this request that cleared loaded data: a list answered after one may not prime it back. */
  #writes = 0;
  /**
   * The resources this operation's writes made or changed whose next read is not taken from the caller's budget
   * of reads (`#readClaim`): a write's payload loads what it wrote, and refused, the write would be made and its
   * result not told (a caller making it again makes another). One each: bounded by the budget of writes.
   */
  readonly #writtenUnread = { accounts: new Set<string>(), tokens: new Set<string>() };

  constructor(client: UpstreamClient, guard: AccessGuard, signal?: CancelSignal, budgets: CallerBudgets = {}) {
    this.#client = client;
    this.#guard = guard;
    this.#signal = signal;
    this.#budgets = budgets;
  }

  /** The upstream requests this operation has sent so far, retries included (none counted: 0). */
  get requestsSent(): number {
    return this.#signal?.requests ?? 0;
  }

  /**
   * The same caller's API whose calls are only checked (`CancelSignal.checkOnly`): each write runs every check
   * the gateway makes before an upstream request (access here, then the client's own on what it would send)
   * and ends in `CallChecked` instead of being made. A mutation's resolvers run against it check all the
   * operation's writes before the first is made.
   */
  forChecks(): RequestApi {
    return new RequestApi(this.#client, this.#guard, { ...CHECK_ONLY, requestId: this.#signal?.requestId }, this.#budgets);
  }

  /** An account, reached through the caller's scope or through a connect token the caller knew. */
  async account(id: string, reach: AccountReach = 'scope'): Promise<UpstreamAccount> {
    this.#guard.requireAccountReadable(id, reach, 'account');
    return this.#accountLoader().load(id);
  }

  /**
   * The access checks a resolver makes before it judges its arguments, so a caller who may not use a field
   * learns nothing from it: not which values it would accept, nor (the accounts list's cursor is checked against
   * its filter under the gateway's key) whether a guessed filter, an email address, was the one a leaked cursor
   * was written for, and so that an account with that address exists. Each call below checks again.
   */
  requireAdmin(field: string): void {
    this.#guard.requireAdmin(field);
  }

  requireAccount(id: string, field: string): void {
    this.#guard.requireAccount(id, field);
  }

  async accountPage(query: AccountPageQuery): Promise<UpstreamAccount[]> {
    this.#guard.requireAdmin('accounts');
    this.#accountPages ??= resourceLoader(
      ({ limit, offset, email, status, statusOk }: AccountPageQuery) =>
        this.#client.listAccounts({ limit, offset, email, status, status_ok: statusOk }, this.#signal, this.#readClaim()),
      (q) => JSON.stringify([q.limit, q.offset, q.email, q.status, q.statusOk]),
    );
    const writes = this.#writes;
    const accounts = await this.#accountPages.load(query);
    // A list filtered by source status shows each account with its matching sources only (as Context.IO
    // documented it): not the account that `account(id)` and the other fields of this operation must see.
    const whole = query.status === undefined && query.statusOk === undefined;
    if (whole && writes === this.#writes) {
      const loader = this.#accountLoader();
      for (const account of accounts) loader.prime(account.id, account);
    }
    return accounts;
  }

  /** A top-level token when `accountId` is null, else one of that account's tokens. */
  async connectToken(accountId: string | null, token: string): Promise<UpstreamConnectToken> {
    // Knowing a top-level token is the capability to read it; an account's tokens are the account's.
    if (accountId !== null) this.#guard.requireAccount(accountId, 'connectToken');
    // Refused before it keys the loader's cache, as the client would refuse it: `Account.connectToken(token:)`
    // runs for every account of a page with the caller's one token, and a 1 MB one was stringified into and
    // looked up as a key 1 MB long per account (~450 ms of CPU for a page of 100, ~3.7 s for eight such pages).
    refuseUnsendableId(token);
    return this.#tokenLoader().load({ accountId, token });
  }

  /** The top-level tokens when `accountId` is null, else that account's. */
  async connectTokens(accountId: string | null): Promise<UpstreamConnectToken[]> {
    if (accountId === null) this.#guard.requireAdmin('connectTokens');
    else this.#guard.requireAccount(accountId, 'connectTokens');
    this.#tokenLists ??= resourceLoader(
      (owner: { accountId: string | null }) => this.#client.listConnectTokens(owner.accountId, this.#signal, this.#readClaim()),
      (owner) => cacheKey(owner.accountId),
    );
    const writes = this.#writes;
    const tokens = await this.#tokenLists.load({ accountId });
    // A list asked for before a write in this operation and answered after it may hold the old account, or a
    // deleted token: it must not put those back into the loader the write just cleared.
    if (writes === this.#writes) {
      const loader = this.#tokenLoader();
      for (const token of tokens) loader.prime({ accountId, token: token.token }, token);
    }
    return tokens;
  }

  /*
   * Prefetches: loads a resolver starts before the fields that need them are reached, so their requests
   * leave at once, beside those already going, instead of a round trip later. A failure is dropped here:
   * the field that later asks for the same load gets the same answer or error (the loader's cache, or the
   * same refusal) and reports it.
   */

  prefetchAccount(id: string, reach: AccountReach): void {
    this.account(id, reach).catch(dropped);
  }

  prefetchConnectTokens(accountId: string): void {
    this.connectTokens(accountId).catch(dropped);
  }

  prefetchConnectToken(accountId: string, token: string): void {
    this.connectToken(accountId, token).catch(dropped);
  }

  async createAccount(form: UpstreamNewAccountForm) {
    this.#guard.requireAdmin('createAccount');
    return this.#client.createAccount(form, this.#signal);
  }

  async updateAccount(id: string, form: UpstreamAccountUpdateForm) {
    this.#guard.requireAccount(id, 'updateAccount');
    const result = await this.#client.updateAccount(id, form, this.#signal, this.#writeClaim());
    this.#forgetAccount();
    this.#writtenUnread.accounts.add(id);
    return result;
  }

  async deleteAccount(id: string) {
    this.#guard.requireAccount(id, 'deleteAccount');
    const result = await this.#client.deleteAccount(id, this.#signal, this.#writeClaim());
    this.#forgetAccount();
    return result;
  }

  /**
   * After a write to an account, everything loaded that holds a copy of it: the account, the pages it was
   * listed in, and the connect tokens, whose used ones embed their account (which tokens, their lists do not
   * say until fetched again). Writes are rare next to reads, so the lists go whole, and so do the accounts:
   * the upstream may take the id in another case than the write was given (the client takes an answer naming
   * it so for the same account), and a used token's embed names it as the upstream spells it.
   */
  #forgetAccount(): void {
    this.#writes += 1;
    this.#accounts?.clearAll();
    this.#accountPages?.clearAll();
    this.#tokens?.clearAll();
    this.#tokenLists?.clearAll();
  }

  async createConnectToken(accountId: string | null, form: UpstreamConnectTokenForm) {
    if (accountId !== null) this.#guard.requireAccount(accountId, 'createAccountConnectToken');
    const result = await this.#client.createConnectToken(accountId, form, this.#signal, this.#writeClaim());
    this.#tokenLists?.clear({ accountId });
    this.#writtenUnread.tokens.add(tokenKey({ accountId, token: result.token }));
    return result;
  }

  async deleteConnectToken(accountId: string | null, token: string) {
    if (accountId !== null) this.#guard.requireAccount(accountId, 'deleteAccountConnectToken');
    const result = await this.#client.deleteConnectToken(accountId, token, this.#signal, this.#writeClaim());
    this.#writes += 1;
    this.#tokens?.clear({ accountId, token });
    this.#tokenLists?.clear({ accountId });
    return result;
  }

  /** Whether this caller's writes are counted against a budget (not an admin's, nor with the budget off). */
  get countsWrites(): boolean {
    return this.#budgeted() !== undefined;
  }

  /**
   * Takes ahead the `count` writes the operation will make, refusing it whole, before any of them is made,
   * when the caller's budget cannot take them all (`CallerWriteBudget.reserve`); `releaseUnspentWrites` gives
   * back what it did not spend. Admins are not counted. Once the operation has ended (refused by another
   * plugin while its writes were being checked), nothing is reserved any more.
   */
  reserveWrites(count: number): void {
    const budgeted = this.#budgeted();
    if (budgeted === undefined || count === 0 || this.#ended) return;
    this.#reservation = budgeted.budget.reserve(budgeted.caller, count);
  }

  /** Once the operation has run (or was refused): the writes it reserved and did not send go back to the caller's budget. */
  releaseUnspentWrites(): void {
    this.#ended = true;
    this.#reservation?.release();
    this.#reservation = undefined;
  }

  /**
   * A write's claim on its operation's reservation, spent by the client when the write is about to be sent
   * (retries are the same write) and given back if it is held back after all. Spent whatever the upstream
   * answers: each costs a call of the key's quota, and a refused write may have taken effect. Admins are not
   * counted (`createAccount` is theirs alone).
   */
  #writeClaim(): CallClaim | undefined {
    if (this.#budgeted() === undefined) return undefined;
    return () => {
      const giveBack = this.#reservation?.spend();
      // The precheck reserves every write of a counted caller's mutation before any runs.
      if (giveBack === undefined) throw new Error('a write of a caller whose writes are counted, without its reservation');
      return giveBack;
    };
  }

  /**
   * A read's claim on the caller's budget of reads, taken by the client when the read is about to be sent
   * (once, whatever its retries), or its RATE_LIMITED refusal; given back if it is held back after all. None for
   * the first read of a resource since a write of this operation made or changed it (`justWritten`).
   */
  #readClaim(justWritten = false): CallClaim | undefined {
    const caller = this.#countedCaller();
    const budget = this.#budgets.reads;
    if (caller === undefined || budget === undefined || justWritten) return undefined;
    return () => budget.take(caller);
  }

  /** The budget this caller's writes are counted against, and its key there; `undefined` when they are not. */
  #budgeted(): { budget: CallerWriteBudget; caller: string } | undefined {
    const caller = this.#countedCaller();
    const budget = this.#budgets.writes;
    if (caller === undefined || budget === undefined) return undefined;
    return { budget, caller };
  }

  /** The budgets' key of this caller, or `undefined` for an admin (and every caller of a gateway running open), whom they do not count. */
  #countedCaller(): string | undefined {
    const { identity } = this.#guard;
    return identity.kind === 'scoped' ? identity.caller : undefined;
  }

  #accountLoader() {
    this.#accounts ??= resourceLoader((id: string) => this.#client.getAccount(id, this.#signal, this.#readClaim(this.#writtenUnread.accounts.delete(id))));
    return this.#accounts;
  }

  #tokenLoader() {
    this.#tokens ??= resourceLoader(
      (key: TokenKey) => this.#client.getConnectToken(key.accountId, key.token, this.#signal, this.#readClaim(this.#writtenUnread.tokens.delete(tokenKey(key)))),
      tokenKey,
    );
    return this.#tokens;
  }
}

/**
 * A loader's cache key: JSON, so that no id or token, however spelt, stands for another (an account id `""`
 * for the top-level tokens, or `a/b` and token `c` for account `a` and token `b/c`).
 */
function cacheKey(key: string | null | readonly [string | null, string]): string {
  return JSON.stringify(key);
}

/**
 * How a write of a check-only RequestApi (`forChecks`) ends once every check before its request has passed:
 * the client's own error, offered here so that resolvers reach the upstream layer only through this API.
 */
export { CallChecked };

/** Calls that are only checked, never sent, for `forChecks`: no deadline of their own, nothing to abort. */
const CHECK_ONLY: CancelSignal = {
  aborted: false,
  reason: undefined,
  checkOnly: true,
  addEventListener: () => {},
};

/** A prefetch's failure: reported by the field that asks for the same load. */
function dropped(): void {}

/** A connect token's cache key, and its key among the tokens an operation wrote (`#writtenUnread`). */
function tokenKey({ accountId, token }: TokenKey): string {
  return cacheKey([accountId, token]);
}
