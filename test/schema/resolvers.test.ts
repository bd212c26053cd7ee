import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isObjectType } from 'graphql';
import { buildSchema } from '../../src/graphql/schema.ts';
import { resolvers } from '../../src/resolvers/index.ts';

/**
 * The fields of a type with resolvers that have none, read by graphql-js from the parent's property of the field's
 * name: parents the gateway builds with the schema's names itself. Any other parent is upstream JSON (codegen.yml's
 * mappers), snake_case, whose property of a camelCase name is undefined: the field would answer null every time.
 */
const READ_FROM_PARENT = new Set(['UpdateAccountPayload.success']);

// The typecheck does not catch it: every resolver of a type is optional in the generated types, so a field added to
// schema/ with no resolver typechecks, passes codegen:check and schema:check, and answers null.
test('every field of a type with resolvers has a resolver of its own, or reads a parent built with its name', () => {
  const schema = buildSchema();
  const missing: string[] = [];
  for (const [name, map] of Object.entries(resolvers)) {
    const type = schema.getType(name);
    if (!isObjectType(type)) continue;
    for (const field of Object.keys(type.getFields())) {
      if (!(field in map) && !READ_FROM_PARENT.has(`${name}.${field}`)) missing.push(`${name}.${field}`);
    }
  }
  assert.deepEqual(missing, [], 'fields with no resolver in src/resolvers/ (add one that reads the upstream JSON: snake_case, Unix seconds)');
});
