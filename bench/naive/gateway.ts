import { ApolloServer } from '@apollo/server';
import { makeExecutableSchema } from '@graphql-tools/schema';
import DataLoader from 'dataloader';
import { loadTypeDefs } from '../../src/graphql/schema.ts';
import type { UpstreamAccount, UpstreamConnectToken, UpstreamSource, UpstreamSuccess } from '../../src/upstream/types.ts';
import { serveApollo, type Served } from '../http-wrapper.ts';
import { NaiveUpstream, type NaiveUpstreamOptions } from './upstream.ts';

/**
 * The naive baseline: what most hand-written gateways over a REST API look like. Apollo Server with its
 * defaults, plain resolvers that map snake_case to camelCase, and a per-request DataLoader whose batch
 * function does one GET per key. No reuse of what a parent already holds: `ConnectToken.account` always
 * loads the full account, even when only the embedded `id` is asked for.
 */
interface NaiveContext {
  upstream: NaiveUpstream;
  accounts: DataLoader<string, UpstreamAccount>;
}

const enc = encodeURIComponent;
const iso = (seconds: number | false | undefined) => (seconds ? new Date(seconds * 1000).toISOString() : null);

type Args = Record<string, unknown>;

const resolvers = {
  Query: {
    account: (_: unknown, { id }: Args, ctx: NaiveContext) => ctx.accounts.load(String(id)),
    accounts: async (_: unknown, { first }: Args, ctx: NaiveContext) => {
      const list = await ctx.upstream.get<UpstreamAccount[]>(`/accounts?limit=${Number(first)}`);
      return { nodes: list, edges: list.map((node, i) => ({ node, cursor: String(i) })), pageInfo: { hasNextPage: false, endCursor: null } };
    },
    connectToken: (_: unknown, { token }: Args, ctx: NaiveContext) => ctx.upstream.get<UpstreamConnectToken>(`/connect_tokens/${enc(String(token))}`),
    connectTokens: async (_: unknown, { first }: Args, ctx: NaiveContext) => {
      const list = (await ctx.upstream.get<UpstreamConnectToken[]>('/connect_tokens')).slice(0, Number(first));
      return {
        nodes: list,
        edges: list.map((node, i) => ({ node, cursor: String(i) })),
        pageInfo: { hasNextPage: false, endCursor: list.length > 0 ? String(list.length - 1) : null },
      };
    },
  },
  Mutation: {
    updateAccount: async (_: unknown, { id, input }: Args, ctx: NaiveContext) => {
      const { firstName, lastName } = input as { firstName?: string; lastName?: string };
      const result = await ctx.upstream.post<UpstreamSuccess>(`/accounts/${enc(String(id))}`, { first_name: firstName, last_name: lastName });
      return { success: result.success, id };
    },
  },
  UpdateAccountPayload: {
    account: ({ id }: { id: string }, _: Args, ctx: NaiveContext) => ctx.accounts.load(id),
  },
  Account: {
    createdAt: (a: UpstreamAccount) => iso(a.created),
    suspendedAt: (a: UpstreamAccount) => iso(a.suspended),
    emailAddresses: (a: UpstreamAccount) => a.email_addresses,
    firstName: (a: UpstreamAccount) => a.first_name ?? null,
    lastName: (a: UpstreamAccount) => a.last_name ?? null,
    passwordExpiredAt: (a: UpstreamAccount) => iso(a.password_expired),
    messageCount: (a: UpstreamAccount) => a.nb_messages ?? null,
    fileCount: (a: UpstreamAccount) => a.nb_files ?? null,
    connectTokens: (a: UpstreamAccount, _: Args, ctx: NaiveContext) => ctx.upstream.get<UpstreamConnectToken[]>(`/accounts/${enc(a.id)}/connect_tokens`),
    connectToken: (a: UpstreamAccount, { token }: Args, ctx: NaiveContext) =>
      ctx.upstream.get<UpstreamConnectToken>(`/accounts/${enc(a.id)}/connect_tokens/${enc(String(token))}`),
  },
  ConnectToken: {
    createdAt: (t: UpstreamConnectToken) => iso(t.created),
    used: (t: UpstreamConnectToken) => Boolean(t.used),
    usedAt: (t: UpstreamConnectToken) => iso(t.used),
    expiresAt: (t: UpstreamConnectToken) => iso(t.expires),
    callbackUrl: (t: UpstreamConnectToken) => t.callback_url,
    firstName: (t: UpstreamConnectToken) => t.first_name ?? null,
    lastName: (t: UpstreamConnectToken) => t.last_name ?? null,
    account: (t: UpstreamConnectToken, _: Args, ctx: NaiveContext) => (t.account ? ctx.accounts.load(t.account.id) : null),
  },
  Source: {
    useSsl: (s: UpstreamSource) => s.use_ssl ?? null,
    syncPeriod: (s: UpstreamSource) => s.sync_period ?? null,
    authenticationType: (s: UpstreamSource) => s.authentication_type ?? null,
  },
};

export async function startNaive(upstreamOptions: NaiveUpstreamOptions): Promise<Served> {
  const upstream = new NaiveUpstream(upstreamOptions);
  const apollo = new ApolloServer<NaiveContext>({ schema: makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers }) });
  return serveApollo(apollo, async () => ({
    upstream,
    accounts: new DataLoader((ids: readonly string[]) => Promise.all(ids.map((id) => upstream.get<UpstreamAccount>(`/accounts/${enc(id)}`)))),
  }));
}
