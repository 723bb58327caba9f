/**
 * @module policy/domains
 * Which domains this host is the final destination for (`[domains] local`) and which it accepts
 * from anyone to pass on (`[domains] relay`). Pure.
 *
 * Comparison is on the lowercased A-label form (Mailbox.domainAscii), so `Bücher.Example`,
 * `xn--bcher-kva.example` and `XN--BCHER-KVA.EXAMPLE` are one domain. An address literal
 * (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) is never a relay domain, and is local only when its
 * address is listed in `acceptLiterals` (our own listener addresses, opted in by the admin):
 * RFC 5321 §4.1.3 lets a host accept mail for its own literal, but nothing requires it, and an
 * open door for arbitrary literals would be an open relay.
 */
import type { Mailbox } from '../smtp/types.js';
import { isValidDomainName, domainToAscii } from '../smtp/address.js';
import { parseIp, formatIp } from './ip.js';

export interface DomainPolicyConfig {
  local: readonly string[];
  relay: readonly string[];
  /** IP addresses whose address literals count as local, e.g. `["192.0.2.1", "2001:db8::1"]`. */
  acceptLiterals?: readonly string[];
}

export type DomainClass = 'local' | 'relay' | 'remote';

/**
 * The lowercased A-label form of a domain name (one trailing dot dropped), or `null` when it is not
 * a valid RFC 5321 Domain (U-labels allowed). Address literals are not names: `null` for them.
 */
export function normalizeDomain(name: string): string | null {
  if (typeof name !== 'string') return null;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || !isValidDomainName(bare, true)) return null;
  return domainToAscii(bare);
}

/**
 * The address a literal names, in canonical text, or `null` when `text` is not an IP literal.
 * Takes the bracketed wire form (`[IPv6:::1]`) or the bare address (Mailbox.domainAscii).
 */
export function literalAddress(text: string): string | null {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (/^ipv6:/i.test(s)) s = s.slice(5);
  else if (s.includes(':') && text.startsWith('[')) return null; // a general literal such as [x400:...]
  const ip = parseIp(s);
  return ip === null ? null : formatIp(ip);
}

export class DomainPolicy {
  readonly #local: ReadonlySet<string>;
  readonly #relay: ReadonlySet<string>;
  readonly #literals: ReadonlySet<string>;

  /** @throws RangeError naming a domain or address that cannot be used, or one listed as both local and relay. */
  constructor(config: DomainPolicyConfig) {
    if (config === null || typeof config !== 'object') {
      throw new TypeError('Cannot build a DomainPolicy: config must be an object');
    }
    this.#local = toNameSet(config.local, 'local');
    this.#relay = toNameSet(config.relay, 'relay');
    for (const d of this.#local) {
      if (this.#relay.has(d))
        throw new RangeError(`Domain ${JSON.stringify(d)} is listed as both local and relay`);
    }
    const literals = new Set<string>();
    for (const entry of config.acceptLiterals ?? []) {
      const ip = typeof entry === 'string' ? parseIp(entry) : null;
      if (ip === null)
        throw new RangeError(`Invalid acceptLiterals entry ${JSON.stringify(entry)}: not an IP address`);
      literals.add(formatIp(ip));
    }
    this.#literals = literals;
  }

  /** `domainAscii` is a Mailbox.domainAscii (or an address literal, bracketed or not). */
  isLocal(domainAscii: string): boolean {
    const literal = literalAddress(domainAscii);
    if (literal !== null) return this.#literals.has(literal);
    return this.#local.has(lower(domainAscii));
  }

  /** Address literals are never relay domains. */
  isRelay(domainAscii: string): boolean {
    if (literalAddress(domainAscii) !== null) return false;
    return this.#relay.has(lower(domainAscii));
  }

  /** Classify a parsed mailbox's domain, honouring its kind (a general literal is always remote). */
  classify(m: Mailbox): DomainClass {
    if (m.domainKind === 'general') return 'remote';
    if (m.domainKind === 'ipv4' || m.domainKind === 'ipv6') {
      const literal = literalAddress(m.domainAscii) ?? literalAddress(m.domain);
      return literal !== null && this.#literals.has(literal) ? 'local' : 'remote';
    }
    if (this.isLocal(m.domainAscii)) return 'local';
    if (this.isRelay(m.domainAscii)) return 'relay';
    return 'remote';
  }

  /** The local domains, A-label form, in no promised order. */
  get localDomains(): string[] {
    return [...this.#local];
  }

  get relayDomains(): string[] {
    return [...this.#relay];
  }
}

function toNameSet(list: readonly string[] | undefined, key: string): Set<string> {
  if (list === undefined) return new Set();
  if (!Array.isArray(list))
    throw new TypeError(`Cannot build a DomainPolicy: '${key}' must be an array of strings`);
  const out = new Set<string>();
  for (const d of list) {
    const n = typeof d === 'string' ? normalizeDomain(d) : null;
    if (n === null) throw new RangeError(`Invalid ${key} domain ${JSON.stringify(d)}: not a domain name`);
    out.add(n);
  }
  return out;
}

/** Mailbox.domainAscii is lowercase already; callers passing other strings get the same answer. */
function lower(s: string): string {
  const n = normalizeDomain(s);
  return n ?? s.toLowerCase();
}
