/**
 * @module sender/failure
 * What can go wrong talking to a next hop, as data: the session and the socket adapter produce a
 * `Failure`, `classify.ts` decides what it means (next host, retry later, bounce), and the
 * transport turns it into RecipientOutcomes. Carries the RFC 3463 status and reply text from the
 * failure to the DSN (Postfix `dsn.h` in spirit).
 */
import type { Reply } from '../smtp/reply.js';

/** Where in the dialogue we were: the command whose reply we waited for, or the connection phase. */
export type Stage =
  | 'connect'
  | 'greeting'
  | 'helo'
  | 'starttls'
  | 'auth'
  | 'rset'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'data-end'
  | 'quit';

export type Failure =
  /** Could not open the connection (refused, unreachable, name lookup failed). */
  | { kind: 'connect'; error: string; errno?: string }
  /** No reply within the RFC 5321 §4.5.3.2 timeout for this stage. */
  | { kind: 'timeout'; stage: Stage }
  /** The peer closed or reset the connection, or sent something that is not an SMTP reply. */
  | { kind: 'lost'; stage: Stage; error?: string }
  /** A negative reply to the command of this stage. */
  | { kind: 'reply'; stage: Stage; reply: Reply }
  /**
   * A security precondition failed: TLS required but not offered or the handshake failed, AUTH
   * not offered or refused to run over plain text. `retryPlain`: opportunistic TLS whose
   * handshake failed; the same host may be tried again without TLS on a new connection.
   */
  | { kind: 'security'; stage: Stage; status: string; text: string; retryPlain?: boolean }
  /** We refused to send: the message needs an extension the peer lacks (SMTPUTF8, 8BITMIME, SIZE). */
  | { kind: 'local'; reply: Reply };

/** Stages before any MAIL: a failure here says nothing about the message, only about the host. */
export function isSessionStage(stage: Stage): boolean {
  return (
    stage === 'connect' ||
    stage === 'greeting' ||
    stage === 'helo' ||
    stage === 'starttls' ||
    stage === 'auth' ||
    stage === 'rset'
  );
}

/** Thrown (rejected) by the socket adapter when a session cannot be opened or used. */
export class SessionFailure extends Error {
  readonly code = 'SMTP_SESSION_FAILURE';
  constructor(
    readonly failure: Failure,
    options?: { cause?: unknown },
  ) {
    super(describeFailure(failure), options);
    this.name = 'SessionFailure';
  }
}

export function describeFailure(f: Failure): string {
  switch (f.kind) {
    case 'connect':
      return `connect failed: ${f.error}`;
    case 'timeout':
      return `timeout waiting for the ${f.stage} reply`;
    case 'lost':
      return `connection lost at ${f.stage}${f.error ? ': ' + f.error : ''}`;
    case 'reply':
      return `${f.stage} refused: ${f.reply.code}${f.reply.enhanced ? ' ' + f.reply.enhanced : ''} ${f.reply.lines.join(' / ')}`.trimEnd();
    case 'security':
      return `${f.status} ${f.text}`;
    case 'local':
      return f.reply.lines.join(' / ');
  }
}
