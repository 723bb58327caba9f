/**
 * @module test/helpers/proc
 * Small pieces the interop fixtures share: free loopback ports, temp dirs, running a command to
 * completion, polling until a condition holds, and waiting for a TCP port to greet. Everything is
 * bounded in time; nothing here keeps state between calls.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';

/**
 * Free loopback TCP ports, distinct from each other. All sockets are held open until every port is
 * known, so one call never hands out the same port twice. (Another process may still take a port
 * between this call and its use; the window is short and the kernel hands ports out round-robin.)
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot pick ports: 'count' must be a positive integer: current value is ${count}`);
  }
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
      const addr = server.address();
      if (addr === null || typeof addr === 'string') throw new Error('listening socket has no port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  if (port === undefined) throw new Error('no port');
  return port;
}

/** A fresh temp dir under os.tmpdir(). `mode` widens it (the default 0700 keeps other users out). */
export async function makeTempDir(prefix: string, mode?: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  if (mode !== undefined) await chmod(dir, mode);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed with SIGKILL after this long; the result then has `signal` set. Default 20 s. */
  timeoutMs?: number;
}

/** Run a command to completion, capturing its output. Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A command that ignores stdin closes it early; EPIPE then is not our failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but throws with the output when the exit code is not 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  }
  return r;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * True when `p` settles within `ms`, false otherwise. The timer is cleared either way, so a long
 * bound never keeps the test process alive after the promise settled.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true as const,
        () => true as const,
      ),
      expired,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Poll `probe` until it returns a value other than undefined/false, or throw after `timeoutMs`
 * with `what` and the last probe error in the message. An aborted `signal` ends the polling early.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (signal?.aborted) throw new Error(`stopped waiting for ${what}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

export interface GreetOptions {
  host?: string;
  /** Speak TLS from the first byte (implicit TLS, e.g. submissions / imaps). */
  tls?: boolean;
  /** How long one connection attempt may wait for the greeting. Default 2 s. */
  attemptMs?: number;
  /** Stop retrying (waitForGreeting) once aborted. */
  signal?: AbortSignal;
}

/**
 * Connect once and return the first line the server sends (the greeting), without its line end.
 * Rejects on refusal, close before a full line, or after `attemptMs`.
 */
export function readGreeting(port: number, opts: GreetOptions = {}): Promise<string> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const sock = opts.tls
      ? tls.connect({ host, port, rejectUnauthorized: false, servername: 'localhost' })
      : net.connect({ host, port });
    let buf = '';
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    const timer = setTimeout(
      () => done(new Error(`no greeting on ${host}:${port} within the attempt`)),
      opts.attemptMs ?? 2000,
    );
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(null, buf.slice(0, nl).replace(/\r$/, ''));
    });
    sock.once('error', (e) => done(e));
    sock.once('close', () =>
      done(new Error(`${host}:${port} closed before greeting (got ${JSON.stringify(buf)})`)),
    );
  });
}

/** Wait until `port` accepts and its greeting matches `expect` (e.g. /^220 / or /^\* OK/). */
export async function waitForGreeting(
  port: number,
  expect: RegExp,
  timeoutMs = 10_000,
  opts: GreetOptions = {},
): Promise<string> {
  return waitFor(
    `a greeting matching ${expect} on port ${port}`,
    async () => {
      const line = await readGreeting(port, opts);
      if (!expect.test(line)) throw new Error(`greeting ${JSON.stringify(line)} does not match ${expect}`);
      return line;
    },
    timeoutMs,
    100,
    opts.signal,
  );
}

/**
 * True when a process with this pid exists and is not a zombie (signal 0 probes without touching
 * it; a daemon that exited may wait a while as a zombie for init to reap it).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parentheses, so split at the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
