/**
 * @module sender/session
 * The sender-SMTP (and LMTP client) as a pure state machine: no sockets, no timers. Feed it the
 * peer's replies and a few events; it answers with actions (bytes to write, "upgrade to TLS now",
 * "stream the body now", "the transaction is done"). The socket adapter is `client.ts`.
 *
 * Dialogue (RFC 5321 §3, §4.1): greeting 220 → EHLO (HELO when EHLO gets 500/501/502/504;
 * LHLO for LMTP, RFC 2033) → STARTTLS per policy (RFC 3207), then EHLO again → AUTH PLAIN or LOGIN
 * when credentials are given (RFC 4954; only over TLS unless `authWithoutTls`) → ready. Then any
 * number of transactions: [RSET] MAIL, RCPT per recipient, DATA, body, final reply (one per
 * accepted recipient for LMTP, RFC 2033 §4.2). QUIT at the end.
 *
 * PIPELINING (RFC 2920): when offered, [RSET+]MAIL+RCPT…+DATA leave in one write. Separate send
 * and receive cursors over the command list keep replies matched to commands in order, as Postfix
 * does; the only waits are after DATA (for 354) and after QUIT. Without PIPELINING the same list is
 * sent one command per reply, and DATA is skipped when no recipient was accepted.
 *
 * Per recipient: 2xx accepted; 452 (enhanced 4.5.3 or none) after at least one acceptance means
 * "too many recipients" (§4.5.3.1.10) → `retry` in a following transaction; other 4xx/5xx → a
 * Failure for classify.ts. A 421 anywhere ends the session. Never writes a command after a 354 it
 * did not want: it closes the connection instead, so the peer discards the half transaction.
 */
import type { Reply } from '../smtp/reply.js';
import type { TlsPolicy } from '../delivery/types.js';
import { reply as makeReply } from '../smtp/reply.js';
import type { Failure, Stage } from './failure.js';
import {
  NO_EXTENSIONS,
  parseEhlo,
  mailLine,
  rcptLine,
  type Extensions,
  type TransactionSpec,
} from './extensions.js';

export interface SessionOptions {
  /** Our name in EHLO/HELO/LHLO. */
  heloName: string;
  /** Speak LMTP (LHLO; one final reply per accepted recipient). Default false. */
  lmtp?: boolean;
  /** STARTTLS policy. Default 'opportunistic' ('none' for LMTP unless given). */
  tls?: TlsPolicy;
  /** The connection is already TLS (implicit TLS, or a reconnect after STARTTLS). */
  tlsActive?: boolean;
  auth?: { user: string; pass: string };
  /** Allow AUTH over a plain-text connection. Default false. */
  authWithoutTls?: boolean;
  /** Use PIPELINING when offered. Default true. */
  pipelining?: boolean;
}

export type RcptResult =
  | { kind: 'delivered'; reply: Reply }
  | { kind: 'failed'; failure: Failure }
  /** 452 "too many recipients": not attempted; try again in a following transaction. */
  | { kind: 'retry'; reply: Reply };

export type Action =
  | { type: 'write'; data: string }
  /** The peer said 220 to STARTTLS: upgrade the socket, then call onTlsUp() or onTlsFailed(). */
  | { type: 'starttls' }
  /** The peer said 354: write the dot-encoded message (CRLF.CRLF terminated). */
  | { type: 'body' }
  /** The session is open and idle: begin() may be called. */
  | { type: 'ready' }
  /** A transaction ended; one result per recipient of the spec, in order. */
  | { type: 'done'; results: RcptResult[] }
  /** The session could not be opened (or broke while idle); nothing more will happen. */
  | { type: 'failed'; failure: Failure }
  /** Close the socket now (after QUIT's reply, after a failure, or to abandon a data phase). */
  | { type: 'close' };

type State =
  'greeting' | 'ehlo' | 'helo' | 'starttls' | 'tls-handshake' | 'auth' | 'ready' | 'tx' | 'quit' | 'closed';

interface Cmd {
  stage: Stage;
  line: string;
  rcpt?: number;
}

interface Tx {
  spec: TransactionSpec;
  cmds: Cmd[];
  sendIdx: number;
  recvIdx: number;
  pipelined: boolean;
  results: (RcptResult | undefined)[];
  accepted: number[];
  /** First failure that ends the transaction for every recipient not yet decided. */
  aborted: Failure | null;
  inDataEnd: boolean;
  dataEndSeen: number;
}

const HELO_FALLBACK = new Set([500, 501, 502, 504]);

export class ClientSession {
  private state: State = 'greeting';
  private ext: Extensions = NO_EXTENSIONS;
  private tlsUp: boolean;
  private tx: Tx | null = null;
  private txCount = 0;
  private authMech: 'PLAIN' | 'LOGIN' | null = null;
  private authStep = 0;
  private readonly lmtp: boolean;
  private readonly policy: TlsPolicy;

  constructor(private readonly opts: SessionOptions) {
    if (typeof opts.heloName !== 'string' || opts.heloName.length === 0 || /[\s\r\n]/.test(opts.heloName)) {
      throw new TypeError(
        `Cannot create a ClientSession: 'heloName' must be a host name: current value is ${JSON.stringify(opts.heloName)}`,
      );
    }
    this.lmtp = opts.lmtp === true;
    this.policy = opts.tls ?? (this.lmtp ? 'none' : 'opportunistic');
    this.tlsUp = opts.tlsActive === true;
  }

  /** The extensions of the last EHLO/LHLO reply (empty after HELO). */
  get extensions(): Extensions {
    return this.ext;
  }

  get tlsActive(): boolean {
    return this.tlsUp;
  }

  /** Open and idle: a transaction may begin. */
  get usable(): boolean {
    return this.state === 'ready';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The reply we are waiting for (to pick a timeout and name a failure), or null when idle. */
  get waiting(): Stage | null {
    switch (this.state) {
      case 'greeting':
        return 'greeting';
      case 'ehlo':
      case 'helo':
        return 'helo';
      case 'starttls':
      case 'tls-handshake':
        return 'starttls';
      case 'auth':
        return 'auth';
      case 'tx':
        return this.tx?.cmds[this.tx.recvIdx]?.stage ?? 'data-end';
      case 'quit':
        return 'quit';
      default:
        return null;
    }
  }

  onReply(r: Reply): Action[] {
    switch (this.state) {
      case 'greeting':
        if (r.code === 220) return this.hello();
        return this.fail({ kind: 'reply', stage: 'greeting', reply: r }, r.code !== 421);
      case 'ehlo':
        if (r.code === 250) {
          this.ext = parseEhlo(r);
          return this.afterHello();
        }
        if (!this.lmtp && HELO_FALLBACK.has(r.code)) {
          this.state = 'helo';
          return [{ type: 'write', data: `HELO ${this.opts.heloName}\r\n` }];
        }
        return this.fail({ kind: 'reply', stage: 'helo', reply: r }, r.code !== 421);
      case 'helo':
        if (r.code === 250) {
          this.ext = NO_EXTENSIONS;
          return this.afterHello();
        }
        return this.fail({ kind: 'reply', stage: 'helo', reply: r }, r.code !== 421);
      case 'starttls':
        if (r.code === 220) {
          this.state = 'tls-handshake';
          return [{ type: 'starttls' }];
        }
        if (r.code === 421) return this.fail({ kind: 'reply', stage: 'starttls', reply: r }, false);
        if (this.policy === 'opportunistic') return this.afterTls();
        return this.fail(
          {
            kind: 'security',
            stage: 'starttls',
            status: '4.7.5',
            text: `STARTTLS refused: ${r.code} ${r.lines.join(' ')}`,
          },
          true,
        );
      case 'auth':
        return this.onAuthReply(r);
      case 'tx':
        return this.onTxReply(r);
      case 'quit':
        this.state = 'closed';
        return [{ type: 'close' }];
      case 'tls-handshake':
      case 'ready':
        // An unsolicited reply (often a 421 before an idle close): the session is no longer usable.
        this.state = 'closed';
        return [{ type: 'close' }];
      case 'closed':
        return [];
    }
  }

  onTlsUp(): Action[] {
    if (this.state !== 'tls-handshake')
      throw new TypeError(`Cannot complete STARTTLS in state ${this.state}`);
    this.tlsUp = true;
    this.ext = NO_EXTENSIONS; // RFC 3207 §4.2: forget everything learnt before TLS
    return this.hello();
  }

  onTlsFailed(reason: string): Action[] {
    return this.fail(
      {
        kind: 'security',
        stage: 'starttls',
        status: '4.7.5',
        text: `TLS handshake failed: ${reason}`,
        ...(this.policy === 'opportunistic' ? { retryPlain: true } : {}),
      },
      false,
    );
  }

  /**
   * The connection closed, reset, timed out or spoke nonsense. `during` names the stage when the
   * adapter knows better than the session (e.g. 'data' while it is still writing the body).
   */
  onBroken(kind: 'lost' | 'timeout', error?: string, during?: Stage): Action[] {
    const stage = this.waiting === null ? null : (during ?? this.waiting);
    if (this.state === 'tx' && this.tx && stage) {
      const f: Failure = kind === 'timeout' ? { kind, stage } : { kind, stage, ...(error ? { error } : {}) };
      return this.finish(this.tx.aborted ?? f, true);
    }
    if (stage === null || this.state === 'quit') {
      this.state = 'closed';
      return [{ type: 'close' }];
    }
    return this.fail(
      kind === 'timeout' ? { kind, stage } : { kind, stage, ...(error ? { error } : {}) },
      false,
    );
  }

  /** Start a transaction; only when `usable`. */
  begin(spec: TransactionSpec): Action[] {
    if (this.state !== 'ready') throw new TypeError(`Cannot begin a transaction in state ${this.state}`);
    if (spec.recipients.length === 0) throw new RangeError('Cannot begin a transaction without recipients');
    const local = this.precheck(spec);
    if (local) {
      const failure: Failure = { kind: 'local', reply: local };
      return [{ type: 'done', results: spec.recipients.map(() => ({ kind: 'failed', failure })) }];
    }
    const cmds: Cmd[] = [];
    if (this.txCount > 0) cmds.push({ stage: 'rset', line: 'RSET' });
    cmds.push({ stage: 'mail', line: mailLine(spec, this.ext) });
    spec.recipients.forEach((r, i) => cmds.push({ stage: 'rcpt', line: rcptLine(r, this.ext), rcpt: i }));
    cmds.push({ stage: 'data', line: 'DATA' });
    const pipelined = this.opts.pipelining !== false && this.ext.has('PIPELINING');
    const tx: Tx = {
      spec,
      cmds,
      sendIdx: 0,
      recvIdx: 0,
      pipelined,
      results: spec.recipients.map(() => undefined),
      accepted: [],
      aborted: null,
      inDataEnd: false,
      dataEndSeen: 0,
    };
    this.tx = tx;
    this.state = 'tx';
    const n = pipelined ? cmds.length : 1;
    const data = cmds
      .slice(0, n)
      .map((c) => c.line + '\r\n')
      .join('');
    tx.sendIdx = n;
    return [{ type: 'write', data }];
  }

  /** Say goodbye; the peer's reply (or its close) ends the session. */
  quit(): Action[] {
    if (this.state === 'ready') {
      this.state = 'quit';
      return [{ type: 'write', data: 'QUIT\r\n' }];
    }
    if (this.state === 'closed' || this.state === 'quit') return [];
    this.state = 'closed';
    return [{ type: 'close' }];
  }

  private precheck(spec: TransactionSpec): Reply | null {
    if (spec.smtputf8 && !this.ext.has('SMTPUTF8')) {
      return makeReply(
        550,
        '5.6.7',
        'SMTPUTF8 required: the message needs SMTPUTF8 and the peer does not offer it',
      );
    }
    if (spec.eightBit && !this.ext.has('8BITMIME')) {
      return makeReply(554, '5.6.3', 'the message has 8-bit content and the peer does not offer 8BITMIME');
    }
    if (this.ext.maxSize > 0 && spec.size > this.ext.maxSize) {
      return makeReply(
        552,
        '5.3.4',
        `message size ${spec.size} exceeds the peer's limit of ${this.ext.maxSize}`,
      );
    }
    return null;
  }

  private hello(): Action[] {
    this.state = 'ehlo';
    return [{ type: 'write', data: `${this.lmtp ? 'LHLO' : 'EHLO'} ${this.opts.heloName}\r\n` }];
  }

  private afterHello(): Action[] {
    if (!this.tlsUp && this.policy !== 'none') {
      if (this.ext.has('STARTTLS')) {
        this.state = 'starttls';
        return [{ type: 'write', data: 'STARTTLS\r\n' }];
      }
      if (this.policy === 'require' || this.policy === 'verify') {
        return this.fail(
          {
            kind: 'security',
            stage: 'starttls',
            status: '4.7.10',
            text: 'TLS is required but the peer does not offer STARTTLS',
          },
          true,
        );
      }
    }
    return this.afterTls();
  }

  private afterTls(): Action[] {
    const auth = this.opts.auth;
    if (!auth) return this.ready();
    if (!this.tlsUp && this.opts.authWithoutTls !== true) {
      return this.fail(
        {
          kind: 'security',
          stage: 'auth',
          status: '4.7.0',
          text: 'refusing to send credentials over a connection without TLS',
        },
        true,
      );
    }
    const mechs = this.ext.authMechanisms;
    this.state = 'auth';
    this.authStep = 0;
    if (mechs.includes('PLAIN')) {
      this.authMech = 'PLAIN';
      const token = Buffer.from(`\0${auth.user}\0${auth.pass}`, 'utf8').toString('base64');
      return [{ type: 'write', data: `AUTH PLAIN ${token}\r\n` }];
    }
    if (mechs.includes('LOGIN')) {
      this.authMech = 'LOGIN';
      return [{ type: 'write', data: 'AUTH LOGIN\r\n' }];
    }
    return this.fail(
      {
        kind: 'security',
        stage: 'auth',
        status: '4.7.0',
        text: 'credentials are configured but the peer offers neither AUTH PLAIN nor LOGIN',
      },
      true,
    );
  }

  private onAuthReply(r: Reply): Action[] {
    const auth = this.opts.auth;
    if (r.code === 235) return this.ready();
    if (r.code === 334 && auth && this.authMech === 'LOGIN' && this.authStep < 2) {
      const value = this.authStep === 0 ? auth.user : auth.pass;
      this.authStep++;
      return [{ type: 'write', data: Buffer.from(value, 'utf8').toString('base64') + '\r\n' }];
    }
    if (r.code === 334) return [{ type: 'write', data: '*\r\n' }]; // an unexpected challenge: cancel (RFC 4954 §4)
    return this.fail({ kind: 'reply', stage: 'auth', reply: r }, r.code !== 421);
  }

  private ready(): Action[] {
    this.state = 'ready';
    return [{ type: 'ready' }];
  }

  private fail(failure: Failure, sendQuit: boolean): Action[] {
    this.state = 'closed';
    const out: Action[] = [];
    if (sendQuit) out.push({ type: 'write', data: 'QUIT\r\n' });
    out.push({ type: 'failed', failure }, { type: 'close' });
    return out;
  }

  private onTxReply(r: Reply): Action[] {
    const tx = this.tx as Tx;
    if (tx.inDataEnd) return this.onDataEnd(tx, r);
    const cmd = tx.cmds[tx.recvIdx];
    if (!cmd) return this.finish({ kind: 'lost', stage: 'data', error: 'unexpected reply' }, true);
    tx.recvIdx++;
    if (r.code === 421) return this.finish(tx.aborted ?? { kind: 'reply', stage: cmd.stage, reply: r }, true);
    const ok = r.code >= 200 && r.code < 300;
    switch (cmd.stage) {
      case 'rset':
      case 'mail':
        if (!ok && !tx.aborted) tx.aborted = { kind: 'reply', stage: cmd.stage, reply: r };
        break;
      case 'rcpt': {
        if (tx.aborted) break;
        const i = cmd.rcpt as number;
        if (ok) tx.accepted.push(i);
        else if (
          r.code === 452 &&
          (r.enhanced === undefined || r.enhanced === '4.5.3') &&
          tx.accepted.length > 0
        ) {
          tx.results[i] = { kind: 'retry', reply: r };
        } else tx.results[i] = { kind: 'failed', failure: { kind: 'reply', stage: 'rcpt', reply: r } };
        break;
      }
      case 'data':
        if (r.code === 354) {
          // A 354 we cannot use (pipelined commands failed): abandon by closing, never by sending data.
          if (tx.aborted || tx.accepted.length === 0) return this.finish(tx.aborted, true);
          tx.inDataEnd = true;
          return [{ type: 'body' }];
        }
        if (!tx.aborted) {
          const f: Failure = { kind: 'reply', stage: 'data', reply: r };
          for (const i of tx.accepted) tx.results[i] = { kind: 'failed', failure: f };
        }
        return this.finish(tx.aborted, false);
      default:
        break;
    }
    if (tx.recvIdx < tx.sendIdx) return []; // pipelined replies still to come
    if (tx.aborted) return this.finish(tx.aborted, false);
    const next = tx.cmds[tx.sendIdx];
    if (!next) return this.finish(null, false);
    if (next.stage === 'data' && tx.accepted.length === 0) return this.finish(null, false);
    tx.sendIdx++;
    return [{ type: 'write', data: next.line + '\r\n' }];
  }

  private onDataEnd(tx: Tx, r: Reply): Action[] {
    const ok = r.code >= 200 && r.code < 300;
    const f: Failure = { kind: 'reply', stage: 'data-end', reply: r };
    const result: RcptResult = ok ? { kind: 'delivered', reply: r } : { kind: 'failed', failure: f };
    if (!this.lmtp) {
      for (const i of tx.accepted) tx.results[i] = result;
      return this.finish(null, r.code === 421);
    }
    const i = tx.accepted[tx.dataEndSeen++];
    if (i !== undefined) tx.results[i] = result;
    if (tx.dataEndSeen < tx.accepted.length) return [];
    return this.finish(null, false);
  }

  /** End the transaction: undecided recipients get `failure`; `close` ends the session too. */
  private finish(failure: Failure | null, close: boolean): Action[] {
    const tx = this.tx as Tx;
    const fallback: Failure = failure ?? {
      kind: 'lost',
      stage: 'data',
      error: 'transaction ended without a reply',
    };
    // Undecided (accepted, no final reply) recipients take the transaction's failure; so do
    // "retry" ones when the connection is going away, as there is no following transaction.
    const results = tx.results.map((r): RcptResult => {
      if (r && (r.kind !== 'retry' || !close)) return r;
      return { kind: 'failed', failure: fallback };
    });
    this.tx = null;
    this.txCount++;
    if (close) {
      this.state = 'closed';
      return [{ type: 'done', results }, { type: 'close' }];
    }
    this.state = 'ready';
    return [{ type: 'done', results }];
  }
}
