import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import {
  getArgumentValues,
  getDirectiveValues,
  getVariableValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import type { GatewayContext } from '../context.ts';
import { codeOf, ErrorCode, isArgumentRefusal } from '../errors.ts';
import { WriteChecked } from '../loaders/request-api.ts';
import { Mutation } from './Mutation.ts';

/**
 * Checks every write of a mutation before the first is made. graphql-js runs a mutation's fields one after
 * another, and its payloads are non-null: a later field refused by the gateway's own checks (its input, the
 * caller's scope, an id no URL can carry) answered `data: null`, after the earlier fields had written
 * upstream, their results (new ids, tokens) unreported, and a client retrying made them again. So each
 * field's resolver first runs against a check-only API (`RequestApi.forChecks`: every check, no request);
 * the first refusal refuses the whole operation, nothing written, with that field's error and path, and
 * the HTTP status of its code. One write alone needs no such round: its refusal is then all that happens.
 */
export function mutationPrecheckPlugin(): ApolloServerPlugin<GatewayContext> {
  // It keeps nothing per request: one listener serves them all (a query pays one call that returns at once).
  const listener: GraphQLRequestListener<GatewayContext> = {
    async didResolveOperation({ schema, document, operation, request, contextValue }) {
      if (operation?.operation !== OperationTypeNode.MUTATION) return;
      const refusal = await firstRefusal(schema, document, operation, request.variables, contextValue);
      if (refusal) throw refusal;
    },
  };
  return {
    async requestDidStart() {
      return listener;
    },
  };
}

/** The HTTP status of a whole operation refused for one of its fields (the checks raise these two). */
const STATUS: Partial<Record<string, number>> = { [ErrorCode.BAD_USER_INPUT]: 400, [ErrorCode.FORBIDDEN]: 403 };

async function firstRefusal(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  rawVariables: Record<string, unknown> | undefined,
  context: GatewayContext,
): Promise<GraphQLError | undefined> {
  // One field, the usual mutation: its refusal is all that happens, nothing to check ahead of it.
  const [first, ...more] = operation.selectionSet.selections;
  if (more.length === 0 && first?.kind === Kind.FIELD) return undefined;
  const mutationType = schema.getMutationType();
  const { coerced } = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  // Variables that do not fit are refused by execution itself, before any field runs.
  if (mutationType == null || coerced === undefined) return undefined;
  let fields: Array<[string, FieldNode]>;
  try {
    fields = writeFields(document, operation.selectionSet, coerced);
  } catch {
    // A directive's argument refused (`@skip(if: $s)` with `{"s": null}`): execution refuses the operation
    // itself, collecting its fields the same way, before any field runs.
    return undefined;
  }
  if (fields.length < 2) return undefined;
  const api = context.api.forChecks();
  for (const [key, node] of fields) {
    const resolve = Mutation[node.name.value as keyof typeof Mutation];
    const definition = mutationType.getFields()[node.name.value];
    if (typeof resolve !== 'function' || definition === undefined) continue;
    try {
      await resolve({}, getArgumentValues(definition, node, coerced) as never, { ...context, api }, undefined as never);
    } catch (error) {
      if (error instanceof WriteChecked) continue;
      const code = codeOf(error) ?? (isArgumentRefusal(error) ? ErrorCode.BAD_USER_INPUT : undefined);
      // Anything else (a bug) is left to execution, which reports it as it does any.
      if (code === undefined || !(error instanceof GraphQLError)) continue;
      return new GraphQLError(`${error.message} (no write of the operation was made)`, {
        path: [key],
        extensions: { ...error.extensions, code, http: { status: STATUS[code] ?? 400 } },
      });
    }
  }
  return undefined;
}

/** The mutation's root fields that write, in order, by response key (one per key, as execution merges them), `@skip`/`@include` applied. */
function writeFields(document: DocumentNode, set: SelectionSetNode, variables: Record<string, unknown>): Array<[string, FieldNode]> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const fields = new Map<string, FieldNode>();
  const spread = new Set<string>();
  const included = (node: SelectionNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, variables)?.['if'] !== true && getDirectiveValues(GraphQLIncludeDirective, node, variables)?.['if'] !== false;
  const visit = (current: SelectionSetNode): void => {
    for (const selection of current.selections) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        const key = (selection.alias ?? selection.name).value;
        if (selection.name.value !== '__typename' && !fields.has(key)) fields.set(key, selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else if (!spread.has(selection.name.value)) {
        spread.add(selection.name.value);
        const definition = fragments.get(selection.name.value);
        if (definition) visit(definition.selectionSet);
      }
    }
  };
  visit(set);
  return [...fields];
}
