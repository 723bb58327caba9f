/**
 * @module queue/fs-log
 * The segment files of the file-system queue and their group committer. Records (format in
 * queue/fs-record.ts) are appended to the current segment `<dir>/NNNNNNNNNN.seg`; whatever is
 * waiting when the committer is free goes out as ONE batch: one writev, ONE fdatasync, then every
 * record of the batch is acknowledged together. A new segment is made durable (directory fsync)
 * before anything in it is acknowledged.
 *
 * Batches are written strictly one after another, so after a crash every byte past the first bad
 * record belongs to a batch that was never acknowledged. A batch that fails (ENOSPC, EDQUOT, EIO)
 * is cut off again (ftruncate to the last good end), rejected with the original error, and the
 * next batch starts at the good end: nothing half-acknowledged, and writing goes on afterwards.
 */

import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueFs } from './fs-lock.js';
import { QueueError } from './store.js';

export const SEGMENT_NAME = /^(\d{10})\.seg$/;
const segmentName = (seq: number): string => `${String(seq).padStart(10, '0')}.seg`;

/** One segment file; `entries` and `liveBytes` belong to the store (the live messages placed here). */
export interface Segment<E> {
  seq: number;
  path: string;
  fh: FileHandle;
  /** Bytes of good records (the write position of the current segment). */
  size: number;
  entries: Set<E>;
  liveBytes: number;
  readers: number;
  deleted: boolean;
}

/** A record waiting for the committer; `durable` runs synchronously once its batch is fsynced. */
export interface Pending<E> {
  bufs: Buffer[];
  bytes: number;
  durable: (seg: Segment<E>, offset: number) => void;
  fail: (err: unknown) => void;
}

export interface SegmentLogOptions {
  segmentBytes: number;
  maxBatchBytes: number;
}

/** Writes all of `bufs` at `position`, going on after short writes (a full disk often takes part first). */
async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let rest = bufs;
  let pos = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
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

  /**
   * `afterCommit` runs inside the committer after every batch (compaction: it must be cheap when
   * there is nothing to do); it may `enqueue`. Running it only when idle would starve it under load.
   */
  constructor(
    private readonly fs: QueueFs,
    private readonly dir: string,
    private readonly options: SegmentLogOptions,
    private readonly afterCommit: () => Promise<void>,
  ) {}

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
    const seg: Segment<E> = {
      seq,
      path,
      fh,
      size: 0,
      entries: new Set(),
      liveBytes: 0,
      readers: 0,
      deleted: false,
    };
    this.segments.push(seg);
    return seg;
  }

  /** Appends one record; resolves once it is durable (after `durable` ran). */
  append(bufs: Buffer[], bytes: number, durable: (seg: Segment<E>, offset: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue({
        bufs,
        bytes,
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
        await this.#commit(this.#queue.splice(0, n), total);
        await this.afterCommit();
      }
    } finally {
      this.#running = null;
    }
  }

  async #commit(batch: Pending<E>[], total: number): Promise<void> {
    let seg: Segment<E>;
    try {
      const cur = this.current;
      seg = cur && cur.size < this.options.segmentBytes ? cur : await this.#roll();
    } catch (err) {
      for (const p of batch) p.fail(err);
      return;
    }
    const start = seg.size;
    try {
      await writeAll(
        seg.fh,
        batch.flatMap((p) => p.bufs),
        start,
      );
      await seg.fh.datasync();
    } catch (err) {
      // Nothing of this batch was acknowledged: cut it off so the next batch starts at a clean end.
      await seg.fh.truncate(start).catch(() => undefined);
      for (const p of batch) p.fail(err);
      return;
    }
    seg.size = start + total;
    let offset = start;
    for (const p of batch) {
      try {
        p.durable(seg, offset);
      } catch (err) {
        p.fail(err);
      }
      offset += p.bytes;
    }
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
    const seg: Segment<E> = {
      seq,
      path,
      fh,
      size: 0,
      entries: new Set(),
      liveBytes: 0,
      readers: 0,
      deleted: false,
    };
    this.segments.push(seg);
    this.current = seg;
    return seg;
  }
}
