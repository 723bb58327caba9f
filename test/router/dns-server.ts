/**
 * @module test/router/dns-server
 * A tiny authoritative DNS server for tests (RFC 1035 §4 wire format): UDP on 127.0.0.1, port 0,
 * answering MX, A and AAAA questions from a table. Names missing from the table are NXDOMAIN; a
 * name whose entry has `rcode: 'SERVFAIL'` answers SERVFAIL; a present name without records of
 * the asked type answers NOERROR with no answer (NODATA).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

export interface ZoneEntry {
  MX?: [preference: number, exchange: string][];
  A?: string[];
  AAAA?: string[];
  rcode?: 'SERVFAIL' | 'REFUSED';
}

export interface DnsServer {
  address: string;
  /** Questions seen, as `name/TYPE`, for assertions. */
  queries: string[];
  close(): Promise<void>;
}

const TYPES: Record<number, 'A' | 'MX' | 'AAAA'> = { 1: 'A', 15: 'MX', 28: 'AAAA' };
const RCODES = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

function encodeName(name: string): Buffer {
  const labels = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l.length > 0);
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Read the first question: name (lowercased), type, and where the question section ends. */
function readQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  let off = 12;
  const labels: string[] = [];
  while (off < msg.length) {
    const len = msg[off] ?? 0;
    off++;
    if (len === 0) break;
    if (len >= 0xc0) return undefined;
    labels.push(msg.subarray(off, off + len).toString('ascii'));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off), end: off + 4 };
}

function answer(type: 'A' | 'MX' | 'AAAA', entry: ZoneEntry): Buffer[] {
  const rr = (rtype: number, rdata: Buffer) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    h.writeUInt16BE(rtype, 2);
    h.writeUInt16BE(1, 4); // IN
    h.writeUInt32BE(60, 6);
    h.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([h, rdata]);
  };
  if (type === 'MX') {
    return (entry.MX ?? []).map(([pref, exchange]) => {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(pref);
      return rr(15, Buffer.concat([p, encodeName(exchange)]));
    });
  }
  if (type === 'A') {
    return (entry.A ?? [])
      .filter((ip) => isIP(ip) === 4)
      .map((ip) => rr(1, Buffer.from(ip.split('.').map(Number))));
  }
  return (entry.AAAA ?? []).filter((ip) => isIP(ip) === 6).map((ip) => rr(28, ipv6Bytes(ip)));
}

export async function startDnsServer(zone: Record<string, ZoneEntry>): Promise<DnsServer> {
  const socket: Socket = createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const q = readQuestion(msg);
    if (!q) return;
    const type = TYPES[q.type];
    queries.push(`${q.name}/${type ?? q.type}`);
    const entry = zone[q.name];
    let rcode = entry === undefined ? RCODES.NXDOMAIN : RCODES.NOERROR;
    if (entry?.rcode) rcode = RCODES[entry.rcode];
    const answers = entry && rcode === RCODES.NOERROR && type ? answer(type, entry) : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    const rd = (msg[2] ?? 0) & 0x01;
    header.writeUInt16BE(0x8000 | 0x0400 | (rd << 8) | 0x0080 | rcode, 2); // QR, AA, RD, RA, RCODE
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([header, msg.subarray(12, q.end), ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
