import { ApolloServer } from '@apollo/server';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { loadTypeDefs } from '../../src/graphql/schema.ts';
import { serveApollo, type Served } from '../http-wrapper.ts';
import { RENAMED } from '../scenarios.ts';

/**
 * Apollo's own cost: the same schema and HTTP front, answering constants shaped like the real answers
 * (default field resolvers), with no upstream call. The floor for any gateway built on Apollo Server.
 */
const created = '2024-01-01T00:00:00.000Z';
const sources = [
  { label: 'user0::imap.bench.example.com', email: 'user0@bench.example.com', status: 'OK', useSsl: true },
  { label: 'user0.alt::imap.bench.example.org', email: 'user0.alt@bench.example.org', status: 'INVALID_CREDENTIALS', useSsl: true },
];
const account = {
  id: '0123456789abcdef01234567',
  username: 'user0.bench.example.com_0123456789abcdef',
  firstName: 'Bench',
  lastName: 'User 0',
  emailAddresses: ['user0@bench.example.com'],
  createdAt: created,
  messageCount: 1000,
  fileCount: 10,
  sources,
  connectTokens: [
    { token: 'abcdefghij012345', used: false, createdAt: created, expiresAt: created },
    { token: 'abcdefghij012346', used: false, createdAt: created, expiresAt: created },
  ],
};
/** The account as the mutation scenario's update leaves it. */
const renamed = { ...account, firstName: RENAMED };
const tokens = Array.from({ length: 100 }, (_, i) => ({
  token: `token${String(i).padStart(11, '0')}`,
  used: true,
  usedAt: created,
  account: { ...account, username: `user${i % 20}`, messageCount: 1000 + (i % 20) },
}));

const resolvers = {
  Query: {
    account: () => account,
    connectToken: () => tokens[1],
    connectTokens: () => ({ nodes: tokens, edges: [], pageInfo: { hasNextPage: false, endCursor: null } }),
  },
  Mutation: {
    updateAccount: () => ({ success: true, account: renamed }),
  },
};

export async function startBare(): Promise<Served> {
  return serveApollo(new ApolloServer({ schema: makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers }) }), async () => ({}));
}
