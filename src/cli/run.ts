/**
 * @module cli/run
 * The `ferrymail` command: picks the subcommand, reads `--config FILE` / `-c FILE` (accepted on every
 * subcommand, before or after its name), loads the config and runs. Returns the exit code (sysexits.h:
 * 64 usage, 78 config, …) and writes errors as one line on stderr saying what to fix. `serve` resolves only
 * when the server stops. Invoked as `sendmail` it is `ferrymail sendmail`; as `mailq`, `ferrymail queue list`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import { renderConfigDocs } from '../config/docs.js';
import { EMBEDDED_CONFIG_NAME, loadConfig, resolveConfigPath } from '../config/load.js';
import { hashPassword } from '../config/password.js';
import type { FerrymailConfig } from '../config/schema.js';
import { EXIT, type CliIo } from './io.js';
import { QUEUE_HELP, runQueue } from './queue.js';
import { runSendmail, SENDMAIL_HELP } from './sendmail.js';

export const MAIN_HELP = `Usage: ferrymail <command> [options]

Commands:
  serve                 run the mail server
  check-config          validate the config file and print a summary
  queue list [--json]   show the queue;  queue show ID | flush | delete ID...
  sendmail [args]       queue a message from standard input (the sendmail interface)
  hash-password         read a password on standard input, print a hash for [auth.users]
  version               print the version
  help [command]        this text, or a command's

Options (every command):
  -c, --config FILE     config file; default $FERRYMAIL_CONFIG, else ./ferrymail.toml, else the embedded default
  -h, --help            help for the command
`;

const HELP: Record<string, string> = {
  serve: `Usage: ferrymail serve [-c FILE]\n\nRuns the listeners, the queue and delivery until SIGTERM or SIGINT.\n`,
  'check-config': `Usage: ferrymail check-config [-c FILE]\n\nValidates the config file; exit 0 when it is good, 78 with the key to fix when not.\n`,
  queue: QUEUE_HELP,
  sendmail: SENDMAIL_HELP,
  'hash-password': `Usage: ferrymail hash-password < password\n\nPrints "scrypt:…" for a value in [auth.users].\n`,
  version: `Usage: ferrymail version\n`,
  help: MAIN_HELP,
  'config-docs': `Usage: ferrymail config-docs > docs/config.md\n\nPrints the config reference generated from the schema.\n`,
};

/** The server's entry point as src/main.ts exports it. */
type ServeFn = (config: FerrymailConfig, opts: { configPath?: string }) => Promise<void>;

export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ferrymail') return pkg.version ?? 'unknown';
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/** Pull `-c FILE` / `--config FILE` / `--config=FILE` out of `args`. */
export function takeConfigFlag(args: readonly string[]): {
  configPath?: string;
  rest: string[];
  error?: string;
} {
  const rest: string[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-c' || a === '--config') {
      const v = args[++i];
      if (v === undefined || v === '') return { rest, error: `${a} needs a file name` };
      configPath = v;
    } else if (a.startsWith('--config=')) configPath = a.slice(9);
    else rest.push(a);
  }
  return configPath === undefined ? { rest } : { configPath, rest };
}

/** Run the CLI. `argv` excludes node and the script; `invokedAs` is argv[1] (for the sendmail alias). */
export async function runCli(argv: readonly string[], io: CliIo, invokedAs = 'ferrymail'): Promise<number> {
  const name = basename(invokedAs).replace(/\.(c|m)?[jt]s$/, '');
  if (name === 'sendmail') return runSendmail(argv, io, (a, c) => runQueue(a, c, io));
  if (name === 'mailq') argv = ['queue', 'list', ...argv];

  // `ferrymail -c FILE serve` as well as `ferrymail serve -c FILE`.
  if (argv[0] === '-c' || argv[0] === '--config') argv = [...argv.slice(2), ...argv.slice(0, 2)];
  else if (argv[0]?.startsWith('--config=')) argv = [...argv.slice(1), argv[0]];
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? args[0] : undefined;
    if (topic !== undefined && !HELP[topic]) {
      io.stderr.write(`ferrymail: no help for "${topic}"; commands: ${Object.keys(HELP).join(', ')}\n`);
      return EXIT.USAGE;
    }
    (command === undefined ? io.stderr : io.stdout).write(HELP[topic ?? 'help'] ?? MAIN_HELP);
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (command === 'sendmail') return runSendmail(args, io, (a, c) => runQueue(a, c, io));
  const help = HELP[command];
  if (help === undefined) {
    io.stderr.write(`ferrymail: unknown command "${command}" (try ferrymail help)\n`);
    return EXIT.USAGE;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(help);
    return EXIT.OK;
  }
  const flags = takeConfigFlag(args);
  if (flags.error !== undefined) {
    io.stderr.write(`ferrymail ${command}: ${flags.error}\n`);
    return EXIT.USAGE;
  }
  const rest = flags.rest;
  if (command !== 'queue' && rest.length > 0) {
    io.stderr.write(
      `ferrymail ${command}: unexpected argument "${rest[0]}" (see ferrymail ${command} --help)\n`,
    );
    return EXIT.USAGE;
  }
  switch (command) {
    case 'version':
      io.stdout.write(`ferrymail ${version()}\n`);
      return EXIT.OK;
    case 'config-docs':
      io.stdout.write(renderConfigDocs());
      return EXIT.OK;
    case 'hash-password':
      return hashFromStdin(io);
  }

  const configPath = resolveConfigPath(flags.configPath, io);
  let config: FerrymailConfig;
  try {
    config = await loadConfig(configPath, { cwd: io.cwd, env: io.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return EXIT.CONFIG;
  }
  switch (command) {
    case 'check-config':
      io.stdout.write(summary(configPath ?? EMBEDDED_CONFIG_NAME, config));
      return EXIT.OK;
    case 'queue':
      return runQueue(rest, config, io);
    default:
      return serve(config, configPath, io);
  }
}

function summary(file: string, c: FerrymailConfig): string {
  const listeners = c.listeners.map(
    (l) => `${l.address} (${l.mode}${l.auth_required ? ', AUTH required' : ''})`,
  );
  return [
    `${file}: OK`,
    `  hostname   ${c.hostname}`,
    `  data_dir   ${c.data_dir}`,
    `  listeners  ${listeners.join(', ')}`,
    `  local      ${c.domains.local.join(', ') || '(none)'}`,
    `  relay      ${c.domains.relay.join(', ') || '(none)'}`,
    `  tls        ${c.tls ? c.tls.cert : 'off'}`,
    '',
  ].join('\n');
}

async function serve(config: FerrymailConfig, configPath: string | undefined, io: CliIo): Promise<number> {
  // A variable specifier keeps this file compiling while src/main.ts is being written.
  const spec = '../main.js';
  let mod: { serve?: ServeFn };
  try {
    mod = (await import(spec)) as { serve?: ServeFn };
  } catch (err) {
    io.stderr.write(`ferrymail serve: cannot load the server (${(err as Error).message})\n`);
    return EXIT.SOFTWARE;
  }
  if (typeof mod.serve !== 'function') {
    io.stderr.write('ferrymail serve: src/main.ts does not export serve()\n');
    return EXIT.SOFTWARE;
  }
  try {
    await mod.serve(config, configPath === undefined ? {} : { configPath });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.message}\n`);
      return EXIT.CONFIG;
    }
    const e = err as NodeJS.ErrnoException;
    io.stderr.write(`ferrymail serve: ${e.message ?? String(err)}\n`);
    return e.code === 'EADDRINUSE' || e.code === 'EACCES' ? EXIT.UNAVAILABLE : EXIT.SOFTWARE;
  }
  return EXIT.OK;
}

async function hashFromStdin(io: CliIo): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  const pw = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (pw === '') {
    io.stderr.write('ferrymail hash-password: no password on standard input\n');
    return EXIT.USAGE;
  }
  io.stdout.write(`${await hashPassword(pw)}\n`);
  return EXIT.OK;
}
