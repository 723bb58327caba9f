/**
 * FsQueueStore with lazy changes (`{ durable: false }`) against the in-memory model, through
 * simulated system crashes (test/queue/fixtures/crash-fs.ts) at random moments, with tiny segments
 * so rolling, deletion and copy-forward run all the time. After each crash the reopened queue
 * must equal the model after some prefix of all changes in call order, and that prefix must hold
 * every change acknowledged as durable (lazy ones may be lost, but only as a suffix).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { MemoryQueueStore } from '../../src/queue/memory-store.js';
import type { QueueStore } from '../../src/queue/store.js';
import type { RecipientState } from '../../src/queue/types.js';
import { CrashableFs } from './fixtures/crash-fs.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';
import { seeded } from '../helpers/seeded.js';

type Op =
  | { kind: 'put'; id: string; n: number; size: number }
  | { kind: 'update'; id: string; state: RecipientState; durable: boolean }
  | { kind: 'remove'; id: string; durable: boolean };

function run(s: QueueStore, op: Op): Promise<unknown> {
  if (op.kind === 'put') return s.put(envelope(op.id, op.n), body(op.id, op.size));
  if (op.kind === 'update') return s.update(op.id, [op.state], { durable: op.durable });
  return s.remove(op.id, { durable: op.durable });
}

async function snapshot(s: QueueStore): Promise<string> {
  return JSON.stringify(await s.list());
}

const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Lazy changes lost over every seed: the crashes must really exercise losing some. */
let lostLazyInAll = 0;

for (const seed of [11, 12, 13, 14, 15, 16]) {
  test(`lazy changes survive simulated crashes as a prefix (seed ${seed})`, async () => {
    const t = await tempDir();
    const dir = join(t.dir, 'queue');
    const rnd = seeded(seed);
    const options = (fs: CrashableFs) => ({
      segmentBytes: 4096,
      maxBatchBytes: 3000,
      syncIntervalMs: [1, 20, 100_000][seed % 3]!,
      // 0: segments go only when every message in them is removed, often by a lazy removal.
      compactRatio: seed % 2 === 0 ? 0.5 : 0,
      // Half the seeds write over preallocated zeros; the others only append, and there the
      // lazy changes get lost often (their fdatasyncs are only the lazy rules' own).
      preallocBytes: seed < 14 ? 0 : 4096,
      fs,
    });
    let cfs = new CrashableFs(dir);
    let store = new FsQueueStore(dir, options(cfs));
    await store.open();
    /** Every change that may have reached the log, in call order; cut back to the survivors at a crash. */
    let history: Op[] = [];
    /** Indices in `history` of changes acknowledged (before the crash moment, if any). */
    let acked = new Set<number>();
    let next = 0;
    let crashes = 0;
    let lostLazy = 0;
    try {
      for (let round = 0; round < 80; round++) {
        const model = new MemoryQueueStore();
        for (const op of history) await run(model, op);
        const live = (await model.list()).map((m) => m.envelope.id);
        const touched = new Set<string>();
        const ops: Op[] = [];
        for (let k = 0; k < 10; k++) {
          const r = rnd();
          const pick = live[Math.floor(rnd() * live.length)];
          const durable = rnd() < 0.3;
          if (r < 0.4 || pick === undefined || touched.has(pick)) {
            const id = `Q${String(next++).padStart(5, '0')}`;
            touched.add(id);
            ops.push({ kind: 'put', id, n: 1 + Math.floor(rnd() * 3), size: 50 + Math.floor(rnd() * 1500) });
          } else if (r < 0.7) {
            touched.add(pick);
            const state: RecipientState = {
              index: 0,
              status: rnd() < 0.5 ? 'pending' : 'delivered',
              attempts: Math.floor(rnd() * 9),
              nextAttemptAt: Math.floor(rnd() * 1e9),
              lastReply: `250 round ${round}`,
            };
            ops.push({ kind: 'update', id: pick, state, durable });
          } else {
            touched.add(pick);
            live.splice(live.indexOf(pick), 1);
            ops.push({ kind: 'remove', id: pick, durable });
          }
        }
        const base = history.length;
        history.push(...ops);
        let crashed = false;
        const issue = (op: Op, i: number): Promise<void> =>
          run(store, op).then(
            () => {
              if (!crashed) acked.add(base + i);
            },
            (err: unknown) => {
              if (!crashed) throw err;
            },
          );
        let pending: Promise<void>[];
        if (rnd() < 0.5) {
          pending = ops.map(issue);
        } else {
          // One after another: lazy changes after the last durable one stay undurable.
          pending = [(async () => ops.reduce((p, op, i) => p.then(() => issue(op, i)), Promise.resolve()))()];
        }
        if (rnd() < 0.25) {
          // Crash while these are under way (or, with many ticks, after they all finished).
          await ticks(Math.floor(rnd() * 30));
          await new Promise((r) => setTimeout(r, Math.floor(rnd() * 6)));
          crashed = true;
          await cfs.crash(rnd);
          await Promise.all(pending);
          crashes++;
          cfs = new CrashableFs(dir);
          store = new FsQueueStore(dir, options(cfs));
          await store.open();
          assert.deepEqual(store.warnings, [], `warnings after crash in round ${round}`);
          const got = await snapshot(store);
          let lastDurable = -1;
          for (const i of acked) {
            const op = history[i]!;
            if (op.kind === 'put' || op.durable) lastDurable = Math.max(lastDurable, i);
          }
          const replay = new MemoryQueueStore();
          let survived = -1;
          for (let k = 0; k <= history.length; k++) {
            if (k > lastDurable && (await snapshot(replay)) === got) {
              survived = k;
              break;
            }
            if (k < history.length) await run(replay, history[k]!).catch(() => undefined);
          }
          assert.ok(
            survived >= 0,
            `round ${round}: the state after the crash is no prefix of the changes past #${lastDurable}`,
          );
          for (let i = survived; i < history.length; i++) if (acked.has(i)) lostLazy++;
          history = history.slice(0, survived);
          acked = new Set([...acked].filter((i) => i < survived));
          for (const m of await replay.list()) {
            assert.deepEqual(await store.readMessage(m.envelope.id), bodyBytes(m.envelope.id, m.size));
          }
        } else {
          await Promise.all(pending);
          for (const op of ops) await run(model, op);
          assert.equal(await snapshot(store), await snapshot(model), `round ${round}`);
          if (round % 17 === 16) {
            // A clean close makes lazy changes durable: a crash right after loses nothing.
            await store.close();
            await cfs.crash(rnd);
            cfs = new CrashableFs(dir);
            store = new FsQueueStore(dir, options(cfs));
            await store.open();
            assert.equal(await snapshot(store), await snapshot(model), `after close, round ${round}`);
          }
        }
      }
      assert.ok(crashes >= 10, `only ${crashes} crashes`);
      lostLazyInAll += lostLazy;
    } finally {
      await store.close().catch(() => undefined);
      await t.cleanup();
    }
  });
}

test('the simulated crashes above did lose some acknowledged lazy changes', () => {
  // Not an assertion on luck alone: with these seeds some lazy changes do get lost.
  assert.ok(lostLazyInAll > 0, 'no acknowledged lazy change was ever lost');
});
