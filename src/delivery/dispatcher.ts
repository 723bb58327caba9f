/**
 * @module delivery/dispatcher
 * One delivery attempt for some recipients of one queued message: the callback the queue's
 * Scheduler calls. It
 *
 * 1. stops mail loops: more than `maxReceived` `Received:` header lines (RFC 5321 §6.3) → every
 *    recipient fails `554 5.4.6`;
 * 2. expands aliases of local recipients through the injected `expand` (called once per local
 *    recipient; it owns recursion and its own loop checks; targets may be remote);
 * 3. routes every target (once per domain per attempt) and groups them by `NextHop.key`, so
 *    recipients with the same next hop share one transaction (DESIGN invariant 3);
 * 4. calls the matching transport once per group, a few groups at a time;
 * 5. merges the outcomes back to one outcome per requested original index.
 *
 * Transports see a per-group envelope whose `recipients` are exactly that group's distinct targets
 * (a target reached both directly and through an alias gets one copy), and
 * `DeliveryRequest.recipients[k].index === k` indexes it (an alias target carries its original's
 * NOTIFY, and an ORCPT naming the original when none was given, RFC 3461 §4.2).
 *
 * An alias with several targets is one recipient to the queue: it is delivered when every target
 * is delivered; if any target is deferred the whole recipient is deferred (the next attempt goes
 * to every target again, so already-delivered targets may get a duplicate: we prefer a duplicate
 * to a loss); otherwise, if any target failed, it failed with that target's reply.
 *
 * `deliver` never rejects: a transport exception becomes a deferred `451 4.3.0` outcome.
 */
import type { EnvelopeRecipient, QueuedMessage, RecipientOutcome } from '../queue/types.js';
import type { DeliveryRequest, NextHop, Transport } from './types.js';

/** What the dispatcher needs from the router (router/router.ts `Router` fits). */
export interface RouteLookup {
  /** Must depend on the address's domain only: the dispatcher caches it per domain per attempt. */
  route(
    address: string,
  ): Promise<NextHop | { kind: 'error'; result: 'failed' | 'deferred'; reply: string; status: string }>;
}

export interface DispatcherOptions {
  router: RouteLookup;
  transports: { local: Transport; smtp: Transport; lmtp: Transport };
  /** Alias expansion for a local recipient; `[address]` when it is not an alias. @default identity */
  expand?: (address: string) => string[];
  /** More `Received:` lines than this is a loop. @default 50 */
  maxReceived?: number;
  /** Transactions (groups) run at the same time. @default 4 */
  concurrency?: number;
}

type Outcome = Omit<RecipientOutcome, 'index'>;

interface Slot {
  /** Index into the original envelope. */
  origin: number;
  address: string;
  rcpt: EnvelopeRecipient;
  /** The target differs from the original recipient (alias expansion). */
  expanded: boolean;
  hop?: NextHop;
  outcome?: Outcome;
}

const deferred = (text: string): Outcome => ({
  result: 'deferred',
  reply: `451 4.3.0 ${text}`,
  status: '4.3.0',
});

/** Number of `Received:` fields in the header section (up to the first empty line). */
export function countReceived(message: Buffer): number {
  let end = message.indexOf('\r\n\r\n');
  if (end < 0) end = message.indexOf('\n\n');
  const head = message.subarray(0, end < 0 ? message.length : end).toString('latin1');
  let n = 0;
  for (const line of head.split(/\r?\n/)) if (/^received[ \t]*:/i.test(line)) n++;
  return n;
}

function domainKey(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(at + 1)).toLowerCase();
}

export class Dispatcher {
  readonly #router: RouteLookup;
  readonly #transports: DispatcherOptions['transports'];
  readonly #expand: (address: string) => string[];
  readonly #maxReceived: number;
  readonly #concurrency: number;

  constructor(options: DispatcherOptions) {
    this.#router = options.router;
    this.#transports = options.transports;
    this.#expand = options.expand ?? ((a) => [a]);
    this.#maxReceived = options.maxReceived ?? 50;
    this.#concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(this.#maxReceived) || this.#maxReceived < 1) {
      throw new RangeError(
        `Cannot build a dispatcher: 'maxReceived' must be a positive integer: current value is ${this.#maxReceived}`,
      );
    }
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new RangeError(
        `Cannot build a dispatcher: 'concurrency' must be a positive integer: current value is ${this.#concurrency}`,
      );
    }
  }

  /**
   * Deliver `message` to the recipients at `indices` of `msg`; one outcome per distinct index.
   * A bound function, so it can be handed to the Scheduler as its `deliver` option as is.
   */
  readonly deliver = async (
    msg: QueuedMessage,
    message: Buffer,
    indices: number[],
  ): Promise<RecipientOutcome[]> => {
    const wanted = [...new Set(indices)];
    try {
      const hops = countReceived(message);
      if (hops > this.#maxReceived) {
        const reply = `554 5.4.6 too many hops (${hops} Received: headers)`;
        return wanted.map((index) => ({ index, result: 'failed', reply, status: '5.4.6' }));
      }
      const slots = await this.#plan(msg, wanted);
      await this.#run(msg, message, slots);
      return wanted.map((index) => ({ index, ...merge(slots.filter((s) => s.origin === index)) }));
    } catch (err) {
      // Only a bug gets here (expand/route/transport failures are caught where they happen).
      const text = `delivery error: ${err instanceof Error ? err.message : String(err)}`;
      return wanted.map((index) => ({ index, ...deferred(text) }));
    }
  };

  /** Expand and route every wanted recipient into slots (one per target). */
  async #plan(msg: QueuedMessage, wanted: number[]): Promise<Slot[]> {
    const cache = new Map<
      string,
      Promise<NextHop | { kind: 'error'; result: 'failed' | 'deferred'; reply: string; status: string }>
    >();
    const route = (address: string) => {
      const key = domainKey(address);
      let p = cache.get(key);
      if (!p) {
        p = this.#router.route(address).catch((err: unknown) => ({
          kind: 'error' as const,
          result: 'deferred' as const,
          reply: `451 4.4.3 routing failed: ${err instanceof Error ? err.message : String(err)}`,
          status: '4.4.3',
        }));
        cache.set(key, p);
      }
      return p;
    };
    const slots: Slot[] = [];
    const assign = async (slot: Slot): Promise<NextHop | undefined> => {
      const hop = await route(slot.address);
      if (hop.kind === 'error') {
        slot.outcome = { result: hop.result, reply: hop.reply, status: hop.status };
        return undefined;
      }
      slot.hop = hop;
      return hop;
    };
    await Promise.all(
      wanted.map(async (origin) => {
        const rcpt = msg.envelope.recipients[origin];
        if (!rcpt) {
          slots.push({
            origin,
            address: '',
            rcpt: { address: '' },
            expanded: false,
            outcome: deferred(`no recipient #${origin}`),
          });
          return;
        }
        const first: Slot = { origin, address: rcpt.address, rcpt, expanded: false };
        const hop = await assign(first);
        if (hop?.kind !== 'local') {
          slots.push(first);
          return;
        }
        let targets: string[];
        try {
          targets = [...new Set(this.#expand(rcpt.address))];
        } catch (err) {
          first.outcome = deferred(
            `alias expansion failed: ${err instanceof Error ? err.message : String(err)}`,
          );
          slots.push(first);
          return;
        }
        if (targets.length === 1 && targets[0] === rcpt.address) {
          slots.push(first);
          return;
        }
        if (targets.length === 0) {
          first.outcome = {
            result: 'failed',
            reply: `550 5.1.1 <${rcpt.address}> expands to no recipients`,
            status: '5.1.1',
          };
          slots.push(first);
          return;
        }
        await Promise.all(
          targets.map(async (address) => {
            const t: EnvelopeRecipient = { address, orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}` };
            if (rcpt.notify) t.notify = rcpt.notify;
            const slot: Slot = { origin, address, rcpt: t, expanded: true };
            slots.push(slot);
            await assign(slot);
          }),
        );
      }),
    );
    // Keep a stable order (by original index, then target) whatever order the lookups finished in.
    return slots.sort(
      (a, b) => a.origin - b.origin || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0),
    );
  }

  /** Group routed slots by next hop and run one transaction per group, `concurrency` at a time. */
  async #run(msg: QueuedMessage, message: Buffer, slots: Slot[]): Promise<void> {
    const groups = new Map<string, { hop: NextHop; slots: Slot[] }>();
    for (const s of slots) {
      if (s.outcome || !s.hop) continue;
      const key = s.hop.kind === 'local' ? 'local' : s.hop.key;
      const g = groups.get(key) ?? { hop: s.hop, slots: [] };
      g.slots.push(s);
      groups.set(key, g);
    }
    const queue = [...groups.values()];
    const worker = async (): Promise<void> => {
      for (let g = queue.shift(); g; g = queue.shift()) await this.#transaction(msg, message, g.hop, g.slots);
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
  }

  async #transaction(msg: QueuedMessage, message: Buffer, hop: NextHop, group: Slot[]): Promise<void> {
    // The same target reached twice (directly and through an alias) gets one copy, one outcome.
    const unique: Slot[] = [];
    const seen = new Map<string, number>();
    const at = group.map((s) => {
      let i = seen.get(s.address);
      if (i === undefined) {
        i = unique.push(s) - 1;
        seen.set(s.address, i);
      }
      return i;
    });
    const req: DeliveryRequest = {
      envelope: { ...msg.envelope, recipients: unique.map((s) => s.rcpt) },
      recipients: unique.map((s, index) => ({ index, address: s.address })),
      message,
    };
    let outcomes: RecipientOutcome[];
    try {
      outcomes = await this.#transports[hop.kind].deliver(hop, req);
    } catch (err) {
      const text = `${hop.kind} transport error: ${err instanceof Error ? err.message : String(err)}`;
      for (const s of group) s.outcome = deferred(text);
      return;
    }
    group.forEach((s, k) => {
      const o = Array.isArray(outcomes) ? outcomes.find((x) => x.index === at[k]) : undefined;
      if (!o) {
        s.outcome = deferred(`${hop.kind} transport gave no outcome for <${s.address}>`);
        return;
      }
      const out: Outcome = { result: o.result, reply: o.reply, status: o.status };
      if (o.remoteMta !== undefined) out.remoteMta = o.remoteMta;
      if (s.expanded && o.result !== 'delivered') out.reply = `${o.reply} (alias target <${s.address}>)`;
      s.outcome = out;
    });
  }
}

/** One outcome for an original recipient from its targets' outcomes: deferred > failed > delivered. */
function merge(slots: Slot[]): Outcome {
  const outs = slots.map((s) => s.outcome ?? deferred('not attempted'));
  return (
    outs.find((o) => o.result === 'deferred') ??
    outs.find((o) => o.result === 'failed') ??
    outs[0] ??
    deferred('not attempted')
  );
}
