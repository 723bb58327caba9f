/**
 * @module queue/fs-store
 * The embedded QueueStore: an append-only log of segment files `<dir>/NNNNNNNNNN.seg` (records in
 * queue/fs-record.ts, files and group commit in queue/fs-log.ts), and an in-memory index
 * (queue/fs-index.ts) rebuilt by replaying the log on open.
 *
 * - Durability (DESIGN invariant 1): every change (new message, recipient states, removal) is a
 *   record appended to the current segment. One committer writes whatever is waiting as one
 *   batch, then ONE fdatasync, then resolves the whole batch; the directory is fsynced when a
 *   segment is created or deleted. N concurrent sessions share one fsync.
 * - Lazy changes (`{ durable: false }`: the scheduler's states and removals after a delivery) are
 *   acknowledged once written, and become durable with the next fdatasync (the next durable
 *   change's, or at most `syncIntervalMs` later). The log is append-only, so a system crash loses
 *   at most a suffix of them (a redelivery), never an older change while keeping a newer one. No
 *   segment is deleted on the strength of a lazy removal before it is durable.
 * - Crash safety: a batch is acknowledged only after its fsync, and batches are written one after
 *   another, so after a crash everything past the first bad record of the last segment was never
 *   acknowledged: `open` truncates it. A write that fails (ENOSPC, EDQUOT, EIO) truncates back to
 *   the last good end and rejects its batch with the original error; later writes go on normally.
 * - Space: the oldest segment is deleted once no live message is in it; when it (or the whole
 *   log) is mostly dead, its live messages are first copied, current state included, to the
 *   current segment. Only the oldest, so replay never meets a record whose context was deleted.
 * - Ownership: one writer per directory (a `lock` file, queue/fs-lock.ts); readers open with
 *   `readOnly: true` (`FsQueueStore.openReadOnly`), write nothing and take no lock, and see the
 *   state as of their `open`.
 * Leases live in memory only: after a restart every message is due again (at-least-once).
 */

import { dirname, resolve } from 'node:path';
import { RecentMessages } from './fs-cache.js';
import { QueueIndex, type Entry, type Segment } from './fs-index.js';
import { acquireLock, nodeFs, type QueueFs } from './fs-lock.js';
import { SegmentLog, syncDir } from './fs-log.js';
import {
  encodeRecord,
  HEADER_BYTES,
  RECORD_PUT,
  RECORD_REMOVE,
  RECORD_STATE,
  scanSegment,
  type PutMeta,
  type RemoveMeta,
  type StateMeta,
} from './fs-record.js';
import {
  checkEnvelope,
  initialStates,
  mergeStates,
  QueueError,
  cloneData,
  type QueueStore,
  type WriteOptions,
} from './store.js';
import type { Envelope, QueuedMessage, RecipientState } from './types.js';

export type { QueueFs } from './fs-lock.js';

export interface FsQueueStoreOptions {
  /** Replay without writing, truncating or locking (the CLI beside a running server). @default false */
  readOnly?: boolean;
  /** Start a new segment once the current one is this big. @default 67108864 (64 MiB) */
  segmentBytes?: number;
  /** Most bytes written per commit (one record always fits). @default 8388608 (8 MiB) */
  maxBatchBytes?: number;
  /** Compact the oldest segment when live data fills under this share of it or of the log. @default 0.5 */
  compactRatio?: number;
  /** Longest time a lazy (`durable: false`) change stays undurable. @default 1000 */
  syncIntervalMs?: number;
  /**
   * Zero-filled and synced ahead of the write position, in steps of this many bytes, so that a
   * commit's fdatasync writes data only, not the file's new size too (half the latency on
   * ext4). 0 turns it off.
   * @default 2 MiB
   */
  preallocBytes?: number;
  /**
   * Bytes of just-stored messages kept in memory for their first delivery attempt (queue/fs-cache.ts);
   * 0: none. @default 16777216 (16 MiB)
   */
  cacheBytes?: number;
  /** File-system operations (tests inject failures). @default node:fs/promises */
  fs?: QueueFs;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export class FsQueueStore implements QueueStore {
  readonly #dir: string;
  readonly #fs: QueueFs;
  readonly #readOnly: boolean;
  readonly #maxBatchBytes: number;
  readonly #compactRatio: number;
  readonly #log: SegmentLog<Entry>;
  readonly #index = new QueueIndex();
  readonly #putting = new Set<string>();
  readonly #recent: RecentMessages;
  #state: 'new' | 'open' | 'closed' = 'new';
  #unlock: (() => Promise<void>) | null = null;
  /** Problems found by `open` other than a torn tail of the last segment (real corruption). */
  readonly warnings: string[] = [];

  constructor(dir: string, options: FsQueueStoreOptions = {}) {
    this.#dir = dir;
    this.#fs = options.fs ?? nodeFs;
    this.#readOnly = options.readOnly ?? false;
    const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.#maxBatchBytes = options.maxBatchBytes ?? 8 * 1024 * 1024;
    this.#compactRatio = options.compactRatio ?? 0.5;
    if (!(segmentBytes > 0))
      throw new RangeError(`Cannot use segmentBytes ${segmentBytes}: it must be positive`);
    if (!(this.#compactRatio >= 0 && this.#compactRatio <= 1)) {
      throw new RangeError(`Cannot use compactRatio ${this.#compactRatio}: it must be in [0, 1]`);
    }
    this.#recent = new RecentMessages(options.cacheBytes ?? 16 * 1024 * 1024);
    const syncIntervalMs = options.syncIntervalMs ?? 1000;
    if (!(syncIntervalMs >= 0 && syncIntervalMs < 2 ** 31))
      throw new RangeError(`Cannot use syncIntervalMs ${syncIntervalMs}: it must be a number of ms >= 0`);
    const preallocBytes = options.preallocBytes ?? 2 * 1024 * 1024;
    const log = { segmentBytes, maxBatchBytes: this.#maxBatchBytes, syncIntervalMs, preallocBytes };
    this.#log = new SegmentLog<Entry>(this.#fs, dir, log, () =>
      this.#state === 'open' ? this.#compact() : Promise.resolve(),
    );
  }

  /** Opens `dir` for reading only: no lock, no writes, no truncation. */
  static async openReadOnly(
    dir: string,
    options: Omit<FsQueueStoreOptions, 'readOnly'> = {},
  ): Promise<FsQueueStore> {
    const store = new FsQueueStore(dir, { ...options, readOnly: true });
    await store.open();
    return store;
  }

  async open(): Promise<void> {
    if (this.#state !== 'new')
      throw new QueueError('QUEUE_CLOSED', `The queue at ${this.#dir} was already opened`);
    if (this.#readOnly) {
      await this.#openReadOnly();
    } else {
      const created = await this.#fs.mkdir(this.#dir, { recursive: true });
      if (typeof created === 'string') await this.#syncParents(created);
      this.#unlock = await acquireLock(this.#fs, this.#dir);
      try {
        await this.#replay(await this.#log.names(), true);
      } catch (err) {
        await this.#log.closeAll();
        await this.#unlock();
        throw err;
      }
      this.#log.current = this.#log.segments.at(-1) ?? null;
      await this.#log.primeCurrent();
    }
    this.#state = 'open';
  }

  async put(envelope: Envelope, data: readonly Buffer[]): Promise<void> {
    this.#checkWritable();
    checkEnvelope(envelope);
    const id = envelope.id;
    if (this.#index.get(id) || this.#putting.has(id)) {
      throw new QueueError('QUEUE_DUPLICATE_ID', `Cannot queue message ${id}: the id is already queued`);
    }
    const recipients = initialStates(envelope);
    const meta: PutMeta = { envelope, recipients };
    const rec = encodeRecord(RECORD_PUT, meta, data);
    const dataStart = HEADER_BYTES + rec.metaBytes;
    const msg: QueuedMessage = {
      envelope: cloneData(envelope),
      recipients,
      size: rec.bytes - dataStart,
    };
    this.#putting.add(id);
    try {
      await this.#log.append(rec.bufs, rec.bytes, true, (seg, offset) => {
        this.#index.place(msg, seg, offset + dataStart, rec.bytes);
        this.#recent.add(id, data, msg.size);
      });
    } finally {
      this.#putting.delete(id);
    }
  }

  async claim(now: number, limit: number, leaseUntil: number): Promise<QueuedMessage[]> {
    this.#checkWritable();
    return this.#index.claim(now, limit, leaseUntil).map((e) => cloneData(e.msg));
  }

  async lease(id: string, now: number, leaseUntil: number): Promise<QueuedMessage | null> {
    this.#checkWritable();
    const e = this.#index.get(id);
    if (!e || e.leaseUntil > now) return null;
    this.#index.lease(e, leaseUntil);
    return cloneData(e.msg);
  }

  async release(id: string): Promise<void> {
    const e = this.#index.get(id);
    if (e) this.#index.release(e);
  }

  async readMessage(id: string): Promise<Buffer> {
    this.#checkOpen();
    const e = this.#index.get(id);
    if (!e) throw new QueueError('QUEUE_NOT_FOUND', `Cannot read message ${id}: it is not in the queue`);
    return this.#recent.take(id) ?? this.#log.read(e.seg, e.dataOffset, e.msg.size);
  }

  async update(
    id: string,
    states: readonly RecipientState[],
    options?: WriteOptions,
  ): Promise<QueuedMessage> {
    this.#checkWritable();
    const e = this.#index.get(id);
    if (!e) throw new QueueError('QUEUE_NOT_FOUND', `Cannot update message ${id}: it is not in the queue`);
    let result = { ...e.msg, recipients: mergeStates(id, e.msg.recipients, states) };
    const meta: StateMeta = { id, recipients: states.map((s) => ({ ...s })) };
    const rec = encodeRecord(RECORD_STATE, meta);
    e.writes++;
    try {
      await this.#log.append(rec.bufs, rec.bytes, options?.durable !== false, () => {
        // Merge into the state as of this record's place in the log, as replay will.
        const cur = this.#index.setStates(id, meta.recipients);
        if (cur) result = cur.msg;
      });
    } finally {
      e.writes--;
    }
    return cloneData(result);
  }

  async remove(id: string, options?: WriteOptions): Promise<boolean> {
    this.#checkWritable();
    const e = this.#index.get(id);
    if (!e) return false;
    const meta: RemoveMeta = { id };
    const rec = encodeRecord(RECORD_REMOVE, meta);
    e.writes++;
    try {
      await this.#log.append(rec.bufs, rec.bytes, options?.durable !== false, () => {
        this.#index.remove(id);
        this.#recent.drop(id);
      });
    } finally {
      e.writes--;
    }
    return true;
  }

  async get(id: string): Promise<QueuedMessage | null> {
    this.#checkOpen();
    const e = this.#index.get(id);
    return e ? cloneData(e.msg) : null;
  }

  async list(): Promise<QueuedMessage[]> {
    this.#checkOpen();
    return this.#index.ids().map((id) => cloneData(this.#index.get(id)!.msg));
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    await this.#log.drain();
    let failed: unknown = null;
    // Lazy changes become durable before the files are let go.
    if (wasOpen && !this.#readOnly) await this.#log.flush().catch((err: unknown) => (failed = err));
    await this.#log.closeAll();
    if (wasOpen && this.#unlock) await this.#unlock();
    if (failed) throw failed;
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new QueueError('QUEUE_CLOSED', `The queue at ${this.#dir} is not open`);
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#readOnly)
      throw new QueueError('QUEUE_READ_ONLY', `The queue at ${this.#dir} is open read-only`);
  }

  // ---- open and replay ----

  async #openReadOnly(): Promise<void> {
    // The writer may delete or add segments while we read; start over until a stable view.
    for (let attempt = 0; ; attempt++) {
      const names = await this.#log.names();
      try {
        await this.#replay(names, false);
        const after = await this.#log.names();
        if (after.join() === names.join() || attempt >= 4) return;
      } catch (err) {
        if (errno(err) !== 'ENOENT' || attempt >= 4) throw err;
      }
      await this.#log.closeAll();
      this.#index.clear();
      this.#recent.clear();
      this.warnings.length = 0;
    }
  }

  /** A freshly made queue directory must itself survive a crash: fsync each new entry's parent. */
  async #syncParents(firstCreated: string): Promise<void> {
    for (let d = resolve(this.#dir); ; d = dirname(d)) {
      await syncDir(this.#fs, dirname(d));
      if (d === resolve(firstCreated) || dirname(d) === d) break;
    }
  }

  async #replay(names: string[], writable: boolean): Promise<void> {
    for (const [i, name] of names.entries()) {
      const seg = await this.#log.openSegment(name, writable);
      const { size } = await seg.fh.stat();
      const result = await scanSegment(seg.fh, size, (r) => {
        try {
          this.#index.apply(seg, r);
        } catch (err) {
          this.warnings.push(`${seg.path}: record at byte ${r.offset} ignored: ${String(err)}`);
        }
      });
      seg.size = result.end;
      seg.synced = result.end;
      const last = i === names.length - 1;
      if (result.torn !== undefined && !last) {
        this.warnings.push(
          `${seg.path}: ${result.torn} at byte ${result.end} of ${size}; the rest is ignored`,
        );
      }
      // The torn tail of a batch that was never acknowledged, or preallocated zeros (past which
      // such a tail may also lie): cut it so new records follow good ones over nothing stale.
      if (last && writable && result.end < size) await seg.fh.truncate(result.end);
    }
    // The last run may have died with lazy records written but not synced: replayed state is
    // built upon (segments deleted, records appended), so it must be durable first.
    const last = this.#log.segments.at(-1);
    if (writable && last) await last.fh.datasync();
  }

  // ---- compaction (runs inside the committer after each batch) ----

  /**
   * Frees space from the oldest segment only. A segment holds STATE and REMOVE records of
   * messages whose PUT may sit in an older segment; deleting out of order would let replay bring
   * back a removed message or an older state. Deleting the oldest is always safe once it holds
   * no live PUT: any later record of one of its messages is either superseded by a newer copy
   * or refers to a removed message, and replay ignores both.
   * The oldest is emptied by copying its live messages forward when it is mostly dead, or when
   * the whole log is (a long-deferred message must not pin every segment behind it).
   */
  async #compact(): Promise<void> {
    for (;;) {
      const oldest = this.#log.segments[0];
      if (!oldest || oldest === this.#log.current) return;
      if (oldest.entries.size > 0) {
        let live = 0;
        let total = 0;
        for (const seg of this.#log.segments) {
          live += seg.liveBytes;
          total += seg.size;
        }
        const ratio = this.#compactRatio;
        if (oldest.liveBytes < oldest.size * ratio || live < total * ratio) await this.#copyForward(oldest);
        return;
      }
      // Its messages may be dead only through lazy records: those must not be lost once it is gone.
      try {
        await this.#log.syncCurrent();
      } catch {
        return;
      }
      if (!(await this.#log.delete(oldest))) return;
      // Make each deletion durable before the next: a crash must never bring back an older segment alone.
      await this.#log.syncDir().catch(() => undefined);
    }
  }

  async #copyForward(seg: Segment): Promise<void> {
    let budget = this.#maxBatchBytes;
    for (const e of [...seg.entries]) {
      if (budget <= 0 || this.#state !== 'open') break;
      // A write still in the queue is not in e.msg yet; a copy made now would undo it on replay.
      if (e.seg !== seg || e.writes > 0) continue;
      const id = e.msg.envelope.id;
      let data: Buffer;
      try {
        const kept = this.#recent.peek(id);
        data = kept ? Buffer.from(kept) : await this.#log.read(e.seg, e.dataOffset, e.msg.size);
      } catch {
        continue;
      }
      if (this.#index.get(id) !== e || e.writes > 0) continue;
      const meta: PutMeta = { envelope: e.msg.envelope, recipients: e.msg.recipients };
      const rec = encodeRecord(RECORD_PUT, meta, [data]);
      budget -= rec.bytes;
      e.writes++;
      this.#log.enqueue({
        bufs: rec.bufs,
        bytes: rec.bytes,
        sync: true,
        durable: (to, offset) => {
          e.writes--;
          // Moved in place: callers awaiting other writes of this message hold this very object.
          if (this.#index.get(id) === e)
            this.#index.move(e, to, offset + HEADER_BYTES + rec.metaBytes, rec.bytes);
        },
        fail: () => {
          e.writes--;
        },
      });
    }
  }
}
