import { argumentError } from '../errors.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import { connectTokenForm, email, nameForm } from './inputs.ts';

/** Each mutation is one upstream call (the client retries only deletes, which are idempotent); payload fields load more only if selected. */
export const Mutation: MutationResolvers = {
  createConnectToken: async (_, { input }, { api }) => ({
    result: await api.createConnectToken(null, connectTokenForm(input)),
    accountId: null,
  }),

  createAccountConnectToken: async (_, { accountId, input }, { api }) => {
    api.requireAccount(accountId, 'createAccountConnectToken');
    return { result: await api.createConnectToken(accountId, connectTokenForm(input)), accountId };
  },

  deleteConnectToken: async (_, { token }, { api }) => ({ ...(await api.deleteConnectToken(null, token)), token }),

  deleteAccountConnectToken: async (_, { accountId, token }, { api }) => ({
    ...(await api.deleteConnectToken(accountId, token)),
    token,
  }),

  createAccount: (_, { input }, { api }) => {
    api.requireAdmin('createAccount');
    return api.createAccount({ email: email(input.email, 'input.email'), ...nameForm(input) });
  },

  updateAccount: async (_, { id, input }, { api }) => {
    api.requireAccount(id, 'updateAccount');
    if (input.firstName == null && input.lastName == null) {
      throw argumentError('input', 'input must set firstName or lastName');
    }
    return { ...(await api.updateAccount(id, nameForm(input))), id };
  },

  deleteAccount: async (_, { id }, { api }) => ({ ...(await api.deleteAccount(id)), id }),
};
