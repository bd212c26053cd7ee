import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import { getOperationAST, GraphQLError, type ASTVisitor, type DocumentNode, type GraphQLFormattedError, type Token, type ValidationContext } from 'graphql';
import type { GatewayContext } from './context.ts';
import { callerCodeOf, ErrorCode, HttpRefusalCode, OPERATION_CODES } from '../errors.ts';
import {
  isTokenLimitError,
  MAX_MERGED_PAIRS,
  MAX_SELECTIONS_VISITED,
  mergingRefusal,
  mergingWork,
  operationLimitsPlugin,
  tokenLimitRefusal,
  type OperationLimits,
} from '../limits/index.ts';
import { MAX_NESTING, nestingProblem, type FragmentCycle } from '../limits/nesting.ts';
import { errorFields, messageOf, type Logger } from '../logging/logger.ts';
import { nullVariablesPlugin } from '../resolvers/null-variables.ts';
import { numericIdsPlugin } from '../resolvers/numeric-ids.ts';
import { mutationPrecheckPlugin } from '../resolvers/precheck.ts';
import { buildSchema } from './schema.ts';
import { cutEnd } from '../support/shortened.ts';
import { withHalfPairsReplaced } from '../support/unseen-characters.ts';

/**
 * The Apollo Server the HTTP layer hands `/graphql` to: the schema, the operation limits, the document cache,
 * and the rules by which an error reaches a caller (its code, its wording, masked when unexpected) and the log.
 */

/**
 * The answer for a document the parser could not read for its nesting (`parserOutOfStack`), or that nests past
 * `MAX_NESTING` (`safeToValidateRule`): no setting governs it.
 */
const NESTED_TOO_DEEPLY: GraphQLFormattedError = {
  message: 'The operation is too complex: it is nested too deeply to be read (its lists, objects or selections).',
  extensions: { code: ErrorCode.QUERY_TOO_COMPLEX },
};

/** `safeToValidateRule`'s refusal, which Apollo hands on as a validation error's `originalError`. */
class NestedTooDeeply extends GraphQLError {}

/** `safeToValidateRule`'s refusal of a limit that is no setting, in the words, `limit`, `value` and `maximum` of those checked after validation. */
class TooComplexToValidate extends GraphQLError {}

/**
 * Refuses a document nested past `MAX_NESTING`, or whose fragments spread each other in a cycle, or whose
 * repeated fields and fragments graphql-js's check that fields can be merged would compare in too many pairs
 * (`mergingWork`: ~200 ms of it within every default limit, the same document answered 200), before
 * graphql-js's own rules read it. They read nesting and follow spreads recursively: out of stack, validation
 * threw a RangeError past Apollo's pipeline, answered 500 (and fragment chains a little short of that overflowed
 * execution instead, 200 with an unexpected error). A cycle is reported as graphql-js words it, the only error
 * of its document. Apollo validates only a document not in its document cache, so a repeated operation does not
 * pay for this.
 *
 * A rule, as plugins cannot answer from before validation (what one throws there Apollo answers 500). Apollo
 * runs its rules after graphql-js's, all in one walk of the document, each node's in turn; the document node is
 * the walk's first, and none of graphql-js's rules recurse there. Returning a value that is no node "replaces"
 * it (validation ignores the result) and the walk does not go into it, for every rule: `false` would skip it
 * for this rule alone. (With Apollo's `maxRecursiveSelections` set, it would run `validationRules` only after
 * graphql-js's rules passed: too late for this one.)
 */
function safeToValidateRule(context: ValidationContext): ASTVisitor {
  return {
    Document(document) {
      const problem = nestingProblem(document, MAX_NESTING);
      if (problem !== undefined) {
        context.reportError(problem === 'too deep' ? new NestedTooDeeply(NESTED_TOO_DEEPLY.message, { extensions: NESTED_TOO_DEEPLY.extensions }) : cycleError(problem));
        return null;
      }
      // Only once no cycle is left for the count to follow.
      const refusal = mergingRefusal(mergingWork(document, MAX_MERGED_PAIRS, MAX_SELECTIONS_VISITED));
      if (refusal === undefined) return undefined;
      context.reportError(new TooComplexToValidate(refusal.message, { extensions: refusal.extensions }));
      return null;
    },
  };
}

/** graphql-js's own error for a cycle of fragments (NoFragmentCyclesRule), in its words. */
function cycleError({ spread, via, nodes }: FragmentCycle): GraphQLError {
  const path = via.map((name) => `"${name}"`).join(', ');
  return new GraphQLError(`Cannot spread fragment "${spread}" within itself${path === '' ? '.' : ` via ${path}.`}`, { nodes });
}

/** `safeToValidateRule`'s refusal of a limit that is no setting as it is answered, or `undefined` for any other error. */
function tooComplexToValidate(error: unknown): GraphQLFormattedError | undefined {
  if (!(error instanceof GraphQLError) || !(error.originalError instanceof TooComplexToValidate)) return undefined;
  const { limit, value, maximum } = error.originalError.extensions;
  return { message: error.originalError.message, extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit, value, maximum } };
}

/** Whether `error` is Apollo's validation error for `safeToValidateRule`'s refusal of a document nested too deeply. */
function isNestedTooDeeply(error: unknown): boolean {
  return error instanceof GraphQLError && error.originalError instanceof NestedTooDeeply;
}

/**
 * The answer for a document graphql-js stopped validating past its own budget of work (graphql 16.15: its
 * check that fields can be merged counts the pairs it compares, and the rules that follow fragments from each
 * operation count the fragments), which it words `Validation aborted.` alone. No setting governs it; the
 * caller learns what to send less of.
 */
const VALIDATION_ABORTED: GraphQLFormattedError = {
  message:
    'The operation is too complex to validate: graphql-js gave up checking it past its budget of work (fields of one name, or fragments, compared in pairs where they merge; fragments followed from each operation). Select each field and spread each fragment fewer times.',
  extensions: { code: ErrorCode.QUERY_TOO_COMPLEX },
};

/**
 * Whether `error` is graphql-js giving up past its budget of work: one error, of its exact words and no
 * location, that Apollo hands on as a validation error. (Past MAX_VALIDATION_ERRORS errors it words its stop "Too many validation
 * errors, …": those are the caller's errors, answered as they are.)
 */
function isValidationAborted(error: unknown): boolean {
  return error instanceof GraphQLError && error.extensions['code'] === 'GRAPHQL_VALIDATION_FAILED' && error.message === 'Validation aborted.';
}

/** The longest error message answered; longer ones (quoting a caller's large value) are cut. */
const MAX_MESSAGE_LENGTH = 1_000;

/** The document cache's size, as `documentSize` measures it: about the heap its documents hold. */
const DOCUMENT_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * A cached document's heap, estimated: the JSON of its syntax tree three times over (its nodes and their
 * locations take about that), the text it was parsed from, each token it was read from, the index of its lines
 * that locating an error makes (`error-locations.ts`), and what every entry holds besides (its key, the LRU's
 * bookkeeping, the limits' measures of it). Measured in a gateway, `{ __typename }` holds ~3 KB, a page of 100
 * accounts with their sources and tokens ~14.5 KB. The tree's locations keep the text alive (a 900 KB comment
 * around `{ __typename }` counted by its JSON alone cost a few bytes of the cache's budget) and every token,
 * comments included, linked one to the next: one comment a line, as many as `MAX_QUERY_TOKENS` allows line
 * breaks and none of them counted as tokens, is ~90 bytes each. Counted by its JSON and text alone, such a
 * document (6 KB of text) held ~270 KB: the cache's 4 MiB held ~180 MB, and one caller sending distinct ones,
 * one at a time, ran a gateway started with `--max-old-space-size=96` out of memory within 300 requests.
 */
function documentSize(document: DocumentNode): number {
  const { tokens, lines } = tokensOf(document);
  return 3 * InMemoryLRUCache.sizeCalculation(document) + (document.loc?.source.body.length ?? 0) + TOKEN_BYTES * tokens + LINE_BYTES * lines + DOCUMENT_ENTRY_BYTES;
}

/** A token's heap, the string of its value included (a comment's, a name's), rounded up from ~86 measured. */
const TOKEN_BYTES = 96;

/** A line's place in the index of a document's lines, made when an error in it is located. */
const LINE_BYTES = 4;

/** What a cached document holds whatever its size, rounded down from ~1.2 KB measured. */
const DOCUMENT_ENTRY_BYTES = 1024;

/** The tokens `document` was read from, comments included, as its location keeps them, and its lines (none without a location). */
function tokensOf(document: DocumentNode): { tokens: number; lines: number } {
  let tokens = 0;
  let lines = 0;
  // The last is the end of the text, on its last line.
  for (let token: Token | null | undefined = document.loc?.startToken; token; token = token.next) {
    tokens++;
    lines = token.line;
  }
  return { tokens, lines };
}

/** The cache of parsed, validated documents: see `documentSize`. */
export function documentCache(): InMemoryLRUCache<DocumentNode> {
  return new InMemoryLRUCache<DocumentNode>({ maxSize: DOCUMENT_CACHE_BYTES, sizeCalculation: documentSize });
}

/** The automatic persisted queries' cache's size, as `persistedQuerySize` measures it. */
const PERSISTED_QUERY_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * What one persisted query holds besides its text: its key (`apq:` and a SHA-256 in hex, 68 characters) and
 * the LRU's bookkeeping, ~180 bytes of heap measured, rounded up.
 */
const PERSISTED_QUERY_ENTRY_BYTES = 256;

/**
 * A persisted query's size: its text, as Apollo measures it, plus what its entry holds besides. Apollo's
 * default cache counts the text alone, up to 30 MiB: registering distinct small queries (`{ __typename } #1`,
 * #2, …, any valid token may) kept ~230 bytes of heap each while counting ~18, two million of them ~450 MB
 * held for good; and distinct large ones pinned the 30 MiB of text the document cache is kept from pinning.
 */
function persistedQuerySize(query: string): number {
  return query.length + PERSISTED_QUERY_ENTRY_BYTES;
}

/** The cache of the queries clients registered with a hash (automatic persisted queries): see `persistedQuerySize`. */
export function persistedQueryCache(): InMemoryLRUCache<string> {
  return new InMemoryLRUCache<string>({ maxSize: PERSISTED_QUERY_CACHE_BYTES, sizeCalculation: persistedQuerySize });
}

/**
 * The code a caller sees for an error that reached Apollo, or `undefined` for an unexpected one (a bug, to
 * mask and log): the gateway's own codes; Apollo's and graphql-js's refusals of an operation; and Apollo's
 * refusals of a malformed request that carry no code, only a 4xx status (a persisted query's wrong hash or
 * version), as BAD_REQUEST. graphql-js stopping at `maxTokens`, or past its budget of validation work, is a
 * limit: QUERY_TOO_COMPLEX.
 */
function publicCode(error: unknown): string | undefined {
  const own = callerCodeOf(unwrapResolverError(error));
  if (own !== undefined) return own;
  if (!(error instanceof GraphQLError)) return undefined;
  const code = error.extensions['code'];
  if (code === 'GRAPHQL_PARSE_FAILED' && (isTokenLimitError(error.message) || parserOutOfStack(error))) return ErrorCode.QUERY_TOO_COMPLEX;
  if (isNestedTooDeeply(error) || isValidationAborted(error) || tooComplexToValidate(error)) return ErrorCode.QUERY_TOO_COMPLEX;
  // graphql-js's last word after 50 bad variable values: still the caller's input, not a bug.
  if (code === undefined && error.message.startsWith('Too many errors processing variables')) return ErrorCode.BAD_USER_INPUT;
  if (typeof code === 'string' && OPERATION_CODES.has(code)) return code;
  const status = (error.extensions['http'] as { status?: unknown } | undefined)?.status;
  if (code === undefined && typeof status === 'number' && status >= 400 && status < 500) return HttpRefusalCode.BAD_REQUEST;
  return undefined;
}

/**
 * Whether graphql-js's parser ran out of stack: it reads nested lists, objects and selections recursively, and
 * a document nested a few thousand levels deep (well within `MAX_QUERY_TOKENS`' maximum) overflows it before
 * its token count reaches the limit. Apollo wraps the RangeError in a GraphQLError, then in its SyntaxError.
 */
function parserOutOfStack(error: GraphQLError): boolean {
  let cause: unknown = error.originalError;
  for (let depth = 0; depth < 3 && cause instanceof Error; depth++) {
    if (cause instanceof RangeError) return true;
    cause = (cause as { originalError?: unknown }).originalError;
  }
  return false;
}

/** The setting whose limit an error with this public code reports (`extensions.limit`), for the operation's log line. */
function limitNamedBy(error: GraphQLError, code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  const limit = error.extensions['limit'];
  if (typeof limit === 'string') return limit;
  // Refused by graphql-js's parser; `formatError` answers it as the MAX_QUERY_TOKENS refusal.
  return code === ErrorCode.QUERY_TOO_COMPLEX && isTokenLimitError(error.message) ? 'MAX_QUERY_TOKENS' : undefined;
}

/** Validation errors answered at most, then graphql-js's own `Too many validation errors, …`: enough to fix a document by. */
const MAX_VALIDATION_ERRORS = 20;

export interface ApolloSettings {
  limits: OperationLimits;
  /** The answer for a result larger than one JavaScript string can hold (the HTTP layer logs it). */
  unmakeableAnswer: string;
  logger: Logger;
  /** Stack traces in answers and in the log line of an unexpected error. */
  development: boolean;
  introspection: boolean;
}

/** Apollo Server for the gateway; the caller starts it. */
export function createApollo({ limits, unmakeableAnswer, logger, development, introspection }: ApolloSettings): ApolloServer<GatewayContext> {
  return new ApolloServer<GatewayContext>({
    schema: buildSchema(),
    parseOptions: { maxTokens: limits.maxTokens },
    includeStacktraceInErrorResponses: development,
    introspection,
    // Without introspection formatError cuts graphql-js's suggestions of the names nearest a misspelt one: not
    // asked for, they cost nothing. Its suggesting allocates four arrays the length of the caller's name, whatever
    // the names it is compared with: a misspelt name of 1 MiB held the event loop ~150 ms, 10 times the same body
    // as a string.
    // At most MAX_VALIDATION_ERRORS errors: graphql-js finds each one's line by reading the text from its start to
    // the first line break past it, so each costs up to the whole text (~0.6 ms a MB): its own maximum, 100, under a
    // 1 MB comment took ~110 ms of CPU a request, against ~25 ms for the same body valid.
    validationOptions: { hideSuggestions: !introspection, maxErrors: MAX_VALIDATION_ERRORS },
    validationRules: [safeToValidateRule],
    // start.ts owns the stop signals; Apollo's own handlers (on unless NODE_ENV=test) re-raise the signal into
    // main's handler mid-shutdown and the process never exits.
    stopOnTerminationSignals: false,
    // Parsed, validated documents are cached so a repeated operation skips both steps. Apollo's default
    // cache holds 30 MiB as measured on the documents' JSON, several times that in heap: a client sending
    // distinct large documents (even ones the limits then refuse) could pin it all. Frontends send a fixed
    // set of operations, which fit many times over in this (documentSize: ~290 pages of 100 accounts).
    documentStore: documentCache(),
    // Queries registered by hash: Apollo's default cache counts their text alone, up to 30 MiB (persistedQuerySize).
    persistedQueries: { cache: persistedQueryCache() },
    logger: apolloLogger(logger),
    // Apollo's own (JSON.stringify and a newline), except that a result larger than one string can hold
    // (possible within every limit when the upstream's values are large) gets an answer saying so, where
    // Apollo's error path would answer a masked 500 that no plugin sees. The HTTP layer logs it and applies
    // MAX_ANSWER_BYTES to every other answer.
    stringifyResult: (result) => {
      try {
        return `${JSON.stringify(result)}\n`;
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        return unmakeableAnswer;
      }
    },
    plugins: [
      ApolloServerPluginLandingPageDisabled(),
      // The schema has no @cacheControl hints, so Apollo's default cache-control plugin only costs: it wraps
      // every field resolver with a per-field hook (~10% of the fan-out's CPU and allocations, bench/README.md).
      ApolloServerPluginCacheControlDisabled(),
      // Apollo installs these by itself when the environment asks: APOLLO_KEY and APOLLO_GRAPH_REF (set for
      // another service of the same deployment, say) would send every operation's shape and timing to Apollo
      // Studio, and APOLLO_SCHEMA_REPORTING=true without a key would stop the gateway from starting. The
      // gateway reports to no one its configuration does not name. Inline traces are for federated subgraphs,
      // which this schema is not: off, their hook no longer runs on each request.
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      // In this order: Apollo runs every plugin's didResolveOperation at once (Promise.all) and answers the
      // refusal that settles first; of those thrown before any await (the limits' and the variable checks'),
      // the first in this list. So an operation past a limit is refused for it whatever else is wrong with it,
      // and the mutation precheck, which refuses only after an await, answers only when neither refused.
      operationLimitsPlugin(limits, logger),
      nullVariablesPlugin(),
      numericIdsPlugin(),
      mutationPrecheckPlugin(),
      outcomePlugin(logger, development),
    ],
    formatError: (formatted, error) => formatForCaller(formatted, error, { limits, development, introspection }),
  });
}

/**
 * The gateway's logger as Apollo calls it: Apollo passes an Error itself in a few places (a plugin's throw while it
 * stops or loads its schema), which the JSON line wrote as `"message":{}`. Its message is written instead, never its
 * stack (kept out of every line as errorFields keeps it).
 */
export function apolloLogger(logger: Logger): Logger {
  const said = (message: unknown) => (typeof message === 'string' ? message : messageOf(message));
  return {
    announce: (level, message, fields) => logger.announce(level, message, fields),
    enabled: (level) => logger.enabled(level),
    debug: (message, fields) => logger.debug(said(message), fields),
    info: (message, fields) => logger.info(said(message), fields),
    warn: (message, fields) => logger.warn(said(message), fields),
    error: (message, fields) => logger.error(said(message), fields),
  };
}

/**
 * Notes the operation's outcome for its log line (its name, every error's code and limit), refuses a
 * subscription, and logs anything unexpected: once, with the request id that the masked error lacks, and the
 * field it failed on. The stack trace only in development: the contract keeps them out of every log line
 * otherwise.
 */
function outcomePlugin(logger: Logger, development: boolean): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operationName, operation, contextValue, document, request }) {
          // No operation picked (`operationName` naming none of the document's): refused as it would execute.
          contextValue.outcome.operationName = operation === undefined ? intendedOperationName(document, request.operationName) : operationName;
          // graphql-js validates a subscription against a schema without any, and fails it only as it runs.
          if (operation?.operation === 'subscription') {
            throw new GraphQLError('This gateway serves queries and mutations; its schema has no subscriptions', {
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400 } },
            });
          }
        },
        async didEncounterErrors({ errors, contextValue, document, request }) {
          // Refused before its operation was picked (a document that does not validate, a limit, an unknown persisted
          // query): named by the document's operation, or the name its caller sent, as the operation it meant.
          if (contextValue.outcome.operationName === undefined) contextValue.outcome.operationName = intendedOperationName(document, request.operationName);
          for (const error of errors) {
            const original = unwrapResolverError(error);
            const code = publicCode(error);
            contextValue.outcome.errorCodes.add(code ?? ErrorCode.INTERNAL_SERVER_ERROR);
            const limit = limitNamedBy(error, code);
            if (limit !== undefined) contextValue.outcome.limits.add(limit);
            if (code === undefined) {
              logger.error('unexpected error', {
                requestId: contextValue.requestId,
                path: error.path?.join('.'),
                ...errorFields(original, development),
              });
            }
          }
        },
      };
    },
  };
}

/**
 * The name of the operation a refused request meant: the one `operationName` picks from the document (or its only
 * one), else the `operationName` sent (no document: it did not parse, or a persisted query the gateway lacks; or
 * one that names none of the document's operations, which an operator searches the log for by that name).
 */
function intendedOperationName(document: DocumentNode | undefined, sent: string | undefined): string | null {
  const named = document === undefined ? undefined : getOperationAST(document, sent)?.name?.value;
  return named ?? (typeof sent === 'string' ? sent : null);
}

/**
 * What a caller is shown of an error: a contract code on every one (anything else is masked as an unexpected
 * error), the limits' own wording, and a bounded message.
 */
function formatForCaller(
  formatted: GraphQLFormattedError,
  error: unknown,
  { limits, development, introspection }: Pick<ApolloSettings, 'limits' | 'development' | 'introspection'>,
): GraphQLFormattedError {
  const code = publicCode(error);
  if (code === undefined) {
    return {
      message: 'Unexpected error.',
      locations: formatted.locations,
      path: formatted.path,
      extensions: {
        code: ErrorCode.INTERNAL_SERVER_ERROR,
        ...(development ? { stacktrace: formatted.extensions?.['stacktrace'] } : {}),
      },
    };
  }
  if (isNestedTooDeeply(error)) return NESTED_TOO_DEEPLY;
  if (isValidationAborted(error)) return VALIDATION_ABORTED;
  const refused = tooComplexToValidate(error);
  if (refused) return refused;
  if (code === ErrorCode.QUERY_TOO_COMPLEX && formatted.extensions?.['code'] === 'GRAPHQL_PARSE_FAILED') {
    return error instanceof GraphQLError && parserOutOfStack(error) ? NESTED_TOO_DEEPLY : tokenLimitRefusal(limits.maxTokens);
  }
  const recoded = code === formatted.extensions?.['code'] ? formatted : { ...formatted, extensions: { ...formatted.extensions, code } };
  const worded = withOurWording(introspection ? recoded : withoutSuggestions(recoded));
  // A caller's text quoted whole (`Unknown operation named "…"`) may hold half a surrogate pair, which JSON spells
  // as an escape of no character that strict readers (serde_json, jq 1.6) refuse, the whole answer with it.
  const message = withHalfPairsReplaced(worded.message);
  const shown = message === worded.message ? worded : { ...worded, message };
  // graphql-js quotes a caller's whole value in its messages: each is kept to a readable length, cut between
  // characters (a lone half of an emoji's surrogate pair would reach the client as an escape of no character).
  if (shown.message.length <= MAX_MESSAGE_LENGTH) return shown;
  const end = cutEnd(shown.message, MAX_MESSAGE_LENGTH);
  return { ...shown, message: `${shown.message.slice(0, end)}… (${shown.message.length - end} more characters)` };
}

/**
 * graphql-js suggests the schema's names nearest a misspelt one (`Cannot query field "acount" on type "Query".
 * Did you mean "account"?`), in validation errors and in those of a variable's value alike. With introspection
 * off the schema is not the caller's to explore, by guessing either. (Apollo's `hideSchemaDetailsFromClientErrors`
 * does it for validation errors only, and adds a plugin hook to every request; here only an error pays.)
 */
function withoutSuggestions(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const message = withoutSuggestion(formatted.message);
  return message === formatted.message ? formatted : { ...formatted, message };
}

const SUGGESTION = 'Did you mean ';

/**
 * The message without the suggestion graphql-js ends it with. Found from the end, as the last "Did you mean ":
 * a message quotes the caller's values, which may hold the words too. (A regular expression anchored at the
 * end only, `/ ?Did you mean .+\?$/`, tried each of them in turn, each time to the end of the message:
 * quadratic time, a minute of the event loop for one request of a megabyte, and it cut the message at the
 * caller's words rather than graphql-js's.)
 */
function withoutSuggestion(message: string): string {
  const at = message.lastIndexOf(SUGGESTION);
  if (at < 0 || !message.endsWith('?')) return message;
  return message.slice(0, message[at - 1] === ' ' ? at - 1 : at);
}

/**
 * Apollo's refusal of introspection tells the caller to "pass introspection: true to ApolloServer": advice
 * for the gateway's code, not its callers. They get the setting's name instead.
 */
function withOurWording(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (formatted.extensions?.['code'] === 'GRAPHQL_VALIDATION_FAILED' && formatted.message.startsWith('GraphQL introspection is not allowed')) {
    return { ...formatted, message: 'Introspection is off on this gateway (its operator can set INTROSPECTION=true); generate clients from the schema.graphql published with the gateway’s source and releases instead' };
  }
  return formatted;
}
