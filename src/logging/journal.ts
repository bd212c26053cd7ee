import { fstatSync } from 'node:fs';
import type { LogLevel } from './logger.ts';

/*
 * systemd's journal as standard error. journald stores each line a service writes at the priority a `<N>` before
 * it says (sd-daemon(3)), and takes that prefix off; a line without one is stored at `info`. Unprefixed, the
 * gateway's warnings and errors, and a refused start, were all `info`: `journalctl -p warning` found none of them.
 * Imports no package: main.ts's start-up check uses it before anything else is loaded.
 */

/** syslog's priority of each log level: debug 7, info 6, warning 4, err 3. */
const PRIORITIES: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/**
 * Whether descriptor `fd` is the journal's stream named by `journalStream` (JOURNAL_STREAM, `device:inode`):
 * systemd sets it for the service's standard error, and a process started from the service with its standard
 * error elsewhere (a file, a pipe to another command) inherits it all the same, where a prefix would be noise.
 */
export function isJournalStream(journalStream: string | undefined, fd: number): boolean {
  if (journalStream === undefined) return false;
  try {
    const { dev, ino } = fstatSync(fd, { bigint: true });
    return journalStream === `${dev}:${ino}`;
  } catch {
    return false;
  }
}

/** What goes before a line of `level` on standard error: its priority when that is the journal, nothing otherwise. */
export const stderrPriority: (level: LogLevel) => string = isJournalStream(process.env['JOURNAL_STREAM'], 2) ? (level) => `<${PRIORITIES[level]}>` : () => '';

/**
 * A start refused, said in plain-text lines on standard error, not JSON ones, under systemd at `err`, so that
 * `journalctl -p err` shows why: a setting or an argument refused (`contextio-graphql: PORT must be …`), each
 * problem a line, by `sayStartRefused`; what stopped it once its settings were read (a port taken, too few open
 * files), by `sayFailedToStart`.
 */
export function sayStartRefused(problem: string): void {
  console.error(`${stderrPriority('error')}contextio-graphql: ${problem}`);
}

export function sayFailedToStart(reason: string): void {
  console.error(`${stderrPriority('error')}contextio-graphql: failed to start: ${reason}`);
}
