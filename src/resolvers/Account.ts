import type { AccountResolvers } from '../generated/graphql.ts';
import type { AccountReach } from '../auth/index.ts';
import type { GatewayContext } from '../context.ts';
import type { UpstreamAccount, UpstreamEmbeddedAccount } from '../upstream/types.ts';
import type { AccountParent, EmbeddedAccountParent } from './parents.ts';
import { fromUnixSeconds } from './scalars.ts';

/** An account parent from a full upstream account. */
export const fullAccount = (account: UpstreamAccount): AccountParent => ({ complete: true, account });

/** An account parent from what a used connect token embeds, readable as far as `reach` allows. */
export const embeddedAccount = (account: UpstreamEmbeddedAccount, reach: AccountReach): EmbeddedAccountParent => ({
  complete: false,
  account,
  reach,
  full: undefined,
});

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

export const Account: AccountResolvers = {
  // Fields a connect token embeds: answered from the parent, whatever it is.
  id: ({ account }) => account.id,
  createdAt: ({ account }) => fromUnixSeconds(account.created) ?? new Date(0).toISOString(),
  suspendedAt: ({ account }) => fromUnixSeconds(account.suspended),
  emailAddresses: ({ account }) => account.email_addresses,
  firstName: ({ account }) => account.first_name ?? null,
  lastName: ({ account }) => account.last_name ?? null,
  sources: ({ account }) => account.sources,

  // Fields only the full account has.
  username: fromFull((a) => a.username ?? null),
  passwordExpiredAt: fromFull((a) => fromUnixSeconds(a.password_expired)),
  messageCount: fromFull((a) => a.nb_messages ?? null),
  fileCount: fromFull((a) => a.nb_files ?? null),

  // However the account was reached, its tokens need it in the caller's scope (RequestApi checks).
  connectTokens: ({ account }, _, { api }) => api.connectTokens(account.id),
  connectToken: ({ account }, { token }, { api }) => api.connectToken(account.id, token),
};
