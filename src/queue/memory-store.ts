/**
 * @module queue/memory-store
 * QueueStore in memory: for tests, and the reference reading of the contract in queue/store.ts.
 * Nothing survives the process. Objects handed in or out are copied, as a real store would.
 */

import {
  checkEnvelope,
  initialStates,
  mergeStates,
  pickDue,
  QueueError,
  cloneData,
  type QueueStore,
  type WriteOptions,
} from './store.js';
import type { Envelope, QueuedMessage, RecipientState } from './types.js';

interface Entry {
  msg: QueuedMessage;
  data: Buffer;
  leaseUntil: number;
}

function copy(msg: QueuedMessage): QueuedMessage {
  return cloneData(msg);
}

export class MemoryQueueStore implements QueueStore {
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  async open(): Promise<void> {
    this.#closed = false;
  }

  async put(envelope: Envelope, data: readonly Buffer[]): Promise<void> {
    this.#check();
    checkEnvelope(envelope);
    if (this.#entries.has(envelope.id)) {
      throw new QueueError(
        'QUEUE_DUPLICATE_ID',
        `Cannot queue message ${envelope.id}: the id is already queued`,
      );
    }
    const bytes = Buffer.concat(data as Buffer[]);
    const msg: QueuedMessage = {
      envelope: cloneData(envelope),
      recipients: initialStates(envelope),
      size: bytes.length,
    };
    this.#entries.set(envelope.id, { msg, data: bytes, leaseUntil: -Infinity });
  }

  async claim(now: number, limit: number, leaseUntil: number): Promise<QueuedMessage[]> {
    this.#check();
    const free = [...this.#entries.values()]
      .filter((e) => e.leaseUntil <= now)
      .map((e): [Entry, QueuedMessage] => [e, e.msg]);
    return pickDue(free, now, limit).map((e) => {
      e.leaseUntil = leaseUntil;
      return copy(e.msg);
    });
  }

  async lease(id: string, now: number, leaseUntil: number): Promise<QueuedMessage | null> {
    this.#check();
    const e = this.#entries.get(id);
    if (!e || e.leaseUntil > now) return null;
    e.leaseUntil = leaseUntil;
    return copy(e.msg);
  }

  async release(id: string): Promise<void> {
    const e = this.#entries.get(id);
    if (e) e.leaseUntil = -Infinity;
  }

  async readMessage(id: string): Promise<Buffer> {
    this.#check();
    const e = this.#entries.get(id);
    if (!e) throw new QueueError('QUEUE_NOT_FOUND', `Cannot read message ${id}: it is not in the queue`);
    return Buffer.from(e.data);
  }

  /** `options.durable` changes nothing here: nothing is durable. */
  async update(
    id: string,
    states: readonly RecipientState[],
    _options?: WriteOptions,
  ): Promise<QueuedMessage> {
    this.#check();
    const e = this.#entries.get(id);
    if (!e) throw new QueueError('QUEUE_NOT_FOUND', `Cannot update message ${id}: it is not in the queue`);
    e.msg = { ...e.msg, recipients: mergeStates(id, e.msg.recipients, states) };
    return copy(e.msg);
  }

  async remove(id: string, _options?: WriteOptions): Promise<boolean> {
    this.#check();
    return this.#entries.delete(id);
  }

  async get(id: string): Promise<QueuedMessage | null> {
    this.#check();
    const e = this.#entries.get(id);
    return e ? copy(e.msg) : null;
  }

  async list(): Promise<QueuedMessage[]> {
    this.#check();
    return [...this.#entries.keys()].sort().map((id) => copy(this.#entries.get(id)!.msg));
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #check(): void {
    if (this.#closed) throw new QueueError('QUEUE_CLOSED', 'The queue store is closed');
  }
}
