import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, mkdir, writeFile, rm } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { MaildirWriter } from '../../src/local/maildir.js';
import { faultyFs, withTempDir, listMaildir, type FailPoint } from './fakes.js';

test('deliver creates the Maildir, lands the file in new/ and leaves tmp/ empty', () =>
  withTempDir(async (dir) => {
    const root = join(dir, 'var', 'mail');
    const fs = faultyFs();
    const w = new MaildirWriter({
      root,
      fs,
      hostname: 'mx.example.test',
      pid: 4242,
      now: () => 1_700_000_000_123,
    });
    const parts = [
      Buffer.from('Header: 1\r\n'),
      Buffer.from('\r\nbody \xff\x00 bytes\r\n', 'latin1'),
      Buffer.alloc(0),
    ];
    const file = await w.deliver('example.test', 'alice', parts);
    const md = join(root, 'example.test', 'alice');
    assert.equal(file, join(md, 'new', basename(file)));
    assert.match(basename(file), /^1700000000\.M123000P4242Q1R[0-9a-f]{8}\.mx\.example\.test$/);
    assert.deepEqual(await readFile(file), Buffer.concat(parts));
    const l = await listMaildir(md);
    assert.deepEqual(l.tmp, []);
    assert.deepEqual(l.cur, []);
    assert.deepEqual(l.new, [basename(file)]);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    // Every created directory's parent, and new/ after the rename, were fsynced.
    for (const d of [join(dir, 'var'), root, join(root, 'example.test'), md, join(md, 'new')]) {
      assert.ok(fs.synced.includes(d), `fsynced ${d}`);
    }
  }));

test('a second delivery reuses the Maildir, gets a new unique name, and syncs only new/', () =>
  withTempDir(async (dir) => {
    const fs = faultyFs();
    const w = new MaildirWriter({ root: dir, fs, now: () => 5 });
    const a = await w.deliver('d.test', 'u', [Buffer.from('one')]);
    fs.synced.length = 0;
    const b = await w.deliver('d.test', 'u', [Buffer.from('two')]);
    assert.notEqual(a, b);
    assert.deepEqual(fs.synced, [join(dir, 'd.test', 'u', 'new')]);
    assert.equal((await listMaildir(join(dir, 'd.test', 'u'))).new.length, 2);
  }));

test('an existing Maildir is used as is', () =>
  withTempDir(async (dir) => {
    const md = join(dir, 'd.test', 'u');
    for (const s of ['tmp', 'new', 'cur']) await mkdir(join(md, s), { recursive: true });
    await writeFile(join(md, 'cur', 'old:2,S'), 'old');
    const w = new MaildirWriter({ root: dir });
    await w.deliver('d.test', 'u', [Buffer.from('x')]);
    const l = await listMaildir(md);
    assert.deepEqual(l.cur, ['old:2,S']);
    assert.equal(l.new.length, 1);
  }));

test('the host name has / and : escaped in the unique name', () =>
  withTempDir(async (dir) => {
    const w = new MaildirWriter({ root: dir, hostname: 'a/b:c' });
    const f = await w.deliver('d.test', 'u', [Buffer.from('x')]);
    assert.ok(basename(f).endsWith('.a\\057b\\072c'), basename(f));
  }));

test('a name collision in tmp/ (EEXIST) is retried with a new name', () =>
  withTempDir(async (dir) => {
    const fs = faultyFs({ at: 'open-tmp', code: 'EEXIST', times: 2 });
    const w = new MaildirWriter({ root: dir, fs });
    const f = await w.deliver('d.test', 'u', [Buffer.from('x')]);
    assert.equal(fs.failures, 2);
    assert.deepEqual(await readFile(f, 'utf8'), 'x');
  }));

const failures: [FailPoint, string][] = [
  ['write', 'ENOSPC'],
  ['write', 'EDQUOT'],
  ['sync', 'EIO'],
  ['rename', 'EACCES'],
  ['sync-new', 'EIO'],
  ['open-tmp', 'EACCES'],
  ['mkdir', 'EACCES'],
];
for (const [at, code] of failures) {
  test(`a failing ${at} (${code}) rejects with that code and leaves no file behind`, () =>
    withTempDir(async (dir) => {
      const w = new MaildirWriter({ root: dir, fs: faultyFs({ at, code }) });
      await assert.rejects(w.deliver('d.test', 'u', [Buffer.from('a'), Buffer.from('b')]), { code });
      if (at === 'mkdir') return;
      const l = await listMaildir(join(dir, 'd.test', 'u'));
      assert.deepEqual(l, { tmp: [], new: [], cur: [] });
    }));
}

test('unsafe folder names are a TypeError, never a path', async () => {
  const w = new MaildirWriter({ root: '/nonexistent-ferrymail-root' });
  for (const [d, u] of [
    ['..', 'u'],
    ['d.test', '..'],
    ['d.test', 'a/b'],
    ['d.test', '.x'],
    ['d.test', ''],
    ['d.test', 'a\u0000'],
  ]) {
    await assert.rejects(w.deliver(d as string, u as string, [Buffer.from('x')]), TypeError);
  }
  assert.throws(() => new MaildirWriter({ root: '' }), TypeError);
});

test('concurrent deliveries into a new Maildir all land, each once', () =>
  withTempDir(async (dir) => {
    const w = new MaildirWriter({ root: dir, now: () => 1000 });
    const other = new MaildirWriter({ root: dir, now: () => 1000 });
    const files = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? w : other).deliver('d.test', 'u', [Buffer.from(`m${i}`)]),
      ),
    );
    assert.equal(new Set(files).size, 20);
    const l = await listMaildir(join(dir, 'd.test', 'u'));
    assert.equal(l.new.length, 20);
    assert.deepEqual(l.tmp, []);
  }));

test('a large message written from several parts is byte-identical', () =>
  withTempDir(async (dir) => {
    const big = Buffer.alloc(8 * 1024 * 1024 + 3, 0x61);
    const w = new MaildirWriter({ root: dir });
    const f = await w.deliver('d.test', 'u', [Buffer.from('H: v\r\n'), big]);
    const got = await readFile(f);
    assert.equal(got.length, big.length + 6);
    assert.ok(got.subarray(6).equals(big));
  }));

test('deliveries into one mailbox at the same time share fsyncs of new/, each one after its rename', () =>
  withTempDir(async (dir) => {
    const fs = faultyFs();
    const renamedAt: number[] = [];
    const syncStarts: number[] = [];
    let clock = 0;
    const traced = {
      ...fs,
      async rename(from: string, to: string) {
        await fs.rename(from, to);
        renamedAt.push(++clock);
      },
      async open(path: string, flags: number | string, mode?: number) {
        const f = await fs.open(path, flags, mode);
        if (!path.endsWith('/new')) return f;
        return {
          ...f,
          async sync() {
            syncStarts.push(++clock);
            // A slow disk, so that the other deliveries queue up behind this fsync.
            await new Promise((r) => setTimeout(r, 20));
            return f.sync();
          },
        };
      },
    };
    const w = new MaildirWriter({ root: dir, fs: traced });
    await w.deliver('d.test', 'u', [Buffer.from('first')]); // makes the Maildir
    fs.synced.length = 0;
    renamedAt.length = 0;
    syncStarts.length = 0;
    const files = await Promise.all(
      Array.from({ length: 10 }, (_, i) => w.deliver('d.test', 'u', [Buffer.from(`m${i}`)])),
    );
    assert.equal(new Set(files).size, 10);
    assert.equal((await listMaildir(join(dir, 'd.test', 'u'))).new.length, 11);
    assert.ok(syncStarts.length < 10, `${syncStarts.length} fsyncs of new/ for 10 deliveries`);
    // Every rename is followed by an fsync of new/ that started after it.
    for (const r of renamedAt)
      assert.ok(
        syncStarts.some((s) => s > r),
        `rename at ${r} not covered`,
      );
  }));

test('a Maildir removed after it was made is made again on the next delivery', () =>
  withTempDir(async (dir) => {
    const w = new MaildirWriter({ root: dir });
    await w.deliver('d.test', 'u', [Buffer.from('one')]);
    await rm(join(dir, 'd.test', 'u'), { recursive: true });
    const b = await w.deliver('d.test', 'u', [Buffer.from('two')]);
    assert.deepEqual(await readFile(b), Buffer.from('two'));
    const l = await listMaildir(join(dir, 'd.test', 'u'));
    assert.deepEqual(l.new, [basename(b)]);
  }));

test('a failing fsync of new/ fails every delivery waiting for it, and the next ones succeed', () =>
  withTempDir(async (dir) => {
    const fs = faultyFs({ at: 'sync-new', code: 'EIO', times: 1 });
    const w = new MaildirWriter({ root: dir, fs });
    const results = await Promise.allSettled(
      Array.from({ length: 3 }, (_, i) => w.deliver('d.test', 'u', [Buffer.from(`m${i}`)])),
    );
    assert.ok(results.some((r) => r.status === 'rejected'));
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as NodeJS.ErrnoException).code, 'EIO');
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    await w.deliver('d.test', 'u', [Buffer.from('after')]);
    // A failed delivery leaves nothing in new/ (it is retried by the queue).
    assert.equal((await listMaildir(join(dir, 'd.test', 'u'))).new.length, ok + 1);
  }));

test('only new/ removed: the Maildir is made whole again and the delivery lands', () =>
  withTempDir(async (dir) => {
    const w = new MaildirWriter({ root: dir });
    await w.deliver('d.test', 'u', [Buffer.from('one')]);
    await rm(join(dir, 'd.test', 'u', 'new'), { recursive: true });
    const b = await w.deliver('d.test', 'u', [Buffer.from('two')]);
    assert.deepEqual(await readFile(b), Buffer.from('two'));
    assert.deepEqual((await listMaildir(join(dir, 'd.test', 'u'))).tmp, []);
  }));

test('deliveries racing into a new Maildir all wait until its directories are durable', () =>
  withTempDir(async (dir) => {
    const fs = faultyFs();
    let parentSynced = 0;
    const slow = {
      ...fs,
      async open(path: string, flags: number | string, mode?: number) {
        const f = await fs.open(path, flags, mode);
        // The fsync of the domain folder, which makes the new user folder's entry durable.
        if (path !== join(dir, 'd.test')) return f;
        return {
          ...f,
          async sync() {
            await new Promise((r) => setTimeout(r, 50));
            await f.sync();
            parentSynced = Date.now();
          },
        };
      },
    };
    const w = new MaildirWriter({ root: dir, fs: slow });
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        w.deliver('d.test', 'u', [Buffer.from(`m${i}`)]).then(() => done.push(Date.now())),
      ),
    );
    assert.ok(parentSynced > 0, 'the parent of the new Maildir was never fsynced');
    for (const t of done)
      assert.ok(t >= parentSynced, 'a delivery was acknowledged before its Maildir was durable');
  }));
