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
 * A message needing an extension the peer lacks (SMTPUTF8, 8BITMIME, SIZE) fails every recipient
 * without a command sent. Transactions themselves (pipelining cursors, 452 "too many recipients",
 * LMTP's per-recipient replies) live in `transaction.ts`; a second one starts with RSET. A 421
 * anywhere ends the session.
 */
import type { Reply } from '../smtp/reply.js';
import type { TlsPolicy } from '../delivery/types.js';
import type { Failure, Stage } from './failure.js';
import {
  NO_EXTENSIONS,
  parseEhlo,
  missingExtension,
  type Extensions,
  type TransactionSpec,
} from './extensions.js';
import { Transaction, type RcptResult, type TxStep } from './transaction.js';

export type { RcptResult } from './transaction.js';

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

const HELO_FALLBACK = new Set([500, 501, 502, 504]);

export class ClientSession {
  private state: State = 'greeting';
  private ext: Extensions = NO_EXTENSIONS;
  private tlsUp: boolean;
  private tx: Transaction | null = null;
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
        return this.tx?.waiting ?? 'data-end';
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
      return this.step(this.tx.broken(f));
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
    const local = missingExtension(spec, this.ext);
    if (local) {
      const failure: Failure = { kind: 'local', reply: local };
      return [{ type: 'done', results: spec.recipients.map(() => ({ kind: 'failed', failure })) }];
    }
    this.tx = new Transaction(spec, this.ext, {
      lmtp: this.lmtp,
      pipelining: this.opts.pipelining !== false && this.ext.has('PIPELINING'),
      rsetFirst: this.txCount > 0,
    });
    this.state = 'tx';
    return [{ type: 'write', data: this.tx.start() }];
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
    return this.step((this.tx as Transaction).onReply(r));
  }

  private step(st: TxStep): Action[] {
    switch (st.kind) {
      case 'wait':
        return [];
      case 'write':
        return [{ type: 'write', data: st.data }];
      case 'body':
        return [{ type: 'body' }];
      case 'end':
        this.tx = null;
        this.txCount++;
        if (st.close) {
          this.state = 'closed';
          return [{ type: 'done', results: st.results }, { type: 'close' }];
        }
        this.state = 'ready';
        return [{ type: 'done', results: st.results }];
    }
  }
}
