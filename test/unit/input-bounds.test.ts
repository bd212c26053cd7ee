import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphQLError, isInputObjectType } from 'graphql';
import { buildSchema } from '../../src/graphql/schema.ts';
import { connectTokenForm, email, nameForm } from '../../src/resolvers/inputs.ts';

/**
 * The lengths the schema's descriptions promise are the ones the gateway checks: a consumer reads "at most N
 * characters" in the IDE or a generated client, and the description is the only place it is said. Each input
 * field whose description states a bound is tried at that bound (taken) and one past it (refused with
 * BAD_USER_INPUT, named by its field); a field newly described with a bound must be added here.
 */

const CALLBACK = 'https://app.example/';
const anAddress = (length: number) => `${'a'.repeat(length - '@mail.example'.length)}@mail.example`;
const aUrl = (length: number) => `${CALLBACK}${'p'.repeat(length - CALLBACK.length)}`;
const aName = (length: number) => 'n'.repeat(length);

/** For each bounded input field: a value of a given length, and the check its resolver makes of it. */
const checks: Record<string, { value: (length: number) => string; check: (value: string) => unknown; field: string }> = {
  'AccountFilter.email': { value: anAddress, check: (v) => email(v, 'filter.email'), field: 'filter.email' },
  'CreateAccountInput.email': { value: anAddress, check: (v) => email(v, 'input.email'), field: 'input.email' },
  'CreateAccountInput.firstName': { value: aName, check: (v) => nameForm({ firstName: v }), field: 'input.firstName' },
  'CreateAccountInput.lastName': { value: aName, check: (v) => nameForm({ lastName: v }), field: 'input.lastName' },
  'UpdateAccountInput.firstName': { value: aName, check: (v) => nameForm({ firstName: v }), field: 'input.firstName' },
  'UpdateAccountInput.lastName': { value: aName, check: (v) => nameForm({ lastName: v }), field: 'input.lastName' },
  'CreateConnectTokenInput.callbackUrl': { value: aUrl, check: (v) => connectTokenForm({ callbackUrl: v }), field: 'input.callbackUrl' },
  'CreateConnectTokenInput.email': { value: anAddress, check: (v) => connectTokenForm({ callbackUrl: CALLBACK, email: v }), field: 'input.email' },
  'CreateConnectTokenInput.firstName': { value: aName, check: (v) => connectTokenForm({ callbackUrl: CALLBACK, firstName: v }), field: 'input.firstName' },
  'CreateConnectTokenInput.lastName': { value: aName, check: (v) => connectTokenForm({ callbackUrl: CALLBACK, lastName: v }), field: 'input.lastName' },
};

/** Every input field whose description says "at most N", with N. */
function describedBounds(): Array<{ name: string; bound: number }> {
  const bounds: Array<{ name: string; bound: number }> = [];
  for (const type of Object.values(buildSchema().getTypeMap())) {
    if (!isInputObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const stated = /\bat most (\d+)\b/i.exec(field.description ?? '');
      if (stated) bounds.push({ name: `${type.name}.${field.name}`, bound: Number(stated[1]) });
    }
  }
  return bounds;
}

test('every length an input field\'s description states is the one checked: taken at it, refused past it', () => {
  const bounds = describedBounds();
  assert.deepEqual(bounds.map((b) => b.name).sort(), Object.keys(checks).sort(), 'the bounded input fields are the ones this test checks');
  for (const { name, bound } of bounds) {
    const { value, check, field } = checks[name]!;
    assert.equal(value(bound).length, bound, `${name}: the value made is ${bound} long`);
    assert.doesNotThrow(() => check(value(bound)), `${name}: a value of the stated ${bound} characters is taken`);
    assert.throws(
      () => check(value(bound + 1)),
      (error: unknown) => error instanceof GraphQLError && error.extensions['code'] === 'BAD_USER_INPUT' && error.extensions['field'] === field,
      `${name}: a value of ${bound + 1} characters is refused with BAD_USER_INPUT on ${field}`,
    );
  }
});
