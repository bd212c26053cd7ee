import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { getNamedType, isEnumType, isInputObjectType, isListType, isNonNullType, isObjectType, type GraphQLInputType, type GraphQLObjectType, type GraphQLScalarType } from 'graphql';
import { describe, it, type TestContext } from 'node:test';
import { HttpRefusalCode, OPERATION_CODES } from '../../src/errors.ts';
import { DEFAULT_OPERATION_LIMITS, MAX_NESTING } from '../../src/limits/index.ts';
import { buildSchema } from '../../src/graphql/schema.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { eventually } from '../helpers/eventually.ts';
import { Random } from '../helpers/random.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

/**
 * A seeded, deterministic fuzz of the gateway's front: a few hundred malformed and near-valid requests, made by
 * mutating valid operations (the README's and the tests') or built from the schema, sent over real HTTP to a
 * gateway in front of the emulator, each answer checked against what README, docs/errors.md and CONTRACT.md promise of every
 * answer (`brokenInvariant`). The same seed sends the same requests: a failure names its seed and case, and
 * `FUZZ_SEED=<seed>` replays its run, `FUZZ_ONLY=<case>` that case alone (the cases before it are made, not sent:
 * a persisted query an earlier case registered is then unknown), `FUZZ_CASES=<n>` runs more of them.
 */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed_f00d) >>> 0;
const CASES = Number(process.env['FUZZ_CASES'] ?? 500);
const ONLY = process.env['FUZZ_ONLY'] === undefined ? undefined : Number(process.env['FUZZ_ONLY']);

/** The emulator's demo data (src/emulator/seed.ts): accounts and connect tokens that exist, so that writes reach the upstream. */
const ACCOUNTS = ['52daabefcea6f9c35a4a0997', '5f3c1e9a2b4d6f8071a3c5e7', '60aa0c1d2e3f405162738495'];
const TOKENS = ['adaconnected0001', 'demounused000001', 'demounused000002', 'gracesecond00001'];

/** A consumer secret no answer may ever hold (CONTRACT.md: no response contains it). */
const CONSUMER_SECRET = 'fuzz-consumer-secret-7Qx2';

interface Operation {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** Valid operations, from the README's examples and the gateway's tests, reads and writes. */
function corpus(random: Random): Operation[] {
  const account = random.pick(ACCOUNTS);
  const token = random.pick(TOKENS);
  return [
    {
      query: 'query Dashboard($id: ID!) { account(id: $id) { id emailAddresses firstName messageCount sources { label email status } connectTokens { token used usedAt } } }',
      variables: { id: account },
      operationName: 'Dashboard',
    },
    {
      query: 'query Tokens($after: String) { connectTokens(first: 20, after: $after) { nodes { token used account { id emailAddresses sources { label status } } } pageInfo { hasNextPage endCursor } } }',
      variables: { after: null },
    },
    { query: '{ accounts(first: 5) { nodes { id emailAddresses } pageInfo { hasNextPage endCursor } } }' },
    { query: 'query ($f: AccountFilter) { accounts(filter: $f, first: 2) { edges { cursor node { id createdAt } } } }', variables: { f: { status: 'OK', statusOk: true } } },
    { query: 'query ($t: ID!) { connectToken(token: $t) { used account { id } } }', variables: { t: token } },
    { query: 'query ConnectedAccount($token: ID!) { connectToken(token: $token) { used account { id emailAddresses sources { label status } } } }', variables: { token } },
    { query: `{ a: account(id: "${account}") { id } b: account(id: "${random.pick(ACCOUNTS)}") { ...F } } fragment F on Account { id firstName lastName sources { label port useSsl } }` },
    { query: `query ($id: ID!, $skip: Boolean!) { account(id: $id) { id connectToken(token: "${token}") @skip(if: $skip) { token expiresAt } } }`, variables: { id: account, skip: false } },
    { query: 'query A { __typename } query B { accounts(first: 1) { nodes { id } } }', operationName: random.pick(['A', 'B']) },
    { query: '{ __typename }' },
    { query: '{ __type(name: "Account") { name fields { name } } }' },
    { query: 'mutation Connect { createConnectToken(input: { callbackUrl: "https://app.example.com/connected", email: "jane@example.com" }) { token browserRedirectUrl } }' },
    {
      query: 'mutation ($id: ID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { success account { id firstName lastName } } }',
      variables: { id: account, input: { firstName: 'Ada', lastName: 'Lovelace' } },
    },
    { query: 'mutation ($input: CreateAccountInput!) { createAccount(input: $input) { id resourceUrl } }', variables: { input: { email: 'fuzz@example.com', firstName: 'F' } } },
    { query: 'mutation ($id: ID!) { deleteAccount(id: $id) { success id } }', variables: { id: account } },
    {
      query: 'mutation ($id: ID!, $input: CreateConnectTokenInput!) { createAccountConnectToken(accountId: $id, input: $input) { token connectToken { token used } } }',
      variables: { id: account, input: { callbackUrl: 'https://app.example.com/cb', sourceSyncFlags: true } },
    },
    { query: 'mutation ($t: ID!) { deleteConnectToken(token: $t) { success token } }', variables: { t: token } },
    { query: 'mutation ($id: ID!, $t: ID!) { deleteAccountConnectToken(accountId: $id, token: $t) { success token } }', variables: { id: account, t: token } },
    {
      query: `mutation Two { a: updateAccount(id: "${account}", input: { firstName: "X" }) { success } b: createConnectToken(input: { callbackUrl: "myapp://connected" }) { token } }`,
      operationName: 'Two',
    },
  ];
}

/** A query nested `depth` fields deep through single objects (as in limits.test.ts), around the depth limit. */
function deepQuery(depth: number): string {
  const fields = ['connectToken(token: "t")'];
  while (fields.length < depth - 1) fields.push(fields.length % 2 === 1 ? 'account' : 'connectToken(token: "t")');
  const leaf = fields.length % 2 === 0 ? 'id' : 'token';
  return `{ ${fields.map((f) => `${f} {`).join(' ')} ${leaf} ${'}'.repeat(fields.length)} }`;
}

/** Operations built to sit on or just past a limit, or to trip graphql-js's own rules. */
function edgeOperations(random: Random): Operation[] {
  const account = random.pick(ACCOUNTS);
  const depth = DEFAULT_OPERATION_LIMITS.maxDepth + random.int(3) - 1;
  const nesting = MAX_NESTING + random.int(3) - 1;
  const aliases = DEFAULT_OPERATION_LIMITS.maxAliases + random.int(3) - 1;
  return [
    { query: deepQuery(depth) },
    { query: `{ ${'a {'.repeat(nesting)} b ${'}'.repeat(nesting)} }` },
    { query: `{ ${Array.from({ length: aliases }, (_, i) => `a${i}: account(id: "${random.pick(ACCOUNTS)}") { id }`).join(' ')} }` },
    { query: `{ x: account(id: "${account}") { id } x: account(id: "${random.pick(ACCOUNTS)}") { firstName } }` },
    { query: `{ x: account(id: "${account}") { id } x: connectToken(token: "t") { token } }` },
    { query: `{ account(id: "${account}") { ...F } } fragment F on Account { id ...F }` },
    { query: `{ account(id: "${account}") { ...F } } fragment F on Account { id ...G } fragment G on Account { firstName ...F }` },
    { query: `{ account(id: "${account}") { ${'f'.repeat(1 + random.int(200_000))} } }` },
    { query: `{ ${'a'.repeat(random.pick([129, 1_000, 100_000]))}: account(id: "${account}") { id } }` },
    { query: `query ${'Q'.repeat(random.pick([10, 5_000, 200_000]))} { __typename }` },
    { query: `{ account(id: "${'9'.repeat(random.pick([256, 257, 5_000]))}") { id } }` },
    { query: `{ __schema { types { name } } s2: __schema { queryType { name } } }` },
    { query: `{ accounts(first: ${random.pick([0, 1, 100, 101, -1, 2_147_483_648])}) { nodes { id } } }` },
    { query: `mutation { ${Array.from({ length: 1 + random.int(8) }, (_, i) => `u${i}: updateAccount(id: "${random.pick(ACCOUNTS)}", input: { firstName: "n${i}" }) { success }`).join(' ')} }` },
    { query: `mutation { x: deleteAccount(id: "${account}") { success } x: deleteAccount(id: "${random.pick(ACCOUNTS)}") { id } }` },
    // A second write that only the upstream refuses (the id is gone or never was), or that the gateway refuses first.
    { query: `mutation { a: deleteAccount(id: "${account}") { success } b: updateAccount(id: "${account}", input: { firstName: "Z" }) { success account { id } } }` },
    { query: `mutation ($b: ID!) { a: updateAccount(id: "${account}", input: { firstName: "Z" }) { success } b: deleteAccount(id: $b) { success } }`, variables: { b: random.pick(ODD_IDS) } },
    { query: 'query ($id: ID!) { account(id: $id) { id connectTokens { token } } }', variables: { id: random.pick(ODD_IDS) } },
    { query: 'query ($t: ID!) { connectToken(token: $t) { token account { id } } }', variables: { t: random.pick(ODD_IDS) } },
    { query: `query ($v: ${'['.repeat(random.int(40))}ID${']'.repeat(random.int(40))}) { account(id: $v) { id } }`, variables: { v: account } },
    { query: `query ($id: ID = "${account}") { account(id: $id) { id } }`, variables: { id: null } },
    { query: `query ($s: Boolean = true) { __typename account(id: "${account}") @include(if: $s) { id } }`, variables: { s: null } },
    { query: `mutation ($s: Boolean = true) { updateAccount(id: "${account}", input: { lastName: "L" }) { success account @skip(if: $s) { id } } }`, variables: { s: null } },
  ];
}

const SCHEMA = buildSchema();

/** A literal of `type`: mostly a fitting one (an existing id, a plausible string), sometimes an odd one. */
function literalOf(random: Random, type: GraphQLInputType, depth: number): string {
  if (isNonNullType(type)) return literalOf(random, type.ofType, depth);
  if (random.chance(0.08)) return random.pick(['null', '"x"', '1', 'true', '[]', '{}', 'OK', '$undeclared', JSON.stringify(random.pick(ODD_IDS))]);
  if (isListType(type)) return `[${Array.from({ length: random.int(3) }, () => literalOf(random, type.ofType, depth + 1)).join(', ')}]`;
  if (isEnumType(type)) return random.pick(type.getValues()).name;
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields()).filter((field) => isNonNullType(field.type) || random.chance(0.4));
    return `{ ${fields.map((field) => `${field.name}: ${depth > 4 ? 'null' : literalOf(random, field.type, depth + 1)}`).join(', ')} }`;
  }
  switch ((type as GraphQLScalarType).name) {
    case 'Int':
      return String(random.pick([1, 2, 20, 100, 0, 101]));
    case 'Boolean':
      return random.pick(['true', 'false']);
    case 'ID':
      return JSON.stringify(random.pick([...ACCOUNTS, ...TOKENS]));
    default:
      return JSON.stringify(random.pick(['https://app.example.com/cb', 'fuzz@example.com', 'Name', '@gmail.com', 'myapp://connected']));
  }
}

/** A selection set on `type`, `depth` levels left: fields with arguments, aliases, directives and inline fragments. */
function selectionOf(random: Random, type: GraphQLObjectType, depth: number): string {
  const fields = Object.values(type.getFields());
  const count = 1 + random.int(4);
  const selections: string[] = [];
  for (let i = 0; i < count; i++) {
    if (random.chance(0.1)) {
      selections.push(random.pick(['__typename', `... on ${type.name} { __typename }`, `... @include(if: ${random.pick(['true', 'false'])}) { __typename }`]));
      continue;
    }
    const field = random.pick(fields);
    const args = field.args.filter((arg) => isNonNullType(arg.type) || random.chance(0.3));
    let text = `${random.chance(0.2) ? `${random.pick(['a', 'b', 'x'])}: ` : ''}${field.name}`;
    if (args.length > 0) text += `(${args.map((arg) => `${arg.name}: ${literalOf(random, arg.type, 0)}`).join(', ')})`;
    if (random.chance(0.1)) text += ` @${random.pick(['skip', 'include'])}(if: ${random.pick(['true', 'false'])})`;
    const named = getNamedType(field.type);
    if (isObjectType(named)) text += depth > 0 ? ` { ${selectionOf(random, named, depth - 1)} }` : ' { __typename }';
    selections.push(text);
  }
  return selections.join(' ');
}

/** An operation made from the schema: valid more often than not, or one conflict or odd literal away from it. */
function schemaOperation(random: Random): Operation {
  const root = random.chance(0.35) ? SCHEMA.getMutationType()! : SCHEMA.getQueryType()!;
  return { query: `${root.name === 'Mutation' ? 'mutation' : 'query'} { ${selectionOf(random, root, random.int(5))} }` };
}

const PUNCTUATION = ['{', '}', '(', ')', '[', ']', '"', '"""', '...', '$', '@', '!', ':', '=', '|', '&', ',', '#', '\\', '\n'];
/** NUL, a BOM, a lone surrogate of either half (JSON.stringify escapes them as `\ud800`), RTL override, astral, combining. */
const UNICODE = ['\u0000', '\uFEFF', '\uD800', '\uDFFF', '\u202E', '😀', 'e\u0301', '\u2028', '\u00A0'];

/** Lexical-ish tokens of a document, whitespace kept, so that mutations work on whole names and strings. */
function tokens(query: string): string[] {
  return query.match(/[A-Za-z_][A-Za-z0-9_]*|\.\.\.|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|\s+|./gsu) ?? [];
}

function mutateQuery(random: Random, query: string): string {
  const parts = tokens(query);
  const at = () => random.int(parts.length + 1);
  switch (random.int(8)) {
    case 0:
      parts.splice(random.int(parts.length), 1);
      break;
    case 1: {
      const i = random.int(parts.length);
      parts.splice(i, 0, parts[i] ?? '');
      break;
    }
    case 2: {
      const i = random.int(parts.length);
      const j = random.int(parts.length);
      [parts[i], parts[j]] = [parts[j]!, parts[i]!];
      break;
    }
    case 3:
      parts.splice(at(), 0, random.pick(PUNCTUATION));
      break;
    case 4:
      parts.splice(at(), 0, random.pick(UNICODE));
      break;
    case 5: {
      // A name made very long.
      const names = parts.flatMap((part, i) => (/^[A-Za-z_]/.test(part) ? [i] : []));
      if (names.length > 0) parts[random.pick(names)] += 'x'.repeat(random.pick([200, 5_000, 100_000]));
      break;
    }
    case 6: {
      // A string value's contents replaced by an odd one.
      const strings = parts.flatMap((part, i) => (part.startsWith('"') ? [i] : []));
      if (strings.length > 0) parts[random.pick(strings)] = JSON.stringify(random.pick(['', '.', '..', 'a/b', 'a b', '\u0000', '\uD800', 'x'.repeat(5_000), '😀']));
      break;
    }
    default:
      return parts.slice(0, random.int(parts.length)).join('');
  }
  return parts.join('');
}

/** Ids and tokens that no account or connect token has, some of which would change an upstream URL's meaning. */
const ODD_IDS = ['.', '..', 'a/b', 'a\\b', '%2F', '%2e%2e', 'a?b=1', 'x#y', `${ACCOUNTS[0]}/connect_tokens`, ' ', 'a\nb', '\u0000', '\uD800', '\u200B', 'x'.repeat(257), '😀', '-1', 'null'];

/** A value of another type than a variable expects, or one on the edge of its own. */
function oddValue(random: Random): unknown {
  return random.pick<unknown>([
    random.pick(ODD_IDS),
    random.pick(ODD_IDS),
    null,
    0,
    -1,
    1.5,
    2_147_483_648,
    true,
    '',
    'x'.repeat(300),
    '\uD800',
    '\u0000',
    [],
    [ACCOUNTS[0]],
    {},
    { id: ACCOUNTS[0] },
    'OK',
    'NOT_A_STATUS',
    JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`),
    { firstName: 42 },
    { firstName: 'a\nb', extra: true },
    { firstName: 'a\u0000b' },
    { firstName: 'x'.repeat(257), lastName: '\u202E' },
    { lastName: '\uD800' },
    { email: `a@${'b'.repeat(260)}` },
    { callbackUrl: 'https://app.example.com/cb', sourceCallbackUrl: 'ftp://x' },
    { callbackUrl: 'http://169.254.169.254/latest' },
    { email: '@' },
    { callbackUrl: 'javascript:alert(1)' },
  ]);
}

function mutateVariables(random: Random, variables: Record<string, unknown> | undefined): unknown {
  const copy: Record<string, unknown> = { ...variables };
  const names = Object.keys(copy);
  switch (random.int(6)) {
    case 0:
      if (names.length > 0) delete copy[random.pick(names)];
      return copy;
    case 1:
      copy[random.pick(['extra', 'id', '__proto__', 'constructor', ''])] = oddValue(random);
      return copy;
    case 2:
      if (names.length > 0) copy[random.pick(names)] = null;
      return copy;
    case 3:
      if (names.length > 0) copy[random.pick(names)] = oddValue(random);
      return copy;
    case 4:
      return random.pick<unknown>([null, [], 'string', 7, JSON.stringify(copy), [copy]]);
    default:
      return { ...copy, big: 'v'.repeat(random.pick([1_000, 70_000])) };
  }
}

/** One request, as sent; `body` as a string or raw bytes. */
interface FuzzRequest {
  method: string;
  path: string;
  /** A header given twice is sent as two lines. */
  headers: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Sent chunked (no Content-Length), in this many pieces. */
  chunks?: number;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The JSON fields of a POST body, mutated at the level of the request rather than the document. */
function bodyFields(random: Random, operation: Operation): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...operation };
  switch (random.int(12)) {
    case 0:
      fields['operationName'] = random.pick<unknown>([undefined, 'Nope', '', 7, null, ['Dashboard'], { name: 'x' }, 'x'.repeat(10_000)]);
      break;
    case 1:
      fields['extensions'] = random.pick<unknown>([
        { persistedQuery: { version: 1, sha256Hash: sha256(operation.query) } },
        { persistedQuery: { version: 1, sha256Hash: 'deadbeef' } },
        { persistedQuery: { version: 2, sha256Hash: sha256(operation.query) } },
        { persistedQuery: { version: '1', sha256Hash: sha256(operation.query) } },
        { persistedQuery: { version: 1, sha256Hash: 42 } },
        { persistedQuery: { version: 1 } },
        { persistedQuery: null },
        { persistedQuery: 'yes' },
        'extensions',
        [],
        null,
        { other: { deep: [1, 2, 3] } },
      ]);
      break;
    case 2:
      // A persisted query's hash alone: unknown (PERSISTED_QUERY_NOT_FOUND), or known if this run registered it.
      delete fields['query'];
      fields['extensions'] = { persistedQuery: { version: 1, sha256Hash: random.chance(0.5) ? sha256(operation.query) : sha256(String(random.next())) } };
      break;
    case 3:
      fields['query'] = random.pick<unknown>([null, 42, ['{ __typename }'], { query: '{ __typename }' }, '', ' ', undefined]);
      break;
    case 4:
    case 5:
    case 6:
      fields['variables'] = mutateVariables(random, operation.variables);
      break;
    case 7:
      fields[random.pick(['extra', 'Query', 'QUERY', 'id'])] = oddValue(random);
      break;
    default:
      break;
  }
  return fields;
}

/** A POST body that is not one JSON object of a GraphQL request. */
function oddBody(random: Random, json: string): string | Buffer {
  return random.pick<string | Buffer>([
    '',
    ' ',
    'null',
    '42',
    '"{ __typename }"',
    `[${json}]`,
    `[${json},${json}]`,
    '[]',
    json.slice(0, random.int(json.length)),
    `${json}garbage`,
    `\uFEFF${json}`,
    `${json}${json}`,
    '{ __typename }',
    `{"query": "{ __typename }", "query": 7}`,
    Buffer.concat([Buffer.from('{"query":"{ account(id: \\"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('\\") { id } }"}')]),
    `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`,
    json.replace(/"/g, "'"),
  ]);
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=latin1',
  'application/json;charset="UTF-8"',
  'application/graphql-response+json',
  'application/graphql',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  ';;;',
  '',
  'application/json; charset=utf-16',
  'application/json; charset=',
  'application/json; boundary="a;b"; charset=utf-8',
  'application/json\u00ff',
  `application/json;${' x=y;'.repeat(500)}`,
];
const ACCEPTS = [
  'application/json;q=0.5, application/graphql-response+json;q=0.6',
  'application/graphql-response+json;charset=utf-16',
  'application/json; charset=latin1',
  '*/*;q=0',
  'text/html;q=0, application/json',
  `${'application/xml, '.repeat(300)}application/json`,
  'application/json;q=2',
  'application/json;q=-1',
  'application/json',
  'application/graphql-response+json',
  'application/graphql-response+json, application/json;q=0.9',
  '*/*',
  'application/xml',
  'application/json;q=0',
  'text/html',
  ';;;',
  'application/*',
  '',
];

/** Request targets beside `/graphql` that a client or a proxy might send for it. */
const PATHS = ['/GRAPHQL', '/graphql/', '//graphql', '/graphql;x', '/graphql%00', '/%2e%2e/graphql', '/graphql/..', '/healthz', '/graphql/ide/../../package.json', '*'];

function makeRequest(random: Random): FuzzRequest {
  const source = random.next();
  const operation = source < 0.25 ? random.pick(edgeOperations(random)) : source < 0.5 ? schemaOperation(random) : random.pick(corpus(random));
  let mutated: Operation = { ...operation };
  // Mostly near-valid: a document mutated once breaks its syntax as often as not, so many are left whole to reach
  // variable coercion, the limits, resolvers and the upstream.
  const rounds = random.pick([0, 0, 0, 1, 1, 2, 3]);
  for (let round = 0; round < rounds; round++) mutated = { ...mutated, query: mutateQuery(random, mutated.query) };
  const headers: Record<string, string | string[]> = {};

  if (random.chance(0.15)) {
    // GET, with the query in the query string as clients send it, the CSRF header mostly present.
    const params = new URLSearchParams();
    if (random.chance(0.9)) params.set('query', mutated.query.slice(0, 6_000));
    if (mutated.variables && random.chance(0.7)) params.set('variables', random.chance(0.8) ? JSON.stringify(mutated.variables) : random.pick(['{"id":', '']));
    else if (random.chance(0.1)) params.set('variables', '');
    if (random.chance(0.3)) params.set('operationName', random.pick(['Dashboard', 'Nope', '', '']));
    if (random.chance(0.2)) params.set('extensions', random.pick(['{}', 'not json', '', JSON.stringify({ persistedQuery: { version: 1, sha256Hash: sha256(mutated.query) } })]));
    if (random.chance(0.1)) params.append('query', '{ __typename }');
    let search = params.toString();
    if (random.chance(0.1)) search += random.pick(['&query=%zz', '&variables=%ff%fe', '&%00=1', '&query']);
    if (random.chance(0.85)) headers['apollo-require-preflight'] = 'true';
    if (random.chance(0.3)) headers['accept'] = random.pick(ACCEPTS);
    if (random.chance(0.1)) headers['content-type'] = random.pick(CONTENT_TYPES);
    return { method: 'GET', path: `${random.chance(0.05) ? random.pick(PATHS) : '/graphql'}?${search}`, headers };
  }

  const json = JSON.stringify(bodyFields(random, mutated));
  const body = random.chance(0.1) ? oddBody(random, json) : json;
  headers['content-type'] = random.chance(0.9) ? 'application/json' : random.pick(CONTENT_TYPES);
  if (random.chance(0.15)) headers['accept'] = random.pick(ACCEPTS);
  if (random.chance(0.03)) headers['content-encoding'] = random.pick(['gzip', 'identity', 'br']);
  const method = random.chance(0.05) ? random.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND']) : 'POST';
  if (random.chance(0.05)) {
    // Not two Content-Lengths on a HEAD: Node refuses those while it reads the headers, before the gateway
    // knows the method, and the refusal (client-error.ts) then carries its body after all.
    const names = ['content-type', 'accept', 'apollo-require-preflight', 'x-request-id', ...(method === 'HEAD' ? [] : ['content-length'])];
    const name = random.pick(names);
    const length = String(Buffer.byteLength(body));
    headers[name] = name === 'content-length' ? [length, length] : [String(headers[name] ?? 'application/json'), random.pick([...CONTENT_TYPES, ...ACCEPTS])];
  }
  if (random.chance(0.1)) return { method, path: '/graphql', headers, body, chunks: 1 + random.int(5) };
  return { method, path: random.chance(0.05) ? random.pick(PATHS) : '/graphql', headers, body };
}

interface Answer {
  status: number;
  contentType: string;
  bytes: number;
  text: string;
}

/** Sends `fuzz` on a connection of its own and reads at most `MAX_ANSWER_BYTES` of the answer. */
function send(url: string, fuzz: FuzzRequest): Promise<Answer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[] | number> = { ...fuzz.headers };
    if (fuzz.body !== undefined && fuzz.chunks === undefined && headers['content-length'] === undefined) headers['content-length'] = Buffer.byteLength(fuzz.body);
    const req = request({ host: '127.0.0.1', port, method: fuzz.method, path: fuzz.path, headers, agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_ANSWER_BYTES) req.destroy(new Error(`answer over ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode!, contentType: String(res.headers['content-type'] ?? ''), bytes, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    if (fuzz.chunks === undefined || fuzz.body === undefined) return void req.end(fuzz.body);
    // Cut at bytes, not characters: a piece may end inside a character's UTF-8.
    const bytes = Buffer.from(fuzz.body);
    const size = Math.ceil(bytes.length / fuzz.chunks) || 1;
    for (let at = 0; at < bytes.length; at += size) req.write(bytes.subarray(at, at + size));
    req.end();
  });
}

/** Far more than any of these requests should get back (a few pages of accounts at most). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** The codes an answer may carry: CONTRACT.md's, the HTTP refusals' and Apollo's (src/errors.ts, docs/errors.md), but never INTERNAL_SERVER_ERROR. */
const KNOWN_CODES = new Set<string>([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_ERROR',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'QUERY_TOO_COMPLEX',
  ...Object.values(HttpRefusalCode),
  ...OPERATION_CODES,
]);

/**
 * The HTTP status of an answer without `data`, by its first error's code: docs/errors.md's table of errors that end the
 * whole request (a mutation's precheck: 400 for BAD_USER_INPUT, 403 for FORBIDDEN; 404 for an unknown path).
 */
const REFUSAL_STATUSES: Record<string, number[]> = {
  UNAUTHENTICATED: [401],
  QUERY_TOO_COMPLEX: [400],
  RATE_LIMITED: [429],
  GRAPHQL_PARSE_FAILED: [400],
  GRAPHQL_VALIDATION_FAILED: [400],
  BAD_USER_INPUT: [400],
  OPERATION_RESOLUTION_FAILURE: [400],
  PERSISTED_QUERY_NOT_FOUND: [200],
  BAD_REQUEST: [400, 405, 406],
  METHOD_NOT_ALLOWED: [405],
  UNSUPPORTED_MEDIA_TYPE: [415],
  PAYLOAD_TOO_LARGE: [413],
  FORBIDDEN: [403],
  NOT_FOUND: [404],
};

const STACK_TRACE = /\n\s+at \S|\bat [\w$.<>]+ \((?:file|node):|\.(?:ts|js|mjs):\d+:\d+/;

/** Why `answer` to `fuzz` breaks a promise of every answer, or `undefined` when it keeps them all. */
function brokenInvariant(fuzz: FuzzRequest, answer: Answer, upstreamCalls: readonly string[], tally: Map<string, number>): string | undefined {
  // docs/errors.md, "Endpoints": a GET (or HEAD) asking for text/html without ?query= nor ?extensions= is a browser,
  // given the IDE's page: HTML, and a 503 in a checkout whose IDE is not built (src/ide/index.ts, notBuiltPage).
  const ide = /^(GET|HEAD)$/.test(fuzz.method) && /text\/html/.test(String(fuzz.headers['accept'] ?? '')) && !/[?&](query|extensions)=/.test(fuzz.path);
  if (ide && answer.contentType.startsWith('text/html')) return answer.status === 200 || answer.status === 503 ? undefined : `IDE status ${answer.status}`;
  // One request at a time, in open mode or with a secret (no key set to fetch): no 503 is due either.
  if (answer.status >= 500) return `status ${answer.status}`;
  // An answer to HEAD has no body (RFC 9110 9.3.2), nor has a CORS preflight's 204 (docs/errors.md, "Endpoints", OPTIONS).
  if (fuzz.method === 'HEAD' || (fuzz.method === 'OPTIONS' && answer.status === 204)) return answer.text === '' ? undefined : 'a body to HEAD or a preflight';
  // docs/errors.md, "Endpoints": /healthz answers its own JSON, and a browser asking for `/graphql/` is redirected to /graphql.
  if (fuzz.path.startsWith('/healthz') && answer.status === 200) return answer.text === '{"status":"ok"}' ? undefined : 'health';
  if (answer.status === 308 && fuzz.path.startsWith('/graphql/')) return undefined;
  if (answer.text.includes(CONSUMER_SECRET)) return 'the consumer secret';
  if (/oauth_signature|oauth_consumer_key|OAuth oauth/i.test(answer.text)) return 'an OAuth signature or header';
  if (STACK_TRACE.test(answer.text)) return 'a stack trace';
  if (!/^application\/(graphql-response\+)?json\b/.test(answer.contentType)) return `content type ${JSON.stringify(answer.contentType)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    return 'an answer that is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'an answer that is not a JSON object';
  const body = parsed as { data?: unknown; errors?: unknown };
  if (!('data' in body) && !('errors' in body)) return 'neither data nor errors';
  if ('errors' in body && (!Array.isArray(body.errors) || body.errors.length === 0)) return '`errors` not a non-empty list';
  const codes = ((body.errors ?? []) as Array<{ extensions?: { code?: unknown } }>).map((error) => error?.extensions?.code);
  const outcome = `${answer.status} ${'data' in body ? 'data' : 'no data'} ${[...new Set(codes)].sort().join(',')}${upstreamCalls.some((call) => !call.startsWith('GET')) ? ' +writes' : ''}`;
  tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
  const unknown = codes.filter((code) => typeof code !== 'string' || !KNOWN_CODES.has(code));
  if (unknown.length > 0) return `codes ${JSON.stringify(unknown)}`;
  if ('data' in body) {
    if (answer.status !== 200) return `status ${answer.status} with data`;
    return undefined;
  }
  // docs/errors.md: the errors that end a whole request come before any resolver runs, so no upstream call is made.
  if (upstreamCalls.length > 0) return `a refusal (no data) after upstream calls ${JSON.stringify(upstreamCalls)}`;
  const allowed = REFUSAL_STATUSES[codes[0] as string];
  if (allowed && !allowed.includes(answer.status)) return `status ${answer.status} for ${String(codes[0])}`;
  return undefined;
}

/** The GET `fuzz` without its optional parameters sent once and empty, or `undefined` when it has none (or its query string would not survive being rewritten). */
function withoutEmptyParameters(fuzz: FuzzRequest): FuzzRequest | undefined {
  if (fuzz.method !== 'GET') return undefined;
  const at = fuzz.path.indexOf('?');
  const search = fuzz.path.slice(at + 1);
  const params = new URLSearchParams(search);
  if (params.toString() !== search) return undefined;
  const empty = ['operationName', 'variables', 'extensions'].filter((name) => params.getAll(name).length === 1 && params.get(name) === '');
  if (empty.length === 0) return undefined;
  for (const name of empty) params.delete(name);
  return { ...fuzz, path: `${fuzz.path.slice(0, at)}?${params.toString()}` };
}

/** What of an answer an equivalent request must get alike: its status, data or not, and its codes. */
function answerShape(answer: Answer): string {
  let body: { data?: unknown; errors?: Array<{ extensions?: { code?: unknown } }> } = {};
  try {
    body = JSON.parse(answer.text) as typeof body;
  } catch {
    // Not JSON (the IDE's page): its status says enough.
  }
  return `${answer.status} ${body !== null && typeof body === 'object' && 'data' in body ? 'data' : 'no data'} ${JSON.stringify((Array.isArray(body?.errors) ? body.errors : []).map((error) => error?.extensions?.code))}`;
}

/** The request as a reader can replay it: method, target, headers and the body (cut short when long). */
function described(fuzz: FuzzRequest): string {
  const body = fuzz.body === undefined ? '' : Buffer.isBuffer(fuzz.body) ? `<bytes ${fuzz.body.toString('hex')}>` : fuzz.body;
  const shown = (text: string) => (text.length > 2_000 ? `${text.slice(0, 2_000)}… (${text.length} characters)` : text);
  return `${fuzz.method} ${shown(fuzz.path)}${fuzz.chunks ? ` (chunked, ${fuzz.chunks} pieces)` : ''}\n${JSON.stringify(fuzz.headers)}\n${shown(body)}`;
}

async function quiet(stack: Stack): Promise<void> {
  await eventually(() => stack.emulator.inFlight === 0, { timeoutMs: 10_000, what: 'the upstream requests of the case before ended' });
  stack.emulator.clearRequests();
}

/**
 * Sends CASES requests to `stack`, each with `authorization(random)`'s header when it gives one, and asserts
 * every answer keeps the invariants; then that the gateway still says it is healthy.
 */
async function fuzz(t: TestContext, stack: Stack, authorization?: (random: Random) => string | undefined): Promise<void> {
  const random = new Random(SEED);
  const failures: string[] = [];
  const tally = new Map<string, number>();
  let emptyParameterTwins = 0;
  for (let index = 0; index < CASES; index++) {
    const request = makeRequest(random);
    const credential = authorization?.(random);
    if (credential !== undefined) request.headers['authorization'] = credential;
    if (ONLY !== undefined && index !== ONLY) continue;
    // Each case on the demo data afresh, so that one replays alone whatever the cases before it deleted.
    stack.emulator.store.reset('demo');
    await quiet(stack);
    let broken: string | undefined;
    let answer: Answer | undefined;
    try {
      answer = await send(stack.gateway.url, request);
      await eventually(() => stack.emulator.inFlight === 0, { timeoutMs: 10_000, what: 'the case’s upstream requests ended' });
      broken = brokenInvariant(request, answer, stack.upstreamCalls(), tally);
      const bearer = /^Bearer (\S{20,})/.exec(credential ?? '')?.[1];
      if (broken === undefined && bearer !== undefined && answer.text.includes(bearer)) broken = 'the caller’s token';
      // The GraphQL-over-HTTP spec: an optional parameter sent empty is as if not sent. The same GET without it
      // must get the same answer (its status, data or not, its codes).
      const twin = broken === undefined ? withoutEmptyParameters(request) : undefined;
      if (twin !== undefined) {
        stack.emulator.store.reset('demo');
        await quiet(stack);
        const twinAnswer = await send(stack.gateway.url, twin);
        await eventually(() => stack.emulator.inFlight === 0, { timeoutMs: 10_000, what: 'the twin’s upstream requests ended' });
        if (answerShape(twinAnswer) !== answerShape(answer)) broken = `an empty parameter taken as sent: ${answerShape(answer)}, without it ${answerShape(twinAnswer)} (${twin.path})`;
        emptyParameterTwins++;
      }
    } catch (error) {
      broken = `no answer: ${(error as Error).message}`;
    }
    if (broken !== undefined) {
      failures.push(`FUZZ_SEED=${SEED} case ${index}: ${broken}\n${described(request)}\n→ ${answer?.status} ${answer?.text.slice(0, 1_000)}`);
      if (failures.length >= 5) break;
    }
  }
  // What the cases came to (status, data or not, codes, whether writes reached the upstream): that they keep
  // exercising both refusals and operations that ran.
  for (const [outcome, count] of [...tally].sort((a, b) => b[1] - a[1])) t.diagnostic(`${count} × ${outcome}`);
  assert.deepEqual(failures, [], failures.join('\n\n'));
  // The invariants of operations that ran (data only on a 200) and of refusals (no upstream call) hold of no case
  // when no case came to one: a gateway refusing every POST (415) kept them all. A seed that did not reach both, and
  // writes, would test less than the run says (a replay of one case, or a short run, may not).
  if (ONLY === undefined && CASES >= 100) {
    const count = (picked: (outcome: string) => boolean) => [...tally].filter(([outcome]) => picked(outcome)).reduce((sum, [, n]) => sum + n, 0);
    const ran = count((outcome) => outcome.split(' ')[1] === 'data');
    const refused = count((outcome) => outcome.split(' ')[1] === 'no');
    const wrote = count((outcome) => outcome.endsWith(' +writes'));
    const mix = JSON.stringify(Object.fromEntries(tally));
    assert.ok(ran >= CASES / 20 && refused >= CASES / 20, `seed ${SEED}: ${ran} of ${CASES} cases ran, ${refused} were refused: ${mix}`);
    assert.ok(wrote > 0, `seed ${SEED}: no case made a write upstream: ${mix}`);
    assert.ok(emptyParameterTwins > 0, `seed ${SEED}: no GET sent an empty operationName, variables or extensions`);
  }
  const health = await fetch(new URL('/healthz', stack.gateway.url));
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
}

describe(`fuzzed requests (FUZZ_SEED=${SEED})`, () => {
  it(`open mode: ${CASES} malformed and near-valid requests each get a bounded JSON answer with a known code, refusals with no upstream call`, async (t) => {
    const stack = await startStack({ emulator: { seed: 'demo', consumerSecret: CONSUMER_SECRET } });
    try {
      await fuzz(t, stack);
    } finally {
      await stack.close();
    }
  });

  it(`authentication on: the same requests, each with no token, a bad one, an admin's or one scoped to an account`, async (t) => {
    const stack = await startStack({ emulator: { seed: 'demo', consumerSecret: CONSUMER_SECRET }, gateway: { auth: { jwtSecret: SECRET } } });
    try {
      const admin = await hsToken({ scope: 'contextio:admin', sub: 'admin' });
      const scoped = await hsToken({ accounts: [ACCOUNTS[0]], sub: 'user-1' });
      const expired = await hsToken({ accounts: [ACCOUNTS[0]], exp: 1 });
      const forged = await hsToken({ scope: 'contextio:admin' }, 'another-secret-just-as-long-for-hs256-0123456789');
      const valid = [`Bearer ${admin}`, `Bearer ${scoped}`, `bearer  ${scoped}`];
      const refused = [undefined, `Bearer ${expired}`, `Bearer ${forged}`, 'Bearer', 'Bearer a.b.c', `Basic ${admin}`, `Bearer ${admin.slice(0, -3)}`, `Bearer ${admin}, Bearer ${scoped}`];
      await fuzz(t, stack, (random) => (random.chance(0.75) ? random.pick(valid) : random.pick(refused)));
    } finally {
      await stack.close();
    }
  });
});
