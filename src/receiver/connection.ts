/**
 * @module receiver/connection
 * The socket adapter for one receiver-SMTP session: frames bytes into command lines, DATA and BDAT
 * chunks, feeds them to the pure Session, writes its replies, and carries out its actions (TLS,
 * AUTH checks, the message sink). Everything protocol-shaped lives in the Session.
 *
 * - Pipelining (RFC 2920): commands are handled strictly in order; the replies of one batch of
 *   input are written together. Input is not read while an action is pending (commit, AUTH) or
 *   while the client does not read our replies (write() returned false): backpressure both ways.
 * - Framing: only CRLF ends a command line; a bare LF or CR gets 500 and is not executed.
 * - STARTTLS: whatever the client pipelined after STARTTLS is discarded (CVE-2011-0411).
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { formatReply, type Reply } from '../smtp/reply.js';
import { DotDecoder } from '../smtp/dot.js';
import type { MessageSink, MessageWriter } from '../queue/types.js';
import type { Session, Output, DataDefect } from './session.js';

export interface ConnectionOptions {
  sink: MessageSink;
  /** Verify credentials; resolve true when valid. */
  checkAuth?: (user: string, password: string) => Promise<boolean>;
  /** Delay before answering a failed AUTH (slows brute force). */
  authFailDelayMs: number;
  secureContext?: SecureContext;
  /** Idle time allowed between commands (RFC 5321 §4.5.3.2.7: 5 minutes). */
  commandTimeoutMs: number;
  /** Idle time allowed while data flows (RFC 5321 §4.5.3.2.5: 3 minutes per block). */
  dataTimeoutMs: number;
  /** Longest DATA line in octets including CRLF; 0 for no limit. */
  maxDataLine: number;
  onClose?: () => void;
  onLog?: (event: string, fields: Record<string, unknown>) => void;
}

type Mode = 'command' | 'data' | 'bdat' | 'wait' | 'closed';

const CR = 13;
const LF = 10;
/** Unprocessed pipelined input we hold while an action is pending before we stop reading. */
const MAX_PENDING = 256 * 1024;

export class Connection {
  private socket: Socket;
  private pending: Buffer | null = null;
  private mode: Mode = 'command';
  private decoder: DotDecoder | null = null;
  private writer: MessageWriter | null = null;
  private bdatLeft = 0;
  private bdatDiscard = false;
  private skippingLongLine = false;
  private out = '';
  private paused = false;
  private ended = false;
  private readonly onData = (b: Buffer) => this.receive(b);

  constructor(
    socket: Socket,
    private readonly session: Session,
    private readonly opts: ConnectionOptions,
  ) {
    this.socket = socket;
    this.attach(socket);
    this.apply(session.greeting());
    this.flush();
  }

  /** Server shutdown: 421 now if idle, else after the current transaction. */
  shutdown(): void {
    if (this.mode === 'closed') return;
    const out = this.session.shutdown();
    if (this.mode === 'command') {
      this.apply(out);
      this.flush();
    }
  }

  /** Drop the connection without a word (hard stop). */
  destroy(): void {
    this.finish();
    this.socket.destroy();
  }

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('error', () => this.finish());
    s.on('close', () => this.finish());
    s.on('end', () => {
      // The client half-closed: answer what it sent, then close our side too.
      this.clientEnded = true;
      this.endIfIdle();
    });
    s.on('drain', () => this.resume());
    s.setTimeout(this.opts.commandTimeoutMs, () => {
      if (this.mode === 'closed') return;
      this.apply(this.session.timeout());
      this.flush();
    });
  }

  private receive(chunk: Buffer): void {
    if (this.mode === 'closed') return;
    this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    if (this.mode === 'command' && this.tricklingTooLong()) return;
    this.process();
  }

  /** When the current partial command line started arriving (0: none pending). */
  private partialSince = 0;

  /**
   * A command line must arrive within the command timeout, not merely one byte per timeout:
   * otherwise a client trickling a byte a second holds a slot for as long as it likes (slowloris).
   */
  private tricklingTooLong(): boolean {
    const now = Date.now();
    const buf = this.pending;
    if (buf === null || buf.length === 0 || buf.indexOf(LF) >= 0) {
      this.partialSince = 0;
      return false;
    }
    if (this.partialSince === 0) this.partialSince = now;
    if (now - this.partialSince <= this.opts.commandTimeoutMs) return false;
    this.apply(this.session.timeout());
    this.flush();
    return true;
  }

  /** Run the input we hold until it is used up or an action makes us wait. */
  private process(): void {
    while (this.pending && this.pending.length > 0 && !this.paused) {
      const before = this.mode;
      if (before === 'command') {
        if (!this.commandStep()) break;
      } else if (before === 'data') {
        this.dataStep();
      } else if (before === 'bdat') {
        this.bdatStep();
      } else {
        break; // wait / closed
      }
    }
    if (this.pending && this.pending.length === 0) this.pending = null;
    this.flush();
    if (this.pending && this.pending.length > MAX_PENDING && !this.paused) this.pauseReading();
    this.endIfIdle();
  }

  /** One command line; false when no complete line is buffered. */
  private commandStep(): boolean {
    const buf = this.pending as Buffer;
    const limit = this.session.lineLimit;
    const lf = buf.indexOf(LF);
    if (lf < 0) {
      if (buf.length > limit) {
        // Too long: answer once, then skip to the next LF.
        if (!this.skippingLongLine) this.apply(this.session.badLine('too-long'));
        this.skippingLongLine = true;
        this.pending = null;
      }
      return false;
    }
    const lineEnd = lf > 0 && buf[lf - 1] === CR ? lf - 1 : lf;
    const raw = buf.subarray(0, lineEnd);
    this.pending = buf.subarray(lf + 1);
    if (this.skippingLongLine) {
      this.skippingLongLine = false;
      return true;
    }
    if (lineEnd === lf || raw.includes(CR)) {
      this.apply(this.session.badLine('bare-line-end'));
      return true;
    }
    if (lf + 1 > limit) {
      this.apply(this.session.badLine('too-long'));
      return true;
    }
    const line = raw.toString('utf8');
    if (line.includes('\uFFFD') && !raw.includes(Buffer.from('\uFFFD'))) {
      this.apply(this.session.badLine('encoding'));
      return true;
    }
    this.apply(this.session.command(line));
    return true;
  }

  private dataStep(): void {
    const d = this.decoder as DotDecoder;
    const r = d.push(this.pending as Buffer);
    if (this.writer && d.defect === null) for (const c of r.chunks) this.writer.write(c);
    this.pending =
      r.consumed < (this.pending as Buffer).length ? (this.pending as Buffer).subarray(r.consumed) : null;
    if (!r.done) return;
    const defect = d.defect;
    this.decoder = null;
    this.mode = 'command';
    this.socket.setTimeout(this.opts.commandTimeoutMs);
    if (defect !== null) this.abortWriter();
    this.apply(this.session.dataEnd(defect));
  }

  private bdatStep(): void {
    const buf = this.pending as Buffer;
    const take = Math.min(this.bdatLeft, buf.length);
    if (take > 0 && !this.bdatDiscard && this.writer) this.writer.write(buf.subarray(0, take));
    this.bdatLeft -= take;
    this.pending = take < buf.length ? buf.subarray(take) : null;
    if (this.bdatLeft > 0) return;
    this.bdatDone();
  }

  private bdatDone(): void {
    this.mode = 'command';
    this.socket.setTimeout(this.opts.commandTimeoutMs);
    this.apply(this.session.bdatChunkDone());
  }

  /** Queue the replies and carry out the action of one session output. */
  private apply(o: Output): void {
    for (const r of o.replies) this.reply(r);
    const a = o.action;
    if (!a) return;
    switch (a.type) {
      case 'close':
        this.mode = 'closed';
        this.abortWriter();
        this.flush();
        this.ended = true;
        // Once our last reply and FIN are out, nothing more is read: closing now rather than
        // waiting for the client's FIN saves a read, and the error object Node builds for the
        // RST many clients (smtp-source, for one) answer a closed session with. Unless the
        // client already sent more: closing over unread input would reset the connection and
        // could cost it our last reply.
        this.socket.end(() => {
          if (this.pending === null || this.pending.length === 0) this.socket.destroy();
        });
        return;
      case 'data':
        this.mode = 'data';
        this.decoder = new DotDecoder({ maxBytes: a.maxBytes, maxLineLength: this.opts.maxDataLine });
        this.writer = this.opts.sink.begin(a.envelope);
        this.writer.write(a.header);
        this.socket.setTimeout(this.opts.dataTimeoutMs);
        return;
      case 'bdat':
        if (a.begin) {
          this.writer = this.opts.sink.begin(a.begin.envelope);
          this.writer.write(a.begin.header);
        }
        if (a.discard) this.abortWriter();
        this.bdatDiscard = a.discard;
        this.bdatLeft = a.size;
        this.mode = 'bdat';
        this.socket.setTimeout(this.opts.dataTimeoutMs);
        if (a.size === 0) this.bdatDone();
        return;
      case 'commit':
        this.waitFor(this.commit());
        return;
      case 'auth':
        this.waitFor(this.authenticate(a.user, a.password));
        return;
      case 'starttls':
        this.startTls();
        return;
    }
  }

  private async commit(): Promise<Output> {
    const w = this.writer;
    this.writer = null;
    if (!w) return this.session.committed({ ok: false });
    try {
      await w.commit();
      return this.session.committed({ ok: true });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.opts.onLog?.('commit-failed', { err: String(err) });
      return this.session.committed({ ok: false, ...(typeof code === 'string' ? { code } : {}) });
    }
  }

  private async authenticate(user: string, password: string): Promise<Output> {
    let ok = false;
    try {
      ok = this.opts.checkAuth ? await this.opts.checkAuth(user, password) : false;
    } catch {
      ok = false;
    }
    if (!ok) await new Promise((r) => setTimeout(r, this.opts.authFailDelayMs));
    this.opts.onLog?.(ok ? 'auth-ok' : 'auth-failed', { user });
    return this.session.authResult(user, ok);
  }

  /** Stop handling input until `p` settles, then apply its output and go on. */
  private waitFor(p: Promise<Output>): void {
    this.mode = 'wait';
    void p.then((o) => {
      if (this.mode === 'closed') return;
      this.mode = 'command';
      this.apply(o);
      this.flush();
      if (this.paused && !this.socket.writableNeedDrain) {
        this.paused = false;
        this.socket.resume();
      }
      this.process();
    });
  }

  private startTls(): void {
    const ctx = this.opts.secureContext;
    if (!ctx) return;
    this.flush();
    // CVE-2011-0411: nothing the client sent before the handshake may be taken as a command.
    this.pending = null;
    this.mode = 'wait';
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    plain.removeAllListeners('timeout');
    plain.removeAllListeners('end');
    plain.setTimeout(0);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: ctx });
    this.socket = secure;
    secure.once('secure', () => {
      this.session.tlsStarted();
      this.mode = 'command';
      this.opts.onLog?.('tls', { protocol: secure.getProtocol(), cipher: secure.getCipher()?.name });
    });
    this.attach(secure);
  }

  private reply(r: Reply): void {
    this.out += formatReply(r);
  }

  private flush(): void {
    if (this.out === '' || this.ended) return;
    const data = this.out;
    this.out = '';
    if (this.socket.destroyed) return;
    if (!this.socket.write(data)) this.pauseReading();
  }

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    if (!this.paused || this.mode === 'closed') return;
    this.paused = false;
    this.socket.resume();
    this.process();
  }

  private abortWriter(): void {
    if (this.writer) {
      this.writer.abort();
      this.writer = null;
    }
  }

  private endIfIdle(): void {
    if (!this.clientEnded || this.ended) return;
    const idle = this.mode === 'command' && (this.pending === null || this.pending.length === 0);
    // In DATA/BDAT the message can never be completed once the client has half-closed.
    if (!idle && this.mode !== 'data' && this.mode !== 'bdat') return;
    this.mode = 'closed';
    this.ended = true;
    this.abortWriter();
    this.socket.end();
  }

  private clientEnded = false;

  private finish(): void {
    this.mode = 'closed';
    this.abortWriter();
    this.decoder = null;
    this.pending = null;
    if (!this.closedNotified) {
      this.closedNotified = true;
      this.opts.onClose?.();
    }
  }

  private closedNotified = false;
}

export type { DataDefect };
