import type {
  CreateAccountPayloadResolvers,
  CreateConnectTokenPayloadResolvers,
  UpdateAccountPayloadResolvers,
} from '../generated/graphql.ts';
import { writtenAccount } from './Account.ts';

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
  account: ({ id }, _, context, info) => writtenAccount(id, context, info),
};

export const UpdateAccountPayload: UpdateAccountPayloadResolvers = {
  account: ({ id }, _, context, info) => writtenAccount(id, context, info),
};
