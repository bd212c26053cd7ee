import type { GraphQLResponse } from '@apollo/server';
import { getNamedType, isLeafType, type GraphQLObjectType, type GraphQLResolveInfo } from 'graphql';
import type { GatewayContext } from '../graphql/context.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import { saysItMayHaveTakenEffect } from '../upstream/failures.ts';

/**
 * A write the operation made, as its caller would have read it: the field's response key, the mutation, and
 * every scalar of its payload (a new id, a token and the URL to send its user to), whatever was selected.
 */
export interface WriteMade {
  path: [string];
  field: string;
  payload: Record<string, unknown>;
}

/** A mutation resolver as graphql runs it (the precheck runs them without `info`, and records nothing). */
type MutationResolver = (parent: never, args: never, context: GatewayContext, info: GraphQLResolveInfo) => unknown;

/**
 * The mutation resolvers, each noting its write in the operation's outcome once made: graphql-js runs a
 * mutation's fields one after another, and its payloads are non-null, so a later field failing upstream blanks
 * the whole answer (`data: null`) after the earlier writes were made. `reportWritesMade` then answers them.
 */
export function notingWritesMade<Resolvers extends Record<string, MutationResolver>>(resolvers: Resolvers): MutationResolvers {
  const noting: Record<string, MutationResolver> = {};
  for (const [field, resolve] of Object.entries(resolvers)) {
    noting[field] = async (parent, args, context, info) => {
      const { outcome } = context;
      outcome.writeUnderway = { field, requestsBefore: context.api.requestsSent };
      try {
        const payload = await resolve(parent, args, context, info);
        (outcome.writesMade ??= []).push({ path: [info.path.key as string], field, payload: scalarsOf(payload, info.returnType, context, info) });
        return payload;
      } catch (error) {
        // Not made as far as the gateway knows, but maybe made upstream: an audit of what changed must see it.
        if (saysItMayHaveTakenEffect(error)) (outcome.writesMaybeMade ??= []).push(field);
        throw error;
      } finally {
        outcome.writeUnderway = undefined;
      }
    };
  }
  return noting as MutationResolvers;
}

/** Each scalar field of a payload (they take no arguments, and resolve at once from the write's answer), serialized. */
function scalarsOf(payload: unknown, returnType: GraphQLResolveInfo['returnType'], context: GatewayContext, info: GraphQLResolveInfo): Record<string, unknown> {
  const scalars: Record<string, unknown> = {};
  for (const field of Object.values((getNamedType(returnType) as GraphQLObjectType).getFields())) {
    const type = getNamedType(field.type);
    if (!isLeafType(type)) continue;
    const value = field.resolve ? field.resolve(payload, {}, context, info) : (payload as Record<string, unknown>)[field.name];
    scalars[field.name] = value == null ? null : type.serialize(value);
  }
  return scalars;
}

/**
 * Adds the writes made to an answer that lost them (`data: null`: a later field failed), as
 * `extensions.writesMade`: without it a caller told only of the failure would not know what now exists upstream,
 * and retrying would make it again. An answer with data holds them already.
 */
export function reportWritesMade(response: GraphQLResponse, writesMade: readonly WriteMade[] | undefined): void {
  if (writesMade === undefined || response.body.kind !== 'single' || response.body.singleResult.data !== null) return;
  const result = response.body.singleResult;
  result.extensions = { ...result.extensions, writesMade };
}
