/**
 * @module router/mx
 * Domain → ordered list of hosts to try (RFC 5321 §5.1). Pure apart from the injected
 * `MxResolver` and `random`:
 *
 * - MX records sorted by preference, equal preferences shuffled (§5.1: "randomized to spread the
 *   load"); each MX host expanded to its addresses (A then AAAA by default) through the same
 *   resolver, so a configured DNS server is honoured end to end and `HostCandidate.mx` keeps the
 *   name for TLS and DSN Remote-MTA.
 * - No MX records → implicit MX: the domain's own A/AAAA, preference 0.
 * - A single MX "." → null MX (RFC 7505): permanent `556 5.1.10`.
 * - NXDOMAIN → permanent `550 5.1.2`; SERVFAIL/timeouts → deferred `451 4.4.3`.
 * - If one of our own names (or addresses) is an MX host, it and every host of equal or worse
 *   preference are dropped; if nothing is left we were the best MX: permanent `554 5.4.6` loop.
 * - Address literals (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) route directly to the address.
 */
import { isIP } from 'node:net';
import type { HostCandidate } from '../delivery/types.js';
import type { DnsResult, MxResolver } from './resolver.js';

/** A routing decision that is not a next hop: a permanent failure or "try again later". */
export interface RouteError {
  kind: 'error';
  result: 'failed' | 'deferred';
  /** SMTP-style reply for the queue and the DSN, e.g. `550 5.1.2 ...`. */
  reply: string;
  /** RFC 3463 status, e.g. `5.1.2`. */
  status: string;
}

export type MxLookup = { kind: 'hosts'; hosts: HostCandidate[] } | RouteError;

export interface MxOptions {
  /** Uniform [0, 1) source for shuffling equal preferences. @default Math.random */
  random?: () => number;
  /** Port to connect to. @default 25 */
  port?: number;
  /** Our own host names (and, optionally, IP addresses) for the §5.1 "best MX is me" check. */
  selfNames?: readonly string[];
  /** Address families to use, in the order to try within one MX host. @default [4, 6] */
  families?: readonly (4 | 6)[];
}

export function routeError(
  result: 'failed' | 'deferred',
  code: number,
  status: string,
  text: string,
): RouteError {
  return { kind: 'error', result, reply: `${code} ${status} ${text}`, status };
}

/** Lowercase, strip one trailing root dot: MX exchanges come back as `mx.example.test` or `mx.example.test.`. */
export function normalizeHost(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** `[192.0.2.1]` → `192.0.2.1`, `[IPv6:2001:db8::1]` → `2001:db8::1`; undefined for anything else. */
export function parseAddressLiteral(domain: string): string | undefined {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return undefined;
  const inner = domain.slice(1, -1);
  if (/^ipv6:/i.test(inner)) {
    const ip = inner.slice(5);
    return isIP(ip) === 6 ? ip : undefined;
  }
  return isIP(inner) === 4 ? inner : undefined;
}

/** Shuffle in place with an injected random (Fisher-Yates), so tests can pin the order by seed. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

interface Addresses {
  addresses: string[];
  /** Set when a lookup failed temporarily (the host may have addresses we could not see). */
  temporary?: string;
  nxdomain: boolean;
}

async function lookupAddresses(
  resolver: MxResolver,
  host: string,
  families: readonly (4 | 6)[],
): Promise<Addresses> {
  if (isIP(host) !== 0) return { addresses: [host], nxdomain: false };
  const results = await Promise.all(
    families.map((f): Promise<DnsResult<string>> =>
      f === 4 ? resolver.resolve4(host) : resolver.resolve6(host),
    ),
  );
  const out: Addresses = { addresses: [], nxdomain: results.length > 0 };
  for (const r of results) {
    if (r.kind === 'ok') out.addresses.push(...r.records);
    if (r.kind === 'temporary') out.temporary = r.error;
    if (r.kind !== 'nxdomain') out.nxdomain = false;
  }
  return out;
}

/**
 * The hosts to try for `domain`, best first. `domain` is an ASCII (A-label) domain or an address
 * literal in brackets.
 */
export async function mxCandidates(
  domain: string,
  resolver: MxResolver,
  options: MxOptions = {},
): Promise<MxLookup> {
  const random = options.random ?? Math.random;
  const port = options.port ?? 25;
  const families = options.families ?? [4, 6];
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(
      `Cannot look up MX hosts: 'port' must be an integer 1-65535: current value is ${port}`,
    );
  }
  if (families.length === 0) {
    throw new RangeError(`Cannot look up MX hosts: 'families' must not be empty`);
  }
  const self = new Set((options.selfNames ?? []).map(normalizeHost));

  if (domain.startsWith('[')) {
    const ip = parseAddressLiteral(domain);
    if (ip === undefined) return routeError('failed', 553, '5.1.3', `unsupported address literal ${domain}`);
    if (self.has(normalizeHost(ip))) return loop(domain);
    return { kind: 'hosts', hosts: [{ host: ip, port, preference: 0 }] };
  }

  const name = normalizeHost(domain);
  if (name === '') return routeError('failed', 553, '5.1.3', 'empty domain');
  const mx = await resolver.resolveMx(name);

  if (mx.kind === 'nxdomain') return routeError('failed', 550, '5.1.2', `domain ${name} not found`);
  if (mx.kind === 'temporary') return dnsTrouble(name, `MX lookup: ${mx.error}`);
  if (mx.kind === 'nodata') return implicitMx(name, resolver, port, families, self);

  // RFC 7505 §3: a null MX is the only MX of its domain; "." among real MX records is ignored.
  const real = mx.records.filter((r) => normalizeHost(r.exchange) !== '');
  if (real.length === 0) {
    return routeError('failed', 556, '5.1.10', `domain ${name} does not accept mail (null MX)`);
  }

  const byPref = new Map<number, string[]>();
  for (const r of real) {
    const host = normalizeHost(r.exchange);
    const list = byPref.get(r.priority) ?? [];
    if (!list.includes(host)) list.push(host);
    byPref.set(r.priority, list);
  }
  const ordered: { host: string; preference: number }[] = [];
  for (const pref of [...byPref.keys()].sort((a, b) => a - b)) {
    for (const host of shuffle(byPref.get(pref) ?? [], random)) ordered.push({ host, preference: pref });
  }

  const resolved = await Promise.all(ordered.map((o) => lookupAddresses(resolver, o.host, families)));

  // §5.1: if we are an MX, only hosts strictly better than us may be used, or mail would loop.
  let selfPref = Infinity;
  ordered.forEach((o, i) => {
    const addrs = resolved[i]?.addresses ?? [];
    if (self.has(o.host) || addrs.some((a) => self.has(normalizeHost(a)))) {
      selfPref = Math.min(selfPref, o.preference);
    }
  });

  const hosts: HostCandidate[] = [];
  let temporary: string | undefined;
  let usable = 0;
  ordered.forEach((o, i) => {
    if (o.preference >= selfPref) return;
    usable++;
    const r = resolved[i];
    if (r?.temporary !== undefined) temporary = `${o.host}: ${r.temporary}`;
    for (const address of r?.addresses ?? []) {
      hosts.push({ host: address, port, preference: o.preference, mx: o.host });
    }
  });
  if (usable === 0) return loop(name);
  if (hosts.length > 0) return { kind: 'hosts', hosts };
  if (temporary !== undefined) return dnsTrouble(name, `address lookup for ${temporary}`);
  return routeError('failed', 550, '5.4.4', `unable to route: no MX host of ${name} has an address`);
}

async function implicitMx(
  name: string,
  resolver: MxResolver,
  port: number,
  families: readonly (4 | 6)[],
  self: Set<string>,
): Promise<MxLookup> {
  // RFC 5321 §5.1: no MX records → the domain itself is the implicit MX, preference 0.
  const r = await lookupAddresses(resolver, name, families);
  if (self.has(name) || r.addresses.some((a) => self.has(normalizeHost(a)))) return loop(name);
  if (r.addresses.length > 0) {
    return { kind: 'hosts', hosts: r.addresses.map((host) => ({ host, port, preference: 0, mx: name })) };
  }
  if (r.temporary !== undefined) return dnsTrouble(name, `address lookup: ${r.temporary}`);
  if (r.nxdomain) return routeError('failed', 550, '5.1.2', `domain ${name} not found`);
  return routeError('failed', 550, '5.1.2', `domain ${name} has no MX or address records`);
}

function loop(name: string): RouteError {
  return routeError('failed', 554, '5.4.6', `mail for ${name} loops back to myself`);
}

function dnsTrouble(name: string, detail: string): RouteError {
  return routeError('deferred', 451, '4.4.3', `temporary DNS failure for ${name} (${detail})`);
}
