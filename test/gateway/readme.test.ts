import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startStack, useStack } from '../helpers/stack.ts';

/** The README's GraphQL examples, so that the documentation stays true to the schema and the gateway. */
const readme = readFileSync('README.md', 'utf8');
const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('the README examples', () => {
  const stack = useStack();

  it('has examples to check', () => assert.ok(examples.length >= 3));

  it('suggests a demo account for the Dashboard example that has what it shows: sources and connect tokens', async () => {
    const id = /with the demo data, `\{"id": "(\w+)"\}`/.exec(readme)?.[1];
    assert.ok(id, 'the README names a demo account for Dashboard');
    const dashboard = examples.find((example) => example.includes('query Dashboard'))!;
    const demo = await startStack({ emulator: { seed: 'demo' } });
    try {
      const res = await demo.gql(dashboard, { id });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const account = res.body.data!['account'] as { sources: unknown[]; connectTokens: unknown[] };
      assert.ok(account.sources.length > 0 && account.connectTokens.length > 0, JSON.stringify(account));
    } finally {
      await demo.close();
    }
  });

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
