/**
 * @module local/maildir
 * Write one message into a Maildir (`<root>/<domain>/<user>/{tmp,new,cur}`) so that it is durable
 * before the promise resolves: created directories are fsynced in their parent, the file is written
 * to `tmp/` with O_EXCL, fsynced, renamed into `new/`, and `new/` is fsynced (the Maildir protocol,
 * https://cr.yp.to/proto/maildir.html). On failure the file is removed again and the original
 * error (with its `code`: ENOSPC, EDQUOT, EACCES...) rejects the promise, so nothing half-written
 * is ever seen in `new/` and `tmp/` is left clean. Deliveries into one mailbox at the same time
 * share the fsync of its `new/` (one that starts after each rename), and a Maildir is created (and
 * its parents fsynced) once per process, not checked again for every message.
 *
 * The caller vouches for `domain` and `user` being single safe path components
 * (policy/users.ts mailboxFolder); this module checks again and throws TypeError otherwise.
 * The file system, clock, pid and host name are injected for tests.
 */
import * as nodeFs from 'node:fs/promises';
import { constants } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';

/** The part of a file handle the writer uses (node:fs/promises FileHandle fits). */
export interface MaildirFile {
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The part of node:fs/promises the writer uses. */
export interface MaildirFs {
  mkdir(path: string, options: { recursive?: boolean; mode?: number }): Promise<string | undefined>;
  open(path: string, flags: number | string, mode?: number): Promise<MaildirFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export interface MaildirWriterOptions {
  /** `<data_dir>/mail`; created if missing. */
  root: string;
  fs?: MaildirFs;
  /** Milliseconds since the epoch. @default Date.now */
  now?: () => number;
  /** @default os.hostname() */
  hostname?: string;
  /** @default process.pid */
  pid?: number;
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export class MaildirWriter {
  readonly #root: string;
  readonly #fs: MaildirFs;
  readonly #now: () => number;
  readonly #host: string;
  readonly #pid: number;
  /**
   * Maildirs made (or found) by this writer, each as the promise of its making: not checked again
   * with six mkdirs per delivery, and a delivery into one being made waits until its directories
   * are durable too. One removed meanwhile shows as ENOENT, and is made again then.
   */
  readonly #made = new Map<string, Promise<void>>();
  /** Directory fsyncs in progress per path, and the callers waiting for the next one. */
  readonly #dirSyncs = new Map<string, { waiters: { ok: () => void; fail: (e: unknown) => void }[] }>();
  /** Per-writer delivery counter (the `Q` part of the name); with O_EXCL, collisions only retry. */
  #counter = 0;
  readonly #tag = randomBytes(4).toString('hex');

  constructor(options: MaildirWriterOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new TypeError('Cannot build a MaildirWriter: root must be a non-empty path');
    }
    this.#root = options.root;
    this.#fs = options.fs ?? (nodeFs as unknown as MaildirFs);
    this.#now = options.now ?? Date.now;
    this.#host = escapeHost(options.hostname ?? osHostname());
    this.#pid = options.pid ?? process.pid;
  }

  get root(): string {
    return this.#root;
  }

  /** The Maildir directory for a mailbox (whether or not it exists yet). */
  maildirPath(domain: string, user: string): string {
    checkComponent(domain, 'domain');
    checkComponent(user, 'user');
    return join(this.#root, domain, user);
  }

  /**
   * Write `parts` (concatenated, in order) as one new message. Resolves with the path of the file
   * in `new/` once it is durable; rejects with the file system's error otherwise.
   */
  async deliver(domain: string, user: string, parts: readonly Uint8Array[]): Promise<string> {
    const dir = this.maildirPath(domain, user);
    await this.#ready(dir);
    let opened: { name: string; file: MaildirFile; tmpPath: string };
    try {
      opened = await this.#openUnique(dir);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      // Removed behind our back since we made it: make it again, once.
      await this.#ready(dir, true);
      opened = await this.#openUnique(dir);
    }
    const { name, file, tmpPath } = opened;
    let closed = false;
    let renamed = false;
    const newPath = join(dir, 'new', name);
    try {
      for (const part of parts) await writeAll(file, part);
      await file.sync();
      closed = true;
      await file.close();
      try {
        await this.#fs.rename(tmpPath, newPath);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
        // new/ alone was removed: make the Maildir whole again, once.
        await this.#ready(dir, true);
        await this.#fs.rename(tmpPath, newPath);
      }
      renamed = true;
      await this.#syncShared(join(dir, 'new'));
      return newPath;
    } catch (err) {
      if (!closed) await file.close().catch(() => undefined);
      // After a failed fsync of new/ the entry may or may not survive a crash: remove it so the
      // retry the caller schedules does not leave two copies.
      await this.#fs.unlink(renamed ? newPath : tmpPath).catch(() => undefined);
      throw err;
    }
  }

  async #openUnique(dir: string): Promise<{ name: string; file: MaildirFile; tmpPath: string }> {
    for (let attempt = 0; ; attempt++) {
      const name = this.#uniqueName();
      const tmpPath = join(dir, 'tmp', name);
      try {
        const file = await this.#fs.open(
          tmpPath,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
          FILE_MODE,
        );
        return { name, file, tmpPath };
      } catch (err) {
        if (errorCode(err) !== 'EEXIST' || attempt >= 5) throw err;
      }
    }
  }

  /** `<seconds>.M<micros>P<pid>Q<counter>R<random>.<host>`, the modern Maildir unique name. */
  #uniqueName(): string {
    const ms = this.#now();
    const sec = Math.floor(ms / 1000);
    const micros = (ms % 1000) * 1000;
    this.#counter++;
    return `${sec}.M${micros}P${this.#pid}Q${this.#counter}R${this.#tag}.${this.#host}`;
  }

  /** Resolves once the Maildir `dir` exists and is durable; `again`: it was found missing. */
  #ready(dir: string, again = false): Promise<void> {
    let p = again ? undefined : this.#made.get(dir);
    if (p === undefined) {
      p = this.#ensureMaildir(dir);
      this.#made.set(dir, p);
      // A failure is not remembered: the next delivery tries again.
      p.catch(() => {
        if (this.#made.get(dir) === p) this.#made.delete(dir);
      });
    }
    return p;
  }

  /** mkdir each missing level from the root down; fsync the parent of every directory created. */
  async #ensureMaildir(dir: string): Promise<void> {
    const toSync = new Set<string>();
    const made = async (path: string): Promise<void> => {
      try {
        await this.#fs.mkdir(path, { mode: DIR_MODE });
        toSync.add(dirname(path));
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
    };
    try {
      await this.#fs.mkdir(this.#root, { mode: DIR_MODE });
      toSync.add(dirname(this.#root));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT') {
        await this.#fs.mkdir(this.#root, { recursive: true, mode: DIR_MODE });
        toSync.add(dirname(this.#root));
      } else if (code !== 'EEXIST') throw err;
    }
    await made(dirname(dir));
    await made(dir);
    for (const sub of ['tmp', 'new', 'cur']) await made(join(dir, sub));
    for (const d of toSync) await this.#syncDir(d);
  }

  /**
   * fsync of `new/` shared by the deliveries that wait for it: a caller is answered by the first
   * fsync that starts after it asked (so after its rename), and every caller that asks while one
   * runs shares the next. Ten messages renamed into one mailbox at once cost two fsyncs, not ten.
   */
  #syncShared(path: string): Promise<void> {
    return new Promise((ok, fail) => {
      const running = this.#dirSyncs.get(path);
      if (running) {
        running.waiters.push({ ok, fail });
        return;
      }
      const state = { waiters: [{ ok, fail }] };
      this.#dirSyncs.set(path, state);
      void (async () => {
        while (state.waiters.length > 0) {
          const round = state.waiters;
          state.waiters = [];
          try {
            await this.#syncDir(path);
            for (const w of round) w.ok();
          } catch (err) {
            for (const w of round) w.fail(err);
          }
        }
        this.#dirSyncs.delete(path);
      })();
    });
  }

  async #syncDir(path: string): Promise<void> {
    const h = await this.#fs.open(path, constants.O_RDONLY);
    try {
      await h.sync();
    } catch (err) {
      // The fsync's error is the one to report, not a later one from close.
      await h.close().catch(() => undefined);
      throw err;
    }
    await h.close();
  }
}

async function writeAll(file: MaildirFile, part: Uint8Array): Promise<void> {
  let off = 0;
  while (off < part.length) {
    const { bytesWritten } = await file.write(part, off, part.length - off, null);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    off += bytesWritten;
  }
}

/** Maildir: `/` and `:` in the host name would break the file name; escape them as octal. */
function escapeHost(host: string): string {
  return (host || 'localhost').replace(/\//g, '\\057').replace(/:/g, '\\072');
}

function checkComponent(s: string, what: string): void {
  if (typeof s !== 'string' || s === '' || s.startsWith('.') || /[/\\\x00]/.test(s)) {
    throw new TypeError(
      `Cannot deliver to a Maildir: '${what}' must be a single path component: current value is ${JSON.stringify(s)}`,
    );
  }
}

export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const c = (err as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
