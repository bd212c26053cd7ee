import type { ConnectTokenResolvers } from '../generated/graphql.ts';
import { embeddedAccount } from './Account.ts';
import { fromUnixSeconds } from './scalars.ts';

export const ConnectToken: ConnectTokenResolvers = {
  token: (t) => t.token,
  email: (t) => t.email ?? null,
  createdAt: (t) => fromUnixSeconds(t.created) ?? new Date(0).toISOString(),
  used: (t) => Boolean(t.used),
  usedAt: (t) => fromUnixSeconds(t.used),
  expiresAt: (t) => fromUnixSeconds(t.expires),
  callbackUrl: (t) => t.callback_url,
  firstName: (t) => t.first_name ?? null,
  lastName: (t) => t.last_name ?? null,
  // The embed answers most account fields with no request; the rest load the account (see Account).
  // Knowing the token is the capability to read the account it created (the contract's rule).
  account: (t) => (t.account ? embeddedAccount(t.account, 'connect-token') : null),
};
