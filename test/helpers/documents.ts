/** Documents that push the gateway's operation limits, shared by the unit and the integration tests, and their measure. */

import { Kind, parse, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { buildSchema } from '../../src/graphql/schema.ts';
import { measureOperation, type OperationMeasure } from '../../src/limits/measure.ts';

let schema: ReturnType<typeof buildSchema> | undefined;

/** `query` parsed, and its (first) operation measured against the gateway's schema as the limits measure it. */
export function measuredDocument(query: string, variables?: Record<string, unknown>): { document: DocumentNode; measure: OperationMeasure } {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  return { document, measure: measureOperation((schema ??= buildSchema()), document, operation, variables) };
}

/**
 * A document whose sets of merged selections double at each level (choosing alias `a` starts a chain of
 * fragments that keeps merging into both keys below): 15 levels are 2,890 tokens, within MAX_QUERY_TOKENS.
 */
export function doublingDocument(levels: number): string {
  const parts = ['{ account(id: "x") { ...M1 } }'];
  for (let i = 1; i <= levels; i++) {
    const next = i < levels ? `...M${i + 1}` : 'id';
    const chain = i < levels ? ` ...C${i}_${i + 1}` : '';
    parts.push(`fragment M${i} on Account { a: connectTokens { account { ${next}${chain} } } connectTokens { account { ${next} } } }`);
    for (let j = i + 1; j <= levels; j++) {
      const inner = j < levels ? `...C${i}_${j + 1}` : 'id';
      parts.push(`fragment C${i}_${j} on Account { a: connectTokens { account { ${inner} } } connectTokens { account { ${inner} } } }`);
    }
  }
  return parts.join('\n');
}
