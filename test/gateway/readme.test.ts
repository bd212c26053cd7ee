import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { useStack } from '../helpers/stack.ts';

/** The README's GraphQL examples, so that the documentation stays true to the schema and the gateway. */
const examples = [...readFileSync('README.md', 'utf8').matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('the README examples', () => {
  const stack = useStack();

  it('has examples to check', () => assert.ok(examples.length >= 3));

  for (const example of examples) {
    const name = /(query|mutation) (\w+)/.exec(example)?.[2] ?? 'anonymous';
    it(`runs ${name} against the emulator without errors`, async () => {
      const account = stack.emulator.store.createAccount({ email: 'readme@example.com', sources: [{ label: 'readme::imap', status: 'OK' }] });
      const token = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
      stack.emulator.store.useConnectToken(token.token, { email: 'readme2@example.com' });
      const res = await stack.gql(example, example.includes('$id') ? { id: account.id } : {});
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.ok(res.body.data && Object.values(res.body.data).every((value) => value !== null));
    });
  }
});
