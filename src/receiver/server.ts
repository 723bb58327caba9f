/**
 * @module receiver/server
 * The receiver-SMTP listeners: plain (`mx`, `submission`) and implicit-TLS (`submissions`, RFC
 * 8314) sockets, IPv4 and IPv6, with connection limits in total and per client address (DESIGN
 * invariant 6) and a graceful stop: idle sessions get 421 at once, sessions in a transaction may
 * finish it within the grace period.
 */
import net from 'node:net';
import tls from 'node:tls';
import { formatReply } from '../smtp/reply.js';
import { Connection } from './connection.js';
import { R } from './replies.js';
import { Session, type SessionConfig, type SessionPolicy, type ListenerMode } from './session.js';
import type { MessageSink } from '../queue/types.js';

export interface ListenerSpec {
  host: string;
  port: number;
  mode: ListenerMode;
  /** MAIL needs AUTH first. Default: true for submission and submissions. */
  authRequired?: boolean;
  allowInsecureAuth?: boolean;
}

export interface ServerLimits {
  maxMessageSize: number;
  maxRecipients: number;
  maxErrors: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  maxAuthFailures: number;
  authFailDelayMs: number;
  /** Longest line in octets including CRLF: 512 for commands, 1000 for text (RFC 5321 §4.5.3.1). */
  commandLineLimit: number;
  dataLineLimit: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageSize: 26_214_400,
  maxRecipients: 1000,
  maxErrors: 20,
  maxConnections: 10_000,
  maxConnectionsPerIp: 256,
  commandTimeoutMs: 300_000,
  dataTimeoutMs: 180_000,
  maxAuthFailures: 3,
  authFailDelayMs: 1000,
  commandLineLimit: 512,
  dataLineLimit: 1000,
};

export interface ServerOptions {
  hostname: string;
  listeners: ListenerSpec[];
  tls?: { cert: string | Buffer; key: string | Buffer };
  sink: MessageSink;
  policy: SessionPolicy;
  checkAuth?: (user: string, password: string) => Promise<boolean>;
  limits?: Partial<ServerLimits>;
  log?: (event: string, fields: Record<string, unknown>) => void;
  now?: () => Date;
  /** Clients not subject to the per-IP connection limit (the relay networks). */
  perIpExempt?: (ip: string) => boolean;
}

export interface BoundListener {
  host: string;
  port: number;
  mode: ListenerMode;
}

export class ServerError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServerError';
  }
}

export class SmtpServer {
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<Connection>();
  private readonly perIp = new Map<string, number>();
  private readonly limits: ServerLimits;
  private secureContext: tls.SecureContext | undefined;
  private stopping = false;
  private opts: ServerOptions;

  constructor(opts: ServerOptions) {
    this.opts = opts;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    if (opts.tls) this.secureContext = tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key });
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Bind every listener; rejects with a clear ServerError (port taken, not allowed) before serving. */
  async start(opts: { hold?: boolean } = {}): Promise<BoundListener[]> {
    this.holding = opts.hold === true;
    const bound: BoundListener[] = [];
    for (const l of this.opts.listeners) {
      if (l.mode === 'submissions' && !this.secureContext) {
        throw new ServerError(
          `listener ${l.host}:${l.port} has mode "submissions" (implicit TLS) but [tls] cert/key are not set`,
          'TLS_REQUIRED',
        );
      }
      const srv =
        l.mode === 'submissions'
          ? tls.createServer({
              allowHalfOpen: true,
              // Through SNICallback so that a reloaded certificate applies to new connections.
              SNICallback: (_name, cb) => cb(null, this.secureContext as tls.SecureContext),
              ...(this.opts.tls ? { cert: this.opts.tls.cert, key: this.opts.tls.key } : {}),
            })
          : net.createServer({ allowHalfOpen: true, noDelay: true });
      const event = l.mode === 'submissions' ? 'secureConnection' : 'connection';
      srv.on(event, (s: net.Socket) => this.accept(s, l));
      srv.on('tlsClientError', () => undefined);
      await new Promise<void>((resolve, reject) => {
        const onErr = (err: NodeJS.ErrnoException) => {
          const why =
            err.code === 'EADDRINUSE'
              ? 'the port is already in use by another program'
              : err.code === 'EACCES'
                ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
                : err.code === 'EADDRNOTAVAIL'
                  ? 'that address is not on this machine'
                  : err.message;
          reject(
            new ServerError(`cannot listen on ${fmtAddr(l.host, l.port)}: ${why}`, err.code ?? 'LISTEN', {
              cause: err,
            }),
          );
        };
        srv.once('error', onErr);
        srv.listen({ host: l.host, port: l.port, backlog: 4096 }, () => {
          srv.off('error', onErr);
          resolve();
        });
      });
      const a = srv.address() as net.AddressInfo;
      bound.push({ host: a.address, port: a.port, mode: l.mode });
      this.servers.push(srv);
    }
    return bound;
  }

  /** Stop accepting; 421 to idle sessions; wait up to graceMs for transactions; then cut the rest. */
  async stop(graceMs = 10_000): Promise<void> {
    for (const [sock] of this.held) sock.destroy();
    this.held = [];
    // Listeners stay open during the grace period so that new clients hear 421 (and retry
    // elsewhere) rather than a refused connection.
    this.stopping = true;
    for (const c of this.conns) c.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  /** Swap the certificate (SIGHUP reload). */
  setTls(cert: string | Buffer, key: string | Buffer): void {
    this.secureContext = tls.createSecureContext({ cert, key });
  }

  private holding = false;
  private held: [net.Socket, ListenerSpec][] = [];

  /** Start serving connections held since start({ hold: true }). */
  release(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const [s, l] of held) if (!s.destroyed) this.accept(s, l);
  }

  private accept(socket: net.Socket, l: ListenerSpec): void {
    if (this.holding) {
      socket.on('error', () => undefined);
      this.held.push([socket, l]);
      return;
    }
    const ip = socket.remoteAddress ?? 'unknown';
    // Replies are small and each one is awaited: Nagle would hold them. Plain listeners set it at
    // accept (noDelay above), without a call per socket from here.
    if (l.mode === 'submissions') socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const hostname = this.opts.hostname;
    const refusal = this.stopping
      ? R.shutdown(hostname)
      : this.conns.size >= this.limits.maxConnections
        ? R.tooManyConnections(hostname)
        : (this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp && !this.opts.perIpExempt?.(ip)
          ? R.tooManyFromAddress(hostname)
          : null;
    const refuse = refusal ? formatReply(refusal) : null;
    if (refuse) {
      socket.end(refuse);
      this.opts.log?.('connection-refused', { ip, reason: refuse.trim() });
      return;
    }
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    const authRequired = l.authRequired ?? l.mode !== 'mx';
    const cfg: SessionConfig = {
      hostname,
      mode: l.mode,
      maxMessageSize: this.limits.maxMessageSize,
      maxRecipients: this.limits.maxRecipients,
      maxErrors: this.limits.maxErrors,
      tlsAvailable: this.secureContext !== undefined,
      authOffered: this.opts.checkAuth !== undefined && (l.mode !== 'mx' || l.authRequired === true),
      authRequired,
      allowInsecureAuth: l.allowInsecureAuth ?? false,
      maxAuthFailures: this.limits.maxAuthFailures,
      commandLineLimit: this.limits.commandLineLimit,
    };
    const now = this.opts.now ?? (() => new Date());
    const session = new Session(
      cfg,
      { clientIp: ip, tls: l.mode === 'submissions', now, newId: () => this.opts.sink.newId() },
      this.opts.policy,
    );
    const log = this.opts.log;
    log?.('connect', { ip, port: socket.remotePort, listener: l.mode });
    const conn: Connection = new Connection(socket, session, {
      sink: this.opts.sink,
      ...(this.opts.checkAuth ? { checkAuth: this.opts.checkAuth } : {}),
      authFailDelayMs: this.limits.authFailDelayMs,
      ...(this.secureContext ? { secureContext: this.secureContext } : {}),
      commandTimeoutMs: this.limits.commandTimeoutMs,
      dataTimeoutMs: this.limits.dataTimeoutMs,
      maxDataLine: this.limits.dataLineLimit,
      onClose: () => {
        this.conns.delete(conn);
        const n = (this.perIp.get(ip) ?? 1) - 1;
        if (n <= 0) this.perIp.delete(ip);
        else this.perIp.set(ip, n);
        log?.('disconnect', { ip });
      },
      ...(log ? { onLog: (e: string, f: Record<string, unknown>) => log(e, { ip, ...f }) } : {}),
    });
    this.conns.add(conn);
  }
}

function fmtAddr(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
