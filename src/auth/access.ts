import { ErrorCode, gatewayError } from '../errors.ts';
import { shortened } from '../shortened.ts';

/**
 * Who is calling, as one verified token says, built once per request. `admin` reaches everything the
 * gateway's API key reaches; `scoped` reaches the listed accounts (their connect tokens and sources
 * included) plus what needs only a valid token.
 */
export type Identity =
  | { readonly kind: 'admin'; readonly subject: string | undefined; readonly open: boolean }
  | {
      readonly kind: 'scoped';
      readonly subject: string | undefined;
      readonly accounts: ReadonlySet<string>;
      /** Who is counted for the caller's budget of writes: its issuer and subject, or the token itself when it names no subject. */
      readonly caller: string;
    };

/** The identity of every caller when the gateway runs without `AUTH_JWT_SECRET`/`AUTH_JWKS_URL`. */
export const OPEN_IDENTITY: Identity = { kind: 'admin', subject: undefined, open: true };

/**
 * Who made an operation, for its log line: what an operator auditing a write or a spent budget looks up.
 * The token's subject (an identifier its issuer chose, not a credential), never the token itself.
 */
export function callerForLog(identity: Identity): { caller: 'open' | 'admin' | 'scoped'; subject?: string } {
  const caller = identity.kind === 'admin' && identity.open ? 'open' : identity.kind;
  return identity.subject === undefined ? { caller } : { caller, subject: shortened(identity.subject, 200) };
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
      throw gatewayError(ErrorCode.FORBIDDEN, `${what} needs the contextio:admin scope`);
    }
  }

  /** Reading or changing one account, its connect tokens or its sources. */
  requireAccount(accountId: string, what: string): void {
    if (this.identity.kind === 'admin' || this.identity.accounts.has(accountId)) return;
    throw gatewayError(ErrorCode.FORBIDDEN, `${what}: account ${accountId} is not in the caller's scope`);
  }

  /** Reading an account's own fields, which a connect token's holder may do as well. */
  requireAccountReadable(accountId: string, reach: AccountReach, what: string): void {
    if (reach === 'connect-token') return;
    this.requireAccount(accountId, what);
  }
}
