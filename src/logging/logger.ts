import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { realTimer, type WaitTimer } from '../support/wait-timer.ts';
import { withControlsEscaped } from '../support/shortened.ts';
import { stderrPriority } from './journal.ts';
import { withHalfPairsReplaced } from '../support/unseen-characters.ts';

/** Log levels from most to least verbose, as `LOG_LEVEL` names them. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// The line's own keys are written first and are not a field's: a field of one of their names would replace them.
export type LogFields = Record<string, unknown> & { time?: never; level?: never; message?: never };

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /**
   * Written whatever `LOG_LEVEL` filters out: the start-up facts an operator needs to run the gateway at
   * all (where it listens, which upstream it uses, that authentication is off), and the first and last lines
   * of a shutdown (without them, a graceful stop read at `warn` looks like a kill).
   */
  announce(level: 'info' | 'warn', message: string, fields?: LogFields): void;
  /** Whether lines at `level` are written: for a field that costs something to compute. */
  enabled(level: LogLevel): boolean;
}

/** Least time between two writes of the gateway's log (see `LineBatcher`). */
const LOG_WRITE_INTERVAL_MS = 20;
/** Held log text written at once, however recent the last write: bounds the memory a burst of lines holds. */
const LOG_MAX_HELD_CHARS = 1024 * 1024;
/**
 * Full batches of log text held at most while its output takes none (a log reader that stopped reading):
 * further lines are dropped, and counted, rather than held in memory without end.
 */
const LOG_MAX_UNWRITTEN_BATCHES = 8;
/** How long an exiting process waits at most for its log's output to take the lines still held. */
const LOG_EXIT_WAIT_MS = 2_000;

/**
 * Where a batcher's lines go: takes what it can of `bytes` now and says how many bytes it took (none when its
 * output is full).
 */
export type LineSink = (bytes: Buffer) => number;

/**
 * A file descriptor as a sink, written synchronously. Not a stream: a pipe's stream queues, in the process,
 * what the pipe does not take at once (a burst over its 64 KiB, a reader that is slow), and writes it only on
 * later turns, so that an exit (the gateway's `stopped`, a crash) loses it. Here what the pipe does not take
 * stays with the batcher, which knows what is left and writes it before the process exits.
 */
export function descriptorSink(fd: number): LineSink {
  return (bytes) => {
    try {
      return writeSync(fd, bytes);
    } catch (error) {
      // Full (a pipe, which Node makes non-blocking): written later. Any other failure (its reader gone, EPIPE;
      // a full disk) loses these lines, as a stream's error would: the requests are still served.
      return (error as NodeJS.ErrnoException).code === 'EAGAIN' ? 0 : bytes.length;
    }
  };
}

export interface LineBatcherOptions {
  /** Least time between two writes; a line waits at most this long (unless its output is full). Default 20 ms. */
  minIntervalMs?: number;
  /** Held text of this length or more is written at once. Default 1 Mi characters. */
  maxHeldChars?: number;
  /** Text held at most while the output takes none; further lines are dropped. Default 8 times `maxHeldChars`. */
  maxUnwrittenChars?: number;
  /** The line that says how many lines were dropped. Default a JSON line at `error`. */
  droppedLine?: (dropped: number) => string;
  /** How long `finish` waits at most for the output to take what is held. Default 2 s. */
  exitWaitMs?: number;
  /** What times the wait for the next write (tests run it by hand). Default `setTimeout`. */
  timer?: WaitTimer;
  /** The clock the interval is kept by. Default `performance.now`. */
  now?: () => number;
}

/**
 * Lines written to `sink` together, in order, rather than one write each. The gateway logs a line per
 * operation: written one by one to a pipe (a log collector's, a container runtime's), each write is a system
 * call that may also wake the reader, and on a busy gateway that is up to a tenth of an operation's CPU. So what a
 * turn logs goes out at its end (`setImmediate`) in one write, and on a busy gateway at most one write every
 * `minIntervalMs`: lines logged sooner after the last write wait for the rest of that interval, so that a
 * write carries many operations' lines (bench/README.md, "a turn's log lines written together"). A quiet
 * gateway's line still goes out at the end of its turn. What the output does not take (a full pipe) is held
 * and written again an interval later; past `maxUnwrittenChars` lines are dropped, and how many is said once
 * the output takes lines again. What is held when the process exits is written then (`finish`), so that
 * only a process killed outright (SIGKILL) loses lines, those of its last 20 ms at most.
 */
export class LineBatcher {
  #held = '';
  /** Written already, but not taken by the sink (its output full): goes out before what is held. */
  #untaken: Buffer = Buffer.alloc(0);
  /** Cancels the write scheduled for what is held; unset when none is. */
  #cancelScheduled: (() => void) | undefined;
  /** Lines dropped since the output last took everything: said once it does again. */
  #dropped = 0;
  /** How much of what is held was logged before the first of those lines: the note goes there. */
  #heldBeforeDrop = 0;
  #lastWrite = -Infinity;
  /** Whether the last byte the output took ends a line: otherwise it holds half a line, whose rest goes out first. */
  #endsLine = true;
  /** Set by `finish`: what is held goes out whole lines at a time (`exitChunk`). */
  #exiting = false;
  readonly #minIntervalMs: number;
  readonly #maxHeldChars: number;
  readonly #maxUnwrittenChars: number;
  readonly #droppedLine: (dropped: number) => string;
  readonly #exitWaitMs: number;
  readonly #timer: WaitTimer;
  readonly #now: () => number;

  constructor(
    private readonly sink: LineSink,
    {
      minIntervalMs = LOG_WRITE_INTERVAL_MS,
      maxHeldChars = LOG_MAX_HELD_CHARS,
      maxUnwrittenChars = LOG_MAX_UNWRITTEN_BATCHES * maxHeldChars,
      droppedLine = droppedLogLine,
      exitWaitMs = LOG_EXIT_WAIT_MS,
      timer = realTimer,
      now = () => performance.now(),
    }: LineBatcherOptions = {},
  ) {
    this.#minIntervalMs = minIntervalMs;
    this.#maxHeldChars = maxHeldChars;
    this.#maxUnwrittenChars = maxUnwrittenChars;
    this.#droppedLine = droppedLine;
    this.#exitWaitMs = exitWaitMs;
    this.#timer = timer;
    this.#now = now;
  }

  readonly write = (line: string): void => {
    if (this.#untaken.length + this.#held.length + line.length > this.#maxUnwrittenChars) {
      if (this.#dropped++ === 0) this.#heldBeforeDrop = this.#held.length;
      return;
    }
    this.#held += line;
    // Its output full, the write already scheduled takes this line too: not one attempt a line meanwhile.
    if (this.#untaken.length > 0) return;
    if (this.#held.length >= this.#maxHeldChars) return this.flush();
    if (this.#cancelScheduled) return;
    // At most the interval: a clock that jumped back (or a test's moved clock put back) must not hold lines longer.
    const wait = Math.min(this.#minIntervalMs, this.#lastWrite + this.#minIntervalMs - this.#now());
    if (wait > 0) {
      this.#cancelScheduled = this.#timer(this.flush, wait);
    } else {
      const immediate = setImmediate(this.flush);
      this.#cancelScheduled = () => clearImmediate(immediate);
    }
  };

  /**
   * Writes what is held now (before a line written around the logger, so that it comes after); what the output
   * does not take is tried again an interval later.
   */
  readonly flush = (): void => {
    this.#cancelScheduled?.();
    this.#cancelScheduled = undefined;
    for (;;) {
      if (this.#untaken.length === 0) {
        // All before taken: what is held, the lines dropped meanwhile said where the first went missing (lines
        // kept after it, shorter ones that still fitted, come after the note). (Held apart until then: joined to
        // what its output does not take, it would be copied at each try.)
        const held = this.#held;
        const text =
          this.#dropped > 0 ? held.slice(0, this.#heldBeforeDrop) + this.#droppedLine(this.#dropped) + held.slice(this.#heldBeforeDrop) : held;
        this.#dropped = 0;
        this.#held = '';
        if (text === '') return;
        this.#untaken = Buffer.from(text);
      }
      this.#lastWrite = this.#now();
      const offered = this.#exiting ? exitChunk(this.#untaken, this.#endsLine) : this.#untaken;
      const taken = this.sink(offered);
      if (taken > 0) this.#endsLine = offered[taken - 1] === NEWLINE;
      this.#untaken = this.#untaken.subarray(taken);
      if (taken < offered.length) {
        this.#cancelScheduled = this.#timer(this.flush, this.#minIntervalMs);
        return;
      }
    }
  };

  /**
   * Writes what is held, waiting for the output to take it (`exitWaitMs` at most): at exit, when no later turn
   * will write it.
   */
  readonly finish = (): void => {
    this.#exiting = true;
    this.flush();
    const giveUpAt = this.#now() + this.#exitWaitMs;
    while (this.#untaken.length > 0 && this.#now() < giveUpAt) {
      sleepSync(EXIT_RETRY_MS);
      this.flush();
    }
    this.#cancelScheduled?.();
    this.#cancelScheduled = undefined;
  };
}

/** Says how many log lines were dropped, at any `LOG_LEVEL`: a log with a gap must say so. */
function droppedLogLine(dropped: number): string {
  const message = 'log lines dropped: their output (standard error) took none of them for too long, and the process holds only so many';
  return logLine('error', message, { dropped });
}

/** One log line: a JSON object, its time, level and message first. */
function logLine(level: LogLevel, message: string, fields?: LogFields): string {
  const entry = { time: new Date().toISOString(), level, message, ...fields };
  const json = JSON.stringify(entry);
  // Half a surrogate pair (from a caller's operationName, a token's sub: JSON they wrote can spell one) is
  // written as an escape of no character, `\ud800`, which strict readers (jq 1.6) refuse, losing the whole line:
  // written as U+FFFD instead, as a UTF-8 decoder shows a broken character. Looked for in the text, so that
  // the usual line pays no second pass (a backslash written before the letters ud8… only takes the long way).
  const wellFormed = HALF_PAIR_ESCAPE.test(json) ? JSON.stringify(entry, (_key, value: unknown) => (typeof value === 'string' ? withHalfPairsReplaced(value) : value)) : json;
  // One line for every reader: a value holding U+2028 (a token's sub, an upstream's words) would break some.
  return `${withControlsEscaped(wellFormed)}\n`;
}

/** How JSON.stringify writes half a surrogate pair: `\ud800` to `\udfff`. */
const HALF_PAIR_ESCAPE = /\\ud[89a-f]/;

const NEWLINE = 0x0a;
/** The most a pipe takes in one write whole or not at all (POSIX's PIPE_BUF on Linux), never in part. */
const WHOLE_PIPE_WRITE = 4096;

/**
 * What of `bytes` to offer the output at once at exit: the rest of the line it took half of, or as many whole
 * lines as a pipe takes whole or not at all (a longer line alone). What is left when the process gives up on a
 * slow reader is then whole lines: written as one, it was cut where the pipe's room ran out, and a collector
 * was left half a JSON line.
 */
function exitChunk(bytes: Buffer, endsLine: boolean): Buffer {
  const firstLineEnd = bytes.indexOf(NEWLINE) + 1 || bytes.length;
  if (!endsLine) return bytes.subarray(0, firstLineEnd);
  return bytes.subarray(0, bytes.lastIndexOf(NEWLINE, WHOLE_PIPE_WRITE - 1) + 1 || firstLineEnd);
}

/** How long `finish` sleeps between two attempts at an output that is full. */
const EXIT_RETRY_MS = 5;

/** Blocks the thread for `ms`: at exit, no later turn can do the waiting. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The gateway's log lines, on standard error (touched first: Node makes a pipe non-blocking as it opens it), each
 * after its priority when that is systemd's journal.
 */
export const stderrLines = new LineBatcher(descriptorSink(process.stderr.fd), { droppedLine: (dropped) => stderrPriority('error') + droppedLogLine(dropped) });
process.on('exit', stderrLines.finish);
const writeToStderr = (line: string, level: LogLevel) => stderrLines.write(stderrPriority(level) + line);

/**
 * One JSON object per line, so log collectors need no parser of their own. Callers never pass secrets,
 * signatures or tokens; fields are values the gateway chose to log, not raw request data.
 */
export function createLogger(level: LogLevel, write: (line: string, level: LogLevel) => void = writeToStderr): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const line = (at: LogLevel, message: string, fields?: LogFields) => write(logLine(at, message, fields), at);
  const emit = (at: LogLevel) => (message: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(at) >= threshold) line(at, message, fields);
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    announce: line,
    enabled: (at) => LOG_LEVELS.indexOf(at) >= threshold,
  };
}

/** A logger that drops everything, for tests and benchmarks that assert on other output. */
export const silentLogger: Logger = createLogger('error', () => {});

/** The message of whatever was thrown, for a log line or a one-line start-up failure. */
export function messageOf(error: unknown): string {
  return thrownAsText(error, (thrown) => (thrown instanceof Error ? thrown.message : String(thrown)));
}

/** An error of a bug as log fields: its stack only in development, the contract keeps it out of every log line otherwise. */
export function errorFields(error: unknown, development: boolean): LogFields {
  const stack = development ? thrownAsText(error, (thrown) => (thrown instanceof Error ? thrown.stack : undefined)) : undefined;
  return {
    error: thrownAsText(error, (thrown) => (thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown))),
    ...(stack === undefined ? {} : { stack }),
  };
}

/**
 * `describe(thrown)`, or, when that throws, `thrown`'s tag (`[object Object]`): anything may be thrown, and the
 * crash line of the last-resort handler must not fail on it, as `String()` does on an object without a
 * prototype (`Object.create(null)`) or whose `toString` throws. Never the object's properties, which may hold
 * a secret.
 */
function thrownAsText<T extends string | undefined>(thrown: unknown, describe: (thrown: unknown) => T): T | string {
  try {
    return describe(thrown);
  } catch {
    try {
      return Object.prototype.toString.call(thrown);
    } catch {
      // A revoked Proxy refuses even that.
      return `a thrown ${typeof thrown}`;
    }
  }
}
