/**
 * @module queue/store
 * The QueueStore contract: where accepted messages live until every recipient is final. Storage
 * only; *when* to deliver is the scheduler's business (queue/scheduler.ts).
 *
 * Kept narrow so a store shared by several nodes (PostgreSQL: leased rows, `FOR UPDATE SKIP
 * LOCKED`) can implement it: `claim` is one atomic "pick due rows and lease them", and `update`
 * writes whole per-recipient states (no read-modify-write across calls).
 *
 * Rules every implementation keeps (test/queue/store-contract.test.ts pins them):
 * - `put`, `update` and `remove` resolve only when the change is durable; a rejected call
 *   changed nothing that a later `open` would see.
 * - Except `update` and `remove` with `{ durable: false }` (WriteOptions): they resolve once the
 *   change is recorded (seen by every later call, kept across a process crash) and make it
 *   durable soon after (the next durable change, or about a second). A system crash may lose
 *   such changes, but only as a suffix: after `open` the queue is as it was after some prefix of
 *   all changes in call order, that prefix holding every change acknowledged as durable. For
 *   changes whose loss only means a redelivery (PostgreSQL: `synchronous_commit = off`).
 * - A write failing for lack of space rejects with an error whose `code` is `ENOSPC`/`EDQUOT`,
 *   and the store keeps working once space returns.
 * - Returned objects are copies: mutating them changes nothing in the store.
 * - A recipient "needs work" when it is pending, or failed with its DSN not yet handled
 *   (`dsnSent` false); `nextAttemptAt` says when, for both. A message with no recipient that
 *   needs work is done and due at once: `claim` hands it out so the scheduler removes it.
 * - Leases are not durable: after a restart every message is free again (at-least-once).
 */

import type { Envelope, QueuedMessage, RecipientState } from './types.js';

export interface WriteOptions {
  /** false: resolve once recorded, durable a little later (see the module comment). @default true */
  durable?: boolean;
}

export interface QueueStore {
  /** Load or recover the queue: everything durable is back, partial writes are dropped. */
  open(): Promise<void>;
  /** Store a new message, every recipient pending and due at `envelope.receivedAt`. Durable on resolve. */
  put(envelope: Envelope, data: readonly Buffer[]): Promise<void>;
  /**
   * Lease up to `limit` messages that have a recipient needing work at or before `now` and are not
   * leased (or whose lease ended before `now`), until `leaseUntil`. Earliest due first.
   */
  claim(now: number, limit: number, leaseUntil: number): Promise<QueuedMessage[]>;
  /** Lease one message (operator actions); null if it is unknown or leased by someone else. */
  lease(id: string, now: number, leaseUntil: number): Promise<QueuedMessage | null>;
  /** Drop a lease (no-op if none). */
  release(id: string): Promise<void>;
  /** The stored message bytes. Rejects with code QUEUE_NOT_FOUND for an unknown id. */
  readMessage(id: string): Promise<Buffer>;
  /** Replace the state of the recipients named by `states[i].index`. Durable on resolve (by default). */
  update(id: string, states: readonly RecipientState[], options?: WriteOptions): Promise<QueuedMessage>;
  /** Forget a message (all recipients final, or operator delete). Durable on resolve (by default); false if unknown. */
  remove(id: string, options?: WriteOptions): Promise<boolean>;
  get(id: string): Promise<QueuedMessage | null>;
  /** Every message, oldest id first. */
  list(): Promise<QueuedMessage[]>;
  /** Finish pending writes and release files and locks. */
  close(): Promise<void>;
}

export type QueueErrorCode =
  | 'QUEUE_LOCKED'
  | 'QUEUE_CLOSED'
  | 'QUEUE_READ_ONLY'
  | 'QUEUE_NOT_FOUND'
  | 'QUEUE_DUPLICATE_ID'
  | 'QUEUE_CORRUPT';

/** A queue condition callers may catch, told apart by `code`. */
export class QueueError extends Error {
  override name = 'QueueError';
  constructor(
    readonly code: QueueErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The state of a freshly accepted message: every recipient pending, due at once. */
export function initialStates(envelope: Envelope): RecipientState[] {
  return envelope.recipients.map((_, index) => ({
    index,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: envelope.receivedAt,
  }));
}

export function needsWork(r: RecipientState): boolean {
  return r.status === 'pending' || (r.status === 'failed' && r.dsnSent !== true);
}

/**
 * The earliest time any recipient needs work. A message with nothing left to do is due at once
 * (-Infinity): it is still stored only because a crash or an error came between its last update
 * and its removal, and the scheduler removes it when it claims it.
 */
export function dueAt(msg: QueuedMessage): number {
  let t = Infinity;
  for (const r of msg.recipients) if (needsWork(r) && r.nextAttemptAt < t) t = r.nextAttemptAt;
  return t === Infinity ? -Infinity : t;
}

/** True when no recipient needs work: delivered, or failed with its DSN handled. */
export function isDone(msg: QueuedMessage): boolean {
  return msg.recipients.every((r) => !needsWork(r));
}

/** Checks an envelope before it is stored; throws TypeError naming the problem. */
export function checkEnvelope(envelope: Envelope): void {
  if (typeof envelope.id !== 'string' || !/^[0-9A-Za-z._-]{1,64}$/.test(envelope.id)) {
    throw new TypeError(`Cannot queue a message: bad id ${JSON.stringify(envelope.id)}`);
  }
  if (!Array.isArray(envelope.recipients) || envelope.recipients.length === 0) {
    throw new TypeError(`Cannot queue message ${envelope.id}: it has no recipients`);
  }
  if (!Number.isFinite(envelope.receivedAt)) {
    throw new TypeError(`Cannot queue message ${envelope.id}: receivedAt is not a time`);
  }
}

/** Merges `states` into a copy of `current`; throws RangeError for an index out of range. */
export function mergeStates(
  id: string,
  current: readonly RecipientState[],
  states: readonly RecipientState[],
): RecipientState[] {
  const next = current.map((r) => ({ ...r }));
  for (const s of states) {
    if (!Number.isInteger(s.index) || s.index < 0 || s.index >= next.length) {
      throw new RangeError(`Cannot update message ${id}: recipient index ${s.index} is out of range`);
    }
    next[s.index] = { ...s };
  }
  return next;
}

/** Picks the `limit` earliest-due messages among `candidates` (unleased ones, chosen by the caller). */
export function pickDue<T>(candidates: Iterable<[T, QueuedMessage]>, now: number, limit: number): T[] {
  const due: { key: T; at: number; id: string }[] = [];
  for (const [key, msg] of candidates) {
    const at = dueAt(msg);
    if (at <= now) due.push({ key, at, id: msg.envelope.id });
  }
  due.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return due.slice(0, Math.max(0, limit)).map((d) => d.key);
}

/**
 * A deep copy of JSON-shaped data (the envelope and recipient states: strings, numbers, booleans,
 * arrays, plain objects). The store hands out copies so callers cannot change its state in
 * place; structuredClone did the same at about ten times the cost, a few percent of the CPU of
 * accepting a message.
 */
export function cloneData<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(cloneData) as T;
  const out: Record<string, unknown> = {};
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) out[k] = cloneData(x);
  }
  return out as T;
}
