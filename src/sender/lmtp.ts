/**
 * @module sender/lmtp
 * `LmtpTransport`: delivers to a hop of kind 'lmtp' (RFC 2033), over TCP `host:port` or a unix
 * `socketPath` (e.g. Dovecot's `lmtp` listener). LHLO, MAIL, RCPT per recipient, DATA; after the
 * data the server gives ONE reply PER accepted recipient, in RCPT order (§4.2), so each recipient
 * gets its own outcome: one mailbox over quota does not defer the others. PIPELINING is used when
 * offered (RFC 2033 requires servers to offer it). No STARTTLS: LMTP runs on a trusted local link.
 *
 * There is only one host, so failures about the host (cannot connect, greeting, timeouts) defer.
 * A fresh connection per request; `deliver()` never rejects for delivery failures.
 */
import type { DeliveryRequest, NextHop, Transport } from '../delivery/types.js';
import type { RecipientOutcome } from '../queue/types.js';
import { SmtpClient, type Dialer, type Timeouts } from './client.js';
import { SessionFailure } from './failure.js';
import { toOutcome } from './classify.js';
import { transactionSpec } from './extensions.js';
import type { RcptResult } from './session.js';

export interface LmtpTransportOptions {
  /** Our name in LHLO. */
  heloName: string;
  timeouts?: Partial<Timeouts>;
  /** Injectable for tests; default `net.connect` (TCP or unix socket). */
  dialer?: Dialer;
}

type Rcpt = DeliveryRequest['recipients'][number];

export class LmtpTransport implements Transport {
  constructor(private readonly opts: LmtpTransportOptions) {
    if (typeof opts.heloName !== 'string' || opts.heloName.length === 0) {
      throw new TypeError(
        `Cannot create an LmtpTransport: 'heloName' must be a non-empty string: current value is ${String(opts.heloName)}`,
      );
    }
  }

  async deliver(hop: NextHop, req: DeliveryRequest): Promise<RecipientOutcome[]> {
    if (hop.kind !== 'lmtp') throw new TypeError(`Cannot deliver a '${hop.kind}' hop with LmtpTransport`);
    if (req.recipients.length === 0) return [];
    if (hop.socketPath === undefined && (hop.host === undefined || hop.port === undefined)) {
      throw new TypeError(`Cannot deliver to LMTP hop '${hop.key}': it needs socketPath or host and port`);
    }
    const name = hop.socketPath ?? `${hop.host}:${hop.port}`;
    const ctx = { lastHost: true, host: name };
    const outcomes = new Map<number, RecipientOutcome>();
    const settle = (r: Rcpt, res: RcptResult) => {
      const { decision: _decision, ...o } = toOutcome(r.index, res, ctx);
      outcomes.set(r.index, o);
    };
    let client: SmtpClient;
    try {
      client = await SmtpClient.connect({
        host: hop.host ?? 'localhost',
        port: hop.port ?? 24,
        ...(hop.socketPath !== undefined ? { socketPath: hop.socketPath } : {}),
        ...(this.opts.dialer ? { dialer: this.opts.dialer } : {}),
        timeouts: this.opts.timeouts ?? {},
        session: { heloName: this.opts.heloName, lmtp: true, tls: 'none' },
      });
    } catch (err) {
      if (!(err instanceof SessionFailure)) throw err;
      for (const r of req.recipients) settle(r, { kind: 'failed', failure: err.failure });
      return req.recipients.map((r) => outcomes.get(r.index) as RecipientOutcome);
    }
    let queue: Rcpt[] = req.recipients;
    while (queue.length > 0 && client.usable) {
      const results = await client.send(transactionSpec(req, queue), req.message);
      const retry: Rcpt[] = [];
      results.forEach((res, i) => {
        const r = queue[i] as Rcpt;
        if (res.kind === 'retry') retry.push(r);
        else settle(r, res);
      });
      queue = retry;
    }
    for (const r of queue) {
      settle(r, {
        kind: 'failed',
        failure: { kind: 'lost', stage: 'rset', error: 'connection closed between transactions' },
      });
    }
    await client.quit();
    return req.recipients.map((r) => outcomes.get(r.index) as RecipientOutcome);
  }
}
