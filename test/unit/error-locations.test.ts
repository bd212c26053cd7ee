import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { execute, GraphQLError, parse, Source, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { locatingFieldErrors } from '../../src/graphql/error-locations.ts';
import { argumentError, withoutStack } from '../../src/errors.ts';
import { buildSchema } from '../../src/graphql/schema.ts';

const typeDefs = /* GraphQL */ `
  type Query { fails(how: String!): String, item: Item, items: [Item] }
  type Item { fails(how: String!): String, name: String }
`;

/**
 * A resolver failing as `how` says: thrown or rejected, a coded GraphQLError, one that carries a path of its own
 * (graphql-js keeps it as it is), a plain Error, or no Error at all.
 */
function fail(how: string): unknown {
  const error = how.includes('plain')
    ? new Error(`plain ${how}`)
    : how.includes('value')
      ? `a string, ${how}`
      : new GraphQLError(`coded ${how}`, { extensions: { code: 'BAD_USER_INPUT' }, ...(how.includes('pathed') && { path: ['elsewhere', 0] }) });
  if (how.startsWith('sync')) throw error;
  return Promise.reject(error);
}

function schemas(): { graphqlJs: GraphQLSchema; located: GraphQLSchema } {
  const resolvers = {
    Query: { fails: (_: unknown, { how }: { how: string }) => fail(how), item: () => ({ name: 'one' }), items: () => [{}, {}, {}] },
    Item: { fails: (_: unknown, { how }: { how: string }) => fail(how) },
  };
  const located = makeExecutableSchema({ typeDefs, resolvers });
  locatingFieldErrors(located);
  return { graphqlJs: makeExecutableSchema({ typeDefs, resolvers }), located };
}

/** Every property of each error graphql-js's own locating gives it, the non-enumerable ones too. */
function described(result: ExecutionResult): unknown[] {
  return (result.errors ?? []).map((error) => ({
    json: error.toJSON(),
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError?.message,
    // The stack of the error thrown, whose frames differ as the resolver is called.
    stackIsOriginals: error.stack === error.originalError?.stack,
    isGraphQLError: error instanceof GraphQLError,
  }));
}

/** `text` as a Source whose body counts its reads once parsed: graphql-js reads it for each line break it passes when locating an error. */
function countingSource(text: string): { source: Source; reads: () => number } {
  const source = new Source(text);
  let reads = 0;
  Object.defineProperty(source, 'body', { get: () => ((reads += 1), text) });
  return { source, reads: () => reads };
}

describe('field errors located from an index of the document’s line breaks', () => {
  it('are what graphql-js’s own locating makes of them, field for field, on every kind of line break', async () => {
    const { graphqlJs, located } = schemas();
    const documents = [
      '{ a: fails(how: "sync coded") b: fails(how: "async coded") c: fails(how: "sync plain") d: fails(how: "async plain") }',
      '{ a: fails(how: "sync value")\n b: fails(how: "async value") }',
      '# a comment\r\n{\r\n  item { fails(how: "async coded") }\r\n  items {\r name\r fails(how: "sync coded") }\n}',
      // One field of two nodes, merged from a fragment: an error with two locations.
      'query Q {\n  item {\n    fails(how: "async coded")\n    ...F\n  }\n}\n\nfragment F on Item {\n      fails(how: "async coded")\n}\n',
      `{ item { fails(how: "sync plain") } } # ${'x'.repeat(10_000)}`,
      '{ a: fails(how: "sync coded pathed") item { fails(how: "async coded pathed") } }',
    ];
    for (const text of documents) {
      const document = parse(text);
      const expected = described(await execute({ schema: graphqlJs, document }));
      const actual = described(await execute({ schema: located, document }));
      assert.ok(expected.length >= 1, text);
      assert.deepEqual(actual, expected, text);
    }
  });

  it('leave a thenable that is no promise to graphql-js, which calls its `then` with callbacks of its own', async () => {
    // Neither returns what its `then` makes, and each calls a callback it may not be given: graphql-js gives one.
    const thenables: Record<string, unknown> = {
      rejecting: { then: (_fulfil: unknown, reject: (error: Error) => void) => reject(new Error('rejected')) },
      fulfilling: { then: (fulfil: (value: string) => void) => fulfil('value') },
    };
    const typeDefs = 'type Query { thenable(kind: String!): String }';
    const resolvers = { Query: { thenable: (_: unknown, { kind }: { kind: string }) => thenables[kind] } };
    const located = makeExecutableSchema({ typeDefs, resolvers });
    locatingFieldErrors(located);
    const graphqlJs = makeExecutableSchema({ typeDefs, resolvers });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): number => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const kind of Object.keys(thenables)) {
        const document = parse(`{ thenable(kind: "${kind}") }`);
        const expected = await execute({ schema: graphqlJs, document });
        const actual = await execute({ schema: located, document });
        assert.deepEqual({ data: actual.data, errors: described(actual) }, { data: expected.data, errors: described(expected) }, kind);
      }
      // Past the turn in which a rejection no one handles is reported.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('read the document’s text once, however many errors name places in it', async () => {
    const { graphqlJs, located } = schemas();
    const text = `{\n${Array.from({ length: 50 }, (_, i) => `  f${i}: items { fails(how: "${i % 2 ? 'sync' : 'async'} coded") }`).join('\n')}\n}`;
    for (const [schema, most] of [[located, 1], [graphqlJs, Infinity]] as const) {
      const { source, reads } = countingSource(text);
      const document = parse(source);
      const before = reads();
      const result = await execute({ schema, document });
      assert.equal(result.errors?.length, 150);
      // graphql-js's own getLocation reads it once for each line break before each error, and once more.
      if (most === Infinity) assert.ok(reads() - before >= 150 * 2, `graphql-js's locating read it ${reads() - before} times`);
      else assert.ok(reads() - before <= most, `read ${reads() - before} times`);
    }
  });

  it('is how the gateway’s schema locates its resolvers’ errors', async () => {
    const text = `{\n${Array.from({ length: 20 }, (_, i) => `  a${i}: account(id: "${i}") { id }`).join('\n')}\n}`;
    const { source, reads } = countingSource(text);
    const document = parse(source);
    const before = reads();
    // Every call the resolvers make of the request's API refused, as a bad id is.
    const refused = (): never => {
      throw argumentError('id', 'refused');
    };
    const contextValue = { api: new Proxy({}, { get: () => refused }) };
    const result = await execute({ schema: buildSchema(), document, contextValue });
    assert.equal(result.errors?.length, 20);
    assert.deepEqual(result.errors?.[19]?.toJSON(), {
      message: 'refused',
      locations: [{ line: 21, column: 3 }],
      path: ['a19'],
      extensions: { code: 'BAD_USER_INPUT', field: 'id' },
    });
    assert.ok(reads() - before <= 1, `read ${reads() - before} times`);
  });
});

describe('the gateway’s own errors', () => {
  it('capture no stack frames (they are the caller’s input or the upstream’s answer, not bugs), leaving the limit as it was', async () => {
    const limit = Error.stackTraceLimit;
    const error = argumentError('id', 'refused');
    assert.equal(error.stack, 'GraphQLError: refused');
    assert.equal(Error.stackTraceLimit, limit);
    assert.throws(() => withoutStack(() => {
      throw new Error('made');
    }), (thrown: Error) => thrown.stack === 'Error: made');
    assert.equal(Error.stackTraceLimit, limit);
    assert.match(new Error('a bug').stack!, /\n\s+at /);
    // Located, an error keeps its original's stack, frames and all when it had them.
    const { located } = schemas();
    const result = await execute({ schema: located, document: parse('{ a: fails(how: "sync plain") b: fails(how: "async coded") }') });
    assert.match(result.errors![0]!.stack!, /^Error: plain sync plain\n\s+at fail /);
    assert.match(result.errors![1]!.stack!, /^GraphQLError: coded async coded\n\s+at fail /);
  });
});
