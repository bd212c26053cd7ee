import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FEWEST_OPEN_FILES, isOutOfFileDescriptors, openFilesLimitProblem } from '../../src/support/file-descriptors.ts';

/**
 * What `isOutOfFileDescriptors` says of each code in a process that has opened every file descriptor its limit
 * allows: a child of its own, started under a low limit (`ulimit -n`), so that neither this test process nor
 * the machine runs short.
 */
async function outOfDescriptorsSays(codes: string[]): Promise<Record<string, boolean>> {
  const script = `
    import { openSync } from 'node:fs';
    const { isOutOfFileDescriptors } = await import(${JSON.stringify(new URL('../../src/support/file-descriptors.ts', import.meta.url).href)});
    const held = [];
    try {
      for (;;) held.push(openSync('/dev/null', 'r'));
    } catch (error) {
      if (error.code !== 'EMFILE') throw error;
    }
    const said = Object.fromEntries(${JSON.stringify(codes)}.map((code) => [code, isOutOfFileDescriptors(code)]));
    process.stdout.write(JSON.stringify(said));
  `;
  const { stdout } = await promisify(execFile)('sh', ['-c', 'ulimit -n 256 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script]);
  return JSON.parse(stdout) as Record<string, boolean>;
}

describe('isOutOfFileDescriptors', () => {
  it('takes the process’s own shortage for what it is, and nothing else', () => {
    assert.equal(isOutOfFileDescriptors('EMFILE'), true);
    assert.equal(isOutOfFileDescriptors('ENFILE'), true);
    for (const code of [undefined, 'ECONNREFUSED', 'ECONNRESET']) assert.equal(isOutOfFileDescriptors(code), false, String(code));
  });

  it('takes a failed name lookup for the upstream’s while a file can be opened, and for the process’s shortage once none can', async () => {
    // getaddrinfo out of descriptors says ENOTFOUND or EAI_AGAIN, as for a name that does not resolve.
    assert.equal(isOutOfFileDescriptors('ENOTFOUND'), false);
    assert.equal(isOutOfFileDescriptors('EAI_AGAIN'), false);
    assert.deepEqual(await outOfDescriptorsSays(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED']), { ENOTFOUND: true, EAI_AGAIN: true, ECONNREFUSED: false });
  });
});

describe('openFilesLimitProblem', () => {
  /** /proc/self/limits as Linux writes it, with `soft` as the limit of open files. */
  const limits = (soft: string) =>
    ['Limit                     Soft Limit           Hard Limit           Units     ', 'Max cpu time              unlimited            unlimited            seconds   ', `Max open files            ${soft.padEnd(21)}524288               files     `, ''].join('\n');

  it('refuses a limit below the fewest the gateway needs, naming it, and nothing else', () => {
    assert.match(openFilesLimitProblem(limits('64')) ?? '', /^the process may have only 64 files open at once \(ulimit -n\), and the gateway needs at least 256: /);
    assert.match(openFilesLimitProblem(limits(String(FEWEST_OPEN_FILES - 1))) ?? '', /only 255 files/);
    for (const soft of [String(FEWEST_OPEN_FILES), '1024', 'unlimited']) assert.equal(openFilesLimitProblem(limits(soft)), undefined, soft);
    assert.equal(openFilesLimitProblem(undefined), undefined, 'a system without /proc/self/limits');
  });
});
