/**
 * @module queue/bounce
 * Delivery status notifications (RFC 3464) returned to the reverse-path, pure: bytes in, bytes
 * out, clock and ids passed in.
 *
 * - `planDsns` decides which DSNs one attempt round produces. RFC 3461 §4.1 NOTIFY: NEVER → none;
 *   not given → FAILURE,DELAY; SUCCESS only when asked. Never for the null reverse-path `<>` or
 *   for our own bounces (RFC 5321 §4.5.5, §6.1: a bounce of a bounce is a loop); the caller logs
 *   those and sends `buildPostmasterNotice` instead, which is itself a bounce (sender `<>`), so it
 *   cannot bounce in turn. At most one DSN per kind per round, listing every recipient together.
 * - `buildDsn` formats a `multipart/report; report-type=delivery-status` (RFC 6522): a human
 *   explanation, the `message/delivery-status` fields, and the returned message: the full
 *   `message/rfc822` for a failure with RET=FULL or no RET when it fits `maxReturnSize` and is
 *   7bit/8bit-clean (else its headers), `text/rfc822-headers` for RET=HDRS and for delay and
 *   success reports (RFC 3461 §4.3 asks for full content only in "failed" DSNs). Addresses with
 *   non-ASCII use RFC 6533 (`message/global-delivery-status`, `utf-8;` address type).
 * - `dsnEnvelope` is the new message's envelope: sender `<>`, recipient the original sender,
 *   isBounce, NOTIFY=NEVER.
 * Output has CRLF line ends and no line over 998 octets (RFC 5322 §2.1.1).
 */
import {
  CRLF,
  field,
  formatDate,
  has8bit,
  headerSection,
  lineClean,
  nonAscii,
  originalMessageId,
  wrap,
} from './dsn-format.js';
import type { DsnNotify, Envelope, QueuedMessage } from './types.js';

export { formatDate } from './dsn-format.js';

export type DsnKind = 'failed' | 'delayed' | 'delivered';

export interface DsnPlan {
  kind: DsnKind;
  indices: number[];
}

function wants(notify: readonly DsnNotify[] | undefined, what: 'FAILURE' | 'DELAY' | 'SUCCESS'): boolean {
  if (notify === undefined || notify.length === 0) return what !== 'SUCCESS';
  if (notify.includes('NEVER')) return false;
  return notify.includes(what);
}

/** The DSNs to send after one attempt round; empty for `<>` and for bounces. */
export function planDsns(
  msg: QueuedMessage,
  newlyFailed: readonly number[],
  newlyDelivered: readonly number[],
  delayed: readonly number[],
): DsnPlan[] {
  const env = msg.envelope;
  if (env.sender === '' || env.isBounce) return [];
  const notifyOf = (i: number) => env.recipients[i]?.notify;
  const exists = (i: number) => env.recipients[i] !== undefined;
  const failed = [...new Set(newlyFailed)].filter((i) => exists(i) && wants(notifyOf(i), 'FAILURE'));
  const delivered = [...new Set(newlyDelivered)].filter(
    (i) => exists(i) && !newlyFailed.includes(i) && wants(notifyOf(i), 'SUCCESS'),
  );
  const delay = [...new Set(delayed)].filter(
    (i) =>
      exists(i) &&
      !newlyFailed.includes(i) &&
      !newlyDelivered.includes(i) &&
      msg.recipients.find((r) => r.index === i)?.delayNotified !== true &&
      wants(notifyOf(i), 'DELAY'),
  );
  const out: DsnPlan[] = [];
  const sorted = (a: number[]) => a.sort((x, y) => x - y);
  if (failed.length > 0) out.push({ kind: 'failed', indices: sorted(failed) });
  if (delay.length > 0) out.push({ kind: 'delayed', indices: sorted(delay) });
  if (delivered.length > 0) out.push({ kind: 'delivered', indices: sorted(delivered) });
  return out;
}

export interface DsnInput {
  /** Our host name: Reporting-MTA and the MAILER-DAEMON address. */
  hostname: string;
  kind: DsnKind;
  msg: QueuedMessage;
  /** Recipients (indices into the envelope) this DSN reports on. */
  indices: readonly number[];
  /** The stored original message (CRLF), or undefined when it cannot be read. */
  message?: Buffer;
  /** Milliseconds since the epoch: Date, Last-Attempt-Date. */
  now: number;
  /** For delayed DSNs: when we give up (Will-Retry-Until). */
  willRetryUntil?: number;
  /** Largest original returned in full; larger ones are returned as headers. @default 131072 */
  maxReturnSize?: number;
  /** Message-ID to use (with angle brackets); derived from id, time and host when absent. */
  messageId?: string;
}

const SUBJECTS: Record<DsnKind, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  delivered: 'Successful Mail Delivery Report',
};

const INTROS: Record<DsnKind, string> = {
  failed:
    'I am sorry to have to inform you that your message could not be delivered to one or more ' +
    'recipients. The reasons are listed below.',
  delayed:
    'Your message could not be delivered yet to one or more recipients. This is only a warning: ' +
    'the mail system will keep trying, and you do not need to send the message again.',
  delivered: 'Your message was successfully delivered to the destination(s) listed below.',
};

/** Build a DSN addressed to the original reverse-path. */
export function buildDsn(input: DsnInput): Buffer {
  if (input.msg.envelope.sender === '') {
    throw new TypeError('Cannot build a DSN: the reverse-path is <> (null); use buildPostmasterNotice');
  }
  return compose(input, {
    to: input.msg.envelope.sender,
    subject: SUBJECTS[input.kind],
    intro: INTROS[input.kind],
    headersOnly: input.kind !== 'failed' || input.msg.envelope.ret === 'HDRS',
  });
}

export interface PostmasterNoticeInput extends Omit<DsnInput, 'kind'> {
  /** Where the notice goes, e.g. `postmaster@mx.example.test`. */
  postmaster: string;
}

/**
 * Tell the postmaster that a message with a null reverse-path (usually one of our bounces) failed.
 * The notice is itself sent with sender `<>` and isBounce (see `dsnEnvelope`), so if it fails the
 * scheduler only logs it. Only the returned message's headers are included.
 */
export function buildPostmasterNotice(input: PostmasterNoticeInput): Buffer {
  const from = input.msg.envelope.sender === '' ? '<>' : `<${input.msg.envelope.sender}>`;
  return compose(
    { ...input, kind: 'failed' },
    {
      to: input.postmaster,
      subject: 'Postmaster Copy: Undelivered Mail',
      intro:
        `A message from ${from} (queue id ${input.msg.envelope.id}) could not be delivered and ` +
        'cannot be returned to its sender, because it has a null reverse-path or is itself a ' +
        'delivery report. Its headers are attached.',
      headersOnly: true,
    },
  );
}

/** The envelope for a DSN or notice built from `original`'s message. */
export function dsnEnvelope(
  original: Envelope,
  options: { id: string; now: number; dsn: Buffer; to?: string },
): Envelope {
  const to = options.to ?? original.sender;
  if (to === '') throw new TypeError('Cannot address a DSN to the null reverse-path <>');
  return {
    id: options.id,
    sender: '',
    recipients: [{ address: to, notify: ['NEVER'] }],
    receivedAt: options.now,
    body: has8bit(options.dsn) ? '8BITMIME' : '7BIT',
    smtputf8: nonAscii(to) || (original.smtputf8 && has8bit(options.dsn)),
    isBounce: true,
  };
}

export interface DsnMessage {
  kind: DsnKind | 'postmaster';
  envelope: Envelope;
  data: Buffer;
}

export interface DsnMessagesOptions {
  hostname: string;
  now: number;
  /** A fresh queue id per new message. */
  newId: () => string;
  /** Where notices about failed bounces go (e.g. `postmaster@<hostname>`); none when absent. */
  postmaster?: string;
  /** For delayed DSNs (Will-Retry-Until): arrival plus the queue lifetime. */
  willRetryUntil?: number;
  maxReturnSize?: number;
}

/**
 * Every message one attempt round should enqueue (the scheduler's FinalHook body): the planned
 * DSNs, or for a failed message with a null reverse-path a postmaster notice, unless the failed
 * message was itself for the postmaster (a notice about a notice would loop).
 */
export function dsnMessages(
  msg: QueuedMessage,
  newlyFailed: readonly number[],
  newlyDelivered: readonly number[],
  delayed: readonly number[],
  message: Buffer | undefined,
  options: DsnMessagesOptions,
): DsnMessage[] {
  const env = msg.envelope;
  const base = { hostname: options.hostname, msg, now: options.now, ...(message ? { message } : {}) };
  if (options.maxReturnSize !== undefined) Object.assign(base, { maxReturnSize: options.maxReturnSize });
  if (env.sender === '' || env.isBounce) {
    const pm = options.postmaster;
    if (pm === undefined) return [];
    // Mail for any postmaster (ours included) that fails is only logged: notices must not chain.
    const failed = [...new Set(newlyFailed)].filter((i) => {
      const a = env.recipients[i]?.address;
      return a !== undefined && !/^"?postmaster"?(@|$)/i.test(a) && a.toLowerCase() !== pm.toLowerCase();
    });
    if (failed.length === 0) return [];
    const data = buildPostmasterNotice({ ...base, postmaster: pm, indices: failed });
    return [
      {
        kind: 'postmaster',
        data,
        envelope: dsnEnvelope(env, { id: options.newId(), now: options.now, dsn: data, to: pm }),
      },
    ];
  }
  return planDsns(msg, newlyFailed, newlyDelivered, delayed).map((plan) => {
    const input: DsnInput = { ...base, kind: plan.kind, indices: plan.indices };
    if (plan.kind === 'delayed' && options.willRetryUntil !== undefined)
      input.willRetryUntil = options.willRetryUntil;
    const data = buildDsn(input);
    return {
      kind: plan.kind,
      data,
      envelope: dsnEnvelope(env, { id: options.newId(), now: options.now, dsn: data }),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Formatting

interface Variant {
  to: string;
  subject: string;
  intro: string;
  headersOnly: boolean;
}

function addressField(addr: string, utf8: boolean): string {
  return `${utf8 ? 'utf-8' : 'rfc822'}; ${addr}`;
}

function compose(input: DsnInput, v: Variant): Buffer {
  const { hostname, kind, msg, now } = input;
  const env = msg.envelope;
  const maxReturn = input.maxReturnSize ?? 131072;
  if (!Number.isInteger(maxReturn) || maxReturn < 0) {
    throw new RangeError(
      `Cannot build a DSN: 'maxReturnSize' must be an integer >= 0: current value is ${maxReturn}`,
    );
  }
  const indices = [...new Set(input.indices)].filter((i) => env.recipients[i] !== undefined);
  if (indices.length === 0) throw new RangeError('Cannot build a DSN: no recipient to report on');

  const utf8 = indices.some(
    (i) => nonAscii(env.recipients[i]?.address ?? '') || nonAscii(env.recipients[i]?.orcpt ?? ''),
  );
  const defaultStatus = kind === 'failed' ? '5.0.0' : kind === 'delayed' ? '4.0.0' : '2.0.0';

  // What to return: full message, headers, or nothing.
  let returned: { type: 'full' | 'headers'; body: Buffer } | undefined;
  let returnNote = '';
  if (input.message) {
    const full = input.message;
    const fullOk = full.length <= maxReturn && env.body !== 'BINARYMIME' && lineClean(full);
    const headers = headerSection(full);
    if (!v.headersOnly && fullOk) returned = { type: 'full', body: full };
    else if (!lineClean(headers)) {
      returnNote =
        'The original message is malformed (bare CR or LF, or overlong lines); it is not included.';
    } else {
      returned = { type: 'headers', body: headers };
      if (!v.headersOnly) {
        returnNote =
          full.length > maxReturn
            ? `The original message was too large to return in full (${full.length} bytes); only its headers are included.`
            : 'The original message cannot be returned in full (binary content); only its headers are included.';
      }
    }
  }

  // Part 1: for people.
  const text: string[] = [`This is the mail system at host ${hostname}.`, '', ...wrap(v.intro), ''];
  if (kind === 'failed') text.push(...wrap('For further assistance, please send mail to postmaster.'), '');
  if (returnNote) text.push(...wrap(returnNote), '');
  for (const i of indices) {
    const state = msg.recipients.find((r) => r.index === i);
    const addr = env.recipients[i]?.address ?? '';
    const reason = state?.lastReply ?? (kind === 'delivered' ? 'delivered' : 'no reason recorded');
    const via = state?.remoteMta ? ` (host ${state.remoteMta} said)` : '';
    text.push(...wrap(`<${addr}>${via}: ${reason}`, 76, '    '));
  }
  if (kind === 'delayed' && input.willRetryUntil !== undefined) {
    text.push('', ...wrap(`Delivery will be retried until ${formatDate(input.willRetryUntil)}.`));
  }
  const textBody = text.join(CRLF) + CRLF;

  // Part 2: for programs (RFC 3464 §2.2 per-message, §2.3 per-recipient fields).
  let status = field('Reporting-MTA', `dns; ${hostname}`);
  status += field('X-Ferrymail-Queue-ID', env.id);
  if (env.envid !== undefined) status += field('Original-Envelope-Id', env.envid);
  status += field('Arrival-Date', formatDate(env.receivedAt));
  for (const i of indices) {
    const rcpt = env.recipients[i];
    if (!rcpt) continue;
    const state = msg.recipients.find((r) => r.index === i);
    status += CRLF;
    if (rcpt.orcpt !== undefined) {
      const semi = rcpt.orcpt.indexOf(';');
      status += field(
        'Original-Recipient',
        semi > 0 ? `${rcpt.orcpt.slice(0, semi)};${rcpt.orcpt.slice(semi + 1)}` : `rfc822;${rcpt.orcpt}`,
      );
    }
    status += field('Final-Recipient', addressField(rcpt.address, nonAscii(rcpt.address)));
    status += field('Action', kind);
    const st =
      state?.lastStatus && /^[245]\.\d{1,3}\.\d{1,3}$/.test(state.lastStatus)
        ? state.lastStatus
        : defaultStatus;
    status += field('Status', st);
    if (state?.remoteMta) status += field('Remote-MTA', `dns; ${state.remoteMta}`);
    if (state?.lastReply) {
      const smtp = /^[245]\d\d([ -]|$)/.test(state.lastReply);
      // message/delivery-status is ASCII (RFC 3464 §2.1.2): peers' UTF-8 replies lose their 8-bit there.
      const diag = utf8 ? state.lastReply : state.lastReply.replace(/[^\x00-\x7f]/g, '?');
      status += field('Diagnostic-Code', `${smtp ? 'smtp' : 'X-Ferrymail'}; ${diag}`);
    }
    status += field('Last-Attempt-Date', formatDate(now));
    if (kind === 'delayed' && input.willRetryUntil !== undefined) {
      status += field('Will-Retry-Until', formatDate(input.willRetryUntil));
    }
  }

  // Boundary: deterministic, and checked against everything it must not appear in.
  const parts = [textBody, status];
  let boundary = `=_ferrymail_${env.id.replace(/[^A-Za-z0-9]/g, '')}_${now.toString(36)}`;
  const contains = (b: string) => parts.some((p) => p.includes(b)) || (returned?.body.includes(b) ?? false);
  while (contains(boundary)) boundary += '_x';

  const textCte = nonAscii(textBody) ? '8bit' : '7bit';
  const statusCte = nonAscii(status) ? '8bit' : '7bit';
  const returnedCte = returned && has8bit(returned.body) ? '8bit' : '7bit';
  const topCte = [textCte, statusCte, returnedCte].includes('8bit') ? '8bit' : '7bit';

  const messageId =
    input.messageId ?? `<${now.toString(36)}.${env.id.replace(/[^A-Za-z0-9.-]/g, '')}.dsn@${hostname}>`;
  let head = field('From', `Mail Delivery System <MAILER-DAEMON@${hostname}>`);
  head += field('To', `<${v.to}>`);
  head += field('Subject', v.subject);
  head += field('Date', formatDate(now));
  head += field('Message-ID', messageId);
  const origId = originalMessageId(input.message);
  if (origId) head += field('In-Reply-To', origId) + field('References', origId);
  head += field('Auto-Submitted', 'auto-replied');
  head += field('MIME-Version', '1.0');
  head += `Content-Type: multipart/report; report-type=delivery-status;${CRLF}\tboundary="${boundary}"${CRLF}`;
  head += field('Content-Transfer-Encoding', topCte);

  const chunks: (string | Buffer)[] = [head, CRLF, 'This is a MIME-encapsulated message.', CRLF];
  const open = (type: string, description: string, cte: string) =>
    `${CRLF}--${boundary}${CRLF}` +
    field('Content-Description', description) +
    `Content-Type: ${type}${CRLF}` +
    field('Content-Transfer-Encoding', cte) +
    CRLF;
  chunks.push(
    open(`text/plain; charset=${textCte === '8bit' ? 'utf-8' : 'us-ascii'}`, 'Notification', textCte),
  );
  chunks.push(textBody);
  chunks.push(
    open(utf8 ? 'message/global-delivery-status' : 'message/delivery-status', 'Delivery report', statusCte),
  );
  chunks.push(status);
  if (returned) {
    const global = returnedCte === '8bit' && env.smtputf8;
    const type =
      returned.type === 'full'
        ? global
          ? 'message/global'
          : 'message/rfc822'
        : global
          ? 'message/global-headers'
          : 'text/rfc822-headers';
    chunks.push(
      open(type, returned.type === 'full' ? 'Undelivered Message' : 'Message Headers', returnedCte),
    );
    chunks.push(returned.body);
  }
  chunks.push(`${CRLF}--${boundary}--${CRLF}`);
  return Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c)));
}
