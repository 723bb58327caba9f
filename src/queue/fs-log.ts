/**
 * @module queue/fs-log
 * The segment files of the file-system queue and their group committer. Records (format in
 * queue/fs-record.ts) are appended to the current segment `<dir>/NNNNNNNNNN.seg`; whatever is
 * waiting when the committer is free goes out as ONE batch: one writev, ONE fdatasync, then every
 * record of the batch is acknowledged together. A new segment is made durable (directory fsync)
 * before anything in it is acknowledged.
 *
 * A record is either durable (acknowledged after the fdatasync) or lazy (acknowledged once
 * written: it survives a process crash, and a system crash only together with the records after
 * it). A batch of lazy records only is written without an fdatasync; the next durable record's
 * fdatasync covers them, or, if none comes, a timer's (`syncIntervalMs`). Before the log moves to
 * a new segment the old one is fdatasynced, so only the last segment ever holds undurable bytes.
 *
 * Batches are written strictly one after another, so after a crash every byte past the first bad
 * record belongs to a batch that was never acknowledged, or to lazy records whose loss the
 * caller accepted (and then everything after them is lost too: the log stays a prefix). A batch
 * that fails (ENOSPC, EDQUOT, EIO) is cut off again (ftruncate to the last good end), rejected
 * with the original error, and the next batch starts at the good end: nothing half-acknowledged,
 * and writing goes on afterwards. Ahead of the write position the current segment is kept
 * zero-filled (queue/fs-fill.ts), so that a batch's fdatasync writes data only.
 */

import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueFs } from './fs-lock.js';
import { QueueError } from './store.js';
import { ZeroFill } from './fs-fill.js';

export const SEGMENT_NAME = /^(\d{10})\.seg$/;
const segmentName = (seq: number): string => `${String(seq).padStart(10, '0')}.seg`;

/** One segment file; `entries` and `liveBytes` belong to the store (the live messages placed here). */
export interface Segment<E> {
  seq: number;
  path: string;
  fh: FileHandle;
  /** Bytes of good records (the write position of the current segment). */
  size: number;
  /** Bytes known durable (fdatasynced); `size` past it only after lazy records. */
  synced: number;
  /** End of the zero-filled, synced region ahead of `size` (0: none). */
  zeroed: number;
  entries: Set<E>;
  liveBytes: number;
  readers: number;
  deleted: boolean;
}

/**
 * A record waiting for the committer. `durable` runs synchronously once its batch is written and,
 * when `sync` is true, fdatasynced (a lazy record, `sync` false, is acknowledged once written).
 */
export interface Pending<E> {
  bufs: Buffer[];
  bytes: number;
  sync: boolean;
  durable: (seg: Segment<E>, offset: number) => void;
  fail: (err: unknown) => void;
}

export interface SegmentLogOptions {
  segmentBytes: number;
  maxBatchBytes: number;
  /** Longest time lazy records stay written but not fdatasynced. */
  syncIntervalMs: number;
  /** Bytes zero-filled ahead of the write position per step; 0: none. */
  preallocBytes: number;
}

/** Writes all of `bufs` at `position`, going on after short writes (a full disk often takes part first). */
async function writeAll(fs: QueueFs, fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let rest = bufs;
  let pos = position;
  while (rest.length > 0) {
    const bytesWritten = fs.writevSync
      ? fs.writevSync(fh.fd, rest, pos)
      : (await fh.writev(rest, pos)).bytesWritten;
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    pos += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

/** fsync a directory, making the entries in it (created, renamed, deleted files) durable. */
export async function syncDir(fs: QueueFs, dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export class SegmentLog<E> {
  segments: Segment<E>[] = [];
  current: Segment<E> | null = null;
  #queue: Pending<E>[] = [];
  #running: Promise<void> | null = null;
  #nextSeq = 0;
  #syncTimer: NodeJS.Timeout | null = null;
  readonly #zero: ZeroFill<E>;

  /**
   * `afterCommit` runs inside the committer after every batch (compaction: it must be cheap when
   * there is nothing to do); it may `enqueue`. Running it only when idle would starve it under load.
   */
  constructor(
    private readonly fs: QueueFs,
    private readonly dir: string,
    private readonly options: SegmentLogOptions,
    private readonly afterCommit: () => Promise<void>,
  ) {
    this.#zero = new ZeroFill<E>(fs, dir, options);
  }

  /** Segment file names in the directory, oldest first. */
  async names(): Promise<string[]> {
    const names = await this.fs.readdir(this.dir);
    return names.filter((n) => SEGMENT_NAME.test(n)).sort();
  }

  /** Opens an existing segment and adds it to `segments` (its `size` is left for the caller's scan). */
  async openSegment(name: string, writable: boolean): Promise<Segment<E>> {
    const path = join(this.dir, name);
    const fh = await this.fs.open(path, writable ? 'r+' : 'r');
    const seq = Number(SEGMENT_NAME.exec(name)![1]);
    const seg = emptySegment<E>(seq, path, fh);
    this.segments.push(seg);
    return seg;
  }

  /** Appends one record; resolves (after `durable` ran) once it is durable, or written if `sync` is false. */
  append(
    bufs: Buffer[],
    bytes: number,
    sync: boolean,
    durable: (seg: Segment<E>, offset: number) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue({
        bufs,
        bytes,
        sync,
        durable: (seg, offset) => {
          durable(seg, offset);
          resolve();
        },
        fail: reject,
      });
    });
  }

  enqueue(p: Pending<E>): void {
    this.#queue.push(p);
    this.#running ??= this.#run();
  }

  /** Resolves once every queued record is written (or failed). */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** True while some acknowledged lazy record is not yet durable. */
  get dirty(): boolean {
    const cur = this.current;
    return cur !== null && cur.synced < cur.size;
  }

  /** Makes every record written so far durable (resolves at once when nothing is pending). */
  flush(): Promise<void> {
    if (!this.dirty && !this.#running) return Promise.resolve();
    return this.append([], 0, true, () => undefined);
  }

  /**
   * fdatasyncs the current segment if lazy records made it dirty. Only from inside the committer
   * (`afterCommit`), where no write runs at the same time; e.g. before deleting a segment whose
   * last live message was removed by a lazy record.
   */
  async syncCurrent(): Promise<void> {
    const cur = this.current;
    if (!cur || cur.synced >= cur.size) return;
    const end = cur.size;
    await this.#datasync(cur);
    cur.synced = Math.max(cur.synced, end);
  }

  #datasync(seg: Segment<E>): Promise<void> {
    return this.fs.fdatasync ? this.fs.fdatasync(seg.fh.fd) : seg.fh.datasync();
  }

  /** Reads `length` bytes at `offset` of a segment, keeping its file open meanwhile. */
  async read(seg: Segment<E>, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    seg.readers++;
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await seg.fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0)
          throw new QueueError('QUEUE_CORRUPT', `${seg.path} is shorter than its index says`);
        got += bytesRead;
      }
    } finally {
      seg.readers--;
      if (seg.deleted && seg.readers === 0) await seg.fh.close().catch(() => undefined);
    }
    return buf;
  }

  /** Deletes a sealed segment file; false if that failed (tried again later). Call `syncDir` after. */
  async delete(seg: Segment<E>): Promise<boolean> {
    try {
      await this.fs.unlink(seg.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    seg.deleted = true;
    this.segments = this.segments.filter((s) => s !== seg);
    if (seg.readers === 0) await seg.fh.close().catch(() => undefined);
    return true;
  }

  syncDir(): Promise<void> {
    return syncDir(this.fs, this.dir);
  }

  async closeAll(): Promise<void> {
    // A queue closed cleanly keeps no unused zeros: its files are exactly their records.
    await this.#zero.seal(this.current);
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = null;
    for (const seg of this.segments) await seg.fh.close().catch(() => undefined);
    this.segments = [];
    this.current = null;
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        let n = 0;
        let total = 0;
        const max = this.options.maxBatchBytes;
        while (n < this.#queue.length && (n === 0 || total + this.#queue[n]!.bytes <= max)) {
          total += this.#queue[n]!.bytes;
          n++;
        }
        // Not after a failed batch: compaction would queue new copies that fail alike, in a loop.
        if (await this.#commit(this.#queue.splice(0, n), total)) await this.afterCommit();
      }
    } finally {
      this.#running = null;
    }
  }

  /** Writes one batch; false if it failed (every record of it rejected). */
  async #commit(batch: Pending<E>[], total: number): Promise<boolean> {
    const sync = batch.some((p) => p.sync);
    let seg: Segment<E>;
    try {
      const cur = this.current;
      if (total === 0 && !cur) {
        // A flush before any segment exists: nothing was ever written, so nothing to sync.
        for (const p of batch) p.durable(null as never, 0);
        return true;
      }
      if (cur && (total === 0 || cur.size < this.options.segmentBytes)) seg = cur;
      else {
        // Lazy records of the old segment must not outlive it undurable while the new one is synced.
        await this.syncCurrent();
        await this.#zero.seal(this.current);
        seg = await this.#roll();
      }
    } catch (err) {
      for (const p of batch) p.fail(err);
      return false;
    }
    const start = seg.size;
    // A batch reaching into the zero fill under way waits for it, or the zeros could land on it.
    if (seg === this.current) await this.#zero.clear(start, total);
    try {
      if (total > 0) {
        await writeAll(
          this.fs,
          seg.fh,
          batch.flatMap((p) => p.bufs),
          start,
        );
      }
      if (sync && seg.synced < start + total) await this.#datasync(seg);
    } catch (err) {
      // Nothing of this batch was acknowledged: cut it off so the next batch starts at a clean end.
      if (total > 0) {
        await seg.fh.truncate(start).catch(() => undefined);
        // The zeros ahead went with it: the next fill starts at the write position again.
        seg.zeroed = Math.min(seg.zeroed, start);
      }
      for (const p of batch) p.fail(err);
      return false;
    }
    seg.size = start + total;
    if (sync) seg.synced = seg.size;
    else this.#armSyncTimer();
    if (seg === this.current) this.#zero.ahead(seg);
    let offset = start;
    for (const p of batch) {
      try {
        p.durable(seg, offset);
      } catch (err) {
        p.fail(err);
      }
      offset += p.bytes;
    }
    return true;
  }

  /** The first zero fill of the current segment (a new one, or the last one after a restart). */
  primeCurrent(): Promise<void> {
    return this.#zero.prime(this.current);
  }

  /** Lazy records were written without an fdatasync: make sure one follows within `syncIntervalMs`. */
  #armSyncTimer(): void {
    if (this.#syncTimer) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = null;
      // A failed flush leaves the segment dirty; the next durable batch or lazy write tries again.
      if (this.dirty) this.flush().catch(() => this.#armSyncTimer());
    }, this.options.syncIntervalMs);
    // Not keeping the process alive: close() flushes, and a process that exits is no system crash.
    this.#syncTimer.unref();
  }

  async #roll(): Promise<Segment<E>> {
    // A fresh number per attempt: a file left by a failed attempt must not block the next one.
    const seq = Math.max(this.#nextSeq, (this.segments.at(-1)?.seq ?? 0) + 1);
    this.#nextSeq = seq + 1;
    const path = join(this.dir, segmentName(seq));
    const fh = await this.fs.open(path, 'wx+');
    try {
      await this.syncDir();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.fs.unlink(path).catch(() => undefined);
      throw err;
    }
    const seg = emptySegment<E>(seq, path, fh);
    this.segments.push(seg);
    this.current = seg;
    await this.primeCurrent();
    return seg;
  }
}

/** A segment with nothing counted in it yet (a new file, or one about to be scanned). */
function emptySegment<E>(seq: number, path: string, fh: Segment<E>['fh']): Segment<E> {
  return {
    seq,
    path,
    fh,
    size: 0,
    synced: 0,
    zeroed: 0,
    entries: new Set(),
    liveBytes: 0,
    readers: 0,
    deleted: false,
  };
}
