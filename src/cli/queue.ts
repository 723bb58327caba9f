/**
 * @module cli/queue
 * `ferrymail queue list [--json] | show ID [--json] | flush | delete ID... | delete -`. When the server is
 * running the request goes over its control socket (the server owns the queue); otherwise the queue store
 * under `<data_dir>/queue` is opened directly: read-only for list and show, with its lock for flush and
 * delete (so a server that starts meanwhile waits, or we fail cleanly if it holds the lock).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FerrymailConfig } from '../config/schema.js';
import { ControlClient, tryConnectControl } from '../control/client.js';
import { ControlError } from '../control/protocol.js';
import type { QueueStore } from '../queue/store.js';
import type { QueuedMessage } from '../queue/types.js';
import { EXIT, type CliIo } from './io.js';
import { formatMessage, formatQueueList } from './queue-format.js';

export const QUEUE_HELP = `Usage: ferrymail queue <list|show|flush|delete> [options]

  list [--json]        every queued message and the state of each recipient
  show ID [--json]     one message's envelope and recipients
  flush                try every pending recipient now
  delete ID...         remove messages (no DSN is sent); "delete -" reads ids from standard input
  -c, --config FILE    config file (its data_dir locates the queue)

Talks to the running server over <data_dir>/control.sock; when none runs, reads the queue files directly.
`;

/** What the subcommands need, whether served by the running server or by the store on disk. */
export interface QueueAccess {
  /** True when a running server answers. */
  readonly live: boolean;
  list(): Promise<QueuedMessage[]>;
  show(id: string): Promise<QueuedMessage | undefined>;
  flush(): Promise<number>;
  remove(ids: string[]): Promise<{ removed: string[]; missing: string[] }>;
  close(): Promise<void>;
}

export function controlSocketPath(config: FerrymailConfig): string {
  return join(config.data_dir, 'control.sock');
}

function viaControl(c: ControlClient): QueueAccess {
  return {
    live: true,
    list: () => c.list(),
    show: (id) => c.show(id),
    flush: () => c.flush(),
    remove: (ids) => c.remove(ids),
    close: async () => c.close(),
  };
}

/** The store on disk; opened lazily, read-only unless a command writes. */
function viaStore(dir: string, now: () => number): QueueAccess {
  let store: QueueStore | undefined;
  let writable = false;
  const get = async (write: boolean): Promise<QueueStore | undefined> => {
    if (store && (writable || !write)) return store;
    if (!existsSync(dir)) return undefined;
    await store?.close();
    // Loaded on demand: sendmail and the socket path never need the store's code.
    const { FsQueueStore } = await import('../queue/fs-store.js');
    if (write) {
      const s = new FsQueueStore(dir);
      await s.open();
      store = s;
      writable = true;
    } else store = await FsQueueStore.openReadOnly(dir);
    return store;
  };
  return {
    live: false,
    list: async () => (await (await get(false))?.list()) ?? [],
    show: async (id) => (await (await get(false))?.get(id)) ?? undefined,
    async flush() {
      const s = await get(true);
      if (!s) return 0;
      const { needsWork } = await import('../queue/store.js');
      let n = 0;
      const t = now();
      for (const m of await s.list()) {
        const due = m.recipients
          .filter((r) => needsWork(r) && r.nextAttemptAt > t)
          .map((r) => ({ ...r, nextAttemptAt: t }));
        if (due.length === 0) continue;
        await s.update(m.envelope.id, due);
        n++;
      }
      return n;
    },
    async remove(ids) {
      const s = await get(true);
      const removed: string[] = [];
      const missing: string[] = [];
      for (const id of ids) (s && (await s.remove(id)) ? removed : missing).push(id);
      return { removed, missing };
    },
    close: async () => store?.close(),
  };
}

export async function openQueueAccess(config: FerrymailConfig, io: CliIo): Promise<QueueAccess> {
  const client = await tryConnectControl(controlSocketPath(config));
  return client ? viaControl(client) : viaStore(join(config.data_dir, 'queue'), io.now);
}

const BATCH = 200;

/** Run `ferrymail queue ARGS` with a loaded config; resolves with the exit code. */
export async function runQueue(args: readonly string[], config: FerrymailConfig, io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  const json = rest.includes('--json');
  const operands = rest.filter((a) => a !== '--json');
  const usage = (msg: string) => {
    io.stderr.write(`queue: ${msg} (see ferrymail queue --help)\n`);
    return EXIT.USAGE;
  };
  if (sub === undefined) return usage('name a subcommand: list, show, flush or delete');
  const unknownFlag = operands.find((a) => a.startsWith('-') && a !== '-');
  if (unknownFlag) return usage(`unknown option ${unknownFlag}`);
  if (!['list', 'show', 'flush', 'delete'].includes(sub)) return usage(`unknown subcommand "${sub}"`);
  if ((sub === 'list' || sub === 'flush') && operands.length > 0) return usage(`${sub} takes no arguments`);
  if (sub === 'show' && operands.length !== 1) return usage('show takes one message id');
  if (sub === 'delete' && operands.length === 0)
    return usage('delete needs message ids (or "-" to read them from standard input)');

  let access: QueueAccess;
  try {
    access = await openQueueAccess(config, io);
  } catch (err) {
    io.stderr.write(`queue: ${(err as Error).message}\n`);
    return EXIT.UNAVAILABLE;
  }
  try {
    switch (sub) {
      case 'list': {
        const msgs = await access.list();
        io.stdout.write(json ? JSON.stringify(msgs, null, 2) + '\n' : formatQueueList(msgs, io.now()));
        return EXIT.OK;
      }
      case 'show': {
        const id = operands[0] ?? '';
        const msg = await access.show(id);
        if (!msg) {
          io.stderr.write(`queue: no message with id ${id}\n`);
          return EXIT.FAILURE;
        }
        io.stdout.write(json ? JSON.stringify(msg, null, 2) + '\n' : formatMessage(msg, io.now()));
        return EXIT.OK;
      }
      case 'flush': {
        const n = await access.flush();
        io.stdout.write(
          access.live
            ? `queue: ${n} message${n === 1 ? '' : 's'} scheduled for delivery now\n`
            : `queue: ${n} message${n === 1 ? '' : 's'} due now; ferrymail is not running, so they go when it starts\n`,
        );
        return EXIT.OK;
      }
      default:
        return await remove(access, operands[0] === '-' ? await readIds(io) : operands, io);
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'QUEUE_LOCKED') {
      io.stderr.write(
        'queue: the queue is locked by a running ferrymail that does not answer on its control socket\n',
      );
      return EXIT.TEMPFAIL;
    }
    io.stderr.write(
      `queue: ${err instanceof ControlError || err instanceof Error ? err.message : String(err)}\n`,
    );
    return EXIT.SOFTWARE;
  } finally {
    await access.close();
  }
}

async function remove(access: QueueAccess, ids: string[], io: CliIo): Promise<number> {
  const progress = io.stderr.isTTY === true && ids.length > BATCH;
  const removed: string[] = [];
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i += BATCH) {
    const r = await access.remove(ids.slice(i, i + BATCH));
    removed.push(...r.removed);
    missing.push(...r.missing);
    if (progress) io.stderr.write(`\rqueue: deleting… ${Math.min(i + BATCH, ids.length)}/${ids.length}`);
  }
  if (progress) io.stderr.write('\n');
  for (const id of missing) io.stderr.write(`queue: no message with id ${id}\n`);
  io.stdout.write(`queue: deleted ${removed.length} message${removed.length === 1 ? '' : 's'}\n`);
  return missing.length > 0 ? EXIT.FAILURE : EXIT.OK;
}

async function readIds(io: CliIo): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const c of io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .split(/\s+/)
    .filter((s) => s !== '');
}
