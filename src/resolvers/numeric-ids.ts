import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { GraphQLError, Kind, type TypeNode } from 'graphql';
import { ErrorCode } from '../errors.ts';

/**
 * Refuses an operation whose `ID` variable came as a JSON number past 2^53, as graphql-js refuses a value that
 * does not fit its type (HTTP 400, before anything runs). graphql-js's ID takes any integer and uses its digits,
 * but JSON.parse has already rounded them: 12345678901234567891 would have been sent upstream as
 * "12345678901234567000", another id (a digits-only connect token deleted in place of the one meant). Up to 2^53
 * the digits are exact and read as graphql-js reads them.
 */
export function numericIdsPlugin(): ApolloServerPlugin {
  // It keeps nothing per request: one listener serves them all.
  const listener: GraphQLRequestListener<never> = {
    async didResolveOperation({ operation, request }) {
      for (const definition of operation?.variableDefinitions ?? []) {
        const name = definition.variable.name.value;
        const value = request.variables?.[name];
        if (typeof value !== 'number' || !Number.isInteger(value) || Number.isSafeInteger(value) || namedType(definition.type) !== 'ID') continue;
        throw new GraphQLError(`Variable "$${name}" got invalid value ${JSON.stringify(value)}; an ID sent as a number past 2^53 has lost digits to JSON's rounding: send it as a string.`, {
          nodes: definition,
          extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
        });
      }
    },
  };
  return {
    async requestDidStart() {
      return listener;
    },
  };
}

function namedType(type: TypeNode): string {
  return type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type);
}
