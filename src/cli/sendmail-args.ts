/**
 * @module cli/sendmail-args
 * The sendmail command line as cron, PHP mail(), git send-email and mutt use it, read getopt-style
 * (clustered flags `-ti`, values attached `-fme@x` or apart `-f me@x`). Options that only tune classic
 * sendmail's behaviour (`-oem`, `-odb`, `-v`, `-N`, …) are accepted and ignored, so callers never fail
 * on them. Pure.
 */

export type SendmailMode = 'deliver' | 'list-queue' | 'flush-queue' | 'noop';

export interface SendmailOptions {
  mode: SendmailMode;
  /** Recipients named as arguments (comma-separated lists split). */
  recipients: string[];
  /** -t: take recipients from To/Cc/Bcc too. */
  extractRecipients: boolean;
  /** -f / -r: envelope sender; `''` for the null sender (`-f '<>'`). */
  sender?: string;
  /** -F: full name for a From: we add. */
  fullName?: string;
  /** -i / -oi: a line of a single dot is text, not the end of input. */
  ignoreDots: boolean;
  /** --config / -c / -C. */
  configPath?: string;
  help: boolean;
}

export type SendmailArgsResult = { ok: true; options: SendmailOptions } | { ok: false; error: string };

/** Letters whose option takes a value (sendmail's getopt string, plus our -c). */
const WITH_VALUE = new Set([
  'A',
  'B',
  'b',
  'C',
  'c',
  'd',
  'e',
  'F',
  'f',
  'h',
  'L',
  'M',
  'N',
  'O',
  'o',
  'p',
  'R',
  'r',
  'V',
  'X',
]);
/** Flags accepted and ignored. */
const IGNORED_FLAGS = new Set(['G', 'I', 'm', 'n', 's', 'U', 'v']);

export function parseSendmailArgs(argv: readonly string[]): SendmailArgsResult {
  const o: SendmailOptions = {
    mode: 'deliver',
    recipients: [],
    extractRecipients: false,
    ignoreDots: false,
    help: false,
  };
  let i = 0;
  const addRecipients = (arg: string) => {
    for (const r of splitList(arg)) o.recipients.push(r);
  };
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--help') {
      o.help = true;
      continue;
    }
    if (arg.startsWith('--config')) {
      const v = arg.startsWith('--config=') ? arg.slice(9) : argv[++i];
      if (v === undefined || v === '') return { ok: false, error: '--config needs a file name' };
      o.configPath = v;
      continue;
    }
    if (arg.startsWith('--')) return { ok: false, error: `unknown option ${arg}` };
    if (!arg.startsWith('-') || arg === '-') {
      addRecipients(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const flag = arg[j] ?? '';
      if (flag === 'q') {
        o.mode = 'flush-queue';
        break;
      }
      if (WITH_VALUE.has(flag)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          const next = argv[++i];
          if (next === undefined) return { ok: false, error: `option -${flag} needs a value` };
          value = next;
        }
        const err = applyValue(o, flag, value);
        if (err) return { ok: false, error: err };
        break;
      }
      if (flag === 't') o.extractRecipients = true;
      else if (flag === 'i') o.ignoreDots = true;
      else if (!IGNORED_FLAGS.has(flag)) return { ok: false, error: `unknown option -${flag}` };
    }
  }
  for (; i < argv.length; i++) addRecipients(argv[i] ?? '');
  return { ok: true, options: o };
}

function applyValue(o: SendmailOptions, flag: string, value: string): string | undefined {
  switch (flag) {
    case 'f':
    case 'r':
      o.sender = value === '<>' ? '' : value.replace(/^<(.*)>$/, '$1').trim();
      return undefined;
    case 'F':
      o.fullName = value;
      return undefined;
    case 'c':
    case 'C':
      o.configPath = value;
      return undefined;
    case 'o':
      // -oi is the one -o option with an effect; -oem, -odb, -oQ… tune classic sendmail only.
      if (value === 'i') o.ignoreDots = true;
      return undefined;
    case 'O':
      if (/^IgnoreDots(=(true|yes|1))?$/i.test(value)) o.ignoreDots = true;
      return undefined;
    case 'b':
      return applyMode(o, value);
    default:
      return undefined;
  }
}

function applyMode(o: SendmailOptions, value: string): string | undefined {
  switch (value) {
    case 'm':
      o.mode = 'deliver';
      return undefined;
    case 'p':
      o.mode = 'list-queue';
      return undefined;
    case 'i':
      // newaliases: aliases live in the config file, read at start; nothing to rebuild.
      o.mode = 'noop';
      return undefined;
    default:
      return `-b${value} is not supported (ferrymail sendmail handles -bm, -bp and -bi)`;
  }
}

/** `a@x, "B, Jr" <b@y>` → two items; commas inside quotes or angle brackets do not split. */
function splitList(arg: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  for (const c of arg) {
    if (c === '"') quoted = !quoted;
    else if (c === '<' && !quoted) angle = true;
    else if (c === '>' && !quoted) angle = false;
    if (c === ',' && !quoted && !angle) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}
