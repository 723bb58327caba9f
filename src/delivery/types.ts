/**
 * @module delivery/types
 * The seam between the queue's scheduler and the ways a message leaves: local Maildir, SMTP to a
 * route or an MX, LMTP. The router turns a recipient into a NextHop; recipients with the same
 * NextHop key share one transaction (DESIGN invariant 3).
 */
import type { Envelope, RecipientOutcome } from '../queue/types.js';

export interface HostCandidate {
  /** Host name or IP literal to connect to. */
  host: string;
  port: number;
  /** MX preference (0 for routes and implicit MX). */
  preference: number;
  /** The MX name this came from, for DSN Remote-MTA and logs. */
  mx?: string;
}

export type TlsPolicy = 'none' | 'opportunistic' | 'require' | 'verify';

export type NextHop =
  | { kind: 'local' }
  | {
      kind: 'smtp';
      /** Grouping key, e.g. `mx:example.test` or `route:relay.test`; same key, same transaction. */
      key: string;
      /** The destination domain (or route name) for logs and DSNs. */
      domain: string;
      /** Hosts to try in order (already sorted and shuffled). Empty means: resolve at delivery time. */
      hosts: HostCandidate[];
      tls: TlsPolicy;
      auth?: { user: string; pass: string };
    }
  | { kind: 'lmtp'; key: string; host?: string; port?: number; socketPath?: string };

/** One transaction's worth of work: one envelope, several recipients, one copy of the data. */
export interface DeliveryRequest {
  envelope: Envelope;
  /** Recipients to attempt now: index into envelope.recipients, and the address to use (after aliasing). */
  recipients: { index: number; address: string }[];
  /** The stored message (with our Received: header), CRLF line ends, not dot-stuffed. */
  message: Buffer;
}

export interface Transport {
  /** Never rejects for delivery failures: every requested recipient gets one outcome. */
  deliver(hop: NextHop, req: DeliveryRequest): Promise<RecipientOutcome[]>;
}
