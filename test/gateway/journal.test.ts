import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/eventually.ts';
import { IN_MAIN } from '../helpers/main-process.ts';

/**
 * `src/main.ts` with its standard error written to `file`, and JOURNAL_STREAM naming `journal`'s device and inode,
 * as systemd names the journal's stream it connects a service's standard error to. Returns what it wrote there
 * and its exit code: stopped with SIGTERM once `stopAt` is written, or exited on its own.
 */
async function runUnderJournal(dir: string, env: Record<string, string>, stopAt?: RegExp, journal: 'stderr' | 'elsewhere' = 'stderr') {
  const file = join(dir, `stderr-${Math.random().toString(36).slice(2)}`);
  const stderr = openSync(file, 'w');
  const other = join(dir, 'elsewhere');
  if (journal === 'elsewhere') writeFileSync(other, '');
  const named = journal === 'stderr' ? fstatSync(stderr, { bigint: true }) : statSync(other, { bigint: true });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', JOURNAL_STREAM: `${named.dev}:${named.ino}`, ...env },
    stdio: ['ignore', 'ignore', stderr],
  });
  closeSync(stderr);
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const reaper = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    if (stopAt !== undefined) {
      await eventually(() => stopAt.test(readFileSync(file, 'utf8')), { ...IN_MAIN, what: `${stopAt} on standard error` });
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    return { code, lines: readFileSync(file, 'utf8').split('\n').filter((line) => line !== '') };
  } finally {
    clearTimeout(reaper);
  }
}

describe('npm start with systemd\'s journal as standard error (JOURNAL_STREAM)', { skip: process.platform === 'win32' && 'systemd runs on Linux' }, () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'journal-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("starts each line with its level's syslog priority, which journald stores and takes off: warn 4, info 6", async () => {
    const { code, lines } = await runUnderJournal(dir, {}, /"message":"gateway ready"/);
    assert.equal(code, 0, lines.join('\n'));
    const prioritised = lines.map((line) => /^<(\d)>(\{.*\})$/.exec(line));
    assert.ok(prioritised.every(Boolean), `every line is <priority> then one JSON object:\n${lines.join('\n')}`);
    const levels = prioritised.map((match) => [match![1], (JSON.parse(match![2]!) as { level: string; message: string }).level]);
    assert.ok(levels.length >= 4, `the open-mode warning, the ready line, shutting down and stopped:\n${lines.join('\n')}`);
    for (const [priority, level] of levels) assert.equal(priority, { debug: '7', info: '6', warn: '4', error: '3' }[level!], `${level}'s priority`);
    assert.ok(levels.some(([, level]) => level === 'warn'), `open mode's warning is among them:\n${lines.join('\n')}`);
  });

  it('gives a refused start, plain text, the priority of an error (3)', async () => {
    const { code, lines } = await runUnderJournal(dir, { OPERATION_TIMEOUT_MS: 'banana' });
    assert.equal(code, 78, lines.join('\n'));
    assert.deepEqual(lines, ['<3>contextio-graphql: OPERATION_TIMEOUT_MS must be a whole number from 1 to 600000 (got "banana")']);
  });

  it('writes no priority when standard error is not the stream JOURNAL_STREAM names (a process of the service writing elsewhere)', async () => {
    const { code, lines } = await runUnderJournal(dir, {}, /"message":"gateway ready"/, 'elsewhere');
    assert.equal(code, 0, lines.join('\n'));
    assert.ok(lines.length > 0 && lines.every((line) => line.startsWith('{')), `plain JSON lines:\n${lines.join('\n')}`);
  });
});
