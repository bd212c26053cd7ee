import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { ListLengthBudget } from './lists.ts';
import { COST, MAX_SELECTIONS_VISITED, measureOperation, type OperationMeasure } from './measure.ts';
import { MAX_MERGED_PAIRS, type MergingWork } from './merging.ts';

export { ListLengthBudget } from './lists.ts';
export { FULL_ACCOUNT_FIELDS, UPSTREAM_FIELDS, WRITTEN_ACCOUNT_FIELDS } from './measure.ts';
export { MAX_NESTING } from './nesting.ts';
export { MAX_MERGED_PAIRS, mergingWork } from './merging.ts';
export { MAX_SELECTIONS_VISITED } from './measure.ts';

/** The most an operation may ask for; beyond any of them it is refused with `QUERY_TOO_COMPLEX`. */
export interface OperationLimits {
  /** `MAX_QUERY_DEPTH`: nesting of fields; at most `MAX_NESTING`, past which a document is refused before it is validated. */
  maxDepth: number;
  /** `MAX_ALIASES`: aliased fields in the operation, fragments expanded. */
  maxAliases: number;
  /** `MAX_ROOT_FIELDS`: distinct top-level fields. */
  maxRootFields: number;
  /** `MAX_QUERY_COST`: the estimated cost (docs/limits.md). */
  maxCost: number;
  /**
   * `MAX_QUERY_TOKENS`: the document's lexical tokens (names, punctuation, values; not comments), checked
   * while parsing. Validation's work grows faster than the document (the check that repeated fields can be
   * merged compares them pairwise): without this bound, 1,000 repeated fields (a 36 KB body) would hold the
   * event loop ~270 ms, before any other limit could be checked.
   */
  maxTokens: number;
}

/**
 * Room for every query the tests, the benchmark and the example frontend send (the heaviest: a full page of
 * 100 accounts, each with its connect tokens and sources, 9,611: docs/limits.md), while one operation still cannot
 * ask for much more than a thousand upstream requests.
 */
export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = {
  maxDepth: 12,
  maxAliases: 100,
  maxRootFields: 50,
  maxCost: 10_000,
  // 100 aliased accounts with a dozen fields each come to ~2,000; validating 3,000 tokens of repeated fields
  // takes some 50 ms.
  maxTokens: 3_000,
};

/** Which measure each limit bounds, and the setting that raises it, in the order they are checked. */
const CHECKS = [
  { limit: 'maxDepth', measure: 'depth', label: 'depth', setting: 'MAX_QUERY_DEPTH' },
  { limit: 'maxAliases', measure: 'aliases', label: 'aliases', setting: 'MAX_ALIASES' },
  { limit: 'maxRootFields', measure: 'rootFields', label: 'root fields', setting: 'MAX_ROOT_FIELDS' },
  { limit: 'maxCost', measure: 'cost', label: 'estimated cost', setting: 'MAX_QUERY_COST' },
] as const satisfies ReadonlyArray<{ limit: keyof OperationLimits; measure: keyof OperationMeasure; label: string; setting: string }>;

/**
 * The longest alias an operation may use (not a setting). An alias is repeated in the answer for every item of
 * every list around it, which the estimated cost does not see: a 1 MB alias under a page of 100 accounts makes
 * a 100 MB answer, fifty such pages one too large to serialize, holding the event loop 18 s on the way.
 */
const MAX_ALIAS_LENGTH = 128;

/**
 * How often an operation may ask for the schema (not a setting). Each `__schema` is answered in full from
 * memory, which the estimated cost does not weigh (introspection costs 0), and once is all any client needs:
 * 50 aliases of one (what `MAX_ROOT_FIELDS` allows) made a 1.7 MB answer and held the event loop ~200 ms.
 */
const MAX_SCHEMA_FIELDS = 1;

/**
 * Aliases an operation may use inside introspection (not a setting): none. Each answers its part of the schema
 * again, which the estimated cost does not weigh either, and no introspection client needs one: asked for once,
 * the schema answered its types 99 times over under aliases, a 28 MB answer holding the event loop ~2 s.
 * (Aliases of `__type` itself ask for different types: they are not inside introspection.)
 */
const MAX_INTROSPECTION_ALIASES = 0;

/** A measured figure as the refusal and its log line show it: Infinity (measuring stopped, or too deep to measure) is `unbounded`, where JSON would write null. */
function shownFigure(value: number): number | 'unbounded' {
  return Number.isFinite(value) ? value : 'unbounded';
}

/** The `QUERY_TOO_COMPLEX` error for the first limit the measure exceeds, or `undefined` when within all. */
export function checkLimits(measure: OperationMeasure, limits: OperationLimits): GraphQLError | undefined {
  if (measure.selectionsVisited > MAX_SELECTIONS_VISITED) {
    return tooManySelectionsVisited(measure.selectionsVisited);
  }
  if (measure.longestAlias > MAX_ALIAS_LENGTH) {
    return tooComplex(`an alias of ${measure.longestAlias} characters, more than the maximum of ${MAX_ALIAS_LENGTH}`, 'ALIAS_LENGTH', measure.longestAlias, MAX_ALIAS_LENGTH);
  }
  if (measure.schemaFields > MAX_SCHEMA_FIELDS) {
    return tooComplex(
      `the schema (__schema) asked for ${measure.schemaFields} times, more than the maximum of ${MAX_SCHEMA_FIELDS} (not a setting: ask for it once)`,
      'SCHEMA_FIELDS',
      measure.schemaFields,
      MAX_SCHEMA_FIELDS,
    );
  }
  if (measure.introspectionAliases > MAX_INTROSPECTION_ALIASES) {
    const count = measure.introspectionAliases;
    return tooComplex(
      `${count} ${count === 1 ? 'alias' : 'aliases'} inside introspection (__schema, __type), more than the maximum of ${MAX_INTROSPECTION_ALIASES} (not a setting: each answers its part of the schema again)`,
      'INTROSPECTION_ALIASES',
      count,
      MAX_INTROSPECTION_ALIASES,
    );
  }
  for (const check of CHECKS) {
    const value = measure[check.measure];
    const maximum = limits[check.limit];
    if (value > maximum) {
      const shown = shownFigure(value);
      return tooComplex(`${check.label} ${shown}, more than the maximum of ${maximum} (${check.setting})`, check.setting, shown, maximum);
    }
  }
  return undefined;
}

/**
 * The `QUERY_TOO_COMPLEX` error for a document whose fields and fragments merge in more pairs than graphql-js's
 * merge check should compare (`MAX_MERGED_PAIRS`), or in more ways than are counted (`MAX_SELECTIONS_VISITED`,
 * as `checkLimits` words it), or `undefined`: checked before validation (`mergingWork`).
 */
export function mergingRefusal(work: MergingWork): GraphQLError | undefined {
  if (work.visited > MAX_SELECTIONS_VISITED) {
    return tooManySelectionsVisited(work.visited);
  }
  if (work.pairs > MAX_MERGED_PAIRS) {
    return tooComplex(
      `${work.pairs} pairs of fields of one name, or of fragments, where they merge into one place of the answer, more than the maximum of ${MAX_MERGED_PAIRS} (not a setting: select each field and spread each fragment fewer times in one place)`,
      'MERGED_PAIRS',
      work.pairs,
      MAX_MERGED_PAIRS,
    );
  }
  return undefined;
}

/** MERGED_SELECTIONS: counting how fields merge (before validation, or measuring after it) visited more than it may. */
function tooManySelectionsVisited(visited: number): GraphQLError {
  return tooComplex(
    `its fields merge across fragments in more ways than the gateway measures (more than ${MAX_SELECTIONS_VISITED} selections to visit; not a setting)`,
    'MERGED_SELECTIONS',
    visited,
    MAX_SELECTIONS_VISITED,
  );
}

function tooComplex(what: string, limit: string, value: number | string, maximum: number): GraphQLError {
  return new GraphQLError(`The operation is too complex: ${what}.`, {
    // `http` sets the status of the response; Apollo strips it from the error before it is sent.
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit, value, maximum, http: { status: 400 } },
  });
}

/**
 * Refuses an operation over the limits once Apollo has parsed, validated and picked it, before its context's
 * resolvers run, so a refused operation never reaches the upstream.
 *
 * A plugin, not a validation rule: Apollo rewrites every validation error's code to
 * GRAPHQL_VALIDATION_FAILED, and validation cannot see the variables a `first: $n` depends on. Apollo's
 * document cache hands back the same document object for a repeated query, so measures that do not depend
 * on variables are kept per document and operation, and a repeated query costs one map lookup.
 */
export function operationLimitsPlugin(
  limits: OperationLimits,
  logger: Logger,
): ApolloServerPlugin<{ requestId: string; lists: ListLengthBudget }> {
  const cache = new WeakMap<DocumentNode, Map<OperationDefinitionNode, OperationMeasure>>();
  const measured = (
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Record<string, unknown> | undefined,
  ): OperationMeasure => {
    const known = cache.get(document)?.get(operation);
    if (known) return known;
    const measure = measureOperation(schema, document, operation, variables);
    if (!measure.usesVariables) {
      let operations = cache.get(document);
      if (!operations) cache.set(document, (operations = new Map()));
      operations.set(operation, measure);
    }
    return measure;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          // No operation: Apollo answers that itself, before anything runs.
          if (!operation) return;
          const measure = measured(schema, document, operation, request.variables);
          const refusal = checkLimits(measure, limits);
          if (refusal) {
            logger.info('operation refused as too complex', {
              requestId: contextValue.requestId,
              limit: refusal.extensions['limit'],
              depth: shownFigure(measure.depth),
              aliases: measure.aliases,
              longestAlias: measure.longestAlias,
              rootFields: measure.rootFields,
              schemaFields: measure.schemaFields,
              introspectionAliases: measure.introspectionAliases,
              cost: shownFigure(measure.cost),
              selectionsVisited: measure.selectionsVisited,
            });
            throw refusal;
          }
          contextValue.lists.plan(measure, maxListOverrun(limits), (overrun) => {
            logger.warn('operation has lists longer than its cost allows: they fail', { requestId: contextValue.requestId, ...overrun });
          });
        },
      };
    },
  };
}

// graphql-js 16 words it "more that N tokens".
const TOO_MANY_TOKENS = /^Syntax Error: Document contains more tha[nt] \d+ tokens\./;

/** Whether a parse error is graphql-js stopping at `maxTokens` (a limit's refusal, not a syntax error). */
export function isTokenLimitError(message: string): boolean {
  return TOO_MANY_TOKENS.test(message);
}

/** The `QUERY_TOO_COMPLEX` answer for a document over `maxTokens`, in the words of the other limits. */
export function tokenLimitRefusal(maxTokens: number): GraphQLFormattedError {
  return {
    message: `The operation is too complex: more than the maximum of ${maxTokens} tokens (MAX_QUERY_TOKENS).`,
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'MAX_QUERY_TOKENS', maximum: maxTokens },
  };
}

/**
 * The answer for a document whose text has more line breaks than `maxLines` (MAX_QUERY_TOKENS: one token a
 * line at most), or `undefined`. Line breaks are no tokens (blank lines, comments, a block string's lines), and
 * graphql-js gives each error the line of each node it names by counting the line breaks before that node from
 * the start of the text: 900 errors under 500,000 blank lines (a 500 KB body, 2,000 tokens) held the event loop
 * 13 s, 100 validation errors 3.6 s. Checked on the text, before it is parsed.
 */
export function documentLinesRefusal(text: string, maxLines: number): GraphQLFormattedError | undefined {
  const lines = lineBreaks(text);
  if (lines <= maxLines) return undefined;
  return {
    message: `The operation is too complex: its text has ${lines} line breaks, more than the maximum of ${maxLines} (as many as MAX_QUERY_TOKENS).`,
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'DOCUMENT_LINES', value: lines, maximum: maxLines },
  };
}

/** Line breaks as graphql-js counts lines: `\r\n` is one, and so is a lone `\n` or `\r`. */
function lineBreaks(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === LINE_FEED) count++;
    else if (code === CARRIAGE_RETURN) {
      count++;
      if (text.charCodeAt(i + 1) === LINE_FEED) i++;
    }
  }
  return count;
}

const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * The answer that replaces one larger than `MAX_ANSWER_BYTES` (`bytes` unknown: larger than one JavaScript
 * string can hold, so it could not even be made): `data: null` when the operation ran, and the message says
 * so, since a mutation in it took effect; `extensions`, what the answer replaced must still tell (its writes made).
 */
export function answerTooLargeBody(bytes: number | undefined, maximum: number, ran: boolean, extensions?: Record<string, unknown>): string {
  const size = bytes === undefined ? 'more than one JavaScript string can hold (512 MiB)' : `${bytes} bytes`;
  const error: GraphQLFormattedError = {
    message:
      `The answer is too large to send: ${size}, more than the maximum of ${maximum} (MAX_ANSWER_BYTES). ` +
      (ran ? 'The operation ran (any mutation in it took effect); ask for fewer items or fields.' : 'Its errors were not sent.'),
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'MAX_ANSWER_BYTES', ...(bytes === undefined ? {} : { value: bytes }), maximum },
  };
  return `${JSON.stringify(ran ? { errors: [error], data: null, ...(extensions === undefined ? {} : { extensions }) } : { errors: [error] })}\n`;
}

/**
 * The most upstream requests one operation may send, retries included: twice what its estimated cost allows
 * at most (a request weighs COST.upstream). The estimate is checked before the operation runs; this ceiling
 * holds while it runs, for what the estimate cannot foresee: retries, or a server that sends a used token's
 * account as a bare id, whose embedded fields then cost a request each.
 */
export function upstreamRequestBudget(limits: OperationLimits): number {
  return 2 * Math.ceil(limits.maxCost / COST.upstream);
}

/**
 * The most the items of lists longer than the estimate assumed may add to an operation's cost while it runs
 * (ListLengthBudget): twice `MAX_QUERY_COST`, as for the request budget, whatever the estimate came to, so
 * that the heaviest operation the estimate allows still has room for a few long lists.
 */
function maxListOverrun(limits: OperationLimits): number {
  return 2 * limits.maxCost;
}

/** The limits of one gateway: its overrides over the defaults. */
export function resolveLimits(overrides: Partial<OperationLimits> | undefined): OperationLimits {
  const limits = { ...DEFAULT_OPERATION_LIMITS };
  for (const [name, value] of Object.entries(overrides ?? {}) as Array<[keyof OperationLimits, number | undefined]>) {
    if (value !== undefined) limits[name] = value;
  }
  return limits;
}
