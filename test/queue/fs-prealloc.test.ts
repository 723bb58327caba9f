/**
 * The zero fill of queue/fs-log.ts: segments are zero-filled ahead of the write position, so a
 * process killed while the store is open leaves zeros after its records. Replay must read them
 * as a clean end (no warning), cut them (and anything stale past them) from the last segment,
 * and go on writing; a clean close and a segment roll leave no zeros behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { encodeRecord, RECORD_PUT } from '../../src/queue/fs-record.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';

const STEP = 64 * 1024;

async function segments(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

async function sizes(dir: string): Promise<number[]> {
  return Promise.all((await segments(dir)).map(async (n) => (await fsp.stat(join(dir, n))).size));
}

/** Waits until the zero fill has made the current segment longer than `than` bytes. */
async function filledPast(dir: string, than: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const last = (await sizes(dir)).at(-1) ?? 0;
    if (last > than) return last;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the segment was never zero-filled ahead');
}

/** What a kill -9 leaves: the files as they are now, without the lock's owner. */
async function copyAsKilled(from: string, to: string): Promise<void> {
  await fsp.cp(from, to, { recursive: true });
  await fsp.rm(join(to, 'lock'), { force: true });
}

async function withDirs(fn: (a: string, b: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    await fn(join(t.dir, 'a'), join(t.dir, 'b'));
  } finally {
    await t.cleanup();
  }
}

test('zeros after the records (a process killed with the store open) are a clean end', () =>
  withDirs(async (a, b) => {
    const s = new FsQueueStore(a, { preallocBytes: STEP });
    await s.open();
    for (let i = 0; i < 5; i++) await s.put(envelope(`Z${i}`), body(`Z${i}`));
    const filled = await filledPast(a, 5 * 300);
    assert.ok(filled >= STEP, `the segment is ${filled} bytes: no zeros ahead`);
    await copyAsKilled(a, b);
    await s.close();

    const r = new FsQueueStore(b, { preallocBytes: STEP });
    await r.open();
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['Z0', 'Z1', 'Z2', 'Z3', 'Z4'],
    );
    await r.put(envelope('AFTER'), body('AFTER'));
    await r.close();
    const again = new FsQueueStore(b);
    await again.open();
    assert.deepEqual(again.warnings, []);
    assert.equal((await again.list()).length, 6);
    assert.deepEqual(await again.readMessage('AFTER'), bodyBytes('AFTER'));
    await again.close();
  }));

test('a clean close leaves no zeros: the segment is exactly its records', () =>
  withDirs(async (a) => {
    const s = new FsQueueStore(a, { preallocBytes: STEP });
    await s.open();
    for (let i = 0; i < 3; i++) await s.put(envelope(`C${i}`), body(`C${i}`));
    await filledPast(a, 3 * 300);
    await s.close();
    const [size] = await sizes(a);
    const one = encodeRecord(RECORD_PUT, {}, []).bytes;
    assert.ok(size! > 3 * one && size! < 3 * 1000, `segment of ${size} bytes after close`);
  }));

test('a stale record past the zeros of the last segment is not brought back', () =>
  withDirs(async (a, b) => {
    const s = new FsQueueStore(a, { preallocBytes: STEP });
    await s.open();
    await s.put(envelope('K1'), body('K1'));
    await filledPast(a, 300);
    await copyAsKilled(a, b);
    await s.close();
    const [end] = await sizes(a); // a clean close: exactly the one record
    // How long N0's record will be: the same put into a scratch queue.
    const scratch = new FsQueueStore(`${a}-n0`, { preallocBytes: 0 });
    await scratch.open();
    await scratch.put(envelope('N0'), body('N0'));
    await scratch.close();
    const [n0] = await sizes(`${a}-n0`);
    // A whole, valid record (the remains of a batch whose beginning never reached the disk) just
    // where N0 will end: if the zeros and what lies past them stayed, N0 would lead the scan to it.
    const [name] = await segments(b);
    const ghost = encodeRecord(
      RECORD_PUT,
      {
        envelope: envelope('GHOST'),
        recipients: [{ index: 0, status: 'pending', attempts: 0, nextAttemptAt: 0 }],
      },
      [bodyBytes('GHOST')],
    );
    const fh = await fsp.open(join(b, name!), 'r+');
    await fh.writev(ghost.bufs, end! + n0!);
    await fh.close();

    const r = new FsQueueStore(b, { preallocBytes: 0 });
    await r.open();
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(
      (await r.list()).map((m) => m.envelope.id),
      ['K1'],
    );
    await r.put(envelope('N0'), body('N0'));
    await copyAsKilled(b, `${b}2`);
    await r.close();
    const again = new FsQueueStore(`${b}2`);
    await again.open();
    assert.deepEqual(
      (await again.list()).map((m) => m.envelope.id),
      ['K1', 'N0'],
    );
    await again.close();
  }));

test('a sealed segment keeps no zeros once the log moves to the next one', () =>
  withDirs(async (a) => {
    const s = new FsQueueStore(a, { preallocBytes: 4096, segmentBytes: 4096 });
    await s.open();
    for (let i = 0; i < 20; i++) await s.put(envelope(`R${i}`), body(`R${i}`, 900));
    const all = await sizes(a);
    assert.ok(all.length >= 3, `${all.length} segments`);
    const sealed = all.slice(0, -1);
    // Each sealed segment ends at its last record: past 4096 by at most one record, never by zeros.
    for (const size of sealed) assert.ok(size >= 4096 && size < 4096 + 1100, `sealed segment of ${size}`);
    await s.close();
    const r = new FsQueueStore(a);
    await r.open();
    assert.deepEqual(r.warnings, []);
    assert.equal((await r.list()).length, 20);
    await r.close();
  }));

test('records bigger than a fill step, written while fills run, are never zeroed over', () =>
  withDirs(async (a, b) => {
    const s = new FsQueueStore(a, { preallocBytes: 8192 });
    await s.open();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `B${String(i).padStart(2, '0')}`;
      ids.push(id);
      // Several at once, so batches of many records go out while a fill may be under way.
      if (i % 3 === 2) await s.put(envelope(id), body(id, 20_000));
      else void s.put(envelope(id), body(id, 3000 + i * 100));
    }
    await s.put(envelope('END'), body('END'));
    await copyAsKilled(a, b);
    await s.close();
    const r = new FsQueueStore(b);
    await r.open();
    assert.deepEqual(r.warnings, []);
    assert.deepEqual((await r.list()).map((m) => m.envelope.id).sort(), [...ids, 'END'].sort());
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await r.readMessage(id), bodyBytes(id, i % 3 === 2 ? 20_000 : 3000 + i * 100));
    }
    await r.close();
  }));

test('a sealed segment with a few zeros after its records (a lost trim) reads clean', () =>
  withDirs(async (a) => {
    const s = new FsQueueStore(a, { preallocBytes: 0, segmentBytes: 1000 });
    await s.open();
    for (let i = 0; i < 4; i++) await s.put(envelope(`S${i}`), body(`S${i}`, 900));
    await s.close();
    const names = await segments(a);
    assert.ok(names.length >= 3);
    // Less than a record header of zeros, and a whole page of them: both are the end of the records.
    await fsp.appendFile(join(a, names[0]!), Buffer.alloc(9));
    await fsp.appendFile(join(a, names[1]!), Buffer.alloc(4096));
    const r = new FsQueueStore(a);
    await r.open();
    assert.deepEqual(r.warnings, []);
    assert.equal((await r.list()).length, 4);
    await r.close();
  }));

test('zeros with data after them in a sealed segment are reported, not taken as its end', () =>
  withDirs(async (a) => {
    const s = new FsQueueStore(a, { preallocBytes: 0, segmentBytes: 1000 });
    await s.open();
    for (let i = 0; i < 4; i++) await s.put(envelope(`D${i}`), body(`D${i}`, 900));
    await s.close();
    const names = await segments(a);
    // A sector that reads back as zeros in the middle of the first segment's only record.
    const fh = await fsp.open(join(a, names[0]!), 'r+');
    await fh.write(Buffer.alloc(64), 0, 64, 0);
    await fh.close();
    const r = new FsQueueStore(a);
    await r.open();
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /zeros followed by data/);
    await r.close();
  }));
