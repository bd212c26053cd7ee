import type { Resolvers } from '../generated/graphql.ts';
import { Account } from './Account.ts';
import { connectionResolvers } from './connection.ts';
import { ConnectToken } from './ConnectToken.ts';
import { Mutation } from './Mutation.ts';
import { CreateAccountPayload, CreateConnectTokenPayload, UpdateAccountPayload } from './payloads.ts';
import { Query } from './Query.ts';
import { DateTime } from './scalars.ts';
import { Source } from './Source.ts';
import { notingWritesMade } from './writes-made.ts';

/** Every resolver of the schema; types without an entry here resolve by their parent's property names. */
export const resolvers: Resolvers = {
  DateTime,
  Query,
  Mutation: notingWritesMade(Mutation),
  Account,
  ConnectToken,
  Source,
  AccountConnection: connectionResolvers,
  ConnectTokenConnection: connectionResolvers,
  CreateConnectTokenPayload,
  CreateAccountPayload,
  UpdateAccountPayload,
};
