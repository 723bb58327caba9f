/**
 * @module sender/client
 * The socket adapter for `ClientSession`: dials (TCP over IPv4/IPv6, or a unix socket for LMTP),
 * feeds replies to the session, performs its actions, upgrades in place for STARTTLS, and enforces
 * the RFC 5321 §4.5.3.2 client timeouts (all configurable; tests use tiny ones). The body is
 * dot-encoded by smtp/dot.ts (CRLF everywhere, so no smuggling sequence leaves us) and written in
 * chunks that respect backpressure (`write()` false → wait for 'drain',
 * bounded by the data-block timeout).
 *
 * `SmtpClient.connect()` resolves once the session is ready (greeting, EHLO, STARTTLS, AUTH done)
 * and rejects with a `SessionFailure` otherwise. `send()` runs one transaction and resolves with
 * one RcptResult per recipient; it never rejects for what the peer does.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ReplyParser, ReplySyntaxError } from '../smtp/reply.js';
import { ClientSession, type Action, type RcptResult, type SessionOptions } from './session.js';
import { SessionFailure, type Failure } from './failure.js';
import { DEFAULT_TIMEOUTS, timeoutFor, type Timeouts } from './timeouts.js';
import { dotEncode } from '../smtp/dot.js';
import type { Extensions, TransactionSpec } from './extensions.js';

export { DEFAULT_TIMEOUTS, type Timeouts } from './timeouts.js';

/** Opens a connected (or connecting) socket; injectable so tests can dial fakes. */
export type Dialer = (host: string, port: number) => net.Socket;

export interface ClientOptions {
  host: string;
  port: number;
  /** Unix socket path (LMTP); `host`/`port` then only name the peer in logs. */
  socketPath?: string;
  session: SessionOptions;
  timeouts?: Partial<Timeouts>;
  dialer?: Dialer;
  /** Extra options for tls.connect (ca, minVersion, …); `rejectUnauthorized` follows the policy. */
  tlsOptions?: tls.ConnectionOptions;
  /** Bytes per body write. Default 64 KiB. */
  chunkSize?: number;
}

const BODY_CHUNK = 64 * 1024;

export class SmtpClient {
  private socket: net.Socket;
  private parser = new ReplyParser();
  private readonly session: ClientSession;
  private readonly timeouts: Timeouts;
  private timer: NodeJS.Timeout | null = null;
  private writingBody = false;
  /** Every body byte, terminator included, was handed to the socket (maybe not yet drained). */
  private bodyQueued = false;
  private ended = false;
  private opening: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private sending: { resolve: (r: RcptResult[]) => void; message: Buffer } | null = null;
  private closeWaiters: (() => void)[] = [];
  /** Called once when the connection is gone (for the connection cache). */
  onClose: (() => void) | null = null;

  private readonly listeners = {
    data: (chunk: Buffer) => this.onData(chunk),
    close: () => this.broken('lost', 'connection closed by the peer'),
    error: (err: Error) => this.broken('lost', err.message),
  };

  private constructor(
    socket: net.Socket,
    private readonly opts: ClientOptions,
  ) {
    this.socket = socket;
    this.session = new ClientSession(opts.session);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  }

  /** Dial, then run the session up to "ready". Rejects with SessionFailure. */
  static async connect(opts: ClientOptions): Promise<SmtpClient> {
    const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    let socket: net.Socket;
    try {
      socket = opts.dialer
        ? opts.dialer(opts.host, opts.port)
        : opts.socketPath !== undefined
          ? net.connect({ path: opts.socketPath })
          : net.connect({ host: opts.host, port: opts.port });
    } catch (err) {
      throw new SessionFailure({ kind: 'connect', error: errorText(err) }, { cause: err });
    }
    await waitConnected(socket, timeouts.connect);
    const client = new SmtpClient(socket, opts);
    await client.open();
    return client;
  }

  get usable(): boolean {
    return !this.ended && this.session.usable;
  }

  get extensions(): Extensions {
    return this.session.extensions;
  }

  get tlsActive(): boolean {
    return this.session.tlsActive;
  }

  /** Run one transaction; resolves with one result per recipient of `spec`. */
  send(spec: TransactionSpec, message: Buffer): Promise<RcptResult[]> {
    if (!this.usable) throw new TypeError('Cannot send on an SMTP client that is not ready');
    return new Promise((resolve) => {
      this.sending = { resolve, message };
      this.run(this.session.begin(spec));
    });
  }

  /** QUIT and close; resolves once the socket is closed (bounded by the quit timeout). */
  quit(): Promise<void> {
    if (this.ended) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    this.run(this.session.quit());
    return done;
  }

  /** An idle cached connection must not keep the process alive; a busy one must. */
  setIdle(idle: boolean): void {
    if (idle) this.socket.unref();
    else this.socket.ref();
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.shutdown(true);
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.opening = { resolve, reject };
      this.attach(this.socket);
      this.arm();
    });
  }

  private attach(s: net.Socket): void {
    s.on('data', this.listeners.data);
    s.on('close', this.listeners.close);
    s.on('error', this.listeners.error);
  }

  private detach(s: net.Socket): void {
    s.off('data', this.listeners.data);
    s.off('close', this.listeners.close);
    s.off('error', this.listeners.error);
  }

  private onData(chunk: Buffer): void {
    let replies;
    try {
      replies = this.parser.push(chunk);
    } catch (err) {
      if (err instanceof ReplySyntaxError) return this.broken('lost', err.message);
      throw err;
    }
    for (const r of replies) {
      if (this.ended) return;
      this.run(this.session.onReply(r));
    }
  }

  private run(actions: Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'write':
          if (!this.ended) this.socket.write(a.data, 'latin1');
          break;
        case 'starttls':
          this.upgrade();
          break;
        case 'body':
          void this.writeBody();
          break;
        case 'ready':
          this.opening?.resolve();
          this.opening = null;
          break;
        case 'done': {
          const s = this.sending;
          this.sending = null;
          s?.resolve(a.results);
          // A final reply while we were still writing the body: the peer and we disagree about
          // where the data ends, so this connection must not carry another transaction.
          if (this.writingBody && !this.bodyQueued) this.shutdown(true);
          break;
        }
        case 'failed':
          this.opening?.reject(new SessionFailure(a.failure));
          this.opening = null;
          break;
        case 'close':
          this.shutdown(false);
          break;
      }
    }
    this.arm();
  }

  /** (Re)start the timer for the reply the session now waits for. */
  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const stage = this.session.waiting;
    if (this.ended || stage === null || this.writingBody) return;
    this.timer = setTimeout(() => this.broken('timeout'), timeoutFor(this.timeouts, stage));
  }

  private broken(kind: 'lost' | 'timeout', error?: string): void {
    if (this.ended) return;
    this.run(this.session.onBroken(kind, error, this.writingBody ? 'data' : undefined));
    this.shutdown(true);
  }

  private upgrade(): void {
    const raw = this.socket;
    this.detach(raw);
    // The TLS socket reports the transport's errors from now on; keep the raw one from throwing.
    raw.on('error', () => undefined);
    if (this.parser.buffered > 0) {
      // Bytes after the 220 arrived in the clear: an injection attempt (RFC 3207 §5). Give up.
      this.attach(raw);
      this.run(this.session.onTlsFailed('the peer sent data after its STARTTLS reply'));
      return;
    }
    const policy = this.opts.session.tls ?? 'opportunistic';
    const servername =
      this.opts.tlsOptions?.servername ?? (net.isIP(this.opts.host) ? undefined : this.opts.host);
    const secure = tls.connect({
      ...this.opts.tlsOptions,
      socket: raw,
      host: this.opts.host, // names the peer for the certificate check when there is no SNI name
      rejectUnauthorized: policy === 'verify',
      ...(servername !== undefined ? { servername } : {}),
    });
    this.socket = secure;
    const onError = (err: Error) => {
      secure.off('secureConnect', onSecure);
      if (this.ended) return;
      this.run(this.session.onTlsFailed(err.message));
      this.shutdown(true);
    };
    const onSecure = () => {
      secure.off('error', onError);
      this.parser = new ReplyParser();
      this.attach(secure);
      this.run(this.session.onTlsUp());
    };
    secure.once('error', onError);
    secure.once('secureConnect', onSecure);
  }

  private async writeBody(): Promise<void> {
    const message = this.sending?.message;
    if (!message) return;
    this.writingBody = true;
    this.bodyQueued = false;
    this.arm();
    // The stored message is in memory already; encoding it whole costs one copy and keeps the
    // smuggling-safe encoder in one place (smtp/dot.ts). The writes are what must be paced.
    const wire = dotEncode(message);
    const size = this.opts.chunkSize ?? BODY_CHUNK;
    try {
      for (let off = 0; off < wire.length; off += size) {
        const end = Math.min(off + size, wire.length);
        const written = this.writeChunk(wire.subarray(off, end));
        if (end === wire.length) this.bodyQueued = true;
        if (!(await written)) return;
      }
    } finally {
      this.writingBody = false;
      this.arm();
    }
  }

  /** Write with backpressure; false when the connection went away (or timed out) meanwhile. */
  private writeChunk(buf: Buffer): Promise<boolean> {
    if (this.ended || !this.sending) return Promise.resolve(false);
    if (buf.length === 0 || this.socket.write(buf)) return Promise.resolve(true);
    const s = this.socket;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        cleanup();
        this.broken('timeout');
        resolve(false);
      }, this.timeouts.dataBlock);
      const onDrain = () => {
        cleanup();
        resolve(!this.ended);
      };
      const onClose = () => {
        cleanup();
        resolve(false);
      };
      const cleanup = () => {
        clearTimeout(t);
        s.off('drain', onDrain);
        s.off('close', onClose);
      };
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }

  private shutdown(now: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const s = this.socket;
    if (!this.ended) {
      this.ended = true;
      // A lost connection during open/send that the session did not report (defensive).
      this.opening?.reject(new SessionFailure({ kind: 'lost', stage: this.session.waiting ?? 'greeting' }));
      this.opening = null;
      s.once('close', () => this.closed());
      if (s.destroyed) queueMicrotask(() => this.closed());
    }
    if (now || s.destroyed) s.destroy();
    else {
      s.end();
      // The peer should close after our FIN; do not wait on it longer than the quit timeout.
      setTimeout(() => s.destroy(), Math.min(this.timeouts.quit ?? this.timeouts.command, 2000)).unref();
    }
  }

  private closed(): void {
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    const cb = this.onClose;
    this.onClose = null;
    cb?.();
  }
}

function waitConnected(socket: net.Socket, timeout: number): Promise<void> {
  if (socket.destroyed)
    return Promise.reject(new SessionFailure({ kind: 'connect', error: 'socket already closed' }));
  if (!socket.connecting) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const fail = (f: Failure, cause?: unknown) => {
      cleanup();
      socket.destroy();
      reject(new SessionFailure(f, { cause }));
    };
    const t = setTimeout(
      () => fail({ kind: 'connect', error: `no connection within ${timeout} ms`, errno: 'ETIMEDOUT' }),
      timeout,
    );
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (err: NodeJS.ErrnoException) =>
      fail({ kind: 'connect', error: errorText(err), ...(err.code ? { errno: err.code } : {}) }, err);
    const cleanup = () => {
      clearTimeout(t);
      socket.off('connect', onConnect);
      socket.off('error', onError);
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}
