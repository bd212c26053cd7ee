import { cp, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/**
 * A copy of what the build reads, with the project's node_modules, so that building it cannot disturb the
 * dist/ that other tests serve the IDE from.
 */
export async function projectCopy(): Promise<string> {
  const dir = await sourcesCopy('contextio-build-');
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** A new temporary folder (its name starting `prefix`) holding what the build reads, and no dependencies. */
export async function sourcesCopy(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  for (const path of ['src', 'schema', 'scripts', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json']) {
    await cp(join(root, path), join(dir, path), { recursive: true });
  }
  return dir;
}
