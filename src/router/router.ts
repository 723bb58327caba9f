/**
 * @module router/router
 * Recipient address → next hop. The decision depends on the domain only, in this order:
 *
 * 1. a route for exactly this domain (`routes["example.test"]`), even for a local domain (so a
 *    local domain can be handed to Dovecot over LMTP);
 * 2. a local domain → `{ kind: 'local' }`;
 * 3. a route for a parent domain (`routes[".example.test"]` matches `a.example.test`);
 * 4. the catch-all route `routes["*"]` (smarthost) for every remote domain;
 * 5. MX lookup (router/mx.ts), with the §5.1 "we are the best MX" loop check.
 *
 * Route values: `host`, `host:port`, `[ipv6]:port` (optionally prefixed `smtp:`) → SMTP to that
 * host with no MX lookup; `lmtp:host:port`, `lmtp:[ipv6]:port`, `lmtp:/path/to.sock` → LMTP; or
 * `{ host, port, tls, auth }`. Hops with the same `key` share one transaction (DESIGN invariant 3):
 * `route:<host>:<port>` for a route (several domains may share it), `mx:<domain>` for MX,
 * `lmtp:<host>:<port>` / `lmtp:<path>` for LMTP. Relay domains route like any remote domain.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type { NextHop, TlsPolicy } from '../delivery/types.js';
import { mxCandidates, normalizeHost, routeError, type RouteError } from './mx.js';
import type { MxResolver } from './resolver.js';

export type { RouteError } from './mx.js';

export interface RouteSpec {
  host: string;
  /** @default 25 */
  port?: number;
  /** @default the Router's `tls` */
  tls?: TlsPolicy;
  /** `password` is the config file's spelling (config/schema.ts RouteConfig). */
  auth?: { user: string; pass: string } | { user: string; password: string };
}

export interface RouterOptions {
  localDomains: readonly string[];
  /** Domains we accept for and relay onward; routed like other remote domains. */
  relayDomains?: readonly string[];
  routes?: Readonly<Record<string, string | RouteSpec>>;
  resolver: MxResolver;
  /** Our host names (and addresses) for the MX loop check. */
  selfNames?: readonly string[];
  /** For shuffling equal MX preferences. @default Math.random */
  random?: () => number;
  /** Port for MX delivery. @default 25 */
  mxPort?: number;
  /** TLS policy for MX delivery and for routes without their own (`delivery.tls`). @default 'opportunistic' */
  tls?: TlsPolicy;
  /** Address families for MX hosts, in order. @default [4, 6] */
  families?: readonly (4 | 6)[];
}

type StaticHop = Exclude<NextHop, { kind: 'local' }>;

const TLS_POLICIES: readonly TlsPolicy[] = ['none', 'opportunistic', 'require', 'verify'];

function parsePort(text: string, where: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new TypeError(`${where}: port must be 1-65535: current value is '${text}'`);
  }
  return port;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, bare IPv6 → host and port. */
function parseHostPort(text: string, defaultPort: number, where: string): { host: string; port: number } {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    const host = end > 0 ? text.slice(1, end) : '';
    const rest = end > 0 ? text.slice(end + 1) : '';
    if (isIP(host) !== 6 || (rest !== '' && !rest.startsWith(':'))) {
      throw new TypeError(`${where}: expected [ipv6]:port: current value is '${text}'`);
    }
    return { host, port: rest === '' ? defaultPort : parsePort(rest.slice(1), where) };
  }
  if (isIP(text) === 6) return { host: text, port: defaultPort };
  const colon = text.lastIndexOf(':');
  const host = colon >= 0 ? text.slice(0, colon) : text;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$/.test(host)) {
    throw new TypeError(`${where}: expected host:port: current value is '${text}'`);
  }
  return {
    host: normalizeHost(host),
    port: colon >= 0 ? parsePort(text.slice(colon + 1), where) : defaultPort,
  };
}

/** Parse one `[routes]` value; errors name the route key so config loading can report it. */
export function parseRoute(
  name: string,
  value: string | RouteSpec,
  defaultTls: TlsPolicy = 'opportunistic',
): StaticHop {
  const where = `routes."${name}"`;
  if (typeof value === 'object' && value !== null) {
    if (typeof value.host !== 'string' || value.host === '')
      throw new TypeError(`${where}.host: must be a host name`);
    const hp = parseHostPort(value.host, value.port ?? 25, `${where}.host`);
    if (value.port !== undefined) parsePort(String(value.port), `${where}.port`);
    const tls = value.tls ?? defaultTls;
    if (!TLS_POLICIES.includes(tls)) {
      throw new TypeError(
        `${where}.tls: must be one of ${TLS_POLICIES.join(', ')}: current value is '${String(tls)}'`,
      );
    }
    const hop: StaticHop = {
      kind: 'smtp',
      // Same host and port but other credentials or TLS policy is another transaction.
      key: `route:${hostKey(hp.host)}:${hp.port}${value.auth ? `:${value.auth.user}` : ''}${value.tls ? `/${tls}` : ''}`,
      domain: name,
      hosts: [{ host: hp.host, port: hp.port, preference: 0 }],
      tls,
    };
    if (value.auth) {
      hop.auth = {
        user: value.auth.user,
        pass: 'pass' in value.auth ? value.auth.pass : value.auth.password,
      };
    }
    return hop;
  }
  if (typeof value !== 'string' || value === '') throw new TypeError(`${where}: must be a string or a table`);
  if (/^lmtp:/i.test(value)) {
    const rest = value.slice(5);
    if (rest.startsWith('/')) return { kind: 'lmtp', key: `lmtp:${rest}`, socketPath: rest };
    const hp = parseHostPort(rest, 24, where);
    return { kind: 'lmtp', key: `lmtp:${hostKey(hp.host)}:${hp.port}`, host: hp.host, port: hp.port };
  }
  const hp = parseHostPort(value.replace(/^smtp:/i, ''), 25, where);
  return {
    kind: 'smtp',
    key: `route:${hostKey(hp.host)}:${hp.port}`,
    domain: name,
    hosts: [{ host: hp.host, port: hp.port, preference: 0 }],
    tls: defaultTls,
  };
}

function hostKey(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Letters, digits and inner hyphens in non-empty labels: nothing for IDNA to map or refuse. */
const PLAIN_LDH = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;

/** The routing form of an address's domain: lowercase A-label, or the literal as given (lowercased). */
export function routingDomain(domain: string): string | undefined {
  if (domain.startsWith('[')) return domain.toLowerCase();
  // Plain ASCII needs no IDNA mapping (and domainToASCII is the costly part of routing a recipient).
  const ascii =
    PLAIN_LDH.test(domain) && !/(^|\.)xn--/i.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
  return ascii === '' ? undefined : normalizeHost(ascii);
}

export class Router {
  readonly #local: Set<string>;
  readonly #relay: Set<string>;
  readonly #routes = new Map<string, StaticHop>();
  readonly #options: RouterOptions;

  constructor(options: RouterOptions) {
    this.#options = options;
    this.#local = new Set(options.localDomains.map((d) => routingDomain(d) ?? d.toLowerCase()));
    this.#relay = new Set((options.relayDomains ?? []).map((d) => routingDomain(d) ?? d.toLowerCase()));
    for (const [name, value] of Object.entries(options.routes ?? {})) {
      const key =
        name === '*'
          ? '*'
          : name.startsWith('.')
            ? '.' + (routingDomain(name.slice(1)) ?? '')
            : routingDomain(name);
      if (key === undefined || key === '.') throw new TypeError(`routes."${name}": not a valid domain`);
      this.#routes.set(key, parseRoute(name, value, options.tls ?? 'opportunistic'));
    }
  }

  isLocal(domain: string): boolean {
    const d = routingDomain(domain);
    return d !== undefined && this.#local.has(d);
  }

  isRelay(domain: string): boolean {
    const d = routingDomain(domain);
    return d !== undefined && this.#relay.has(d);
  }

  /** Route one recipient address (`local@domain`, or bare `postmaster`). Never rejects. */
  async route(address: string): Promise<NextHop | RouteError> {
    const at = address.lastIndexOf('@');
    if (at < 0) {
      // RFC 5321 §4.1.1.3: <Postmaster> without a domain is ours.
      if (address.toLowerCase() === 'postmaster') return { kind: 'local' };
      return routeError('failed', 553, '5.1.3', `bad recipient address syntax <${address}>`);
    }
    if (at === 0) return routeError('failed', 553, '5.1.3', `bad recipient address syntax <${address}>`);
    return this.routeDomain(address.slice(at + 1));
  }

  /** Route by domain; the answer is the same for every address in it (callers may cache it). */
  async routeDomain(rawDomain: string): Promise<NextHop | RouteError> {
    const domain = routingDomain(rawDomain);
    if (domain === undefined || domain === '') {
      return routeError('failed', 553, '5.1.3', `bad recipient domain ${rawDomain}`);
    }
    const exact = this.#routes.get(domain);
    if (exact) return exact;
    if (this.#local.has(domain)) return { kind: 'local' };
    if (!domain.startsWith('[')) {
      for (let dot = domain.indexOf('.'); dot >= 0; dot = domain.indexOf('.', dot + 1)) {
        const parent = this.#routes.get(domain.slice(dot));
        if (parent) return parent;
      }
    }
    const star = this.#routes.get('*');
    if (star) return star;
    try {
      const mxOptions: Parameters<typeof mxCandidates>[2] = {};
      if (this.#options.random) mxOptions.random = this.#options.random;
      if (this.#options.mxPort !== undefined) mxOptions.port = this.#options.mxPort;
      if (this.#options.selfNames) mxOptions.selfNames = this.#options.selfNames;
      if (this.#options.families) mxOptions.families = this.#options.families;
      const r = await mxCandidates(domain, this.#options.resolver, mxOptions);
      if (r.kind === 'error') return r;
      return {
        kind: 'smtp',
        key: `mx:${domain}`,
        domain,
        hosts: r.hosts,
        tls: this.#options.tls ?? 'opportunistic',
      };
    } catch (err) {
      // A resolver that throws instead of returning a result is a bug, but not the message's fault.
      const msg = err instanceof Error ? err.message : String(err);
      return routeError('deferred', 451, '4.4.3', `routing ${domain} failed: ${msg}`);
    }
  }
}
