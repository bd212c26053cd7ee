import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LOAD_REFUSAL_LOG_INTERVAL_MS, refusalForLoad } from '../../src/http/load-refusals.ts';
import { LineThrottle } from '../../src/logging/line-throttle.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { onTestTime } from '../helpers/clock.ts';

/** The parts refusalForLoad logs through, as the gateway makes them, with the lines written. */
function refusalLog() {
  const lines: Array<Record<string, unknown>> = [];
  const parts = { logger: createLogger('warn', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), refusalsForLoad: new LineThrottle(LOAD_REFUSAL_LOG_INTERVAL_MS) };
  return { parts, lines };
}

describe('the warnings of refusals for load', () => {
  it('say, during a burst that goes on past 10 s, how many refusals went unsaid since the last warning, under the request id of the one said, once every 10 s', async () => {
    const { parts, lines } = refusalLog();
    await onTestTime(
      undefined,
      async (advance) => {
        refusalForLoad(parts, 'operations', 2, 'first');
        refusalForLoad(parts, 'operations', 2, 'second');
        // The interval is 10 s, as docs/configuration.md says: 9 s on, still within it.
        advance(9_000);
        refusalForLoad(parts, 'operations', 2, 'third');
        advance(1_000);
        refusalForLoad(parts, 'operations', 2, 'fourth');
      },
      { exact: true },
    );
    assert.deepEqual(
      lines.map((line) => [line['requestId'], line['sinceLastLine']]),
      [
        ['first', undefined],
        ['fourth', 2],
      ],
    );
  });

  it('are throttled for each cap on its own: a burst refused for operations running does not silence the first refusal for bodies or answers', () => {
    const { parts, lines } = refusalLog();
    refusalForLoad(parts, 'operations', 2, 'operation');
    refusalForLoad(parts, 'operations', 2, 'operation again');
    refusalForLoad(parts, 'bodies', 4096, 'body');
    refusalForLoad(parts, 'answers', 8192, 'answer');
    assert.deepEqual(
      lines.map((line) => [line['requestId'], line['maximum']]),
      [
        ['operation', 2],
        ['body', 4096],
        ['answer', 8192],
      ],
    );
    assert.match(String(lines[1]!['message']), /MAX_BODY_BYTES_IN_FLIGHT/);
    assert.match(String(lines[2]!['message']), /MAX_ANSWER_BYTES_IN_FLIGHT/);
  });
});
