import type { GraphQLResolveInfo } from 'graphql';
import type { AccountResolvers } from '../generated/graphql.ts';
import type { AccountReach } from '../auth/index.ts';
import type { GatewayContext } from '../graphql/context.ts';
import type { UpstreamAccount, UpstreamAccountReference, UpstreamEmbeddedAccount } from '../upstream/types.ts';
import type { AccountParent, EmbeddedAccountParent } from './parents.ts';
import { fromUnixSeconds, requiredFromUnixSeconds } from './scalars.ts';
import { prefetchTokensOf } from './prefetch.ts';
import { selectsAccountData, selectsFullAccountField } from './selection.ts';

/** An account parent from a full upstream account. */
export const fullAccount = (account: UpstreamAccount): AccountParent => ({ complete: true, account });

/** An account parent from the full account loaded by `id` (see CompleteAccountParent.reachedAs). */
const loadedAccount = (account: UpstreamAccount, id: string): AccountParent => ({ complete: true, account, reachedAs: id });

/** The id an account's token fields read under: the one it was reached by, which its tokens' prefetch used too. */
const reachedIdOf = (parent: AccountParent): string => (parent.complete ? (parent.reachedAs ?? parent.account.id) : parent.account.id);

/** An account parent from what a used connect token embeds, readable as far as `reach` allows. */
const embeddedAccount = (account: UpstreamEmbeddedAccount, reach: AccountReach): EmbeddedAccountParent => ({
  complete: false,
  account,
  reach,
  idOnly: false,
  full: undefined,
});

/** An account parent from its id alone (what some used tokens embed), `full` its load if started. */
const accountOfId = (id: string, reach: AccountReach, full: Promise<UpstreamAccount> | undefined): EmbeddedAccountParent => ({
  complete: false,
  account: { id, created: 0, suspended: 0, email_addresses: [], sources: [] },
  reach,
  idOnly: true,
  full,
});


/** An account by id, as a field that returns one resolves it: with its selected token loads started beside it. */
export async function accountById(id: string, context: GatewayContext, info: GraphQLResolveInfo): Promise<AccountParent> {
  // The account's own load first, its tokens' prefetch beside it: requests are sent (and take from the
  // caller's budget of reads) in the order their loads began, and with one read left it is the account's.
  const load = context.api.account(id);
  prefetchTokensOf(id, context, info);
  return loadedAccount(await load, id);
}

/**
 * The account a write just created or changed, as its payload's `account` resolves it: the write named it and
 * was answered, so asked for its id (and its tokens, fetched by id) alone, that is the answer with no request,
 * as under a token that embeds only the id; any other field loads it as `accountById` does.
 */
export function writtenAccount(id: string, context: GatewayContext, info: GraphQLResolveInfo): AccountParent | Promise<AccountParent> {
  return selectsAccountData(info) ? accountById(id, context, info) : accountOfId(id, 'scope', undefined);
}

/**
 * The account a used connect token created, as its parent field resolves it: the embed alone when the
 * selection needs nothing more (no request), else the full account once loaded, so every field of it then
 * answers synchronously (one promise per token instead of one per field, and graphql completes the account
 * in one pass). A failed load yields the embed with the failed load attached: the embedded fields still
 * answer, and each full-only field fails with the load's error, as a field-by-field load would.
 */
export function tokenAccount(
  account: UpstreamEmbeddedAccount | UpstreamAccountReference,
  context: GatewayContext,
  info: GraphQLResolveInfo,
): AccountParent | Promise<AccountParent> {
  // Only the id embedded: asked for the id (and the account's tokens, fetched by id) alone, that is the
  // answer; any other field needs the account. Else the embed answers unless a field only the full account
  // has is selected. The account's load begins before its tokens' prefetch, as in `accountById`.
  const reference = 'reference' in account;
  const load = (reference ? selectsAccountData(info) : selectsFullAccountField(info)) ? context.api.account(account.id, 'connect-token') : undefined;
  prefetchTokensOf(account.id, context, info);
  if (reference) {
    // Its load failed, the id and the tokens still answer, and each field that needed it fails with its
    // error (as under an embed, below).
    if (load === undefined) return accountOfId(account.id, 'connect-token', undefined);
    return load.then((full) => loadedAccount(full, account.id), () => accountOfId(account.id, 'connect-token', load));
  }
  if (load === undefined) return embeddedAccount(account, 'connect-token');
  return load.then((full) => loadedAccount(full, account.id), () => ({ ...embeddedAccount(account, 'connect-token'), full: load }));
}

/**
 * A field only the full account has: answered synchronously from a complete parent (no promise, so graphql
 * completes the object in one pass), else from the parent's one load (see EmbeddedAccountParent.full). A
 * failed load fails only the fields that needed it, each with the load's error.
 */
function fromFull<T>(pick: (account: UpstreamAccount) => T) {
  return (parent: AccountParent, _: unknown, { api }: GatewayContext): T | Promise<T> => {
    if (parent.complete) return pick(parent.account);
    parent.full ??= api.account(parent.account.id, parent.reach);
    return parent.full.then(pick);
  };
}

/** A field a connect token embeds: answered from the parent, unless it holds the id alone (then as `fromFull`). */
function fromEmbed<T>(pick: (account: UpstreamEmbeddedAccount) => T) {
  const full = fromFull(pick);
  return (parent: AccountParent, args: unknown, context: GatewayContext): T | Promise<T> =>
    parent.complete || !parent.idOnly ? pick(parent.account) : full(parent, args, context);
}

const sourcesOf = fromEmbed((a) => a.sources);

export const Account: AccountResolvers = {
  id: ({ account }) => account.id,
  // Fields a connect token embeds.
  createdAt: fromEmbed((a) => requiredFromUnixSeconds(a.created)),
  suspendedAt: fromEmbed((a) => fromUnixSeconds(a.suspended)),
  emailAddresses: fromEmbed((a) => a.email_addresses),
  firstName: fromEmbed((a) => a.first_name ?? null),
  lastName: fromEmbed((a) => a.last_name ?? null),
  sources: (parent, args, context, info) => {
    const sources = sourcesOf(parent, args, context);
    return sources instanceof Promise ? sources.then((list) => context.lists.charge(info, list)) : context.lists.charge(info, sources);
  },

  // Fields only the full account has.
  username: fromFull((a) => a.username ?? null),
  passwordExpiredAt: fromFull((a) => fromUnixSeconds(a.password_expired)),
  messageCount: fromFull((a) => a.nb_messages ?? null),
  fileCount: fromFull((a) => a.nb_files ?? null),

  // However the account was reached, its tokens need it in the caller's scope (RequestApi checks).
  connectTokens: async (parent, _, { api, lists }, info) => lists.charge(info, await api.connectTokens(reachedIdOf(parent))),
  connectToken: (parent, { token }, { api }) => api.connectToken(reachedIdOf(parent), token),
};
