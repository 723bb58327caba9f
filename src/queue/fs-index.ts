/**
 * @module queue/fs-index
 * The in-memory side of the file-system queue (queue/fs-store.ts): which messages are live, where
 * each one's current record sits (segment and offset), its state, its lease, and when it is next
 * due (queue/due-index.ts). Replay rebuilds it from the log; the store changes it only once a
 * record is durable, so it never runs ahead of the disk. No I/O here.
 */

import { DueIndex } from './due-index.js';
import type { Segment as LogSegment } from './fs-log.js';
import {
  RECORD_PUT,
  RECORD_STATE,
  type PutMeta,
  type RemoveMeta,
  type ScannedRecord,
  type StateMeta,
} from './fs-record.js';
import { dueAt, mergeStates } from './store.js';
import type { QueuedMessage, RecipientState } from './types.js';

export type Segment = LogSegment<Entry>;

export interface Entry {
  msg: QueuedMessage;
  seg: Segment;
  dataOffset: number;
  recordBytes: number;
  /** -Infinity when not leased. */
  leaseUntil: number;
  /** Writes queued but not yet durable; compaction leaves such entries alone. */
  writes: number;
  dueSeq: number;
}

export class QueueIndex {
  readonly #entries = new Map<string, Entry>();
  readonly #due = new DueIndex<Entry>();

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  /** Live ids, oldest first. */
  ids(): string[] {
    return [...this.#entries.keys()].sort();
  }

  clear(): void {
    this.#entries.clear();
  }

  /** A message whose PUT record is durable at `dataOffset` (of its data) in `seg`. */
  place(msg: QueuedMessage, seg: Segment, dataOffset: number, recordBytes: number): void {
    this.remove(msg.envelope.id);
    const e: Entry = { msg, seg, dataOffset, recordBytes, leaseUntil: -Infinity, writes: 0, dueSeq: 0 };
    this.#entries.set(msg.envelope.id, e);
    seg.entries.add(e);
    seg.liveBytes += recordBytes;
    this.#due.schedule(e, this.#key(e));
  }

  /** The message's current record is now a copy in `to` (compaction); the entry object stays. */
  move(e: Entry, to: Segment, dataOffset: number, recordBytes: number): void {
    e.seg.entries.delete(e);
    e.seg.liveBytes -= e.recordBytes;
    e.seg = to;
    e.dataOffset = dataOffset;
    e.recordBytes = recordBytes;
    to.entries.add(e);
    to.liveBytes += recordBytes;
  }

  /** Merges durable recipient states; false if the message is gone. */
  setStates(id: string, states: readonly RecipientState[]): Entry | undefined {
    const e = this.#entries.get(id);
    if (!e) return undefined;
    e.msg = { ...e.msg, recipients: mergeStates(id, e.msg.recipients, states) };
    this.#due.schedule(e, this.#key(e));
    return e;
  }

  remove(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    e.seg.entries.delete(e);
    e.seg.liveBytes -= e.recordBytes;
    this.#due.unschedule(e);
  }

  /** Replays one record read back from `seg`. */
  apply(seg: Segment, r: ScannedRecord): void {
    if (r.type === RECORD_PUT) {
      const meta = r.meta as PutMeta;
      const msg: QueuedMessage = { envelope: meta.envelope, recipients: meta.recipients, size: r.dataBytes };
      this.place(msg, seg, r.dataOffset, r.bytes);
    } else if (r.type === RECORD_STATE) {
      // Unknown id: the message was removed, its PUT compacted away; nothing to do.
      const meta = r.meta as StateMeta;
      this.setStates(meta.id, meta.recipients);
    } else {
      this.remove((r.meta as RemoveMeta).id);
    }
  }

  /** Leases up to `limit` due, unleased entries until `leaseUntil`, earliest due first. */
  claim(now: number, limit: number, leaseUntil: number): Entry[] {
    const out: Entry[] = [];
    if (limit <= 0) return out;
    this.#due.popDue(now, (e) => {
      const at = e.leaseUntil > now ? e.leaseUntil : dueAt(e.msg);
      if (at > now) {
        this.#due.schedule(e, at);
        return true;
      }
      this.lease(e, leaseUntil);
      out.push(e);
      return out.length < limit;
    });
    this.#due.compact(
      this.#entries.size,
      () => this.#entries.values(),
      (e) => this.#key(e),
    );
    return out;
  }

  lease(e: Entry, until: number): void {
    e.leaseUntil = until;
    this.#due.schedule(e, this.#key(e));
  }

  release(e: Entry): void {
    this.lease(e, -Infinity);
  }

  /** When an entry next needs a look: its due time, or the end of its lease if later. */
  #key(e: Entry): number {
    const at = dueAt(e.msg);
    return e.leaseUntil === -Infinity ? at : Math.max(at, e.leaseUntil);
  }
}
