/**
 * FsQueueStore beyond the shared contract: recovery, torn tails, read-only opening, the lock,
 * write failures (ENOSPC, EIO) through an injected fs, and segment compaction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueStore, type QueueFs } from '../../src/queue/fs-store.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';

async function segments(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    await fn(join(t.dir, 'queue'));
  } finally {
    await t.cleanup();
  }
}

async function reopen(dir: string): Promise<FsQueueStore> {
  const s = new FsQueueStore(dir);
  await s.open();
  return s;
}

test('state survives close and reopen: puts, updates, removals', () =>
  withDir(async (dir) => {
    const s = await reopen(dir);
    await s.put(envelope('K1', 2), body('K1'));
    await s.put(envelope('K2'), body('K2', 70_000));
    await s.put(envelope('K3'), body('K3'));
    await s.update('K1', [
      {
        index: 1,
        status: 'failed',
        attempts: 1,
        nextAttemptAt: 7,
        lastReply: '550 5.1.1 no',
        lastStatus: '5.1.1',
      },
    ]);
    await s.remove('K3');
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['K1', 'K2'],
    );
    const k1 = (await r.get('K1'))!;
    assert.equal(k1.recipients[1]!.status, 'failed');
    assert.equal(k1.recipients[1]!.lastReply, '550 5.1.1 no');
    assert.deepEqual(await r.readMessage('K2'), bodyBytes('K2', 70_000));
    assert.deepEqual(r.warnings, []);
    await r.close();
  }));

for (const [what, damage] of [
  ['a record cut short', async (path: string, size: number) => fsp.truncate(path, size - 25)],
  [
    'garbage appended',
    async (path: string) => fsp.appendFile(path, Buffer.from('\x00\x00garbage that is not a record')),
  ],
  [
    'a flipped byte in the last record',
    async (path: string, size: number) => {
      const fh = await fsp.open(path, 'r+');
      await fh.write(Buffer.from('!'), 0, 1, size - 3);
      await fh.close();
    },
  ],
] as const) {
  test(`a torn tail (${what}) is dropped on open, and writing goes on after it`, () =>
    withDir(async (dir) => {
      const s = await reopen(dir);
      for (let i = 0; i < 10; i++) await s.put(envelope(`T${i}`), body(`T${i}`));
      await s.update('T3', [{ index: 0, status: 'pending', attempts: 2, nextAttemptAt: 99 }]);
      await s.put(envelope('LAST'), body('LAST'));
      await s.close();
      const [seg] = await segments(dir);
      const path = join(dir, seg!);
      const size = (await fsp.stat(path)).size;
      await damage(path, size);
      const r = await reopen(dir);
      const ids = (await r.list()).map((m) => m.envelope.id);
      const expected = [
        ...Array.from({ length: 10 }, (_, i) => `T${i}`),
        ...(what === 'garbage appended' ? ['LAST'] : []),
      ].sort();
      assert.deepEqual(ids, expected);
      assert.equal((await r.get('T3'))!.recipients[0]!.attempts, 2);
      await r.put(envelope('AFTER'), body('AFTER'));
      await r.close();
      const again = await reopen(dir);
      assert.ok((await again.list()).some((m) => m.envelope.id === 'AFTER'));
      assert.deepEqual(await again.readMessage('AFTER'), bodyBytes('AFTER'));
      assert.deepEqual(again.warnings, []);
      await again.close();
    }));
}

test('openReadOnly sees the queue while the writer runs, and writes nothing', () =>
  withDir(async (dir) => {
    const w = await reopen(dir);
    await w.put(envelope('W1'), body('W1'));
    await w.put(envelope('W2'), body('W2'));
    const [seg] = await segments(dir);
    await fsp.appendFile(join(dir, seg!), Buffer.from('half a rec'));
    const size = (await fsp.stat(join(dir, seg!))).size;
    const r = await FsQueueStore.openReadOnly(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['W1', 'W2'],
    );
    assert.deepEqual(await r.readMessage('W2'), bodyBytes('W2'));
    assert.equal((await fsp.stat(join(dir, seg!))).size, size, 'the reader must not truncate');
    await assert.rejects(r.put(envelope('W3'), body('W3')), { code: 'QUEUE_READ_ONLY' });
    await assert.rejects(r.claim(0, 1, 1), { code: 'QUEUE_READ_ONLY' });
    await assert.rejects(r.remove('W1'), { code: 'QUEUE_READ_ONLY' });
    await r.close();
    await w.close();
  }));

test('a second writer gets QUEUE_LOCKED; a lock left by a dead process is taken over', () =>
  withDir(async (dir) => {
    const a = await reopen(dir);
    await assert.rejects(reopen(dir), { code: 'QUEUE_LOCKED', message: /in use by process/ });
    await a.close();
    const b = await reopen(dir);
    await b.close();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    await fsp.writeFile(join(dir, 'lock'), `${dead.stdout.toString()} 12345\n`);
    const c = await reopen(dir);
    await c.close();
    await assert.rejects(fsp.stat(join(dir, 'lock')), { code: 'ENOENT' });
  }));

/** A real fs whose file writes can be made to fail: part of the bytes, then an errno. */
interface Faults {
  write: string | null;
  sync: string | null;
  /** Fails creating a file (O_EXCL), as a full directory or inode table does. */
  create: string | null;
  /** Fails fsync of a directory. */
  dirSync: string | null;
  unlink: string | null;
}

function faultyFs(): { fs: QueueFs; fail: Faults } {
  const fail: Faults = { write: null, sync: null, create: null, dirSync: null, unlink: null };
  const boom = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
  const wrap = (fh: FileHandle): FileHandle =>
    new Proxy(fh, {
      get(target, prop, receiver) {
        if (prop === 'writev') {
          return async (bufs: Buffer[], pos: number) => {
            if (fail.write) {
              // A full disk typically takes a few bytes first, then refuses the rest.
              await target.write(
                bufs[0]!.subarray(0, Math.min(5, bufs[0]!.length)),
                0,
                Math.min(5, bufs[0]!.length),
                pos,
              );
              throw Object.assign(new Error(`${fail.write}: simulated`), { code: fail.write });
            }
            return target.writev(bufs, pos);
          };
        }
        if (prop === 'datasync' && fail.sync) {
          return async () => {
            throw boom(fail.sync!);
          };
        }
        if (prop === 'sync' && fail.dirSync) {
          return async () => {
            throw boom(fail.dirSync!);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  const fs: QueueFs = {
    open: async (p, f) => {
      if (fail.create && f.includes('x')) throw boom(fail.create);
      return wrap(await fsp.open(p, f));
    },
    readdir: (p) => fsp.readdir(p),
    unlink: async (p) => {
      if (fail.unlink) throw boom(fail.unlink);
      return fsp.unlink(p);
    },
    mkdir: (p, o) => fsp.mkdir(p, o),
    readFile: (p, e) => fsp.readFile(p, e),
  };
  return { fs, fail };
}

for (const code of ['ENOSPC', 'EDQUOT']) {
  test(`${code} rejects the put with that code, acknowledges nothing, and the store recovers`, () =>
    withDir(async (dir) => {
      const { fs, fail } = faultyFs();
      const s = new FsQueueStore(dir, { fs });
      await s.open();
      await s.put(envelope('OK1'), body('OK1'));
      fail.write = code;
      const results = await Promise.allSettled(['F1', 'F2', 'F3'].map((id) => s.put(envelope(id), body(id))));
      for (const r of results)
        assert.equal(r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code, code);
      await assert.rejects(
        s.update('OK1', [{ index: 0, status: 'delivered', attempts: 1, nextAttemptAt: 0 }]),
        { code },
      );
      await assert.rejects(s.remove('OK1'), { code });
      assert.deepEqual(
        (await s.list()).map((m) => m.envelope.id),
        ['OK1'],
      );
      assert.equal((await s.get('OK1'))!.recipients[0]!.status, 'pending');
      fail.write = null;
      await s.put(envelope('OK2'), body('OK2'));
      await s.put(envelope('F1'), body('F1'));
      await s.close();
      const r = await reopen(dir);
      assert.deepEqual(
        (await r.list()).map((m) => m.envelope.id),
        ['F1', 'OK1', 'OK2'],
      );
      assert.deepEqual(await r.readMessage('OK2'), bodyBytes('OK2'));
      assert.deepEqual(r.warnings, []);
      await r.close();
    }));
}

test('a failed fsync (EIO) rejects the batch and the store goes on', () =>
  withDir(async (dir) => {
    const { fs, fail } = faultyFs();
    const s = new FsQueueStore(dir, { fs });
    await s.open();
    await s.put(envelope('S1'), body('S1'));
    fail.sync = 'EIO';
    await assert.rejects(s.put(envelope('S2'), body('S2')), { code: 'EIO' });
    fail.sync = null;
    await s.put(envelope('S3'), body('S3'));
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['S1', 'S3'],
    );
    await r.close();
  }));

test('dead segments are deleted and live messages are copied out of mostly dead ones', () =>
  withDir(async (dir) => {
    const s = new FsQueueStore(dir, { segmentBytes: 8 * 1024 });
    await s.open();
    const ids = Array.from({ length: 60 }, (_, i) => `C${String(i).padStart(3, '0')}`);
    for (const id of ids) await s.put(envelope(id, 2), body(id, 1000));
    assert.ok((await segments(dir)).length >= 6);
    // Keep one long-deferred message per old segment; finish the rest.
    const keep = new Set(['C003', 'C030']);
    await s.update('C003', [{ index: 0, status: 'pending', attempts: 3, nextAttemptAt: 12345 }]);
    for (const id of ids) if (!keep.has(id)) await s.remove(id);
    for (let i = 0; i < 30; i++) await s.put(envelope(`N${i}`), body(`N${i}`, 1000));
    for (let i = 0; i < 30; i++) await s.remove(`N${i}`);
    await s.put(envelope('END'), body('END'));
    const segs = await segments(dir);
    assert.ok(segs.length <= 3, `segments left: ${segs.join(' ')}`);
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['C003', 'C030', 'END'],
    );
    assert.equal((await r.get('C003'))!.recipients[0]!.nextAttemptAt, 12345);
    assert.deepEqual(await r.readMessage('C030'), bodyBytes('C030', 1000));
    await r.close();
  }));

test('a reader opening while the writer rolls and deletes segments sees every acknowledged message', () =>
  withDir(async (dir) => {
    const w = new FsQueueStore(dir, { segmentBytes: 16 * 1024 });
    await w.open();
    const acked = new Set<string>();
    const removing = new Set<string>();
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const id = `V${String(i).padStart(6, '0')}`;
        await w.put(envelope(id), body(id, 700));
        acked.add(id);
        // Finish most messages so old segments die and get deleted under the reader's feet.
        if (i % 4 !== 0) {
          removing.add(id);
          await w.remove(id);
        }
      }
    })();
    try {
      for (let round = 0; round < 15; round++) {
        const before = new Set(acked);
        const r = await FsQueueStore.openReadOnly(dir);
        const seen = new Set((await r.list()).map((m) => m.envelope.id));
        for (const id of before) {
          // Once a removal was asked for, either answer is right.
          if (!removing.has(id)) assert.ok(seen.has(id), `${id} acknowledged before the reader opened`);
        }
        assert.deepEqual(r.warnings, []);
        await r.close();
        await new Promise((res) => setTimeout(res, 5));
      }
    } finally {
      stop = true;
      await writer;
      await w.close();
    }
  }));

test('a segment that cannot be created or made durable fails its batch; the next roll works', () =>
  withDir(async (dir) => {
    const { fs, fail } = faultyFs();
    const s = new FsQueueStore(dir, { fs, segmentBytes: 1024 });
    await s.open();
    await s.put(envelope('G1'), body('G1', 2000));
    fail.create = 'ENOSPC';
    await assert.rejects(s.put(envelope('G2'), body('G2')), { code: 'ENOSPC' });
    fail.create = null;
    // The directory fsync fails and the half-made file cannot even be removed.
    fail.dirSync = 'EIO';
    fail.unlink = 'EIO';
    await assert.rejects(s.put(envelope('G3'), body('G3')), { code: 'EIO' });
    fail.dirSync = null;
    fail.unlink = null;
    await s.put(envelope('G4'), body('G4'));
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['G1', 'G4'],
    );
    assert.deepEqual(await r.readMessage('G4'), bodyBytes('G4'));
    await r.close();
  }));

test('after a failed write, compaction does not queue new copies that fail alike, in a loop', () =>
  withDir(async (dir) => {
    let writes = 0;
    let failFrom = Infinity;
    const fs: QueueFs = {
      open: async (p, f) => {
        const fh = await fsp.open(p, f);
        const writev = fh.writev.bind(fh);
        fh.writev = (async (bufs: Buffer[], pos: number) => {
          writes++;
          // A bounded outage, so a looping committer shows as a count rather than a hang.
          if (writes >= failFrom && writes < failFrom + 100) {
            throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
          }
          return writev(bufs, pos);
        }) as typeof fh.writev;
        return fh;
      },
      readdir: (p) => fsp.readdir(p),
      unlink: (p) => fsp.unlink(p),
      mkdir: (p, o) => fsp.mkdir(p, o),
      readFile: (p, e) => fsp.readFile(p, e),
    };
    const s = new FsQueueStore(dir, { fs, segmentBytes: 1500 });
    await s.open();
    await s.put(envelope('A'), body('A', 100));
    await s.put(envelope('D'), body('D', 1300));
    await s.put(envelope('C'), body('C', 100));
    assert.equal((await segments(dir)).length, 2);
    // The removal is written; the copy of A that compaction then makes fails.
    failFrom = writes + 2;
    await s.remove('D');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(writes - failFrom + 1, 1, 'failed writes');
    failFrom = Infinity;
    await s.put(envelope('E'), body('E'));
    await s.close();
    const r = await reopen(dir);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['A', 'C', 'E'],
    );
    assert.deepEqual(await r.readMessage('A'), bodyBytes('A', 100));
    await r.close();
  }));
