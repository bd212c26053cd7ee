import type {
  CreateAccountPayloadResolvers,
  CreateConnectTokenPayloadResolvers,
  UpdateAccountPayloadResolvers,
} from '../generated/graphql.ts';
import { fullAccount } from './Account.ts';

/** Payload fields that load a resource cost a request only when selected. */
export const CreateConnectTokenPayload: CreateConnectTokenPayloadResolvers = {
  token: ({ result }) => result.token,
  resourceUrl: ({ result }) => result.resource_url,
  browserRedirectUrl: ({ result }) => result.browser_redirect_url,
  connectToken: ({ result, accountId }, _, { api }) => api.connectToken(accountId, result.token),
};

export const CreateAccountPayload: CreateAccountPayloadResolvers = {
  id: (r) => r.id,
  resourceUrl: (r) => r.resource_url,
  account: async ({ id }, _, { api }) => fullAccount(await api.account(id)),
};

export const UpdateAccountPayload: UpdateAccountPayloadResolvers = {
  account: async ({ id }, _, { api }) => fullAccount(await api.account(id)),
};
