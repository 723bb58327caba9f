/**
 * @module queue/fs-lock
 * Exclusive ownership of a queue directory by one writing process: a `lock` file created with
 * O_EXCL holding `<pid> <start time>`. A lock whose process is gone is stale and taken over. The
 * process start time (Linux /proc/<pid>/stat field 22) tells a live owner from a new process
 * that got the same pid after a container restart; where /proc is missing, the pid alone decides.
 */

import { fdatasync, writevSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { QueueError } from './store.js';

/** The file-system operations the queue uses; injectable so tests can fail them (ENOSPC, EIO). */
export interface QueueFs {
  open(path: string, flags: string): Promise<FileHandle>;
  readdir(path: string): Promise<string[]>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  /**
   * A synchronous positioned writev, when the file system has one. A batch lands in the page
   * cache in microseconds; doing it on the event loop saves a thread-pool round trip per batch
   * before the fdatasync (which stays asynchronous). Without it the FileHandle's writev is used.
   */
  writevSync?(fd: number, bufs: readonly Buffer[], position: number): number;
  /** fdatasync by descriptor through the callback API, lighter than a FileHandle's promise. */
  fdatasync?(fd: number): Promise<void>;
  /** Bytes an unprivileged user may still write on the file system holding `path`, if known. */
  freeBytes?(path: string): Promise<number>;
}

/** The real file system. */
export const nodeFs: QueueFs = {
  open: (path, flags) => fsp.open(path, flags),
  readdir: (path) => fsp.readdir(path),
  unlink: (path) => fsp.unlink(path),
  mkdir: (path, options) => fsp.mkdir(path, options),
  readFile: (path, encoding) => fsp.readFile(path, encoding),
  writevSync: (fd, bufs, position) => writevSync(fd, bufs, position),
  fdatasync: (fd) =>
    new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  freeBytes: async (path) => {
    const s = await fsp.statfs(path);
    return s.bavail * s.bsize;
  },
};

export const LOCK_FILE = 'lock';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

async function startTime(fs: QueueFs, pid: number): Promise<string | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

async function holder(fs: QueueFs, path: string): Promise<{ pid: number; start: string | null } | null> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
  const m = /^(\d+)(?: (\S+))?\n?$/.exec(text);
  if (!m) return { pid: 0, start: null };
  return { pid: Number(m[1]), start: m[2] ?? null };
}

async function isHeld(fs: QueueFs, owner: { pid: number; start: string | null }): Promise<boolean> {
  if (owner.pid <= 0 || !isAlive(owner.pid)) return false;
  if (owner.start === null) return true;
  const now = await startTime(fs, owner.pid);
  return now === null || now === owner.start;
}

/** Takes the lock of `dir`; resolves to a function that gives it back. Throws QUEUE_LOCKED if held. */
export async function acquireLock(fs: QueueFs, dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const start = await startTime(fs, process.pid);
  const content = start === null ? `${process.pid}\n` : `${process.pid} ${start}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    let fh: FileHandle;
    try {
      fh = await fs.open(path, 'wx');
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      const owner = await holder(fs, path);
      if (owner === null) continue;
      if (owner.pid === 0 && attempt < 2) {
        // Empty or half-written: another process may be between open and write. Look again shortly.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (await isHeld(fs, owner)) {
        throw new QueueError(
          'QUEUE_LOCKED',
          `Cannot open the queue at ${dir}: it is in use by process ${owner.pid} (${path})`,
        );
      }
      try {
        await fs.unlink(path);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
      continue;
    }
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return async () => {
      const owner = await holder(fs, path).catch(() => null);
      if (owner && owner.pid === process.pid) await fs.unlink(path).catch(() => undefined);
    };
  }
  throw new QueueError('QUEUE_LOCKED', `Cannot open the queue at ${dir}: could not take ${path}`);
}
