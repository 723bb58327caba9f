/**
 * @module router/resolver
 * The DNS seam of the router: an injectable `MxResolver` that answers MX, A and AAAA questions
 * with a result type instead of exceptions, so routing code can tell "this name does not exist"
 * (NXDOMAIN: permanent), "the name exists but has no such records" (NODATA: e.g. implicit MX,
 * RFC 5321 §5.1) and "DNS is broken right now" (SERVFAIL, timeout, refused: temporary, retry
 * later) apart. `DnsMxResolver` wraps `node:dns/promises` `Resolver` with configurable servers
 * (`["127.0.0.1:5353"]`, `["[::1]:53"]`); tests inject a table-driven fake instead.
 */
import { Resolver } from 'node:dns/promises';

export interface MxRecord {
  exchange: string;
  priority: number;
}

export type DnsResult<T> =
  | { kind: 'ok'; records: T[] }
  /** The name exists but has no records of this type (NOERROR, empty answer). */
  | { kind: 'nodata' }
  /** The name does not exist (NXDOMAIN). */
  | { kind: 'nxdomain' }
  /** SERVFAIL, timeout, refused, network trouble: ask again later. */
  | { kind: 'temporary'; error: string };

export interface MxResolver {
  resolveMx(domain: string): Promise<DnsResult<MxRecord>>;
  resolve4(host: string): Promise<DnsResult<string>>;
  resolve6(host: string): Promise<DnsResult<string>>;
}

export interface DnsMxResolverOptions {
  /** Name servers as `ip`, `ip:port` or `[ipv6]:port`; the system's servers when absent. */
  servers?: string[];
  /** Per-query timeout in milliseconds (c-ares doubles it on each retry). @default 5000 */
  timeoutMs?: number;
  /** Attempts per server. @default 2 */
  tries?: number;
}

/** c-ares error codes that mean "the name does not exist" or "no records of that type". */
const NXDOMAIN_CODES = new Set(['ENOTFOUND']);
const NODATA_CODES = new Set(['ENODATA']);

/** Map a `node:dns` rejection to a result; everything unknown is temporary (never bounce on doubt). */
export function classifyDnsError(err: unknown): DnsResult<never> {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  if (NXDOMAIN_CODES.has(code)) return { kind: 'nxdomain' };
  if (NODATA_CODES.has(code)) return { kind: 'nodata' };
  const msg = err instanceof Error ? err.message : String(err);
  return { kind: 'temporary', error: code ? `${code}: ${msg}` : msg };
}

export class DnsMxResolver implements MxResolver {
  readonly #resolver: Resolver;

  constructor(options: DnsMxResolverOptions = {}) {
    const timeout = options.timeoutMs ?? 5000;
    const tries = options.tries ?? 2;
    if (!Number.isInteger(timeout) || timeout <= 0) {
      throw new RangeError(
        `Cannot build a resolver: 'timeoutMs' must be a positive integer: current value is ${timeout}`,
      );
    }
    if (!Number.isInteger(tries) || tries <= 0) {
      throw new RangeError(
        `Cannot build a resolver: 'tries' must be a positive integer: current value is ${tries}`,
      );
    }
    this.#resolver = new Resolver({ timeout, tries });
    if (options.servers !== undefined && options.servers.length > 0) {
      // setServers throws a TypeError/Error naming the bad entry, which is what config loading wants.
      this.#resolver.setServers(options.servers);
    }
  }

  async resolveMx(domain: string): Promise<DnsResult<MxRecord>> {
    try {
      const rr = await this.#resolver.resolveMx(domain);
      if (rr.length === 0) return { kind: 'nodata' };
      return { kind: 'ok', records: rr.map((r) => ({ exchange: r.exchange, priority: r.priority })) };
    } catch (err) {
      return classifyDnsError(err);
    }
  }

  async resolve4(host: string): Promise<DnsResult<string>> {
    try {
      const rr = await this.#resolver.resolve4(host);
      return rr.length === 0 ? { kind: 'nodata' } : { kind: 'ok', records: rr };
    } catch (err) {
      return classifyDnsError(err);
    }
  }

  async resolve6(host: string): Promise<DnsResult<string>> {
    try {
      const rr = await this.#resolver.resolve6(host);
      return rr.length === 0 ? { kind: 'nodata' } : { kind: 'ok', records: rr };
    } catch (err) {
      return classifyDnsError(err);
    }
  }

  /** Abort queries in flight (shutdown). */
  cancel(): void {
    this.#resolver.cancel();
  }
}
