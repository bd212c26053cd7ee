import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { startEmulator } from '../../src/emulator/index.ts';
import { api } from './helpers.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cio-emulator-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('persistence', () => {
  test('state survives a restart from the same data file; no temp file is left', async (t) => {
    const dir = await tempDir(t);
    const dataFile = join(dir, 'nested', 'state.json');

    const first = await startEmulator({ seed: 'none', dataFile });
    let accountId: string;
    let token: string;
    try {
      const created = await api(first, '/accounts', { form: { email: 'kept@example.com', first_name: 'Kept' } });
      accountId = created.body.id;
      token = (await api(first, `/accounts/${accountId}/connect_tokens`, { form: { callback_url: 'http://localhost/cb' } })).body.token;
      // Saved after each write, before the response: the file already holds the account.
      const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
      assert.equal(onDisk.accounts.length, 1);
      first.store.addSource(accountId, { status: 'DISABLED' });
    } finally {
      await first.close();
    }

    const second = await startEmulator({ seed: 'demo', dataFile });
    t.after(() => second.close());
    const accounts = await api(second, '/accounts');
    assert.equal(accounts.body.length, 1, 'the data file wins over the seed');
    assert.equal(accounts.body[0].id, accountId);
    assert.equal(accounts.body[0].first_name, 'Kept');
    assert.equal(accounts.body[0].sources[0].status, 'DISABLED', 'a store write saved on close');
    assert.equal(accounts.body[0].resource_url, `${second.url}/accounts/${accountId}`, 'URLs follow the new port');
    assert.equal((await api(second, `/accounts/${accountId}/connect_tokens/${token}`)).status, 200);

    const files = await readdir(join(dir, 'nested'));
    assert.deepEqual(files, ['state.json']);
  });

  test('a fresh data file is created with the seed', async (t) => {
    const dir = await tempDir(t);
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ dataFile });
    t.after(() => emu.close());
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.equal(onDisk.accounts.length, 3);
  });

  test('many concurrent writes leave a valid file', async (t) => {
    const dir = await tempDir(t);
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ seed: 'none', dataFile });
    await Promise.all(Array.from({ length: 30 }, (_, i) => api(emu, '/accounts', { form: { email: `c${i}@example.com` } })));
    await emu.close();
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.equal(onDisk.accounts.length, 30);
    assert.deepEqual(await readdir(dir), ['state.json']);
  });

  test('a corrupt data file fails start-up with a clear error', async (t) => {
    const dir = await tempDir(t);
    const dataFile = join(dir, 'state.json');
    await writeFile(dataFile, '{"format":"contextio-emulator","version":1,"accounts":[');
    await assert.rejects(startEmulator({ dataFile }), /data file .*state\.json is corrupt \(not valid JSON\)/);
    await writeFile(dataFile, JSON.stringify({ format: 'contextio-emulator', version: 1, accounts: [{ id: 5 }], tokens: [] }));
    await assert.rejects(startEmulator({ dataFile }), /account #0 is malformed/);
    await writeFile(dataFile, '[]');
    await assert.rejects(startEmulator({ dataFile }), /corrupt/);
  });

  test('a data file that cannot be written fails start-up, instead of keeping the state in memory only', async (t) => {
    const dir = await tempDir(t);
    const dataFile = join(dir, 'state.json');
    // Readable as "no file yet", but not writable: a directory stands where the write's temporary file goes
    // (permissions would not stop root, which these tests may run as).
    await mkdir(`${dataFile}.${process.pid}.tmp`);
    await assert.rejects(startEmulator({ dataFile }), /cannot write data file .*state\.json: EISDIR/);
  });
});
