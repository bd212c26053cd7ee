import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Emulator } from '../../src/emulator/index.ts';
import type { Gateway } from '../../src/http/server.ts';
import { eventually } from './eventually.ts';

/** What the checks below need of a stack: its emulator, to hang operations upstream, and its gateway. */
export interface AdmissionStack {
  emulator: Emulator;
  gateway: Gateway;
}

let held = 0;

/**
 * `count` operations that hang upstream (each reading an account whose request never answers), held until
 * `release`; resolves once all of them run. `headers` go with each (a token, with authentication on).
 */
export async function holdOperations(stack: AdmissionStack, count: number, headers: Record<string, string> = {}): Promise<{ release(): Promise<void> }> {
  await eventually(() => stack.emulator.inFlight === 0, { what: 'no upstream request left from before' });
  const stuck = stack.emulator.store.createAccount({ email: `held-${++held}@example.com` }).id;
  const removeFault = stack.emulator.addFault({ path: `/accounts/${stuck}`, hang: true });
  // Raw connections, closed to let go. Not fetch's: aborted with a 503 answered beside them, its pool opened
  // connections that sent nothing, which the gateway's shutdown waits for until the pool drops them (4 s).
  const body = JSON.stringify({ query: 'query ($id: ID!) { account(id: $id) { id } }', variables: { id: stuck } });
  const head = Object.entries({ host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  const sockets = Array.from({ length: count }, () => {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST ${new URL(stack.gateway.url).pathname} HTTP/1.1\r\n${head.join('')}\r\n${body}`);
    return socket;
  });
  const release = async () => {
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise((resolve) => {
            if (socket.closed) resolve(undefined);
            else socket.once('close', resolve).destroy();
          }),
      ),
    );
    removeFault();
    await eventually(() => stack.emulator.inFlight === 0, { what: 'the held operations’ upstream requests cancelled' });
  };
  try {
    await eventually(() => stack.emulator.inFlight === count, { what: `${count} operations running at once: a place of MAX_OPERATIONS_IN_FLIGHT was never given back` });
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

/**
 * Every place of a gateway whose MAX_OPERATIONS_IN_FLIGHT is `cap` is free, and there are no more: `cap`
 * operations hanging upstream all run at once, and one more is refused 503 (a place given back twice would
 * admit it). Those are then let go, and an operation is admitted again.
 */
export async function assertEveryPlaceFree(stack: AdmissionStack, cap: number, headers: Record<string, string> = {}): Promise<void> {
  const held = await holdOperations(stack, cap, headers);
  try {
    const extra = await postTypename(stack, headers);
    const text = await extra.text();
    assert.equal(extra.status, 503, `one past the cap is refused, or a place was given back twice: ${text}`);
    assert.match(text, /"SERVICE_UNAVAILABLE"/);
  } finally {
    await held.release();
  }
  await eventually(async () => (await (await postTypename(stack, headers)).text()).startsWith('{"data"'), { what: 'an operation admitted once the held ones ended' });
}

const postTypename = (stack: AdmissionStack, headers: Record<string, string>) =>
  fetch(stack.gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: '{ __typename }' }),
    signal: AbortSignal.timeout(30_000),
  });
