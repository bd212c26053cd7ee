import { argumentError } from '../errors.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import { connectTokenForm, email, nameForm } from './inputs.ts';

/**
 * A mutation resolver as a function of its parent, arguments and context only: the mutation precheck
 * (precheck.ts) runs each before the operation, where there is no `info` to give it.
 */
type Precheckable<Field extends keyof MutationResolvers> =
  Extract<NonNullable<MutationResolvers[Field]>, (...args: never) => unknown> extends (parent: infer Parent, args: infer Args, context: infer Context, info: never) => infer Result
    ? (parent: Parent, args: Args, context: Context) => Result
    : never;

/** Each mutation is one upstream call (the client retries only deletes, which are idempotent); payload fields load more only if selected. */
export const Mutation: { [Field in keyof MutationResolvers]-?: Precheckable<Field> } = {
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
