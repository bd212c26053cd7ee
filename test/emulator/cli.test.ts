import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import type { Emulator } from '../../src/emulator/index.ts';
import { api } from './helpers.ts';

/** `npm run emulator` without its build step: the emulator's command line, in a process of its own. */
function runCli(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/emulator/cli.ts'], {
    env: { PATH: process.env['PATH'] ?? '', EMULATOR_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => output.push(line));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    void exited.then(([code]) => reject(new Error(`exited ${code} before its line:\n${output.join('\n')}`)));
  });
  firstLine.catch(() => undefined); // a test that expects the process to fail never awaits the line
  return { child, output, exited, firstLine };
}

describe('npm run emulator', () => {
  test('prints one line with its URL and key, never a custom secret, serves signed requests and, signalled on that line, saves its data file and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contextio-emulator-cli-'));
    try {
      const dataFile = join(dir, 'state.json');
      const env = { EMULATOR_CONSUMER_KEY: 'cli-key', EMULATOR_CONSUMER_SECRET: 'cli-secret-value', EMULATOR_SEED: 'none', EMULATOR_DATA_FILE: dataFile };
      const first = runCli(env);
      const line = await first.firstLine;
      const url = /listening at (http:\/\/127\.0\.0\.1:\d+\/2\.0) \(consumer key cli-key, secret \(hidden\)\)$/.exec(line)?.[1];
      assert.ok(url, line);
      const emulator = { url, consumerKey: 'cli-key', consumerSecret: 'cli-secret-value' } as Emulator;
      const created = await api(emulator, '/connect_tokens', { form: { callback_url: 'https://app.example.com/cb' } });
      assert.equal(created.status, 201);
      const token = (created.body as { token: string }).token;
      first.child.kill('SIGTERM');
      assert.deepEqual(await first.exited, [0, null]);
      assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
      assert.ok(first.output.every((l) => !l.includes('cli-secret-value')), first.output.join('\n'));

      // Signalled the moment it prints its line, it still closes in order: the state it loaded is kept.
      const second = runCli(env);
      await second.firstLine;
      second.child.kill('SIGTERM');
      assert.deepEqual(await second.exited, [0, null]);
      assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses a bad configuration with a message and exit code 1', async () => {
    const run = runCli({ EMULATOR_PORT: 'not-a-port' });
    const [code] = await run.exited;
    assert.equal(code, 1);
    assert.match(run.output.join('\n'), /EMULATOR_PORT/);
  });
});
