import type { AccountReach } from '../auth/index.ts';
import type { ItemAnchors } from './connection.ts';
import type {
  UpstreamAccount,
  UpstreamConnectToken,
  UpstreamCreateAccountResult,
  UpstreamCreateConnectTokenResult,
  UpstreamEmbeddedAccount,
} from '../upstream/types.ts';

/**
 * What each GraphQL object type is resolved from (codegen's `mappers`): upstream JSON, plus the little
 * the gateway must remember about where it came from.
 */

/**
 * An account as far as the gateway has it: the full upstream account, or the subset a used connect token
 * embeds. Fields the embed lacks load the full account through the per-request loader, with the `reach`
 * the embed came with: a connect token lets its holder read that account without having it in scope.
 */
export type AccountParent = CompleteAccountParent | EmbeddedAccountParent;

interface CompleteAccountParent {
  readonly complete: true;
  readonly account: UpstreamAccount;
  /**
   * The id the account was loaded by (asked for, or named by a used token), if so: the upstream may answer with
   * that id in another case (the client takes it as the same account). Its token fields read under this one,
   * the id the caller's scope was checked against and its tokens' prefetch used; a listed account, under its own.
   */
  readonly reachedAs?: string;
}

export interface EmbeddedAccountParent {
  readonly complete: false;
  readonly account: UpstreamEmbeddedAccount;
  readonly reach: AccountReach;
  /**
   * The token named its account by id alone: `account` is a stand-in holding only the id, and every other
   * field, embedded ones included, needs the full account.
   */
  readonly idOnly: boolean;
  /**
   * The full account's load, started by the first field that needs it and shared by every other field and
   * alias of this parent: one `load()` per parent, not one per field (the fan-out has 100 parents).
   */
  full: Promise<UpstreamAccount> | undefined;
}

export type ConnectTokenParent = UpstreamConnectToken;

/** A page of a connection: the items, and the offset of the first, from which cursors are made. */
export interface ConnectionParent<T> {
  readonly items: T[];
  readonly offset: number;
  readonly hasNextPage: boolean;
  readonly cursorKind: string;
  /** In a list whose cursors name their items: how (see `ItemAnchors`). */
  readonly anchors?: ItemAnchors<T>;
}
export type AccountConnectionParent = ConnectionParent<AccountParent>;
export type ConnectTokenConnectionParent = ConnectionParent<ConnectTokenParent>;

export interface EdgeParent<T> {
  readonly node: T;
  readonly cursor: string;
}
export type AccountEdgeParent = EdgeParent<AccountParent>;
export type ConnectTokenEdgeParent = EdgeParent<ConnectTokenParent>;

/** A new token, with the account it belongs to (null for a top-level token) to load it from the right path. */
export interface CreateConnectTokenPayloadParent {
  readonly result: UpstreamCreateConnectTokenResult;
  readonly accountId: string | null;
}
export type CreateAccountPayloadParent = UpstreamCreateAccountResult;
export interface UpdateAccountPayloadParent {
  readonly success: boolean;
  readonly id: string;
}
