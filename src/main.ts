/*
 * `npm start`'s entry (`node dist/src/main.js`): checks what the gateway's modules need of the process before
 * loading them (start.ts, the gateway itself). Kept to modules of its own that import no package: its checks
 * run before anything else is loaded, and what they refuse is said in one line, not a loader's stack trace.
 */
import { openFilesLimitProblem } from './support/file-descriptors.ts';
import { sayFailedToStart } from './logging/journal.ts';

const problem = openFilesLimitProblem();
if (problem === undefined) {
  await import('./start.ts');
} else {
  sayFailedToStart(problem);
  process.exit(1);
}
