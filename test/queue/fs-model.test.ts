/**
 * FsQueueStore against the in-memory model: random concurrent puts, updates and removals with
 * tiny segments (so rolling, deletion and copy-forward run all the time); the two must agree,
 * before and after a reopen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { MemoryQueueStore } from '../../src/queue/memory-store.js';
import type { QueueStore } from '../../src/queue/store.js';
import type { RecipientState } from '../../src/queue/types.js';
import { body, envelope, tempDir } from './fixtures/helpers.js';
import { seeded } from '../helpers/seeded.js';

async function snapshot(s: QueueStore): Promise<string> {
  return JSON.stringify(await s.list());
}

for (const seed of [1, 2, 3]) {
  test(`random concurrent changes agree with the model (seed ${seed})`, async () => {
    const t = await tempDir();
    const dir = join(t.dir, 'queue');
    const rnd = seeded(seed);
    const model = new MemoryQueueStore();
    let fs = new FsQueueStore(dir, { segmentBytes: 4096, maxBatchBytes: 3000 });
    await fs.open();
    const live: string[] = [];
    let next = 0;
    let clock = 0;
    try {
      for (let round = 0; round < 60; round++) {
        const touched = new Set<string>();
        const ops: ((s: QueueStore) => Promise<unknown>)[] = [];
        for (let k = 0; k < 8; k++) {
          const r = rnd();
          const pick = live[Math.floor(rnd() * live.length)];
          if (r < 0.45 || pick === undefined || touched.has(pick)) {
            const id = `Q${String(next++).padStart(5, '0')}`;
            const size = 50 + Math.floor(rnd() * 1500);
            const n = 1 + Math.floor(rnd() * 3);
            live.push(id);
            touched.add(id);
            ops.push((s) => s.put(envelope(id, n), body(id, size)));
          } else if (r < 0.8) {
            touched.add(pick);
            const state: RecipientState = {
              index: 0,
              status: rnd() < 0.5 ? 'pending' : 'failed',
              attempts: Math.floor(rnd() * 9),
              nextAttemptAt: Math.floor(rnd() * 1e9),
              lastReply: `451 4.0.0 round ${round}`,
            };
            ops.push((s) => s.update(pick, [state]));
          } else {
            touched.add(pick);
            live.splice(live.indexOf(pick), 1);
            ops.push((s) => s.remove(pick));
          }
        }
        await Promise.all([...ops.map((op) => op(model)), ...ops.map((op) => op(fs))]);
        assert.equal(await snapshot(fs), await snapshot(model), `round ${round}`);
        // Leases: what is due and free must be the same set in both.
        clock += Math.floor(rnd() * 2e8);
        const leaseFor = Math.floor(rnd() * 3e8);
        const a = (await model.claim(clock, 10_000, clock + leaseFor)).map((m) => m.envelope.id).sort();
        const b = (await fs.claim(clock, 10_000, clock + leaseFor)).map((m) => m.envelope.id).sort();
        assert.deepEqual(b, a, `claim in round ${round}`);
        for (const id of a) {
          if (rnd() < 0.5) {
            await model.release(id);
            await fs.release(id);
          }
        }
        if (round % 20 === 19) {
          await fs.close();
          fs = new FsQueueStore(dir, { segmentBytes: 4096, maxBatchBytes: 3000 });
          await fs.open();
          assert.deepEqual(fs.warnings, []);
          assert.equal(await snapshot(fs), await snapshot(model), `after reopen, round ${round}`);
          for (const m of await model.list()) await model.release(m.envelope.id);
        }
      }
      for (const id of live) assert.deepEqual(await fs.readMessage(id), await model.readMessage(id), id);
      // Compaction keeps the log near the live data: about twice it, plus the segments being filled.
      let onDisk = 0;
      for (const n of await readdir(dir)) if (n.endsWith('.seg')) onDisk += (await stat(join(dir, n))).size;
      let liveBytes = 0;
      for (const m of await model.list()) liveBytes += m.size + JSON.stringify(m).length + 17;
      assert.ok(onDisk <= 2 * liveBytes + 3 * 4096, `log ${onDisk} bytes for ${liveBytes} live`);
    } finally {
      await fs.close();
      await t.cleanup();
    }
  });
}
