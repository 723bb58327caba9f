/**
 * @module smtp/address
 * RFC 5321 paths and mailboxes, parsed by hand (never by regular-expression pattern matching), pure.
 *
 * Grammar: RFC 5321 §4.1.2 (Path, Mailbox, Local-part, Domain), §4.1.3 (address literals), §3.3 and
 * Appendix C (source routes: accepted, recorded, ignored), §4.5.3.1 (64/255/256-octet limits), and
 * RFC 6531 §3.3 (SMTPUTF8: UTF8-non-ascii in atext and qtextSMTP, U-label sub-domains) when the caller
 * says UTF-8 is allowed for this path.
 *
 * Contract:
 * - The local part is kept byte-for-byte (`local`) next to its decoded value (`localValue`), so
 *   `"a"@x` and `a@x` compare equal by value but relay as given. Relay tricks (`user%other@local`,
 *   `"user@other"@local`, `other!user@local`, `<@other:user@local>`) come out as what they are: a
 *   local part of `local`, never a mailbox elsewhere.
 * - Errors are replies, not exceptions: 501 for syntax (5.1.7 sender, 5.1.3 recipient), 553 for
 *   length limits of a well-formed local part or domain, 553 5.6.7 for non-ASCII without SMTPUTF8.
 * - Stricter than the ABNF on one point: a domain name whose last label is all digits
 *   (`user@192.0.2.1`) is refused, since it can only be a mistyped address literal (RFC 3696 §2)
 *   and a resolver might treat it as an IP address.
 * - Input is a JS string as decoded from the wire; U+FFFD and lone surrogates mean undecodable
 *   octets and are refused.
 */
import { domainToASCII, domainToUnicode } from 'node:url';
import type { Mailbox, Path } from './types.js';

export interface PathError {
  code: 501 | 553 | 555;
  enhanced: string;
  text: string;
}

export interface ParseOpts {
  /** SMTPUTF8 allowed for this path (RFC 6531): non-ASCII local parts and U-label domains. */
  utf8: boolean;
  /** Whose path this is; picks 5.1.7 (sender) or 5.1.3 (recipient) in errors. Default recipient. */
  role?: 'sender' | 'recipient';
}

type Fail = { ok: false; error: PathError };

const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;
const MAX_LABEL = 63;
const MAX_PATH = 256;

// RFC 5322 §3.2.3 atext, ASCII part.
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;
const LDH_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/;
const LDH_STR = /^[A-Za-z0-9-]*[A-Za-z0-9]$/;
const DCONTENT = /^[\x21-\x5a\x5e-\x7e]+$/;

function octets(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** How a character is named in reply text: never raw controls or CR/LF. */
function show(cp: number): string {
  return cp > 0x20 && cp < 0x7f
    ? `'${String.fromCodePoint(cp)}'`
    : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Reply text is ASCII (RFC 5321 §4.2): anything else in an echoed name becomes '?'. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/gu, '?');
}

class Errors {
  constructor(private readonly sender: boolean) {}
  syntax(what: string): Fail {
    const who = this.sender ? 'sender' : 'recipient';
    return fail(501, this.sender ? '5.1.7' : '5.1.3', `Bad ${who} address syntax: ${what}`);
  }
  limit(what: string): Fail {
    const who = this.sender ? 'sender' : 'recipient';
    return fail(553, this.sender ? '5.1.7' : '5.1.3', `Bad ${who} address: ${what}`);
  }
  needsUtf8(): Fail {
    // RFC 6531 §3.7.4.1.
    return fail(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8');
  }
}

function fail(code: PathError['code'], enhanced: string, text: string): Fail {
  return { ok: false, error: { code, enhanced, text } };
}

/**
 * Checks one code point that is not plain ASCII text: controls and undecodable input are syntax
 * errors, other non-ASCII needs SMTPUTF8. Returns null when the code point is allowed as UTF-8 text.
 */
function checkSpecial(cp: number, utf8: boolean, err: Errors, where: string): Fail | null {
  if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
    return err.syntax(`control character ${show(cp)} in ${where}`);
  }
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffd) return err.syntax(`invalid UTF-8 in ${where}`);
  if (cp < 0x80) return err.syntax(`invalid character ${show(cp)} in ${where}`);
  return utf8 ? null : err.needsUtf8();
}

interface LocalPart {
  local: string;
  value: string;
  end: number;
  nonAscii: boolean;
}

function scanLocal(s: string, i: number, utf8: boolean, err: Errors): LocalPart | Fail {
  if (s[i] === '"') return scanQuoted(s, i, utf8, err);
  let j = i;
  let nonAscii = false;
  let prevDot = true; // a dot first is as wrong as two in a row
  while (j < s.length) {
    const cp = s.codePointAt(j) as number;
    const ch = s[j] as string;
    if (ch === '.') {
      if (j === i) return err.syntax('local part starts with a dot');
      if (prevDot) return err.syntax('local part has two dots in a row');
      prevDot = true;
      j++;
      continue;
    }
    if (cp < 0x80 && !ATEXT.test(ch)) break;
    if (cp >= 0x80) {
      const bad = checkSpecial(cp, utf8, err, 'local part');
      if (bad) return bad;
      nonAscii = true;
    }
    prevDot = false;
    j += cp > 0xffff ? 2 : 1;
  }
  if (j === i) {
    if (s[i] === '@') return err.syntax('empty local part');
    return err.syntax(i >= s.length || s[i] === '>' ? 'missing mailbox' : badCharAt(s, i, 'local part'));
  }
  if (prevDot) return err.syntax('local part ends with a dot');
  const local = s.slice(i, j);
  return { local, value: local, end: j, nonAscii };
}

function badCharAt(s: string, i: number, where: string): string {
  if (i >= s.length) return `unexpected end in ${where}`;
  const cp = s.codePointAt(i) as number;
  if (cp < 0x20 || cp === 0x7f) return `control character ${show(cp)} in ${where}`;
  return `invalid character ${show(cp)} in ${where}`;
}

function scanQuoted(s: string, i: number, utf8: boolean, err: Errors): LocalPart | Fail {
  let j = i + 1;
  let value = '';
  let nonAscii = false;
  for (;;) {
    if (j >= s.length) return err.syntax('unterminated quoted local part');
    const cp = s.codePointAt(j) as number;
    if (cp === 0x22) break;
    if (cp === 0x5c) {
      // quoted-pairSMTP = %d92 %d32-126: only printable ASCII or SP may be escaped.
      const next = s.codePointAt(j + 1);
      if (next === undefined) return err.syntax('unterminated quoted local part');
      if (next < 32 || next > 126) {
        if (next >= 0x80 && !utf8) return err.needsUtf8();
        return err.syntax(`backslash before ${show(next)} in quoted local part`);
      }
      value += String.fromCharCode(next);
      j += 2;
      continue;
    }
    if (cp < 32 || cp > 126) {
      const bad = checkSpecial(cp, utf8, err, 'quoted local part');
      if (bad) return bad;
      nonAscii = true;
    }
    value += String.fromCodePoint(cp);
    j += cp > 0xffff ? 2 : 1;
  }
  return { local: s.slice(i, j + 1), value, end: j + 1, nonAscii };
}

/** Why `d` is not an RFC 5321 Domain (RFC 6531 U-labels when utf8), or null when it is one. */
function domainProblem(d: string, utf8: boolean): { text: string; limit: boolean } | null {
  if (d === '') return { text: 'empty domain', limit: false };
  let ascii = d;
  if (/[^\x00-\x7f]/.test(d)) {
    if (!utf8) return { text: 'non-ASCII domain requires SMTPUTF8', limit: false };
    ascii = domainToASCII(d);
    // The round trip refuses what UTS 46 would silently map (full-width letters, ideographic dots,
    // non-NFC text, invalid labels): a U-label must already be in its canonical form.
    if (ascii === '' || domainToUnicode(ascii) !== d.toLowerCase()) {
      return { text: `'${printable(d)}' is not a valid internationalized domain name`, limit: false };
    }
  }
  const labels = ascii.split('.');
  for (const label of labels) {
    if (label === '') {
      if (ascii.startsWith('.')) return { text: 'domain starts with a dot', limit: false };
      if (ascii.endsWith('.')) return { text: 'domain ends with a dot', limit: false };
      return { text: 'domain has two dots in a row', limit: false };
    }
    if (!LDH_LABEL.test(label)) {
      const bad = /[^A-Za-z0-9-]/.exec(label);
      if (bad) {
        const cp = bad[0].codePointAt(0) as number;
        const kind = cp < 0x20 || cp === 0x7f ? 'control character' : 'invalid character';
        return { text: `${kind} ${show(cp)} in domain (letters, digits and '-' only)`, limit: false };
      }
      return { text: `domain label '${label}' starts or ends with '-'`, limit: false };
    }
    if (/^xn--/i.test(label) && domainToASCII(label) === '') {
      return { text: `domain label '${label}' is not a valid A-label`, limit: false };
    }
  }
  for (const label of labels) {
    if (label.length > MAX_LABEL)
      return { text: `domain label longer than ${MAX_LABEL} octets`, limit: true };
  }
  if (ascii.length > MAX_DOMAIN) return { text: `domain longer than ${MAX_DOMAIN} octets`, limit: true };
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) {
    return {
      text: `'${printable(d)}' is not a domain name; write an IP address as a literal, e.g. [192.0.2.1]`,
      limit: false,
    };
  }
  return null;
}

export function isValidDomainName(d: string, utf8: boolean): boolean {
  return domainProblem(d, utf8) === null;
}

/** Lowercased A-label form for routing and comparison; address literals are returned unchanged. */
export function domainToAscii(d: string): string {
  if (d.startsWith('[')) return d;
  if (!/[^\x00-\x7f]/.test(d)) return d.toLowerCase();
  // Invalid names never reach here from the parser; for direct callers the lowercase is the best key.
  return domainToASCII(d) || d.toLowerCase();
}

function ipv4Problem(a: string): string | null {
  const parts = a.split('.');
  if (parts.length !== 4) return `IPv4 literal '${a}' must have four numbers`;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return `IPv4 literal '${a}' has a bad number '${p}'`;
    if (Number(p) > 255) return `IPv4 literal '${a}': ${p} is out of range 0-255`;
  }
  return null;
}

/** RFC 5321 §4.1.3 IPv6-addr: full, compressed, and both with an embedded IPv4 tail. */
function ipv6Problem(a: string): string | null {
  const bad = `IPv6 literal '${a}'`;
  let hex = a;
  const lastColon = a.lastIndexOf(':');
  const tail = a.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (lastColon < 0) return `${bad} is not an IPv6 address`;
    const v4 = ipv4Problem(tail);
    if (v4) return `${bad}: ${v4}`;
    // The IPv4 tail stands for two groups; RFC 5321's group limits then read the same as without it.
    hex = a.slice(0, lastColon + 1) + '0:0';
  }
  if (/[^0-9A-Fa-f:]/.test(hex)) return `${bad} has an invalid character`;
  const dbl = hex.indexOf('::');
  if (dbl >= 0 && hex.indexOf('::', dbl + 1) >= 0) return `${bad} has '::' more than once`;
  const groupsOf = (part: string): string[] | null => {
    if (part === '') return [];
    const g = part.split(':');
    return g.every((x) => /^[0-9A-Fa-f]{1,4}$/.test(x)) ? g : null;
  };
  if (dbl < 0) {
    const g = groupsOf(hex);
    if (!g) return `${bad} has an empty or too long group`;
    return g.length === 8 ? null : `${bad} must have 8 groups, has ${g.length}`;
  }
  const left = groupsOf(hex.slice(0, dbl));
  const right = groupsOf(hex.slice(dbl + 2));
  if (!left || !right) return `${bad} has an empty or too long group`;
  // "::" stands for at least two zero groups, so at most 6 may be written beside it (§4.1.3).
  if (left.length + right.length > 6) return `${bad} has too many groups around '::'`;
  return null;
}

function literalProblem(s: string): { kind: 'ipv4' | 'ipv6' | 'general'; address: string } | string {
  if (s.length < 2 || s[0] !== '[' || s[s.length - 1] !== ']') return 'address literal must be in brackets';
  const inner = s.slice(1, -1);
  for (const ch of inner) {
    const cp = ch.codePointAt(0) as number;
    if (cp <= 0x20 || cp >= 0x7f)
      return `${cp < 0x80 && cp !== 0x20 ? 'control' : 'invalid'} character ${show(cp)} in address literal`;
  }
  const colon = inner.indexOf(':');
  if (colon < 0) {
    const p = ipv4Problem(inner);
    return p ?? { kind: 'ipv4', address: inner.split('.').map(Number).join('.') };
  }
  const tag = inner.slice(0, colon);
  const rest = inner.slice(colon + 1);
  if (tag.toLowerCase() === 'ipv6') {
    const p = ipv6Problem(rest);
    if (p) return p;
    // Canonical RFC 5952 text, so policy compares one spelling per address.
    return { kind: 'ipv6', address: new URL(`http://[${rest}]/`).hostname.slice(1, -1) };
  }
  if (!LDH_STR.test(tag)) return `address literal tag '${tag}' is not letters, digits and '-'`;
  if (!DCONTENT.test(rest)) return `address literal '${s}' has no valid content after the tag`;
  return { kind: 'general', address: inner };
}

/** `[192.0.2.1]`, `[IPv6:2001:db8::1]`, `[tag:content]`; null when not an RFC 5321 address-literal. */
export function parseAddressLiteral(
  s: string,
): { kind: 'ipv4' | 'ipv6' | 'general'; address: string } | null {
  const r = literalProblem(s);
  return typeof r === 'string' ? null : r;
}

interface Scanned {
  mailbox: Mailbox;
  end: number;
}

/**
 * Scans `Mailbox` from s[i]. The domain runs to the first `stop` character (or the end of `s`).
 * Also answers `postmaster` when the local part stands alone before `stop` and `allowBare` is set.
 */
function scanMailbox(
  s: string,
  i: number,
  stop: string | null,
  utf8: boolean,
  err: Errors,
  allowBare: boolean,
): Scanned | { postmaster: string; end: number } | Fail {
  const lp = scanLocal(s, i, utf8, err);
  if ('ok' in lp) return lp;
  if (allowBare && s[lp.end] === stop && lp.local.toLowerCase() === 'postmaster') {
    return { postmaster: lp.local, end: lp.end };
  }
  if (s[lp.end] !== '@') {
    if (lp.end >= s.length || s[lp.end] === stop) return err.syntax('missing @domain');
    return err.syntax(badCharAt(s, lp.end, 'local part'));
  }
  if (octets(lp.local) > MAX_LOCAL) return err.limit(`local part longer than ${MAX_LOCAL} octets`);
  const d = scanDomainOrLiteral(s, lp.end + 1, stop, utf8, err);
  if ('ok' in d) return d;
  const mailbox: Mailbox = {
    local: lp.local,
    localValue: lp.value,
    domain: d.domain,
    domainKind: d.kind,
    domainAscii: d.ascii,
    utf8: lp.nonAscii || /[^\x00-\x7f]/.test(d.domain),
  };
  return { mailbox, end: d.end };
}

interface ScannedDomain {
  domain: string;
  kind: Mailbox['domainKind'];
  ascii: string;
  end: number;
}

function scanDomainOrLiteral(
  s: string,
  i: number,
  stop: string | null,
  utf8: boolean,
  err: Errors,
): ScannedDomain | Fail {
  if (s[i] === '[') {
    const close = s.indexOf(']', i);
    if (close < 0) return err.syntax('unterminated address literal');
    const lit = s.slice(i, close + 1);
    const r = literalProblem(lit);
    if (typeof r === 'string') return err.syntax(r);
    return { domain: lit, kind: r.kind, ascii: r.address, end: close + 1 };
  }
  return scanDomainName(s, i, stop, utf8, err);
}

function scanDomainName(
  s: string,
  i: number,
  stop: string | null,
  utf8: boolean,
  err: Errors,
): ScannedDomain | Fail {
  let j = i;
  while (j < s.length && (stop === null || !stop.includes(s[j] as string))) {
    const cp = s.codePointAt(j) as number;
    if (cp < 0x20 || cp >= 0x7f) {
      const bad = checkSpecial(cp, utf8, err, 'domain');
      if (bad) return bad;
    }
    j += cp > 0xffff ? 2 : 1;
  }
  const domain = s.slice(i, j);
  const p = domainProblem(domain, utf8);
  if (p) return p.limit ? err.limit(p.text) : err.syntax(p.text);
  return { domain, kind: 'name', ascii: domainToAscii(domain), end: j };
}

/** Parse a Path starting at s[pos] which must be '<'. Returns the path and the index just after '>'. */
export function parsePath(
  s: string,
  pos: number,
  opts: ParseOpts,
): { ok: true; path: Path; end: number } | { ok: false; error: PathError } {
  const err = new Errors(opts.role === 'sender');
  if (s[pos] !== '<') return err.syntax('path must be enclosed in angle brackets, e.g. <user@example.com>');
  let i = pos + 1;
  if (s[i] === '>') return { ok: true, path: { kind: 'null' }, end: i + 1 };
  const route: string[] = [];
  if (s[i] === '@') {
    // A-d-l ":" (source route, RFC 5321 §3.3 and Appendix C): must be accepted, is then ignored.
    for (;;) {
      const d = scanDomainName(s, i + 1, ',:>', opts.utf8, err);
      if ('ok' in d) return d;
      route.push(d.domain);
      i = d.end;
      if (s[i] === ':') break;
      if (s[i] !== ',' || s[i + 1] !== '@')
        return err.syntax("source route must be '@host,@host:' before the mailbox");
      i++;
    }
    i++;
  }
  const m = scanMailbox(s, i, '>', opts.utf8, err, route.length === 0);
  if ('ok' in m) return m;
  if (s[m.end] !== '>') {
    return err.syntax(m.end >= s.length ? "missing '>' at the end of the path" : badCharAt(s, m.end, 'path'));
  }
  const end = m.end + 1;
  if (octets(s.slice(pos, end)) > MAX_PATH) return err.syntax(`path longer than ${MAX_PATH} octets`);
  if ('postmaster' in m) return { ok: true, path: { kind: 'postmaster', raw: m.postmaster }, end };
  return { ok: true, path: { kind: 'mailbox', mailbox: m.mailbox, route }, end };
}

/** The whole string is `local@domain` (no brackets, no route); null if it is not a valid Mailbox. */
export function parseMailbox(s: string, opts: ParseOpts): Mailbox | null {
  const m = scanMailbox(s, 0, null, opts.utf8, new Errors(false), false);
  if ('ok' in m || 'postmaster' in m || m.end !== s.length) return null;
  return m.mailbox;
}
