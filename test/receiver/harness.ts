/** An in-process receiver with an in-memory sink, and a raw client, for receiver tests. */
import net from 'node:net';
import { SmtpServer, type ServerOptions, type ListenerSpec } from '../../src/receiver/server.js';
import { rcptPolicy } from '../../src/receiver/rcpt-policy.js';
import { DomainPolicy } from '../../src/policy/domains.js';
import { LocalUsers } from '../../src/policy/users.js';
import { CidrList } from '../../src/policy/cidr.js';
import type { Envelope, MessageSink } from '../../src/queue/types.js';

export interface Stored {
  envelope: Envelope;
  data: Buffer;
}

export class MemorySink implements MessageSink {
  stored: Stored[] = [];
  failNext: string | null = null;
  private n = 0;
  newId(): string {
    return `TEST${String(++this.n).padStart(6, '0')}`;
  }
  begin(envelope: Envelope) {
    const parts: Buffer[] = [];
    let aborted = false;
    return {
      write: (c: Buffer) => void parts.push(c),
      abort: () => void (aborted = true),
      commit: async () => {
        if (aborted) throw new Error('aborted writer committed');
        if (this.failNext) {
          const code = this.failNext;
          this.failNext = null;
          throw Object.assign(new Error('fail'), { code });
        }
        this.stored.push({ envelope, data: Buffer.concat(parts) });
      },
    };
  }
}

export async function startReceiver(
  over: Partial<ServerOptions> & { listeners?: ListenerSpec[]; users?: string[]; relayNets?: string[] } = {},
) {
  const sink = new MemorySink();
  const domains = new DomainPolicy({ local: ['example.test', 'localhost'], relay: ['relay.test'] });
  const users = new LocalUsers({ users: over.users ?? [] }, domains);
  const policy = rcptPolicy(domains, users, new CidrList(over.relayNets ?? []));
  const server = new SmtpServer({
    hostname: 'mx.example.test',
    listeners: over.listeners ?? [{ host: '127.0.0.1', port: 0, mode: 'mx' }],
    sink,
    policy,
    ...over,
    limits: { authFailDelayMs: 10, ...over.limits },
  });
  const bound = await server.start();
  return { server, sink, port: bound[0]!.port, bound };
}

/** A raw SMTP client: send bytes, read whole replies (multi-line aware). */
export class Raw {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }
  /** `from` picks the client's own loopback address (127.0.0.2, ...) to look like another host. */
  static async connect(port: number, host = '127.0.0.1', from?: string): Promise<Raw> {
    const s = net.connect({ port, host, ...(from ? { localAddress: from } : {}) });
    await new Promise((r, j) => s.once('connect', r).once('error', j));
    return new Raw(s);
  }
  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  send(s: string | Buffer) {
    this.sock.write(s);
  }
  /** One complete reply, e.g. "250-a\r\n250 b\r\n"; '' if the connection closed first. */
  async reply(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0];
      }
      if (this.closed) return '';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; have ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  async cmd(line: string): Promise<string> {
    this.send(line + '\r\n');
    return this.reply();
  }
  async waitClose(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }
  end() {
    this.sock.destroy();
  }
}
