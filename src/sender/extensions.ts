/**
 * @module sender/extensions
 * The client's view of ESMTP: parse the EHLO reply into the extensions the peer offers
 * (RFC 5321 §4.1.1.1), and build MAIL / RCPT lines with the parameters those extensions allow:
 * SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531 §3.4), RET / ENVID / NOTIFY / ORCPT
 * (RFC 3461, values xtext-encoded per §4). Pure.
 */
import { reply as makeReply, type Reply } from '../smtp/reply.js';
import type { DsnNotify } from '../queue/types.js';
import type { DeliveryRequest } from '../delivery/types.js';
import { xtextEncode } from '../smtp/xtext.js';

export interface Extensions {
  /** Keyword (upper case) → parameter text (may be empty). */
  readonly map: ReadonlyMap<string, string>;
  /** RFC 1870 SIZE limit; 0 when offered without a limit or not offered. */
  readonly maxSize: number;
  /** AUTH mechanisms, upper case. */
  readonly authMechanisms: readonly string[];
  has(keyword: string): boolean;
}

export const NO_EXTENSIONS: Extensions = makeExtensions(new Map());

/** Parse a 250 EHLO/LHLO reply: the first line greets, each later line is `keyword [params]`. */
export function parseEhlo(r: Reply): Extensions {
  const map = new Map<string, string>();
  for (const line of r.lines.slice(1)) {
    // Some old servers write `AUTH=LOGIN PLAIN`; treat `=` after the keyword like a space.
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (!m || !m[1]) continue;
    const key = m[1].toUpperCase();
    const params = (m[2] ?? '').trim();
    const prev = map.get(key);
    map.set(key, prev ? `${prev} ${params}`.trim() : params);
  }
  return makeExtensions(map);
}

function makeExtensions(map: Map<string, string>): Extensions {
  const sizeText = map.get('SIZE');
  const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : 0;
  const auth = (map.get('AUTH') ?? '')
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map((s) => s.toUpperCase());
  return {
    map,
    maxSize: size,
    authMechanisms: auth,
    has: (k) => map.has(k.toUpperCase()),
  };
}

/** What the MAIL and RCPT lines need to know about the message; built from the Envelope. */
export interface TransactionSpec {
  /** Reverse-path mailbox; `''` for `<>`. */
  sender: string;
  recipients: TxRecipient[];
  /** Exact size of the stored message in octets (before dot-stuffing), for SIZE=. */
  size: number;
  /** The body holds octets above 127 (envelope BODY=8BITMIME or BINARYMIME). */
  eightBit: boolean;
  /** The envelope needs SMTPUTF8 (RFC 6531). */
  smtputf8: boolean;
  ret?: 'FULL' | 'HDRS';
  /** ENVID, decoded (it is xtext-encoded here). */
  envid?: string;
}

export interface TxRecipient {
  address: string;
  notify?: DsnNotify[];
  /** `addr-type;address`, decoded (the address part is xtext-encoded here). */
  orcpt?: string;
}

/** `MAIL FROM:<sender> params` (no CRLF). */
export function mailLine(tx: TransactionSpec, ext: Extensions): string {
  let line = `MAIL FROM:<${tx.sender}>`;
  if (ext.has('SIZE')) line += ` SIZE=${tx.size}`;
  if (tx.eightBit && ext.has('8BITMIME')) line += ' BODY=8BITMIME';
  if (tx.smtputf8 && ext.has('SMTPUTF8')) line += ' SMTPUTF8';
  if (ext.has('DSN')) {
    if (tx.ret) line += ` RET=${tx.ret}`;
    if (tx.envid !== undefined && tx.envid !== '') line += ` ENVID=${xtextEncode(tx.envid)}`;
  }
  return line;
}

/** `RCPT TO:<address> params` (no CRLF). */
export function rcptLine(r: TxRecipient, ext: Extensions): string {
  let line = `RCPT TO:<${r.address}>`;
  if (ext.has('DSN')) {
    if (r.notify && r.notify.length > 0) line += ` NOTIFY=${r.notify.join(',')}`;
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      if (semi > 0) line += ` ORCPT=${r.orcpt.slice(0, semi)};${xtextEncode(r.orcpt.slice(semi + 1))}`;
    }
  }
  return line;
}

/**
 * The transaction for some of a request's recipients. 8-bit is claimed only when the envelope
 * says so AND the data really holds an octet above 127: many clients declare BODY=8BITMIME for
 * plain ASCII, and such mail must still reach a 7-bit peer (RFC 6152 §3).
 */
export function transactionSpec(
  req: DeliveryRequest,
  recipients: DeliveryRequest['recipients'],
): TransactionSpec {
  const env = req.envelope;
  const spec: TransactionSpec = {
    sender: env.sender,
    recipients: recipients.map((r) => {
      const original = env.recipients[r.index];
      const tr: TxRecipient = { address: r.address };
      if (original?.notify && original.notify.length > 0) tr.notify = original.notify;
      if (original?.orcpt) tr.orcpt = original.orcpt;
      return tr;
    }),
    size: req.message.length,
    eightBit: env.body !== '7BIT' && hasEightBit(req.message),
    smtputf8: env.smtputf8,
  };
  if (env.ret) spec.ret = env.ret;
  if (env.envid !== undefined) spec.envid = env.envid;
  return spec;
}

function hasEightBit(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if ((data[i] as number) > 127) return true;
  return false;
}

/**
 * What the peer lacks for this message, as the reply to record for every recipient, or null.
 * SMTPUTF8 (RFC 6531 §3.2: no downgrade here), 8-bit data without 8BITMIME (RFC 6152 §3: we do
 * not convert), or more octets than its SIZE (RFC 1870 §6).
 */
export function missingExtension(spec: TransactionSpec, ext: Extensions): Reply | null {
  if (spec.smtputf8 && !ext.has('SMTPUTF8')) {
    return makeReply(
      550,
      '5.6.7',
      'SMTPUTF8 required: the message needs SMTPUTF8 and the peer does not offer it',
    );
  }
  if (spec.eightBit && !ext.has('8BITMIME')) {
    return makeReply(554, '5.6.3', 'the message has 8-bit content and the peer does not offer 8BITMIME');
  }
  if (ext.maxSize > 0 && spec.size > ext.maxSize) {
    return makeReply(552, '5.3.4', `message size ${spec.size} exceeds the peer's limit of ${ext.maxSize}`);
  }
  return null;
}
