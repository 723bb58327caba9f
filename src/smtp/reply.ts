/**
 * @module smtp/reply
 * One Reply type for both directions (RFC 5321 §4.2): the receiver formats it, the sender parses it.
 * Enhanced status codes are RFC 3463 `class.subject.detail`; when present they open every line of
 * text (RFC 2034 §4).
 */

export interface Reply {
  /** Three-digit reply code, 200-599. */
  code: number;
  /** RFC 3463 enhanced status code such as `5.1.1`, when known. */
  enhanced?: string;
  /** Text lines, without code, enhanced code or CRLF. At least one line (it may be empty). */
  lines: string[];
  /** The receiver closes the connection after sending this reply (221, 421). */
  close?: boolean;
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** Build a reply; `text` may hold several lines separated by `\n`. */
export function reply(code: number, enhanced: string | undefined, text: string, close = false): Reply {
  if (!Number.isInteger(code) || code < 200 || code > 599) {
    throw new RangeError(`Cannot build a reply: 'code' must be an integer 200-599: current value is ${code}`);
  }
  if (enhanced !== undefined && !ENHANCED.test(enhanced)) {
    throw new RangeError(
      `Cannot build a reply: 'enhanced' must look like 5.1.1: current value is ${enhanced}`,
    );
  }
  const r: Reply = { code, lines: text.split('\n') };
  if (enhanced !== undefined) r.enhanced = enhanced;
  if (close) r.close = true;
  return r;
}

/** 4yz: try again later. */
export function isTransient(r: Reply): boolean {
  return r.code >= 400 && r.code < 500;
}

export function isPositive(r: Reply): boolean {
  return r.code >= 200 && r.code < 400;
}

/** The wire form, CRLF-terminated: `250-first\r\n250 last\r\n`. Lines never contain CR or LF. */
export function formatReply(r: Reply): string {
  const prefix = r.enhanced ? ' ' + r.enhanced : '';
  const lines = r.lines.length > 0 ? r.lines : [''];
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-';
    const text = (lines[i] ?? '').replace(/[\r\n]/g, ' ');
    const body = prefix + (text.length > 0 ? (prefix ? ' ' : '') + text : '');
    out += `${r.code}${sep}${body.startsWith(' ') ? body.slice(1) : body}\r\n`;
  }
  return out;
}

/** One-line summary for logs and queue state: `550 5.1.1 no such user`. */
export function replyToString(r: Reply): string {
  return `${r.code}${r.enhanced ? ' ' + r.enhanced : ''} ${r.lines.join(' / ')}`.trimEnd();
}

/** Longest reply line we accept from a peer; RFC 5321 §4.5.3.1.5 says 512, real servers exceed it. */
const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 1000;

export class ReplySyntaxError extends Error {
  readonly code = 'SMTP_REPLY_SYNTAX';
  constructor(message: string) {
    super(message);
    this.name = 'ReplySyntaxError';
  }
}

/**
 * Incremental reply parser for the sender-SMTP. Push bytes as they arrive; complete replies come
 * out in order. Accepts CRLF and (leniently, as a client) bare LF line ends. The enhanced code is
 * taken from the last line when it is a well-formed RFC 3463 code matching the reply's class.
 */
export class ReplyParser {
  private buf = '';
  private pending: { code: number; lines: string[] } | null = null;

  /** @throws ReplySyntaxError on a line that is not `ddd[ -]text`, or on an unbounded reply. */
  push(chunk: Buffer | string): Reply[] {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const out: Reply[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) {
        if (this.buf.length > MAX_REPLY_LINE) throw new ReplySyntaxError('reply line too long');
        break;
      }
      let line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const r = this.line(line);
      if (r) out.push(r);
    }
    return out;
  }

  /** Bytes received that are not yet part of a complete reply. */
  get buffered(): number {
    return this.buf.length + (this.pending ? 1 : 0);
  }

  private line(line: string): Reply | null {
    const m = /^([2-5]\d\d)([ -]?)(.*)$/s.exec(line);
    if (!m) throw new ReplySyntaxError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    const sep = m[2];
    const text = m[3] ?? '';
    if (this.pending && this.pending.code !== code) {
      throw new ReplySyntaxError(
        `reply code changed inside a multi-line reply: ${this.pending.code} then ${code}`,
      );
    }
    if (!this.pending) this.pending = { code, lines: [] };
    this.pending.lines.push(text);
    if (this.pending.lines.length > MAX_REPLY_LINES) throw new ReplySyntaxError('too many reply lines');
    if (sep === '-') return null;
    const { lines } = this.pending;
    this.pending = null;
    return splitEnhanced(code, lines);
  }
}

/** Parse one complete reply in wire form (for tests and scripted peers). */
export function parseReply(wire: string): Reply {
  const p = new ReplyParser();
  const rs = p.push(wire.endsWith('\n') ? wire : wire + '\r\n');
  if (rs.length !== 1 || p.buffered !== 0) throw new ReplySyntaxError('expected exactly one reply');
  return rs[0] as Reply;
}

function splitEnhanced(code: number, lines: string[]): Reply {
  const cls = String(Math.floor(code / 100));
  const last = lines[lines.length - 1] ?? '';
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(last);
  if (m && m[1]?.[0] === cls) {
    const enh = m[1];
    const strip = (l: string) => (l.startsWith(enh + ' ') ? l.slice(enh.length + 1) : l === enh ? '' : l);
    return { code, enhanced: enh, lines: lines.map(strip) };
  }
  return { code, lines };
}
