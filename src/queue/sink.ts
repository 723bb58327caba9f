/**
 * @module queue/sink
 * The MessageSink the receiver-SMTP writes accepted messages into (contract in queue/types.ts):
 * chunks are kept as given (no concatenation; the store writes them with one writev), and
 * `commit` resolves only once `store.put` has made the message durable, so the receiver's 250
 * follows durability (DESIGN invariant 1). Then `onCommitted` tells the scheduler to try it now.
 * The envelope given to `begin` is read at `commit`, so the receiver may still set `receivedAt`.
 */

import { QueueIdGenerator } from './id.js';
import type { QueueStore } from './store.js';
import type { Envelope, MessageSink, MessageWriter } from './types.js';

export interface QueueSinkOptions {
  store: QueueStore;
  /** @default a QueueIdGenerator on the system clock */
  ids?: { next(): string };
  /** Called after a message is durable (typically `scheduler.enqueued`); its errors are ignored. */
  onCommitted?: (id: string) => void;
}

class QueueWriter implements MessageWriter {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';

  constructor(
    private readonly envelope: Envelope,
    private readonly store: QueueStore,
    private readonly onCommitted: ((id: string) => void) | undefined,
  ) {}

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  write(chunk: Buffer): void {
    if (this.#state === 'aborted') return;
    if (this.#state !== 'open')
      throw new Error(`Cannot write to message ${this.envelope.id}: it is already committed`);
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  async commit(): Promise<void> {
    if (this.#state !== 'open')
      throw new Error(`Cannot commit message ${this.envelope.id}: it is ${this.#state}`);
    this.#state = 'committing';
    const chunks = this.#chunks;
    try {
      await this.store.put(this.envelope, chunks);
    } catch (err) {
      this.#state = 'aborted';
      this.#chunks = [];
      throw err;
    }
    this.#state = 'committed';
    this.#chunks = [];
    try {
      this.onCommitted?.(this.envelope.id);
    } catch {
      // The message is durable and will be found by the next poll; a failing notifier changes nothing.
    }
  }

  abort(): void {
    if (this.#state === 'committed' || this.#state === 'committing') return;
    this.#state = 'aborted';
    this.#chunks = [];
  }
}

export class QueueSink implements MessageSink {
  readonly #store: QueueStore;
  readonly #ids: { next(): string };
  readonly #onCommitted: ((id: string) => void) | undefined;

  constructor(options: QueueSinkOptions) {
    this.#store = options.store;
    this.#ids = options.ids ?? new QueueIdGenerator();
    this.#onCommitted = options.onCommitted;
  }

  newId(): string {
    return this.#ids.next();
  }

  begin(envelope: Envelope): MessageWriter & { readonly bytes: number } {
    return new QueueWriter(envelope, this.#store, this.#onCommitted);
  }
}
