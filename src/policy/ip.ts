/**
 * @module policy/ip
 * IP address text to bytes, for the relay-network check (policy/cidr.ts) and for comparing address
 * literals with our own listener addresses (policy/domains.ts). Pure.
 *
 * Only the strict forms are accepted: dotted-quad IPv4 without leading zeros, and RFC 4291 IPv6
 * text (with `::` and an optional dotted-quad tail). An IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 client) is returned as the
 * IPv4 address, so one rule matches the client however the socket spelled it.
 */
import { isIP } from 'node:net';

export interface IpAddress {
  version: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Parse an IP address; `null` when `text` is not one. A `%zone` suffix is accepted and dropped. */
export function parseIp(text: string): IpAddress | null {
  const zone = text.indexOf('%');
  const s = zone >= 0 && isIP(text) === 6 ? text.slice(0, zone) : text;
  const kind = isIP(s);
  if (kind === 4) return { version: 4, bytes: parseV4(s) };
  if (kind !== 6) return null;
  const bytes = parseV6(s);
  if (bytes === null) return null;
  if (isMappedV4(bytes)) return { version: 4, bytes: bytes.slice(12) };
  return { version: 6, bytes };
}

/** The canonical text of an address (IPv4 dotted quad; IPv6 as 8 lowercase hex groups, `::` compressed). */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return Array.from(ip.bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0));
  // Compress the longest run of two or more zero groups (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function parseV4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map((p) => Number(p)));
}

function parseV6(s: string): Uint8Array | null {
  let tail: Uint8Array | null = null;
  let head = s;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = s.slice(lastColon + 1);
    if (isIP(v4) !== 4) return null;
    tail = parseV4(v4);
    // Keep the colon(s) before the tail so `::1.2.3.4` still splits on `::`.
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const toGroups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const left = toGroups(halves[0] ?? '');
  const right = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...left, ...new Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? '';
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}
