import type { ConnectTokenResolvers } from '../generated/graphql.ts';
import { tokenAccount } from './Account.ts';
import { fromUnixSeconds, requiredFromUnixSeconds } from './scalars.ts';

export const ConnectToken: ConnectTokenResolvers = {
  token: (t) => t.token,
  email: (t) => t.email ?? null,
  createdAt: (t) => requiredFromUnixSeconds(t.created),
  used: (t) => Boolean(t.used),
  usedAt: (t) => fromUnixSeconds(t.used),
  expiresAt: (t) => fromUnixSeconds(t.expires),
  callbackUrl: (t) => t.callback_url,
  firstName: (t) => t.first_name ?? null,
  lastName: (t) => t.last_name ?? null,
  // The embed answers most account fields with no request; the rest load the account (see tokenAccount).
  // Knowing the token is the capability to read the account it created (the contract's rule).
  account: (t, _, ctx, info) => (t.account ? tokenAccount(t.account, ctx, info) : null),
};
