/**
 * @module config/values
 * Readers for the value shapes the config holds as strings: `host:port`, networks (`10.0.0.0/8`), domain
 * names, DNS servers, route targets (`"127.0.0.1:2600"`, `"lmtp:/run/dovecot/lmtp"`), secrets
 * (`"env:VAR"`, `"file:path"`, `"scrypt:…"`). Each `check*` returns `undefined` when the value is fine,
 * else the phrase that follows "expected" in the error. Pure.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export interface HostPort {
  host: string;
  port: number;
}

/** `127.0.0.1:25`, `[::1]:25`, `mx.example.test:25` → host (brackets removed) and port; else undefined. */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.]+)?)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1].replace(/%.*$/, '')) === 6 ? { host: m[1], port } : undefined;
  const host = m[2] ?? '';
  if (isIP(host) === 0 && !isHostName(host)) return undefined;
  return { host, port };
}

export const HOST_PORT_EXPECT = 'host:port such as "127.0.0.1:2525" or "[::1]:2525"';

export function checkHostPort(text: string): string | undefined {
  return parseHostPort(text) ? undefined : HOST_PORT_EXPECT;
}

/** An ASCII host name: dot-separated labels of letters, digits and hyphens. */
export function isHostName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  return text
    .split('.')
    .every((l) => l.length > 0 && l.length <= 63 && /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(l));
}

/** A domain name, international names allowed (stored as the lowercased A-label). */
export function checkDomain(text: string): string | undefined {
  const ascii = domainToASCII(text);
  return ascii !== '' && isHostName(ascii) && isIP(text) === 0
    ? undefined
    : 'a domain name such as "example.test"';
}

/** `Example.TEST` → `example.test`; `bücher.example` → `xn--bcher-kva.example`. */
export function normalizeDomain(text: string): string {
  return domainToASCII(text) || text.toLowerCase();
}

export function checkRouteKey(text: string): string | undefined {
  return text === '*' || checkDomain(text) === undefined
    ? undefined
    : '"*" or a domain name such as "example.test"';
}

/** `10.0.0.0/8`, `::1/128`, or a bare address (which means that one host). */
export function checkNetwork(text: string): string | undefined {
  const [addr = '', prefix, extra] = text.split('/');
  const family = isIP(addr);
  const expect = 'a network such as "10.0.0.0/8", "192.0.2.1" or "2001:db8::/32"';
  if (family === 0 || extra !== undefined) return expect;
  if (prefix === undefined) return undefined;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return expect;
  return undefined;
}

/** A bare address gets its full-length prefix, so consumers always see `addr/len`. */
export function normalizeNetwork(text: string): string {
  if (text.includes('/')) return text;
  return `${text}/${isIP(text) === 4 ? 32 : 128}`;
}

/** A resolver address as node:dns accepts it: `1.1.1.1`, `127.0.0.1:5353`, `[::1]:5353`, `::1`. */
export function checkDnsServer(text: string): string | undefined {
  if (isIP(text) !== 0) return undefined;
  const hp = parseHostPort(text);
  return hp && isIP(hp.host) !== 0
    ? undefined
    : 'an IP address, optionally with a port: "127.0.0.1:5353" or "[::1]:53"';
}

export type RouteTarget =
  | { kind: 'smtp'; host: string; port: number }
  | { kind: 'lmtp'; host: string; port: number }
  | { kind: 'lmtp'; socketPath: string };

/**
 * Read a route written as a string: `host`, `host:port`, `[v6]:port` (SMTP, port 25 by default),
 * `lmtp:host:port` (port 24 by default), `lmtp:/absolute/path.sock`.
 */
export function parseRouteTarget(text: string): RouteTarget | undefined {
  if (text.startsWith('lmtp:')) {
    const rest = text.slice(5);
    if (rest.startsWith('/')) return rest.length > 1 ? { kind: 'lmtp', socketPath: rest } : undefined;
    const hp = parseHostOptionalPort(rest, 24);
    return hp ? { kind: 'lmtp', ...hp } : undefined;
  }
  const hp = parseHostOptionalPort(text, 25);
  return hp ? { kind: 'smtp', ...hp } : undefined;
}

function parseHostOptionalPort(text: string, defaultPort: number): HostPort | undefined {
  const hp = parseHostPort(text);
  if (hp) return hp;
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare) !== 0 || isHostName(bare)) return { host: bare, port: defaultPort };
  return undefined;
}

export function checkRouteTarget(text: string): string | undefined {
  return parseRouteTarget(text)
    ? undefined
    : 'a route such as "relay.example:587", "[::1]:2600", "lmtp:127.0.0.1:24" or "lmtp:/run/lmtp.sock"';
}

export function checkHost(text: string): string | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  return isIP(bare) !== 0 || isHostName(bare) ? undefined : 'a host name or IP address';
}

/** A local part (`alice`) or an address (`alice@example.test`): no spaces or control characters. */
export function checkMailboxish(text: string): string | undefined {
  if (text.startsWith('|') || text.startsWith('/'))
    return 'an address (commands and files are not supported)';
  return text.length > 0 && text.length <= 320 && !/[\s\x00-\x1f\x7f<>]/.test(text)
    ? undefined
    : 'a user name or an address such as "alice@example.test"';
}

const SCRYPT = /^scrypt:\d+:\d+:\d+:[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$/;

/** A password as written in the config: plain text, `scrypt:N:r:p:salt:hash`, `env:VAR` or `file:path`. */
export function checkSecret(text: string): string | undefined {
  if (text.length === 0) return 'a non-empty password, "scrypt:…", "env:VAR" or "file:path"';
  if (text.startsWith('env:') && !/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(text)) {
    return 'an environment variable name after "env:", such as "env:SMTP_PASSWORD"';
  }
  if (text.startsWith('file:') && text.length === 5) return 'a path after "file:"';
  if (text.startsWith('scrypt:') && !SCRYPT.test(text)) {
    return 'a hash from `ferrymail hash-password` ("scrypt:N:r:p:salt:hash")';
  }
  return undefined;
}

/** An unprivileged user or group to switch to: a name or a numeric id. */
export function checkAccount(text: string): string | undefined {
  return /^(?:\d+|[a-z_][a-z0-9_.-]*\$?)$/i.test(text) ? undefined : 'a user or group name, or a numeric id';
}
