import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { startEmulator, type EmulatorOptions } from '../../src/emulator/index.ts';
import { writeAtomically } from '../../src/support/atomic-file.ts';
import { whileReplacingBuiltin } from '../helpers/builtins.ts';
import { deferred } from '../helpers/deferred.ts';
import { eventually } from '../helpers/eventually.ts';
import { api, manualClock, submitConnectForm } from './helpers.ts';

// Removed once every test is over: a test's own after-hooks run in the order they were added, so an
// emulator closed by one (closing saves its state) would otherwise write its folder back after removal.
const tempDirs: string[] = [];
after(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cio-emulator-'));
  tempDirs.push(dir);
  return dir;
}

/** Starts an emulator that must be refused; one that starts all the same is closed, so that it fails the test and no more. */
const refusedStart = (options: EmulatorOptions) => startEmulator(options).then((emulator) => emulator.close());

describe('persistence', () => {
  test('state survives a restart from the same data file, in two folders made for it; no temp file is left', async (t) => {
    const dir = await tempDir();
    // Two folders not there yet: both made.
    const dataFile = join(dir, 'nested', 'deeper', 'state.json');

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

    const files = await readdir(join(dir, 'nested', 'deeper'));
    assert.deepEqual(files, ['state.json']);
  });

  test('a fresh data file is created with the seed', async (t) => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ dataFile });
    t.after(() => emu.close());
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.equal(onDisk.accounts.length, 3);
  });

  test('many concurrent writes leave a valid file', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ seed: 'none', dataFile });
    await Promise.all(Array.from({ length: 30 }, (_, i) => api(emu, '/accounts', { form: { email: `c${i}@example.com` } })));
    await emu.close();
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.equal(onDisk.accounts.length, 30);
    assert.deepEqual(await readdir(dir), ['state.json']);
  });

  test('a data file edited by hand is read with a byte order mark before its JSON (Notepad puts one)', async (t) => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const first = await startEmulator({ seed: 'none', dataFile });
    const created = await api(first, '/accounts', { form: { email: 'marked@example.com' } });
    await first.close();
    assert.equal(created.status, 201);
    await writeFile(dataFile, `\uFEFF${await readFile(dataFile, 'utf8')}`);
    const second = await startEmulator({ seed: 'none', dataFile });
    t.after(() => second.close());
    assert.deepEqual((await api(second, '/accounts')).body.map((a: { email_addresses: string[] }) => a.email_addresses[0]), ['marked@example.com']);
  });

  test('a data file that is not UTF-8 (an editor saved it as Latin-1) fails start-up, instead of loading with its bytes replaced by U+FFFD and written back so at once', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const first = await startEmulator({ seed: 'none', dataFile });
    await api(first, '/accounts', { form: { email: 'zoe@example.com', first_name: 'Zoë' } });
    await first.close();
    // Saved again as Latin-1: "Zoë" written with 0xEB, which is no UTF-8.
    const latin1 = Buffer.from(await readFile(dataFile, 'utf8'), 'latin1');
    await writeFile(dataFile, latin1);
    await assert.rejects(refusedStart({ dataFile }), /data file .*state\.json is corrupt \(not UTF-8\)/);
    assert.ok((await readFile(dataFile)).equals(latin1), 'the file is left as it was');
  });

  test('a corrupt data file fails start-up with a clear error', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    await writeFile(dataFile, '{"format":"contextio-emulator","version":1,"accounts":[');
    await assert.rejects(refusedStart({ dataFile }), /data file .*state\.json is corrupt \(not valid JSON at line 1, column 56, its end\)/);
    // A file edited by hand is told where its mistake is, as an editor counts (lines from 1, characters of the line
    // from 1): "not valid JSON" alone left the whole file to search. A comma too many (the } after it), and one
    // missing (the name after a value holding 😀, one character of two UTF-16 units), on lines ending \r\n:
    const lines = ['{', '  "format": "contextio-emulator",', '  "version": 1,', '  "accounts": [],', '  "tokens": [],', '}'];
    await writeFile(dataFile, lines.join('\n'));
    await assert.rejects(refusedStart({ dataFile }), /is corrupt \(not valid JSON at line 6, column 1\); fix or delete it$/);
    await writeFile(dataFile, '{"format": "contextio-emulator",\r\n"version": 1,\r\n"note": "😀 é" "accounts": [], "tokens": []}');
    await assert.rejects(refusedStart({ dataFile }), /is corrupt \(not valid JSON at line 3, column 15\); fix or delete it$/);
    // Where V8's message quotes the text around the mistake instead of naming its position, none of it is said
    // (it may be a connect token's, which lets a browser connect a mailbox), but its place is.
    await writeFile(dataFile, '{"tokens": [{"token": "sesame1234567890", "owner": nul}]}');
    const quoted = await refusedStart({ dataFile }).then(() => '', (error: Error) => error.message);
    assert.match(quoted, /is corrupt \(not valid JSON at line 1, column 55\); fix or delete it$/);
    assert.doesNotMatch(quoted, /sesame|nul/, 'no text of the file is quoted');
    // An empty file (`touch`ed, or cut short by a copy that failed) is said so, not located as a JSON mistake; it is
    // kept, not seeded over: what emptied it may have been meant to fill it.
    for (const blank of ['', ' \n\t\r\n']) {
      await writeFile(dataFile, blank);
      await assert.rejects(refusedStart({ dataFile }), /data file .*state\.json is corrupt \(empty\); fix or delete it$/, JSON.stringify(blank));
    }
    await writeFile(dataFile, JSON.stringify({ format: 'contextio-emulator', version: 1, accounts: [{ id: 5 }], tokens: [] }));
    await assert.rejects(refusedStart({ dataFile }), /account #0 is malformed/);
    await writeFile(dataFile, '[]');
    await assert.rejects(refusedStart({ dataFile }), /corrupt/);
    // Which list, and why: one there but no list was said to be missing.
    await writeFile(dataFile, JSON.stringify({ format: 'contextio-emulator', version: 1, accounts: {}, tokens: [] }));
    await assert.rejects(refusedStart({ dataFile }), /is corrupt \(accounts must be a list\); fix or delete it$/);
    await writeFile(dataFile, JSON.stringify({ format: 'contextio-emulator', version: 1, accounts: [] }));
    await assert.rejects(refusedStart({ dataFile }), /is corrupt \(tokens missing\); fix or delete it$/);
    // One of a later version is no corrupt file to delete: an older emulator cannot read it.
    await writeFile(dataFile, JSON.stringify({ format: 'contextio-emulator', version: 2, accounts: [], tokens: [] }));
    const newer = await refusedStart({ dataFile }).then(() => undefined, (error: Error) => error.message);
    assert.match(String(newer), /data file .*state\.json was written by a later version of the emulator \(its version 2; this one reads version 1\)/);
    assert.doesNotMatch(String(newer), /corrupt|delete/);
  });

  test('a mistake of a file edited by hand is located wherever it is, those V8 names without a position too (a word misspelt, True, NaN, a comment, a comma too many in a list)', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    // V8 quotes the text around these instead of naming their position: "not valid JSON" alone left a file of
    // thousands of lines to search. Each is on line 3, in a file written as the emulator writes it.
    const mistakes: Array<[string, string, number]> = [
      ['a word misspelt', '    "x": tru,', 13],
      ['a word in another language', '    "x": True,', 10],
      ['NaN', '    "x": NaN,', 10],
      ['a comment', '    "x": [1, // two', 14],
      ['a comma too many in a list', '    "x": [1,, 2],', 13],
      ['undefined', '    "x": undefined,', 10],
    ];
    for (const [what, line, column] of mistakes) {
      await writeFile(dataFile, ['{', '  "format": "contextio-emulator",', line, '  "version": 1, "accounts": [], "tokens": []', '}'].join('\n'));
      const said = await refusedStart({ dataFile }).then(() => 'started', (error: Error) => error.message);
      assert.match(said, new RegExp(`is corrupt \\(not valid JSON at line 3, column ${column}\\); fix or delete it$`), `${what}: ${said}`);
    }
  });

  // JSON.parse keeps the last of a repeated name, and the start writes the file back at once: a second "accounts"
  // pasted in (two files merged by hand) lost the first list for good, and a field edited where it was repeated
  // changed nothing, both without a word.
  test('a name repeated in one object of a file edited by hand stops the start, located, instead of the last one taken and the others lost', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const texts = [
      ['{', '  "format": "contextio-emulator", "version": 1,', '  "accounts": [], "tokens": [],', '  "accounts": []', '}'],
      ['{', '  "format": "contextio-emulator", "version": 1, "tokens": [],', '  "accounts": [{"id": "a"}, {"id": "b",', '    "x": 1, "\\u0078": 2}]', '}'],
    ];
    for (const [i, lines] of texts.entries()) {
      const text = lines.join('\n');
      await writeFile(dataFile, text);
      const said = await refusedStart({ dataFile }).then(() => 'started', (error: Error) => error.message);
      assert.match(said, /is corrupt \(a name repeated in one object at line 4, column \d+: JSON keeps only the last\); fix or delete it$/, `text ${i}: ${said}`);
      assert.equal(await readFile(dataFile, 'utf8'), text, `text ${i}: the file is as it was`);
    }
  });

  test('a data file that is no file (a named pipe, a device) fails start-up with a line saying so, instead of a start that never ends', { timeout: 10_000 }, async () => {
    const dir = await tempDir();
    const pipe = join(dir, 'state.json');
    execFileSync('mkfifo', [pipe]);
    try {
      // Read, a pipe no one writes to blocks the start for ever.
      await assert.rejects(refusedStart({ dataFile: pipe }), new RegExp(`data file ${pipe} is not a file \\(a folder, a pipe or a device\\)`));
    } finally {
      // A read left blocked on the pipe (without the check) would keep the test process alive: a writer ends it.
      await open(pipe, constants.O_WRONLY | constants.O_NONBLOCK).then((handle) => handle.close(), () => undefined);
    }
    // And /dev/null, read, is an empty file: corrupt, it said, "fix or delete it".
    await assert.rejects(refusedStart({ dataFile: '/dev/null' }), /data file \/dev\/null is not a file/);
    // A path that names a folder however the disk stands: the start made the folders before it, then failed to
    // open "state.json/.<pid>.tmp" (ENOENT), a line that said nothing of the path's mistake.
    for (const folder of ['state.json/', '.', '..'].map((name) => `${dir}/made/${name}`)) {
      await assert.rejects(refusedStart({ dataFile: folder }), new RegExp(`^Error: Context\\.IO emulator: data file ${folder.replaceAll('.', '\\.')} names a folder: set EMULATOR_DATA_FILE to a file's path$`), folder);
    }
    assert.deepEqual(await readdir(dir), ['state.json'], 'no folder made');
  });

  test('a data file that cannot be written fails start-up, instead of keeping the state in memory only', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    // Readable as "no file yet", but not writable: a directory stands where the write's temporary file goes
    // (permissions would not stop root, which these tests may run as).
    await mkdir(`${dataFile}.${process.pid}.tmp`);
    await assert.rejects(refusedStart({ dataFile }), /cannot write data file .*state\.json: EEXIST/);
  });

  test('a data file in a directory that cannot be made fails start-up (under /proc, Node’s own mkdir -p spun forever)', { timeout: 10_000 }, async () => {
    await assert.rejects(refusedStart({ dataFile: '/proc/no-such-process/deeper/state.json' }), /cannot write data file .*state\.json: E[A-Z]+/);
  });

  test('a write that cannot be saved is answered 500, not taken for done; saved with the next write that can be; a close that cannot save rejects', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ seed: 'none', dataFile });
    const blocker = `${dataFile}.${process.pid}.tmp`;
    const stderr = process.stderr.write;
    const saveErrors: string[] = [];
    process.stderr.write = ((chunk: string) => saveErrors.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      await mkdir(blocker); // every save fails from now on (see the start-up test above)
      const refused = await api(emu, '/accounts', { form: { email: 'unsaved@example.com' } });
      assert.equal(refused.status, 500);
      assert.match(refused.body.value, /could not be saved to the data file .*lost if the emulator stops before a later save succeeds/);
      assert.equal(saveErrors.length, 1);
      assert.equal(saveErrors[0]!.split(': EEXIST')[0], `Context.IO emulator: could not save state to ${dataFile}`, 'the line names the file');
      // A read changes nothing, so it is answered whatever became of that save: a HEAD as a GET.
      for (const method of ['GET', 'HEAD']) assert.equal((await api(emu, '/accounts', { method })).status, 200, method);
      await rm(blocker, { recursive: true });
      assert.equal((await api(emu, '/accounts', { form: { email: 'saved@example.com' } })).status, 201);
      const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
      assert.deepEqual(onDisk.accounts.map((a: { email_addresses: string[] }) => a.email_addresses[0]).sort(), ['saved@example.com', 'unsaved@example.com']);
      await mkdir(blocker);
      emu.store.addSource(onDisk.accounts[0].id, { status: 'DISABLED' });
      await assert.rejects(emu.close(), /could not save state on closing \(the changes since the last save are lost\): EEXIST/);
    } finally {
      process.stderr.write = stderr;
      await emu.close().catch(() => undefined);
    }
  });
  test('every kind of write that cannot be saved is answered 500: an update, a token made and a delete, as a create is', async (t) => {
    const { dataFile, emu, saveErrors } = await emulatorSavingTo(t);
    const { id } = emu.store.createAccount({ email: 'kept@example.com' });
    const { token } = emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    await emu.store.flush();
    await mkdir(`${dataFile}.${process.pid}.tmp`); // every save fails from now on
    const writes: Array<[string, Parameters<typeof api>[2]]> = [
      [`/accounts/${id}`, { form: { first_name: 'Unsaved' } }],
      [`/accounts/${id}/connect_tokens`, { form: { callback_url: 'https://app.example.com/cb' } }],
      [`/connect_tokens/${token}`, { method: 'DELETE' }],
      [`/accounts/${id}`, { method: 'DELETE' }],
    ];
    for (const [path, options] of writes) {
      const refused = await api(emu, path, options);
      const what = `${options!.method ?? 'POST'} ${path}`;
      assert.equal(refused.status, 500, what);
      assert.match(refused.body.value, /could not be saved to the data file/, what);
    }
    assert.equal(saveErrors.length, writes.length);
  });

  test('a mailbox added to an account through the connect page is on disk by the redirect: its source and the token used', async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    const { id } = emu.store.createAccount({ email: 'kept@example.com' });
    const { token } = emu.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' });
    await emu.store.flush();
    const res = await submitConnectForm(emu.origin, token, { email: 'second@example.com', port: '993' });
    assert.equal(res.status, 303);
    // No account is created here (the one change that saved itself): the use of the token must save.
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.deepEqual(onDisk.accounts[0].sources.map((s: { email: string }) => s.email), ['second@example.com']);
    assert.ok(onDisk.tokens[0].used > 0, 'the token is used on disk');
  });

  test('an account deleted takes its account-level tokens with it, used ones too: the data file it leaves loads at the next start', async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    const { id } = emu.store.createAccount({ email: 'leaving@example.com' });
    const used = emu.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' }).token;
    emu.store.useConnectToken(used, { email: 'second@example.com' });
    const unused = emu.store.createConnectToken(id, { callback_url: 'https://app.example.com/cb' }).token;
    assert.equal((await api(emu, `/accounts/${id}`, { method: 'DELETE' })).status, 200);
    assert.deepEqual([emu.store.connectTokenState(used), emu.store.connectTokenState(unused)], ['missing', 'missing']);
    await emu.close();
    assert.deepEqual(JSON.parse(await readFile(dataFile, 'utf8')).tokens, []);
    const restarted = await startEmulator({ dataFile });
    await restarted.close();
  });

  test('a reset is saved as any change is, without waiting for the next write or the close', async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t, { seed: 'demo' });
    emu.store.reset('none');
    await emu.store.flush();
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.deepEqual([onDisk.accounts.length, onDisk.tokens.length], [0, 0]);
  });

  test('a connect token purged as expired is gone from the data file too', async (t) => {
    const clock = manualClock();
    const { dataFile, emu } = await emulatorSavingTo(t, { now: clock.now });
    emu.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
    await emu.store.flush();
    assert.equal(JSON.parse(await readFile(dataFile, 'utf8')).tokens.length, 1);
    clock.advance(86_400);
    const list = await api(emu, '/connect_tokens', { timestamp: Math.floor(clock.now() / 1000) });
    assert.deepEqual(list.body, []);
    await emu.store.flush();
    assert.deepEqual(JSON.parse(await readFile(dataFile, 'utf8')).tokens, []);
  });

  test('a close answers the write in flight once it is saved, before it cuts the connections', async (t) => {
    const emu = await startEmulator({ seed: 'none' });
    let finishSave!: () => void;
    const saved = new Promise<undefined>((resolve) => (finishSave = () => resolve(undefined)));
    let flushes = 0;
    const flush = emu.store.flush.bind(emu.store);
    emu.store.flush = () => {
      flushes += 1;
      return saved.then(flush);
    };
    // In this order: a close waits for the save.
    t.after(finishSave);
    t.after(() => emu.close());
    const write = api(emu, '/accounts', { form: { email: 'late@example.com' } });
    await eventually(() => flushes === 1, { what: 'the write waits for its save' });
    const closed = emu.close();
    await eventually(() => flushes === 2, { what: 'the close waits for the same save' });
    finishSave();
    assert.equal((await write).status, 201, 'answered, not cut: its client would take a change made for one that failed');
    await closed;
  });

  test('a data file edited in place to the same size (same inode) is not overwritten either: its time tells the edit apart', async (t) => {
    const { dataFile, emu, saveErrors } = await emulatorSavingTo(t);
    assert.equal((await api(emu, '/accounts', { form: { email: 'kept@example.com', first_name: 'Kept' } })).status, 201);
    const saved = await stat(dataFile);
    const edited = (await readFile(dataFile, 'utf8')).replace('"Kept"', '"Edit"');
    await writeFile(dataFile, edited); // truncated and rewritten: the same file, the same size
    await utimes(dataFile, saved.atime, new Date(saved.mtimeMs + 5_000));
    assert.deepEqual([(await stat(dataFile)).ino, (await stat(dataFile)).size], [saved.ino, saved.size]);

    assert.equal((await api(emu, '/accounts', { form: { email: 'later@example.com' } })).status, 500);
    assert.match(saveErrors[0]!.message, /changed by another process since this emulator last saved it/);
    assert.equal(await readFile(dataFile, 'utf8'), edited);
  });

  test('a data file emptied meanwhile is not overwritten, and the refusal says to delete it, not to restart (a start refuses an empty file)', async (t) => {
    const { dataFile, emu, saveErrors } = await emulatorSavingTo(t);
    assert.equal((await api(emu, '/accounts', { form: { email: 'kept@example.com' } })).status, 201);
    await writeFile(dataFile, '');
    assert.equal((await api(emu, '/accounts', { form: { email: 'later@example.com' } })).status, 500);
    assert.match(saveErrors[0]!.message, /was emptied by another process since this emulator last saved it: not overwritten; delete the empty file, and this emulator's next change writes its state there again$/);
    // As it says: deleted, the next change writes the whole state, both accounts.
    await rm(dataFile);
    assert.equal((await api(emu, '/accounts', { form: { email: 'last@example.com' } })).status, 201);
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8')).accounts.map((a: { email_addresses: string[] }) => a.email_addresses[0]).sort();
    assert.deepEqual(onDisk, ['kept@example.com', 'last@example.com', 'later@example.com']);
  });

  test('a data file another process wrote meanwhile (a second emulator on it) is not overwritten: the write is answered 500', async (t) => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const accountsOnDisk = async () =>
      JSON.parse(await readFile(dataFile, 'utf8')).accounts.map((a: { email_addresses: string[] }) => a.email_addresses[0]).sort();
    const saveErrors: Error[] = [];
    const first = await startEmulator({ seed: 'none', dataFile, onSaveError: (error) => saveErrors.push(error) });
    t.after(() => first.close().catch(() => undefined));
    assert.equal((await api(first, '/accounts', { form: { email: 'before@example.com' } })).status, 201);
    // Loads what the first saved, and writes the file anew.
    const second = await startEmulator({ seed: 'none', dataFile });
    t.after(() => second.close());
    assert.equal((await api(second, '/accounts', { form: { email: 'second@example.com' } })).status, 201);

    // Saved, the first's state (without the second's account) would erase the second's from the file.
    const refused = await api(first, '/accounts', { form: { email: 'first@example.com' } });
    assert.equal(refused.status, 500);
    assert.equal(saveErrors.length, 1);
    assert.match(saveErrors[0]!.message, /changed by another process since this emulator last saved it .*not overwritten/);
    assert.deepEqual(await accountsOnDisk(), ['before@example.com', 'second@example.com']);
    await assert.rejects(first.close(), /could not save state on closing/);
    assert.deepEqual(await accountsOnDisk(), ['before@example.com', 'second@example.com']);

    // The file deleted (by hand, to start afresh) is written again.
    assert.equal((await api(second, '/accounts', { form: { email: 'later@example.com' } })).status, 201);
    await rm(dataFile);
    assert.equal((await api(second, '/accounts', { form: { email: 'last@example.com' } })).status, 201);
    assert.equal((await accountsOnDisk()).length, 4);
  });

  test('a data file another process writes while a start loads it (a second emulator answering a write meanwhile) is not overwritten by the start: the start fails instead', async (t) => {
    const { dataFile, emu: first } = await emulatorSavingTo(t);
    assert.equal((await api(first, '/accounts', { form: { email: 'before@example.com' } })).status, 201);
    // The second has read the file (its stale temporary files are looked for next) when the first answers a write.
    const readWhileLooking = (readdir: (path: string) => Promise<string[]>) => async (path: string) => {
      assert.equal((await api(first, '/accounts', { form: { email: 'answered@example.com' } })).status, 201);
      return readdir(path);
    };
    await whileReplacingBuiltin('node:fs/promises', 'readdir', readWhileLooking, () =>
      // Written over, the file lost the account the first had answered as saved, and the first went on as if it held it.
      assert.rejects(refusedStart({ seed: 'none', dataFile }), /^Error: Context\.IO emulator: cannot write data file .*state\.json: .* was changed by another process since this emulator last saved it/),
    );
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8')).accounts.map((a: { email_addresses: string[] }) => a.email_addresses[0]);
    assert.deepEqual(onDisk.sort(), ['answered@example.com', 'before@example.com']);
  });

  test('two emulators of one process saving one file at once never leave it torn: their saves, which share a temporary file, are made one after the other', async (t) => {
    const { dataFile, emu: first } = await emulatorSavingTo(t);
    const { id } = first.store.createAccount({ email: 'before@example.com', first_name: 'A name long enough to be missed' });
    await first.store.flush();
    // The first's next save is held once its temporary file is open, while the second starts on the file.
    let opens = 0;
    const firstOpened = deferred();
    const secondOpened = deferred();
    const resume = deferred();
    const holdFirst = (open: (...args: unknown[]) => Promise<unknown>) => async (...args: unknown[]) => {
      const handle = await open(...args);
      if (String(args[0]).endsWith('.tmp')) {
        opens += 1;
        if (opens === 1) {
          firstOpened.resolve();
          await resume.promise;
        } else {
          secondOpened.resolve();
        }
      }
      return handle;
    };
    await whileReplacingBuiltin('node:fs/promises', 'open', holdFirst, async () => {
      try {
        // Shorter than the file: written into the second's file (renamed by the second meanwhile), it left the end of
        // the second's JSON after its own.
        const deleted = api(first, `/accounts/${id}`, { method: 'DELETE' });
        await firstOpened.promise;
        const second = startEmulator({ seed: 'none', dataFile });
        second.then((emu) => t.after(() => emu.close().catch(() => undefined)), () => undefined);
        // The first released once the second has opened the temporary file too (saves made at once), or has had 100
        // turns of the event loop to (saves made one after the other: it waits for the first's).
        let turns = 0;
        const waited = async () => {
          while (turns++ < 100) await new Promise((resolve) => setImmediate(resolve));
        };
        await Promise.race([secondOpened.promise, waited()]);
        resume.resolve();
        await deleted;
        // Waiting, the second finds the file saved since it read it: refused, as a second emulator is.
        await second.catch(() => undefined);
      } finally {
        resume.resolve();
      }
    });
    const accounts = JSON.parse(await readFile(dataFile, 'utf8')).accounts;
    assert.ok(Array.isArray(accounts), "the file is whole: one emulator's state or the other's");
  });

  test('a stop with no change left to save loses nothing: it does not fail when it cannot save, and writes over no edit made meanwhile (for the restart that loads it)', async () => {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const saveErrors: Error[] = [];
    const emu = await startEmulator({ seed: 'none', dataFile, onSaveError: (error) => saveErrors.push(error) });
    try {
      assert.equal((await api(emu, '/accounts', { form: { email: 'saved@example.com' } })).status, 201);
      // Edited by hand while the emulator runs, to be loaded by its restart, as the emulator says to do.
      const edited = JSON.parse(await readFile(dataFile, 'utf8'));
      edited.accounts[0].first_name = 'Edited';
      await writeFile(dataFile, JSON.stringify(edited));
      await emu.close();
      assert.equal(JSON.parse(await readFile(dataFile, 'utf8')).accounts[0].first_name, 'Edited');
      assert.equal(saveErrors.length, 1, 'the save on closing, refused, is reported all the same');
      assert.match(saveErrors[0]!.message, /changed by another process/);
    } finally {
      await emu.close().catch(() => undefined);
    }
  });

  test('a change made while a save is written is not counted saved by it: that save succeeding and the next failing, the close rejects', async (t) => {
    const { dataFile, emu, saveErrors } = await emulatorSavingTo(t);
    // The next save is held at its rename until released, and the one after it fails there: a disk that
    // fills up between two saves.
    let renames = 0;
    const held = deferred();
    const released = deferred();
    const holdThenFail = (rename: (from: string, to: string) => Promise<void>) => async (from: string, to: string) => {
      renames += 1;
      if (renames > 1) throw Object.assign(new Error('ENOSPC: no space left on device, rename'), { code: 'ENOSPC' });
      held.resolve();
      await released.promise;
      return rename(from, to);
    };
    await whileReplacingBuiltin('node:fs/promises', 'rename', holdThenFail, async () => {
      try {
        emu.store.createAccount({ email: 'saved@example.com' });
        await held.promise;
        // Made while the first save is written: in the next save, which fails, so it is lost.
        emu.store.createAccount({ email: 'lost@example.com' });
        released.resolve();
        await assert.rejects(emu.close(), /could not save state on closing \(the changes since the last save are lost\): ENOSPC/);
        assert.deepEqual(
          JSON.parse(await readFile(dataFile, 'utf8')).accounts.map((a: { email_addresses: string[] }) => a.email_addresses[0]),
          ['saved@example.com'],
        );
        assert.ok(saveErrors.length > 0 && saveErrors.every((error) => /ENOSPC/.test(error.message)), 'every later save failed, reported');
      } finally {
        // A save still held would hold the emulator's close after the test.
        released.resolve();
      }
    });
  });
});

describe('the data file as read and written', () => {
  /** A data file holding one account with one source and one used top-level token, each shaped as saved. */
  async function savedState() {
    const dir = await tempDir();
    const dataFile = join(dir, 'state.json');
    const emu = await startEmulator({ seed: 'none', dataFile });
    try {
      const account = await api(emu, '/accounts', { form: { email: 'saved@example.com' } });
      emu.store.addSource(account.body.id, {});
    } finally {
      // Left open by a failure, the emulator kept the file's process alive to the run's time limit.
      await emu.close();
    }
    return { dir, dataFile, state: JSON.parse(await readFile(dataFile, 'utf8')) };
  }

  // A file of thousands of records, edited by hand: "account #1523" alone left its reader counting records.
  test('a record\'s mistake is located at the value refused, or at the record when a field is missing', async () => {
    const { dataFile, state } = await savedState();
    const located = async (edit: (copy: typeof state) => void) => {
      const copy = structuredClone(state);
      copy.accounts.push(...[1, 2].map((n) => ({ ...structuredClone(copy.accounts[0]), id: `${copy.accounts[0].id}${n}` })));
      edit(copy);
      const text = JSON.stringify(copy, null, 2);
      await writeFile(dataFile, text);
      const message = await refusedStart({ dataFile }).then(() => '', (error: Error) => error.message);
      const place = /; at line (\d+), column (\d+)\); fix or delete it$/.exec(message);
      assert.ok(place, `located: ${message}`);
      const lines = text.split('\n');
      return { message, from: lines[Number(place[1]) - 1]!.slice(Number(place[2]) - 1) };
    };
    // The value refused, where the line holds it.
    let found = await located((s) => (s.accounts[2].sources[0].port = 0));
    assert.match(found.message, /account #2 is malformed: sources\[0\]\.port must be a port number/);
    assert.equal(found.from, '0,');
    found = await located((s) => (s.accounts[1].email_addresses = ['ok@example.com', 7]));
    assert.equal(found.from, '7');
    // A field missing: its record.
    found = await located((s) => delete s.accounts[2].first_name);
    assert.match(found.message, /account #2 is malformed: first_name must be a string/);
    assert.equal(found.from, '{');
    found = await located((s) => (s.accounts[2].id = s.accounts[0].id));
    assert.match(found.message, /account #2 repeats the id/);
    assert.equal(found.from, `${JSON.stringify(state.accounts[0].id)},`);
    found = await located((s) => s.tokens.push({ token: 'abc', owner: 'nobody', created: 1, used: 0, callback_url: 'http://localhost/' }));
    assert.equal(found.from, '"nobody",');
  });

  test('a record missing a field the API renders, or holding the wrong type, stops the start and is named', async () => {
    const { dataFile, state } = await savedState();
    const broken = (edit: (copy: typeof state) => void) => {
      const copy = structuredClone(state);
      edit(copy);
      return writeFile(dataFile, JSON.stringify(copy));
    };
    const cases: Array<[(s: typeof state) => void, RegExp]> = [
      // Served as [null], and GET /accounts?email= then failed with a 500.
      [(s) => (s.accounts[0].email_addresses = [null]), /account #0 is malformed: email_addresses\[0\] must be a string/],
      [(s) => delete s.accounts[0].first_name, /account #0 is malformed: first_name must be a string/],
      [(s) => (s.accounts[0].sources[0].port = '993'), /account #0 is malformed: sources\[0\]\.port must be a port number from 1 to 65535/],
      // Loaded, any whole number was served as the port, where the API takes 1–65535 (POST /accounts, the connect page).
      [(s) => (s.accounts[0].sources[0].port = 0), /account #0 is malformed: sources\[0\]\.port must be a port number from 1 to 65535, not "0"; at line \d+, column \d+\)/],
      [(s) => (s.accounts[0].sources[0].port = 65_536), /account #0 is malformed: sources\[0\]\.port must be a port number from 1 to 65535, not "65536"; at line \d+, column \d+\)/],
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'gone', account_snapshot: { id: 'gone', created: 1, suspended: 0, email_addresses: [], sources: [{ label: 'l', port: 0 }] } }),
        /connect token #0 is malformed: account_snapshot\.sources\[0\]\.port must be a port number from 1 to 65535, not "0"; at line \d+, column \d+\)/,
      ],
      [(s) => (s.accounts[0].sources[0].port = 2 ** 53), /account #0 is malformed: sources\[0\]\.port must be a port number from 1 to 65535, not "9007199254740992"; at line \d+, column \d+\)/],
      // A count past 2^53 is no exact number: a count of it is not what the file says.
      [(s) => (s.accounts[0].nb_messages = 2 ** 53), /account #0 is malformed: nb_messages must be a whole number from 0/],
      [(s) => (s.accounts[0].nb_files = -1), /account #0 is malformed: nb_files must be a whole number from 0/],
      [(s) => (s.accounts[0].created = -1), /account #0 is malformed: created must be a Unix time in seconds from 0 to 253402300799 \(9999-12-31T23:59:59Z\)/],
      // Times past the year 9999: the gateway reads such a number as milliseconds, and one near 2^53 is no exact
      // number once a day is added to it (a token's expires).
      [(s) => (s.accounts[0].created = 2 ** 53 - 1), /account #0 is malformed: created must be a Unix time in seconds from 0 to 253402300799 \(9999-12-31T23:59:59Z\), not "9007199254740991"; at line \d+, column \d+\)/],
      [(s) => (s.accounts[0].suspended = 253_402_300_800), /account #0 is malformed: suspended must be a Unix time in seconds from 0 to 253402300799/],
      [(s) => (s.accounts[0].password_expired = 1e15), /account #0 is malformed: password_expired must be a Unix time in seconds/],
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 2 ** 53 - 1, used: 0, callback_url: 'http://localhost/' }),
        /connect token #0 is malformed: created must be a Unix time in seconds from 0 to 253402214399 \(its expiry, a day on, by 9999-12-31T23:59:59Z\), not "9007199254740991"; at line \d+, column \d+\)/,
      ],
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 253_402_214_400, used: 0, callback_url: 'http://localhost/' }), /connect token #0 is malformed: created must be a Unix time in seconds from 0 to 253402214399/],
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 253_402_300_800, callback_url: 'http://localhost/', account_id: 'gone', account_snapshot: { id: 'gone', created: 1, suspended: 0, email_addresses: [], sources: [] } }),
        /connect token #0 is malformed: used must be a Unix time in seconds from 0 to 253402300799/,
      ],
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'gone', account_snapshot: { id: 'gone', created: 2 ** 60, suspended: 0, email_addresses: [], sources: [] } }),
        /connect token #0 is malformed: account_snapshot\.created must be a Unix time in seconds/,
      ],
      [(s) => delete s.accounts[0].sources[0].status, /account #0 is malformed: sources\[0\]\.status must be a string/],
      [(s) => s.accounts.push(structuredClone(s.accounts[0])), /account #1 repeats the id/],
      // An empty id or label is no path segment: the account's resource_url was the list's (/accounts/), its sources' a 404.
      [(s) => (s.accounts[0].id = ''), /account #0 is malformed: id must be a string, not empty, \. or \.\./],
      // A URL parser resolves them away: fetch('…/accounts/..') asks for /2.0/.
      [(s) => (s.accounts[0].id = '..'), /account #0 is malformed: id must be a string, not empty, \. or \.\./],
      [(s) => (s.accounts[0].sources[0].label = '.'), /account #0 is malformed: sources\[0\]\.label must be a string, not empty/],
      // The API reserves `0` for the account's first source: a later source so labelled was out of reach (GET …/sources/0 answered the first).
      [
        (s) => s.accounts[0].sources.push({ ...s.accounts[0].sources[0], label: '0' }),
        /account #0 is malformed: sources\[1\]\.label must not be "0", which the API reserves for the account's first source; at line \d+, column \d+\)/,
      ],
      [(s) => (s.accounts[0].sources[0].label = '0'), /account #0 is malformed: sources\[0\]\.label must not be "0"/],
      [(s) => (s.accounts[0].sources[0].label = ''), /account #0 is malformed: sources\[0\]\.label must be a string, not empty/],
      [(s) => s.tokens.push({ token: '', owner: null, created: 1, used: 0, callback_url: 'http://localhost/' }), /connect token #0 is malformed: token must be a string, not empty/],
      // No Context.IO id or token holds one: the API reached it only as %2F, and the gateway, which sends no id holding
      // one, failed its whole listing of them.
      [(s) => (s.accounts[0].id = 'a/b'), /account #0 is malformed: id must not hold \/ or \\, as no Context\.IO id or token does/],
      [(s) => s.tokens.push({ token: 'a\\b', owner: null, created: 1, used: 0, callback_url: 'http://localhost/' }), /connect token #0 is malformed: token must not hold \/ or \\/],
      // Quoted as a setting is, so that the refusal stays one line of reasonable length (it was written whole, raw).
      [(s) => s.accounts.push(...[0, 1].map(() => ({ ...s.accounts[0], id: 'line\nbreak' }))), /account #2 repeats the id "line\\nbreak"; at line \d+, column \d+\)/],
      [(s) => s.accounts.push(...[0, 1].map(() => ({ ...s.accounts[0], id: 'x'.repeat(5_000) }))), /account #2 repeats the id "x{100}…"; at line \d+, column \d+\); fix or delete it$/],
      [
        (s) => s.accounts[0].sources.push(...[0, 1].map(() => ({ ...s.accounts[0].sources[0], label: '\u2028'.repeat(2) }))),
        /account #0 is malformed: sources\[2\] repeats the label "\\u2028\\u2028" of sources\[1\]/,
      ],
      // Half a surrogate pair, which JSON can spell (\ud800): loaded, the source's resource_url (encodeURIComponent)
      // threw, and every listing of its account answered 500.
      [(s) => (s.accounts[0].sources[0].label = 'half \ud800'), /account #0 is malformed: sources\[0\]\.label must be a string of Unicode text \(half a surrogate pair is not\)/],
      [(s) => (s.accounts[0].first_name = '\udc00'), /account #0 is malformed: first_name must be a string of Unicode text/],
      // Of two sources of one label, the second was listed with the first one's resource_url, and GET of it gave the first.
      [(s) => s.accounts[0].sources.push({ ...s.accounts[0].sources[0], port: 143 }), /account #0 is malformed: sources\[1\] repeats the label "saved::imap\.example\.com" of sources\[0\]/],
      // The API takes only http(s) callbacks it calls itself: loaded as any text, the connect page posted to none.
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'http://localhost/', source_callback_url: 'ftp://files.example/cb' }),
        /connect token #0 is malformed: source_callback_url must be an absolute http\(s\) URL, as the API takes one/,
      ],
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'http://localhost/', status_callback_url: '/relative' }),
        /connect token #0 is malformed: status_callback_url must be an absolute http\(s\) URL, as the API takes one/,
      ],
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 5, callback_url: 'http://localhost/' }), /connect token #0 is used but names no account/],
      // Used at the first second of the epoch is used all the same.
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 0, used: 1, callback_url: 'http://localhost/' }), /connect token #0 is used but names no account/],
      [(s) => s.tokens.push({ token: 'abc', owner: 'nobody', created: 1, used: 0, callback_url: 'http://localhost/' }), /connect token #0 belongs to no account/],
      // An account's token adds a source to that account: used by another, it was served under its own account embedding the other.
      [
        (s) => s.tokens.push({ token: 'abc', owner: s.accounts[0].id, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'other', account_snapshot: { id: 'other', created: 1, suspended: 0, email_addresses: [], sources: [] } }),
        /connect token #0 is a token of one account \(owner\) but was used by another \(account_id\)/,
      ],
      // Served as used with `account: null`, which no used token has: its account is deleted only with its snapshot kept.
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'gone' }), /connect token #0 is used by an account neither in the file nor kept in the token \(account_snapshot\)/],
      // Only null says top-level: an empty owner is an account id, and none has it.
      [(s) => s.tokens.push({ token: 'abc', owner: '', created: 1, used: 0, callback_url: 'http://localhost/' }), /connect token #0 belongs to no account/],
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'http://localhost/', source_sync_flags: 'yes' }), /connect token #0 is malformed: source_sync_flags must be true or false/],
      // A callback the API refuses: the connect page sent the browser to javascript:…, and to no URL at all (a relative one) or a 500.
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'javascript:alert(1)' }), /connect token #0 is malformed: callback_url must be an absolute URL, http\(s\) or an app's own scheme/],
      [(s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: '/connected' }), /connect token #0 is malformed: callback_url must be an absolute URL/],
      // An address the API refuses: the connect page showed it as the token's mailbox, not to be changed, and refused
      // every form sent with it ("Enter a valid email address."), so the token could never be used.
      [
        (s) => s.tokens.push({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'http://localhost/', email: 'nobody' }),
        /connect token #0 is malformed: email must be an email address or a domain such as @gmail\.com, as the API takes one; at line \d+, column \d+\)/,
      ],
      [(s) => s.tokens.push(...Array(2).fill({ token: 'abc', owner: null, created: 1, used: 0, callback_url: 'http://localhost/' })), /connect token #1 repeats the token of connect token #0; at line \d+, column \d+\)/],
      // The record named is the first that holds the token, not merely the first of the file.
      [
        (s) => s.tokens.push(...['first', 'abc', 'abc'].map((token) => ({ token, owner: null, created: 1, used: 0, callback_url: 'http://localhost/' }))),
        /connect token #2 repeats the token of connect token #1; at line \d+, column \d+\)/,
      ],
      [
        (s) => {
          const snapshot = { id: 'gone', created: 1, suspended: 0, email_addresses: [], sources: [{ label: 'l', port: '993' }] };
          s.tokens.push({ token: 'abc', owner: null, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'gone', account_snapshot: snapshot });
        },
        /connect token #0 is malformed: account_snapshot\.sources\[0\]\.port must be a port number from 1 to 65535/,
      ],
    ];
    for (const [edit, error] of cases) {
      await broken(edit);
      await assert.rejects(refusedStart({ dataFile }), error);
    }
    // The file as saved loads: the checks match what the store writes.
    await writeFile(dataFile, JSON.stringify(state));
    const emu = await startEmulator({ dataFile });
    await emu.close();
  });

  test("the store's own source writes refuse a port the data file refuses: saved, the next start would refuse the file", async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    const account = emu.store.createAccount({ email: 'ports@example.com' });
    for (const port of [0, 65_536, 2 ** 53, 1.5]) {
      // Of another address, which a source kept would add to the account's.
      assert.throws(() => emu.store.addSource(account.id, { email: 'other@example.com', port }), /^TypeError: source not added: sources\[0\]\.port must be a port number from 1 to 65535, not /);
      assert.throws(() => emu.store.createAccount({ email: 'more@example.com', sources: [{ port }] }), /^TypeError: account not created: sources\[0\]\.port must be a port number/);
    }
    // Refused before the account is made, and the account refused a source is as it was: nor its address added.
    assert.deepEqual(emu.store.listAccounts({}), [account]);
    assert.equal(emu.store.addSource(account.id, { port: 65_535 }).port, 65_535);
    await emu.close();
    const restarted = await startEmulator({ dataFile });
    await restarted.close();
  });

  test("the store's own source writes refuse a label the data file refuses: 0, which the API reserves for the first source, and no path segment", async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    const account = emu.store.createAccount({ email: 'labels@example.com', sources: [{ label: 'first' }] });
    assert.throws(() => emu.store.addSource(account.id, { label: '0' }), /^TypeError: source not added: sources\[1\]\.label must not be "0", which the API reserves for the account's first source/);
    for (const label of ['', '.', '..', 'half \ud800']) assert.throws(() => emu.store.addSource(account.id, { label }), /^TypeError: source not added: sources\[1\]\.label must be a string/);
    assert.throws(() => emu.store.createAccount({ email: 'more@example.com', sources: [{ label: '0' }] }), /^TypeError: account not created: sources\[0\]\.label must not be "0"/);
    assert.deepEqual(emu.store.listAccounts({}).map((a) => a.id), [account.id]);
    // `0` reaches the first source, the only one.
    assert.equal((await api(emu, `/accounts/${account.id}/sources/0`)).body.label, 'first');
    await emu.close();
    const restarted = await startEmulator({ dataFile });
    await restarted.close();
  });

  test("the store's own createAccount refuses a count the data file refuses: saved, the next start would refuse the file", async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    for (const count of [-1, 1.5, 2 ** 53, Number.NaN]) {
      assert.throws(() => emu.store.createAccount({ email: 'counts@example.com', nb_messages: count }), /^TypeError: account not created: nb_messages must be a whole number from 0/);
      assert.throws(() => emu.store.createAccount({ email: 'counts@example.com', nb_files: count }), /^TypeError: account not created: nb_files must be a whole number from 0/);
    }
    assert.deepEqual(emu.store.listAccounts(), []);
    const { id } = emu.store.createAccount({ email: 'counts@example.com', nb_messages: 2 ** 53 - 1, nb_files: 0 });
    await emu.close();
    const restarted = await startEmulator({ dataFile });
    t.after(() => restarted.close());
    assert.equal(restarted.store.getAccount(id)?.nb_messages, 2 ** 53 - 1);
  });

  test("the store's own writes refuse text the data file refuses, half a surrogate pair, in every field they save: saved, the next start would refuse the file", async (t) => {
    const { dataFile, emu } = await emulatorSavingTo(t);
    const half = '\ud800';
    const account = emu.store.createAccount({ email: 'text@example.com', first_name: 'Whole 😀' });
    const token = emu.store.createConnectToken(null, { callback_url: 'http://localhost/back' });
    // Each refused with what was not done and the field of the record as the data file's check names it.
    const refusals: Array<[string, () => unknown]> = [
      // The account's username is made from its address, and checked first.
      ['account not created: username', () => emu.store.createAccount({ email: `half${half}@example.com` })],
      ['account not created: email_addresses\\[0\\]', () => emu.store.createAccount({ email: `half${half}@example.com`, username: 'whole' })],
      ['account not created: first_name', () => emu.store.createAccount({ email: 'more@example.com', first_name: half })],
      ['account not created: username', () => emu.store.createAccount({ email: 'more@example.com', username: half })],
      ['account not created: sources\\[0\\]\\.server', () => emu.store.createAccount({ email: 'more@example.com', sources: [{ label: 'whole', server: half }] })],
      ['account not updated: last_name', () => emu.store.updateAccount(account.id, { first_name: 'Not saved', last_name: half })],
      ['source not added: sources\\[0\\]\\.username', () => emu.store.addSource(account.id, { label: 'whole', username: half })],
      ['connect token not created: callback_url', () => emu.store.createConnectToken(null, { callback_url: `http://localhost/${half}` })],
      ['connect token not created: email', () => emu.store.createConnectToken(account.id, { callback_url: 'http://localhost/', email: half })],
      // The connect flow's account is made as createAccount makes one.
      ['account not created: first_name', () => emu.store.useConnectToken(token.token, { email: 'user@example.com', first_name: half })],
    ];
    for (const [refusal, write] of refusals) assert.throws(write, new RegExp(`^TypeError: ${refusal} must be a string of Unicode text \\(half a surrogate pair is not\\)$`), refusal);
    // Refused before anything changed.
    assert.deepEqual(emu.store.listAccounts(), [account]);
    assert.deepEqual(emu.store.listConnectTokens(), [token]);
    assert.equal(emu.store.connectTokenState(token.token), 'usable');
    await emu.close();
    const restarted = await startEmulator({ dataFile });
    t.after(() => restarted.close());
    assert.equal(restarted.store.getAccount(account.id)?.first_name, 'Whole 😀');
  });

  test('the data file docs/emulator.md shows loads and is served as it says; a token written as the API renders it (no owner) is refused naming what owner may be', async () => {
    const doc = await readFile('docs/emulator.md', 'utf8');
    const example = /## The data file\n[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(example, 'docs/emulator.md shows a data file under "The data file"');
    const file = JSON.parse(example);
    const dataFile = join(await tempDir(), 'state.json');
    await writeFile(dataFile, example);
    const emu = await startEmulator({ dataFile });
    try {
      const [account, token] = [file.accounts[0], file.tokens[0]];
      const served = (await api(emu, `/accounts/${account.id}`)).body;
      assert.deepEqual({ ...served, sources: served.sources.map(({ resource_url: _, ...source }: { resource_url: string }) => source), resource_url: undefined }, { ...account, resource_url: undefined }, 'the account is served as the file has it, with its links');
      const used = (await api(emu, `/connect_tokens/${token.token}`)).body;
      assert.deepEqual([used.used, used.expires, used.account.id], [token.used, false, account.id], 'the top-level token (owner null) is served used, embedding the account its account_id names');
    } finally {
      await emu.close();
    }
    // A token as GET /connect_tokens/{token} shows it: its family is the file's owner, which it lacks.
    const rendered = { token: 'abcdef0123456789', email: '', created: file.tokens[0].created, used: 0, expires: file.tokens[0].created + 86_400, callback_url: 'http://localhost/', first_name: '', last_name: '', account: {} };
    await writeFile(dataFile, JSON.stringify({ ...file, tokens: [rendered] }));
    await assert.rejects(refusedStart({ dataFile }), /connect token #0 is malformed: owner must be null or a string; at line 1, column \d+\)/);
  });

  test("a used token's account kept in the token (its account deleted) may say suspended false, as the upstream's embedded account does: loaded and served so", async () => {
    const { dataFile, state } = await savedState();
    // A fixture copied from an upstream's answer, where an embedded account's suspended is 0 or false.
    const account_snapshot = { id: 'gone', created: 1, suspended: false, email_addresses: ['gone@example.com'], first_name: '', last_name: '', sources: [] };
    const edited = { ...state, tokens: [{ token: 'copied', owner: null, created: 1, used: 2, callback_url: 'http://localhost/', account_id: 'gone', account_snapshot }] };
    await writeFile(dataFile, JSON.stringify(edited));
    const emu = await startEmulator({ dataFile });
    try {
      assert.deepEqual((await api(emu, '/connect_tokens/copied')).body.account, account_snapshot);
    } finally {
      await emu.close();
    }
  });

  test('the last times the data file takes are served exactly: an account of 9999-12-31T23:59:59Z, a token expiring then', async () => {
    const { dataFile, state } = await savedState();
    const last = 253_402_300_799;
    const edited = { ...state, accounts: [{ ...state.accounts[0], created: last }], tokens: [{ token: 'lastday', owner: null, created: last - 86_400, used: 0, callback_url: 'http://localhost/' }] };
    await writeFile(dataFile, JSON.stringify(edited));
    const emu = await startEmulator({ dataFile });
    try {
      assert.equal((await api(emu, `/accounts/${state.accounts[0].id}`)).body.created, last);
      const token = (await api(emu, '/connect_tokens/lastday')).body;
      assert.deepEqual([token.created, token.expires], [last - 86_400, last]);
      // The store's own writes take no time the file would refuse: saved, the next start would refuse it.
      assert.throws(() => emu.store.createAccount({ email: 'late@example.com', created: last + 1 }), /^TypeError: account not created: created must be a Unix time in seconds from 0 to 253402300799 \(9999-12-31T23:59:59Z\), not "253402300800"$/);
      assert.throws(() => emu.store.createAccount({ email: 'late@example.com', suspended: 2 ** 53 }), /^TypeError: account not created: suspended must be a Unix time/);
      assert.throws(() => emu.store.createConnectToken(null, { callback_url: 'http://localhost/', created: last - 86_399 }), /^TypeError: connect token not created: created must be a Unix time in seconds from 0 to 253402214399 \(its expiry, a day on, by 9999-12-31T23:59:59Z\)/);
    } finally {
      await emu.close();
    }
  });

  test('a connect token used at a time the file would refuse (a clock before 1970) is refused before its account gains the source', async (t) => {
    let clock = 1_000_000;
    const emu = await startEmulator({ seed: 'none', now: () => clock });
    t.after(() => emu.close());
    const account = emu.store.createAccount({ email: 'ada@example.com' });
    const token = emu.store.createConnectToken(account.id, { callback_url: 'http://localhost/' });
    clock = -5_000;
    assert.throws(
      () => emu.store.useConnectToken(token.token, { email: 'ada@example.com', server: 'imap.other.example' }),
      /^TypeError: connect token not used: used must be a Unix time in seconds from 0 to 253402300799 \(9999-12-31T23:59:59Z\), not "-5"$/,
    );
    assert.deepEqual(emu.store.getAccount(account.id)?.sources, [], 'no source added for a token left unused');
    clock = 2_000_000;
    assert.equal(emu.store.connectTokenState(token.token), 'usable');
  });

  test('fields the format does not have are kept, at the top of the file as inside its records: written back at the start and by every save', async () => {
    const { dataFile, state } = await savedState();
    // Where the file has them: a note first, a field after the tokens, and one inside a record.
    const edited = { note: 'test fixtures for #42', ...state, accounts: [{ ...state.accounts[0], tag: 'vip' }], later: { added: [1, 2] } };
    await writeFile(dataFile, JSON.stringify(edited, null, 2));
    const emu = await startEmulator({ dataFile });
    try {
      assert.deepEqual(JSON.parse(await readFile(dataFile, 'utf8')), edited);
      await api(emu, `/accounts/${state.accounts[0].id}`, { form: { first_name: 'Edited' } });
    } finally {
      await emu.close();
    }
    const saved = JSON.parse(await readFile(dataFile, 'utf8'));
    assert.deepEqual(Object.keys(saved), ['note', 'format', 'version', 'accounts', 'tokens', 'later']);
    assert.equal(saved.note, 'test fixtures for #42');
    assert.deepEqual(saved.later, { added: [1, 2] });
    assert.equal(saved.accounts[0].tag, 'vip');
    assert.equal(saved.accounts[0].first_name, 'Edited');
  });

  test('a data file nested thousands deep, in a field the format does not have, is refused as corrupt, not met with a RangeError naming no file', async () => {
    const { dataFile, state } = await savedState();
    const text = JSON.stringify({ ...state, accounts: [{ ...state.accounts[0], notes: 0 }] });
    // JSON.parse reads it; copying the record into the store (structuredClone) ran out of stack.
    await writeFile(dataFile, text.replace('"notes":0', `"notes":${'['.repeat(10_000)}${']'.repeat(10_000)}`));
    await assert.rejects(refusedStart({ dataFile }), (error: Error) => {
      assert.equal(error.constructor, Error);
      assert.match(error.message, /^Context\.IO emulator: data file .*state\.json is corrupt \(nested more than 64 levels deep\); fix or delete it$/);
      return true;
    });
    // As deep as a record is, and deeper within reason, it loads.
    await writeFile(dataFile, text.replace('"notes":0', `"notes":${'[{"a":'.repeat(20)}0${'}]'.repeat(20)}`));
    await (await startEmulator({ dataFile })).close();
    // 64 levels, as the refusal counts them (the file's object the first), load; one more does not.
    const nested = (levels: number) => text.replace('"notes":0', `"notes":${'['.repeat(levels - 3)}${']'.repeat(levels - 3)}`);
    await writeFile(dataFile, nested(64));
    await (await startEmulator({ dataFile })).close();
    await writeFile(dataFile, nested(65));
    await assert.rejects(refusedStart({ dataFile }), /nested more than 64 levels deep/);
  });

  // Saved by a rename, which asks the folder, not the file: a file made read-only (a fixture kept as it is) was
  // replaced at the start and by every write, its mode kept, as if it could be written.
  test('a read-only data file (mode 0444, or one its user may not write) is not written over: the start fails, and so does a write once it is made read-only', async () => {
    const { dataFile } = await savedState();
    const before = await readFile(dataFile);
    await chmod(dataFile, 0o444);
    await assert.rejects(refusedStart({ dataFile }), /^Error: Context\.IO emulator: cannot write data file .*state\.json: .*state\.json is read-only to this process \(mode 0444, owner uid \d+\): not written over; make it writable for it to save there$/);
    assert.ok((await readFile(dataFile)).equals(before), 'the file is as it was');
    await chmod(dataFile, 0o644);
    const emu = await startEmulator({ dataFile });
    const saveErrors: string[] = [];
    const stderr = process.stderr.write;
    process.stderr.write = ((chunk: string) => saveErrors.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      const saved = await readFile(dataFile);
      await chmod(dataFile, 0o444);
      assert.equal((await api(emu, '/accounts', { form: { email: 'refused@example.com' } })).status, 500);
      assert.ok((await readFile(dataFile)).equals(saved), 'the file is as the start saved it');
      assert.match(saveErrors.join(''), /could not save state to .*state\.json: .*state\.json is read-only to this process \(mode 0444/);
    } finally {
      process.stderr.write = stderr;
      await chmod(dataFile, 0o644);
      await emu.close();
    }
  });

  test('a data file reached through a symbolic link stays a link, and the file keeps its permissions', async () => {
    const { dir, dataFile } = await savedState();
    await chmod(dataFile, 0o600);
    const link = join(dir, 'link.json');
    await symlink(dataFile, link);
    const emu = await startEmulator({ dataFile: link });
    await api(emu, '/accounts', { form: { email: 'second@example.com' } });
    await emu.close();
    assert.ok((await lstat(link)).isSymbolicLink(), 'the link was replaced by a file');
    assert.equal(JSON.parse(await readFile(dataFile, 'utf8')).accounts.length, 2, 'the state went where the link points');
    assert.equal((await stat(dataFile)).mode & 0o777, 0o600);
  });

  // Only root can give a file to another user: run so (sudo npm run emulator, to listen on port 80), the save replaced
  // the user's file with root's, which the user's next start, as that user, could not read (mode 0600) nor write.
  test('a file keeps its owner and group when the emulator runs as another user who can keep them (root)', { skip: process.getuid?.() !== 0 && 'not run as root' }, async () => {
    const { dataFile } = await savedState();
    await chown(dataFile, 4321, 8765);
    await chmod(dataFile, 0o600);
    const emu = await startEmulator({ dataFile });
    await api(emu, '/accounts', { form: { email: 'second@example.com' } });
    await emu.close();
    const saved = await stat(dataFile);
    assert.equal(JSON.parse(await readFile(dataFile, 'utf8')).accounts.length, 2, 'saved');
    assert.deepEqual([saved.uid, saved.gid, saved.mode & 0o777], [4321, 8765, 0o600]);
  });

  test('a file keeps a mode wider than the umask, and a failed write leaves no temporary file', async () => {
    const { dir, dataFile } = await savedState();
    await chmod(dataFile, 0o666);
    const umask = process.umask(0o022);
    try {
      const emu = await startEmulator({ dataFile });
      await emu.close();
    } finally {
      process.umask(umask);
    }
    assert.equal((await stat(dataFile)).mode & 0o777, 0o666);
    // A folder where the file should be: the rename over it fails, after the temporary file was written.
    const folder = join(dir, 'folder.json');
    await mkdir(folder);
    await assert.rejects(writeAtomically(folder, '{}'));
    assert.deepEqual((await readdir(dir)).sort(), ['folder.json', 'state.json']);
  });

  // Its name is known to anyone who can list the process (the pid's): in a folder others may write to (/tmp), one
  // could put a link there, and the save wrote through it into the file it named, gave that file the data file's
  // mode and owner, then renamed the link over the data file, which then led to it.
  test('a save does not write through a link put at its temporary name: it writes a file of its own, and what the link names is left as it was', async () => {
    const { dir, dataFile } = await savedState();
    await chmod(dataFile, 0o666);
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'precious');
    await chmod(victim, 0o600);
    await symlink(victim, `${dataFile}.${process.pid}.tmp`);
    await writeAtomically(dataFile, '{"saved": true}');
    assert.equal(await readFile(victim, 'utf8'), 'precious', 'the file the link named was written');
    assert.equal((await stat(victim)).mode & 0o777, 0o600, "the file the link named took the data file's mode");
    assert.ok((await lstat(dataFile)).isFile(), 'the data file is a file, not the link');
    assert.deepEqual([await readFile(dataFile, 'utf8'), (await stat(dataFile)).mode & 0o777], ['{"saved": true}', 0o666]);
    assert.deepEqual((await readdir(dir)).sort(), ['state.json', 'victim.txt']);
  });

  test('a symbolic link made ahead of its data file stays a link; a new file gets 0666 less the umask', async () => {
    const dir = await tempDir();
    const link = join(dir, 'link.json');
    await symlink(join(dir, 'volume', 'state.json'), link);
    const umask = process.umask(0o002);
    try {
      const emu = await startEmulator({ seed: 'none', dataFile: link });
      await emu.close();
    } finally {
      process.umask(umask);
    }
    assert.ok((await lstat(link)).isSymbolicLink(), 'the data file is still a symbolic link');
    assert.equal((await stat(join(dir, 'volume', 'state.json'))).mode & 0o777, 0o664);

    // `..` in a link inside a linked folder is read from the link's real folder, as the kernel reads it.
    await mkdir(join(dir, 'real', 'sub'), { recursive: true });
    await symlink(join(dir, 'real', 'sub'), join(dir, 'alias'));
    await symlink('../data.json', join(dir, 'real', 'sub', 'link.json'));
    const emu = await startEmulator({ seed: 'none', dataFile: join(dir, 'alias', 'link.json') });
    await api(emu, '/accounts', { form: { email: 'kept@example.com' } });
    await emu.close();
    assert.equal(JSON.parse(await readFile(join(dir, 'real', 'data.json'), 'utf8')).accounts.length, 1);
    // And a `..` after a folder link within the link's own text.
    await mkdir(join(dir, 'work'));
    await symlink('../real/sub', join(dir, 'work', 'sl'));
    await symlink('sl/../other.json', join(dir, 'work', 'other-link.json'));
    const other = await startEmulator({ seed: 'none', dataFile: join(dir, 'work', 'other-link.json') });
    await other.close();
    assert.equal(JSON.parse(await readFile(join(dir, 'work', 'other-link.json'), 'utf8')).accounts.length, 0, 'read back through the link');
    assert.deepEqual((await readdir(join(dir, 'real'))).sort(), ['data.json', 'other.json', 'sub']);
    assert.deepEqual((await readdir(dir)).sort(), ['alias', 'link.json', 'real', 'volume', 'work']);
  });

  test('a symbolic link whose text steps out of a folder not there yet (missing/../state.json) fails the start, as the kernel cannot follow it either', async () => {
    const dir = await tempDir();
    const link = join(dir, 'link.json');
    await symlink('missing/../state.json', link);
    // Read lexically, the write would go to state.json beside the link, which the link (unresolvable) never
    // leads to: every restart would start afresh.
    await assert.rejects(refusedStart({ dataFile: link }), /ENOENT/);
    assert.deepEqual(await readdir(dir), ['link.json']);
  });

  test('temporary files a killed process left beside the data file are removed at the next start', async () => {
    const { dir, dataFile } = await savedState();
    // Beyond Linux's largest pid: no process has it.
    const leftover = `${dataFile}.99999999.tmp`;
    await writeFile(leftover, '{"half": ');
    const unrelated = join(dir, 'state.json.backup.tmp');
    await writeFile(unrelated, 'mine');
    // Only a pid follows the data file's name: a file of someone's that merely ends in one is theirs.
    await writeFile(join(dir, 'state.json.backup.99999999.tmp'), 'mine too');
    // One of a process still running (this one's parent) is its own, perhaps mid-save: left alone.
    const running = `${dataFile}.${process.ppid}.tmp`;
    await writeFile(running, '{"half": ');
    const emu = await startEmulator({ dataFile });
    await emu.close();
    assert.deepEqual((await readdir(dir)).sort(), ['state.json', `state.json.${process.ppid}.tmp`, 'state.json.backup.99999999.tmp', 'state.json.backup.tmp']);
  });
});

/** An emulator saving to a data file of its own (closed after the test), and the save errors it reported. */
async function emulatorSavingTo(t: TestContext, options: EmulatorOptions = {}) {
  const dataFile = join(await tempDir(), 'state.json');
  const saveErrors: Error[] = [];
  const emu = await startEmulator({ seed: 'none', dataFile, onSaveError: (error) => saveErrors.push(error), ...options });
  t.after(() => emu.close().catch(() => undefined));
  return { dataFile, emu, saveErrors };
}
