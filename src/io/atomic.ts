// Atomic file writes, the one place for them: a file is written beside its target under a unique temp
// name, fsynced, then renamed over the target, so a reader never sees half a file. A target that is a
// folder is refused before anything is written, and a failed write leaves no temp file behind. A target
// that is a symbolic link is written through: its target is replaced and the link stays.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { lstat, open, readdir, realpath, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";

/** A unique sibling temp path `.NAME.TAG-PID-HEX`, so a rename onto the target is atomic (same folder). */
export function tempSibling(path: string, tag = "tmp"): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Leftovers of tempSibling beside `path`: tag and writer pid (null when the name does not parse). */
export function parseTempSibling(path: string, name: string): { tag: string; pid: number } | null {
  const prefix = `.${basename(path)}.`;
  if (!name.startsWith(prefix)) return null;
  const m = /^([a-z]+)-(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length));
  return m === null ? null : { tag: m[1], pid: Number(m[2]) };
}

/** True when another live process has this pid (its temp files may still be in progress). */
export function otherProcessAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The path a write to `path` replaces: the target of a symbolic link (a rename onto the link itself would
 * replace the link and leave its target stale), else path itself, absolute.
 */
export async function followLink(path: string, what: string): Promise<string> {
  path = resolve(path);
  const s = await lstat(path).catch(() => null);
  if (s === null || !s.isSymbolicLink()) return path;
  try {
    return await realpath(path);
  } catch {
    throw danglingLink(path, what);
  }
}

const danglingLink = (path: string, what: string): Error =>
  new Error(`${what} ${path}: a symbolic link to something missing; point it somewhere or remove it`);
const folderTarget = (path: string, what: string): Error =>
  new Error(`${what} ${path}: is a folder; refusing to replace it`);

/** Refuse to write a file where a folder is (a rename would fail late, or replace the wrong thing). */
export async function refuseFolder(path: string, what: string): Promise<void> {
  const s = await stat(path).catch(() => null);
  if (s !== null && s.isDirectory()) throw folderTarget(path, what);
}

/** Of the names in path's folder, the temp files a dead writer left beside path (full paths). */
function staleTemps(path: string, names: readonly string[]): string[] {
  return names
    .filter((name) => {
      const t = parseTempSibling(path, name);
      return t !== null && t.tag === "tmp" && !otherProcessAlive(t.pid);
    })
    .map((name) => join(dirname(path), name));
}

const reportRemoved = (p: string, path: string): void =>
  console.error(`refrag: removed ${p}, left by an interrupted write of ${path}`);

function readdirOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // a missing folder: the write itself fails and says so
  }
}

/** Remove temp files a dead writer left beside path; returns what was removed. */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const removed = staleTemps(path, await readdir(dirname(path)).catch(() => [] as string[]));
  for (const p of removed) await rm(p, { recursive: true, force: true });
  return removed;
}

/**
 * Write `path` atomically: `write` fills a temp file that is then fsynced and renamed over path. Temp
 * files an interrupted earlier write left beside path are removed first (and reported on stderr).
 */
export async function writeFileAtomic(
  path: string,
  what: string,
  write: (fh: FileHandle) => Promise<void>,
): Promise<void> {
  path = await followLink(path, what);
  await refuseFolder(path, what);
  for (const p of await removeStaleTemps(path)) reportRemoved(p, path);
  const tmp = tempSibling(path);
  const fh = await open(tmp, "wx");
  try {
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * writeFileAtomic for synchronous callers with the whole content at hand (data files, reports, manifests,
 * settings), called like fs.writeFileSync: the same temp sibling, fsync and rename, the same refusal of a
 * folder, the same write through a link and the same removal of stale temps. `what` names the file in errors.
 */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, what = "file"): void {
  path = resolve(path);
  if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
    try {
      path = realpathSync(path);
    } catch {
      throw danglingLink(path, what);
    }
  }
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory() === true) throw folderTarget(path, what);
  for (const p of staleTemps(path, readdirOrNone(dirname(path)))) {
    rmSync(p, { recursive: true, force: true });
    reportRemoved(p, path);
  }
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const tmp = tempSibling(path);
  const fd = openSync(tmp, "wx");
  try {
    try {
      for (let done = 0; done < bytes.byteLength; )
        done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write all bytes at the file's current position (in pieces of at most 1 GiB). */
export async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
    done += bytesWritten;
  }
}
