/**
 * @module policy/cidr
 * The `[relay] networks` list: clients in it may relay to any domain without AUTH (DESIGN
 * invariant 4). Pure.
 *
 * Entries are `address/prefix` or a bare address (a /32 or /128). Host bits below the prefix are
 * ignored (`10.1.2.3/8` means `10.0.0.0/8`). An IPv4-mapped IPv6 entry (`::ffff:10.0.0.0/104`) is
 * the IPv4 network it maps, and an IPv4-mapped client address is matched as IPv4, so a dual-stack
 * listener needs no extra entries. `::/0` covers IPv6 clients only; add `0.0.0.0/0` for IPv4.
 */
import { parseIp, formatIp, type IpAddress } from './ip.js';

interface Network {
  version: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

export class CidrList {
  readonly #networks: Network[];

  /** @throws RangeError naming the first entry that is not an address or address/prefix. */
  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries))
      throw new TypeError('Cannot build a CidrList: entries must be an array of strings');
    this.#networks = entries.map(parseEntry);
  }

  /** True when `ip` (any text form, `::ffff:a.b.c.d` included) lies in one of the networks. */
  contains(ip: string): boolean {
    const addr = parseIp(ip);
    if (addr === null) return false;
    return this.#networks.some((n) => n.version === addr.version && inNetwork(addr, n));
  }

  get size(): number {
    return this.#networks.length;
  }

  /** The canonical entries (`10.0.0.0/8`, `2001:db8::/32`), for logs and check-config. */
  toStrings(): string[] {
    return this.#networks.map((n) => `${formatIp(n)}/${n.prefix}`);
  }
}

function parseEntry(entry: string): Network {
  const bad = (why: string): RangeError =>
    new RangeError(`Invalid relay network entry ${JSON.stringify(entry)}: ${why}`);
  if (typeof entry !== 'string') throw bad('must be a string');
  const slash = entry.indexOf('/');
  const addrText = slash >= 0 ? entry.slice(0, slash) : entry;
  const prefixText = slash >= 0 ? entry.slice(slash + 1) : null;
  if (addrText.includes('%')) throw bad('zone identifiers are not allowed');
  const addr = parseIp(addrText);
  if (addr === null) throw bad('not an IPv4 or IPv6 address');
  const writtenV6 = addrText.includes(':');
  const writtenMax = writtenV6 ? 128 : 32;
  let prefix = writtenMax;
  if (prefixText !== null) {
    if (!/^\d{1,3}$/.test(prefixText)) throw bad('the prefix length must be a number');
    prefix = Number(prefixText);
    if (prefix > writtenMax) throw bad(`the prefix length must be 0-${writtenMax}`);
  }
  if (writtenV6 && addr.version === 4) {
    // An IPv4-mapped network: express it in IPv4 terms, as contains() sees mapped clients.
    if (prefix < 96) throw bad('an IPv4-mapped network needs a prefix of at least 96');
    prefix -= 96;
  }
  return { version: addr.version, bytes: mask(addr.bytes, prefix), prefix };
}

function mask(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function inNetwork(addr: IpAddress, n: Network): boolean {
  const masked = mask(addr.bytes, n.prefix);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== n.bytes[i]) return false;
  return true;
}
