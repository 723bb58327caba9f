/**
 * @module sender/transport
 * `SmtpTransport`: delivers one DeliveryRequest over SMTP to a hop of kind 'smtp'. Tries
 * `hop.hosts` in order; recipients whose failure is about the host (classify.ts: cannot connect,
 * 4xx/421/5xx greeting, TLS required and unavailable, …) move on to the next host, the others get
 * their outcome from this one. One transaction carries all the request's recipients (one MAIL,
 * many RCPT, one copy of the data; DESIGN invariant 3); recipients refused with 452 "too many
 * recipients" go into a following transaction on the same connection.
 *
 * Opportunistic TLS whose handshake fails is retried once on a new connection to the same host
 * without STARTTLS (Postfix does the same at `smtp_tls_security_level = may`); 'require' and
 * 'verify' never fall back: the host is skipped, and the recipients are deferred with 4.7.x.
 *
 * Connections are cached per (host, port, TLS policy, AUTH user) for reuse by later requests: idle
 * ones close after `idleTimeout` ms and at most `maxIdle` are kept. A cached connection that turns
 * out stale (the RSET probing it fails) is replaced by a fresh one, once. `close()` says QUIT to
 * all idle connections. `deliver()` never rejects for delivery failures.
 */
import type * as tls from 'node:tls';
import type { DeliveryRequest, HostCandidate, NextHop, Transport } from '../delivery/types.js';
import type { RecipientOutcome } from '../queue/types.js';
import { SmtpClient, type Dialer, type Timeouts } from './client.js';
import { SessionFailure, type Failure } from './failure.js';
import { toOutcome } from './classify.js';
import { transactionSpec } from './extensions.js';
import type { RcptResult } from './session.js';

export interface SmtpTransportOptions {
  /** Our name in EHLO/HELO. */
  heloName: string;
  timeouts?: Partial<Timeouts>;
  /** Injectable for tests; default `net.connect`. */
  dialer?: Dialer;
  tlsOptions?: tls.ConnectionOptions;
  /** Allow AUTH without TLS (only for trusted networks). Default false. */
  authWithoutTls?: boolean;
  /** Use PIPELINING when offered. Default true. */
  pipelining?: boolean;
  /** Idle connection lifetime in the reuse cache, ms. Default 5000; 0 disables reuse. */
  idleTimeout?: number;
  /** Most idle connections kept. Default 16. */
  maxIdle?: number;
  /** Connection-level events (host skipped, TLS fallback); a pino Logger fits. */
  log?: TransportLog;
}

export interface TransportLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

type SmtpHop = Extract<NextHop, { kind: 'smtp' }>;
type Rcpt = DeliveryRequest['recipients'][number];

interface Idle {
  key: string;
  client: SmtpClient;
  timer: NodeJS.Timeout;
}

export class SmtpTransport implements Transport {
  private readonly idle: Idle[] = [];
  private readonly idleTimeout: number;
  private readonly maxIdle: number;

  constructor(private readonly opts: SmtpTransportOptions) {
    if (typeof opts.heloName !== 'string' || opts.heloName.length === 0) {
      throw new TypeError(
        `Cannot create an SmtpTransport: 'heloName' must be a non-empty string: current value is ${String(opts.heloName)}`,
      );
    }
    this.idleTimeout = opts.idleTimeout ?? 5000;
    this.maxIdle = opts.maxIdle ?? 16;
    if (!(this.idleTimeout >= 0))
      throw new RangeError(
        `Cannot create an SmtpTransport: 'idleTimeout' must be >= 0: current value is ${this.idleTimeout}`,
      );
    if (!(this.maxIdle >= 0))
      throw new RangeError(
        `Cannot create an SmtpTransport: 'maxIdle' must be >= 0: current value is ${this.maxIdle}`,
      );
  }

  async deliver(hop: NextHop, req: DeliveryRequest): Promise<RecipientOutcome[]> {
    if (hop.kind !== 'smtp') throw new TypeError(`Cannot deliver a '${hop.kind}' hop with SmtpTransport`);
    if (req.recipients.length === 0) return [];
    if (hop.hosts.length === 0) {
      return req.recipients.map((r) => ({
        index: r.index,
        result: 'deferred',
        reply: '451 4.4.3 no hosts to try',
        status: '4.4.3',
      }));
    }
    const final = new Map<number, RecipientOutcome>();
    let pending: Rcpt[] = req.recipients;
    for (let h = 0; h < hop.hosts.length && pending.length > 0; h++) {
      const host = hop.hosts[h] as HostCandidate;
      const last = h === hop.hosts.length - 1;
      const moveOn = await this.tryHost(hop, host, last, req, pending, final);
      pending = moveOn;
    }
    return req.recipients.map(
      (r) =>
        final.get(r.index) ?? {
          index: r.index,
          result: 'deferred',
          reply: '451 4.4.3 no host took the message',
          status: '4.4.3',
        },
    );
  }

  /** Say QUIT to every idle cached connection. */
  async close(): Promise<void> {
    const all = this.idle.splice(0);
    await Promise.all(
      all.map((i) => {
        clearTimeout(i.timer);
        return i.client.quit();
      }),
    );
  }

  /**
   * One host: outcomes go into `final`, except for recipients whose failure says "next host"
   * (when this is the last host, classify says "defer" instead, so `final` gets them).
   */
  private async tryHost(
    hop: SmtpHop,
    host: HostCandidate,
    last: boolean,
    req: DeliveryRequest,
    rcpts: Rcpt[],
    final: Map<number, RecipientOutcome>,
  ): Promise<Rcpt[]> {
    const name = host.mx ?? host.host;
    const ctx = { lastHost: last, host: name };
    const moveOn: Rcpt[] = [];
    const settle = (r: Rcpt, result: RcptResult): void => {
      const { decision, ...outcome } = toOutcome(r.index, result, ctx);
      // A "next host" outcome is kept too (as deferred): it stands if no later host decides.
      final.set(r.index, outcome);
      if (decision === 'next-host') moveOn.push(r);
    };
    const failAll = (list: Rcpt[], failure: Failure) =>
      list.forEach((r) => settle(r, { kind: 'failed', failure }));

    const key = `${host.host}|${host.port}|${hop.tls}|${hop.auth?.user ?? ''}`;
    let conn: SmtpClient;
    let reused = false;
    const cached = this.take(key);
    try {
      if (cached) {
        conn = cached;
        reused = true;
      } else conn = await this.open(hop, host);
    } catch (err) {
      if (!(err instanceof SessionFailure)) throw err;
      this.opts.log?.info({ host: name, port: host.port, last, error: err.message }, 'smtp session failed');
      failAll(rcpts, err.failure);
      return moveOn;
    }

    let queue = rcpts;
    while (queue.length > 0) {
      if (!conn.usable) {
        failAll(queue, { kind: 'lost', stage: 'rset', error: 'connection closed between transactions' });
        break;
      }
      const results = await conn.send(transactionSpec(req, queue), req.message);
      if (reused && isStale(results)) {
        // The cached connection died while idle: start over on a fresh one (once).
        conn.destroy();
        reused = false;
        try {
          conn = await this.open(hop, host);
        } catch (err) {
          if (!(err instanceof SessionFailure)) throw err;
          failAll(queue, err.failure);
          return moveOn;
        }
        continue;
      }
      reused = false;
      const retry: Rcpt[] = [];
      results.forEach((res, i) => {
        const r = queue[i] as Rcpt;
        if (res.kind === 'retry') retry.push(r);
        else settle(r, res);
      });
      queue = retry;
    }
    this.release(key, conn);
    return moveOn;
  }

  private async open(hop: SmtpHop, host: HostCandidate): Promise<SmtpClient> {
    const base = {
      host: host.host,
      port: host.port,
      timeouts: this.opts.timeouts ?? {},
      ...(this.opts.dialer ? { dialer: this.opts.dialer } : {}),
      tlsOptions: { ...this.opts.tlsOptions, ...(host.mx ? { servername: host.mx } : {}) },
    };
    const session = {
      heloName: this.opts.heloName,
      tls: hop.tls,
      ...(hop.auth ? { auth: hop.auth } : {}),
      ...(this.opts.authWithoutTls ? { authWithoutTls: true } : {}),
      ...(this.opts.pipelining === false ? { pipelining: false } : {}),
    };
    try {
      return await SmtpClient.connect({ ...base, session });
    } catch (err) {
      if (err instanceof SessionFailure && err.failure.kind === 'security' && err.failure.retryPlain) {
        this.opts.log?.warn(
          { host: host.mx ?? host.host, port: host.port, error: err.message },
          'TLS handshake failed; retrying without TLS',
        );
        return await SmtpClient.connect({ ...base, session: { ...session, tls: 'none' } });
      }
      throw err;
    }
  }

  private take(key: string): SmtpClient | null {
    for (let i = 0; i < this.idle.length; i++) {
      const entry = this.idle[i] as Idle;
      if (entry.key !== key) continue;
      this.idle.splice(i, 1);
      clearTimeout(entry.timer);
      if (entry.client.usable) {
        entry.client.setIdle(false);
        return entry.client;
      }
      entry.client.destroy();
      i--;
    }
    return null;
  }

  private release(key: string, client: SmtpClient): void {
    if (!client.usable) {
      client.destroy();
      return;
    }
    if (this.idleTimeout === 0 || this.idle.length >= this.maxIdle) {
      void client.quit();
      return;
    }
    const entry: Idle = {
      key,
      client,
      timer: setTimeout(() => {
        this.forget(entry);
        void client.quit();
      }, this.idleTimeout),
    };
    entry.timer.unref();
    client.setIdle(true);
    client.onClose = () => this.forget(entry);
    this.idle.push(entry);
  }

  private forget(entry: Idle): void {
    const i = this.idle.indexOf(entry);
    if (i >= 0) this.idle.splice(i, 1);
    clearTimeout(entry.timer);
  }
}

/** Every recipient failed because the connection was gone at the probing RSET (or right after). */
function isStale(results: RcptResult[]): boolean {
  return results.every(
    (r) =>
      r.kind === 'failed' &&
      (r.failure.kind === 'lost' ||
        r.failure.kind === 'timeout' ||
        (r.failure.kind === 'reply' && r.failure.reply.code === 421)) &&
      (r.failure.stage === 'rset' || r.failure.stage === 'mail'),
  );
}
