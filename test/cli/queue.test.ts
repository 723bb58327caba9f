import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { formatAge, formatQueueList, formatMessage } from '../../src/cli/queue-format.js';
import { controlSocketPath, runQueue } from '../../src/cli/queue.js';
import { parseConfig } from '../../src/config/load.js';
import type { FerrymailConfig } from '../../src/config/schema.js';
import type { ControlHandlers } from '../../src/control/protocol.js';
import { startControlServer, type ControlServer } from '../../src/control/server.js';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import type { Envelope, QueuedMessage } from '../../src/queue/types.js';

const NOW = 1_700_000_600_000;

const envelope = (id: string, over: Partial<Envelope> = {}): Envelope => ({
  id,
  sender: 'alice@x.test',
  recipients: [{ address: 'bob@y.test' }, { address: 'carol@z.test' }],
  receivedAt: NOW - 600_000,
  body: '7BIT',
  smtputf8: false,
  ...over,
});

const sample = (id: string): QueuedMessage => ({
  envelope: envelope(id),
  recipients: [
    {
      index: 0,
      status: 'pending',
      attempts: 2,
      nextAttemptAt: NOW + 180_000,
      lastReply: '451 4.7.1 greylisted',
      remoteMta: 'mx.y.test',
    },
    { index: 1, status: 'delivered', attempts: 1, nextAttemptAt: 0 },
  ],
  size: 1234,
});

function io(stdin = ''): CliIo & { out: string; err: string } {
  const r = {
    out: '',
    err: '',
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout: { write: (s: string) => (r.out += s) },
    stderr: { write: (s: string) => (r.err += s) },
    env: {},
    cwd: '/',
    now: () => NOW,
  };
  return r;
}

describe('queue formatting', () => {
  it('ages', () => {
    assert.equal(formatAge(45_000), '45s');
    assert.equal(formatAge(200_000), '3m20s');
    assert.equal(formatAge(3_600_000), '1h');
    assert.equal(formatAge(93_600_000), '1d2h');
    assert.equal(formatAge(-5), '0s');
  });

  it('list prints a postqueue-like table', () => {
    const text = formatQueueList([sample('0123456789ABCD')], NOW);
    assert.equal(
      text,
      [
        '-Queue ID-       --Size--  --Age--  -Sender/Recipient-',
        '0123456789ABCD       1234      10m  alice@x.test',
        '    pending   bob@y.test  (2 attempts, next in 3m)',
        '              451 4.7.1 greylisted [mx.y.test]',
        '    delivered carol@z.test  (1 attempt)',
        '',
        '-- 1234 bytes in 1 message, 1 recipient pending',
        '',
      ].join('\n'),
    );
    assert.equal(formatQueueList([], NOW), 'queue is empty\n');
  });

  it('show prints the envelope', () => {
    const text = formatMessage(sample('M1'), NOW);
    assert.match(
      text,
      /^id {8}M1\nsender {4}alice@x\.test\nreceived  2023-11-14T22:13:20\.000Z \(10m ago\)\n/,
    );
    assert.match(text, /recipients:\n {4}pending {3}bob@y\.test/);
  });
});

describe('queue command', () => {
  let dir = '';
  let config: FerrymailConfig;
  let server: ControlServer | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fm-q-'));
    config = parseConfig('data_dir = "d"', 'test.toml', dir, { hostname: 'h.test' });
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function serveFake(): Promise<string[]> {
    const removed: string[] = [];
    const msgs = new Map([['M1', sample('M1')]]);
    const handlers: ControlHandlers = {
      list: async () => [...msgs.values()],
      show: async (id) => msgs.get(id),
      flush: async () => 3,
      remove: async (ids) => {
        removed.push(...ids);
        return { removed: ids.filter((i) => msgs.delete(i)), missing: ids.filter((i) => i !== 'M1') };
      },
      status: () => ({}),
    };
    const { mkdir } = await import('node:fs/promises');
    await mkdir(config.data_dir, { recursive: true });
    server = await startControlServer(controlSocketPath(config), handlers);
    return removed;
  }

  it('usage errors exit 64', async () => {
    for (const args of [[], ['frob'], ['show'], ['list', 'x'], ['delete'], ['list', '--all']]) {
      const x = io();
      assert.equal(await runQueue(args, config, x), 64, args.join(' '));
      assert.match(x.err, /^queue: .*\(see ferrymail queue --help\)\n$/);
    }
  });

  it('through the running server: list, list --json, show, flush, delete', async () => {
    const removed = await serveFake();
    let x = io();
    assert.equal(await runQueue(['list'], config, x), 0);
    assert.match(x.out, /^-Queue ID-.*\nM1 /);
    x = io();
    assert.equal(await runQueue(['list', '--json'], config, x), 0);
    assert.deepEqual(JSON.parse(x.out), [sample('M1')]);
    x = io();
    assert.equal(await runQueue(['show', 'M1', '--json'], config, x), 0);
    assert.deepEqual(JSON.parse(x.out), sample('M1'));
    x = io();
    assert.equal(await runQueue(['show', 'NOPE'], config, x), 1);
    assert.equal(x.err, 'queue: no message with id NOPE\n');
    x = io();
    assert.equal(await runQueue(['flush'], config, x), 0);
    assert.equal(x.out, 'queue: 3 messages scheduled for delivery now\n');
    x = io();
    assert.equal(await runQueue(['delete', 'M1', 'GONE'], config, x), 1);
    assert.equal(x.err, 'queue: no message with id GONE\n');
    assert.equal(x.out, 'queue: deleted 1 message\n');
    assert.deepEqual(removed, ['M1', 'GONE']);
  });

  it('delete - reads ids from stdin, in batches, with progress on a TTY', async () => {
    const removed = await serveFake();
    const ids = Array.from({ length: 450 }, (_, i) => `X${i}`);
    const x = io(ids.join('\n') + '\n');
    x.stderr.isTTY = true;
    assert.equal(await runQueue(['delete', '-'], config, x), 1);
    assert.equal(removed.length, 450);
    assert.match(x.err, /\rqueue: deleting… 450\/450\n/);
  });

  it('without a server: reads and changes the queue files directly', async () => {
    const qdir = join(config.data_dir, 'queue');
    const store = new FsQueueStore(qdir);
    await store.open();
    await store.put(envelope('AAAAAAAAAAAAAA', { receivedAt: NOW + 60_000 }), [
      Buffer.from('Subject: a\r\n\r\nx\r\n'),
    ]);
    await store.put(envelope('BBBBBBBBBBBBBB'), [Buffer.from('Subject: b\r\n\r\ny\r\n')]);
    await store.close();

    let x = io();
    assert.equal(await runQueue(['list', '--json'], config, x), 0);
    const listed = JSON.parse(x.out) as QueuedMessage[];
    assert.deepEqual(
      listed.map((m) => m.envelope.id),
      ['AAAAAAAAAAAAAA', 'BBBBBBBBBBBBBB'],
    );

    x = io();
    assert.equal(await runQueue(['show', 'BBBBBBBBBBBBBB'], config, x), 0);
    assert.match(x.out, /sender {4}alice@x\.test/);

    x = io();
    assert.equal(await runQueue(['flush'], config, x), 0);
    assert.match(x.out, /^queue: 1 message due now; ferrymail is not running/);

    x = io();
    assert.equal(await runQueue(['delete', 'BBBBBBBBBBBBBB'], config, x), 0);
    x = io();
    assert.equal(await runQueue(['show', 'BBBBBBBBBBBBBB'], config, x), 1);

    const check = await FsQueueStore.openReadOnly(qdir);
    const left = await check.list();
    await check.close();
    assert.deepEqual(
      left.map((m) => m.envelope.id),
      ['AAAAAAAAAAAAAA'],
    );
    assert.ok(left[0]?.recipients.every((r) => r.nextAttemptAt === NOW));
  });

  it('without a server and without a queue: empty', async () => {
    const x = io();
    assert.equal(await runQueue(['list'], config, x), 0);
    assert.equal(x.out, 'queue is empty\n');
    const y = io();
    assert.equal(await runQueue(['delete', 'X'], config, y), 1);
    assert.equal(y.err, 'queue: no message with id X\n');
  });
});
