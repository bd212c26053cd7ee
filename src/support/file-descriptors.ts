import { closeSync, openSync } from 'node:fs';
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
