/**
 * @module cli/pickup
 * The pickup folder that lets `ferrymail sendmail` queue mail durably while the server is down.
 *
 * Writer (the sendmail command): `<dir>/tmp/<unique>` is written, fsynced, renamed into `<dir>/new/`, and
 * `new/` is fsynced, so a file in `new/` is always whole. File format: one line of JSON
 * `{"v":1,"sender":"a@b","recipients":["x@y"],"receivedAt":1234567890123,"user":"login"}`, `\n`, then the
 * message (CRLF line ends).
 *
 * Collector (the server): reads `new/` (fs.watch plus a periodic scan, one scan at a time), hands each file
 * to the MessageSink (begin, write, commit) with a Received: field naming the file owner's uid, and unlinks it only after commit resolved: a crash in between
 * may deliver a message twice, never zero times. A commit that fails leaves the file for the next scan; a
 * file that cannot be read as a pickup file is moved to `<dir>/bad/` and logged, never deleted.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { Envelope, MessageSink } from '../queue/types.js';
import { formatRfc5322Date } from './rfc5322.js';

export interface PickupHeader {
  v: 1;
  /** Envelope sender; `''` for the null sender. */
  sender: string;
  recipients: string[];
  /** ms since the epoch when sendmail ran. */
  receivedAt: number;
  /** Login name of whoever ran sendmail. */
  user: string;
}

export function encodePickupFile(header: PickupHeader, message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(JSON.stringify(header) + '\n', 'utf8'), message]);
}

/** Parse a pickup file; `{ error }` says what is wrong with it. */
export function decodePickupFile(
  file: Buffer,
): { header: PickupHeader; message: Buffer } | { error: string } {
  const nl = file.indexOf(0x0a);
  if (nl < 0) return { error: 'no header line' };
  let h: unknown;
  try {
    h = JSON.parse(file.subarray(0, nl).toString('utf8'));
  } catch {
    return { error: 'header line is not JSON' };
  }
  const r = h as Partial<PickupHeader> | null;
  if (typeof r !== 'object' || r === null || r.v !== 1) return { error: 'unknown pickup format version' };
  if (typeof r.sender !== 'string') return { error: 'sender is not a string' };
  if (
    !Array.isArray(r.recipients) ||
    r.recipients.length === 0 ||
    !r.recipients.every((x) => typeof x === 'string' && x !== '')
  ) {
    return { error: 'recipients is not a non-empty list of addresses' };
  }
  if (typeof r.receivedAt !== 'number' || !Number.isFinite(r.receivedAt))
    return { error: 'receivedAt is not a time' };
  const user = typeof r.user === 'string' ? r.user : 'unknown';
  return {
    header: { v: 1, sender: r.sender, recipients: r.recipients, receivedAt: r.receivedAt, user },
    message: file.subarray(nl + 1),
  };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Durably drop a message into `<pickupDir>/new/`; resolves with the final path once file and directory
 * entry are on stable storage.
 */
export async function writePickupFile(
  pickupDir: string,
  header: PickupHeader,
  message: Buffer,
): Promise<string> {
  const tmpDir = join(pickupDir, 'tmp');
  const newDir = join(pickupDir, 'new');
  await mkdir(tmpDir, { recursive: true });
  await mkdir(newDir, { recursive: true });
  const name = `${header.receivedAt}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const tmp = join(tmpDir, name);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(encodePickupFile(header, message));
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  const final = join(newDir, name);
  await rename(tmp, final);
  await fsyncDir(newDir);
  return final;
}

/** The part of a pino logger the collector uses. */
export interface PickupLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PickupCollectorOptions {
  /** For the Received: header. Default os.hostname(). */
  hostname?: string;
  /** ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Periodic scan, a safety net for missed fs.watch events. Default 5000 ms. */
  scanIntervalMs?: number;
  /** Leftovers in tmp/ older than this (a sendmail that died mid-write) are removed. Default 1 day. */
  staleTmpMs?: number;
  logger?: PickupLogger;
}

const silent: PickupLogger = { info() {}, warn() {}, error() {} };

export class PickupCollector {
  private readonly newDir: string;
  private readonly hostname: string;
  private readonly now: () => number;
  private readonly log: PickupLogger;
  private chain: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private interval: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private stopped = true;
  /** Set by stop(): a scan in progress finishes the file in hand and goes no further. */
  private closing = false;

  constructor(
    private readonly dir: string,
    private readonly sink: MessageSink,
    private readonly opts: PickupCollectorOptions = {},
  ) {
    this.newDir = join(dir, 'new');
    this.hostname = opts.hostname ?? osHostname();
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? silent;
  }

  /** Create the folders, watch `new/`, scan now and every `scanIntervalMs`. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.closing = false;
    mkdirSync(join(this.dir, 'tmp'), { recursive: true });
    mkdirSync(this.newDir, { recursive: true });
    try {
      this.watcher = watch(this.newDir, () => this.soon());
      this.watcher.on('error', (err) =>
        this.log.warn({ err }, 'pickup: watching stopped; periodic scans go on'),
      );
    } catch (err) {
      this.log.warn({ err }, 'pickup: cannot watch the folder; relying on periodic scans');
    }
    this.interval = setInterval(() => this.soon(), this.opts.scanIntervalMs ?? 5000);
    this.interval.unref();
    this.soon();
  }

  /** Stop watching and wait for a scan in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.closing = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.interval) clearInterval(this.interval);
    if (this.pending) clearTimeout(this.pending);
    this.interval = this.pending = undefined;
    await this.chain.catch(() => undefined);
    this.closing = false;
  }

  /** Hand every file now in `new/` to the sink; resolves with how many were committed. */
  scanOnce(): Promise<number> {
    const run = this.chain.catch(() => undefined).then(() => this.scan());
    this.chain = run;
    return run;
  }

  private soon(): void {
    if (this.stopped || this.pending) return;
    // fs.watch fires once per rename and often twice; one scan shortly after covers a burst.
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.scanOnce().catch((err: unknown) => this.log.error({ err }, 'pickup: scan failed'));
    }, 20);
  }

  private async scan(): Promise<number> {
    const names = (await readdir(this.newDir)).filter((n) => !n.startsWith('.')).sort();
    let done = 0;
    for (const name of names) {
      if (this.closing) break;
      if (await this.collect(name)) done++;
    }
    await this.removeStaleTmp();
    return done;
  }

  private async collect(name: string): Promise<boolean> {
    const path = join(this.newDir, name);
    let file: Buffer;
    let uid: number;
    try {
      const fh = await open(path, 'r');
      try {
        // The owner is who really wrote the file; the JSON's "user" is only what sendmail was told.
        uid = (await fh.stat()).uid;
        file = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ err, file: name }, 'pickup: cannot read file');
      return false;
    }
    const parsed = decodePickupFile(file);
    if ('error' in parsed) {
      await this.quarantine(name, parsed.error);
      return false;
    }
    const { header, message } = parsed;
    const envelope: Envelope = {
      id: this.sink.newId(),
      sender: header.sender,
      recipients: header.recipients.map((address) => ({ address })),
      receivedAt: header.receivedAt,
      body: message.some((b) => b >= 0x80) ? '8BITMIME' : '7BIT',
      smtputf8: [header.sender, ...header.recipients].some((a) => /[^\x00-\x7f]/.test(a)),
      client: { ip: '127.0.0.1', authUser: header.user },
    };
    const user = header.user.replace(/[^\w.-]/g, '_');
    const received =
      `Received: by ${this.hostname} (ferrymail pickup, from userid ${uid}, login ${user})\r\n` +
      `\tid ${envelope.id}; ${formatRfc5322Date(this.now())}\r\n`;
    let writer;
    try {
      writer = this.sink.begin(envelope);
      writer.write(Buffer.from(received, 'latin1'));
      writer.write(message);
      await writer.commit();
    } catch (err) {
      try {
        writer?.abort();
      } catch {
        // The commit's error is the one worth reporting.
      }
      this.log.warn({ err, file: name }, 'pickup: queueing failed; will retry');
      return false;
    }
    this.log.info(
      { id: envelope.id, file: name, from: header.sender, rcpts: header.recipients.length },
      'pickup: queued',
    );
    await unlink(path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.error({ err, file: name }, 'pickup: cannot remove queued file');
    });
    return true;
  }

  private async quarantine(name: string, why: string): Promise<void> {
    const badDir = join(this.dir, 'bad');
    this.log.error({ file: name, why }, 'pickup: malformed file moved to bad/');
    try {
      await mkdir(badDir, { recursive: true });
      await rename(join(this.newDir, name), join(badDir, name));
    } catch (err) {
      this.log.error({ err, file: name }, 'pickup: cannot move malformed file');
    }
  }

  private async removeStaleTmp(): Promise<void> {
    const tmpDir = join(this.dir, 'tmp');
    const limit = this.now() - (this.opts.staleTmpMs ?? 86_400_000);
    let names: string[];
    try {
      names = await readdir(tmpDir);
    } catch {
      return;
    }
    for (const n of names) {
      try {
        if ((await stat(join(tmpDir, n))).mtimeMs < limit) await unlink(join(tmpDir, n));
      } catch {
        // Gone already, or not ours to remove.
      }
    }
  }
}
