/**
 * @module queue/scheduler
 * Decides when queued messages are attempted; the store (queue/store.ts) only keeps them.
 *
 * A pass claims (leases) up to `concurrency - inFlight` due messages and runs each: read the
 * data, `deliver` the due pending recipients, record every outcome durably (deferred: next try per
 * queue/backoff.ts; deferred past the queue lifetime: failed with 4.4.7), call `onFinal` for
 * recipients that just became delivered or failed (and for "delayed" warnings), mark their DSN
 * handled, and remove the message once no recipient needs work (DESIGN invariant 2).
 *
 * Failure handling, so nothing is lost and nothing spins:
 * - `deliver` throwing counts as "deferred, 4.3.0" for every recipient it was given.
 * - `onFinal` throwing leaves the failed recipients' DSN unhandled (`dsnSent` false); they are
 *   offered to `onFinal` again after a backoff delay, so a DSN is produced at least once.
 * - A store error (e.g. ENOSPC on `update`) leaves the message as it was, leased for
 *   `errorRetryMs`; it is attempted again later (at-least-once delivery, never lost).
 * - A crash mid-delivery loses only the in-memory lease: on restart the message is due again.
 */

import { backoffOptions, isExpired, nextAttemptDelay, type BackoffOptions } from './backoff.js';
import { isDone, mergeStates, needsWork, QueueError, type QueueStore } from './store.js';
import type { QueuedMessage, RecipientOutcome, RecipientState } from './types.js';

export interface Clock {
  now(): number;
}

/** Attempts `indices` of `msg`; returns one outcome per index (a missing one counts as deferred). */
export type DeliverFn = (
  msg: QueuedMessage,
  message: Buffer,
  indices: number[],
) => Promise<RecipientOutcome[]>;

/**
 * Called after outcomes are recorded when a report may come of them (a failure, a delay warning,
 * a delivery with NOTIFY=SUCCESS), so a crash after the report does not repeat it; plain
 * deliveries are recorded after the hook, with the removal (one record instead of two).
 * `newlyFailed`: failed recipients whose DSN is not yet handled; `newlyDelivered`: delivered in
 * this attempt; `delayed`: still deferred past `delayWarningMs`, not yet warned about. Resolving
 * marks the DSNs handled; throwing retries later.
 */
export type FinalHook = (
  msg: QueuedMessage,
  newlyFailed: number[],
  newlyDelivered: number[],
  delayed: number[],
  message: Buffer,
) => Promise<void> | void;

export interface SchedulerOptions {
  store: QueueStore;
  deliver: DeliverFn;
  /** DSN generation (queue/bounce.ts). Without one, failed recipients count as handled at once. */
  onFinal?: FinalHook;
  /** @default Date */
  clock?: Clock;
  /** Uniform in [0, 1), for backoff jitter. @default Math.random */
  random?: () => number;
  /** Messages attempted at once. @default 20 */
  concurrency?: number;
  backoff?: Partial<BackoffOptions>;
  /**
   * Warn the sender (a "delayed" DSN) once a recipient is still deferred this long after receipt;
   * 0: never. @default 14400000 (4h)
   */
  delayWarningMs?: number;
  /** How long a claimed message stays leased; past it another claimer may take it. @default 1800000 (30m) */
  leaseMs?: number;
  /** After a store error, leave the message alone this long. @default 60000 */
  errorRetryMs?: number;
  /** How often `start()` looks for messages that became due. @default 1000 */
  pollMs?: number;
  /** How long `stop()` waits for deliveries in flight. @default 10000 */
  stopTimeoutMs?: number;
  /** Told about errors that did not stop the scheduler (store, deliver, onFinal). */
  onError?: (err: unknown, id: string | null) => void;
}

const EXPIRED_STATUS = '4.4.7';

/**
 * What an attempt records needs no fsync of its own: losing it in a system crash means the
 * recipients are tried again (at-least-once), never that one is lost. A recipient is marked
 * delivered only after `deliver` returned, i.e. after the destination made it durable.
 */
const LAZY = { durable: false } as const;

export class Scheduler {
  readonly #store: QueueStore;
  readonly #deliver: DeliverFn;
  readonly #onFinal: FinalHook | undefined;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #concurrency: number;
  readonly #backoff: BackoffOptions;
  readonly #delayWarningMs: number;
  readonly #leaseMs: number;
  readonly #errorRetryMs: number;
  readonly #pollMs: number;
  readonly #stopTimeoutMs: number;
  readonly #onError: (err: unknown, id: string | null) => void;
  readonly #inFlight = new Map<string, Promise<void>>();
  #passing: Promise<void> | null = null;
  #again = false;
  #maybeMore = false;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  /** Messages claimed so far; lets runOnce see when a pass found nothing. */
  #claimed = 0;

  constructor(options: SchedulerOptions) {
    this.#store = options.store;
    this.#deliver = options.deliver;
    this.#onFinal = options.onFinal;
    this.#clock = options.clock ?? Date;
    this.#random = options.random ?? Math.random;
    this.#concurrency = options.concurrency ?? 20;
    this.#backoff = backoffOptions(options.backoff);
    this.#delayWarningMs = options.delayWarningMs ?? 4 * 3600_000;
    this.#leaseMs = options.leaseMs ?? 30 * 60_000;
    this.#errorRetryMs = options.errorRetryMs ?? 60_000;
    this.#pollMs = options.pollMs ?? 1000;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.#onError = options.onError ?? (() => undefined);
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new RangeError(`Cannot use concurrency ${this.#concurrency}: it must be an integer >= 1`);
    }
    for (const [name, v] of Object.entries({
      leaseMs: this.#leaseMs,
      pollMs: this.#pollMs,
      delayWarningMs: this.#delayWarningMs,
    })) {
      if (!Number.isFinite(v) || v < 0)
        throw new RangeError(`Cannot use ${name} ${v}: it must be a number of ms >= 0`);
    }
  }

  /** Messages being attempted right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts polling for due messages (and runs a pass at once). */
  start(): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setInterval(() => this.wake(), this.#pollMs);
    this.#timer.unref();
    this.wake();
  }

  /** A message was just accepted: attempt it now rather than at the next poll. */
  enqueued(_id: string): void {
    // Not at once: this runs inside the receiver's commit, and a delivery set up right here (a
    // claim, routing, the first write to the next hop) would go before the client's 250. After
    // the pending I/O, new messages are also claimed together.
    if (this.#wakeSoon) return;
    this.#wakeSoon = setImmediate(() => {
      this.#wakeSoon = null;
      this.wake();
    });
  }

  #wakeSoon: NodeJS.Immediate | null = null;

  /** Runs a pass soon (coalesces with one already running). */
  wake(): void {
    if (!this.#stopped) void this.#pass();
  }

  /** Runs passes until nothing more is due now, and waits for those deliveries (tests, `queue flush`). */
  async runOnce(): Promise<void> {
    for (let i = 0; i < 10_000 && !this.#stopped; i++) {
      const before = this.#claimed;
      await this.#pass();
      await Promise.allSettled([...this.#inFlight.values()]);
      if (this.#claimed === before) return;
    }
  }

  /** Makes every waiting recipient due now (operator `queue flush`); returns how many messages changed. */
  async flush(): Promise<number> {
    const now = this.#clock.now();
    let changed = 0;
    for (const m of await this.#store.list()) {
      const id = m.envelope.id;
      if (this.#inFlight.has(id)) continue;
      const leased = await this.#store.lease(id, now, now + this.#leaseMs);
      if (!leased) continue;
      try {
        const states = leased.recipients
          .filter((r) => needsWork(r) && r.nextAttemptAt > now)
          .map((r) => ({ ...r, nextAttemptAt: now }));
        if (states.length > 0) {
          await this.#store.update(id, states);
          changed++;
        }
      } finally {
        await this.#store.release(id);
      }
    }
    this.wake();
    return changed;
  }

  /** Stops claiming; waits (at most `stopTimeoutMs`) for deliveries in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#wakeSoon) clearImmediate(this.#wakeSoon);
    this.#wakeSoon = null;
    await this.#passing;
    let timeout: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timeout = setTimeout(resolve, this.#stopTimeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight.values()]), waited]);
    clearTimeout(timeout);
  }

  #pass(): Promise<void> {
    this.#again = true;
    if (!this.#passing) {
      this.#passing = this.#passLoop().finally(() => {
        this.#passing = null;
        // A wake that came after the loop's last look must not be lost.
        if (this.#again && !this.#stopped) void this.#pass();
      });
    }
    return this.#passing;
  }

  async #passLoop(): Promise<void> {
    while (this.#again && !this.#stopped) {
      this.#again = false;
      const free = this.#concurrency - this.#inFlight.size;
      if (free <= 0) {
        // Every slot is busy: the next one to finish looks again.
        this.#maybeMore = true;
        return;
      }
      const now = this.#clock.now();
      let msgs: QueuedMessage[];
      try {
        msgs = await this.#store.claim(now, free, now + this.#leaseMs);
      } catch (err) {
        this.#onError(err, null);
        return;
      }
      this.#maybeMore = msgs.length === free;
      for (const msg of msgs) {
        const id = msg.envelope.id;
        // Our own lease ran out while the attempt still runs: let that attempt finish.
        if (this.#inFlight.has(id)) continue;
        this.#claimed++;
        const run = this.#process(msg).finally(() => {
          this.#inFlight.delete(id);
          if (this.#maybeMore) this.wake();
        });
        this.#inFlight.set(id, run);
      }
    }
  }

  async #process(msg: QueuedMessage): Promise<void> {
    const id = msg.envelope.id;
    try {
      await this.#attempt(msg);
      await this.#store.release(id);
    } catch (err) {
      // Deleted by the operator while it was being attempted: nothing left to do.
      if (err instanceof QueueError && err.code === 'QUEUE_NOT_FOUND') return;
      this.#onError(err, id);
      // Keep it leased a while so a failing store or message does not spin.
      try {
        await this.#store.release(id);
        const now = this.#clock.now();
        await this.#store.lease(id, now, now + this.#errorRetryMs);
      } catch (e) {
        this.#onError(e, id);
      }
    }
  }

  async #attempt(msg: QueuedMessage): Promise<void> {
    const id = msg.envelope.id;
    const start = this.#clock.now();
    const due = msg.recipients.filter((r) => r.status === 'pending' && r.nextAttemptAt <= start);
    let message: Buffer | null = null;
    const newlyFailed: number[] = [];
    const newlyDelivered: number[] = [];
    const delayed: number[] = [];
    let current = msg;
    /** States of this attempt not yet written to the store. */
    let unrecorded: RecipientState[] = [];
    if (due.length > 0) {
      message = await this.#store.readMessage(id);
      let outcomes: RecipientOutcome[] = [];
      try {
        outcomes = await this.#deliver(
          msg,
          message,
          due.map((r) => r.index),
        );
      } catch (err) {
        this.#onError(err, id);
      }
      const byIndex = new Map(outcomes.map((o) => [o.index, o]));
      const now = this.#clock.now();
      const states = due.map((r) => {
        const o = byIndex.get(r.index) ?? {
          index: r.index,
          result: 'deferred' as const,
          reply: '451 4.3.0 delivery attempt failed locally',
          status: '4.3.0',
        };
        const s = this.#nextState(msg, r, o, now);
        if (s.status === 'delivered') newlyDelivered.push(r.index);
        else if (s.status === 'failed') newlyFailed.push(r.index);
        else if (
          this.#delayWarningMs > 0 &&
          now - msg.envelope.receivedAt >= this.#delayWarningMs &&
          !r.delayNotified
        ) {
          delayed.push(r.index);
        }
        return s;
      });
      if (newlyFailed.length + delayed.length > 0 || this.#wantsSuccessReport(msg, newlyDelivered)) {
        current = await this.#store.update(id, states, LAZY);
      } else {
        // The common case (delivered, or deferred without a warning): one record, after the hook.
        current = { ...msg, recipients: mergeStates(id, msg.recipients, states) };
        unrecorded = states;
      }
    }
    // Failures whose DSN an earlier run could not hand over (crash, hook error) are due again.
    for (const r of current.recipients) {
      if (r.status === 'failed' && !r.dsnSent && r.nextAttemptAt <= start && !newlyFailed.includes(r.index)) {
        newlyFailed.push(r.index);
      }
    }
    let hookOk = true;
    if (this.#onFinal && newlyFailed.length + newlyDelivered.length + delayed.length > 0) {
      message ??= await this.#store.readMessage(id);
      try {
        await this.#onFinal(current, newlyFailed, newlyDelivered, delayed, message);
      } catch (err) {
        hookOk = false;
        this.#onError(err, id);
      }
    }
    const marks: RecipientState[] = [];
    const now = this.#clock.now();
    for (const i of newlyFailed) {
      const r = current.recipients[i]!;
      const retry = now + nextAttemptDelay(Math.max(1, r.attempts), this.#backoff, this.#random);
      marks.push(hookOk ? { ...r, dsnSent: true } : { ...r, nextAttemptAt: retry });
    }
    if (hookOk) for (const i of delayed) marks.push({ ...current.recipients[i]!, delayNotified: true });
    const after = {
      ...current,
      recipients: current.recipients.map((r) => marks.find((m) => m.index === r.index) ?? r),
    };
    if (isDone(after)) await this.#store.remove(id, LAZY);
    else if (marks.length + unrecorded.length > 0) {
      const changed = new Map([...unrecorded, ...marks].map((r) => [r.index, r]));
      await this.#store.update(id, [...changed.values()], LAZY);
    }
  }

  #wantsSuccessReport(msg: QueuedMessage, delivered: readonly number[]): boolean {
    return delivered.some((i) => msg.envelope.recipients[i]?.notify?.includes('SUCCESS') === true);
  }

  #nextState(msg: QueuedMessage, r: RecipientState, o: RecipientOutcome, now: number): RecipientState {
    // Without `delete`: it turns the object into a slow dictionary for every later use.
    const { remoteMta: _earlier, ...rest } = r;
    const s: RecipientState = {
      ...rest,
      attempts: r.attempts + 1,
      lastReply: o.reply,
      lastStatus: o.status,
      ...(o.remoteMta !== undefined ? { remoteMta: o.remoteMta } : {}),
    };
    if (o.result === 'delivered') return { ...s, status: 'delivered' };
    if (o.result === 'failed') return { ...s, status: 'failed', nextAttemptAt: now, dsnSent: false };
    const receivedAt = msg.envelope.receivedAt;
    if (isExpired(receivedAt, now, this.#backoff.maxAgeMs)) {
      const days = Math.round((this.#backoff.maxAgeMs / 86_400_000) * 10) / 10;
      return {
        ...s,
        status: 'failed',
        nextAttemptAt: now,
        dsnSent: false,
        lastStatus: EXPIRED_STATUS,
        lastReply: `message expired: undeliverable for ${days} days in the queue; last error: ${o.reply}`,
      };
    }
    // The last try falls at the end of the lifetime rather than up to an interval past it.
    const next = Math.min(
      now + nextAttemptDelay(s.attempts, this.#backoff, this.#random),
      receivedAt + this.#backoff.maxAgeMs,
    );
    return { ...s, status: 'pending', nextAttemptAt: Math.max(next, now + 1) };
  }
}
