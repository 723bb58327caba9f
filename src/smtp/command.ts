/**
 * @module smtp/command
 * Command lines and their arguments, pure: verb split (RFC 5321 §4.1.1), `MAIL FROM:` / `RCPT TO:`
 * arguments with ESMTP parameters (§4.1.2, RFC 1869 esmtp-param), and the EHLO/HELO argument.
 *
 * Contract:
 * - Verbs and the `FROM:`/`TO:` keywords are case-insensitive (ASCII only); arguments are kept as given.
 * - Paths must be in angle brackets. One space after the colon (`MAIL FROM: <a@b>`) is tolerated,
 *   as Postfix does, because widespread clients send it and it is unambiguous; anything else
 *   between the colon and `<` is a syntax error.
 * - Parameters are separated by SP; runs of SP and trailing SP are tolerated (no ambiguity, real
 *   clients send them). A keyword may appear once. Parameter values are never decoded here (xtext
 *   is decoded by whoever knows the parameter: smtp/xtext.ts).
 * - SMTPUTF8 (RFC 6531 §3.4): in MAIL, `opts.utf8` says the server offers SMTPUTF8 to this client;
 *   a non-ASCII reverse-path or parameter value is then accepted only when the same command carries
 *   the SMTPUTF8 parameter. In RCPT, `opts.utf8` says the transaction has it.
 */
import { parseAddressLiteral, parsePath, isValidDomainName } from './address.js';
import type { ParseOpts, PathError } from './address.js';
import type { Path } from './types.js';

export interface CommandLine {
  /** The verb, ASCII-uppercased. */
  verb: string;
  /** Everything after the first SP, as given. Empty when there is none. */
  arg: string;
}

export interface EsmtpParam {
  /** ASCII-uppercased keyword. */
  keyword: string;
  /** The value as given (case kept, not decoded), or null for a bare keyword. */
  value: string | null;
}

type ArgResult = { ok: true; path: Path; params: EsmtpParam[] } | { ok: false; error: PathError };

function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** Split a command line (without CRLF) at its first SP. */
export function splitCommand(line: string): CommandLine {
  const sp = line.indexOf(' ');
  if (sp < 0) return { verb: asciiUpper(line), arg: '' };
  return { verb: asciiUpper(line.slice(0, sp)), arg: line.slice(sp + 1) };
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/** Parameters, or why they are wrong. */
function scanParams(s: string, utf8: boolean): EsmtpParam[] | string {
  const out: EsmtpParam[] = [];
  const seen = new Set<string>();
  for (const tok of s.split(' ')) {
    if (tok === '') continue;
    const eq = tok.indexOf('=');
    const kw = eq < 0 ? tok : tok.slice(0, eq);
    if (!KEYWORD.test(kw)) {
      return kw === ''
        ? `parameter '${printable(tok)}' has no keyword`
        : `bad parameter keyword '${printable(kw)}'`;
    }
    const keyword = asciiUpper(kw);
    if (seen.has(keyword)) return `parameter ${keyword} given twice`;
    seen.add(keyword);
    if (eq < 0) {
      out.push({ keyword, value: null });
      continue;
    }
    const value = tok.slice(eq + 1);
    if (value === '') return `parameter ${keyword} has an empty value`;
    for (const ch of value) {
      const cp = ch.codePointAt(0) as number;
      // esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 adds UTF8-non-ascii.
      if (cp >= 33 && cp <= 126 && cp !== 61) continue;
      if (cp === 61) return `parameter ${keyword} has '=' in its value (use xtext +3D)`;
      if (cp < 0xa0 || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffd) {
        return `parameter ${keyword} has an invalid character in its value`;
      }
      if (!utf8) return `parameter ${keyword} has a non-ASCII value without SMTPUTF8`;
    }
    out.push({ keyword, value });
  }
  return out;
}

function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?');
}

/**
 * `esmtp-param *(SP esmtp-param)`; null on a syntax error. `utf8` allows non-ASCII values
 * (RFC 6531), default false.
 */
export function parseEsmtpParams(s: string, utf8 = false): EsmtpParam[] | null {
  const r = scanParams(s, utf8);
  return typeof r === 'string' ? null : r;
}

function paramError(text: string): { ok: false; error: PathError } {
  return { ok: false, error: { code: 555, enhanced: '5.5.4', text: `Bad parameter syntax: ${text}` } };
}

function syntax(enhanced: string, text: string): { ok: false; error: PathError } {
  return { ok: false, error: { code: 501, enhanced, text } };
}

/** Shared by MAIL and RCPT: `<kw>:` [SP] Path [SP params]. */
function parsePathArg(arg: string, kw: string, opts: ParseOpts, usage: string): ArgResult {
  const sender = opts.role === 'sender';
  if (asciiUpper(arg.slice(0, kw.length)) !== kw) return syntax('5.5.4', `Syntax: ${usage}`);
  let i = kw.length;
  if (arg[i] === ' ') i++; // one SP after the colon: Postfix-compatible leniency (see module comment)
  if (arg[i] !== '<') {
    const who = sender ? 'sender' : 'recipient';
    const what = i >= arg.length ? 'missing path' : 'path must be enclosed in angle brackets';
    return syntax(sender ? '5.1.7' : '5.1.3', `Bad ${who} address syntax: ${what} (${usage})`);
  }
  const p = parsePath(arg, i, opts);
  if (!p.ok) return p;
  const rest = arg.slice(p.end);
  if (rest !== '' && rest[0] !== ' ') {
    return syntax('5.5.4', `Unexpected text after the path; parameters must follow a space`);
  }
  const params = scanParams(rest, opts.utf8);
  if (typeof params === 'string') return paramError(params);
  return { ok: true, path: p.path, params };
}

/** `MAIL FROM:<path> [SP params]` arg after the verb, i.e. "FROM:<a@b> SIZE=10". */
export function parseMailArg(arg: string, opts: ParseOpts): ArgResult {
  const r = parsePathArg(
    arg,
    'FROM:',
    { utf8: opts.utf8, role: 'sender' },
    'MAIL FROM:<address> [parameters]',
  );
  if (!r.ok) return r;
  if (r.path.kind === 'postmaster') {
    return syntax('5.1.7', 'Bad sender address syntax: <Postmaster> without a domain is only a recipient');
  }
  if (!r.params.some((p) => p.keyword === 'SMTPUTF8')) {
    if (r.path.kind === 'mailbox' && r.path.mailbox.utf8) {
      return {
        ok: false,
        error: { code: 553, enhanced: '5.6.7', text: 'Non-ASCII address requires SMTPUTF8' },
      };
    }
    const p = r.params.find((x) => x.value !== null && /[^\x00-\x7f]/.test(x.value));
    if (p) return paramError(`parameter ${p.keyword} has a non-ASCII value without SMTPUTF8`);
  }
  return r;
}

/** "TO:<a@b> NOTIFY=..."; the null path is NOT allowed here; <Postmaster> is. */
export function parseRcptArg(arg: string, opts: ParseOpts): ArgResult {
  const r = parsePathArg(
    arg,
    'TO:',
    { utf8: opts.utf8, role: 'recipient' },
    'RCPT TO:<address> [parameters]',
  );
  if (!r.ok) return r;
  if (r.path.kind === 'null') return syntax('5.1.3', 'Bad recipient address syntax: <> is not a recipient');
  return r;
}

/**
 * EHLO/HELO argument: a Domain or address-literal (RFC 5321 §4.1.1.1), ASCII only (SMTPUTF8 is
 * not negotiated yet). Trailing SP is tolerated; other text after the domain is not.
 */
export function parseHeloArg(arg: string): { ok: true; domain: string } | { ok: false } {
  const domain = arg.replace(/ +$/, '');
  if (domain === '') return { ok: false };
  const good = domain.startsWith('[')
    ? parseAddressLiteral(domain) !== null
    : isValidDomainName(domain, false);
  return good ? { ok: true, domain } : { ok: false };
}
