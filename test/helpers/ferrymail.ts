/**
 * @module test/helpers/ferrymail
 * Run the real `ferrymail serve` (the built `dist/src/cli/main.js`) as a child process for black-box
 * tests. The helper writes the TOML config into a temp dir, gives every listener on port 0 a free
 * loopback port, and resolves only once every listener greets (220, over TLS for `submissions`).
 *
 * Config as an object: `data_dir` defaults to `<dir>/data`, `hostname` to `ferrymail.test`,
 * `listeners` to one `mx` listener; an address ending in `:0` gets a free port; `tls: true` (option)
 * makes a self-signed certificate and fills `[tls]`. Config as a string: placeholders `{{PORT0}}`,
 * `{{PORT1}}`… (free ports), `{{DIR}}` and `{{DATA_DIR}}` are replaced, then the text is parsed
 * only to learn the listeners and `data_dir`, and written as given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'smol-toml';
import {
  freePorts,
  makeTempDir,
  removeDir,
  run,
  runOk,
  settlesWithin,
  waitFor,
  waitForGreeting,
  type RunResult,
} from './proc.js';
import { makeSelfSignedCert } from './tls.js';

export interface FerrymailOptions {
  config?: Record<string, unknown> | string;
  /** Extra environment for the server process. */
  env?: Readonly<Record<string, string>>;
  /** Make a self-signed certificate and set `[tls] cert/key` (object configs only). */
  tls?: boolean;
  /** Run the server as this user and group (e.g. 65534 so Dovecot can read its Maildirs). */
  uid?: number;
  gid?: number;
  /** How long to wait for every listener to greet. Default 15 s. */
  startTimeoutMs?: number;
  /** The script to run instead of the built CLI (for testing this helper with a stub). */
  bin?: string;
}

export interface ListenerInfo {
  address: string;
  mode: string;
  port: number;
}

export interface Ferrymail {
  /** Temp dir with `ferrymail.toml`, the data dir (unless configured elsewhere) and any certificate. */
  dir: string;
  configPath: string;
  dataDir: string;
  listeners: ListenerInfo[];
  /** Port of the first listener. */
  port: number;
  /** Port of the first listener of `mode` (throws if there is none). */
  portOf(mode: string): number;
  /** `dataDir/mail/<domain>/<user>` with both lowercased, per the contract. */
  maildir(domain: string, user: string): string;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  pid(): number | undefined;
  /** SIGTERM, wait for exit (SIGKILL after `timeoutMs`, default 10 s); returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait: the crash case for durability tests. */
  kill9(): Promise<void>;
  /** Start the server again with the same config and data (after stop or kill9). */
  restart(): Promise<void>;
  /** Run another subcommand against this config: `cli(['queue', 'list', '--json'])`. */
  cli(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

export class FerrymailStartError extends Error {
  readonly code = 'FERRYMAIL_START';
  constructor(
    message: string,
    readonly logs: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FerrymailStartError';
  }
}

/** The repository root: the nearest folder up from this file whose package.json names ferrymail. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'ferrymail') return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the ferrymail repository root');
    dir = up;
  }
}

export function ferrymailBin(): string {
  return path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
}

const LISTENER_PORT = /:(\d+)$/;

async function prepareConfig(
  dir: string,
  opts: FerrymailOptions,
): Promise<{ text: string; dataDir: string; listeners: ListenerInfo[] }> {
  const raw = opts.config ?? {};
  if (typeof raw === 'string') {
    const needed = new Set([...raw.matchAll(/\{\{PORT(\d+)\}\}/g)].map((m) => Number(m[1])));
    const count = needed.size === 0 ? 0 : Math.max(...needed) + 1;
    const ports = count > 0 ? await freePorts(count) : [];
    const text = raw
      .replace(/\{\{PORT(\d+)\}\}/g, (_, n: string) => String(ports[Number(n)]))
      .replace(/\{\{DATA_DIR\}\}/g, path.join(dir, 'data'))
      .replace(/\{\{DIR\}\}/g, dir);
    const parsed = parse(text) as Record<string, unknown>;
    const dataDir = path.resolve(dir, typeof parsed['data_dir'] === 'string' ? parsed['data_dir'] : 'var');
    const ls = Array.isArray(parsed['listeners'])
      ? (parsed['listeners'] as Array<Record<string, unknown>>)
      : [];
    const listeners = ls.map((l) => listenerInfo(String(l['address'] ?? ''), String(l['mode'] ?? 'mx')));
    if (listeners.length === 0) listeners.push(listenerInfo('127.0.0.1:2525', 'mx'));
    return { text, dataDir, listeners };
  }

  const config: Record<string, unknown> = structuredClone(raw);
  config['hostname'] ??= 'ferrymail.test';
  config['data_dir'] ??= path.join(dir, 'data');
  const given = Array.isArray(config['listeners'])
    ? (config['listeners'] as Array<Record<string, unknown>>)
    : [{ address: '127.0.0.1:0', mode: 'mx' }];
  const zero = given.filter((l) => LISTENER_PORT.exec(String(l['address'] ?? '127.0.0.1:0'))?.[1] === '0');
  const ports = zero.length > 0 ? await freePorts(zero.length) : [];
  let next = 0;
  const listeners = given.map((l) => {
    const address = String(l['address'] ?? '127.0.0.1:0');
    const mode = String(l['mode'] ?? 'mx');
    const filled =
      LISTENER_PORT.exec(address)?.[1] === '0'
        ? address.replace(LISTENER_PORT, `:${ports[next++]}`)
        : address;
    return { ...l, address: filled, mode };
  });
  config['listeners'] = listeners;
  if (opts.tls) {
    const cert = await makeSelfSignedCert({ dir, commonName: String(config['hostname']) });
    config['tls'] = { cert: cert.certPath, key: cert.keyPath, ...(config['tls'] as object | undefined) };
  }
  return {
    text: stringify(config) + '\n',
    dataDir: path.resolve(dir, String(config['data_dir'])),
    listeners: listeners.map((l) => listenerInfo(l.address, l.mode)),
  };
}

function listenerInfo(address: string, mode: string): ListenerInfo {
  const port = Number(LISTENER_PORT.exec(address)?.[1]);
  if (!Number.isInteger(port) || port <= 0)
    throw new TypeError(`Cannot start ferrymail: bad listener address ${address}`);
  return { address, mode, port };
}

/**
 * Start `ferrymail serve` and wait until every listener greets with 220. Throws FerrymailStartError
 * (with the server's output) when the binary is missing, the process exits, or the wait times out;
 * the temp dir is removed then.
 */
export async function startFerrymail(opts: FerrymailOptions = {}): Promise<Ferrymail> {
  const bin = opts.bin ?? ferrymailBin();
  if (!existsSync(bin))
    throw new FerrymailStartError(`ferrymail is not built: ${bin} is missing (npm run build)`, '');
  const asUser = opts.uid !== undefined;
  const dir = await makeTempDir('ferrymail-serve-', asUser ? 0o755 : undefined);
  let prepared: Awaited<ReturnType<typeof prepareConfig>>;
  try {
    prepared = await prepareConfig(dir, opts);
    const configPath = path.join(dir, 'ferrymail.toml');
    await writeFile(configPath, prepared.text);
    if (asUser) {
      await mkdir(prepared.dataDir, { recursive: true });
      await runOk('chown', ['-R', `${opts.uid}:${opts.gid ?? opts.uid}`, dir]);
    }
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  const { dataDir, listeners } = prepared;
  const configPath = path.join(dir, 'ferrymail.toml');
  const root = repoRoot();
  let output = '';
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let running = false;
  const killer = () => child?.kill('SIGKILL');

  const launch = async () => {
    const c = spawn(process.execPath, [bin, 'serve', '--config', configPath], {
      cwd: root,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asUser ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    });
    child = c;
    running = true;
    c.stdout?.on('data', (b: Buffer) => (output += b.toString('utf8')));
    c.stderr?.on('data', (b: Buffer) => (output += b.toString('utf8')));
    exited = new Promise((resolve) => {
      c.once('exit', (code) => {
        running = false;
        process.removeListener('exit', killer);
        resolve(code);
      });
      c.once('error', (e) => {
        output += `spawn error: ${e.message}\n`;
        running = false;
        resolve(null);
      });
    });
    process.once('exit', killer);
    const deadline = opts.startTimeoutMs ?? 15_000;
    const probing = new AbortController();
    try {
      await Promise.race([
        Promise.all(
          listeners.map((l) =>
            waitForGreeting(l.port, /^220[ -]/, deadline, {
              tls: l.mode === 'submissions',
              signal: probing.signal,
            }),
          ),
        ),
        exited.then((code) => {
          throw new Error(`ferrymail serve exited with code ${code} during start`);
        }),
      ]);
    } catch (e) {
      await stop(2000);
      throw new FerrymailStartError(
        `${(e as Error).message}\n--- ferrymail output\n${tail(output)}`,
        output,
        { cause: e },
      );
    } finally {
      probing.abort();
    }
  };

  const stop = async (timeoutMs = 10_000): Promise<number | null> => {
    if (!running || !child) return exited;
    child.kill('SIGTERM');
    if (!(await settlesWithin(exited, timeoutMs))) child.kill('SIGKILL');
    return exited;
  };

  const instance: Ferrymail = {
    dir,
    configPath,
    dataDir,
    listeners,
    port: listeners[0]?.port ?? 0,
    portOf(mode) {
      const l = listeners.find((x) => x.mode === mode);
      if (!l) throw new RangeError(`Cannot find a listener: no listener has mode ${mode}`);
      return l.port;
    },
    maildir: (domain, user) => path.join(dataDir, 'mail', domain.toLowerCase(), user.toLowerCase()),
    logs: () => output,
    pid: () => (running ? child?.pid : undefined),
    stop,
    async kill9() {
      if (!running || !child) return;
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      if (running) throw new Error('Cannot restart: ferrymail is still running');
      await launch();
    },
    cli: (args, timeoutMs = 15_000) =>
      run(process.execPath, [bin, ...args, '--config', configPath], {
        cwd: root,
        env: { ...process.env, ...opts.env },
        timeoutMs,
      }),
    async close() {
      await stop();
      await removeDir(dir);
    },
  };
  try {
    await launch();
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  return instance;
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * A reason to skip the ferrymail interop tests, or undefined when `ferrymail serve` runs: the build
 * must exist and a minimal config must start and greet. Call once per test file (top-level await).
 */
export async function ferrymailSkip(bin = ferrymailBin()): Promise<string | undefined> {
  if (!existsSync(bin)) return `ferrymail is not built (${bin} missing)`;
  try {
    const fm = await startFerrymail({
      bin,
      config: { domains: { local: ['probe.test'] } },
      startTimeoutMs: 10_000,
    });
    await fm.close();
    return undefined;
  } catch (e) {
    const logs = e instanceof FerrymailStartError ? e.logs : '';
    const first = (e as Error).message.split('\n')[0] ?? '';
    return `ferrymail serve does not start yet: ${first}${logs ? ' | ' + tail(logs, 3).replace(/\n/g, ' | ') : ''}`;
  }
}

/**
 * Wait until at least `count` files exist under `pattern` and return their paths, sorted. The
 * pattern is a path whose segments may be `*` (any one name), e.g. `<data>/mail/fm.test/*\/new`.
 */
export async function waitForFile(pattern: string, count = 1, timeoutMs = 10_000): Promise<string[]> {
  return waitFor(
    `${count} file(s) in ${pattern}`,
    async () => {
      const files = await globFiles(pattern);
      return files.length >= count ? files : undefined;
    },
    timeoutMs,
    50,
  );
}

/** Regular files directly inside the folders matched by `pattern` (segments may be `*`). */
export async function globFiles(pattern: string): Promise<string[]> {
  const abs = path.resolve(pattern);
  const segments = abs.split(path.sep).filter(Boolean);
  let dirs: string[] = [path.sep];
  for (const seg of segments) {
    const next: string[] = [];
    for (const d of dirs) {
      if (seg === '*') {
        const names = await readdir(d).catch(() => [] as string[]);
        for (const n of names) next.push(path.join(d, n));
      } else {
        next.push(path.join(d, seg));
      }
    }
    dirs = next;
  }
  const files: string[] = [];
  for (const d of dirs) {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const n of names) {
      const p = path.join(d, n);
      const s = await stat(p).catch(() => undefined);
      if (s?.isFile()) files.push(p);
    }
  }
  return files.sort();
}

/** Change ownership of a tree (for handing Maildirs to a peer that runs as another user). */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  await runOk('chown', ['-R', `${uid}:${gid}`, dir]);
}
