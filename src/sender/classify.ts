/**
 * @module sender/classify
 * The sender's error policy in one place (Postfix `smtp_trouble.c` in spirit), pure:
 *
 * - about the host, not the message (cannot connect, timeout or lost connection before MAIL was
 *   answered, any reply before MAIL, 421 anywhere, TLS or AUTH preconditions) → try the next host;
 *   at the last host → defer. A 5xx greeting is skipped too, like Postfix's
 *   `smtp_skip_5xx_greeting`: the next host, or a later retry, may do better.
 * - about the message or a recipient (RCPT/MAIL/DATA replies; timeouts and lost connections once
 *   recipients were given) → 4xx: defer, 5xx: bounce. RFC 5321 §4.5.4.1 / §6.1 say a broken
 *   connection counts as a 451.
 * - a message the peer cannot take (SMTPUTF8, 8BITMIME, SIZE) → bounce.
 *
 * `toOutcome` maps a result to the queue's RecipientOutcome: the reply as the peer wrote it
 * (`550 5.1.1 <x@y>: Recipient address rejected`), an RFC 3463 status whose class matches the
 * result, and the host as remoteMta.
 */
import type { RecipientOutcome } from '../queue/types.js';
import { replyToString, type Reply } from '../smtp/reply.js';
import { isSessionStage, type Failure } from './failure.js';
import type { RcptResult } from './session.js';

export type Decision = 'next-host' | 'defer' | 'bounce';

export function classify(f: Failure, ctx: { lastHost: boolean }): Decision {
  const hostTrouble = ctx.lastHost ? 'defer' : 'next-host';
  switch (f.kind) {
    case 'connect':
    case 'security':
      return hostTrouble;
    case 'local':
      return 'bounce';
    case 'timeout':
    case 'lost':
      return f.stage === 'mail' || isSessionStage(f.stage) ? hostTrouble : 'defer';
    case 'reply':
      if (f.reply.code === 421 || isSessionStage(f.stage)) return hostTrouble;
      return f.reply.code >= 500 ? 'bounce' : 'defer';
  }
}

/** The RFC 3463 status of a failure. */
export function failureStatus(f: Failure): string {
  switch (f.kind) {
    case 'connect':
      return '4.4.1';
    case 'timeout':
    case 'lost':
      return '4.4.2';
    case 'security':
      return f.status;
    case 'reply':
    case 'local':
      return replyStatus(f.reply);
  }
}

/** One line for the queue and the DSN: the peer's reply, or a synthesised `451 4.4.x …`. */
export function failureText(f: Failure, host: string): string {
  switch (f.kind) {
    case 'connect':
      return `451 4.4.1 cannot connect to ${host}: ${f.error}`;
    case 'timeout':
      return `451 4.4.2 timeout waiting for the ${f.stage} reply from ${host}`;
    case 'lost':
      return `451 4.4.2 connection to ${host} lost at ${f.stage}${f.error ? ': ' + f.error : ''}`;
    case 'security':
      return `${f.status.startsWith('5') ? 554 : 451} ${f.status} ${f.text}`;
    case 'reply':
    case 'local':
      return replyToString(f.reply);
  }
}

function replyStatus(r: Reply): string {
  return r.enhanced ?? `${Math.floor(r.code / 100)}.0.0`;
}

/** The outcome for a recipient whose result (or the session's failure) is final for this attempt. */
export function toOutcome(
  index: number,
  result: RcptResult | { kind: 'failed'; failure: Failure },
  ctx: { lastHost: boolean; host: string },
): RecipientOutcome & { decision: Decision | 'delivered' } {
  if (result.kind === 'delivered') {
    return {
      index,
      result: 'delivered',
      reply: replyToString(result.reply),
      status: replyStatus(result.reply),
      remoteMta: ctx.host,
      decision: 'delivered',
    };
  }
  const failure: Failure =
    result.kind === 'retry' ? { kind: 'reply', stage: 'rcpt', reply: result.reply } : result.failure;
  const decision = classify(failure, ctx);
  const bounce = decision === 'bounce';
  return {
    index,
    result: bounce ? 'failed' : 'deferred',
    reply: failureText(failure, ctx.host),
    status: withClass(failureStatus(failure), bounce ? '5' : '4'),
    remoteMta: ctx.host,
    decision,
  };
}

/** A deferred recipient carries a 4.x.y status even when the peer's reply was 5xx (skipped greeting). */
function withClass(status: string, cls: '4' | '5'): string {
  return /^[245]\./.test(status) ? cls + status.slice(1) : `${cls}.0.0`;
}
