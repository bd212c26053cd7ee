import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { getIntrospectionQuery, parse, validate } from 'graphql';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { DEFAULT_OPERATION_LIMITS, FULL_ACCOUNT_FIELDS, UPSTREAM_FIELDS } from '../../src/limits/index.ts';
import { MAX_NESTING } from '../../src/limits/nesting.ts';
import { buildSchema } from '../../src/graphql/schema.ts';
import type { QueryResolvers } from '../../src/generated/graphql.ts';
import { Query } from '../../src/resolvers/Query.ts';
import { eventually } from '../helpers/eventually.ts';
import { codes, startLoggingStack, startStack, useStack, type GraphQLResponse, type Stack } from '../helpers/stack.ts';

/**
 * A query nested exactly `depth` fields deep, through single objects only (a token, its account, one of
 * that account's tokens, ...), so its cost stays small and only its depth can be refused.
 */
function deepQuery(depth: number): string {
  const fields = ['connectToken(token: "t")'];
  while (fields.length < depth - 1) fields.push(fields.length % 2 === 1 ? 'account' : 'connectToken(token: "t")');
  const leaf = fields.length % 2 === 0 ? 'id' : 'token';
  return `{ ${fields.map((f) => `${f} {`).join(' ')} ${leaf} ${'}'.repeat(fields.length)} }`;
}

/** The same nesting as `deepQuery`, each level below the root in its own named fragment. */
function deepFragmentQuery(depth: number): string {
  const fragments: string[] = [];
  for (let level = 2; level < depth; level++) {
    const onToken = level % 2 === 0;
    const inner = level === depth - 1 ? (onToken ? 'id' : 'token') : `...L${level + 1}`;
    const field = onToken ? 'account' : 'connectToken(token: "t")';
    fragments.push(`fragment L${level} on ${onToken ? 'ConnectToken' : 'Account'} { ${field} { ${inner} } }`);
  }
  return `{ connectToken(token: "t") { ...L2 } } ${fragments.join('\n')}`;
}

/** Asserts a refusal for `limit`, naming the measured value, with nothing sent upstream. */
function assertTooComplex(stack: Stack, res: GraphQLResponse, limit: string, value: number | 'unbounded'): void {
  assert.equal(res.status, 400);
  assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
  const [error] = res.body.errors!;
  assert.equal(error!.extensions!['limit'], limit);
  assert.equal(error!.extensions!['value'], value);
  assert.match(error!.message, new RegExp(`: [a-z ]+ ${value}, more than the maximum of \\d+ \\(${limit}\\)`));
  assert.equal(res.body.data, undefined);
  assert.deepEqual(stack.upstreamCalls(), []);
}

describe('operation limits', () => {
  const stack = useStack();

  it('refuses a 40-level deep query before any upstream call', async () => {
    assertTooComplex(stack, await stack.gql(deepQuery(40)), 'MAX_QUERY_DEPTH', 40);
  });

  it('counts depth through fragments', async () => {
    assertTooComplex(stack, await stack.gql(deepFragmentQuery(40)), 'MAX_QUERY_DEPTH', 40);
  });

  it('allows a query at the depth limit', async () => {
    const res = await stack.gql(deepQuery(DEFAULT_OPERATION_LIMITS.maxDepth));
    // The token does not exist: what matters is that the operation ran.
    assert.deepEqual(codes(res), ['NOT_FOUND']);
  });

  it('refuses 150 aliases', async () => {
    const aliases = Array.from({ length: 150 }, (_, i) => `a${i}: account(id: "${String(i).padStart(24, '0')}") { id }`).join(' ');
    assertTooComplex(stack, await stack.gql(`{ ${aliases} }`), 'MAX_ALIASES', 150);
  });

  it('stops parsing a document past 3,000 tokens: repeated fields, whose validation work grows with their square', async () => {
    const repeated = `{ ${'accounts(first: 1) { nodes { id } } '.repeat(400)}}`;
    const res = await stack.gql(repeated);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.errors, [
      {
        message: 'The operation is too complex: more than the maximum of 3000 tokens (MAX_QUERY_TOKENS).',
        extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'MAX_QUERY_TOKENS', maximum: 3000 },
      },
    ]);
    assert.deepEqual(stack.upstreamCalls(), []);
    const commented = await stack.gql(`# ${'a comment is no token '.repeat(2_000)}\n{ accounts(first: 1) { nodes { id } } }`);
    assert.deepEqual(codes(commented), [], 'comments do not count');
  });

  it('refuses a document of more lines than MAX_QUERY_TOKENS before reading it: each error’s line is counted from its start', async () => {
    // Line breaks are no tokens, and graphql-js counts those before each node an error names: 900 errors
    // under 500,000 blank lines (a 500 KB body) held the event loop 13 s.
    const failing = '{ a: account(id: "a/b") { id } }';
    const long = `${'\n'.repeat(2_000)}${'\r\n'.repeat(1_000)}\r${failing}`;
    const res = await stack.gql(long);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.errors, [
      {
        message: 'The operation is too complex: its text has 3001 line breaks, more than the maximum of 3000 (as many as MAX_QUERY_TOKENS).',
        extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'DOCUMENT_LINES', value: 3_001, maximum: 3_000 },
      },
    ]);
    const url = `${stack.gateway.url}?query=${encodeURIComponent(long)}`;
    const overGet = await fetch(url, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    assert.equal(overGet.status, 400);
    assert.deepEqual(((await overGet.json()) as GraphQLResponse['body']).errors, res.body.errors);
    assert.deepEqual(stack.upstreamCalls(), []);
    // One at the maximum is read, `\r\n` a line break as graphql-js counts it.
    const atMaximum = await stack.gql(`${'\n'.repeat(2_000)}${'\r\n'.repeat(1_000)}${failing}`);
    assert.deepEqual(codes(atMaximum), ['BAD_USER_INPUT']);
    assert.deepEqual((atMaximum.body.errors![0] as { locations?: unknown }).locations, [{ line: 3_001, column: 3 }]);
  });

  it('stops validating at 20 errors: graphql-js finds each error’s line by reading the text from its start', async () => {
    // 100 (graphql-js's own maximum) under a 1 MB comment on the query's line took ~110 ms of CPU, against
    // ~25 ms for the same body valid.
    const fields = Array.from({ length: 150 }, (_, i) => `f${i}`).join(' ');
    const res = await stack.gql(`{ ${fields} } #${'x'.repeat(100_000)}`);
    assert.equal(res.status, 400);
    const errors = res.body.errors!;
    assert.equal(errors.length, 21);
    assert.deepEqual(errors[19], { message: 'Cannot query field "f19" on type "Query".', locations: [{ line: 1, column: 69 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    assert.deepEqual(errors[20], { message: 'Too many validation errors, error limit reached. Validation aborted.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses a document nested too deeply for the parser (which reads nesting recursively) as too complex, not as a stack overflow', async () => {
    const nested = (depth: number, open: string, close: string, inner: string) => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
    const documents = [
      `{ account(id: ${nested(20_000, '[', ']', '1')}) { id } }`,
      `{ account(id: ${nested(20_000, '{a:', '}', '1')}) { id } }`,
      `{ ${nested(20_000, 'a {', '}', 'b')} }`,
    ];
    // With the most tokens the setting allows, so that the parser's stack, not the token count, runs out first.
    const roomy = await startStack({ gateway: { operationLimits: { maxTokens: 1_000_000 } } });
    try {
      for (const document of documents) {
        const res = await roomy.gql(document);
        assert.equal(res.status, 400);
        assert.deepEqual(res.body.errors, [
          {
            message: 'The operation is too complex: it is nested too deeply to be read (its lists, objects or selections).',
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          },
        ]);
      }
      assert.deepEqual(roomy.upstreamCalls(), []);
    } finally {
      await roomy.close();
    }
  });

  it('refuses a document nested too deeply for graphql-js to validate (which reads nesting recursively) the same way, before validating it', async () => {
    const fields = (depth: number) => `${'a {'.repeat(depth)} b ${'}'.repeat(depth)}`;
    const chain = (count: number) => Array.from({ length: count }, (_, i) => `fragment F${i} on Query { ${i === count - 1 ? '__typename' : `...F${i + 1}`} }`).join(' ');
    const documents = {
      // Two copies of one deep selection: the check that fields can be merged compares them a level at a time.
      'duplicate selections': `{ ${fields(876)} ${fields(876)} }`,
      'duplicate selections through inline fragments': `{ ${'a { ... {'.repeat(850)} b ${'}'.repeat(1_700)} ${'a { ... {'.repeat(850)} b ${'}'.repeat(1_700)} }`,
      'duplicate introspection': `{ ${`__type(name: "Query") { ${'ofType {'.repeat(900)} name ${'}'.repeat(901)} `.repeat(2)}}`,
      // The check for fragment cycles follows each spread in turn, whether an operation spreads the chain or not.
      'a chain of fragments': `{ ...F0 } ${chain(4_000)}`,
      'a chain of fragments no operation spreads': `{ __typename } ${chain(4_000)}`,
      // A shorter chain passed validation and ran out of stack running (answered 200 with an unexpected error).
      'a shorter chain of fragments': `{ ...F0 } ${chain(3_200)}`,
      // Fields a level deeper in each fragment: measuring them for MAX_QUERY_DEPTH ran out of stack instead.
      'fragments each a field deeper': deepFragmentQuery(3_000),
      'a variable’s type': `query($v: ${'['.repeat(4_500)}ID${']'.repeat(4_500)}) { account(id: $v) { id } }`,
    };
    // With the most tokens the setting allows: at its default these documents are refused as over MAX_QUERY_TOKENS.
    const roomy = await startLoggingStack('info', { gateway: { operationLimits: { maxTokens: 1_000_000 } } });
    try {
      for (const [shape, document] of Object.entries(documents)) {
        const res = await roomy.gql(document);
        assert.equal(res.status, 400, shape);
        assert.deepEqual(
          res.body.errors,
          [
            {
              message: 'The operation is too complex: it is nested too deeply to be read (its lists, objects or selections).',
              extensions: { code: 'QUERY_TOO_COMPLEX' },
            },
          ],
          shape,
        );
      }
      assert.deepEqual(roomy.upstreamCalls(), []);
      const logged = () => roomy.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['message'] === 'operation');
      await eventually(() => logged().length === Object.keys(documents).length);
      assert.deepEqual(
        logged().map((entry) => [entry['status'], entry['errors']]),
        Object.keys(documents).map(() => [400, ['QUERY_TOO_COMPLEX']]),
      );
    } finally {
      await roomy.close();
    }
  });

  it('refuses fragments that spread each other in a cycle as graphql-js does, before its other rules follow the cycle out of stack, at the default limits', async () => {
    // Each fragment spreads the next two, round a ring of 100 (~1,400 tokens): the check that fields can be
    // merged compares fragment pairs recursively and ran out of stack (a 500), within every default limit.
    const ring = Array.from({ length: 100 }, (_, i) => `fragment F${i} on Query { ...F${(i + 1) % 100} __typename ...F${(i + 2) % 100} }`).join(' ');
    const stack = await startLoggingStack('info');
    try {
      for (const document of [`{ ...F0 } ${ring}`, `{ __typename } ${ring}`, '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }']) {
        const res = await stack.gql(document);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.deepEqual(codes(res), ['GRAPHQL_VALIDATION_FAILED']);
        assert.match(String(res.body.errors![0]!.message), /^Cannot spread fragment "(F\d+|A|B)" within itself/);
      }
      // In graphql-js's own words and places, a fragment spreading itself directly (no "via") too.
      const schema = buildSchema();
      for (const document of ['{ ...A } fragment A on Query { ...A }', '{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }']) {
        const res = await stack.gql(document);
        const own = validate(schema, parse(document)).map((error) => ({ message: error.message, locations: error.locations }));
        const answered = res.body.errors as Array<{ message: string; locations?: unknown }> | undefined;
        assert.deepEqual(answered?.map(({ message, locations }) => ({ message, locations })), own, document);
      }
      assert.deepEqual(stack.upstreamCalls(), []);
      assert.deepEqual(stack.lines.filter((line) => line.includes('"level":"error"')), []);
    } finally {
      await stack.close();
    }
  });

  it('refuses, before validating it, a document whose repeated fields and fragments graphql-js would compare in too many pairs, and lets ordinary repeats through', async () => {
    const repeat = (count: number, text: (i: number) => string) => Array.from({ length: count }, (_, i) => text(i)).join(' ');
    const chain = (name: string, count: number) => repeat(count, (i) => `fragment ${name}${i} on Query { ${i + 1 < count ? `...${name}${i + 1}` : ''} __typename }`);
    // Each within every default limit, and ~100-200 ms of validation (graphql-js's merge check) before this.
    const refused: Record<string, [document: string, limit: string, value?: number]> = {
      // Merged into one field by execution (one upstream call, answered 200): 5 levels of 230 fields, each two
      // compared. Counting stops past the maximum, here at the first level.
      'one field written 230 times': [`{ ${repeat(230, () => 'accounts { nodes { connectTokens { account { id } } } }')} }`, 'MERGED_PAIRS', (230 * 229) / 2],
      'two chains of 165 fragments side by side': [`{ ...A0 ...B0 } ${chain('A', 165)} ${chain('B', 165)}`, 'MERGED_PAIRS'],
      // Eight fields of eight of eight: 512 merged at the last level, where no set holds more than eight.
      'eight of eight of eight': [`{ ${repeat(8, () => `account(id: "1") { ${repeat(8, () => `connectTokens { ${repeat(8, () => 'account { id }')} }`)} }`)} }`, 'MERGED_PAIRS'],
      // `...F` finds the last fragment named F, but graphql-js compares the first one's fields all the same.
      'a fragment behind a later one of its name': [`{ ...F } fragment F on Query { ${repeat(200, () => 'accounts { nodes { connectTokens { account { id } } } }')} } fragment F on Query { __typename }`, 'MERGED_PAIRS', (200 * 199) / 2],
      // Each operation spreads the fragment again (graphql-js follows fragments from each).
      '400 operations spreading one fragment': [`${repeat(400, (i) => `query Q${i} { ...F }`)} fragment F on Query { ${repeat(50, (i) => `f${i}: __typename`)} }`, 'MERGED_SELECTIONS'],
    };
    for (const [shape, [document, limit, value]] of Object.entries(refused)) {
      const res = await fetch(new URL('/graphql', stack.gateway.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: document, operationName: document.startsWith('query') ? 'Q0' : undefined }),
      });
      const body = (await res.json()) as GraphQLResponse['body'];
      assert.equal(res.status, 400, shape);
      assert.equal(body.errors?.length, 1, shape);
      const [error] = body.errors!;
      assert.equal(error!.extensions!['code'], 'QUERY_TOO_COMPLEX', shape);
      assert.equal(error!.extensions!['limit'], limit, shape);
      const maximum = limit === 'MERGED_PAIRS' ? 10_000 : 20_000;
      assert.equal(error!.extensions!['maximum'], maximum, shape);
      if (value !== undefined) assert.equal(error!.extensions!['value'], value, shape);
      assert.ok((error!.extensions!['value'] as number) > maximum, shape);
      assert.match(error!.message, /^The operation is too complex: .*not a setting/, shape);
    }
    assert.deepEqual(stack.upstreamCalls(), []);
    // Fifty copies of one field, 3 levels of 1,225 pairs: merged and run once.
    const res = await stack.gql(`{ ${repeat(50, () => 'accounts(first: 1) { nodes { id } }')} }`);
    assert.deepEqual(res.body, { data: { accounts: { nodes: [] } } });
    assert.equal(stack.upstreamCalls().length, 1);
  });

  it('answers graphql-js giving up validating a document past its budget of work as too complex, saying so, with no upstream call', async () => {
    // 140 fragments of 60 distinct aliases each, spread side by side: graphql-js compares each two fragments'
    // fields and stops at its budget (`Validation aborted.`, answered GRAPHQL_VALIDATION_FAILED with no reason).
    const fragments = Array.from({ length: 140 }, (_, i) => `fragment F${i} on Query { ${Array.from({ length: 60 }, (_, j) => `f${i}_${j}: __typename`).join(' ')} }`);
    const document = `{ ${fragments.map((_, i) => `...F${i}`).join(' ')} } ${fragments.join(' ')}`;
    // ~26,000 tokens: at its default MAX_QUERY_TOKENS would refuse the document first.
    const roomy = await startLoggingStack('info', { gateway: { operationLimits: { maxTokens: 30_000 } } });
    try {
      const res = await roomy.gql(document);
      assert.equal(res.status, 400);
      assert.deepEqual(res.body.errors, [
        {
          message:
            'The operation is too complex to validate: graphql-js gave up checking it past its budget of work (fields of one name, or fragments, compared in pairs where they merge; fragments followed from each operation). Select each field and spread each fragment fewer times.',
          extensions: { code: 'QUERY_TOO_COMPLEX' },
        },
      ]);
      assert.deepEqual(roomy.upstreamCalls(), []);
      const logged = () => roomy.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['message'] === 'operation');
      await eventually(() => logged().length === 1);
      assert.deepEqual(logged()[0]!['errors'], ['QUERY_TOO_COMPLEX']);
    } finally {
      await roomy.close();
    }
  });

  it('validates and runs a query as deep as MAX_QUERY_DEPTH may be raised to, twice over in one selection', async () => {
    const deep = await startStack({ gateway: { operationLimits: { maxTokens: 1_000_000, maxDepth: MAX_NESTING } } });
    try {
      const inner = deepQuery(MAX_NESTING).slice(1, -1);
      const res = await deep.gql(`{ ${inner} ${inner} }`);
      // The token does not exist: what matters is that the operation ran, once upstream for both copies.
      assert.deepEqual(codes(res), ['NOT_FOUND']);
      assert.deepEqual(deep.upstreamCalls(), ['GET /connect_tokens/t']);
      const deeper = await deep.gql(deepQuery(MAX_NESTING + 1));
      assert.equal(deeper.status, 400);
      assert.deepEqual(codes(deeper), ['QUERY_TOO_COMPLEX']);
      assert.equal(deeper.body.errors![0]!.extensions!['limit'], undefined);
    } finally {
      await deep.close();
    }
  });

  it('counts aliases inside fragments each time the fragment is spread', async () => {
    const many = Array.from({ length: 60 }, (_, i) => `f${i}: id`).join(' ');
    const query = `{ a: account(id: "x") { ...Many } b: account(id: "y") { ...Many } } fragment Many on Account { ${many} }`;
    assertTooComplex(stack, await stack.gql(query), 'MAX_ALIASES', 2 + 2 * 60);
  });

  it('reads a selection of fragments spreading each other twice over in time linear in the document', { timeout: 30_000 }, async () => {
    // F0 spreads F1 twice, F1 spreads F2 twice, …: 2^40 spreads of F40 if each were walked each time, which
    // the resolvers' look at the account's selection did (a 1 KB query held the event loop for seconds).
    const levels = 40;
    const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i} on Account { ...F${i + 1} ...F${i + 1} }`).join('\n');
    const id = stack.emulator.store.createAccount({ email: 'fragments@example.com' }).id;
    const res = await stack.gql(`query ($id: ID!) { account(id: $id) { id ...F0 } }\n${fragments}\nfragment F${levels} on Account { __typename }`, { id });
    assert.deepEqual(res.body, { data: { account: { id, __typename: 'Account' } } });
  });

  it('refuses the schema asked for more than once in an operation: each is the whole schema, answered in full', async () => {
    // Introspection costs nothing in the estimate (it is answered from memory), so 50 aliases of `__schema`
    // (one MAX_ROOT_FIELDS allows) made a 1.7 MB answer and held the event loop ~200 ms for one request.
    const schema = '__schema { types { name fields { name args { name type { name } } } } }';
    const res = await stack.gql(`{ ${schema} again: ${schema} }`);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.errors![0]!.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'SCHEMA_FIELDS', value: 2, maximum: 1 });
    assert.match(res.body.errors![0]!.message, /^The operation is too complex: the schema \(__schema\) asked for 2 times/);
    // Through fragments too; a field repeated under the same name is one field, run once.
    const viaFragments = await stack.gql(`{ ...A ...B } fragment A on Query { ${schema} } fragment B on Query { copy: ${schema} }`);
    assert.equal(viaFragments.body.errors![0]!.extensions!['limit'], 'SCHEMA_FIELDS');
    const merged = await stack.gql(`{ ...A ...B } fragment A on Query { __schema { types { name } } } fragment B on Query { __schema { queryType { name } } }`);
    assert.equal(merged.body.errors, undefined);
    assert.ok(merged.body.data, 'the schema asked for through two fragments is answered');
  });

  it('refuses aliases inside introspection: each answers its part of the schema again', async () => {
    // Asked for once, the schema still answered its types 99 times over under aliases: a 28 MB answer,
    // ~2 s of the event loop, for an estimated cost of 0.
    const types = 'types { name fields { name type { name fields { name } } } }';
    const res = await stack.gql(`{ __schema { ${types} again: ${types} } }`);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.errors![0]!.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'INTROSPECTION_ALIASES', value: 1, maximum: 0 });
    assert.match(res.body.errors![0]!.message, /^The operation is too complex: 1 alias inside introspection/);
    // Under `__type` too, through fragments, each place a fragment is spread counted.
    const typeFields = await stack.gql(`{ __type(name: "Query") { ...F } account(id: "x") { __typename } } fragment F on __Type { a: fields { name } b: fields { name } }`);
    assert.deepEqual(typeFields.body.errors![0]!.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'INTROSPECTION_ALIASES', value: 2, maximum: 0 });
    assert.deepEqual(stack.upstreamCalls(), []);
    // Aliases of `__type` itself ask for different types, and are kept.
    const aliasedTypes = await stack.gql(`{ query: __type(name: "Query") { name } account: __type(name: "Account") { name } }`);
    assert.deepEqual(aliasedTypes.body, { data: { query: { name: 'Query' }, account: { name: 'Account' } } });
  });

  it('refuses an alias longer than 128 characters: each is repeated in the answer for every item around it', async () => {
    // 1 MB of alias under a page of 100 accounts was a 100 MB answer for a cost of 111.
    const res = await stack.gql(`{ accounts(first: 100) { nodes { ${'a'.repeat(129)}: id } } }`);
    assert.equal(res.status, 400);
    assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
    assert.deepEqual(res.body.errors![0]!.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'ALIAS_LENGTH', value: 129, maximum: 128 });
    assert.deepEqual(stack.upstreamCalls(), []);
    // Inside a fragment too; 128 characters pass.
    const viaFragment = await stack.gql(`{ accounts(first: 1) { nodes { ...A } } } fragment A on Account { ${'b'.repeat(200)}: id }`);
    assert.equal(viaFragment.body.errors![0]!.extensions!['value'], 200);
    // On a field with selections of its own too.
    const onObject = await stack.gql(`{ ${'d'.repeat(129)}: accounts(first: 1) { nodes { id } } }`);
    assert.equal(onObject.body.errors![0]!.extensions!['value'], 129);
    const longest = await stack.gql(`{ accounts(first: 1) { nodes { ${'c'.repeat(128)}: id } } }`);
    assert.deepEqual(codes(longest), []);
    stack.upstreamCalls();
  });

  it('weighs an aliased __typename as a field: each answers once per item, where the one of its own name is free', async () => {
    // 99 aliases under a page's sources answered 99,000 fields (~60 ms of CPU, 1.5 MB) for a cost of 1,111.
    const aliased = Array.from({ length: 99 }, (_, i) => `t${i}: __typename`).join(' ');
    assertTooComplex(stack, await stack.gql(`{ accounts(first: 100) { nodes { sources { ${aliased} } } } }`), 'MAX_QUERY_COST', 11 + 100 * (1 + 10 * 99));
    // What clients add to every selection (merged into one however often written) and an alias of its own name still cost nothing.
    const plain = await stack.gql('{ accounts(first: 100) { __typename nodes { __typename __typename: __typename sources { __typename } } } }');
    assert.equal(plain.body.errors, undefined);
    stack.upstreamCalls();
  });

  it('refuses too many root fields', async () => {
    const roots = Array.from({ length: 60 }, (_, i) => `r${i}: __typename`).join(' ');
    assertTooComplex(stack, await stack.gql(`{ ${roots} }`), 'MAX_ROOT_FIELDS', 60);
  });

  it('refuses a query past a limit for that limit, though a variable is also null where the query needs a value', async () => {
    // Both are refused before anything runs: the limit is said, as the operation log's `limits` says it.
    const roots = Array.from({ length: 60 }, (_, i) => `r${i}: __typename`).join(' ');
    const res = await stack.gql(`query ($t: ID = "x") { ${roots} connectToken(token: $t) { token } }`, { t: null });
    assertTooComplex(stack, res, 'MAX_ROOT_FIELDS', 61);
  });

  it('leaves a first past 100 to the argument check: BAD_USER_INPUT, the contract’s code, with no upstream call', async () => {
    // Counted at 100 a page, so no size of `first` can turn the refusal into QUERY_TOO_COMPLEX.
    for (const query of [
      `{ accounts(first: 1000) { nodes { id } } }`,
      `{ accounts(first: 1000) { nodes { id connectTokens { token } } } }`,
      `{ accounts(first: 2147483647) { nodes { id connectTokens { token } } } }`,
    ]) {
      const res = await stack.gql(query);
      assert.deepEqual(codes(res), ['BAD_USER_INPUT'], query);
      assert.match(res.body.errors![0]!.message, /first must be from 1 to 100/);
      assert.equal(res.body.errors![0]!.extensions!['field'], 'first');
    }
    const variable = await stack.gql(`query ($n: Int) { connectTokens(first: $n) { nodes { token } } }`, { n: 2_147_483_647 });
    assert.deepEqual(codes(variable), ['BAD_USER_INPUT']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('refuses nested lists whose cost multiplies, every first legal', async () => {
    const res = await stack.gql(`{ connectTokens(first: 100) { nodes { account { connectTokens { account { connectTokens { token } } } } } } }`);
    assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
    assert.equal(res.body.errors![0]!.extensions!['limit'], 'MAX_QUERY_COST');
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('reads first from variables, their defaults included, so one document can pass or be refused', async () => {
    const query = `query ($n: Int = 100) { accounts(first: $n) { nodes { connectTokens { account { username } } } } }`;
    // Cost 11 + n × 130: the full-account field loads each token's account, 10 tokens assumed per account.
    assertTooComplex(stack, await stack.gql(query), 'MAX_QUERY_COST', 11 + 100 * 130);
    assertTooComplex(stack, await stack.gql(query, { n: 100 }), 'MAX_QUERY_COST', 11 + 100 * 130);
    const small = await stack.gql(query, { n: 10 });
    assert.deepEqual(small.body, { data: { accounts: { nodes: [] } } });
    assert.deepEqual(stack.upstreamCalls(), ['GET /accounts']);
    // The measure of the small run is not reused for the large one.
    assertTooComplex(stack, await stack.gql(query, { n: 100 }), 'MAX_QUERY_COST', 11 + 100 * 130);
  });

  it('counts what @skip/@include leave out for nothing, as the request’s variables decide', async () => {
    const id = stack.emulator.store.createAccount({ email: 'directives@example.com' }).id;
    const query = `query ($deep: Boolean = true) { account(id: "${id}") { id } accounts(first: 100) @include(if: $deep) { nodes { connectTokens { account { username } } } } }`;
    // 11 for the account; the page 11 + 100 × 130 only when it runs.
    assertTooComplex(stack, await stack.gql(query), 'MAX_QUERY_COST', 11 + 11 + 100 * 130);
    const shallow = await stack.gql(query, { deep: false });
    assert.deepEqual(shallow.body, { data: { account: { id } } });
    assert.deepEqual(stack.upstreamCalls(), [`GET /accounts/${id}`]);
    // The measure of the shallow run is not reused for the deep one.
    assertTooComplex(stack, await stack.gql(query, { deep: true }), 'MAX_QUERY_COST', 11 + 11 + 100 * 130);
  });

  it('reads a variable’s default when the variables leave it out, whatever its name: `$constructor` is no property of theirs', async () => {
    for (const name of ['constructor', '__proto__', 'toString']) {
      const query = `query ($${name}: Int = 100) { accounts(first: $${name}) { nodes { connectTokens { account { username } } } } }`;
      assertTooComplex(stack, await stack.gql(query, {}), 'MAX_QUERY_COST', 11 + 100 * 130);
    }
  });

  it('refuses the same way over GET', async () => {
    const url = `${stack.gateway.url}?query=${encodeURIComponent(deepQuery(40))}`;
    const response = await fetch(url, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    assert.equal(response.status, 400);
    const body = (await response.json()) as GraphQLResponse['body'];
    assert.deepEqual(codes({ status: 400, headers: response.headers, body }), ['QUERY_TOO_COMPLEX']);
    assert.deepEqual(stack.upstreamCalls(), []);
  });

  it('lets legitimate queries through: the benchmark fan-out, 30 aliases, fragments, forty and a hundred colocated ones, introspection', async () => {
    const id = stack.emulator.store.createAccount({ email: 'legit@example.com', username: 'legit' }).id;
    const token = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb', email: 'legit@example.com' }).token;
    stack.emulator.store.useConnectToken(token, { server: 'imap.example.com', username: 'u', existingAccountId: id });

    const fanOut = await stack.gql<{ connectTokens: { nodes: unknown[] } }>(
      `{ connectTokens(first: 100) { nodes { token account { username messageCount } } } }`,
    );
    assert.equal(fanOut.body.errors, undefined);
    assert.equal(fanOut.body.data!.connectTokens.nodes.length, 1);

    const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: account(id: $id) { id username }`).join(' ');
    const aliased = await stack.gql(`query ($id: ID!) { ${aliases} }`, { id });
    assert.equal(aliased.body.errors, undefined);
    assert.equal(Object.keys(aliased.body.data!).length, 30);

    const fragments = await stack.gql(
      `query ($id: ID!) { account(id: $id) { ...Card connectTokens { ...Token } } }
       fragment Card on Account { id ... on Account { firstName emailAddresses } sources { label } }
       fragment Token on ConnectToken { token used account { ...Card username } }`,
      { id },
    );
    assert.equal(fragments.body.errors, undefined);

    const admin = await stack.gql(
      `{ accounts(first: 100) { nodes { id username emailAddresses messageCount fileCount sources { label email status useSsl } connectTokens { token used createdAt expiresAt } } } }`,
    );
    assert.equal(admin.body.errors, undefined);
    // The same page as a client colocating fragments writes it, the lists selected by both: run once, counted once.
    const colocated = await stack.gql(
      `{ accounts(first: 100) { nodes { ...Row ...Detail } } }
       fragment Row on Account { id username emailAddresses sources { label email status useSsl } connectTokens { token used createdAt expiresAt } }
       fragment Detail on Account { id messageCount fileCount sources { label email status useSsl } connectTokens { token used createdAt expiresAt } }`,
    );
    assert.deepEqual(codes(colocated), []);
    assert.deepEqual(colocated.body.data, admin.body.data);

    // Forty components each colocating a fragment on one account, as Apollo Client sends them (`__typename` in
    // every set): 6,320 pairs where they merge, under MERGED_PAIRS' 10,000.
    const components = Array.from({ length: 40 }, (_, i) => i);
    const page = await stack.gql(
      `query ($id: ID!) { account(id: $id) { id __typename ${components.map((i) => `...C${i}`).join(' ')} } }
       ${components.map((i) => `fragment C${i} on Account { id __typename firstName sources { __typename label status } }`).join('\n')}`,
      { id },
    );
    assert.equal(page.status, 200);
    assert.equal(page.body.errors, undefined);
    // A hundred selecting `id __typename` each: 15,050 pairs counted whole, but graphql-js skips two simple leaves
    // of one field (~5,600 as counted now; ~5–10 ms to validate).
    const hundred = Array.from({ length: 100 }, (_, i) => i);
    const widePage = await stack.gql(
      `query ($id: ID!) { account(id: $id) { id __typename ${hundred.map((i) => `...L${i}`).join(' ')} } }
       ${hundred.map((i) => `fragment L${i} on Account { id __typename }`).join('\n')}`,
      { id },
    );
    assert.equal(widePage.status, 200, JSON.stringify(widePage.body));
    assert.equal(widePage.body.errors, undefined);

    // GraphiQL's and graphql-codegen's introspection query, every option on, nests ofType seven levels deep: it
    // only unwraps types, so it adds no depth, and repeats no field where fields merge.
    const introspection = await stack.gql(
      getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true }),
    );
    assert.equal(introspection.status, 200);
    assert.equal(introspection.body.errors, undefined);
  });
});

describe('the parsed-document cache', () => {
  it('counts the text a document was parsed from: distinct documents padded with large comments cannot pin memory', { timeout: 60_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const stack = await startStack();
    try {
      const heapAfterGc = () => {
        gc();
        gc();
        return process.memoryUsage().heapUsed;
      };
      const padding = `#${' '.repeat(900_000)}\n`;
      await stack.gql(`${padding}{ __typename }`); // the first of its kind, so the baseline holds what every request leaves
      const before = heapAfterGc();
      // 40 distinct valid documents of ~900 KB each: ~36 MB if each stayed cached with its text.
      for (let i = 0; i < 40; i++) assert.deepEqual((await stack.gql(`${padding}{ __typename } # ${i}`)).body, { data: { __typename: 'Query' } });
      const grown = heapAfterGc() - before;
      assert.ok(grown < 12 * 1024 * 1024, `the heap grew by ${(grown / 1024 / 1024).toFixed(1)} MiB`);
    } finally {
      await stack.close();
    }
  });

  it('parses and validates a repeated operation once: its second run is of the document its first was', async (t) => {
    // Each run's operation, as the resolver is handed it: a document parsed again is another object.
    const operations: unknown[] = [];
    const account = Query.account as Extract<QueryResolvers['account'], (...args: never[]) => unknown>;
    Query.account = (parent, args, context, info) => {
      operations.push(info.operation);
      return account(parent, args, context, info);
    };
    t.after(() => {
      Query.account = account;
    });
    const stack = await startStack();
    try {
      const query = '{ account(id: "0123456789abcdef01234567") { id } }';
      for (let i = 0; i < 2; i++) assert.deepEqual(codes(await stack.gql(query)), ['NOT_FOUND']);
      assert.equal(operations.length, 2);
      assert.ok(operations[0] === operations[1], 'the second run is of the cached document, not of one parsed and validated again');
    } finally {
      await stack.close();
    }
  });
});

describe('the persisted-query cache', () => {
  it('holds a few MB of query text: distinct large queries registered by hash are forgotten, oldest first', { timeout: 60_000 }, async () => {
    const stack = await startStack();
    try {
      const padding = `#${' '.repeat(900_000)}\n`;
      const queries = Array.from({ length: 40 }, (_, i) => `${padding}{ __typename } # ${i}`);
      const persisted = (query: string) => ({ persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') } });
      const send = async (body: Record<string, unknown>) => {
        const res = await fetch(stack.gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return (await res.json()) as GraphQLResponse['body'];
      };
      // 40 distinct valid queries of ~900 KB each, registered: ~36 MB of text if each stayed.
      for (const query of queries) assert.deepEqual(await send({ query, extensions: persisted(query) }), { data: { __typename: 'Query' } });
      const known: number[] = [];
      for (const [index, query] of queries.entries()) if ((await send({ extensions: persisted(query) })).data !== undefined) known.push(index);
      assert.ok(known.length >= 1 && known.length <= 5, `${known.length} of the 40 queries are still known by their hash`);
      // Oldest first: those still known are the last registered (a cache that refused new entries once full
      // would keep the first ones).
      assert.deepEqual(known, Array.from({ length: known.length }, (_, i) => queries.length - known.length + i));
    } finally {
      await stack.close();
    }
  });
});

describe('operation limits per gateway', () => {
  it('are overridable per instance: tighter, or raised for an operation the defaults refuse', async () => {
    const tight = await startStack({ gateway: { operationLimits: { maxDepth: 3 } } });
    try {
      const res = await tight.gql(`{ connectToken(token: "t") { account { connectTokens { token } } } }`);
      assertTooComplex(tight, res, 'MAX_QUERY_DEPTH', 4);
    } finally {
      await tight.close();
    }
    const raised = await startStack({ gateway: { operationLimits: { maxAliases: 1000, maxRootFields: 1000, maxCost: 100_000, maxTokens: 10_000 } } });
    try {
      const aliases = Array.from({ length: 500 }, (_, i) => `a${i}: account(id: "${String(i).padStart(24, '0')}") { id }`).join(' ');
      const res = await raised.gql(`{ ${aliases} }`);
      // Unknown ids: each alias ran and failed on its own.
      assert.equal(res.status, 200);
      assert.equal(res.body.errors!.length, 500);
      assert.ok(codes(res).every((code) => code === 'NOT_FOUND'), 'every alias failed NOT_FOUND');
      assert.equal(raised.upstreamCalls().length, 500);
    } finally {
      await raised.close();
    }
  });
});

describe('the upstream request budget', () => {
  it('holds while the operation runs: past twice MAX_QUERY_COST ÷ 10 requests, each further field fails QUERY_TOO_COMPLEX', async () => {
    const stack = await startStack({ gateway: { operationLimits: { maxCost: 150 } } }); // a budget of 30 requests
    try {
      const { store } = stack.emulator;
      const ids = Array.from({ length: 30 }, (_, i) => store.createAccount({ email: `bare${i}@example.com` }).id);
      // A server sending each used token's account as a bare id: its embedded fields then cost a request
      // each, which the estimate (checked before the operation runs) cannot see.
      const tokens = ids.map((id, i) => ({ token: `bare${String(i).padStart(12, '0')}`, created: 1, used: 2, expires: false, callback_url: 'https://app.example/cb', account: id }));
      stack.emulator.addFault({ method: 'GET', path: '/connect_tokens', body: tokens });
      stack.emulator.clearRequests();
      const res = await stack.gql<{ connectTokens: { nodes: Array<{ account: { emailAddresses: string[] } | null }> } }>(
        '{ connectTokens(first: 30) { nodes { account { emailAddresses } } } }',
      );
      assert.equal(stack.upstreamCalls().length, 30, 'the list and 29 accounts: the budget');
      assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
      assert.match(res.body.errors![0]!.message, /the most upstream requests one may \(30, retries included/);
      assert.equal(res.body.data!.connectTokens.nodes.filter((node) => node.account !== null).length, 29);
    } finally {
      await stack.close();
    }
  });

  it('refuses a write past it saying that write was not sent: its caller, told of the writes made before, must know it was not made', async () => {
    // Five deletes cost 55 (a budget of 12 requests); the first four, each retried after two proxy 502s, spend it.
    const stack = await startStack({ gateway: { operationLimits: { maxCost: 55 } } });
    try {
      const { store } = stack.emulator;
      const tokens = Array.from({ length: 5 }, () => store.createConnectToken(null, { callback_url: 'https://app.example/cb' }).token);
      for (const token of tokens.slice(0, 4)) stack.emulator.addFault({ method: 'DELETE', path: `/connect_tokens/${token}`, status: 502, proxyPage: true, times: 2 });
      stack.emulator.clearRequests();
      const res = await stack.gql(`mutation { ${tokens.map((token, i) => `d${i}: deleteConnectToken(token: "${token}") { success }`).join(' ')} }`);
      assert.equal(stack.upstreamCalls().length, 12, 'three attempts of each of the first four deletes: the budget');
      assert.deepEqual(codes(res), ['QUERY_TOO_COMPLEX']);
      assert.deepEqual(res.body.errors![0]!.path, ['d4']);
      assert.equal(
        res.body.errors![0]!.message,
        `The operation has sent the most upstream requests one may (12, retries included: twice MAX_QUERY_COST ÷ 10, rounded up): the request deleting connect token "${tokens[4]}" was not sent, so it did not take effect`,
      );
      assert.deepEqual((res.body.extensions!['writesMade'] as Array<{ path: string[] }>).map((write) => write.path), [['d0'], ['d1'], ['d2'], ['d3']]);
      assert.notEqual(store.getConnectToken(tokens[4]!), undefined, 'the fifth token is still there');
    } finally {
      await stack.close();
    }
  });
});

describe('lists longer than the estimate assumed', () => {
  it('charge their further items while the operation runs: past twice MAX_QUERY_COST added, a list fails, once logged', async () => {
    const stack = await startLoggingStack('warn');
    try {
      const { store } = stack.emulator;
      const id = store.createAccount({ email: 'many@example.com' }).id;
      for (let i = 0; i < 3000; i++) store.createConnectToken(id, { callback_url: 'https://app.example/cb' });
      stack.emulator.clearRequests();
      // Each list's 2,990 further items add 2,990 × 3 = 8,970: the first two lists fit in 20,000, the third
      // would take what they add to 26,910.
      const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: account(id: "${id}") { connectTokens { token email callbackUrl } }`);
      const res = await stack.gql<Record<string, { connectTokens: unknown[] } | null>>(`{ ${aliases.join(' ')} }`);
      assert.equal(res.status, 200);
      assert.deepEqual(stack.upstreamCalls().sort(), [`GET /accounts/${id}`, `GET /accounts/${id}/connect_tokens`]);
      const answered = Object.values(res.body.data!).filter((account) => account !== null);
      assert.equal(answered.length, 2);
      assert.ok(answered.every((account) => account!.connectTokens.length === 3000), 'each answered account has its 3000 connect tokens');
      assert.equal(res.body.errors!.length, 18);
      assert.ok(codes(res).every((code) => code === 'QUERY_TOO_COMPLEX'), 'every error is QUERY_TOO_COMPLEX');
      const [first] = res.body.errors!;
      assert.deepEqual(first!.extensions!['limit'], 'LIST_LENGTHS');
      assert.deepEqual([first!.extensions!['value'], first!.extensions!['maximum']], [26_910, 20_000]);
      assert.match(first!.message, /Account\.connectTokens has 3000 items where the estimate assumed 10; the lists' further items would add 26910 to its cost, more than the maximum of 20000 \(twice MAX_QUERY_COST\)/);
      const warned = stack.lines.filter((line) => line.includes('lists longer than its cost allows'));
      assert.equal(warned.length, 1);
      assert.match(warned[0]!, /"field":"Account\.connectTokens","length":3000,"value":26910,"maximum":20000/);
    } finally {
      await stack.close();
    }
  });

  it('answer one long list whole, and count sources the same way', async () => {
    const stack = await startStack({ gateway: { operationLimits: { maxCost: 100 } } }); // 200 while running
    try {
      const { store } = stack.emulator;
      const sources = Array.from({ length: 60 }, (_, i) => ({ label: `source${i}`, username: `u${i}@example.com` }));
      const id = store.createAccount({ email: 'sources@example.com', sources }).id;
      // The 50 further sources add 50 × 2 = 100 a list: two lists fit in 200, the third would add 300.
      const aliases = ['a', 'b', 'c', 'd', 'e'].map((alias) => `${alias}: account(id: "${id}") { sources { label username } }`);
      const two = await stack.gql<Record<string, { sources: unknown[] }>>(`{ ${aliases.slice(0, 2).join(' ')} }`);
      assert.equal(two.body.errors, undefined);
      assert.deepEqual(Object.values(two.body.data!).map((account) => account.sources.length), [60, 60]);
      const three = await stack.gql<Record<string, { sources: unknown[] } | null>>(`{ ${aliases.slice(0, 3).join(' ')} }`);
      assert.deepEqual(codes(three), ['QUERY_TOO_COMPLEX']);
      assert.equal(three.body.errors![0]!.extensions!['value'], 300);
      assert.deepEqual(Object.values(three.body.data!).map((account) => account?.sources.length ?? null).sort(), [60, 60, null]);
      // An item costs at least a field, `{ __typename }` too (it weighs nothing in the estimate): 50 a list,
      // the fifth would add 250...
      const typenames = await stack.gql(`{ ${aliases.join(' ').replaceAll('label username', '__typename')} }`);
      assert.deepEqual(codes(typenames), ['QUERY_TOO_COMPLEX']);
      assert.equal(typenames.body.errors![0]!.extensions!['value'], 250);
      // ... and a fragment spread twice in one selection is run, and charged, once.
      const twice = await stack.gql(`{ ${aliases.slice(0, 2).join(' ').replaceAll('label username', '...S ...S')} } fragment S on Source { label username }`);
      assert.equal(twice.body.errors, undefined);
      // A list selected twice (here by a fragment, merged in one place and not in the other) runs, and is
      // charged, as one: two such fit, as two plain lists do ...
      const merged = await stack.gql(`{ a: account(id: "${id}") { ...F } b: account(id: "${id}") { sources { label } ...F } } fragment F on Account { sources { label username } }`);
      assert.deepEqual(codes(merged), []);
      // ... and a node @skip leaves out does not take the list's charge with it: the third is refused still.
      const skipped = ['a', 'b', 'c'].map((alias) => `${alias}: account(id: "${id}") { sources @skip(if: true) { label } sources { label username } }`);
      const third = await stack.gql(`{ ${skipped.join(' ')} }`);
      assert.deepEqual(codes(third), ['QUERY_TOO_COMPLEX']);
      assert.equal(third.body.errors![0]!.extensions!['value'], 300);
    } finally {
      await stack.close();
    }
  });
});

describe('lists longer than assumed under a heavy operation', () => {
  it('leave it the same room: a page of 100 accounts with their sources and tokens, one account holding 5,000', { timeout: 60_000 }, async () => {
    const stack = await startStack();
    try {
      const { store } = stack.emulator;
      const ids = Array.from({ length: 100 }, (_, i) => store.createAccount({ email: `page${i}@example.com`, sources: [{ label: `s${i}` }] }).id);
      for (let i = 0; i < 5000; i++) store.createConnectToken(ids[0]!, { callback_url: 'https://app.example/cb' });
      // Estimated 11 + 100 × (4 + 31 + 40) = 7,511; the 4,990 further tokens add 14,970, within 20,000 on their
      // own (with the estimate, 22,481 would not be).
      const res = await stack.gql<{ accounts: { nodes: Array<{ connectTokens: unknown[] }> } }>(
        '{ accounts(first: 100) { nodes { id firstName lastName emailAddresses sources { label email status } connectTokens { token used email } } } }',
      );
      assert.equal(res.body.errors, undefined);
      assert.equal(res.body.data!.accounts.nodes.length, 100);
      assert.equal(res.body.data!.accounts.nodes.reduce((sum, node) => sum + node.connectTokens.length, 0), 5000);
    } finally {
      await stack.close();
    }
  });
});

describe('limit settings', () => {
  it('default when unset and read MAX_QUERY_DEPTH, MAX_ALIASES, MAX_ROOT_FIELDS, MAX_QUERY_COST, MAX_QUERY_TOKENS, MAX_BODY_BYTES', () => {
    assert.deepEqual(loadConfig({}).operationLimits, DEFAULT_OPERATION_LIMITS);
    // The defaults docs/limits.md and the README promise, spelt out: an operator relies on them unset.
    assert.deepEqual({ ...DEFAULT_OPERATION_LIMITS }, { maxDepth: 12, maxAliases: 100, maxRootFields: 50, maxCost: 10_000, maxTokens: 3_000 });
    assert.equal(loadConfig({}).maxBodyBytes, 1024 * 1024);
    const config = loadConfig({ MAX_QUERY_DEPTH: '20', MAX_ALIASES: '500', MAX_ROOT_FIELDS: '500', MAX_QUERY_COST: '50000', MAX_BODY_BYTES: '2048' });
    assert.deepEqual(config.operationLimits, { maxDepth: 20, maxAliases: 500, maxRootFields: 500, maxCost: 50_000, maxTokens: 3_000 });
    assert.equal(loadConfig({ MAX_QUERY_TOKENS: '20000' }).operationLimits.maxTokens, 20_000);
    assert.equal(config.maxBodyBytes, 2048);
  });

  it('refuse malformed values with one line per problem', () => {
    assert.throws(
      () => loadConfig({ MAX_QUERY_DEPTH: 'deep', MAX_ALIASES: '-1', MAX_ROOT_FIELDS: '0', MAX_QUERY_COST: '1e6', MAX_BODY_BYTES: '10', MAX_QUERY_TOKENS: '99' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
        const names = ['MAX_QUERY_DEPTH', 'MAX_ALIASES', 'MAX_ROOT_FIELDS', 'MAX_QUERY_COST', 'MAX_BODY_BYTES', 'MAX_QUERY_TOKENS'];
        assert.deepEqual(error.problems.map((p) => names.find((n) => p.startsWith(`${n} `))).sort(), [...names].sort());
        return true;
      },
    );
  });

  it('weigh only fields that exist in the schema', () => {
    const schema = buildSchema();
    for (const name of [...UPSTREAM_FIELDS, ...FULL_ACCOUNT_FIELDS]) {
      const [type, field] = name.split('.') as [string, string];
      const found = schema.getType(type);
      assert.ok(found && 'getFields' in found && field in found.getFields(), `${name} is not in the schema`);
    }
  });
});
