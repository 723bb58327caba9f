/**
 * @module bench/tools/smtp-wire
 * A minimal SMTP client connection for the benchmark tools: it sends lines and waits for
 * complete (possibly multi-line) replies, in order. Deliberately independent of ferrymail's
 * own code, so a bug there cannot hide in the measurement.
 */
import { connect, type Socket } from 'node:net';

export interface WireReply {
  code: number;
  lines: string[];
}

/** One client connection; replies are handed out in the order they arrive. */
export class SmtpWire {
  readonly socket: Socket;
  private buffered = '';
  private current: string[] = [];
  private readonly replies: WireReply[] = [];
  private readonly waiters: Array<{ resolve: (r: WireReply) => void; reject: (e: Error) => void }> = [];
  private failure: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Connects to host:port (loopback only) and resolves once connected. */
  static open(host: string, port: number): Promise<SmtpWire> {
    if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
      return Promise.reject(new RangeError(`loopback only: ${host}`));
    }
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => resolve(new SmtpWire(socket)));
      socket.once('error', reject);
    });
  }

  /** The next complete reply (the greeting first). */
  reply(): Promise<WireReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Writes one command line (CRLF added) and waits for its reply. */
  async command(line: string): Promise<WireReply> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, end).replace(/\r$/, '');
      this.buffered = this.buffered.slice(end + 1);
      this.current.push(line);
      // a reply ends with "NNN " or a bare "NNN"; "NNN-" continues it
      if (line.length >= 3 && line[3] !== '-') {
        const reply = { code: Number(line.slice(0, 3)), lines: this.current };
        this.current = [];
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(reply);
        else this.replies.push(reply);
      }
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

/** A test message of about `size` bytes: headers, then 76-character lines (no dots to stuff). */
export function makeMessage(size: number, from: string, to: string): string {
  const head =
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: ferrymail bench\r\n` +
    `Message-ID: <${Date.now().toString(36)}@bench.test>\r\n\r\n`;
  const line = 'x'.repeat(74) + '\r\n';
  let body = '';
  while (head.length + body.length + line.length <= size) body += line;
  return head + body;
}
