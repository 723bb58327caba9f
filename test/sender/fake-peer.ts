/**
 * @module test/sender/fake-peer
 * A scripted SMTP/LMTP peer on 127.0.0.1:0 for the sender tests. Each connection plays one script:
 * a table of `[expected command, reply]` rows. `expected` is the exact command line (or a RegExp);
 * the reply is wire text with `\n` between lines, or a directive:
 *   DROP       close the connection at once, no reply
 *   HANG       never reply
 *   TLS        reply `220 ready` and upgrade to TLS (needs `tls` in options)
 *   TLS-BREAK  reply `220 ready`, then send garbage instead of a handshake and close
 *   THEN-DROP:<reply>  send the reply, then close at the first bytes the client sends after it
 *   STALL:<reply>      send the reply, then stop reading (the client's writes back up)
 * After a `354` reply the peer collects the data up to CRLF.CRLF and matches the next row against
 * the literal `<data>`; the raw bytes (dot-stuffed, with terminator) are kept in `messages`.
 * A row's reply may be prefixed `DELAY:<ms>:` to answer late. Anything off script gets
 * `500 off script` and is recorded in `errors`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export type Row = [string | RegExp, string];

export interface FakePeerOptions {
  /** One script per connection, in order; the last one repeats. */
  scripts: Row[][];
  /** Greeting per connection (default `220 fake.test ESMTP`); `HANG` / `DROP` / `DELAY:` allowed. */
  greeting?: string | string[];
  tls?: { key: Buffer; cert: Buffer };
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Listen on this unix socket path instead. */
  path?: string;
}

export interface FakePeer {
  port: number;
  host: string;
  /** Raw chunks as they arrived, per connection. */
  packets: string[][];
  /** Command lines per connection. */
  commands: string[][];
  /** Raw DATA bytes (dot-stuffed, terminator included), in order. */
  messages: Buffer[];
  errors: string[];
  connections: number;
  close(): Promise<void>;
}

export async function startFakePeer(opts: FakePeerOptions): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const peer: FakePeer = {
    port: 0,
    host: opts.host ?? '127.0.0.1',
    packets: [],
    commands: [],
    messages: [],
    errors: [],
    connections: 0,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const server = net.createServer((raw) => {
    const conn = peer.connections++;
    const script = opts.scripts[Math.min(conn, opts.scripts.length - 1)] ?? [];
    const greetings = Array.isArray(opts.greeting) ? opts.greeting : [opts.greeting ?? '220 fake.test ESMTP'];
    const greeting = greetings[Math.min(conn, greetings.length - 1)] as string;
    const packets: string[] = [];
    const commands: string[] = [];
    peer.packets.push(packets);
    peer.commands.push(commands);
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined);

    let sock: net.Socket = raw;
    let row = 0;
    let buf = Buffer.alloc(0);
    let inData = false;
    let dead = false;
    let dropOnData = false;

    const send = (text: string, after?: () => void) => {
      if (text === 'HANG') return;
      if (text === 'DROP') {
        dead = true;
        sock.destroy();
        return;
      }
      const m = /^DELAY:(\d+):([\s\S]*)$/.exec(text);
      if (m) return later(Number(m[1]), () => send(m[2] as string, after));
      if (!sock.destroyed) sock.write(text.split('\n').join('\r\n') + '\r\n');
      after?.();
    };

    const answer = (line: string) => {
      const r = script[row];
      const expected = r?.[0];
      const ok = expected instanceof RegExp ? expected.test(line) : expected === line;
      if (!r || !ok) {
        peer.errors.push(
          `conn ${conn} row ${row}: got ${JSON.stringify(line)}, expected ${String(expected)}`,
        );
        send('500 5.5.1 off script');
        return;
      }
      row++;
      let reply = r[1];
      if (reply.startsWith('STALL:')) {
        sock.write(reply.slice('STALL:'.length) + '\r\n');
        sock.pause();
        return;
      }
      if (reply.startsWith('THEN-DROP:')) {
        reply = reply.slice('THEN-DROP:'.length);
        dropOnData = true;
      }
      if (reply === 'TLS' || reply === 'TLS-BREAK') {
        sock.write('220 2.0.0 ready\r\n');
        if (reply === 'TLS-BREAK') {
          dead = true;
          sock.write('this is not a TLS server hello\r\n');
          later(20, () => sock.destroy());
          return;
        }
        upgrade();
        return;
      }
      send(reply, () => {
        if (/^354/.test(reply)) inData = true;
        if (/^221/.test(reply)) later(5, () => sock.end());
      });
    };

    const pump = () => {
      while (!dead) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          const startEnd = buf.subarray(0, 3).toString('latin1') === '.\r\n';
          if (end < 0 && !startEnd) return;
          const len = startEnd ? 3 : end + 5;
          peer.messages.push(Buffer.from(buf.subarray(0, len)));
          buf = buf.subarray(len);
          inData = false;
          answer('<data>');
          continue;
        }
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        commands.push(line);
        answer(line);
      }
    };

    const onData = (chunk: Buffer) => {
      if (dead) return;
      if (dropOnData) {
        dead = true;
        sock.destroy();
        return;
      }
      packets.push(chunk.toString('latin1'));
      buf = Buffer.concat([buf, chunk]);
      pump();
    };

    const upgrade = () => {
      if (!opts.tls) throw new TypeError('fake peer: TLS row without tls options');
      raw.off('data', onData);
      const secure = new tls.TLSSocket(raw, { isServer: true, key: opts.tls.key, cert: opts.tls.cert });
      secure.on('error', () => undefined);
      sock = secure;
      buf = Buffer.alloc(0);
      secure.on('data', onData);
    };

    raw.on('data', onData);
    send(greeting);
  });
  if (opts.path !== undefined) {
    const path = opts.path;
    await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  } else {
    await new Promise<void>((resolve) => server.listen(0, peer.host, () => resolve()));
    peer.port = (server.address() as net.AddressInfo).port;
  }
  return peer;
}

/** The reply to EHLO offering these extensions: `ehlo('PIPELINING', 'SIZE 1000')`. */
export function ehlo(...exts: string[]): string {
  const lines = ['fake.test hello', ...exts];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\n');
}
