/**
 * @module test/router/fake-resolver
 * A table-driven `MxResolver` for unit tests, and a seeded random. A name missing from the table
 * is NXDOMAIN; a present name without a record type is NODATA; `'SERVFAIL'` is a temporary error.
 */
import type { DnsResult, MxRecord, MxResolver } from '../../src/router/resolver.js';

type Answer<T> = T[] | 'SERVFAIL' | 'NXDOMAIN';

export interface FakeEntry {
  MX?: Answer<[preference: number, exchange: string]>;
  A?: Answer<string>;
  AAAA?: Answer<string>;
}

export class FakeResolver implements MxResolver {
  readonly calls: string[] = [];
  constructor(readonly zone: Record<string, FakeEntry>) {}

  #answer<T, R>(name: string, type: keyof FakeEntry, map: (v: T) => R): DnsResult<R> {
    this.calls.push(`${name}/${type}`);
    const entry = this.zone[name];
    if (!entry) return { kind: 'nxdomain' };
    const v = entry[type] as Answer<T> | undefined;
    if (v === undefined || (Array.isArray(v) && v.length === 0)) return { kind: 'nodata' };
    if (v === 'SERVFAIL') return { kind: 'temporary', error: 'ESERVFAIL: fake' };
    if (v === 'NXDOMAIN') return { kind: 'nxdomain' };
    return { kind: 'ok', records: v.map(map) };
  }

  async resolveMx(domain: string): Promise<DnsResult<MxRecord>> {
    return this.#answer<[number, string], MxRecord>(domain, 'MX', ([priority, exchange]) => ({
      priority,
      exchange,
    }));
  }
  async resolve4(host: string): Promise<DnsResult<string>> {
    return this.#answer<string, string>(host, 'A', (a) => a);
  }
  async resolve6(host: string): Promise<DnsResult<string>> {
    return this.#answer<string, string>(host, 'AAAA', (a) => a);
  }
}

export { seeded } from '../helpers/seeded.js';
