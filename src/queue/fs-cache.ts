/**
 * @module queue/fs-cache
 * The bytes of messages just stored by the file-system queue (queue/fs-store.ts), kept in memory
 * for the delivery attempt that usually follows at once, so that attempt reads nothing back from
 * the log. Bounded in bytes (oldest dropped first); an entry is handed out once (`take`) and then
 * forgotten: a later attempt reads the log. Holds copies, never the caller's buffers.
 */

export class RecentMessages {
  readonly #entries = new Map<string, Buffer>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError(`Cannot use a cache of ${maxBytes} bytes`);
  }

  /** Keeps a copy of `data` for `id` (nothing if it alone is over the bound). */
  add(id: string, data: readonly Buffer[], bytes: number): void {
    if (bytes > this.maxBytes || bytes === 0) return;
    this.drop(id);
    this.#entries.set(id, Buffer.concat(data as Buffer[], bytes));
    this.#bytes += bytes;
    for (const [oldest, buf] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= buf.length;
    }
  }

  /** The kept bytes of `id`, now owned by the caller; undefined if not kept. */
  take(id: string): Buffer | undefined {
    const buf = this.#entries.get(id);
    if (buf) this.drop(id);
    return buf;
  }

  /** The kept bytes of `id` without handing them out (the caller must not change them). */
  peek(id: string): Buffer | undefined {
    return this.#entries.get(id);
  }

  drop(id: string): void {
    const buf = this.#entries.get(id);
    if (!buf) return;
    this.#entries.delete(id);
    this.#bytes -= buf.length;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
