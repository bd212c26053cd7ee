import { getArgumentValues, type GraphQLObjectType, type GraphQLResolveInfo } from 'graphql';
import type { GatewayContext } from '../graphql/context.ts';
import type { RequestApi } from '../loaders/request-api.ts';
import type { UpstreamConnectToken } from '../upstream/types.ts';
import { selectedTokenFields, selectsTokenFullAccount } from './selection.ts';

/**
 * Loads started where the ids they need are known before graphql reaches the fields that make them, so
 * that dependent requests leave together, one round trip instead of two (see RequestApi's prefetches).
 */

/**
 * The loads that the account's selected `connectTokens` and `connectToken(token:)` fields will make, which
 * need only the account's id: started where the id is known before the account is (the caller gave it, a
 * write returned it, a connect token embeds it), so those requests leave beside the account's own.
 */
export function prefetchTokensOf(accountId: string, { api }: GatewayContext, info: GraphQLResolveInfo): void {
  for (const node of selectedTokenFields(info)) {
    if (node.name.value === 'connectTokens') {
      api.prefetchConnectTokens(accountId);
      continue;
    }
    const field = (info.schema.getType('Account') as GraphQLObjectType).getFields()['connectToken']!;
    let token: unknown;
    try {
      token = getArgumentValues(field, node, info.variableValues)['token'];
    } catch {
      continue; // graphql reports the bad argument when it reaches the field
    }
    if (typeof token === 'string') api.prefetchConnectToken(accountId, token);
  }
}

/**
 * The accounts of a page of connect tokens, when its selection needs more of them than the embed: started
 * as soon as the list is in, before graphql walks the page (each token's account field then gets the same
 * load).
 */
export function prefetchTokenAccounts(tokens: readonly UpstreamConnectToken[], api: RequestApi, info: GraphQLResolveInfo): void {
  if (!selectsTokenFullAccount(info)) return;
  const ids = new Set<string>();
  for (const token of tokens) if (token.account) ids.add(token.account.id);
  for (const id of ids) api.prefetchAccount(id, 'connect-token');
}
