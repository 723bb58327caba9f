/**
 * @module config/load
 * Reading the config: TOML text → validated `FerrymailConfig`, or one `ConfigError` (code `CONFIG_INVALID`)
 * listing every problem with file, key path, expectation and finding. The only file I/O of config/: the
 * config file itself, the `[tls]` files (checked readable), `file:` secrets. Relative paths resolve against
 * the config file's folder; the embedded default (no file) resolves against the current folder.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { validate, type ValidateContext } from './dsl.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { resolveSecret } from './password.js';
import { SCHEMA, type FerrymailConfig } from './schema.js';
import { parseHostPort } from './values.js';

/** The name errors and `check-config` use when no file was given. */
export const EMBEDDED_CONFIG_NAME = '(embedded default config)';

export interface ParseOptions {
  /** Default for `hostname`; default `os.hostname()`. */
  hostname?: string;
  /** For `env:VAR` secrets; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Parse and validate config text. `fileName` names the file in errors; `baseDir` is where relative paths
 * start. Throws ConfigError.
 */
export function parseConfig(
  text: string,
  fileName: string,
  baseDir: string,
  opts: ParseOptions = {},
): FerrymailConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigError(
        fileName,
        [{ path: '', message: `TOML syntax error: ${what}`, line: err.line, column: err.column }],
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  const ctx: ValidateContext = {
    baseDir: resolve(baseDir),
    hostname: opts.hostname ?? os.hostname(),
    issues: [],
  };
  const config = validate(SCHEMA, doc, [], ctx) as FerrymailConfig;
  if (ctx.issues.length === 0)
    finish(config, ctx.issues, { baseDir: ctx.baseDir, env: opts.env ?? process.env });
  if (ctx.issues.length > 0) throw new ConfigError(fileName, ctx.issues);
  return config;
}

/**
 * Read and validate the file at `path`; without a path, the embedded default (every key at its default,
 * paths relative to the current folder). Throws ConfigError, also when the file cannot be read.
 */
export async function loadConfig(
  path?: string,
  opts: ParseOptions & { cwd?: string } = {},
): Promise<FerrymailConfig> {
  const cwd = opts.cwd ?? process.cwd();
  if (path === undefined) return parseConfig('', EMBEDDED_CONFIG_NAME, cwd, opts);
  const full = resolve(cwd, path);
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new ConfigError(path, [{ path: '', message: `cannot read the config file: ${why}` }], {
      cause: err,
    });
  }
  return parseConfig(text, path, dirname(full), opts);
}

/** The embedded default, as `ferrymail serve` runs it with no config file. */
export function defaultConfig(opts: ParseOptions & { cwd?: string } = {}): FerrymailConfig {
  return parseConfig('', EMBEDDED_CONFIG_NAME, opts.cwd ?? process.cwd(), opts);
}

/**
 * Which config file to use: the `--config` flag, else `$FERRYMAIL_CONFIG`, else `./ferrymail.toml` when it
 * exists, else `undefined` (the embedded default).
 */
export function resolveConfigPath(
  flag?: string,
  opts: { cwd?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): string | undefined {
  if (flag !== undefined) return flag;
  const fromEnv = (opts.env ?? process.env)['FERRYMAIL_CONFIG'];
  if (fromEnv) return fromEnv;
  const local = resolve(opts.cwd ?? process.cwd(), 'ferrymail.toml');
  return existsSync(local) ? local : undefined;
}

/** Checks across keys and values that need the outside world, once every key has the right shape. */
function finish(
  c: FerrymailConfig,
  issues: ConfigIssue[],
  src: { baseDir: string; env: ParseOptions['env'] & {} },
): void {
  const seen = new Map<string, number>();
  c.listeners.forEach((l, i) => {
    const hp = parseHostPort(l.address);
    if (!hp) return;
    l.host = hp.host;
    l.port = hp.port;
    l.auth_required ??= l.mode !== 'mx';
    if (l.mode === 'submissions' && !c.tls) {
      issues.push({
        path: `listeners[${i}].mode`,
        message: '"submissions" needs a [tls] section with cert and key',
      });
    }
    const key = `${hp.host.toLowerCase()}:${hp.port}`;
    const before = seen.get(key);
    if (before !== undefined && hp.port !== 0) {
      issues.push({
        path: `listeners[${i}].address`,
        message: `"${l.address}" is already used by listeners[${before}]`,
      });
    }
    seen.set(key, i);
  });
  if (c.tls) {
    for (const k of ['cert', 'key'] as const) {
      const problem = unreadable(c.tls[k]);
      if (problem) issues.push({ path: `tls.${k}`, message: `cannot read "${c.tls[k]}": ${problem}` });
    }
  }
  if (c.metrics) {
    const hp = parseHostPort(c.metrics.address);
    if (hp) Object.assign(c.metrics, hp);
  }
  if (c.queue.delay_warning === 0) delete c.queue.delay_warning;
  for (const [user, value] of Object.entries(c.auth.users)) {
    const r = resolveSecret(value, src);
    if ('error' in r) issues.push({ path: `auth.users.${quoteKey(user)}`, message: r.error });
    else c.auth.users[user] = r.value;
  }
  for (const [domain, route] of Object.entries(c.routes)) {
    if (typeof route === 'string' || !route.auth) continue;
    const r = resolveSecret(route.auth.password, src);
    if ('error' in r) issues.push({ path: `routes.${quoteKey(domain)}.auth.password`, message: r.error });
    else route.auth.password = r.value;
  }
}

function quoteKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function unreadable(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return 'not a regular file';
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `no such file (${basename(path)} is missing)`;
    if (code === 'EACCES') return 'permission denied';
    return String(code ?? err);
  }
}
