/**
 * @module cli/sendmail
 * `ferrymail sendmail` (also run when the binary is invoked as `sendmail`): the message on standard input,
 * recipients as arguments and/or from the headers (`-t`). Adds the Date:, Message-ID: and From: fields a
 * message lacks, removes Bcc:, turns line ends into CRLF, and queues the message durably through the pickup
 * folder (cli/pickup.ts), so it works whether or not the server is running. Silent on success, like
 * sendmail; one line on stderr and a sysexits code otherwise.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import type { FerrymailConfig } from '../config/schema.js';
import { EXIT, type CliIo } from './io.js';
import { writePickupFile } from './pickup.js';
import { readInput } from './read-input.js';
import {
  checkAddress,
  encodePhrase,
  fieldValue,
  formatRfc5322Date,
  parseAddressList,
  splitMessage,
  toCrlf,
  type HeaderField,
} from './rfc5322.js';
import { parseSendmailArgs, type SendmailOptions } from './sendmail-args.js';

export const SENDMAIL_HELP = `Usage: ferrymail sendmail [options] [recipient...] < message

Queues the message on standard input for delivery, whether or not the server is running.

  -t              send to the addresses in To:, Cc: and Bcc: too (Bcc: is removed)
  -f ADDR, -fADDR envelope sender (default: your login name at this host); -f '<>' for none
  -F "NAME"       full name for the From: field when the message has none
  -i, -oi         a line with a single dot does not end the message
  -c, --config F  config file (default: $FERRYMAIL_CONFIG, else ./ferrymail.toml, else the embedded default)
  -bp             list the queue (as mailq);  -q  retry the queue now
  -oem -odb -odi -v -m -n -N … accepted for compatibility and ignored

Exit codes: 0 queued, 64 bad usage, 65 bad address or message, 75 could not queue (try again), 78 bad config.
`;

export interface PreparedMessage {
  message: Buffer;
  /** Addresses found in To/Cc/Bcc (or Resent-To/Cc/Bcc when present), as written. */
  headerRecipients: string[];
}

export interface PrepareOptions {
  extractRecipients: boolean;
  /** Envelope sender for an added From:; `''` (null sender) means use `fallbackFrom`. */
  sender: string;
  fallbackFrom: string;
  fullName?: string;
  hostname: string;
  now: number;
  /** Minutes east of UTC for Date:. */
  tzOffsetMinutes: number;
  /** Unique part of an added Message-ID. */
  unique: string;
}

/** Header work on the raw input: pure, so the argument table tests can drive it directly. */
export function prepareMessage(raw: Buffer, o: PrepareOptions): PreparedMessage {
  const split = splitMessage(toCrlf(raw).toString('latin1'));
  const has = (name: string) => split.fields.some((f) => f.name.toLowerCase() === name);
  const headerRecipients: string[] = [];
  if (o.extractRecipients) {
    const resent = split.fields.some((f) => /^resent-(to|cc|bcc)$/i.test(f.name));
    const wanted = resent ? /^resent-(to|cc|bcc)$/i : /^(to|cc|bcc)$/i;
    for (const f of split.fields)
      if (wanted.test(f.name)) headerRecipients.push(...parseAddressList(fieldValue(f)));
  }
  const kept: HeaderField[] = split.fields.filter((f) => !/^(resent-)?bcc$/i.test(f.name));
  let added = '';
  if (!has('from')) {
    const addr = o.sender === '' ? o.fallbackFrom : o.sender;
    added += o.fullName ? `From: ${encodePhrase(o.fullName)} <${addr}>\r\n` : `From: ${addr}\r\n`;
  }
  if (!has('date')) added += `Date: ${formatRfc5322Date(o.now, o.tzOffsetMinutes)}\r\n`;
  if (!has('message-id')) added += `Message-ID: <${o.unique}@${o.hostname}>\r\n`;
  const head = kept.map((f) => f.raw).join('') + Buffer.from(added, 'utf8').toString('latin1');
  return { message: Buffer.from(`${head}\r\n${split.body}`, 'latin1'), headerRecipients };
}

/** The domain that completes a bare name such as cron's `root`: this host if it is local, else the first local domain. */
export function qualifyDomain(config: FerrymailConfig): string {
  const host = config.hostname.toLowerCase();
  return config.domains.local.includes(host) ? host : (config.domains.local[0] ?? host);
}

function loginName(io: CliIo): string {
  const fromEnv = io.env['LOGNAME'] ?? io.env['USER'];
  let name = fromEnv;
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = 'nobody';
    }
  }
  return name.replace(/[^A-Za-z0-9._-]/g, '_') || 'nobody';
}

/** Run `ferrymail sendmail ARGS`; resolves with the exit code. `runQueue` serves -bp and -q. */
export async function runSendmail(
  argv: readonly string[],
  io: CliIo,
  runQueue: (args: string[], config: FerrymailConfig) => Promise<number>,
): Promise<number> {
  const parsed = parseSendmailArgs(argv);
  if (!parsed.ok) {
    io.stderr.write(`sendmail: ${parsed.error} (see ferrymail sendmail --help)\n`);
    return EXIT.USAGE;
  }
  const opts = parsed.options;
  if (opts.help) {
    io.stdout.write(SENDMAIL_HELP);
    return EXIT.OK;
  }
  let config: FerrymailConfig;
  try {
    config = await loadConfig(resolveConfigPath(opts.configPath, io), { cwd: io.cwd, env: io.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`sendmail: ${err.message}\n`);
    return EXIT.CONFIG;
  }
  if (opts.mode === 'list-queue') return runQueue(['list'], config);
  if (opts.mode === 'flush-queue') return runQueue(['flush'], config);
  if (opts.mode === 'noop') return EXIT.OK;
  return deliver(opts, config, io);
}

async function deliver(opts: SendmailOptions, config: FerrymailConfig, io: CliIo): Promise<number> {
  const domain = qualifyDomain(config);
  const login = loginName(io);
  let sender = `${login}@${domain}`;
  if (opts.sender !== undefined && opts.sender !== '') {
    const s = checkAddress(opts.sender, domain);
    if (s === undefined) {
      io.stderr.write(`sendmail: malformed sender address ${JSON.stringify(opts.sender)}\n`);
      return EXIT.DATAERR;
    }
    sender = s;
  } else if (opts.sender === '') sender = '';

  const maxBytes = config.limits.max_message_size;
  const input = await readInput(io.stdin, { ignoreDots: opts.ignoreDots, maxBytes });
  if (!input.ok) {
    io.stderr.write(
      `sendmail: message too large: the limit is ${maxBytes} bytes (limits.max_message_size)\n`,
    );
    return EXIT.DATAERR;
  }
  const now = io.now();
  const prepared = prepareMessage(input.data, {
    extractRecipients: opts.extractRecipients,
    sender,
    fallbackFrom: `${login}@${domain}`,
    ...(opts.fullName !== undefined ? { fullName: opts.fullName } : {}),
    hostname: config.hostname,
    now,
    tzOffsetMinutes: -new Date(now).getTimezoneOffset(),
    unique: `${now.toString(36)}.${randomBytes(6).toString('hex')}`,
  });

  const recipients: string[] = [];
  const seen = new Set<string>();
  for (const written of [
    ...opts.recipients.flatMap((r) => parseAddressList(r)),
    ...prepared.headerRecipients,
  ]) {
    const addr = checkAddress(written, domain);
    if (addr === undefined) {
      io.stderr.write(`sendmail: malformed recipient address ${JSON.stringify(written)}\n`);
      return EXIT.DATAERR;
    }
    if (!seen.has(addr)) {
      seen.add(addr);
      recipients.push(addr);
    }
  }
  if (recipients.length === 0) {
    io.stderr.write('sendmail: no recipients given (use -t or name them as arguments)\n');
    return EXIT.USAGE;
  }
  if (prepared.message.length > maxBytes) {
    io.stderr.write(
      `sendmail: message too large: the limit is ${maxBytes} bytes (limits.max_message_size)\n`,
    );
    return EXIT.DATAERR;
  }
  try {
    await writePickupFile(
      join(config.data_dir, 'pickup'),
      { v: 1, sender, recipients, receivedAt: now, user: login },
      prepared.message,
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    io.stderr.write(
      `sendmail: cannot queue the message in ${join(config.data_dir, 'pickup')}: ${e.code ?? e.message}\n`,
    );
    return EXIT.TEMPFAIL;
  }
  return EXIT.OK;
}
