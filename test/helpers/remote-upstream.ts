import assert from 'node:assert/strict';
import type { Emulator } from '../../src/emulator/index.ts';
import { eventually } from './eventually.ts';
import { logEntries, type RunningScript } from './script.ts';
import { postGraphQL } from './stack.ts';

/**
 * What the tests of `npm start` in front of a remote upstream (the emulator behind a front of the test's own:
 * TLS, an egress proxy) share: the calls that show it served, and the calls that show it refused.
 */

export interface GraphQLAnswer {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** How long `npm start`'s main may take to do what a test waits for. */
export const IN_MAIN = { timeoutMs: 30_000 };
/** The cheapest operation: one `GET /accounts` call. */
export const LIST = '{ accounts(first: 1) { nodes { id } } }';

/**
 * A read, a mutation and ten lists through the gateway at `url`, each answered; the emulator's requests for
 * them (`GET /accounts/… 200`), checked to be one a call, none retried or repeated. A POST signs its form too:
 * the emulator refuses (401) a signature of any other URL than the one the gateway called.
 */
export async function servesOneRequestACall(url: string, emulator: Emulator, email: string): Promise<string[]> {
  emulator.clearRequests();
  const { id } = emulator.store.createAccount({ email });
  const read = await postGraphQL<GraphQLAnswer>(url, 'query ($id: ID!) { account(id: $id) { id emailAddresses } }', { id });
  assert.deepEqual(read, { data: { account: { id, emailAddresses: [email] } } });
  const created = await postGraphQL<GraphQLAnswer>(url, 'mutation { createAccount(input: { email: "made@example.com" }) { account { emailAddresses } } }');
  assert.deepEqual(created, { data: { createAccount: { account: { emailAddresses: ['made@example.com'] } } } });
  for (let i = 0; i < 10; i++) assert.equal((await postGraphQL<GraphQLAnswer>(url, LIST)).errors, undefined);
  const calls = emulator.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
  assert.deepEqual(calls.slice(0, 2), [`GET /accounts/${id} 200`, 'POST /accounts 201']);
  assert.equal(calls.length, 2 + 1 + 10, calls.join('\n')); // the create reads its account back
  return calls;
}

/**
 * Three lists through the gateway at `url`, each answered `UPSTREAM_ERROR` alone with a message `said` matches
 * (ending ` while listing accounts`); the gateway's log entries since they began, once the three operations'
 * own lines are in (lines are held until the turn ends: so are their calls' lines then).
 */
export async function threeListsFail(gateway: RunningScript, url: string, said: RegExp): Promise<Array<Record<string, unknown>>> {
  const linesBefore = gateway.lines.length;
  for (let i = 0; i < 3; i++) {
    const answer = await postGraphQL<GraphQLAnswer>(url, LIST);
    assert.deepEqual(answer.errors?.map((e) => e.extensions?.['code']), ['UPSTREAM_ERROR']);
    assert.match(answer.errors![0]!.message, said);
    assert.match(answer.errors![0]!.message, / while listing accounts$/);
  }
  const entries = () => logEntries(gateway.lines.slice(linesBefore));
  await eventually(() => entries().filter((e) => e['message'] === 'operation' && String(e['errors']) === 'UPSTREAM_ERROR').length === 3, IN_MAIN);
  return entries();
}
