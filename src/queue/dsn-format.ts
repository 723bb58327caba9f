/**
 * @module queue/dsn-format
 * Small pure text helpers for building DSNs (queue/bounce.ts): RFC 5322 dates, header fields
 * folded under 78 columns and never over 998 octets (RFC 5322 §2.1.1, §2.2.3), wrapped plain
 * text, and checks on the returned message (header section, 8-bit, line cleanliness).
 */
export const CRLF = '\r\n';
export const MAX_LINE = 998;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC: `Fri, 04 Dec 2026 21:07:01 +0000`. */
export function formatDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

export function nonAscii(s: string): boolean {
  return /[^\x00-\x7f]/.test(s);
}

export function has8bit(b: Buffer): boolean {
  for (const byte of b) if (byte >= 0x80) return true;
  return false;
}

/** Values go into one header field: no CR, LF or other controls. */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** Index at which to cut `s` so the head is at most `max` UTF-8 bytes (at least one character). */
function cutAt(s: string, max: number): number {
  let bytes = 0;
  let i = 0;
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    i += ch.length;
  }
  return Math.max(i, 1);
}

/** Break `line` into pieces of at most 998 bytes; continuation pieces start with `prefix`. */
function hardSplit(line: string, prefix: string, out: string[]): string {
  while (Buffer.byteLength(line) > MAX_LINE) {
    const at = cutAt(line, MAX_LINE - prefix.length);
    out.push(line.slice(0, at));
    line = prefix + line.slice(at);
  }
  return line;
}

/** `Name: value`, folded at spaces near 78 columns; a run with no space over 998 bytes is split. */
export function field(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let words = 0;
  for (const w of clean(value).split(' ')) {
    if (w === '') continue;
    if (words > 0 && line.length + 1 + w.length > 78) {
      lines.push(line);
      line = '';
    }
    line = hardSplit(line + ' ' + w, ' ', lines);
    words++;
  }
  lines.push(line);
  return lines.join(CRLF) + CRLF;
}

/** Plain text wrapped at `width` columns; continuation lines start with `indent`. */
export function wrap(text: string, width = 76, indent = ''): string[] {
  const out: string[] = [];
  let line = '';
  let empty = true;
  for (const w of clean(text).split(' ')) {
    if (w === '') continue;
    if (!empty && line.length + 1 + w.length > width) {
      out.push(line);
      line = indent;
      empty = true;
    }
    line = hardSplit(line + (empty ? '' : ' ') + w, indent, out);
    empty = false;
  }
  if (!empty) out.push(line);
  return out;
}

/** Header section of a stored message (without the empty line), or the whole of it. */
export function headerSection(message: Buffer): Buffer {
  const end = message.indexOf('\r\n\r\n');
  return end < 0 ? message : message.subarray(0, end + 2);
}

/** Can this be sent as a 7bit/8bit MIME body? No NUL, no bare CR/LF, no line over 998. */
export function lineClean(b: Buffer): boolean {
  let lineLen = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 0) return false;
    if (c === 0x0d) {
      if (b[i + 1] !== 0x0a) return false;
      i++;
      lineLen = 0;
      continue;
    }
    if (c === 0x0a) return false;
    if (++lineLen > MAX_LINE) return false;
  }
  return true;
}

export function originalMessageId(message: Buffer | undefined): string | undefined {
  if (!message) return undefined;
  const head = headerSection(message)
    .toString('latin1')
    .replace(/\r\n[ \t]+/g, ' ');
  const m = /^message-id:[ \t]*(<[^>\r\n]{1,900}>)/im.exec(head);
  return m?.[1];
}
