import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AccountRecord, TokenRecord } from './store.ts';

/** The emulator's data file (`EMULATOR_DATA_FILE`): its format, written atomically, read back checked. */

export interface PersistedState {
  format: 'contextio-emulator';
  version: 1;
  accounts: AccountRecord[];
  tokens: TokenRecord[];
}

/** Writes to a temporary file beside the target and renames it over, so a crash never leaves half a file. */
export async function writeAtomically(file: string, contents: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await mkdir(dirname(file), { recursive: true });
  try {
    await writeFile(tmp, contents, 'utf8');
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** Reads and validates a data file; `undefined` when it does not exist. */
export async function readState(file: string): Promise<PersistedState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Context.IO emulator: cannot read data file ${file}: ${(error as Error).message}`);
  }
  const fail = (why: string): never => {
    throw new Error(`Context.IO emulator: data file ${file} is corrupt (${why}); fix or delete it`);
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return fail('not valid JSON');
  }
  if (!isObject(data) || data.format !== 'contextio-emulator' || data.version !== 1) {
    return fail('not an emulator state file of version 1');
  }
  if (!Array.isArray(data.accounts) || !Array.isArray(data.tokens)) return fail('accounts or tokens missing');
  data.accounts.forEach((a: unknown, i) => {
    const ok =
      isObject(a) &&
      typeof a.id === 'string' &&
      typeof a.created === 'number' &&
      Array.isArray(a.email_addresses) &&
      Array.isArray(a.sources) &&
      a.sources.every((s: unknown) => isObject(s) && typeof s.label === 'string');
    if (!ok) fail(`account #${i} is malformed`);
  });
  data.tokens.forEach((t: unknown, i) => {
    const ok =
      isObject(t) &&
      typeof t.token === 'string' &&
      typeof t.created === 'number' &&
      typeof t.used === 'number' &&
      typeof t.callback_url === 'string' &&
      (t.owner === null || typeof t.owner === 'string');
    if (!ok) fail(`connect token #${i} is malformed`);
  });
  return data as unknown as PersistedState;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
