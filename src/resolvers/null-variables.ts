import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import {
  getVariableValues,
  GraphQLError,
  isNonNullType,
  Kind,
  OperationTypeNode,
  TypeInfo,
  ValidationContext,
  visit,
  type ASTNode,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type VariableDefinitionNode,
  type VariableNode,
} from 'graphql';
import { ErrorCode } from '../errors.ts';
import { mayRun } from '../graphql/skip-include.ts';

/** A variable of nullable type that the operation uses where a value is required, and the first such place. */
interface RequiredUse {
  definition: VariableDefinitionNode;
  node: VariableNode;
  type: string;
}

/**
 * Refuses a query before it runs when a variable is null where the operation needs a value: a variable of
 * nullable type with a default may stand where a value is required (`query ($t: ID = "x") { connectToken(token:
 * $t) … }`), and validation passes it; sent as `null` (or defaulting to `null`), every field using it fails as
 * it runs. Under a list that is one error per item, each of which graphql-js locates by reading the text from
 * its start (it raises these before the field's resolver, so `locatingFieldErrors` cannot help): 900 of them
 * under a 1 MB comment took ~760 ms of CPU a request, and an upstream call. Refused whole instead, before any
 * upstream call, `BAD_USER_INPUT`, once; but not for a use under a selection `@skip`/`@include` leave out, which
 * execution never reads (`reachedNullUse`). A mutation's writes are checked before they are made by the mutation
 * precheck, and each field of one fails as it runs, as before (the writes' budget bounds how often).
 */
export function nullVariablesPlugin(): ApolloServerPlugin {
  const requiredUses = new WeakMap<DocumentNode, Map<OperationDefinitionNode, RequiredUse[]>>();
  const usesOf = (schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): RequiredUse[] => {
    let operations = requiredUses.get(document);
    if (operations === undefined) requiredUses.set(document, (operations = new Map()));
    let uses = operations.get(operation);
    if (uses === undefined) operations.set(operation, (uses = findRequiredUses(schema, document, operation)));
    return uses;
  };
  // It keeps nothing per request: one listener serves them all.
  const listener: GraphQLRequestListener<never> = {
    async didResolveOperation({ schema, document, operation, request }) {
      if (operation?.operation !== OperationTypeNode.QUERY) return;
      if (!usesOf(schema, document, operation).some((use) => isNull(use.definition, request.variables))) return;
      const use = reachedNullUse(schema, document, operation, request.variables);
      if (use !== undefined) throw nullWhereRequired(use);
    },
  };
  return {
    async requestDidStart() {
      return listener;
    },
  };
}

/**
 * The variables of nullable type `operation` uses where a value is required (in its fragments too), each with
 * the first such place, as validation's own rule finds them (`VariablesInAllowedPositionRule`). Once per
 * document and operation: Apollo's document cache hands back the same objects for a repeated query.
 */
function findRequiredUses(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): RequiredUse[] {
  const definitions = new Map((operation.variableDefinitions ?? []).map((definition) => [definition.variable.name.value, definition]));
  const uses = new Map<string, RequiredUse>();
  const context = new ValidationContext(schema, document, new TypeInfo(schema), () => undefined);
  for (const { node, type } of context.getRecursiveVariableUsages(operation)) {
    const definition = definitions.get(node.name.value);
    if (definition === undefined || definition.type.kind === Kind.NON_NULL_TYPE || !isNonNullType(type) || uses.has(node.name.value)) continue;
    uses.set(node.name.value, { definition, node, type: String(type) });
  }
  return [...uses.values()];
}

/**
 * The first use of a null variable where a value is required that execution reaches: uses only under selections
 * `@skip`/`@include` leave out it never reads (`connectToken(token: $t) @include(if: $withToken)` with `{"t":
 * null, "withToken": false}` runs without an error), so they refuse nothing. Read only for a request that sends
 * such a null, as execution reads the directives: with the variables' coerced values, `@skip` first.
 */
function reachedNullUse(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
): RequiredUse | undefined {
  const { coerced } = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  // Values that do not fit their types: execution refuses the operation itself, with graphql-js's own errors.
  if (coerced === undefined) return undefined;
  const kept = visit(document, {
    enter: (node: ASTNode) => (isSelection(node) && node.directives?.length && !mayRun(node, coerced) ? null : undefined),
  });
  const keptOperation = kept.definitions[document.definitions.indexOf(operation)] as OperationDefinitionNode;
  return findRequiredUses(schema, kept, keptOperation).find((use) => isNull(use.definition, variables));
}

function isSelection(node: ASTNode): node is SelectionNode {
  return node.kind === Kind.FIELD || node.kind === Kind.INLINE_FRAGMENT || node.kind === Kind.FRAGMENT_SPREAD;
}

/** Whether the variable is null as the operation runs: sent as `null`, or left out with a default of `null`. */
function isNull(definition: VariableDefinitionNode, variables: Readonly<Record<string, unknown>> | undefined): boolean {
  const name = definition.variable.name.value;
  if (variables !== undefined && Object.hasOwn(variables, name)) return variables[name] === null;
  return definition.defaultValue?.kind === Kind.NULL;
}

function nullWhereRequired({ definition, node, type }: RequiredUse): GraphQLError {
  const remedy = definition.defaultValue === undefined || definition.defaultValue.kind === Kind.NULL ? 'send one' : 'send one, or leave the variable out to use its default';
  return new GraphQLError(`Variable "$${node.name.value}" is null where the operation needs a value of type "${type}": ${remedy}.`, {
    nodes: node,
    extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
  });
}
