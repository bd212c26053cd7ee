import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, LineBatcher } from '../../src/logger.ts';
import { manualTimer } from '../helpers/clock.ts';

/** A stream that keeps each write it is given. */
const recorder = () => {
  const writes: string[] = [];
  return { writes, stream: { write: (text: string) => writes.push(text) } };
};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A batcher on a clock and a timer the test moves and fires by hand. */
const manualBatcher = (options: { maxHeldChars?: number } = {}) => {
  const { writes, stream } = recorder();
  const waits = manualTimer();
  let now = 1_000;
  const lines = new LineBatcher(stream, { minIntervalMs: 20, timer: waits.timer, now: () => now, ...options });
  return { writes, lines, waits, advance: (ms: number) => (now += ms) };
};

describe('log lines', () => {
  it('go out at the end of the turn that logged them, in one write, in order', async () => {
    const { writes, lines, waits } = manualBatcher();
    const logger = createLogger('info', lines.write);
    logger.info('first', { n: 1 });
    logger.debug('not at info');
    logger.warn('second');
    assert.equal(writes.length, 0, 'nothing written within the turn');
    await nextTurn();
    assert.equal(writes.length, 1);
    assert.deepEqual(
      writes[0]!.split('\n').map((line) => (line === '' ? '' : (JSON.parse(line) as { message: string }).message)),
      ['first', 'second', ''],
    );
    assert.deepEqual(waits.waiting(), [], 'a quiet logger’s line waits for no timer');
    await nextTurn();
    assert.equal(writes.length, 1, 'no write for a turn that logged nothing');
  });

  it('are written at most once an interval: lines logged sooner wait for the rest of it, together', async () => {
    const { writes, lines, waits, advance } = manualBatcher();
    lines.write('a\n');
    await nextTurn();
    assert.deepEqual(writes, ['a\n']);
    advance(5);
    lines.write('b\n');
    await nextTurn();
    lines.write('c\n');
    await nextTurn();
    assert.deepEqual(writes, ['a\n'], 'held within the interval after the last write');
    assert.deepEqual(waits.waiting(), [15], 'one wait, for the rest of the interval');
    advance(15);
    waits.fireAll();
    assert.deepEqual(writes, ['a\n', 'b\nc\n']);
    advance(50);
    lines.write('d\n');
    await nextTurn();
    assert.deepEqual(writes, ['a\n', 'b\nc\n', 'd\n'], 'after a quiet interval, at the end of the turn again');
    assert.deepEqual(waits.waiting(), []);
  });

  it('wait no longer than the interval, even when the clock went back', async () => {
    const { writes, lines, waits, advance } = manualBatcher();
    lines.write('a\n');
    await nextTurn();
    advance(-60_000);
    lines.write('b\n');
    assert.deepEqual(waits.waiting(), [20]);
    waits.fireAll();
    assert.deepEqual(writes, ['a\n', 'b\n']);
  });

  it('are written at once when as much is held as a batch may hold', async () => {
    const { writes, lines, waits } = manualBatcher({ maxHeldChars: 8 });
    lines.write('a\n');
    await nextTurn();
    lines.write('bbbb\n');
    assert.deepEqual(writes, ['a\n']);
    lines.write('cccc\n');
    assert.deepEqual(writes, ['a\n', 'bbbb\ncccc\n'], 'written in the same turn, without waiting for the interval');
    assert.deepEqual(waits.waiting(), [], 'and the wait for them cancelled');
  });

  it('are written at once by flush(), which cancels the write scheduled for them, and nothing is written twice', async () => {
    const { writes, lines, waits } = manualBatcher();
    lines.write('a\n');
    lines.flush();
    assert.deepEqual(writes, ['a\n']);
    lines.write('b\n');
    assert.deepEqual(waits.waiting(), [20]);
    lines.flush();
    assert.deepEqual(writes, ['a\n', 'b\n']);
    assert.deepEqual(waits.waiting(), [], 'the scheduled write cancelled');
    lines.flush();
    await nextTurn();
    assert.deepEqual(writes, ['a\n', 'b\n']);
  });

  it('still held when the process exits are written then', async () => {
    // The gateway's own logger, in a process that exits in the same turn it logs.
    const logger = fileURLToPath(new URL('../../src/logger.ts', import.meta.url));
    const code = `import { createLogger } from ${JSON.stringify(logger)}; createLogger('info').info('the last line'); process.exit(3);`;
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]);
    const failure = (await run.then(() => assert.fail('exited 0'), (error: unknown) => error)) as { code: number; stderr: string };
    assert.equal(failure.code, 3);
    assert.equal((JSON.parse(failure.stderr) as { message: string }).message, 'the last line');
  });
});
