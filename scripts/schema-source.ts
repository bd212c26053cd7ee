import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { buildASTSchema, concatAST, validateSchema, type DocumentNode, type GraphQLError, type GraphQLSchema } from 'graphql';
// Internal to graphql-js (no public export checks SDL with its errors' locations): buildASTSchema runs the same
// check and throws its messages joined, without the file or line of any.
import { validateSDL } from 'graphql/validation/validate.js';
import { inSdlFile, loadTypeDefs, parseSdl, SchemaSyntaxError } from '../src/graphql/schema.ts';
import { refuseToStart } from './refuse-to-start.ts';

/**
 * schema/*.graphql as one schema, for the schema scripts: on a syntax error, or a definition no schema can hold
 * (a misspelt type, an input type as a field's type), `tool` says which file and line and exits 1, with no stack
 * trace (the error is in the SDL, not in the script).
 */
export function currentSchema(tool: string): GraphQLSchema {
  let document: DocumentNode;
  try {
    document = concatAST(loadTypeDefs());
  } catch (error) {
    if (!(error instanceof SchemaSyntaxError)) throw error;
    return refuseSchema(tool, [error.message]);
  }
  return schemaOf(document, tool);
}

/** The schema of a released SDL file (`path`, named `file` in messages), refused as schema/'s is. */
export function releasedSchema(path: string, file: string, tool: string): GraphQLSchema {
  let document: DocumentNode;
  try {
    document = parseSdl(readFileSync(path, 'utf8'), file);
  } catch (error) {
    if (!(error instanceof SchemaSyntaxError)) throw error;
    return refuseSchema(tool, [error.message]);
  }
  return schemaOf(document, tool);
}

function schemaOf(document: DocumentNode, tool: string): GraphQLSchema {
  const refuse = (errors: readonly GraphQLError[]) => refuseSchema(tool, errors.map(inSdlFile));
  const sdlErrors = validateSDL(document);
  if (sdlErrors.length > 0) return refuse(sdlErrors);
  const schema = buildASTSchema(document, { assumeValidSDL: true });
  // What only the built schema shows (a field of an input type): introspection and the diff would throw it.
  const schemaErrors = validateSchema(schema);
  return schemaErrors.length > 0 ? refuse(schemaErrors) : schema;
}

function refuseSchema(tool: string, faults: readonly string[]): never {
  for (const fault of faults) console.error(`${tool}: ${fault}`);
  process.exit(1);
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
