/**
 * Lazy changes of FsQueueStore (`{ durable: false }`): acknowledged without an fdatasync of their
 * own, durable with the next durable change, the sync timer, or close; and never made to count
 * before they are durable (no segment deleted on their strength, no older segment left behind
 * undurable). "Crash" is a simulated power loss (test/queue/fixtures/crash-fs.ts) that keeps
 * only what was fdatasynced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueStore, type FsQueueStoreOptions } from '../../src/queue/fs-store.js';
import type { RecipientState } from '../../src/queue/types.js';
import { CrashableFs } from './fixtures/crash-fs.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';

const LAZY = { durable: false } as const;
const keepOnlyDurable = (): number => 0;

function state(attempts: number): RecipientState {
  return { index: 0, status: 'pending', attempts, nextAttemptAt: 1000 + attempts };
}

async function segments(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** Segment deletion runs in the committer just after the batch that allowed it: wait for it. */
async function segmentCount(dir: string, want: number): Promise<number> {
  let n = (await segments(dir)).length;
  for (let i = 0; i < 100 && n !== want; i++) {
    await new Promise((r) => setTimeout(r, 10));
    n = (await segments(dir)).length;
  }
  return n;
}

/** Runs `fn` on an open store over a crashable fs; `crash` cuts the files and reopens. */
async function withCrashable(
  options: Omit<FsQueueStoreOptions, 'fs'>,
  fn: (ctx: {
    dir: string;
    store: FsQueueStore;
    cfs: CrashableFs;
    crash: () => Promise<FsQueueStore>;
  }) => Promise<void>,
): Promise<void> {
  const t = await tempDir();
  const dir = join(t.dir, 'queue');
  const cfs = new CrashableFs(dir);
  // No zero fill (preallocBytes 0): its own fdatasyncs would make lazy changes durable at moments
  // these tests do not control. test/queue/fs-model-crash.test.ts runs crashes with it.
  const store = new FsQueueStore(dir, { syncIntervalMs: 100_000, preallocBytes: 0, ...options, fs: cfs });
  await store.open();
  const opened: FsQueueStore[] = [store];
  try {
    await fn({
      dir,
      store,
      cfs,
      crash: async () => {
        await cfs.crash(keepOnlyDurable);
        const again = new FsQueueStore(dir, { preallocBytes: 0, ...options, fs: new CrashableFs(dir) });
        opened.push(again);
        await again.open();
        assert.deepEqual(again.warnings, []);
        return again;
      },
    });
  } finally {
    for (const s of opened) await s.close().catch(() => undefined);
    await t.cleanup();
  }
}

test('a lazy update or removal is acknowledged without an fdatasync, and seen at once', () =>
  withCrashable({}, async ({ store, cfs }) => {
    await store.put(envelope('L1'), body('L1'));
    await store.put(envelope('L2'), body('L2'));
    const before = cfs.syncs;
    const m = await store.update('L1', [state(3)], LAZY);
    assert.equal(m.recipients[0]!.attempts, 3);
    assert.equal(await store.remove('L2', LAZY), true);
    assert.equal(cfs.syncs, before);
    assert.equal((await store.get('L1'))!.recipients[0]!.attempts, 3);
    assert.equal(await store.get('L2'), null);
    assert.equal(await store.remove('L2', LAZY), false);
  }));

test('a power loss may lose lazy changes, but never a durable one', () =>
  withCrashable({}, async ({ store, crash }) => {
    await store.put(envelope('L1'), body('L1'));
    await store.put(envelope('L2'), body('L2'));
    await store.update('L1', [state(1)]);
    await store.update('L1', [state(2)], LAZY);
    await store.remove('L2', LAZY);
    const after = await crash();
    assert.equal((await after.get('L1'))!.recipients[0]!.attempts, 1);
    assert.ok(await after.get('L2'), 'the lazy removal was lost: L2 is delivered again');
    assert.deepEqual(await after.readMessage('L2'), bodyBytes('L2'));
  }));

test('the next durable change makes earlier lazy ones durable', () =>
  withCrashable({}, async ({ store, crash }) => {
    await store.put(envelope('L1'), body('L1'));
    await store.put(envelope('L2'), body('L2'));
    await store.update('L1', [state(2)], LAZY);
    await store.remove('L2', LAZY);
    await store.put(envelope('L3'), body('L3'));
    const after = await crash();
    assert.equal((await after.get('L1'))!.recipients[0]!.attempts, 2);
    assert.equal(await after.get('L2'), null);
    assert.ok(await after.get('L3'));
  }));

test('lazy changes become durable within syncIntervalMs, and on close', async () => {
  await withCrashable({ syncIntervalMs: 10 }, async ({ store, cfs, crash }) => {
    await store.put(envelope('L1'), body('L1'));
    const before = cfs.syncs;
    await store.update('L1', [state(5)], LAZY);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(cfs.syncs, before + 1);
    const after = await crash();
    assert.equal((await after.get('L1'))!.recipients[0]!.attempts, 5);
  });
  await withCrashable({}, async ({ store, crash }) => {
    await store.put(envelope('L1'), body('L1'));
    await store.update('L1', [state(6)], LAZY);
    await store.close();
    const after = await crash();
    assert.equal((await after.get('L1'))!.recipients[0]!.attempts, 6);
  });
});

test('no segment is deleted because of lazy removals that are not durable yet', () =>
  // compactRatio 0: the first segment goes only once both its messages are removed.
  withCrashable({ segmentBytes: 2000, compactRatio: 0 }, async ({ dir, store, crash }) => {
    await store.put(envelope('A'), body('A', 1200));
    await store.put(envelope('B'), body('B', 1200));
    await store.put(envelope('C'), body('C', 100));
    assert.equal((await segments(dir)).length, 2);
    await store.update('C', [state(7)], LAZY);
    await store.remove('A', LAZY);
    await store.remove('B', LAZY);
    assert.equal(await segmentCount(dir, 1), 1, 'the first segment is gone');
    // Had the removals been lost while the segment went, A and B would be gone but C's older
    // update lost: no state the queue ever had.
    const after = await crash();
    assert.deepEqual(
      (await after.list()).map((m) => [m.envelope.id, m.recipients[0]!.attempts]),
      [['C', 7]],
    );
  }));

test('a new segment is begun only once lazy changes in the old one are durable', () =>
  withCrashable({ segmentBytes: 2000 }, async ({ dir, store, crash }) => {
    // A fills most of the first segment; four lazy updates fit after it, the rest go to the next.
    // Each touches another recipient, so losing the early ones would show.
    await store.put(envelope('A', 6), body('A', 800));
    for (let i = 0; i < 6; i++) await store.update('A', [{ ...state(i + 1), index: i }], LAZY);
    await store.put(envelope('B'), body('B', 100));
    assert.ok((await segments(dir)).length >= 2);
    const after = await crash();
    assert.deepEqual(
      (await after.get('A'))!.recipients.map((r) => r.attempts),
      [1, 2, 3, 4, 5, 6],
    );
    assert.ok(await after.get('B'));
  }));

test('the first delivery attempt reads the new message from memory, later ones from the log', () =>
  withCrashable({}, async ({ store }) => {
    await store.put(envelope('M1'), body('M1', 5000));
    assert.deepEqual(await store.readMessage('M1'), bodyBytes('M1', 5000));
    assert.deepEqual(await store.readMessage('M1'), bodyBytes('M1', 5000));
    // The buffer handed out is the caller's: changing it changes nothing stored.
    const b = await store.readMessage('M1');
    b.fill(0);
    assert.deepEqual(await store.readMessage('M1'), bodyBytes('M1', 5000));
  }));

test('cacheBytes bounds the messages kept in memory; 0 keeps none', async () => {
  const t = await tempDir();
  try {
    for (const cacheBytes of [0, 3000]) {
      const dir = join(t.dir, `q${cacheBytes}`);
      const s = new FsQueueStore(dir, { cacheBytes });
      await s.open();
      for (const id of ['C1', 'C2', 'C3']) await s.put(envelope(id), body(id, 1400));
      for (const id of ['C3', 'C1', 'C2']) assert.deepEqual(await s.readMessage(id), bodyBytes(id, 1400));
      await s.close();
    }
  } finally {
    await t.cleanup();
  }
});
