import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, LineBatcher } from '../../src/logger.ts';

/** A stream that keeps each write it is given. */
const recorder = () => {
  const writes: string[] = [];
  return { writes, stream: { write: (text: string) => writes.push(text) } };
};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('log lines', () => {
  it('go out once per event-loop turn: a turn’s lines in one write, in order, after it', async () => {
    const { writes, stream } = recorder();
    const lines = new LineBatcher(stream);
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
    logger.error('third');
    await nextTurn();
    assert.equal(writes.length, 2, 'a later turn’s lines in a write of their own');
    await nextTurn();
    assert.equal(writes.length, 2, 'no write for a turn that logged nothing');
  });

  it('are written at once by flush(), and nothing is written twice', async () => {
    const { writes, stream } = recorder();
    const lines = new LineBatcher(stream);
    lines.write('a\n');
    lines.flush();
    assert.deepEqual(writes, ['a\n']);
    lines.flush();
    await nextTurn();
    assert.deepEqual(writes, ['a\n']);
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
