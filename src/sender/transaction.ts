/**
 * @module sender/transaction
 * One mail transaction on the client side, pure: [RSET] MAIL, RCPT per recipient, DATA, then
 * the final reply (one per accepted recipient for LMTP, RFC 2033 §4.2). Owned by `ClientSession`,
 * which feeds it the replies that belong to it.
 *
 * PIPELINING (RFC 2920): the command list goes out in one write, and separate send and receive
 * cursors match replies to commands in order (Postfix `smtp_proto.c`); the only wait is for the
 * 354. Without PIPELINING the same list is sent one command per reply, and DATA is skipped when
 * no recipient was accepted.
 *
 * Per recipient: 2xx accepted; 452 (enhanced 4.5.3, or none) after at least one acceptance means
 * "too many recipients" (RFC 5321 §4.5.3.1.10) → `retry` in a following transaction; any other
 * reply → a Failure for classify.ts. A refused RSET or MAIL fails every recipient with that reply.
 * A 421 ends the transaction and the session. A 354 that cannot be used (MAIL refused, nobody
 * accepted) is never answered with data: the connection is closed, so the peer drops it.
 */
import type { Reply } from '../smtp/reply.js';
import type { Failure, Stage } from './failure.js';
import { mailLine, rcptLine, type Extensions, type TransactionSpec } from './extensions.js';

export type RcptResult =
  | { kind: 'delivered'; reply: Reply }
  | { kind: 'failed'; failure: Failure }
  /** 452 "too many recipients": not attempted; try again in a following transaction. */
  | { kind: 'retry'; reply: Reply };

export type TxStep =
  | { kind: 'wait' }
  | { kind: 'write'; data: string }
  /** Send the message now (the 354 came). */
  | { kind: 'body' }
  /** One result per recipient of the spec, in order; `close`: the connection must not be reused. */
  | { kind: 'end'; results: RcptResult[]; close: boolean };

interface Cmd {
  stage: Stage;
  line: string;
  rcpt?: number;
}

export interface TransactionOptions {
  lmtp: boolean;
  pipelining: boolean;
  /** Start with RSET: a later transaction on the connection, also a liveness probe. */
  rsetFirst: boolean;
}

export class Transaction {
  private readonly cmds: Cmd[] = [];
  private sendIdx = 0;
  private recvIdx = 0;
  private readonly results: (RcptResult | undefined)[];
  private readonly accepted: number[] = [];
  /** The first failure that ends the transaction for every recipient not yet decided. */
  private aborted: Failure | null = null;
  private inDataEnd = false;
  private dataEndSeen = 0;

  constructor(
    spec: TransactionSpec,
    ext: Extensions,
    private readonly opts: TransactionOptions,
  ) {
    if (opts.rsetFirst) this.cmds.push({ stage: 'rset', line: 'RSET' });
    this.cmds.push({ stage: 'mail', line: mailLine(spec, ext) });
    spec.recipients.forEach((r, i) => this.cmds.push({ stage: 'rcpt', line: rcptLine(r, ext), rcpt: i }));
    this.cmds.push({ stage: 'data', line: 'DATA' });
    this.results = spec.recipients.map(() => undefined);
  }

  /** The first write: the whole list when pipelining, else the first command. */
  start(): string {
    const n = this.opts.pipelining ? this.cmds.length : 1;
    this.sendIdx = n;
    return this.cmds
      .slice(0, n)
      .map((c) => c.line + '\r\n')
      .join('');
  }

  /** The reply we wait for. */
  get waiting(): Stage {
    return this.inDataEnd ? 'data-end' : (this.cmds[this.recvIdx]?.stage ?? 'data-end');
  }

  /** The connection broke: everyone not decided gets `f` (or the earlier abort). */
  broken(f: Failure): TxStep {
    return this.end(this.aborted ?? f, true);
  }

  onReply(r: Reply): TxStep {
    if (this.inDataEnd) return this.onDataEnd(r);
    const cmd = this.cmds[this.recvIdx];
    if (!cmd) return this.end({ kind: 'lost', stage: 'data', error: 'unexpected reply' }, true);
    this.recvIdx++;
    if (r.code === 421) return this.end(this.aborted ?? { kind: 'reply', stage: cmd.stage, reply: r }, true);
    const ok = r.code >= 200 && r.code < 300;
    switch (cmd.stage) {
      case 'rset':
      case 'mail':
        if (!ok && !this.aborted) this.aborted = { kind: 'reply', stage: cmd.stage, reply: r };
        break;
      case 'rcpt':
        if (!this.aborted) this.onRcpt(cmd.rcpt as number, r, ok);
        break;
      case 'data':
        if (r.code === 354) {
          if (this.aborted || this.accepted.length === 0) return this.end(this.aborted, true);
          this.inDataEnd = true;
          return { kind: 'body' };
        }
        if (!this.aborted) {
          const f: Failure = { kind: 'reply', stage: 'data', reply: r };
          for (const i of this.accepted) this.results[i] = { kind: 'failed', failure: f };
        }
        return this.end(this.aborted, false);
      default:
        break;
    }
    if (this.recvIdx < this.sendIdx) return { kind: 'wait' }; // pipelined replies still to come
    if (this.aborted) return this.end(this.aborted, false);
    const next = this.cmds[this.sendIdx];
    if (!next || (next.stage === 'data' && this.accepted.length === 0)) return this.end(null, false);
    this.sendIdx++;
    return { kind: 'write', data: next.line + '\r\n' };
  }

  private onRcpt(i: number, r: Reply, ok: boolean): void {
    if (ok) this.accepted.push(i);
    else if (
      r.code === 452 &&
      (r.enhanced === undefined || r.enhanced === '4.5.3') &&
      this.accepted.length > 0
    ) {
      this.results[i] = { kind: 'retry', reply: r };
    } else this.results[i] = { kind: 'failed', failure: { kind: 'reply', stage: 'rcpt', reply: r } };
  }

  private onDataEnd(r: Reply): TxStep {
    const ok = r.code >= 200 && r.code < 300;
    const result: RcptResult = ok
      ? { kind: 'delivered', reply: r }
      : { kind: 'failed', failure: { kind: 'reply', stage: 'data-end', reply: r } };
    if (!this.opts.lmtp) {
      for (const i of this.accepted) this.results[i] = result;
      return this.end(null, r.code === 421);
    }
    const i = this.accepted[this.dataEndSeen++];
    if (i !== undefined) this.results[i] = result;
    if (this.dataEndSeen < this.accepted.length) return { kind: 'wait' };
    return this.end(null, r.code === 421);
  }

  private end(failure: Failure | null, close: boolean): TxStep {
    const fallback: Failure = failure ?? {
      kind: 'lost',
      stage: 'data',
      error: 'transaction ended without a reply',
    };
    // Undecided (accepted, no final reply) recipients take the transaction's failure; so do
    // "retry" ones when the connection is going away, as there is no following transaction.
    const results = this.results.map((r): RcptResult => {
      if (r && (r.kind !== 'retry' || !close)) return r;
      return { kind: 'failed', failure: fallback };
    });
    return { kind: 'end', results, close };
  }
}
