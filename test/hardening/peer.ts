/**
 * @module test/hardening/peer
 * A recording SMTP peer on 127.0.0.1:0 for the attack and fault tests: it plays the next hop that
 * ferrymail relays to. By default it accepts everything; `behaviour(n)` picks, per connection
 * number, a misbehaviour (421 greeting, drop in the middle of DATA, stall after the data, ...).
 *
 * It records every RCPT it was offered and every message's raw DATA bytes exactly as they arrived
 * on the wire (dot-stuffed, terminator included), so a test can say "nothing was relayed" or
 * "the wire never carried a bare LF" without trusting any parser of ours.
 */
import net from 'node:net';

export type Behaviour =
  /** Answer everything with success. */
  | 'ok'
  /** 421 greeting, then close. */
  | 'greet-421'
  /** 354 to DATA, read a few bytes of the data, then close the socket. */
  | 'drop-mid-data'
  /** Take the whole data, then never answer (the client's data_done timeout must fire). */
  | 'stall-after-data'
  /** 421 to MAIL FROM, then close. */
  | 'mail-421';

export interface PeerMessage {
  /** Bytes between the 354 and the end of the terminator, exactly as received. */
  raw: Buffer;
  rcpts: string[];
  from: string;
}

export interface RecordingPeer {
  port: number;
  connections: number;
  /** Every RCPT TO argument offered, accepted or not. */
  rcpts: string[];
  /** Messages whose data was complete (terminator seen) and answered 250. */
  messages: PeerMessage[];
  /** Messages whose data reached the terminator, answered or not. */
  dataSeen: number;
  close(): Promise<void>;
}

const TERM = Buffer.from('\r\n.\r\n');

export async function startRecordingPeer(
  behaviour: (connection: number) => Behaviour = () => 'ok',
  port = 0,
): Promise<RecordingPeer> {
  const sockets = new Set<net.Socket>();
  const peer: RecordingPeer = {
    port: 0,
    connections: 0,
    rcpts: [],
    messages: [],
    dataSeen: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const how = behaviour(peer.connections++);
    if (how === 'greet-421') {
      sock.end('421 4.3.2 peer.test busy\r\n');
      return;
    }
    sock.write('220 peer.test ESMTP recording\r\n');
    let buf = Buffer.alloc(0);
    let inData = false;
    let from = '';
    let rcpts: string[] = [];
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          // The data starts right after the 354; a message may be empty ("." CRLF at once).
          const end = buf.subarray(0, 3).equals(Buffer.from('.\r\n')) ? 0 : buf.indexOf(TERM);
          if (how === 'drop-mid-data' && buf.length > 0) {
            sock.destroy();
            return;
          }
          if (end < 0) return;
          const len = end === 0 ? 3 : end + TERM.length;
          const raw = buf.subarray(0, len);
          buf = buf.subarray(len);
          inData = false;
          peer.dataSeen++;
          if (how === 'stall-after-data') return; // never answer
          peer.messages.push({ raw: Buffer.from(raw), rcpts, from });
          sock.write('250 2.0.0 queued as PEER' + peer.messages.length + '\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO')
          sock.write('250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n');
        else if (verb === 'HELO') sock.write('250 peer.test\r\n');
        else if (verb === 'MAIL') {
          if (how === 'mail-421') {
            sock.end('421 4.3.2 peer.test going down\r\n');
            return;
          }
          from = line.slice(10);
          rcpts = [];
          sock.write('250 2.1.0 ok\r\n');
        } else if (verb === 'RCPT') {
          const arg = line.slice(8);
          peer.rcpts.push(arg);
          rcpts.push(arg);
          sock.write('250 2.1.5 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          sock.end('221 2.0.0 bye\r\n');
          return;
        } else if (verb === 'RSET' || verb === 'NOOP') sock.write('250 2.0.0 ok\r\n');
        else sock.write('502 5.5.1 not here\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  peer.port = (server.address() as net.AddressInfo).port;
  return peer;
}

/**
 * The ferrymail config the attack and fault tests share: `ferry.test` local, 127.0.0.1 may relay,
 * mail for `route` (a domain, or `*`) goes to the recording peer on `peerPort`, retries every
 * second. `extra` adds or replaces top-level tables.
 */
export function relayToPeer(
  peerPort: number,
  route = 'peer.test',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    hostname: 'mx.ferry.test',
    domains: { local: ['ferry.test'] },
    relay: { networks: ['127.0.0.1/32'] },
    routes: { [route]: `127.0.0.1:${peerPort}` },
    queue: { retry: ['1s'] },
    log: { level: 'warn' },
    ...extra,
  };
}
