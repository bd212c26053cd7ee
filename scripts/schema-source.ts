import { parseArgs, type ParseArgsConfig } from 'node:util';
import { concatAST, type DocumentNode } from 'graphql';
import { loadTypeDefs, SchemaSyntaxError } from '../src/graphql/schema.ts';
import { refuseToStart } from './refuse-to-start.ts';

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
 * The script's command-line options, strictly: an option it does not know (`--chek`) or a stray argument is refused
 * (exit 2, a usage error, with `usage`) naming it, rather than being ignored (`schema:print -- --chek` would otherwise
 * rewrite the files it was meant to check). Exit 1 is the scripts' finding (a stale or broken schema): CI must tell them apart.
 */
export function scriptOptions<T extends NonNullable<ParseArgsConfig['options']>>(tool: string, usage: string, options: T) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    return refuseToStart(tool, usage, [error instanceof Error ? error.message : String(error)]);
  }
}
