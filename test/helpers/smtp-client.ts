/**
 * @module test/helpers/smtp-client
 * A tiny raw-socket SMTP/LMTP dialogue helper for tests. It sends exactly the bytes it is given
 * (so tests can send bare LFs, pipelined batches or broken syntax) and reads replies multi-line
 * aware (RFC 5321 §4.2.1: `250-` continues, `250 ` or a bare `250` ends). It never interprets codes:
 * the test decides what is right.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface SmtpReply {
  code: number;
  /** Text of each line, without code, separator or line end. */
  lines: string[];
  /** The reply as received, lines joined by `\n`, without the final line end: `250-a\n250 b`. */
  raw: string;
}

export interface SessionOptions {
  host?: string;
  /** Implicit TLS from the first byte (submissions, port 465 style). Certificates are not checked. */
  tls?: boolean;
  /** Default time `readReply` waits. Default 10 s. */
  timeoutMs?: number;
}

export interface RawSession {
  /** Write bytes as given: no line end is added. */
  send(data: string | Uint8Array): Promise<void>;
  /** Send `line` + CRLF and read one reply. */
  command(line: string, timeoutMs?: number): Promise<SmtpReply>;
  /** The next complete reply (waits for it). Rejects on a malformed line, close or timeout. */
  readReply(timeoutMs?: number): Promise<SmtpReply>;
  /** Upgrade the connection in place (after a 220 to STARTTLS). Certificates are not checked. */
  startTls(servername?: string): Promise<void>;
  /** Resolve with whatever arrives until the peer closes (or the timeout). */
  readUntilClose(timeoutMs?: number): Promise<string>;
  /** True once the peer closed the connection or it failed. */
  readonly closed: boolean;
  /** Bytes received and not yet consumed as replies. */
  readonly pending: string;
  /** Half-close and drop the socket. */
  close(): void;
}

const LINE = /^(\d{3})([ -]?)(.*)$/;

/** Open a connection. The greeting is not read: call `readReply()` first. */
export async function rawSession(port: number, opts: SessionOptions = {}): Promise<RawSession> {
  const host = opts.host ?? '127.0.0.1';
  const defaultTimeout = opts.timeoutMs ?? 10_000;
  let sock: net.Socket = await connect(port, host, opts.tls === true);
  let buf = '';
  let closed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const attach = (s: net.Socket) => {
    // latin1 keeps one char per byte, so 8-bit replies survive and lengths stay byte counts.
    s.setEncoding('latin1');
    s.on('data', (chunk: string) => {
      buf += chunk;
      notify();
    });
    s.on('error', () => {
      closed = true;
      notify();
    });
    s.on('close', () => {
      closed = true;
      notify();
    });
  };
  attach(sock);

  const waitChange = (deadline: number) =>
    new Promise<boolean>((resolve) => {
      const left = deadline - Date.now();
      if (left <= 0) return resolve(false);
      const timer = setTimeout(() => {
        wake = undefined;
        resolve(false);
      }, left);
      wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });

  /** Take one complete reply off the front of `buf`, or undefined if it is not all there yet. */
  const takeReply = (): SmtpReply | undefined => {
    const lines: string[] = [];
    let code = 0;
    let at = 0;
    for (;;) {
      const nl = buf.indexOf('\n', at);
      if (nl < 0) return undefined;
      const line = buf.slice(at, nl).replace(/\r$/, '');
      at = nl + 1;
      const m = LINE.exec(line);
      if (!m || (m[2] === '' && m[3] !== '')) {
        throw new Error(`malformed reply line ${JSON.stringify(line)} (buffer ${JSON.stringify(buf)})`);
      }
      const c = Number(m[1]);
      if (lines.length > 0 && c !== code) {
        throw new Error(`reply code changed inside a multi-line reply: ${JSON.stringify(buf.slice(0, at))}`);
      }
      code = c;
      lines.push(line);
      if (m[2] !== '-') break;
    }
    buf = buf.slice(at);
    return { code, lines: lines.map((l) => l.slice(4)), raw: lines.join('\n') };
  };

  const session: RawSession = {
    get closed() {
      return closed;
    },
    get pending() {
      return buf;
    },
    send(data) {
      return new Promise((resolve, reject) => {
        if (closed) return reject(new Error('cannot send: connection closed'));
        sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (err) =>
          err ? reject(err) : resolve(),
        );
      });
    },
    async readReply(timeoutMs = defaultTimeout) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = takeReply();
        if (r) return r;
        if (closed) throw new Error(`connection closed before a complete reply (got ${JSON.stringify(buf)})`);
        if (!(await waitChange(deadline))) {
          throw new Error(`no complete reply within ${timeoutMs} ms (got ${JSON.stringify(buf)})`);
        }
      }
    },
    async command(line, timeoutMs) {
      await session.send(line + '\r\n');
      return session.readReply(timeoutMs);
    },
    async startTls(servername = 'localhost') {
      if (buf !== '') throw new Error(`unread bytes before TLS: ${JSON.stringify(buf)}`);
      const plain = sock;
      plain.removeAllListeners('data');
      plain.removeAllListeners('close');
      plain.removeAllListeners('error');
      sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, servername, rejectUnauthorized: false }, () => resolve(s));
        s.once('error', reject);
      });
      attach(sock);
    },
    async readUntilClose(timeoutMs = defaultTimeout) {
      const deadline = Date.now() + timeoutMs;
      while (!closed && (await waitChange(deadline))) {
        // keep collecting until the close or the deadline
      }
      const all = buf;
      buf = '';
      return all;
    },
    close() {
      sock.end();
      sock.destroy();
      closed = true;
    },
  };
  return session;
}

function connect(port: number, host: string, implicitTls: boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s: net.Socket = implicitTls
      ? tls.connect({ host, port, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
      : net.connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One step: bytes to send (null: send nothing, just read), then the pattern the reply must match. */
export type DialogStep = readonly [send: string | null, expect: RegExp];

/**
 * Run a scripted dialogue and return the replies. A `send` string with no CR or LF in it gets CRLF
 * appended; one that holds a CR or LF is sent byte for byte (DATA bodies, pipelined batches, bare-LF
 * probes), and then exactly one reply is read: for a pipelined batch add `[null, /re/]` steps for
 * the later replies. Each `expect` is matched against the reply's `raw` text. The connection is
 * closed at the end (no QUIT is sent unless a step sends it).
 */
export async function dialog(
  port: number,
  steps: readonly DialogStep[],
  opts: SessionOptions = {},
): Promise<SmtpReply[]> {
  const s = await rawSession(port, opts);
  const replies: SmtpReply[] = [];
  try {
    for (const [i, [send, expect]] of steps.entries()) {
      if (send !== null) await s.send(/[\r\n]/.test(send) ? send : send + '\r\n');
      const r = await s.readReply();
      replies.push(r);
      if (!expect.test(r.raw)) {
        const said = send === null ? '(read only)' : JSON.stringify(send);
        throw new Error(`dialog step ${i} ${said}: reply ${JSON.stringify(r.raw)} does not match ${expect}`);
      }
    }
    return replies;
  } finally {
    s.close();
  }
}
