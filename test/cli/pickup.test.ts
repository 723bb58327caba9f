import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodePickupFile,
  PickupCollector,
  writePickupFile,
  type PickupHeader,
} from '../../src/cli/pickup.js';
import type { Envelope, MessageSink, MessageWriter } from '../../src/queue/types.js';

interface Committed {
  envelope: Envelope;
  data: string;
}

/** A MessageSink whose commit can be made to fail or to wait, recording what was committed. */
class FakeSink implements MessageSink {
  committed: Committed[] = [];
  aborted = 0;
  failNext = 0;
  /** While set, commit waits on it; lets a test look at the disk between write and commit. */
  gate: Promise<void> | undefined;
  private n = 0;
  newId(): string {
    return `ID${++this.n}`;
  }
  begin(envelope: Envelope): MessageWriter {
    const chunks: Buffer[] = [];
    return {
      write: (c) => void chunks.push(c),
      commit: async () => {
        if (this.gate) await this.gate;
        if (this.failNext > 0) {
          this.failNext--;
          throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
        }
        this.committed.push({ envelope, data: Buffer.concat(chunks).toString('latin1') });
      },
      abort: () => void this.aborted++,
    };
  }
}

const header = (over: Partial<PickupHeader> = {}): PickupHeader => ({
  v: 1,
  sender: 'me@x.test',
  recipients: ['a@x.test', 'b@y.test'],
  receivedAt: 1_700_000_000_000,
  user: 'cron',
  ...over,
});

describe('pickup', () => {
  let dir = '';
  let sink: FakeSink;
  let collector: PickupCollector | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferrymail-pickup-'));
    sink = new FakeSink();
  });
  afterEach(async () => {
    await collector?.stop();
    collector = undefined;
    await rm(dir, { recursive: true, force: true });
  });
  const newFiles = async () => readdir(join(dir, 'new'));
  const make = (opts = {}) =>
    (collector = new PickupCollector(dir, sink, {
      hostname: 'mx.test',
      now: () => 1_700_000_001_000,
      ...opts,
    }));

  it('writePickupFile leaves one whole file in new/ and nothing in tmp/', async () => {
    const path = await writePickupFile(dir, header(), Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    assert.deepEqual(await newFiles(), [path.split('/').pop()]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  it('the file format: a JSON line, then the message bytes', () => {
    const file = Buffer.concat([
      Buffer.from(JSON.stringify(header()) + '\n'),
      Buffer.from([0xff, 0x0d, 0x0a]),
    ]);
    const d = decodePickupFile(file);
    assert.ok(!('error' in d));
    assert.deepEqual(d.header, header());
    assert.deepEqual(d.message, Buffer.from([0xff, 0x0d, 0x0a]));
    assert.deepEqual(decodePickupFile(Buffer.from('{"v":2}\n')), { error: 'unknown pickup format version' });
    assert.deepEqual(decodePickupFile(Buffer.from('{"v":1,"sender":"a","recipients":[],"receivedAt":1}\n')), {
      error: 'recipients is not a non-empty list of addresses',
    });
  });

  it('scanOnce hands each file to the sink and unlinks it after commit', async () => {
    await writePickupFile(dir, header(), Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    await writePickupFile(
      dir,
      header({ sender: '', recipients: ['jörg@x.test'], receivedAt: 1_700_000_000_500 }),
      Buffer.from('b\r\n'),
    );
    const c = make();
    assert.equal(await c.scanOnce(), 2);
    assert.deepEqual(await newFiles(), []);
    assert.equal(sink.committed.length, 2);
    const [first, second] = sink.committed;
    assert.deepEqual(first?.envelope, {
      id: 'ID1',
      sender: 'me@x.test',
      recipients: [{ address: 'a@x.test' }, { address: 'b@y.test' }],
      receivedAt: 1_700_000_000_000,
      body: '7BIT',
      smtputf8: false,
      client: { ip: '127.0.0.1', authUser: 'cron' },
    });
    assert.equal(
      first?.data,
      `Received: by mx.test (ferrymail pickup, from userid ${process.getuid?.()}, login cron)\r\n\tid ID1; Tue, 14 Nov 2023 22:13:21 +0000\r\nSubject: x\r\n\r\nhi\r\n`,
    );
    assert.equal(second?.envelope.sender, '');
    assert.equal(second?.envelope.smtputf8, true);
  });

  it('the file is still there while commit is pending (unlinked only after it resolves)', async () => {
    await writePickupFile(dir, header(), Buffer.from('x\r\n'));
    let open!: () => void;
    sink.gate = new Promise((r) => (open = r));
    const scan = make().scanOnce();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await newFiles()).length, 1);
    assert.equal(sink.committed.length, 0);
    open();
    assert.equal(await scan, 1);
    assert.deepEqual(await newFiles(), []);
  });

  it('a failing commit leaves the file for the next scan, and aborts the writer', async () => {
    await writePickupFile(dir, header(), Buffer.from('x\r\n'));
    sink.failNext = 1;
    const c = make();
    assert.equal(await c.scanOnce(), 0);
    assert.equal((await newFiles()).length, 1);
    assert.equal(sink.aborted, 1);
    assert.equal(await c.scanOnce(), 1);
    assert.deepEqual(await newFiles(), []);
    assert.equal(sink.committed.length, 1);
  });

  it('a malformed file goes to bad/, never lost, never retried', async () => {
    await mkdir(join(dir, 'new'), { recursive: true });
    await writeFile(join(dir, 'new', 'junk'), 'not json\nbody');
    const c = make();
    assert.equal(await c.scanOnce(), 0);
    assert.deepEqual(await newFiles(), []);
    assert.deepEqual(await readdir(join(dir, 'bad')), ['junk']);
    assert.equal(sink.committed.length, 0);
  });

  it('start() picks up files already waiting and new ones as they arrive', async () => {
    await writePickupFile(dir, header(), Buffer.from('one\r\n'));
    const c = make({ scanIntervalMs: 200 });
    c.start();
    await waitFor(() => sink.committed.length === 1);
    await writePickupFile(dir, header(), Buffer.from('two\r\n'));
    await waitFor(() => sink.committed.length === 2);
    await waitFor(async () => (await newFiles()).length === 0);
    await c.stop();
  });

  it('removes stale leftovers in tmp/', async () => {
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'tmp', 'old'), 'x');
    await writeFile(join(dir, 'tmp', 'fresh'), 'x');
    const longAgo = new Date(1_600_000_000_000);
    await utimes(join(dir, 'tmp', 'old'), longAgo, longAgo);
    await mkdir(join(dir, 'new'), { recursive: true });
    const c = make({ now: () => Date.now() });
    await c.scanOnce();
    assert.equal(existsSync(join(dir, 'tmp', 'old')), false);
    assert.equal(existsSync(join(dir, 'tmp', 'fresh')), true);
  });
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
