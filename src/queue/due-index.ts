/**
 * @module queue/due-index
 * A min-heap of "when does this entry next need a look", so claiming due messages costs
 * O(k log n) instead of a scan of the whole queue on every poll and every finished delivery.
 *
 * Each entry has at most one live heap item: `schedule` stamps the entry with a fresh sequence
 * number, and older items of that entry are recognised as stale when they surface and dropped
 * (lazy deletion). Stale items are bounded by rebuilding the heap when it grows past twice the
 * number of entries.
 */

export interface Indexed {
  /** Sequence number of this entry's live heap item (0: none). */
  dueSeq: number;
}

interface Item<E> {
  at: number;
  seq: number;
  entry: E;
}

export class DueIndex<E extends Indexed> {
  #heap: Item<E>[] = [];
  #seq = 0;
  /** Items scheduled while `popDue` runs wait here, so a visit can never see its own re-push. */
  #held: Item<E>[] | null = null;

  get size(): number {
    return this.#heap.length;
  }

  /** From now on `entry` needs a look at `at` (Infinity: never, until scheduled again). */
  schedule(entry: E, at: number): void {
    const seq = ++this.#seq;
    entry.dueSeq = seq;
    if (at === Infinity) return;
    const item = { at, seq, entry };
    if (this.#held) this.#held.push(item);
    else this.#push(item);
  }

  /** Forget `entry` (its items become stale). */
  unschedule(entry: E): void {
    entry.dueSeq = 0;
  }

  /** Visits entries scheduled at or before `now`, earliest first, until `visit` returns false. */
  popDue(now: number, visit: (entry: E) => boolean): void {
    this.#held = [];
    try {
      while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
        const item = this.#pop();
        if (item.seq !== item.entry.dueSeq) continue;
        item.entry.dueSeq = 0;
        if (!visit(item.entry)) break;
      }
    } finally {
      const held = this.#held;
      this.#held = null;
      for (const item of held) this.#push(item);
    }
  }

  /** Rebuilds from the live entries when stale items pile up; `at` gives each entry's time. */
  compact(live: number, entries: () => Iterable<E>, at: (entry: E) => number): void {
    if (this.#heap.length <= 2 * live + 1024) return;
    this.#heap = [];
    for (const e of entries()) this.schedule(e, at(e));
  }

  #less(a: Item<E>, b: Item<E>): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(item: Item<E>): void {
    const h = this.#heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Item<E> {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
