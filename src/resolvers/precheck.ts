import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import {
  getArgumentValues,
  getVariableValues,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type FieldNode,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { GatewayContext } from '../graphql/context.ts';
import { fragmentsByName, type FragmentsByName } from '../graphql/document-fragments.ts';
import { callerCodeOf, ErrorCode } from '../errors.ts';
import { messageOf } from '../logging/logger.ts';
import { CallChecked } from '../loaders/request-api.ts';
import { Mutation } from './Mutation.ts';
import { isIncluded } from '../graphql/skip-include.ts';
import { byResponseKey, childFields, responseKey } from './selection.ts';
import { reportWritesMade } from './writes-made.ts';

/**
 * Checks every write of a mutation before the first is made, then takes them from the caller's budget.
 * graphql-js runs a mutation's fields one after another, and its payloads are non-null: a later field refused
 * by the gateway's own checks (its input, the caller's scope, an id no URL can carry) would answer `data: null`
 * after the earlier fields had written upstream, their results (new ids, tokens) unreported, and a client
 * retrying would make them again. So each field's resolver first runs against a check-only API
 * (`RequestApi.forChecks`: every check, no request). With several fields, the first refusal refuses the whole
 * operation, nothing written, with that field's error and path, and the HTTP status of its code (a check
 * that fails unexpectedly, a bug, refuses it as an unexpected error, 500); one field alone is left to fail
 * as it runs (its refusal is all that happens, a field error as for any), unless its refusal would come only
 * after its write (`unreadableDirective`). Only when every write passed are
 * they reserved, all together, from `CALLER_WRITES_PER_HOUR` (`RequestApi.reserveWrites`, refused whole with
 * 429 when they do not all fit), so that a mutation that can never succeed is told why, not to wait an hour;
 * what the operation did not spend is given back when it ends.
 */
export function mutationPrecheckPlugin(): ApolloServerPlugin<GatewayContext> {
  // It keeps nothing per request: one listener serves them all (a query pays calls that return at once).
  const listener: GraphQLRequestListener<GatewayContext> = {
    async didResolveOperation({ schema, document, operation, request, contextValue }) {
      if (operation?.operation !== OperationTypeNode.MUTATION) return;
      const checked = await checkWrites(schema, document, operation, request.variables, contextValue);
      if (checked === undefined) return;
      if (checked.refusal === undefined) contextValue.api.reserveWrites(checked.writes);
      else if (checked.writes > 1 || checked.afterWrites) throw checked.refusal;
    },
    // Run or refused, the operation is over: what it reserved and did not write is given back. Refused by
    // another plugin, this may come while its writes are still being checked: RequestApi then reserves none.
    async willSendResponse({ contextValue, response }) {
      contextValue.api.releaseUnspentWrites();
      reportWritesMade(response, contextValue.outcome.writesMade);
    },
  };
  return {
    async requestDidStart() {
      return listener;
    },
  };
}

/** The HTTP status of a whole operation refused for one of its fields (the checks raise these two). */
const REFUSAL_STATUS: Partial<Record<string, number>> = { [ErrorCode.BAD_USER_INPUT]: 400, [ErrorCode.FORBIDDEN]: 403 };

/**
 * What the checks found: how many writes the mutation makes and the first refusal, if any. `afterWrites`: as it
 * runs, the operation would meet this refusal only once the write it names is made, so it is refused whole
 * however many writes it makes.
 */
interface CheckedWrites {
  writes: number;
  refusal: GraphQLError | undefined;
  afterWrites?: boolean;
}

/**
 * How many writes the mutation makes and the first of them the checks refuse, or `undefined` when execution
 * refuses the operation itself before any field runs (variables or a directive's argument that do not fit).
 */
async function checkWrites(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  rawVariables: Record<string, unknown> | undefined,
  context: GatewayContext,
): Promise<CheckedWrites | undefined> {
  const mutationType = schema.getMutationType();
  const { coerced } = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  if (mutationType == null || coerced === undefined) return undefined;
  const fragments = fragmentsByName(document);
  let nodes: FieldNode[];
  try {
    nodes = writeFields(fragments, operation, mutationType, coerced);
  } catch {
    // A directive's argument refused (`@skip(if: $s)` with `{"s": null}`): execution refuses the operation
    // itself, collecting its fields the same way, before any field runs.
    return undefined;
  }
  const fields = byResponseKey(nodes);
  const unreadable = unreadableDirective(nodes, fragments, coerced);
  if (unreadable !== undefined) return { writes: fields.length, refusal: unreadable, afterWrites: true };
  // One write of a caller no budget counts: nothing to refuse ahead of it, nothing to reserve.
  if (fields.length < 2 && !context.api.countsWrites) return { writes: fields.length, refusal: undefined };
  const api = context.api.forChecks();
  for (const [key, node] of fields) {
    const resolve = Mutation[node.name.value as keyof typeof Mutation];
    const definition = mutationType.getFields()[node.name.value];
    if (typeof resolve !== 'function' || definition === undefined) continue;
    try {
      await resolve({}, getArgumentValues(definition, node, coerced) as never, { ...context, api });
    } catch (error) {
      if (error instanceof CallChecked) continue;
      const code = callerCodeOf(error);
      if (code === undefined || !(error instanceof GraphQLError)) {
        // A bug in the field's checks, which it would meet again as it runs, after the writes before it: it
        // refuses the operation as any unexpected error fails a field (masked, logged with its path).
        return { writes: fields.length, refusal: new GraphQLError(messageOf(error), { nodes: node, path: [key], originalError: error instanceof Error ? error : undefined }) };
      }
      // Located at the write it refuses (`nodes`), as execution locates a field's error: an IDE marks it.
      const refusal = new GraphQLError(`${error.message} (no write of the operation was made)`, {
        nodes: node,
        path: [key],
        extensions: { ...error.extensions, code, http: { status: REFUSAL_STATUS[code] ?? 400 } },
      });
      return { writes: fields.length, refusal };
    }
  }
  return { writes: fields.length, refusal: undefined };
}

/** The mutation's root fields that write, in order, every node of each, `@skip`/`@include` applied. */
function writeFields(fragments: FragmentsByName, operation: OperationDefinitionNode, mutationType: GraphQLObjectType, variableValues: Record<string, unknown>): FieldNode[] {
  return childFields({ fragments, variableValues }, [operation], new Set(Object.keys(mutationType.getFields())), { variables: false });
}

/**
 * The refusal of a `@skip`/`@include` within a write's selection whose argument does not fit (`@include(if: $x)`
 * with `{"x": null}`, through a variable whose default the caller overrode), if any. Execution reads these only
 * as it completes the write's payload, once the write is made: its non-null payload then fails, `data: null`,
 * and the write's result (a new id, a token) is lost to a caller told that its input was refused. Read here as
 * execution would, selections it leaves out unread, each fragment once (variables are the same everywhere).
 */
function unreadableDirective(nodes: readonly FieldNode[], fragments: FragmentsByName, variableValues: Record<string, unknown>): GraphQLError | undefined {
  const visited = new Set<string>();
  const read = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.directives?.length && !isIncluded(selection, variableValues)) continue;
      if (selection.kind !== Kind.FRAGMENT_SPREAD) read(selection.selectionSet);
      else if (!visited.has(selection.name.value)) {
        visited.add(selection.name.value);
        read(fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const node of nodes) {
    try {
      read(node.selectionSet);
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      return new GraphQLError(`${error.message} (no write of the operation was made)`, {
        nodes: node,
        path: [responseKey(node)],
        extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: REFUSAL_STATUS[ErrorCode.BAD_USER_INPUT] } },
      });
    }
  }
  return undefined;
}
