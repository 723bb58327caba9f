/**
 * The QueueStore contract (queue/store.ts), run against every store.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { MemoryQueueStore } from '../../src/queue/memory-store.js';
import type { QueueStore } from '../../src/queue/store.js';
import { body, bodyBytes, envelope, tempDir } from './fixtures/helpers.js';

interface Harness {
  store: QueueStore;
  cleanup: () => Promise<void>;
}

const stores: [string, () => Promise<Harness>][] = [
  ['MemoryQueueStore', async () => ({ store: new MemoryQueueStore(), cleanup: async () => undefined })],
  [
    'FsQueueStore',
    async () => {
      const t = await tempDir();
      const store = new FsQueueStore(join(t.dir, 'queue'));
      return {
        store,
        cleanup: async () => {
          await store.close();
          await t.cleanup();
        },
      };
    },
  ],
];

for (const [name, make] of stores) {
  describe(`QueueStore contract: ${name}`, () => {
    async function withStore(fn: (s: QueueStore) => Promise<void>): Promise<void> {
      const h = await make();
      await h.store.open();
      try {
        await fn(h.store);
      } finally {
        await h.cleanup();
      }
    }

    test('put then get, list and readMessage', () =>
      withStore(async (s) => {
        await s.put(envelope('B0000000000001', 2), body('B0000000000001'));
        await s.put(envelope('A0000000000001'), body('A0000000000001', 5000));
        const m = await s.get('B0000000000001');
        assert.ok(m);
        assert.equal(m.envelope.sender, 'sender@example.test');
        assert.equal(m.size, 300);
        assert.deepEqual(
          m.recipients.map((r) => [r.index, r.status, r.attempts, r.nextAttemptAt]),
          [
            [0, 'pending', 0, 1_000_000],
            [1, 'pending', 0, 1_000_000],
          ],
        );
        assert.deepEqual(
          (await s.list()).map((x) => x.envelope.id),
          ['A0000000000001', 'B0000000000001'],
        );
        assert.deepEqual(await s.readMessage('A0000000000001'), bodyBytes('A0000000000001', 5000));
        assert.equal(await s.get('nope'), null);
        await assert.rejects(s.readMessage('nope'), { code: 'QUEUE_NOT_FOUND' });
      }));

    test('a duplicate id is refused; bad envelopes are TypeErrors', () =>
      withStore(async (s) => {
        await s.put(envelope('A1'), body('A1'));
        await assert.rejects(s.put(envelope('A1'), body('A1')), { code: 'QUEUE_DUPLICATE_ID' });
        await assert.rejects(s.put(envelope('A2', 0), body('A2')), TypeError);
        await assert.rejects(s.put({ ...envelope('x'), id: '../etc' }, body('x')), TypeError);
      }));

    test('claim leases due messages, earliest first, and skips leased ones', () =>
      withStore(async (s) => {
        await s.put(envelope('M1', 1, 300), body('M1'));
        await s.put(envelope('M2', 1, 100), body('M2'));
        await s.put(envelope('M3', 1, 5000), body('M3'));
        assert.deepEqual(await s.claim(50, 10, 1000), []);
        const first = await s.claim(400, 1, 1000);
        assert.deepEqual(
          first.map((m) => m.envelope.id),
          ['M2'],
        );
        assert.deepEqual(
          (await s.claim(400, 10, 1000)).map((m) => m.envelope.id),
          ['M1'],
        );
        assert.deepEqual(await s.claim(400, 10, 1000), []);
        // A lease that ran out is free again; a released message too.
        assert.deepEqual(
          (await s.claim(1000, 10, 2000)).map((m) => m.envelope.id),
          ['M2', 'M1'],
        );
        await s.release('M1');
        assert.deepEqual(
          (await s.claim(1500, 10, 2000)).map((m) => m.envelope.id),
          ['M1'],
        );
        assert.equal(await s.lease('M1', 1500, 3000), null);
        assert.equal((await s.lease('M3', 1500, 3000))?.envelope.id, 'M3');
        assert.equal(await s.lease('nope', 0, 1), null);
      }));

    test('update replaces recipient states durably and merges by index', () =>
      withStore(async (s) => {
        await s.put(envelope('U1', 3), body('U1'));
        const m = await s.update('U1', [
          {
            index: 2,
            status: 'delivered',
            attempts: 1,
            nextAttemptAt: 0,
            lastReply: '250 ok',
            lastStatus: '2.0.0',
          },
          {
            index: 0,
            status: 'pending',
            attempts: 1,
            nextAttemptAt: 9e6,
            lastReply: '451 later',
            lastStatus: '4.0.0',
          },
        ]);
        assert.deepEqual(
          m.recipients.map((r) => r.status),
          ['pending', 'pending', 'delivered'],
        );
        assert.equal(m.recipients[0]!.nextAttemptAt, 9e6);
        const again = await s.get('U1');
        assert.deepEqual(again, m);
        await assert.rejects(
          s.update('U1', [{ index: 3, status: 'failed', attempts: 1, nextAttemptAt: 0 }]),
          RangeError,
        );
        await assert.rejects(s.update('nope', []), { code: 'QUEUE_NOT_FOUND' });
      }));

    test('a message is due while a recipient is pending or failed without its DSN handled', () =>
      withStore(async (s) => {
        await s.put(envelope('D1', 2, 0), body('D1'));
        await s.update('D1', [
          { index: 0, status: 'delivered', attempts: 1, nextAttemptAt: 0 },
          { index: 1, status: 'failed', attempts: 1, nextAttemptAt: 10 },
        ]);
        assert.deepEqual(await s.claim(5, 10, 6), []);
        assert.equal((await s.claim(10, 10, 11)).length, 1);
        await s.release('D1');
        await s.put(envelope('D2', 1, 1e9), body('D2'));
        await s.update('D1', [
          { index: 1, status: 'failed', attempts: 1, nextAttemptAt: 1e9, dsnSent: true },
        ]);
        // Nothing left to do: due at once, so that it is removed (a crash came before its removal).
        assert.deepEqual(
          (await s.claim(5, 10, 6)).map((m) => m.envelope.id),
          ['D1'],
        );
      }));

    test('returned objects are copies', () =>
      withStore(async (s) => {
        await s.put(envelope('C1'), body('C1'));
        const m = (await s.get('C1'))!;
        m.recipients[0]!.status = 'delivered';
        m.envelope.sender = 'evil@example.test';
        const again = (await s.get('C1'))!;
        assert.equal(again.recipients[0]!.status, 'pending');
        assert.equal(again.envelope.sender, 'sender@example.test');
      }));

    test('remove forgets a message', () =>
      withStore(async (s) => {
        await s.put(envelope('R1'), body('R1'));
        assert.equal(await s.remove('R1'), true);
        assert.equal(await s.remove('R1'), false);
        assert.equal(await s.get('R1'), null);
        assert.deepEqual(await s.list(), []);
        assert.deepEqual(await s.claim(1e12, 10, 1e12), []);
      }));

    test('concurrent puts all land', () =>
      withStore(async (s) => {
        const ids = Array.from({ length: 200 }, (_, i) => `P${String(i).padStart(4, '0')}`);
        await Promise.all(ids.map((id) => s.put(envelope(id), body(id, 100 + ((id.length * 37) % 900)))));
        assert.deepEqual(
          (await s.list()).map((m) => m.envelope.id),
          ids,
        );
        for (const id of ids.slice(0, 20))
          assert.deepEqual(await s.readMessage(id), bodyBytes(id, 100 + ((id.length * 37) % 900)));
      }));

    test('lazy changes ({ durable: false }) are seen at once by every later call', () =>
      withStore(async (s) => {
        await s.put(envelope('Y1', 2), body('Y1'));
        await s.put(envelope('Y2'), body('Y2'));
        const lazy = { durable: false } as const;
        const m = await s.update(
          'Y1',
          [{ index: 1, status: 'delivered', attempts: 1, nextAttemptAt: 5 }],
          lazy,
        );
        assert.equal(m.recipients[1]!.status, 'delivered');
        assert.equal((await s.get('Y1'))!.recipients[1]!.status, 'delivered');
        assert.equal(await s.remove('Y2', lazy), true);
        assert.equal(await s.remove('Y2', lazy), false);
        assert.deepEqual(
          (await s.list()).map((x) => x.envelope.id),
          ['Y1'],
        );
        assert.deepEqual(
          (await s.claim(2_000_000, 10, 3_000_000)).map((x) => x.envelope.id),
          ['Y1'],
        );
        await assert.rejects(s.update('Y2', [], lazy), { code: 'QUEUE_NOT_FOUND' });
      }));

    test('a closed store refuses calls', () =>
      withStore(async (s) => {
        await s.close();
        await assert.rejects(s.put(envelope('Z1'), body('Z1')), { code: 'QUEUE_CLOSED' });
        await assert.rejects(s.list(), { code: 'QUEUE_CLOSED' });
      }));
  });
}
