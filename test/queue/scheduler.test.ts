/**
 * Scheduler with a fake clock and a scripted deliver(): retries on the backoff schedule, expiry
 * (4.4.7), onFinal once per newly final recipient, DSN retry, flush, stop, concurrency, restarts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { MemoryQueueStore } from '../../src/queue/memory-store.js';
import { Scheduler, type DeliverFn, type SchedulerOptions } from '../../src/queue/scheduler.js';
import type { QueuedMessage, RecipientOutcome } from '../../src/queue/types.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';

const MIN = 60_000;
const T0 = 1_800_000_000_000;

class FakeClock {
  constructor(public t = T0) {}
  now(): number {
    return this.t;
  }
}

const ok = (index: number): RecipientOutcome => ({
  index,
  result: 'delivered',
  reply: '250 2.0.0 ok',
  status: '2.0.0',
});
const later = (index: number): RecipientOutcome => ({
  index,
  result: 'deferred',
  reply: '451 4.4.1 try later',
  status: '4.4.1',
  remoteMta: 'mx.example.test',
});
const bad = (index: number): RecipientOutcome => ({
  index,
  result: 'failed',
  reply: '550 5.1.1 no such user',
  status: '5.1.1',
});

interface FinalCall {
  id: string;
  failed: number[];
  delivered: number[];
  delayed: number[];
}

function setup(deliver: DeliverFn, extra: Partial<SchedulerOptions> = {}) {
  const clock = new FakeClock();
  const store = new MemoryQueueStore();
  const finals: FinalCall[] = [];
  const errors: unknown[] = [];
  const scheduler = new Scheduler({
    store,
    clock,
    deliver,
    random: () => 0.5,
    onFinal: (msg, failed, delivered, delayed) => {
      finals.push({ id: msg.envelope.id, failed, delivered, delayed });
    },
    onError: (err) => errors.push(err),
    ...extra,
  });
  return { clock, store, finals, errors, scheduler };
}

test('a message delivered at once is removed, and onFinal sees its recipients', async () => {
  const calls: number[][] = [];
  const h = setup(async (msg, data, indices) => {
    calls.push(indices);
    assert.deepEqual(data, bodyBytes(msg.envelope.id));
    return indices.map(ok);
  });
  await h.store.put(envelope('A1', 2, T0), body('A1'));
  await h.scheduler.runOnce();
  assert.deepEqual(calls, [[0, 1]]);
  assert.deepEqual(h.finals, [{ id: 'A1', failed: [], delivered: [0, 1], delayed: [] }]);
  assert.equal(await h.store.get('A1'), null);
});

test('deferred recipients are retried on the backoff schedule (5m, 10m, 20m) until delivered', async () => {
  const attemptsAt: number[] = [];
  const h = setup(async (_m, _d, indices) => {
    attemptsAt.push(h.clock.t - T0);
    return indices.map(attemptsAt.length < 4 ? later : ok);
  });
  await h.store.put(envelope('B1', 1, T0), body('B1'));
  await h.scheduler.runOnce();
  let m = (await h.store.get('B1'))!;
  assert.equal(m.recipients[0]!.attempts, 1);
  assert.equal(m.recipients[0]!.nextAttemptAt, T0 + 5 * MIN);
  assert.equal(m.recipients[0]!.lastReply, '451 4.4.1 try later');
  assert.equal(m.recipients[0]!.remoteMta, 'mx.example.test');
  await h.scheduler.runOnce();
  assert.equal(attemptsAt.length, 1, 'not due yet');
  for (const step of [5, 10, 20]) {
    h.clock.t += step * MIN - 1;
    await h.scheduler.runOnce();
    h.clock.t += 1;
    await h.scheduler.runOnce();
  }
  assert.deepEqual(attemptsAt, [0, 5 * MIN, 15 * MIN, 35 * MIN]);
  assert.equal(await h.store.get('B1'), null);
  assert.deepEqual(h.finals, [{ id: 'B1', failed: [], delivered: [0], delayed: [] }]);
});

test('mixed outcomes: onFinal once per newly final recipient; removed once all are final', async () => {
  let round = 0;
  const h = setup(async (_m, _d, indices) => {
    round++;
    return round === 1 ? [ok(0), bad(1), later(2)] : indices.map(ok);
  });
  await h.store.put(envelope('C1', 3, T0), body('C1'));
  await h.scheduler.runOnce();
  const m = (await h.store.get('C1'))!;
  assert.deepEqual(
    m.recipients.map((r) => r.status),
    ['delivered', 'failed', 'pending'],
  );
  assert.equal(m.recipients[1]!.dsnSent, true);
  assert.equal(m.recipients[1]!.lastStatus, '5.1.1');
  h.clock.t += 5 * MIN;
  await h.scheduler.runOnce();
  assert.equal(await h.store.get('C1'), null);
  assert.deepEqual(h.finals, [
    { id: 'C1', failed: [1], delivered: [0], delayed: [] },
    { id: 'C1', failed: [], delivered: [2], delayed: [] },
  ]);
});

test('a message still deferred after the queue lifetime fails with 4.4.7', async () => {
  let attempts = 0;
  const h = setup(
    async (_m, _d, indices) => {
      attempts++;
      return indices.map(later);
    },
    { backoff: { maxAgeMs: 3 * 3600_000 }, delayWarningMs: 0 },
  );
  await h.store.put(envelope('E1', 1, T0), body('E1'));
  for (let i = 0; i < 40 && (await h.store.get('E1')); i++) {
    await h.scheduler.runOnce();
    const m = await h.store.get('E1');
    if (m) h.clock.t = Math.max(h.clock.t, m.recipients[0]!.nextAttemptAt);
  }
  assert.equal(await h.store.get('E1'), null);
  // 0, 5, 15, 35, 75, 135 min, then the lifetime's end at 180 min.
  assert.equal(attempts, 7);
  assert.equal(h.clock.t, T0 + 180 * MIN);
  assert.equal(h.finals.length, 1);
  assert.deepEqual(h.finals[0]!.failed, [0]);
});

test('the 4.4.7 state is what onFinal sees', async () => {
  let seen: QueuedMessage | null = null;
  const h = setup(async (_m, _d, indices) => indices.map(later), {
    backoff: { maxAgeMs: MIN },
    onFinal: (msg) => {
      seen = msg;
    },
  });
  await h.store.put(envelope('E2', 1, T0 - 2 * MIN), body('E2'));
  await h.scheduler.runOnce();
  const r = (seen as QueuedMessage | null)!.recipients[0]!;
  assert.equal(r.status, 'failed');
  assert.equal(r.lastStatus, '4.4.7');
  assert.match(r.lastReply!, /expired.*451 4\.4\.1 try later/);
});

test('a failing onFinal leaves the DSN unhandled and is called again after a backoff delay', async () => {
  let fail = true;
  const calls: number[][] = [];
  const h = setup(async (_m, _d, indices) => indices.map(bad), {
    onFinal: (_msg, failed) => {
      calls.push(failed);
      if (fail) throw new Error('bounce generation failed');
    },
  });
  await h.store.put(envelope('F1', 1, T0), body('F1'));
  await h.scheduler.runOnce();
  const m = (await h.store.get('F1'))!;
  assert.equal(m.recipients[0]!.status, 'failed');
  assert.notEqual(m.recipients[0]!.dsnSent, true);
  assert.equal(h.errors.length, 1);
  await h.scheduler.runOnce();
  assert.equal(calls.length, 1, 'not before the retry delay');
  fail = false;
  h.clock.t += 5 * MIN;
  await h.scheduler.runOnce();
  assert.deepEqual(calls, [[0], [0]]);
  assert.equal(await h.store.get('F1'), null);
});

test('deliver throwing, or leaving out a recipient, counts as deferred 4.3.0', async () => {
  let n = 0;
  const h = setup(async (_m, _d, indices) => {
    if (n++ === 0) throw new Error('router exploded');
    return [ok(indices[0]!)];
  });
  await h.store.put(envelope('G1', 2, T0), body('G1'));
  await h.scheduler.runOnce();
  let m = (await h.store.get('G1'))!;
  assert.deepEqual(
    m.recipients.map((r) => [r.status, r.lastStatus]),
    [
      ['pending', '4.3.0'],
      ['pending', '4.3.0'],
    ],
  );
  h.clock.t += 5 * MIN;
  await h.scheduler.runOnce();
  m = (await h.store.get('G1'))!;
  assert.deepEqual(
    m.recipients.map((r) => [r.status, r.attempts]),
    [
      ['delivered', 2],
      ['pending', 2],
    ],
  );
});

test('a recipient deferred past delayWarningMs is reported as delayed once', async () => {
  const h = setup(async (_m, _d, indices) => indices.map(later), { delayWarningMs: 30 * MIN });
  await h.store.put(envelope('H1', 1, T0), body('H1'));
  for (let i = 0; i < 6; i++) {
    await h.scheduler.runOnce();
    h.clock.t = (await h.store.get('H1'))!.recipients[0]!.nextAttemptAt;
  }
  assert.deepEqual(h.finals, [{ id: 'H1', failed: [], delivered: [], delayed: [0] }]);
  assert.equal((await h.store.get('H1'))!.recipients[0]!.delayNotified, true);
});

test('flush makes deferred messages due now', async () => {
  let n = 0;
  const h = setup(async (_m, _d, indices) => indices.map(n++ === 0 ? later : ok));
  await h.store.put(envelope('I1', 1, T0), body('I1'));
  await h.scheduler.runOnce();
  assert.equal(n, 1);
  assert.equal(await h.scheduler.flush(), 1);
  await h.scheduler.runOnce();
  assert.equal(n, 2);
  assert.equal(await h.store.get('I1'), null);
  await h.scheduler.stop();
});

test('no more than `concurrency` messages are attempted at once', async () => {
  let active = 0;
  let peak = 0;
  const h = setup(
    async (_m, _d, indices) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 10));
      active--;
      return indices.map(ok);
    },
    { concurrency: 2 },
  );
  for (let i = 0; i < 7; i++) await h.store.put(envelope(`J${i}`, 1, T0), body(`J${i}`));
  await h.scheduler.runOnce();
  assert.equal(peak, 2);
  assert.deepEqual(await h.store.list(), []);
});

test('start + enqueued attempts a new message at once; stop waits for it', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = setup(
    async (_m, _d, indices) => {
      await gate;
      return indices.map(ok);
    },
    { pollMs: 60_000 },
  );
  h.scheduler.start();
  await h.store.put(envelope('K1', 1, T0), body('K1'));
  h.scheduler.enqueued('K1');
  while (h.scheduler.inFlight === 0) await new Promise((r) => setImmediate(r));
  const stopped = h.scheduler.stop();
  setTimeout(release, 20);
  await stopped;
  assert.equal(await h.store.get('K1'), null);
});

test('stop gives up on a delivery that hangs after stopTimeoutMs', async () => {
  const h = setup(() => new Promise<RecipientOutcome[]>(() => undefined), { stopTimeoutMs: 50 });
  await h.store.put(envelope('L1', 1, T0), body('L1'));
  void h.scheduler.runOnce();
  while (h.scheduler.inFlight === 0) await new Promise((r) => setImmediate(r));
  const t = Date.now();
  await h.scheduler.stop();
  assert.ok(Date.now() - t < 2000);
});

test('a store error leaves the message as it was, left alone for errorRetryMs', async () => {
  let deliveries = 0;
  const h = setup(
    async (_m, _d, indices) => {
      deliveries++;
      return indices.map(ok);
    },
    { errorRetryMs: MIN },
  );
  const update = h.store.update.bind(h.store);
  const remove = h.store.remove.bind(h.store);
  let full = true;
  const diskFull = () => Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  h.store.update = async (id, states, options) => {
    if (full) throw diskFull();
    return update(id, states, options);
  };
  h.store.remove = async (id, options) => {
    if (full) throw diskFull();
    return remove(id, options);
  };
  await h.store.put(envelope('M1', 1, T0), body('M1'));
  await h.scheduler.runOnce();
  await h.scheduler.runOnce();
  assert.equal(deliveries, 1);
  assert.equal((await h.store.get('M1'))!.recipients[0]!.status, 'pending');
  full = false;
  h.clock.t += MIN;
  await h.scheduler.runOnce();
  assert.equal(deliveries, 2, 'at-least-once: attempted again');
  assert.equal(await h.store.get('M1'), null);
});

test('a crash during delivery: on restart the message is simply due again', async () => {
  const t = await tempDir();
  try {
    const dir = join(t.dir, 'queue');
    const a = new FsQueueStore(dir);
    await a.open();
    await a.put(envelope('N1', 1, T0), body('N1'));
    const clock = new FakeClock();
    const hang = new Scheduler({
      store: a,
      clock,
      deliver: () => new Promise(() => undefined),
      stopTimeoutMs: 10,
    });
    void hang.runOnce();
    while (hang.inFlight === 0) await new Promise((r) => setImmediate(r));
    await hang.stop();
    await a.close(); // the process "dies" with N1 leased and undelivered
    const b = new FsQueueStore(dir);
    await b.open();
    const done: string[] = [];
    const s = new Scheduler({
      store: b,
      clock,
      deliver: async (m, _d, indices) => {
        done.push(m.envelope.id);
        return indices.map(ok);
      },
    });
    await s.runOnce();
    assert.deepEqual(done, ['N1']);
    assert.deepEqual(await b.list(), []);
    await b.close();
  } finally {
    await t.cleanup();
  }
});

test('a message left done by a crash before its removal is removed without a new attempt', async () => {
  let calls = 0;
  const h = setup(async (_m, _d, indices) => {
    calls++;
    return indices.map(ok);
  });
  await h.store.put(envelope('O1', 2, T0), body('O1'));
  await h.store.update('O1', [
    { index: 0, status: 'delivered', attempts: 1, nextAttemptAt: T0 },
    { index: 1, status: 'failed', attempts: 1, nextAttemptAt: T0, dsnSent: true },
  ]);
  await h.scheduler.runOnce();
  assert.equal(await h.store.get('O1'), null);
  assert.equal(calls, 0);
  assert.deepEqual(h.finals, []);
});

test('a message deleted by the operator during its attempt is dropped quietly', async () => {
  const h = setup(async (_m, _d, indices) => {
    await h.store.remove('P1');
    return indices.map(ok);
  });
  await h.store.put(envelope('P1', 1, T0), body('P1'));
  await h.scheduler.runOnce();
  assert.deepEqual(h.errors, []);
  // The delivery did happen (no report is asked for, so the hook hears of it before the store is told).
  assert.deepEqual(h.finals, [{ id: 'P1', failed: [], delivered: [0], delayed: [] }]);
  assert.equal(await h.store.get('P1'), null);
  // With a report asked for, the outcome is recorded first, and the deletion shows there.
  const env = envelope('P2', 1, T0);
  env.recipients[0]!.notify = ['SUCCESS'];
  const h2 = setup(async (_m, _d, indices) => {
    await h2.store.remove('P2');
    return indices.map(ok);
  });
  await h2.store.put(env, body('P2'));
  await h2.scheduler.runOnce();
  assert.deepEqual(h2.errors, []);
  assert.deepEqual(h2.finals, []);
});

test('what an attempt writes: one lazy record for a plain delivery, the outcome first when a report follows', async () => {
  const writes: string[] = [];
  const h = setup(async (msg, _d, indices) =>
    indices.map((i) => (msg.envelope.id === 'W2' && i === 1 ? bad(i) : ok(i))),
  );
  const update = h.store.update.bind(h.store);
  const remove = h.store.remove.bind(h.store);
  h.store.update = async (id, states, options) => {
    writes.push(
      `update ${id} ${states.map((s) => s.index).join(',')} ${options?.durable === false ? 'lazy' : 'durable'}`,
    );
    return update(id, states, options);
  };
  h.store.remove = async (id, options) => {
    writes.push(`remove ${id} ${options?.durable === false ? 'lazy' : 'durable'}`);
    return remove(id, options);
  };
  await h.store.put(envelope('W1', 2, T0), body('W1'));
  await h.scheduler.runOnce();
  assert.deepEqual(writes, ['remove W1 lazy']);
  writes.length = 0;
  await h.store.put(envelope('W2', 2, T0), body('W2'));
  await h.scheduler.runOnce();
  assert.deepEqual(writes, ['update W2 0,1 lazy', 'remove W2 lazy']);
  assert.deepEqual(h.finals.at(-1), { id: 'W2', failed: [1], delivered: [0], delayed: [] });
});
