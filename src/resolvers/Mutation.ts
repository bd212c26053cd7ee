import { ErrorCode, gatewayError } from '../errors.ts';
import type { CreateConnectTokenInput, MutationResolvers } from '../generated/graphql.ts';
import type { Params } from '../upstream/request.ts';

/** Each mutation is one upstream call (the client retries only deletes, which are idempotent); payload fields load more only if selected. */
export const Mutation: MutationResolvers = {
  createConnectToken: async (_, { input }, { api }) => ({
    result: await api.createConnectToken(null, connectTokenForm(input)),
    accountId: null,
  }),

  createAccountConnectToken: async (_, { accountId, input }, { api }) => ({
    result: await api.createConnectToken(accountId, connectTokenForm(input)),
    accountId,
  }),

  deleteConnectToken: async (_, { token }, { api }) => ({ ...(await api.deleteConnectToken(null, token)), token }),

  deleteAccountConnectToken: async (_, { accountId, token }, { api }) => ({
    ...(await api.deleteConnectToken(accountId, token)),
    token,
  }),

  createAccount: (_, { input }, { api }) =>
    api.createAccount({ email: email(input.email, 'input.email'), first_name: input.firstName, last_name: input.lastName }),

  updateAccount: async (_, { id, input }, { api }) => {
    if (input.firstName == null && input.lastName == null) {
      throw gatewayError(ErrorCode.BAD_USER_INPUT, 'input must set firstName or lastName');
    }
    return { ...(await api.updateAccount(id, { first_name: input.firstName, last_name: input.lastName })), id };
  },

  deleteAccount: async (_, { id }, { api }) => ({ ...(await api.deleteAccount(id)), id }),
};

/** The upstream's form for a new connect token, checked first so a bad input costs no request. */
function connectTokenForm(input: CreateConnectTokenInput): Params {
  return {
    callback_url: httpUrl(input.callbackUrl, 'input.callbackUrl'),
    email: input.email == null ? undefined : email(input.email, 'input.email'),
    first_name: input.firstName,
    last_name: input.lastName,
    source_callback_url: input.sourceCallbackUrl == null ? undefined : httpUrl(input.sourceCallbackUrl, 'input.sourceCallbackUrl'),
    source_sync_all_folders: input.sourceSyncAllFolders,
    source_sync_flags: input.sourceSyncFlags,
    source_raw_file_list: input.sourceRawFileList,
  };
}

function httpUrl(value: string, name: string): string {
  // Characters no URL holds as they are (spaces of any kind, C0 and C1 controls, invisible format characters
  // such as a soft hyphen or a zero-width space) are refused with a message that says so: the URL parser
  // would strip or rewrite them silently.
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f\p{Cf}]/u.test(value)) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an absolute http(s) URL, with no spaces, control or invisible characters (percent-encode them)`);
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an absolute http(s) URL`);
  }
  // The URL as the parser read it is what is sent: `https:example.com\cb` and the like reach the upstream in
  // the form that was judged, not in one another parser might read differently.
  return url.href;
}

function email(value: string, name: string): string {
  if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an email address`);
  return value;
}
