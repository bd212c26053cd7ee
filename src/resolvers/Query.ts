import { argumentError } from '../errors.ts';
import type { QueryResolvers } from '../generated/graphql.ts';
import type { AccountPageQuery } from '../loaders/request-api.ts';
import { filteredCursorKind, ItemAnchors, pageFromUpstream, pageOfList, pageWindow, upstreamLimit } from './connection.ts';
import { accountById, fullAccount } from './Account.ts';
import { email } from './inputs.ts';
import { prefetchTokenAccounts } from './prefetch.ts';

/** The accounts list's filter, as the upstream query takes it. */
type AccountFilterValues = Pick<AccountPageQuery, 'email' | 'status' | 'statusOk'>;

export const Query: QueryResolvers = {
  account: (_, { id }, context, info) => accountById(id, context, info),

  accounts: async (_, { filter, first, after }, { api, cursorKey }) => {
    api.requireAdmin('accounts');
    if (filter?.status === 'UNKNOWN') {
      throw argumentError('filter.status', 'filter.status UNKNOWN stands for statuses the gateway does not know and cannot be filtered on');
    }
    // The upstream matches a whole address; an empty one it takes for no filter at all, and answered every account.
    const address = filter?.email == null ? undefined : email(filter.email, 'filter.email');
    const filterValues: AccountFilterValues = { email: address, status: filter?.status ?? undefined, statusOk: filter?.statusOk ?? undefined };
    const window = pageWindow(accountsCursorKind(filterValues, cursorKey), first, after);
    const page = await api.accountPage({ limit: upstreamLimit(window), offset: window.offset, ...filterValues });
    return pageFromUpstream(page.map(fullAccount), window);
  },

  connectToken: (_, { token }, { api }) => api.connectToken(null, token),

  connectTokens: async (_, { first, after }, { api, cursorKey }, info) => {
    api.requireAdmin('connectTokens');
    const window = pageWindow('connectTokens', first, after, true);
    // The upstream has no paging here: the whole list is fetched once and paged over, after the token the
    // cursor names.
    const page = pageOfList(await api.connectTokens(null), window, new ItemAnchors((token) => token.token, (token) => token.created, cursorKey));
    prefetchTokenAccounts(page.items, api, info);
    return page;
  },
};

/**
 * The accounts list's cursor kind: an offset means something only in the list it came from, so a cursor
 * also names the filter (a cursor of the unfiltered list would otherwise page a filtered one at that offset).
 */
function accountsCursorKind(filter: AccountFilterValues, key: Buffer): string {
  return filteredCursorKind('accounts', [filter.email, filter.status, filter.statusOk], key);
}
