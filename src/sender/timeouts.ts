/**
 * @module sender/timeouts
 * The sender-SMTP's timeouts (RFC 5321 §4.5.3.2), in milliseconds, and which one applies to the
 * reply awaited at each stage of the dialogue. Pure.
 */
import type { Stage } from './failure.js';

/**
 * Milliseconds. The names match the `[delivery]` config keys (`command_timeout` → `command`, …).
 * Defaults: RFC 5321 §4.5.3.2 where it names one, Postfix's defaults elsewhere.
 */
export interface Timeouts {
  connect: number;
  /** Initial 220: 5 min. */
  greeting: number;
  /** Any other command reply (EHLO, STARTTLS and its handshake, AUTH, MAIL, RCPT, QUIT): 5 min. */
  command: number;
  /** DATA initiation (the 354): 2 min. */
  dataInit: number;
  /** Each blocked body write (one TCP SEND): 3 min. */
  dataBlock: number;
  /** DATA termination (reply to the final dot): 10 min. */
  dataDone: number;
  /** RSET, also the liveness probe of a reused connection: short, so a dead one is found fast. */
  rset: number;
  /** Per-command overrides of `command`. */
  mail?: number;
  rcpt?: number;
  /** The reply to QUIT: short, nothing depends on it but a clean close. */
  quit?: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connect: 30_000,
  greeting: 300_000,
  command: 300_000,
  dataInit: 120_000,
  dataBlock: 180_000,
  dataDone: 600_000,
  rset: 20_000,
  quit: 10_000,
};

/** The timeout for the reply awaited at `stage`. */
export function timeoutFor(t: Timeouts, stage: Stage): number {
  switch (stage) {
    case 'connect':
      return t.connect;
    case 'greeting':
      return t.greeting;
    case 'rset':
      return t.rset;
    case 'mail':
      return t.mail ?? t.command;
    case 'rcpt':
      return t.rcpt ?? t.command;
    case 'quit':
      return t.quit ?? t.command;
    case 'data':
      return t.dataInit;
    case 'data-end':
      return t.dataDone;
    default:
      return t.command;
  }
}
