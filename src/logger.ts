/** Log levels from most to least verbose, as `LOG_LEVEL` names them. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /**
   * Written whatever `LOG_LEVEL` filters out: the start-up facts an operator needs to run the gateway at
   * all (where it listens, which upstream it uses, that authentication is off).
   */
  announce(level: 'info' | 'warn', message: string, fields?: LogFields): void;
  /** Whether lines at `level` are written: for a field that costs something to compute. */
  enabled(level: LogLevel): boolean;
}

/**
 * Lines written to `stream` once per event-loop turn, in order, rather than one write each. The gateway logs a
 * line per operation, and on a busy gateway a turn answers several: written one by one to a pipe (a log
 * collector's, a container runtime's), each write is a system call that may also wake the reader. Batched, a
 * turn's lines cost one: scenario 1 of the bench, logging at `info` into a pipe, measured 326–354 µs an
 * operation against 371–386 written line by line (bench/README.md). What a turn logs goes out at its end
 * (`setImmediate`), and what is held when the process exits is written then, so that only a process killed
 * outright loses the last turn's lines.
 */
export class LineBatcher {
  #held = '';
  #scheduled = false;

  constructor(private readonly stream: { write(text: string): unknown }) {}

  readonly write = (line: string): void => {
    this.#held += line;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.flush);
  };

  /** Writes what is held now (at exit, and before a line written around the logger, so that it comes after). */
  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#held === '') return;
    const text = this.#held;
    this.#held = '';
    this.stream.write(text);
  };
}

/** The gateway's log lines, on standard error. */
export const stderrLines = new LineBatcher(process.stderr);
process.on('exit', stderrLines.flush);

/**
 * One JSON object per line, so log collectors need no parser of their own. Callers never pass secrets,
 * signatures or tokens; fields are values the gateway chose to log, not raw request data.
 */
export function createLogger(level: LogLevel, write: (line: string) => void = stderrLines.write): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const line = (at: LogLevel, message: string, fields?: LogFields) =>
    write(`${JSON.stringify({ time: new Date().toISOString(), level: at, message, ...fields })}\n`);
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
  return error instanceof Error ? error.message : String(error);
}
