import { GraphQLError, isObjectType, responsePathAsArray, type GraphQLFieldResolver, type GraphQLResolveInfo, type GraphQLSchema, type Location, type Source, type SourceLocation } from 'graphql';
import { withoutStack } from '../errors.ts';

/**
 * Makes each field resolver of `schema`'s own types throw its errors located, as graphql-js would locate them
 * (`locatedError`: the same message, path, nodes, locations, extensions, original error and stack), but with
 * each location found in an index of the document's line breaks built once per document. graphql-js finds a
 * location by scanning the text from its start to the first line break past it, for every error: 900 errors
 * of a page of accounts (each alias of `connectToken(token: "")` refused, no upstream call) under a 1 MB
 * comment on the query's line took ~400 ms of CPU a request, against ~25 ms for the same body without errors.
 * graphql-js keeps an error that carries its path as it is. Errors graphql-js raises itself as it runs a field
 * it still locates: a null for a non-null field or a value its scalar cannot serialize come from the upstream's
 * data, not the caller's document, and a null argument through a variable, raised before the resolver, the
 * gateway refuses in a query before it runs (`nullVariablesPlugin`).
 */
export function locatingFieldErrors(schema: GraphQLSchema): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      if (field.resolve !== undefined) field.resolve = locating(field.resolve);
    }
  }
}

function locating(resolve: GraphQLFieldResolver<unknown, unknown>): GraphQLFieldResolver<unknown, unknown> {
  return (source, args, context, info) => {
    try {
      const result = resolve(source, args, context, info);
      // A promise of this realm only: graphql-js calls a thenable's `then` with callbacks of its own (one, as it
      // completes), and one that is no promise (its `then` returning nothing, or calling a callback it was not
      // given) does with ours what it would not with graphql-js's. graphql-js locates whatever else rejects.
      return result instanceof Promise ? result.then(undefined, (error: unknown) => Promise.reject(located(error, info))) : result;
    } catch (error) {
      throw located(error, info);
    }
  };
}

/**
 * `error` as graphql-js's `locatedError(error, info.fieldNodes, path)` makes it, when it is an Error that names
 * no place of its own; anything else as it is, for graphql-js to locate (a thrown value that is no Error it
 * words itself).
 */
function located(error: unknown, info: GraphQLResolveInfo): unknown {
  if (!(error instanceof Error)) return error;
  const own = error as Partial<Pick<GraphQLError, 'path' | 'nodes' | 'source' | 'positions'>>;
  if (own.path !== undefined || own.nodes !== undefined || own.source !== undefined || own.positions !== undefined) return error;
  const make = () => new GraphQLError(error.message, { path: responsePathAsArray(info.path), originalError: error });
  // graphql-js gives it the original error's stack when there is one: a trace of its own would be captured for nothing.
  const result = error.stack ? withoutStack(make) : make();
  const places = info.fieldNodes.map((node) => node.loc).filter((loc): loc is Location => loc != null);
  // Set after construction, which would otherwise scan the text for them (nodes stays non-enumerable, as
  // graphql-js defines it).
  Object.assign(result, {
    nodes: info.fieldNodes.length > 0 ? info.fieldNodes : undefined,
    ...(places.length > 0 && { source: places[0]!.source, positions: places.map((loc) => loc.start), locations: places.map((loc) => locationIn(loc.source, loc.start)) }),
  });
  return result;
}

/**
 * Where each line after the first of a document's text starts, in one array of the exact length: 4 bytes a
 * line. It lives as long as the document does (in Apollo's document cache, whose `documentSize` counts it):
 * two arrays grown by `push`, each line break's place and the next line's start, took ~24 bytes a line, ~70 KB
 * for a document of as many lines as `MAX_QUERY_TOKENS` allows.
 */
const lineStartsBySource = new WeakMap<Source, Uint32Array>();

/** The line and column of `position` in `source`, as graphql-js's getLocation counts them (`\r\n` is one line break). */
function locationIn(source: Source, position: number): SourceLocation {
  let starts = lineStartsBySource.get(source);
  if (starts === undefined) {
    starts = Uint32Array.from(source.body.matchAll(/\r\n|[\n\r]/g), (match) => match.index + match[0].length);
    lineStartsBySource.set(source, starts);
  }
  // The lines started by `position`: graphql-js counts each line break whose first character is before it, the
  // same but for a position between the two characters of a `\r\n`, where no node starts.
  let low = 0;
  let high = starts.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (starts[middle]! <= position) low = middle + 1;
    else high = middle;
  }
  return { line: low + 1, column: position + 1 - (low === 0 ? 0 : starts[low - 1]!) };
}
