/**
 * @module receiver/received
 * The `Received:` trace header of RFC 5321 §4.4 (and RFC 3848 / RFC 6531 §3.7.3 `with` types),
 * prepended to every accepted message. `for` is added only for a single recipient, so a message to
 * many does not reveal the others to each of them.
 */

export interface ReceivedInfo {
  helo: string;
  clientIp: string;
  clientName?: string;
  hostname: string;
  esmtp: boolean;
  tls: boolean;
  auth: boolean;
  utf8: boolean;
  id: string;
  recipients: string[];
  date: Date;
}

/** RFC 5322 date-time in UTC: `Fri, 04 Dec 2026 21:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  // One message after another lands in the same second: format each second once.
  const sec = Math.floor(d.getTime() / 1000);
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastText = d.toUTCString().replace(/GMT$/, '+0000');
  }
  return lastText;
}
let lastSecond = NaN;
let lastText = '';

export function withProtocol(i: Pick<ReceivedInfo, 'esmtp' | 'tls' | 'auth' | 'utf8'>): string {
  if (!i.esmtp) return 'SMTP';
  const base = i.utf8 ? 'UTF8SMTP' : 'ESMTP';
  return base + (i.tls ? 'S' : '') + (i.auth ? 'A' : '');
}

/** A clean token for the header: the HELO name is client-supplied and must not break the header. */
function token(s: string): string {
  return s.replace(/[^\x21-\x7e\u0080-\uffff]/g, '?').slice(0, 255);
}

export function receivedHeader(i: ReceivedInfo): Buffer {
  const ipLit = i.clientIp.includes(':') ? `IPv6:${i.clientIp.replace(/^::ffff:/, '')}` : i.clientIp;
  const lit = i.clientIp.startsWith('::ffff:') ? i.clientIp.slice(7) : ipLit;
  const from = `from ${token(i.helo)} (${i.clientName ? token(i.clientName) + ' ' : ''}[${lit}])`;
  let h = `Received: ${from}\r\n\tby ${i.hostname} (ferrymail) with ${withProtocol(i)} id ${i.id}`;
  const one = i.recipients.length === 1 ? i.recipients[0] : undefined;
  if (one !== undefined) h += `\r\n\tfor <${token(one)}>`;
  h += `; ${rfc5322Date(i.date)}\r\n`;
  return Buffer.from(h, 'utf8');
}
