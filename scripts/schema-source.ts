import { concatAST, type DocumentNode } from 'graphql';
import { loadTypeDefs, SchemaSyntaxError } from '../src/graphql/schema.ts';

/**
 * schema/*.graphql as one document, for the schema scripts: on a syntax error, `tool` says which file and
 * line and exits 1, with no stack trace (the error is in the SDL, not in the script).
 */
export function schemaDocument(tool: string): DocumentNode {
  try {
    return concatAST(loadTypeDefs());
  } catch (error) {
    if (!(error instanceof SchemaSyntaxError)) throw error;
    console.error(`${tool}: ${error.message}`);
    process.exit(1);
  }
}
