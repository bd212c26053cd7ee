import assert from 'node:assert/strict';
import type { manualTimer } from './clock.ts';
import { eventually } from './eventually.ts';
import type { EmulatorRequestLogEntry } from '../../src/emulator/server.ts';
import type { GraphQLResponse, Stack } from './stack.ts';

/*
 * What the concurrency suites share: operations sent at once, each with its own caller and request id, against a
 * stack whose emulator holds every upstream answer on a manual timer until the test lets it go.
 */

/** An operation as the concurrency suites send it: its caller's token, its request id, its text. */
export interface SentOperation {
  token: string;
  id: string;
  text: string;
  variables?: Record<string, unknown>;
}

/** POSTs `operation` to the gateway at `url` under its own request id; a `signal` to leave before the answer. */
export function sendOperation(url: string, operation: SentOperation, signal?: AbortSignal): Promise<GraphQLResponse> {
  return fetch(url, {
    signal: signal ?? AbortSignal.timeout(30_000),
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${operation.token}`, 'x-request-id': operation.id },
    body: JSON.stringify({ query: operation.text, variables: operation.variables }),
  }).then(async (response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] }));
}

/**
 * The `operation` log line of each request id of `ids`, once every one has its own (written as its answer closes),
 * from the stack's captured `lines`; exactly one each.
 */
export async function operationLines(lines: readonly string[], ids: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
  let found: Array<Record<string, unknown>> = [];
  await eventually(
    () => {
      found = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e['message'] === 'operation' && ids.includes(e['requestId'] as string));
      return ids.every((id) => found.some((e) => e['requestId'] === id));
    },
    { what: 'an operation line for each operation' },
  );
  assert.equal(found.length, ids.length, 'one operation line an operation');
  return new Map(found.map((e) => [e['requestId'] as string, e]));
}

/** Answers each upstream request `held` holds as it comes, until the function returned is called (which answers the last). */
export function pumpAnswers(held: ReturnType<typeof manualTimer>): () => void {
  held.fireAll();
  const pump = setInterval(() => held.fireAll(), 2);
  return () => {
    clearInterval(pump);
    held.fireAll();
  };
}

/**
 * Sends `operations` at once to `stack`, the upstream answers `held` holds let go as they come; once every one is
 * answered and the emulator is idle: their responses (in order), the upstream requests they made, and their log lines.
 */
export async function runAtOnce(
  stack: Stack & { lines: string[] },
  held: ReturnType<typeof manualTimer>,
  operations: readonly SentOperation[],
): Promise<{ responses: GraphQLResponse[]; requests: EmulatorRequestLogEntry[]; lines: Map<string, Record<string, unknown>> }> {
  stack.emulator.clearRequests();
  const stop = pumpAnswers(held);
  let responses: GraphQLResponse[];
  try {
    responses = await Promise.all(operations.map((o) => sendOperation(stack.gateway.url, o)));
  } finally {
    stop();
  }
  await eventually(() => stack.emulator.inFlight === 0, { what: 'the emulator idle' });
  const requests = [...stack.emulator.requests];
  return { responses, requests, lines: await operationLines(stack.lines, operations.map((o) => o.id)) };
}
