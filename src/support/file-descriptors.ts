import { closeSync, openSync, readFileSync } from 'node:fs';
import { devNull } from 'node:os';

/*
 * The process's own shortage of file descriptors, which shows as the failure of whatever needed one: the
 * upstream client's connection (not the upstream's fault, so neither retried nor counted by its breaker) and
 * the HTTP server's accept (logged with a hint at the limit to raise).
 */

/** The process (or the system) out of file descriptors: no connection could be opened to anywhere. */
const OUT_OF_DESCRIPTORS_CODES = new Set(['EMFILE', 'ENFILE']);
/** Name lookups fail so too when no descriptor is left for them (getaddrinfo says ENOTFOUND or EAI_AGAIN). */
const LOOKUP_FAILURE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);

/** Whether a connection failed for want of the gateway's own file descriptors rather than anything upstream. */
export function isOutOfFileDescriptors(code: string | undefined): boolean {
  if (code === undefined) return false;
  if (OUT_OF_DESCRIPTORS_CODES.has(code)) return true;
  if (!LOOKUP_FAILURE_CODES.has(code)) return false;
  // A failed lookup costs this check only: can the process open a file at all?
  try {
    closeSync(openSync(devNull, 'r'));
    return false;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code;
    return reason === 'EMFILE' || reason === 'ENFILE';
  }
}

/**
 * The fewest files the gateway may have open at once to start at all. Node's module loader opens the gateway's
 * modules many at a time (it failed to load them under a limit of ~110 or less), and reports one it could not
 * open as missing (`Cannot find package '…'`, with its stack), which sends the operator to reinstall what is
 * there; and each connection, a client's or the upstream's, takes one more.
 */
export const FEWEST_OPEN_FILES = 256;

/**
 * Why the gateway cannot start under the process's limit of open files (its soft `RLIMIT_NOFILE`, as Linux's
 * /proc/self/limits says it: `limitsText` is that file's text), or undefined when it can or none is said.
 */
export function openFilesLimitProblem(limitsText: string | undefined = procSelfLimits()): string | undefined {
  const soft = openFilesLimit(limitsText);
  if (soft === undefined || soft >= FEWEST_OPEN_FILES) return undefined;
  return (
    `the process may have only ${soft} files open at once (ulimit -n), and the gateway needs at least ${FEWEST_OPEN_FILES}: ` +
    'loading its modules opens ~100 at once, and each connection, a client\'s or the upstream\'s, takes one; ' +
    "raise the limit (ulimit -n, systemd's LimitNOFILE, docker run --ulimit nofile=…) to a few thousand: MAX_OPERATIONS_IN_FLIGHT plus UPSTREAM_MAX_IN_FLIGHT and more"
  );
}

/**
 * What the gateway holds open besides its connections once started: its listener, the log, Node's own (~25), and
 * an upstream connection at start; with room to spare.
 */
const FILES_BESIDES_CONNECTIONS = 64;

/**
 * The limit of open files when it is below what `connections` (the most the gateway's caps let in at once) and
 * the gateway's own files need, with that need; undefined when it is not, or none is said. Past the limit, a
 * client's connection is accepted and closed at once by Node's library, which logs nothing of it.
 */
export function openFilesShortfall(connections: number, limitsText: string | undefined = procSelfLimits()): { limit: number; needed: number } | undefined {
  const limit = openFilesLimit(limitsText);
  const needed = connections + FILES_BESIDES_CONNECTIONS;
  return limit === undefined || limit >= needed ? undefined : { limit, needed };
}

/** The soft limit of open files in /proc/self/limits's text; undefined for none, or `unlimited`. */
function openFilesLimit(limitsText: string | undefined): number | undefined {
  const soft = /^Max open files\s+(\d+)\s/m.exec(limitsText ?? '')?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/** Linux's account of the process's limits; undefined on systems without it. */
function procSelfLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}
