import { constants, type Stats } from 'node:fs';
import { access, mkdir, open, readdir, readlink, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

// A file written whole or not at all: the emulator's data file (EMULATOR_DATA_FILE), and the reports the benchmark
// and the soak write (bench/results.md, the soak's --out).

/** Which file a write left, as the file system tells it from any other: another write or an edit changes it. */
export interface FileVersion {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export const versionOf = (s: Stats): FileVersion => ({ dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs });

/**
 * Writes to a temporary file beside the target, flushed to the disk, and renames it over, so neither a crash
 * nor a power cut leaves half a file (or, on some file systems, an empty one after the rename). A symbolic
 * link is followed, so the state goes where the link points and the link stays; the file keeps its
 * permissions, and its owner where the writer may keep it. Resolves to the version written.
 *
 * With `expected` (the version this process last wrote), a file that is no longer that version is not
 * overwritten: another process wrote it since (a second emulator given the same data file, whose state
 * the write would erase, as its next write would erase this one's), or someone edited it. A file that is
 * gone is written.
 */
export async function writeAtomically(file: string, contents: string, expected?: FileVersion): Promise<FileVersion> {
  const target = await linkTarget(file);
  // One save at a time to a file in this process, whichever emulator makes it: they share the temporary file's
  // name (the pid's), and two at once tore the file (the one renamed second had written into the other's). One
  // after the other, the second is refused by the check below.
  const save = (saving.get(target) ?? Promise.resolve()).catch(() => undefined).then(() => saveTo(file, target, contents, expected));
  saving.set(target, save);
  try {
    return await save;
  } finally {
    if (saving.get(target) === save) saving.delete(target);
  }
}

/** The save under way to each file (its target, links followed) in this process. */
const saving = new Map<string, Promise<FileVersion>>();

async function saveTo(file: string, target: string, contents: string, expected: FileVersion | undefined): Promise<FileVersion> {
  const dir = dirname(target);
  await makeDirectory(dir);
  const current = await stat(target).catch(() => undefined);
  if (expected && current && !sameVersion(versionOf(current), expected)) {
    // Only the emulator's data file is written with an `expected` version: said in its terms. An emptied one
    // (truncated by hand or a tool) holds nothing to load, and a start refuses it: the state is this emulator's.
    if (current.size === 0) {
      throw new Error(`${file} was emptied by another process since this emulator last saved it: not overwritten; delete the empty file, and this emulator's next change writes its state there again`);
    }
    throw new Error(`${file} was changed by another process since this emulator last saved it (another emulator with the same data file?): not overwritten, so that its changes are kept; restart this emulator to load them`);
  }
  const mode = current && current.mode & 0o7777;
  if (current && !(await mayWrite(target, current))) {
    const stands = `mode ${mode!.toString(8).padStart(4, '0')}, owner uid ${current.uid}`;
    throw Object.assign(new Error(`${file} is read-only to this process (${stands}): not written over; make it writable for it to save there`), { code: 'EACCES' });
  }
  // Per process and file: its saves are chained, never concurrent (above).
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    // Made anew, never opened as found: its name is known (the pid's), and in a folder others may write to, a
    // link put there was followed, the state written into the file it named, which then took the data file's
    // mode and owner. What is there (such a link, or a file a killed process of the same pid left: pid 1 in a
    // container) is removed first; one that cannot be removed fails the save (EEXIST) rather than be written.
    await unlink(tmp).catch(() => undefined);
    // A new file gets what writeFile would give it: 0666 less the umask.
    const handle = await open(tmp, 'wx', mode ?? 0o666);
    try {
      await handle.writeFile(contents, 'utf8');
      // The process's umask may have narrowed the mode asked for at creation.
      if (mode !== undefined) await handle.chmod(mode);
      // And its owner and group: run as root (sudo, for port 80), a save gave the user's file to root, and the
      // user's next start could not read it (0600). Only root may give a file away: refused, the file is the
      // writer's, as a new one is. Both through the handle: by its name, a link put there since would be followed.
      if (current) await handle.chown(current.uid, current.gid).catch(() => undefined);
      await handle.sync().catch(ignoreUnsupportedSync);
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  // The rename itself reaches the disk with the directory; not every platform can open one (best effort).
  const dirHandle = await open(dir, 'r').catch(() => undefined);
  await dirHandle?.sync().catch(() => undefined);
  await dirHandle?.close();
  // Read back as the next write's check reads it (by path, not from the handle), so that both agree wherever
  // a file system reports the two differently.
  return versionOf(await stat(target));
}

/**
 * Whether the file may be written as it stands, which a rename does not ask (it needs the folder's permission, not
 * the file's): a file its user made read-only (a fixture kept as it is) was replaced all the same. One that no one
 * may write (0444) is read-only to root too, who may write any file: so chmod says it, as an editor warns of it.
 */
async function mayWrite(target: string, current: Stats): Promise<boolean> {
  if ((current.mode & 0o222) === 0) return false;
  // Only a refusal says so: a file gone since (written anew) or a read-only file system (refused by the write) is not.
  return access(target, constants.W_OK).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'EACCES',
  );
}

function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * `mkdir -p`, written out: Node 20's own (`recursive: true`) never settles, spinning a CPU, when a directory
 * says it does not exist yet cannot be made (`/proc/nope`: ENOENT however often its parent is there).
 */
async function makeDirectory(dir: string): Promise<void> {
  const made = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  };
  try {
    await mkdir(dir);
  } catch (error) {
    const parent = dirname(dir);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) return made(error as NodeJS.ErrnoException);
    await makeDirectory(parent);
    // The parent is there now: a second ENOENT is thrown, not retried.
    await mkdir(dir).catch(made);
  }
}

/** Some file systems (and pipes) cannot flush a file: the write stands as written. */
function ignoreUnsupportedSync(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EINVAL' && error.code !== 'ENOTSUP' && error.code !== 'EOPNOTSUPP') throw error;
}

/** Where `file` leads through symbolic links, even to a file that does not exist yet (a link made ahead of it). */
async function linkTarget(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    // Not there yet, or a link to what is not there yet: followed hop by hop below.
  }
  let path = file;
  // As many hops as Linux follows before ELOOP.
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    try {
      link = await readlink(path);
    } catch {
      return path; // not a link, or not there: the file itself
    }
    // The link's text read as the kernel reads it, by realpath below: from the link's folder, each folder
    // link on the way followed before a `..` after it is applied (joining the strings with path.join would
    // cancel them out on paper).
    const raw = isAbsolute(link) ? link : `${dirname(path)}${sep}${link}`;
    path = await realpath(dirname(raw)).then(
      (dir) => join(dir, basename(raw)),
      (error: unknown) => {
        // A folder not there yet: made by the write, unless a `..` must step out of it, which the kernel
        // cannot do either.
        if (raw.split(sep).includes('..')) throw error;
        return resolve(raw);
      },
    );
  }
  throw Object.assign(new Error(`too many symbolic links from ${file}`), { code: 'ELOOP' });
}

/**
 * Removes the temporary files that writes of a process killed mid-save left beside `file` (their names
 * carry the writer's pid; those of a process still running are left alone).
 */
export async function removeStaleTemporaryFiles(file: string): Promise<void> {
  const target = await linkTarget(file);
  const prefix = `${basename(target)}.`;
  const names = await readdir(dirname(target)).catch(() => [] as string[]);
  for (const name of names) {
    const match = /^(\d+)\.tmp$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : '');
    if (!match || isRunning(Number(match[1]))) continue;
    await unlink(join(dirname(target), name)).catch(() => undefined);
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
