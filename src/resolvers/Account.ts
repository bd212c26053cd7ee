import type { AccountResolvers } from '../generated/graphql.ts';
import type { AccountReach } from '../auth/index.ts';
import type { GatewayContext } from '../context.ts';
import type { UpstreamAccount, UpstreamEmbeddedAccount } from '../upstream/types.ts';
import type { AccountParent } from './parents.ts';
import { fromUnixSeconds } from './scalars.ts';

/** An account parent from a full upstream account. */
export const fullAccount = (account: UpstreamAccount): AccountParent => ({ complete: true, account });

/** An account parent from what a used connect token embeds, readable as far as `reach` allows. */
export const embeddedAccount = (account: UpstreamEmbeddedAccount, reach: AccountReach): AccountParent => ({
  complete: false,
  account,
  reach,
});

/** The full account: the parent itself, or one load (shared by every field and alias that needs it). */
function full(parent: AccountParent, { api }: GatewayContext): UpstreamAccount | Promise<UpstreamAccount> {
  return parent.complete ? parent.account : api.account(parent.account.id, parent.reach);
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
  username: async (parent, _, ctx) => (await full(parent, ctx)).username ?? null,
  passwordExpiredAt: async (parent, _, ctx) => fromUnixSeconds((await full(parent, ctx)).password_expired),
  messageCount: async (parent, _, ctx) => (await full(parent, ctx)).nb_messages ?? null,
  fileCount: async (parent, _, ctx) => (await full(parent, ctx)).nb_files ?? null,

  // However the account was reached, its tokens need it in the caller's scope (RequestApi checks).
  connectTokens: ({ account }, _, { api }) => api.connectTokens(account.id),
  connectToken: ({ account }, { token }, { api }) => api.connectToken(account.id, token),
};
