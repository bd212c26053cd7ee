import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/logging/logger.ts';
import { FailureLog } from '../../src/upstream/failure-log.ts';
import { onTestTime } from '../helpers/clock.ts';

/** The lines a log kept at `error` holds of what `body` does with it, on the test's own time (`onTestTime`). */
async function errorLinesOnTestTime(body: (log: FailureLog, advance: (ms: number) => void) => void): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  const log = new FailureLog(createLogger('error', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)));
  await onTestTime(undefined, async (advance) => body(log, advance), { exact: true });
  return lines;
}

/**
 * The lines a log kept at `error` holds of the failures `burst` makes, then of an answer a second later: each as
 * its level, message, failure and count left unsaid.
 */
async function linesAnsweredASecondOn(burst: (log: FailureLog) => void): Promise<unknown[][]> {
  const lines = await errorLinesOnTestTime((log, advance) => {
    burst(log);
    advance(1_000);
    log.answered();
  });
  return lines.map((line) => [line['level'], line['message'], line['failure'], line['sinceLastLine']]);
}

/** An error-level kind of call failure, three times. */
function unexpectedBodies(log: FailureLog): void {
  for (let i = 0; i < 3; i++) log.callFailure('upstream answered with an unexpected body', 'HTTP 200: account is not an object', { status: 200 }, 'error');
}

const UNEXPECTED_BODY_LINES = [
  ['error', 'upstream answered with an unexpected body', undefined, undefined],
  ['error', 'upstream call failures left unsaid', 'upstream answered with an unexpected body (HTTP 200: account is not an object)', 2],
];

test('the count of throttled call failures left unsaid is said at the level of their own lines', async () => {
  // Read at `error` (an operator who keeps only errors): an error-level kind's line is seen, and so must be how
  // many of it went unsaid, which was written at `warn` and so never reached that log.
  const lines = await linesAnsweredASecondOn((log) => {
    unexpectedBodies(log);
    for (let i = 0; i < 3; i++) log.callFailure('upstream call timed out', 'UPSTREAM_TIMEOUT_MS', {});
  });
  assert.deepEqual(lines, UNEXPECTED_BODY_LINES);
});

test('the count of call failures of an error kind alone left unsaid is said at the next answer, a second on', async () => {
  // No configuration fault and no warn-level kind held: the error-level one is still owed its count.
  assert.deepEqual(await linesAnsweredASecondOn(unexpectedBodies), UNEXPECTED_BODY_LINES);
});

test('the counts still left unsaid when the client is closed are said then, each once', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = new FailureLog(createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)));
  for (let i = 0; i < 3; i++) log.configurationFault('the upstream refused the gateway’s API key', { status: 401 });
  for (let i = 0; i < 2; i++) log.callFailure('upstream connection failed', 'ECONNREFUSED', {});
  // An error-level kind's count is said at its level, as at an answer.
  unexpectedBodies(log);
  log.ended();
  log.ended();
  assert.deepEqual(
    lines.map((line) => [line['level'], line['message'], line['fault'] ?? line['failure'], line['sinceLastLine']]),
    [
      ['error', 'the upstream refused the gateway’s API key', undefined, undefined],
      ['warn', 'upstream connection failed', undefined, undefined],
      UNEXPECTED_BODY_LINES[0],
      ['error', 'an upstream configuration fault left unsaid', 'the upstream refused the gateway’s API key', 2],
      ['warn', 'upstream call failures left unsaid', 'upstream connection failed (ECONNREFUSED)', 1],
      UNEXPECTED_BODY_LINES[1],
    ],
  );
});

test('a configuration fault is logged once a minute at most, with the calls that met it since', async () => {
  const lines = await errorLinesOnTestTime((log, advance) => {
    log.configurationFault('the upstream refused the gateway’s API key', {});
    advance(59_999);
    log.configurationFault('the upstream refused the gateway’s API key', {});
    advance(1);
    log.configurationFault('the upstream refused the gateway’s API key', {});
  });
  assert.deepEqual(
    lines.map((line) => [line['message'], line['sinceLastLine']]),
    [
      ['the upstream refused the gateway’s API key', undefined],
      ['the upstream refused the gateway’s API key', 1],
    ],
  );
});

test('a configuration fault no longer seen is said so at error, where its lines were, with its calls left unsaid, none too', async () => {
  // Met by one call only, its line said all of it: that it is gone is still owed (an operator saw the error).
  for (const calls of [2, 1]) {
    const lines = await errorLinesOnTestTime((log, advance) => {
      for (let i = 0; i < calls; i++) log.configurationFault('the upstream refused the gateway’s API key', {});
      advance(60_000);
      log.answered();
    });
    assert.deepEqual(
      lines.map((line) => [line['level'], line['message'], line['fault'], line['sinceLastLine']]),
      [
        ['error', 'the upstream refused the gateway’s API key', undefined, undefined],
        ['error', 'an upstream configuration fault is no longer seen', 'the upstream refused the gateway’s API key', calls - 1],
      ],
      `met by ${calls}`,
    );
  }
});
