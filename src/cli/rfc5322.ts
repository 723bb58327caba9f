/**
 * @module cli/rfc5322
 * Just enough RFC 5322 for the sendmail command: split a message into header fields and body, read the
 * addresses of To/Cc/Bcc (display names, comments, quoted strings, groups), check one address, and write
 * the Date:, Message-ID: and From: fields that a message from a script often lacks. Pure; messages are
 * handled as `latin1` strings so every byte survives unchanged.
 */
import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';

export interface HeaderField {
  /** Field name as written, e.g. `Subject`. */
  name: string;
  /** The whole field, continuation lines included, each line ending in CRLF. */
  raw: string;
}

export interface SplitMessage {
  fields: HeaderField[];
  /** Everything after the header block's empty line (or the first line that is not a header). */
  body: string;
  /** False when the text had no empty line after its header fields. */
  hadSeparator: boolean;
}

/** Any bare LF or bare CR becomes CRLF; the result ends with CRLF unless it is empty. */
export function toCrlf(data: Buffer): Buffer {
  const s = data.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  return Buffer.from(s.length === 0 || s.endsWith('\r\n') ? s : s + '\r\n', 'latin1');
}

const FIELD_START = /^([!-9;-~]+)[ \t]*:/;

/** Split CRLF text into header fields and body. A leading mbox `From ` line is dropped. */
export function splitMessage(text: string): SplitMessage {
  let pos = 0;
  if (text.startsWith('From ')) {
    const nl = text.indexOf('\r\n');
    pos = nl < 0 ? text.length : nl + 2;
  }
  const fields: HeaderField[] = [];
  while (pos < text.length) {
    const nl = text.indexOf('\r\n', pos);
    const end = nl < 0 ? text.length : nl + 2;
    const line = text.slice(pos, end);
    if (line === '\r\n') return { fields, body: text.slice(end), hadSeparator: true };
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      last.raw += line;
    } else {
      const m = FIELD_START.exec(line);
      if (!m) return { fields, body: text.slice(pos), hadSeparator: false };
      fields.push({ name: m[1] ?? '', raw: line });
    }
    pos = end;
  }
  return { fields, body: '', hadSeparator: false };
}

/** The unfolded value of a field (after the colon), as UTF-8 text. */
export function fieldValue(f: HeaderField): string {
  const value = f.raw.slice(f.raw.indexOf(':') + 1).replace(/\r\n/g, '');
  return Buffer.from(value, 'latin1').toString('utf8').trim();
}

function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (s[i + 1] ?? '');
      i++;
    } else if (quoted) {
      out += c;
      if (c === '"') quoted = false;
    } else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out;
}

/**
 * The addr-specs of an address list: `"Doe, J" <j@x>, k@y (Kay), team: a@b, c@d;` → `j@x`, `k@y`, `a@b`,
 * `c@d`. Items that hold no address (an empty group) yield nothing; malformed ones are returned as found,
 * for the caller's address check to reject by name.
 */
export function parseAddressList(value: string): string[] {
  const s = stripComments(value);
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  const flush = () => {
    const item = cur.trim();
    cur = '';
    if (item === '') return;
    const lt = indexOutsideQuotes(item, '<');
    if (lt >= 0) {
      const gt = item.indexOf('>', lt);
      let inner = item.slice(lt + 1, gt < 0 ? undefined : gt).trim();
      if (inner.startsWith('@')) inner = inner.slice(inner.indexOf(':') + 1);
      if (inner !== '') out.push(inner);
    } else {
      out.push(item.replace(/\s+(?=@)|(?<=@)\s+/g, ''));
    }
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (quoted) {
      cur += c;
      if (c === '\\') cur += s[++i] ?? '';
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      cur += c;
    } else if (angle) {
      cur += c;
      if (c === '>') angle = false;
    } else if (c === '<') {
      angle = true;
      cur += c;
    } else if (c === ':') cur = '';
    else if (c === ',' || c === ';') flush();
    else cur += c;
  }
  flush();
  return out;
}

function indexOutsideQuotes(s: string, ch: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ch && !quoted) return i;
  }
  return -1;
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\\u0080-\\uffff]+";
const DOT_ATOM = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`);
const QUOTED = /^"(?:[^"\\\r\n]|\\[\x20-\x7e])*"$/;

/**
 * Check an envelope address from the command line or a header. A name without `@` (`root`, as cron
 * writes it) gets `@qualifyDomain`. Returns the address, or undefined when it is malformed.
 */
export function checkAddress(addr: string, qualifyDomain: string): string | undefined {
  const a = addr.trim();
  if (a.length === 0 || a.length > 320) return undefined;
  const at = a.lastIndexOf('@');
  const local = at < 0 ? a : a.slice(0, at);
  const domain = at < 0 ? qualifyDomain : a.slice(at + 1);
  if (!(DOT_ATOM.test(local) || QUOTED.test(local)) || local.length > 256) return undefined;
  if (domain.startsWith('[') && domain.endsWith(']')) {
    const lit = domain.slice(1, -1);
    if (isIP(lit) === 4 || (lit.toLowerCase().startsWith('ipv6:') && isIP(lit.slice(5)) === 6))
      return `${local}@${domain}`;
    return undefined;
  }
  const ascii = domainToASCII(domain);
  if (
    ascii === '' ||
    !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(ascii)
  ) {
    return undefined;
  }
  return `${local}@${domain}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date in the given offset from UTC (minutes east): `Fri, 04 Dec 2026 21:07:01 +0000`. */
export function formatRfc5322Date(ms: number, offsetMinutes = 0): string {
  const d = new Date(ms + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(offsetMinutes);
  return (
    `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${sign}${pad(Math.floor(off / 60))}${pad(off % 60)}`
  );
}

/** A display name as a phrase: an atom run as is, else a quoted string, else RFC 2047 for non-ASCII. */
export function encodePhrase(name: string): string {
  if (/[^\x20-\x7e]/.test(name)) return `=?UTF-8?B?${Buffer.from(name, 'utf8').toString('base64')}?=`;
  if (/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$/.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}
