import { getDirectiveValues, GraphQLError, GraphQLIncludeDirective, GraphQLSkipDirective, type GraphQLResolveInfo, type SelectionNode } from 'graphql';

/**
 * Whether `@skip`/`@include` keep `selection`, read as graphql-js reads them; throws graphql-js's own error when
 * their argument does not fit (`@include(if: $x)` with `{"x": null}`).
 */
export function isIncluded(selection: SelectionNode, variableValues: GraphQLResolveInfo['variableValues']): boolean {
  return (
    getDirectiveValues(GraphQLSkipDirective, selection, variableValues)?.['if'] !== true &&
    getDirectiveValues(GraphQLIncludeDirective, selection, variableValues)?.['if'] !== false
  );
}

/**
 * Whether execution may run `selection`: as isIncluded, but kept when a directive's own argument does not fit,
 * where execution refuses the operation itself (so an estimate made before it runs counts what it cannot rule out).
 */
export function mayRun(selection: SelectionNode, variableValues: GraphQLResolveInfo['variableValues']): boolean {
  try {
    return isIncluded(selection, variableValues);
  } catch (error) {
    if (error instanceof GraphQLError) return true;
    throw error;
  }
}
