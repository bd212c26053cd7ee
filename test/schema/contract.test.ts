import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildSchema as buildFromSdl,
  isEnumType,
  isInputObjectType,
  isNonNullType,
  isObjectType,
  type GraphQLArgument,
  type GraphQLInputField,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import { buildSchema } from '../../src/graphql/schema.ts';

/**
 * The schema of the public contract (its "GraphQL schema" section, names fixed), copied as it stands. The
 * release check (`schema:breaking`) catches only what breaks clients against the last release: a changed
 * argument default or an added enum value passes it as merely "dangerous", and a nullable field made non-null
 * as safe, yet each departs from the contract users rely on. Descriptions, extra fields and extra types are
 * the project's own, so only the contract's names, types, defaults and enum values are compared.
 */
const CONTRACT_SDL = /* GraphQL */ `
scalar DateTime

type Query {
  account(id: ID!): Account
  accounts(filter: AccountFilter, first: Int = 20, after: String): AccountConnection!
  connectToken(token: ID!): ConnectToken
  connectTokens(first: Int = 20, after: String): ConnectTokenConnection!
}

type Account {
  id: ID!
  username: String
  createdAt: DateTime!
  suspendedAt: DateTime
  emailAddresses: [String!]!
  firstName: String
  lastName: String
  passwordExpiredAt: DateTime
  messageCount: Int
  fileCount: Int
  sources: [Source!]!
  connectTokens: [ConnectToken!]!
  connectToken(token: ID!): ConnectToken
}

type ConnectToken {
  token: ID!
  email: String
  createdAt: DateTime!
  used: Boolean!
  usedAt: DateTime
  expiresAt: DateTime
  callbackUrl: String!
  firstName: String
  lastName: String
  account: Account
}

type Source {
  label: ID!
  email: String
  username: String
  server: String
  port: Int
  useSsl: Boolean
  type: String
  status: SourceStatus
  syncPeriod: String
  authenticationType: String
}

enum SourceStatus { OK INVALID_CREDENTIALS CONNECTION_IMPOSSIBLE NO_ACCESS_TO_ALL_MAIL TEMP_DISABLED DISABLED UNKNOWN }

input AccountFilter { email: String, status: SourceStatus, statusOk: Boolean }

type AccountConnection { edges: [AccountEdge!]!, nodes: [Account!]!, pageInfo: PageInfo! }
type AccountEdge { cursor: String!, node: Account! }
type ConnectTokenConnection { edges: [ConnectTokenEdge!]!, nodes: [ConnectToken!]!, pageInfo: PageInfo! }
type ConnectTokenEdge { cursor: String!, node: ConnectToken! }
type PageInfo { hasNextPage: Boolean!, endCursor: String }

type Mutation {
  createConnectToken(input: CreateConnectTokenInput!): CreateConnectTokenPayload!
  createAccountConnectToken(accountId: ID!, input: CreateConnectTokenInput!): CreateConnectTokenPayload!
  deleteConnectToken(token: ID!): DeleteConnectTokenPayload!
  deleteAccountConnectToken(accountId: ID!, token: ID!): DeleteConnectTokenPayload!
  createAccount(input: CreateAccountInput!): CreateAccountPayload!
  updateAccount(id: ID!, input: UpdateAccountInput!): UpdateAccountPayload!
  deleteAccount(id: ID!): DeleteAccountPayload!
}

input CreateConnectTokenInput {
  callbackUrl: String!
  email: String
  firstName: String
  lastName: String
  sourceCallbackUrl: String
  sourceSyncAllFolders: Boolean
  sourceSyncFlags: Boolean
  sourceRawFileList: Boolean
}
type CreateConnectTokenPayload { token: ID!, resourceUrl: String!, browserRedirectUrl: String!, connectToken: ConnectToken }
type DeleteConnectTokenPayload { success: Boolean!, token: ID! }
input CreateAccountInput { email: String!, firstName: String, lastName: String }
type CreateAccountPayload { id: ID!, resourceUrl: String!, account: Account }
input UpdateAccountInput { firstName: String, lastName: String }
type UpdateAccountPayload { success: Boolean!, account: Account }
type DeleteAccountPayload { success: Boolean!, id: ID! }
`;

/** Every way `served` departs from `contract`, one line each, e.g. `Account.username: String! (contract: String)`. */
function departures(contract: GraphQLSchema, served: GraphQLSchema): string[] {
  const found: string[] = [];
  for (const [name, type] of Object.entries(contract.getTypeMap())) {
    if (name.startsWith('__')) continue;
    const own = served.getType(name);
    if (own === undefined || own === null) found.push(`${name}: missing`);
    else if (own.constructor !== type.constructor) found.push(`${name}: a ${own.constructor.name} (contract: ${type.constructor.name})`);
    else found.push(...typeDepartures(type, own));
  }
  for (const root of ['Query', 'Mutation'] as const) {
    if (served[`get${root}Type`]()?.name !== root) found.push(`the ${root.toLowerCase()} root type is not ${root}`);
  }
  return found;
}

function typeDepartures(type: GraphQLNamedType, own: GraphQLNamedType): string[] {
  if (isEnumType(type) && isEnumType(own)) {
    const values = (t: typeof type) => t.getValues().map((v) => v.name).join(' ');
    return values(own) === values(type) ? [] : [`${type.name}: ${values(own)} (contract: ${values(type)})`];
  }
  if (isInputObjectType(type) && isInputObjectType(own)) {
    return inputDepartures(type.name, Object.values(type.getFields()), Object.values(own.getFields()));
  }
  if (!isObjectType(type) || !isObjectType(own)) return [];
  const found: string[] = [];
  const fields = own.getFields();
  for (const field of Object.values(type.getFields())) {
    const path = `${type.name}.${field.name}`;
    const mine = fields[field.name];
    if (mine === undefined) found.push(`${path}: missing`);
    else {
      if (String(mine.type) !== String(field.type)) found.push(`${path}: ${String(mine.type)} (contract: ${String(field.type)})`);
      found.push(...inputDepartures(`${path}()`, field.args, mine.args));
    }
  }
  return found;
}

/** Arguments or input fields: the contract's with their types and defaults; any others only optional (callers do not send them). */
function inputDepartures(owner: string, contract: readonly (GraphQLArgument | GraphQLInputField)[], served: readonly (GraphQLArgument | GraphQLInputField)[]): string[] {
  const found: string[] = [];
  for (const input of contract) {
    const mine = served.find((s) => s.name === input.name);
    if (mine === undefined) found.push(`${owner} ${input.name}: missing`);
    else if (String(mine.type) !== String(input.type) || mine.defaultValue !== input.defaultValue) {
      const shown = (i: typeof input) => `${String(i.type)}${i.defaultValue === undefined ? '' : ` = ${JSON.stringify(i.defaultValue)}`}`;
      found.push(`${owner} ${input.name}: ${shown(mine)} (contract: ${shown(input)})`);
    }
  }
  for (const extra of served) {
    if (!contract.some((c) => c.name === extra.name) && isNonNullType(extra.type) && extra.defaultValue === undefined) {
      found.push(`${owner} ${extra.name}: required, and not in the contract (every caller would have to send it)`);
    }
  }
  return found;
}

test('the served schema has the contract’s types, fields, arguments, defaults and enum values, exactly', () => {
  assert.deepEqual(departures(buildFromSdl(CONTRACT_SDL), buildSchema()), []);
});

test('the comparison sees what the release check lets through: a default changed, a field made non-null, an enum value added, a required argument', () => {
  const contract = buildFromSdl(CONTRACT_SDL);
  const drifted = buildFromSdl(
    CONTRACT_SDL.replace('accounts(filter: AccountFilter, first: Int = 20', 'accounts(filter: AccountFilter, first: Int = 50')
      .replace('  username: String\n  createdAt', '  username: String!\n  createdAt')
      .replace('DISABLED UNKNOWN }', 'DISABLED UNKNOWN PAUSED }')
      .replace('deleteAccount(id: ID!)', 'deleteAccount(id: ID!, confirm: Boolean!)')
      .replace('  sourceRawFileList: Boolean\n', '  sourceRawFileList: Boolean\n  locale: String\n'),
  );
  assert.deepEqual(departures(contract, drifted), [
    'Query.accounts() first: Int = 50 (contract: Int = 20)',
    'Account.username: String! (contract: String)',
    'SourceStatus: OK INVALID_CREDENTIALS CONNECTION_IMPOSSIBLE NO_ACCESS_TO_ALL_MAIL TEMP_DISABLED DISABLED UNKNOWN PAUSED (contract: OK INVALID_CREDENTIALS CONNECTION_IMPOSSIBLE NO_ACCESS_TO_ALL_MAIL TEMP_DISABLED DISABLED UNKNOWN)',
    'Mutation.deleteAccount() confirm: required, and not in the contract (every caller would have to send it)',
  ]);
});
