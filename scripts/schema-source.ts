import { parseArgs, type ParseArgsConfig } from 'node:util';
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

/**
 * The script's command-line options, strictly: an option it does not know (`--chek`) or a stray argument exits 1
 * naming it, rather than being ignored (`schema:print -- --chek` would otherwise rewrite the files it was meant to check).
 */
export function scriptOptions<T extends NonNullable<ParseArgsConfig['options']>>(tool: string, options: T) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    console.error(`${tool}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
