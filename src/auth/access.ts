import { ErrorCode, gatewayError } from '../errors.ts';
import { shortened } from '../support/shortened.ts';

/**
 * Who is calling, as one verified token says, built once per request. `admin` reaches everything the
 * gateway's API key reaches; `scoped` reaches the listed accounts (their connect tokens and sources
 * included) plus what needs only a valid token.
 */
export type Identity =
  | {
      readonly kind: 'admin';
      readonly issuer: string | undefined;
      readonly subject: string | undefined;
      /** As a scoped token's: what tells admin tokens without a subject (back ends, each its own) apart in the log. */
      readonly tokenDigest?: string | undefined;
      readonly open: boolean;
    }
  | {
      readonly kind: 'scoped';
      readonly issuer: string | undefined;
      readonly subject: string | undefined;
      readonly accounts: ReadonlySet<string>;
      /** A digest of the token's signed part when it names no subject: what tells such callers apart. */
      readonly tokenDigest: string | undefined;
      /** Who is counted for the caller's budgets: its issuer and subject, or the token's digest when it names no subject. */
      readonly caller: string;
      /**
       * The token has no `scope` but names the admin scope in `scp` (Okta's array, Azure AD's string), which the contract
       * does not read: its refusals say so, or a caller whose token visibly holds the scope is told only that it needs it.
       */
      readonly adminScopeInScp?: boolean;
    };

/** The identity of every caller when the gateway runs without `AUTH_JWT_SECRET`/`AUTH_JWKS_URL`. */
export const OPEN_IDENTITY: Identity = { kind: 'admin', issuer: undefined, subject: undefined, open: true };

/** An operation's log line's account of its caller. */
export interface CallerLogFields {
  caller: 'open' | 'admin' | 'scoped';
  issuer?: string;
  subject?: string;
  tokenDigest?: string;
}

/**
 * Who made an operation, for its log line: what an operator auditing a write or a spent budget looks up.
 * The token's issuer and subject (identifiers, not credentials), or for a token without a subject the digest
 * a scoped one's budgets count it by (an admin's too: "an admin" alone names none of the back ends holding
 * such tokens); never the token itself. One subject from two issuers is two callers.
 */
export function callerForLog(identity: Identity): CallerLogFields {
  const fields: CallerLogFields = { caller: identity.kind === 'admin' && identity.open ? 'open' : identity.kind };
  if (identity.issuer !== undefined) fields.issuer = shortened(identity.issuer, 200);
  if (identity.subject !== undefined) fields.subject = shortened(identity.subject, 200);
  if (identity.tokenDigest !== undefined) fields.tokenDigest = identity.tokenDigest;
  return fields;
}

/**
 * How an account was reached: through the caller's scope, or through a connect token the caller knew.
 * Knowing a connect token is the capability to read the account it created (the frontend learns its new
 * account id that way), never to list its tokens or change it.
 */
export type AccountReach = 'scope' | 'connect-token';

/**
 * The authorization rules of the contract, checked by the request's `RequestApi` before it touches a
 * loader or the client, so a refused field never costs an upstream request and no resolver repeats them.
 */
export class AccessGuard {
  constructor(readonly identity: Identity) {}

  /** Root lists and account creation: the whole API key's data. */
  requireAdmin(what: string): void {
    if (this.identity.kind !== 'admin') {
      throw gatewayError(ErrorCode.FORBIDDEN, `${what} needs the contextio:admin scope${this.#scpHint()}`);
    }
  }

  /** Reading or changing one account, its connect tokens or its sources. */
  requireAccount(accountId: string, what: string): void {
    if (this.identity.kind === 'admin' || this.identity.accounts.has(accountId)) return;
    throw gatewayError(ErrorCode.FORBIDDEN, `${what}: account ${accountId} is not in the caller's scope${this.#scpHint()}`);
  }

  /** What a refusal adds for a token naming the admin scope in `scp` alone. */
  #scpHint(): string {
    return this.identity.kind === 'scoped' && this.identity.adminScopeInScp
      ? ': the token names contextio:admin in its "scp" claim, which this gateway does not read: it reads "scope"'
      : '';
  }

  /** Reading an account's own fields, which a connect token's holder may do as well. */
  requireAccountReadable(accountId: string, reach: AccountReach, what: string): void {
    if (reach === 'connect-token') return;
    this.requireAccount(accountId, what);
  }
}
