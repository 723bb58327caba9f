/**
 * @module queue/fs-fill
 * Keeps a zero-filled, fdatasynced region ahead of the write position of the current segment
 * (queue/fs-log.ts). Appending past the end of a file changes its size, and ext4 then commits
 * its journal in every fdatasync; writing over blocks that already exist is data only, about
 * half the latency (PostgreSQL zero-fills its WAL segments for the same reason).
 *
 * - The first fill of a segment (`prime`: a new one, or the last one after a restart) is small
 *   and waited for; each later step is filled while half of the previous one is still ahead,
 *   beside the committer, over bytes no batch reaches meanwhile: a batch that would reach the
 *   fill under way waits for it (`clear`). A fill never starts below the write position.
 * - The scanner (queue/fs-record.ts) reads zeros that run to the end of a file as the end of
 *   its records. Before the log moves to a new segment, and on close, the unused zeros are cut
 *   off (`seal`), so sealed segments hold exactly their records.
 * - A failure (a full disk, a short write) turns it off for that segment: records are then
 *   appended as they would be without it. Nor is anything filled while the file system has less
 *   than MIN_FREE bytes free: the zeros are a speed-up, never worth the last space.
 */
import type { QueueFs } from './fs-lock.js';
import type { Segment } from './fs-log.js';

/** Free space a zero fill must leave on the file system. */
const MIN_FREE = 256 * 1024 * 1024;
/** The first zero fill of a segment: small, as a batch waits for it. */
const FIRST_FILL = 256 * 1024;

let zeroBuf = Buffer.alloc(0);
/** A shared, never written, all-zero buffer of at least `n` bytes. */
function zeros(n: number): Buffer {
  if (zeroBuf.length < n) zeroBuf = Buffer.alloc(n);
  return zeroBuf;
}

export class ZeroFill<E> {
  /** The fill under way: it writes from `#from` on, where no batch may go meanwhile. */
  #running: Promise<void> | null = null;
  #from = 0;
  /** No fill before this time (the disk was short of space). */
  #pausedUntil = 0;
  /** Segments whose fill failed: they grow by plain appends. */
  readonly #off = new WeakSet<Segment<E>>();

  constructor(
    private readonly fs: QueueFs,
    private readonly dir: string,
    /** Bytes per step (0: no fill), and the segment size past which the log moves on. */
    private readonly options: { preallocBytes: number; segmentBytes: number },
  ) {}

  /** Before a batch of `total` bytes at `start` of the current segment: out of the fill's way. */
  async clear(start: number, total: number): Promise<void> {
    if (this.#running && start + total > this.#from) await this.#running;
  }

  /** After a batch on the current segment: starts the next step if half of this one is used. */
  ahead(seg: Segment<E>): void {
    const step = this.#step();
    if (step <= 0 || this.#running || this.#off.has(seg)) return;
    // Only ahead of a first fill (`prime`): a fill starting at the write position itself would
    // hold every batch until it is done.
    if (seg.zeroed === 0 || seg.size >= this.options.segmentBytes || seg.zeroed - seg.size >= step / 2)
      return;
    // Past the write position, always: batches bigger than a step may have overrun the zeros.
    this.#start(seg, Math.max(seg.zeroed, seg.size), step);
  }

  /** The first fill of the current segment, waited for. */
  async prime(seg: Segment<E> | null): Promise<void> {
    const step = Math.min(this.#step(), FIRST_FILL);
    if (!seg || step <= 0 || seg.zeroed > 0 || this.#off.has(seg)) return;
    if (this.#running) await this.#running;
    await this.#start(seg, seg.size, step);
  }

  /** Before the log moves on or closes: no fill runs on `seg`, and its unused zeros are cut off. */
  async seal(seg: Segment<E> | null): Promise<void> {
    if (this.#running) await this.#running;
    if (seg && seg.zeroed > seg.size) {
      // Not synced: a crash that undoes it leaves zeros, which the scanner reads as the end.
      await seg.fh.truncate(seg.size).catch(() => undefined);
      seg.zeroed = 0;
    }
  }

  #step(): number {
    return Math.min(this.options.preallocBytes, this.options.segmentBytes);
  }

  #start(seg: Segment<E>, from: number, bytes: number): Promise<void> {
    this.#from = from;
    const run = this.#fill(seg, from, bytes).finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #fill(seg: Segment<E>, from: number, bytes: number): Promise<void> {
    try {
      if (Date.now() < this.#pausedUntil) return;
      const free = this.fs.freeBytes ? await this.fs.freeBytes(this.dir) : Infinity;
      if (free < bytes + MIN_FREE) {
        this.#pausedUntil = Date.now() + 10_000;
        return;
      }
      const { bytesWritten } = await seg.fh.write(zeros(bytes), 0, bytes, from);
      if (bytesWritten !== bytes) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      await seg.fh.datasync();
      seg.zeroed = from + bytes;
    } catch {
      this.#off.add(seg);
      // Give the space back (a full disk): no batch reaches past `from` while this runs.
      await seg.fh.truncate(from).catch(() => undefined);
    }
  }
}
