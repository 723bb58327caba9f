/**
 * @module receiver/session
 * The receiver-SMTP session as a pure state machine (RFC 5321 §3, §4.1, §4.3.2): inputs are
 * command lines and events from the connection adapter, outputs are replies plus at most one
 * action for the adapter to carry out (enter DATA, read a BDAT chunk, start TLS, check
 * credentials, commit the message, close). No sockets, timers or files.
 *
 * States: `connected` (before HELO/EHLO) → `ready` (greeted) → `mail` (after MAIL) → `rcpt` (at
 * least one accepted RCPT) → `data` / `bdat` (message bytes flowing) → `committing` → `ready`.
 * A refused RCPT refuses that recipient only; the transaction goes on (RFC 5321 §3.3).
 */
import { splitCommand, parseMailArg, parseRcptArg, parseHeloArg, type EsmtpParam } from '../smtp/command.js';
import { xtextDecode } from '../smtp/xtext.js';
import { mailboxToString, type Path } from '../smtp/types.js';
import type { Reply } from '../smtp/reply.js';
import { reply } from '../smtp/reply.js';
import type { Envelope, EnvelopeRecipient, DsnNotify } from '../queue/types.js';
import { R } from './replies.js';
import { receivedHeader } from './received.js';
import { AuthExchange, type AuthStep } from './auth.js';

export type ListenerMode = 'mx' | 'submission' | 'submissions';

export interface SessionConfig {
  hostname: string;
  mode: ListenerMode;
  maxMessageSize: number;
  maxRecipients: number;
  /** Protocol errors (5xx replies) tolerated before 421. */
  maxErrors: number;
  /** Certificates are configured: STARTTLS can be offered. */
  tlsAvailable: boolean;
  /** An AUTH backend exists and this listener offers AUTH. */
  authOffered: boolean;
  /** MAIL needs a successful AUTH first (submission listeners). */
  authRequired: boolean;
  /** Allow AUTH without TLS (tests, trusted networks). */
  allowInsecureAuth: boolean;
  maxAuthFailures: number;
  /** Longest command line in octets including CRLF (RFC 5321 §4.5.3.1.4: 512). */
  commandLineLimit: number;
}

export type RcptDecision = { accept: true } | { accept: false; reply: Reply };

/** Policy hooks, pure and synchronous. */
export interface SessionPolicy {
  rcpt(ctx: { clientIp: string; authUser?: string; sender: Path }, rcpt: Path): RcptDecision;
  /** Answer VRFY; absent: 252 (RFC 5321 §7.3, the safe default). */
  vrfy?(arg: string): Reply;
}

/** Extra octets allowed on MAIL and RCPT lines for ESMTP parameters. */
const PARAM_ALLOWANCE = 500;

export interface SessionEnv {
  clientIp: string;
  /** Reverse DNS name of the client, when known. */
  clientName?: string;
  tls: boolean;
  now(): Date;
  newId(): string;
}

export type Action =
  | { type: 'close' }
  | { type: 'starttls' }
  /** Enter DATA mode; write `header` then the decoded data to a new message. */
  | { type: 'data'; envelope: Envelope; header: Buffer; maxBytes: number }
  /** Read exactly `size` bytes as a BDAT chunk; `begin` is set on the first chunk of a message. */
  | {
      type: 'bdat';
      size: number;
      last: boolean;
      discard: boolean;
      begin?: { envelope: Envelope; header: Buffer };
    }
  /** Check credentials, then call `authResult`. */
  | { type: 'auth'; user: string; password: string }
  /** Make the message durable, then call `committed`. */
  | { type: 'commit' };

export interface Output {
  replies: Reply[];
  action?: Action;
}

type State = 'connected' | 'ready' | 'mail' | 'data' | 'bdat' | 'committing' | 'auth' | 'closed';

interface Transaction {
  id: string;
  sender: Path;
  senderText: string;
  body: Envelope['body'];
  smtputf8: boolean;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  recipients: EnvelopeRecipient[];
  declaredSize?: number;
  /** BDAT: octets received so far and whether the transaction already failed. */
  bdatSize: number;
  bdatFailed: Reply | null;
  chunking: boolean;
}

export type DataDefect = 'bare-lf' | 'bare-cr' | 'long-line' | 'too-big' | null;

export class Session {
  private state: State = 'connected';
  private esmtp = false;
  private helo: string | undefined;
  private tx: Transaction | null = null;
  private errors = 0;
  private authUser: string | undefined;
  private authFailures = 0;
  private auth: AuthExchange | null = null;
  private tls: boolean;
  private shuttingDown = false;

  constructor(
    private readonly cfg: SessionConfig,
    private readonly env: SessionEnv,
    private readonly policy: SessionPolicy,
  ) {
    this.tls = env.tls;
  }

  get authenticatedUser(): string | undefined {
    return this.authUser;
  }

  /** True while a message is between MAIL and its final reply: shutdown lets it finish. */
  get inTransaction(): boolean {
    return this.tx !== null;
  }

  /**
   * Hard limit the framer applies to the next line, CRLF included. AUTH responses may be long
   * (RFC 4954 §4: 12288); MAIL and RCPT get room for their ESMTP parameters (RFC 5321 §4.5.3.1.4
   * lets extensions raise the limit; RFC 3461 ORCPT/ENVID need it), checked per verb in command().
   */
  get lineLimit(): number {
    return this.state === 'auth' ? 12288 + 2 : this.commandLimit + PARAM_ALLOWANCE;
  }

  private get commandLimit(): number {
    return Math.max(this.cfg.commandLineLimit, 512);
  }

  greeting(): Output {
    return { replies: [reply(220, undefined, `${this.cfg.hostname} ESMTP ferrymail`)] };
  }

  /** The server is stopping: answer 421 to the next command (or now, if idle). */
  shutdown(): Output {
    this.shuttingDown = true;
    if (this.state === 'closed') return { replies: [] };
    if (this.tx === null && this.state !== 'auth') return this.close(R.shutdown(this.cfg.hostname));
    return { replies: [] };
  }

  timeout(): Output {
    return this.close(R.timeout(this.cfg.hostname));
  }

  /** A line that broke the framing rules; it is not executed. */
  badLine(kind: 'too-long' | 'bare-line-end' | 'encoding'): Output {
    if (this.state === 'auth') this.state = 'ready';
    this.auth = null;
    const r =
      kind === 'too-long'
        ? R.lineTooLong(this.lineLimit)
        : kind === 'bare-line-end'
          ? R.bareLineEnd()
          : R.badEncoding();
    return this.error(r);
  }

  /** One command line, without its CRLF. */
  command(line: string): Output {
    if (this.state === 'closed') return { replies: [] };
    if (this.state === 'auth') return this.authLine(line);
    if (this.shuttingDown && this.tx === null) return this.close(R.shutdown(this.cfg.hostname));
    if (line.includes('\0')) return this.error(R.syntax('NUL byte in command'));
    const { verb, arg } = splitCommand(line);
    if (verb !== 'MAIL' && verb !== 'RCPT' && Buffer.byteLength(line) + 2 > this.commandLimit) {
      return this.error(R.lineTooLong(this.commandLimit));
    }
    switch (verb) {
      case 'EHLO':
        return this.hello(arg, true);
      case 'HELO':
        return this.hello(arg, false);
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
        return this.rcpt(arg);
      case 'DATA':
        return this.data(arg);
      case 'BDAT':
        return this.bdat(arg);
      case 'RSET':
        if (arg !== '') return this.error(R.syntax('Syntax: RSET (no arguments)'));
        this.reset();
        return this.ok(R.ok());
      case 'NOOP':
        return this.ok(R.ok());
      case 'QUIT':
        if (arg !== '') return this.error(R.syntax('Syntax: QUIT (no arguments)'));
        return this.close(R.bye(this.cfg.hostname));
      case 'VRFY': {
        if (arg.trim() === '') return this.error(R.syntax('Syntax: VRFY <address>'));
        const r = this.policy.vrfy?.(arg.trim()) ?? R.vrfy();
        return r.code >= 500 ? this.error(r) : this.ok(r);
      }
      case 'EXPN':
        if (arg.trim() === '') return this.error(R.syntax('Syntax: EXPN <list>'));
        return this.ok(R.expn());
      case 'HELP':
        return this.ok(R.help());
      case 'STARTTLS':
        return this.starttls(arg);
      case 'AUTH':
        return this.authStart(arg);
      case 'TURN':
      case 'ETRN':
      case 'SEND':
      case 'SOML':
      case 'SAML':
      case 'ATRN':
        return this.error(R.notImplemented(verb));
      default:
        return this.error(R.unknown());
    }
  }

  // ---- HELO / EHLO -------------------------------------------------------------------------

  private hello(arg: string, esmtp: boolean): Output {
    const name = arg.trim();
    if (name === '') return this.error(R.syntax(`Syntax: ${esmtp ? 'EHLO' : 'HELO'} <hostname>`));
    if (/\s/.test(name)) return this.error(R.syntax('Syntax: one domain or address literal expected'));
    const parsed = parseHeloArg(name);
    // Real clients send bare host names with underscores or no dots: RFC 5321 §4.1.4 says not to
    // refuse a session over the EHLO name, so anything printable and single-token is taken.
    if (!parsed.ok && !/^[\x21-\x7e]+$/.test(name)) {
      return this.error(R.syntax('Syntax: hostname contains characters that are not allowed'));
    }
    this.reset();
    this.helo = name;
    this.esmtp = esmtp;
    this.state = 'ready';
    const greet = `${this.cfg.hostname} Hello ${name} [${this.env.clientIp}]`;
    if (!esmtp) return this.ok(reply(250, undefined, greet));
    const ext = [
      greet,
      'PIPELINING',
      `SIZE ${this.cfg.maxMessageSize}`,
      '8BITMIME',
      'SMTPUTF8',
      'ENHANCEDSTATUSCODES',
      'CHUNKING',
      'DSN',
    ];
    if (this.cfg.tlsAvailable && !this.tls) ext.push('STARTTLS');
    if (this.authAllowedNow() && this.authUser === undefined) ext.push('AUTH PLAIN LOGIN');
    ext.push('HELP');
    return this.ok(reply(250, undefined, ext.join('\n')));
  }

  // ---- MAIL ----------------------------------------------------------------------------------

  private mail(arg: string): Output {
    if (this.state === 'connected') return this.error(R.sequence('Send HELO/EHLO first'));
    if (this.tx) return this.error(R.sequence('Nested MAIL command'));
    if (this.cfg.authRequired && this.authUser === undefined) {
      return this.error(this.tls || this.cfg.allowInsecureAuth ? R.authRequired() : R.mustStartTls());
    }
    const p = parseMailArg(arg, { utf8: this.esmtp });
    if (!p.ok) return this.error(reply(p.error.code, p.error.enhanced, p.error.text));
    if (!this.esmtp && p.params.length > 0) {
      return this.error(R.badParam('MAIL parameters need EHLO, not HELO'));
    }
    const tx: Transaction = {
      id: '',
      sender: p.path,
      senderText: pathText(p.path),
      body: '7BIT',
      smtputf8: false,
      recipients: [],
      bdatSize: 0,
      bdatFailed: null,
      chunking: false,
    };
    for (const prm of p.params) {
      const bad = this.mailParam(tx, prm);
      if (bad) return this.error(bad);
    }
    if (tx.declaredSize !== undefined && tx.declaredSize > this.cfg.maxMessageSize) {
      return this.error(R.sizeExceeded(this.cfg.maxMessageSize));
    }
    tx.id = this.env.newId();
    this.tx = tx;
    this.state = 'mail';
    return this.ok(R.senderOk(tx.senderText));
  }

  private mailParam(tx: Transaction, prm: EsmtpParam): Reply | null {
    const v = prm.value;
    switch (prm.keyword) {
      case 'SIZE':
        if (v === null || !/^\d{1,20}$/.test(v)) return R.syntax('SIZE needs a number of octets');
        tx.declaredSize = Number(v);
        return null;
      case 'BODY': {
        const b = (v ?? '').toUpperCase();
        if (b === '7BIT' || b === '8BITMIME') tx.body = b;
        else if (b === 'BINARYMIME') return R.paramNotImpl('BODY=BINARYMIME is not supported');
        else return R.syntax('BODY must be 7BIT or 8BITMIME');
        return null;
      }
      case 'SMTPUTF8':
        if (v !== null) return R.syntax('SMTPUTF8 takes no value');
        tx.smtputf8 = true;
        return null;
      case 'RET': {
        const r = (v ?? '').toUpperCase();
        if (r !== 'FULL' && r !== 'HDRS') return R.syntax('RET must be FULL or HDRS');
        tx.ret = r;
        return null;
      }
      case 'ENVID': {
        const d = v === null ? null : xtextDecode(v);
        if (d === null || d.length > 100) return R.syntax('ENVID must be xtext of at most 100 characters');
        tx.envid = d;
        return null;
      }
      case 'AUTH':
        // RFC 4954 §5: the submitter identity; we trust only our own AUTH, so it is read and ignored.
        if (v === null) return R.syntax('AUTH= needs a value');
        return null;
      default:
        return R.badParam(`Unsupported MAIL parameter ${prm.keyword}`);
    }
  }

  // ---- RCPT ----------------------------------------------------------------------------------

  private rcpt(arg: string): Output {
    if (this.state === 'connected') return this.error(R.sequence('Send HELO/EHLO first'));
    const tx = this.tx;
    if (!tx || this.state !== 'mail') return this.error(R.sequence('Need MAIL before RCPT'));
    if (tx.chunking) return this.error(R.sequence('RCPT not allowed after BDAT'));
    const p = parseRcptArg(arg, { utf8: tx.smtputf8 });
    if (!p.ok) return this.error(reply(p.error.code, p.error.enhanced, p.error.text));
    if (!this.esmtp && p.params.length > 0) {
      return this.error(R.badParam('RCPT parameters need EHLO, not HELO'));
    }
    const rcpt: EnvelopeRecipient = { address: pathText(p.path) };
    for (const prm of p.params) {
      const bad = rcptParam(rcpt, prm);
      if (bad) return this.error(bad);
    }
    if (tx.recipients.length >= this.cfg.maxRecipients) {
      return this.ok(R.tooManyRcpts(this.cfg.maxRecipients));
    }
    const ctx: { clientIp: string; authUser?: string; sender: Path } = {
      clientIp: this.env.clientIp,
      sender: tx.sender,
    };
    if (this.authUser !== undefined) ctx.authUser = this.authUser;
    const d = this.policy.rcpt(ctx, p.path);
    if (!d.accept) return d.reply.code >= 500 ? this.error(d.reply) : this.ok(d.reply);
    tx.recipients.push(rcpt);
    return this.ok(R.rcptOk(rcpt.address));
  }

  // ---- DATA ----------------------------------------------------------------------------------

  private data(arg: string): Output {
    if (arg !== '') return this.error(R.syntax('Syntax: DATA (no arguments)'));
    if (this.state === 'connected') return this.error(R.sequence('Send HELO/EHLO first'));
    const tx = this.tx;
    if (!tx) return this.error(R.sequence('Need MAIL before DATA'));
    if (tx.chunking) return this.error(R.sequence('DATA not allowed after BDAT'));
    if (tx.recipients.length === 0) return this.error(R.noValidRcpts());
    this.state = 'data';
    return {
      replies: [R.startData()],
      action: { type: 'data', ...this.begin(tx), maxBytes: this.cfg.maxMessageSize },
    };
  }

  /** The adapter found CRLF.CRLF; `defect` says whether the message must be refused. */
  dataEnd(defect: DataDefect): Output {
    if (this.state !== 'data') return { replies: [] };
    if (defect !== null) {
      this.reset();
      this.state = 'ready';
      return this.error(this.defectReply(defect));
    }
    this.state = 'committing';
    return { replies: [], action: { type: 'commit' } };
  }

  private defectReply(defect: Exclude<DataDefect, null>): Reply {
    switch (defect) {
      case 'too-big':
        return R.sizeExceeded(this.cfg.maxMessageSize);
      case 'long-line':
        return R.longDataLine(1000);
      default:
        return R.bareInData();
    }
  }

  /** The message sink answered: durable (ok) or not (error with an errno-like code). */
  committed(result: { ok: true } | { ok: false; code?: string }): Output {
    const tx = this.tx;
    if (this.state !== 'committing' || !tx) return { replies: [] };
    this.tx = null;
    this.state = 'ready';
    let r: Reply;
    if (result.ok) r = R.queued(tx.id);
    else r = result.code === 'ENOSPC' || result.code === 'EDQUOT' ? R.diskFull() : R.localError();
    if (this.shuttingDown) {
      const closing = this.close(R.shutdown(this.cfg.hostname));
      return { replies: [r, ...closing.replies], action: { type: 'close' } };
    }
    return { replies: [r] };
  }

  // ---- BDAT (RFC 3030) -----------------------------------------------------------------------

  private bdat(arg: string): Output {
    const m = /^(\d{1,15})( +LAST)? *$/i.exec(arg);
    if (!m) {
      // Without a valid size the chunk's end is unknown: the stream cannot be resynchronised.
      this.reset();
      return this.close(reply(501, '5.5.4', 'Syntax: BDAT <size> [LAST]; closing connection', true));
    }
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    const tx = this.tx;
    let fail: Reply | null = null;
    if (this.state === 'connected') fail = R.sequence('Send HELO/EHLO first');
    else if (!this.esmtp) fail = R.sequence('BDAT needs EHLO');
    else if (!tx) fail = R.sequence('Need MAIL before BDAT');
    else if (tx.recipients.length === 0) fail = R.noValidRcpts();
    if (fail || !tx) {
      // RFC 3030 §3: the chunk must still be read and discarded.
      const r = fail ?? R.sequence('Need MAIL before BDAT');
      this.countError(r);
      this.pendingBdatReply = r;
      return { replies: [], action: { type: 'bdat', size, last, discard: true } };
    }
    const first = !tx.chunking;
    tx.chunking = true;
    this.state = 'bdat';
    tx.bdatSize += size;
    if (!tx.bdatFailed && tx.bdatSize > this.cfg.maxMessageSize) {
      tx.bdatFailed = R.sizeExceeded(this.cfg.maxMessageSize);
    }
    const discard = tx.bdatFailed !== null;
    const action: Action = { type: 'bdat', size, last, discard };
    if (first && !discard) action.begin = this.begin(tx);
    this.bdatLast = last;
    return { replies: [], action };
  }

  private pendingBdatReply: Reply | null = null;
  private bdatLast = false;

  /** The adapter read the whole chunk announced by the last BDAT. */
  bdatChunkDone(defect: DataDefect = null): Output {
    if (this.pendingBdatReply) {
      const r = this.pendingBdatReply;
      this.pendingBdatReply = null;
      if (this.errors > this.cfg.maxErrors) {
        return { replies: [r, ...this.close(R.tooManyErrors()).replies], action: { type: 'close' } };
      }
      return { replies: [r] };
    }
    const tx = this.tx;
    if (!tx || this.state !== 'bdat') return { replies: [] };
    if (defect && !tx.bdatFailed) tx.bdatFailed = this.defectReply(defect);
    if (!this.bdatLast) {
      if (tx.bdatFailed) return { replies: [tx.bdatFailed] };
      return { replies: [reply(250, '2.0.0', `${tx.bdatSize} octets received`)] };
    }
    if (tx.bdatFailed) {
      const r = tx.bdatFailed;
      this.reset();
      this.state = 'ready';
      return this.error(r);
    }
    this.state = 'committing';
    return { replies: [], action: { type: 'commit' } };
  }

  /** The envelope and trace header for the message about to be received. */
  private begin(tx: Transaction): { envelope: Envelope; header: Buffer } {
    const envelope: Envelope = {
      id: tx.id,
      sender: tx.senderText,
      recipients: tx.recipients,
      receivedAt: this.env.now().getTime(),
      body: tx.body,
      smtputf8: tx.smtputf8,
      client: { ip: this.env.clientIp, tls: this.tls },
    };
    if (this.helo !== undefined) envelope.client!.helo = this.helo;
    if (this.authUser !== undefined) envelope.client!.authUser = this.authUser;
    if (tx.ret) envelope.ret = tx.ret;
    if (tx.envid !== undefined) envelope.envid = tx.envid;
    const header = receivedHeader({
      helo: this.helo ?? 'unknown',
      clientIp: this.env.clientIp,
      ...(this.env.clientName !== undefined ? { clientName: this.env.clientName } : {}),
      hostname: this.cfg.hostname,
      esmtp: this.esmtp,
      tls: this.tls,
      auth: this.authUser !== undefined,
      utf8: tx.smtputf8,
      id: tx.id,
      recipients: tx.recipients.map((r) => r.address),
      date: this.env.now(),
    });
    return { envelope, header };
  }

  // ---- STARTTLS (RFC 3207) -------------------------------------------------------------------

  private starttls(arg: string): Output {
    if (arg !== '') return this.error(R.syntax('Syntax: STARTTLS (no arguments)'));
    if (this.tls) return this.error(R.sequence('TLS already active'));
    if (!this.cfg.tlsAvailable) return this.error(R.notImplemented('STARTTLS'));
    if (this.state === 'connected' || !this.esmtp) return this.error(R.sequence('Send EHLO first'));
    if (this.tx) return this.error(R.sequence('STARTTLS not allowed during a mail transaction'));
    return { replies: [R.tlsGo()], action: { type: 'starttls' } };
  }

  /** TLS is up: forget everything learnt before it (RFC 3207 §4.2). */
  tlsStarted(): void {
    this.tls = true;
    this.reset();
    this.state = 'connected';
    this.helo = undefined;
    this.esmtp = false;
    this.authUser = undefined;
  }

  // ---- AUTH (RFC 4954) -----------------------------------------------------------------------

  private authAllowedNow(): boolean {
    return this.cfg.authOffered && (this.tls || this.cfg.allowInsecureAuth);
  }

  private authStart(arg: string): Output {
    if (this.state === 'connected' || !this.esmtp) return this.error(R.sequence('Send EHLO first'));
    if (!this.cfg.authOffered) return this.error(R.notImplemented('AUTH'));
    if (this.authUser !== undefined) return this.error(R.sequence('Already authenticated'));
    if (this.tx) return this.error(R.sequence('AUTH not allowed during a mail transaction'));
    if (!this.authAllowedNow()) return this.error(R.encryptionRequired());
    const [mech = '', initial] = arg.split(' ');
    const ex = AuthExchange.start(mech, initial);
    if (ex === null) return this.error(R.paramNotImpl(`Unsupported authentication mechanism ${mech}`));
    this.auth = ex;
    return this.authStep(ex.first());
  }

  private authLine(line: string): Output {
    const ex = this.auth;
    if (!ex) {
      this.state = 'ready';
      return this.error(R.sequence('No authentication in progress'));
    }
    return this.authStep(ex.respond(line));
  }

  private authStep(step: AuthStep): Output {
    switch (step.kind) {
      case 'challenge':
        this.state = 'auth';
        return { replies: [reply(334, undefined, step.text)] };
      case 'cancelled':
        this.auth = null;
        this.state = 'ready';
        return this.error(R.authCancelled());
      case 'malformed':
        this.auth = null;
        this.state = 'ready';
        return this.error(R.syntax(step.text));
      case 'credentials':
        this.auth = null;
        this.state = 'ready';
        return { replies: [], action: { type: 'auth', user: step.user, password: step.password } };
    }
  }

  /** The adapter checked the credentials (and waited out the failure delay). */
  authResult(user: string, ok: boolean): Output {
    if (ok) {
      this.authUser = user;
      return this.ok(R.authOk());
    }
    this.authFailures++;
    if (this.authFailures >= this.cfg.maxAuthFailures) return this.close(R.tooManyAuth());
    return this.error(R.authFailed());
  }

  // ---- helpers -------------------------------------------------------------------------------

  private reset(): void {
    this.tx = null;
    this.pendingBdatReply = null;
    if (this.state !== 'connected' && this.state !== 'closed') this.state = 'ready';
  }

  private ok(r: Reply): Output {
    return { replies: [r] };
  }

  private countError(r: Reply): void {
    if (r.code >= 500) this.errors++;
  }

  private error(r: Reply): Output {
    this.countError(r);
    if (this.errors > this.cfg.maxErrors) {
      return { replies: [r, ...this.close(R.tooManyErrors()).replies], action: { type: 'close' } };
    }
    return { replies: [r] };
  }

  private close(r: Reply): Output {
    this.state = 'closed';
    this.tx = null;
    return { replies: [r], action: { type: 'close' } };
  }
}

function pathText(p: Path): string {
  switch (p.kind) {
    case 'null':
      return '';
    case 'postmaster':
      return p.raw;
    case 'mailbox':
      return mailboxToString(p.mailbox);
  }
}

const NOTIFY_VALUES = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

function rcptParam(rcpt: EnvelopeRecipient, prm: EsmtpParam): Reply | null {
  const v = prm.value;
  switch (prm.keyword) {
    case 'NOTIFY': {
      if (v === null) return R.syntax('NOTIFY needs a value');
      const items = v.toUpperCase().split(',');
      if (items.length === 1 && items[0] === 'NEVER') {
        rcpt.notify = ['NEVER'];
        return null;
      }
      if (!items.every((x) => NOTIFY_VALUES.has(x)) || new Set(items).size !== items.length) {
        return R.syntax('NOTIFY must be NEVER, or a list of SUCCESS, FAILURE, DELAY');
      }
      rcpt.notify = items as DsnNotify[];
      return null;
    }
    case 'ORCPT': {
      const semi = v === null ? -1 : v.indexOf(';');
      if (v === null || semi <= 0) return R.syntax('ORCPT must be addr-type;xtext');
      const type = v.slice(0, semi);
      const addr = xtextDecode(v.slice(semi + 1));
      if (addr === null || !/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type))
        return R.syntax('ORCPT must be addr-type;xtext');
      rcpt.orcpt = `${type};${addr}`;
      return null;
    }
    default:
      return R.badParam(`Unsupported RCPT parameter ${prm.keyword}`);
  }
}
