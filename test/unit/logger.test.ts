import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { closeSync, openSync } from 'node:fs';
import { createLogger, descriptorSink, errorFields, LineBatcher, messageOf, type LogFields } from '../../src/logging/logger.ts';
import { apolloLogger } from '../../src/graphql/apollo.ts';
import { manualTimer } from '../helpers/clock.ts';

/** A sink that takes and keeps each write it is given. */
const recorder = () => {
  const writes: string[] = [];
  const sink = (bytes: Buffer) => {
    writes.push(bytes.toString());
    return bytes.length;
  };
  return { writes, sink };
};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A sink that takes nothing, as the output of a log reader that stopped reading, until `takeAgain`. */
const stoppedReader = () => {
  const writes: string[] = [];
  let full = true;
  const sink = (bytes: Buffer) => {
    if (full) return 0;
    writes.push(bytes.toString());
    return bytes.length;
  };
  return { writes, sink, takeAgain: () => (full = false) };
};

/** A batcher on a clock and a timer the test moves and fires by hand. */
const manualBatcher = (options: { maxHeldChars?: number } = {}) => {
  const { writes, sink } = recorder();
  const waits = manualTimer();
  let now = 1_000;
  const lines = new LineBatcher(sink, { minIntervalMs: 20, timer: waits.timer, now: () => now, ...options });
  return { writes, lines, waits, advance: (ms: number) => (now += ms) };
};

// A line's time, level and message come first and are its own: a field so named would replace one (checked by tsc).
// @ts-expect-error a field named as one of the line's own keys
export const fieldNamedAsTheLinesOwn: LogFields = { message: 'a field' };

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

  it('hold U+2028 and U+2029 escaped, as JSON allows: a collector splitting lines on them (as Python\'s splitlines does) still reads one line', async () => {
    const { writes, lines } = manualBatcher();
    const logger = createLogger('info', lines.write);
    logger.info('a caller', { subject: 'user\u2028{"level":"error"}\u2029' });
    await nextTurn();
    assert.doesNotMatch(writes[0]!, /[\u2028\u2029]/, writes[0]);
    assert.equal((JSON.parse(writes[0]!) as { subject: string }).subject, 'user\u2028{"level":"error"}\u2029');
  });

  it('hold U+0085 (next line) escaped too: Python\'s splitlines breaks a line at it as well, and a Host header\'s byte 0x85 is one', async () => {
    const { writes, lines } = manualBatcher();
    const logger = createLogger('info', lines.write);
    logger.info('a caller', { host: 'evil\u0085{"level":"error","message":"forged"}' });
    await nextTurn();
    assert.doesNotMatch(writes[0]!, /\u0085/, writes[0]);
    assert.equal((JSON.parse(writes[0]!) as { host: string }).host, 'evil\u0085{"level":"error","message":"forged"}');
  });

  it('hold DEL and the C1 controls escaped: U+009B opens an escape sequence in terminals, as ESC does, which JSON escapes itself', async () => {
    const { writes, lines } = manualBatcher();
    const logger = createLogger('info', lines.write);
    logger.info('a caller', { host: 'evil\u009b2K\u007f\u0080\u009f' });
    await nextTurn();
    assert.doesNotMatch(writes[0]!, /[\u007f-\u009f]/, writes[0]);
    assert.equal((JSON.parse(writes[0]!) as { host: string }).host, 'evil\u009b2K\u007f\u0080\u009f');
  });

  it('hold the directional embeddings, overrides and isolates escaped: shown raw, they reorder what a terminal or log viewer displays of the line (an operationName that reads as another)', async () => {
    const { writes, lines } = manualBatcher();
    const logger = createLogger('info', lines.write);
    // U+202E shows the rest of the line right to left: `"operationName":"Harmless\u202e"` then displays the fields after it reversed.
    const name = 'Harmless\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069';
    logger.info('operation', { operationName: name, status: 200 });
    await nextTurn();
    assert.doesNotMatch(writes[0]!, /[\u202a-\u202e\u2066-\u2069]/, writes[0]);
    assert.equal((JSON.parse(writes[0]!) as { operationName: string }).operationName, name);
  });

  it('hold half a surrogate pair as U+FFFD, as a UTF-8 decoder shows a broken character: its escape (\\ud800) is refused by strict JSON readers (jq 1.6), which then lose the whole line', async () => {
    // A caller's operationName and a token's sub are JSON a client wrote, and JSON can spell half a pair.
    const { writes, lines } = manualBatcher();
    const logger = createLogger('info', lines.write);
    logger.info('operation', { operationName: '\ud800x', subject: 'y\udc00', issuer: '\ud83d\ude00 \\ud800', lastFailure: { path: 'a\udbff' } });
    await nextTurn();
    // An escape of half a pair: a backslash not itself escaped (an odd run of them), then ud800 to udfff.
    assert.doesNotMatch(writes[0]!, /(?<!\\)(?:\\\\)*\\ud[89a-f]/i, writes[0]);
    const entry = JSON.parse(writes[0]!) as Record<string, unknown>;
    assert.deepEqual(
      [entry['operationName'], entry['subject'], entry['issuer'], entry['lastFailure']],
      ['\ufffdx', 'y\ufffd', '\ud83d\ude00 \\ud800', { path: 'a\ufffd' }],
      'each half as U+FFFD; a whole pair, and a backslash followed by the letters ud800, as they were',
    );
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

  it('are written at once when exactly as much is held as a batch may hold', () => {
    const { writes, lines, waits } = manualBatcher({ maxHeldChars: 8 });
    lines.write('abcdefg\n');
    assert.deepEqual(writes, ['abcdefg\n'], 'in the turn that logged it');
    assert.deepEqual(waits.waiting(), []);
  });

  it('logged while their output is full wait for the write already scheduled: not one attempt a line', () => {
    let attempts = 0;
    const waits = manualTimer();
    const lines = new LineBatcher(() => (attempts++, 0), { minIntervalMs: 20, maxHeldChars: 8, timer: waits.timer, now: () => 1_000 });
    lines.write('a\n');
    lines.flush();
    assert.equal(attempts, 1);
    // Each line alone fills a batch, which an output with room would take at once.
    for (let n = 0; n < 5; n++) lines.write('line 00\n');
    assert.equal(attempts, 1);
    waits.fireAll();
    assert.equal(attempts, 2, 'one attempt for all of them');
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

  it('its output does not take are written again an interval later, in order, and by finish() at once', async () => {
    const writes: string[] = [];
    let room = 3;
    // An output that takes `room` bytes, then none until it has room again (a pipe whose reader is slow).
    const sink = (bytes: Buffer) => {
      const taken = Math.min(room, bytes.length);
      room -= taken;
      if (taken > 0) writes.push(bytes.subarray(0, taken).toString());
      return taken;
    };
    const waits = manualTimer();
    const lines = new LineBatcher(sink, { minIntervalMs: 20, timer: waits.timer, now: () => 1_000, exitWaitMs: 0 });
    lines.write('aaaa\n');
    await nextTurn();
    assert.deepEqual(writes, ['aaa']);
    assert.deepEqual(waits.waiting(), [20], 'tried again an interval later');
    lines.write('b\n');
    await nextTurn();
    assert.deepEqual(waits.waiting(), [20], 'a line logged meanwhile waits for that write');
    room = 4;
    waits.fireAll();
    assert.equal(writes.join(''), 'aaaa\nb\n');
    assert.deepEqual(waits.waiting(), []);
    lines.write('c\n');
    room = 1;
    lines.finish();
    assert.equal(writes.join(''), 'aaaa\nb\nc', 'what the output took');
    room = 1;
    lines.finish();
    assert.equal(writes.join(''), 'aaaa\nb\nc\n', 'the rest, nothing twice');
    assert.deepEqual(waits.waiting(), []);
  });

  it('still held at exit go out whole lines at a time: a reader too slow to take them all in time is left no line cut short', () => {
    // A pipe, which Node makes non-blocking: a write of at most 4096 bytes (PIPE_BUF) it takes whole or not at all,
    // a longer one in part, as far as it has room. Written as one, what is held was cut mid-line where the room
    // ran out, and the process exited leaving a collector half a JSON line.
    const pipe = { room: 6_000, taken: [] as string[] };
    const sink = (bytes: Buffer) => {
      const n = bytes.length <= 4096 ? (bytes.length <= pipe.room ? bytes.length : 0) : Math.min(pipe.room, bytes.length);
      pipe.room -= n;
      pipe.taken.push(bytes.subarray(0, n).toString());
      return n;
    };
    let now = 1_000;
    const waits = manualTimer();
    // Each look at the clock 100 ms on: the exit's 500 ms wait runs out after a few attempts.
    const batcher = () => new LineBatcher(sink, { timer: waits.timer, now: () => (now += 100), exitWaitMs: 500 });
    const lines = batcher();
    const line = `${'x'.repeat(69)}\n`;
    for (let n = 0; n < 150; n++) lines.write(line);
    lines.finish();
    const written = pipe.taken.join('');
    assert.ok(written.length > 0 && written.endsWith('\n'), `ends with a whole line: …${JSON.stringify(written.slice(-20))}`);
    assert.equal(written, line.repeat(written.length / line.length), 'whole lines, in order');
    // One line cut short already (a write while the process ran): its rest goes out first, alone.
    Object.assign(pipe, { room: 10, taken: [] });
    const after = batcher();
    for (let n = 0; n < 100; n++) after.write(line);
    after.flush();
    pipe.room = 100;
    after.finish();
    assert.equal(pipe.taken.join(''), line, 'the line begun completed, and no other begun');
    assert.deepEqual(waits.waiting(), []);
  });

  it('are dropped past a bound while their output takes none, and how many is said once it takes them again', async () => {
    // A log reader that stopped reading: every line would otherwise stay in the process's memory.
    const { writes, sink, takeAgain } = stoppedReader();
    const waits = manualTimer();
    const lines = new LineBatcher(sink, { minIntervalMs: 20, maxHeldChars: 8, timer: waits.timer, now: () => 1_000 });
    for (let n = 0; n < 1_000; n++) {
      lines.write(`line ${String(n).padStart(3, '0')}\n`);
      if (n % 100 === 99) waits.fireAll();
    }
    takeAgain();
    waits.fireAll();
    const written = writes.join('').split('\n');
    assert.equal(written.pop(), '');
    const kept = written.filter((line) => line.startsWith('line '));
    // Eight batches of 8 characters hold the first seven 9-character lines, in order: fewer kept would drop
    // lines below the bound, more would hold past it.
    const held = Math.floor((8 * 8) / 'line 000\n'.length);
    assert.deepEqual(kept, Array.from({ length: held }, (_, n) => `line ${String(n).padStart(3, '0')}`), 'as many lines held as eight batches hold');
    const notes = written.filter((line) => !line.startsWith('line '));
    assert.equal(notes.length, 1);
    const note = JSON.parse(notes[0]!) as { level: string; message: string; dropped: number };
    assert.equal(note.level, 'error');
    assert.match(note.message, /^log lines dropped/);
    assert.equal(note.dropped, 1_000 - kept.length);
    lines.write('after\n');
    waits.fireAll();
    assert.equal(writes.at(-1), 'after\n', 'said once');
  });

  it('say that lines were dropped where the first went missing: after the lines held before it, before those kept after it', () => {
    const { writes, sink, takeAgain } = stoppedReader();
    const waits = manualTimer();
    /** A batcher holding at most 16 characters unwritten, saying its dropped lines as `(n dropped)`. */
    const batcher = (into: (bytes: Buffer) => number) =>
      new LineBatcher(into, { minIntervalMs: 20, maxHeldChars: 8, maxUnwrittenChars: 16, droppedLine: (n) => `(${n} dropped)\n`, timer: waits.timer, now: () => 1_000 });
    const lines = batcher(sink);
    lines.write('line 01\n');
    lines.write('line 02\n');
    // Dropped: past the bound. Then a line that fits beside the first two is dropped as well, the bound reached.
    lines.write('a line too long\n');
    lines.write('x\n');
    takeAgain();
    waits.fireAll();
    assert.equal(writes.join(''), 'line 01\nline 02\n(2 dropped)\n', 'the note after the lines logged before the gap');
    // Dropped while the output takes none, then a shorter line kept beside what is held: the note comes before it.
    const second = stoppedReader();
    const later = batcher(second.sink);
    later.write('line 01\n');
    later.write('a line too long\n');
    later.write('y\n');
    second.takeAgain();
    waits.fireAll();
    assert.equal(second.writes.join(''), 'line 01\n(1 dropped)\ny\n', 'the note where the gap begins, the line kept after it after the note');
    // Dropped again after that shorter line: the gap still began before it, and the note stays there.
    const third = stoppedReader();
    const again = batcher(third.sink);
    again.write('line 01\n');
    again.write('a line too long\n');
    again.write('y\n');
    again.write('another line too long\n');
    third.takeAgain();
    waits.fireAll();
    assert.equal(third.writes.join(''), 'line 01\n(2 dropped)\ny\n', 'the note where the first line went missing, not the last');
  });

  it('are held while their output takes none up to exactly maxUnwrittenChars, and dropped only past it', () => {
    const { writes, sink, takeAgain } = stoppedReader();
    const waits = manualTimer();
    const lines = new LineBatcher(sink, { minIntervalMs: 20, maxHeldChars: 8, maxUnwrittenChars: 16, timer: waits.timer, now: () => 1_000 });
    lines.write('line 01\n');
    lines.write('line 02\n');
    lines.write('x\n');
    takeAgain();
    waits.fireAll();
    const written = writes.join('').split('\n').slice(0, -1);
    assert.deepEqual(
      written.filter((line) => line.startsWith('line ')),
      ['line 01', 'line 02'],
      'the line that takes what is held to the bound exactly is kept',
    );
    const notes = written.filter((line) => !line.startsWith('line '));
    assert.deepEqual(
      notes.map((note) => (JSON.parse(note) as { dropped: number }).dropped),
      [1],
      'only the line past the bound is dropped',
    );
  });

  it('written to a descriptor that fails for good are given up, not held to be tried again', () => {
    // Any failure but a full pipe (its reader gone, a full disk) loses the lines: retried, they would be
    // held until the bound drops every later line.
    const readOnly = openSync('/dev/null', 'r');
    try {
      assert.equal(descriptorSink(readOnly)(Buffer.from('a line\n')), 'a line\n'.length);
    } finally {
      closeSync(readOnly);
    }
  });

  it('written to a pipe that is full are not taken, so that they are written again, not lost', async () => {
    // The process's stderr, a pipe its reader (this test) never reads: full after a few writes, when Node has
    // made it non-blocking. A sink that took the lines then would lose every line of a burst the reader is slow to take.
    const logger = fileURLToPath(new URL('../../src/logging/logger.ts', import.meta.url));
    const code = `import { descriptorSink } from ${JSON.stringify(logger)};
      const sink = descriptorSink(process.stderr.fd);
      let taken = -1;
      for (let n = 0; n < 1000 && taken !== 0; n++) taken = sink(Buffer.alloc(64 * 1024, 'x'));
      process.stdout.write(String(taken));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.pause();
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const [exitCode] = (await once(child, 'exit')) as [number | null];
    child.stderr.destroy();
    assert.equal(exitCode, 0);
    assert.equal(stdout, '0', 'the last write into the full pipe took nothing');
  });

  it('still held when the process exits are written then', async () => {
    // The gateway's own logger, in a process that exits in the same turn it logs.
    const logger = fileURLToPath(new URL('../../src/logging/logger.ts', import.meta.url));
    const code = `import { createLogger } from ${JSON.stringify(logger)}; createLogger('info').info('the last line'); process.exit(3);`;
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]);
    const failure = (await run.then(() => assert.fail('exited 0'), (error: unknown) => error)) as { code: number; stderr: string };
    assert.equal(failure.code, 3);
    assert.equal((JSON.parse(failure.stderr) as { message: string }).message, 'the last line');
  });

  it('written while their output was full are all written before the process exits, not lost with it', async () => {
    // A burst larger than a pipe takes at once (64 KiB), written while its reader is not reading (a log
    // collector that is slow, busy, or reads in turns); then the process exits, as a stopped gateway does.
    const logger = fileURLToPath(new URL('../../src/logging/logger.ts', import.meta.url));
    const code = `import { createLogger } from ${JSON.stringify(logger)};
      const logger = createLogger('info');
      for (let n = 0; n < 2000; n++) logger.info('a line', { n, padding: 'x'.repeat(500) });
      logger.info('the last line');
      setImmediate(() => process.stdout.write('written', () => process.exit(3)));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.pause();
    let stderr = '';
    // Read only once the lines were written (the turn that logged them is over): the reader comes late.
    child.stdout.once('data', () => child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString())).resume());
    const [exitCode] = (await once(child, 'close')) as [number | null];
    assert.equal(exitCode, 3);
    const lines = stderr.split('\n');
    assert.equal(lines.pop(), '', 'the output ends with a whole line');
    const messages = lines.map((line) => (JSON.parse(line) as { message: string }).message);
    assert.equal(messages.length, 2001, 'every line written');
    assert.equal(messages.at(-1), 'the last line');
  });
});

describe('what was thrown, in a log line', () => {
  it('is said whatever it is, without throwing, and an object only by its tag, never its properties', () => {
    const withoutPrototype = Object.assign(Object.create(null) as object, { secret: 'hunter2' });
    const throwingToString = { secret: 'hunter2', toString: () => { throw new Error('no'); } };
    const throwingMessage = Object.defineProperty(new Error(), 'message', { get: () => { throw new Error('no'); } });
    for (const [thrown, expected] of [
      [new TypeError('bad'), 'TypeError: bad'],
      ['text', 'text'],
      [undefined, 'undefined'],
      [null, 'null'],
      [Symbol('s'), 'Symbol(s)'],
      [10n, '10'],
      [withoutPrototype, '[object Object]'],
      [throwingToString, '[object Object]'],
      [throwingMessage, '[object Error]'],
    ] as const) {
      for (const development of [false, true]) {
        const fields = errorFields(thrown, development);
        assert.equal(fields['error'], expected, String(expected));
        assert.doesNotMatch(JSON.stringify(fields), /hunter2/);
      }
      assert.equal(typeof messageOf(thrown), 'string');
      assert.doesNotMatch(messageOf(thrown), /hunter2/);
    }
    assert.equal(messageOf(withoutPrototype), '[object Object]');
  });
});

/**
 * Apollo passes an Error itself to its logger in a few places (a plugin's throw while it stops or loads its
 * schema): the JSON line wrote it as `"message":{}`, saying nothing.
 */
describe('the logger as Apollo is given it', () => {
  it('writes an Error passed as the message by its message, never its stack', () => {
    const written: string[] = [];
    const logger = apolloLogger(createLogger('debug', (line) => written.push(line)));
    const error = new Error('a plugin threw while stopping');
    logger.error(error as unknown as string);
    logger.warn('said as text');
    const lines = written.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.map((line) => [line['level'], line['message']]), [
      ['error', 'a plugin threw while stopping'],
      ['warn', 'said as text'],
    ]);
    assert.equal(written.join('').includes('at '), false, 'no stack');
  });
});
