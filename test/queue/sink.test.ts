import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryQueueStore } from '../../src/queue/memory-store.js';
import { QueueIdGenerator, isQueueId } from '../../src/queue/id.js';
import { QueueSink } from '../../src/queue/sink.js';
import type { Envelope } from '../../src/queue/types.js';
import { envelope } from './fixtures/helpers.js';

test('commit stores the chunks as one message, then notifies', async () => {
  const store = new MemoryQueueStore();
  const committed: string[] = [];
  const sink = new QueueSink({
    store,
    ids: new QueueIdGenerator({ now: () => 1000 }),
    onCommitted: (id) => committed.push(id),
  });
  const id = sink.newId();
  assert.ok(isQueueId(id));
  const env = envelope(id, 2);
  const w = sink.begin(env);
  w.write(Buffer.from('Subject: hi\r\n'));
  w.write(Buffer.alloc(0));
  w.write(Buffer.from('\r\nbody\r\n'));
  assert.equal(w.bytes, 21);
  env.receivedAt = 4242; // the receiver may set it just before commit
  assert.deepEqual(committed, []);
  await w.commit();
  assert.deepEqual(committed, [id]);
  assert.equal((await store.readMessage(id)).toString(), 'Subject: hi\r\n\r\nbody\r\n');
  assert.equal((await store.get(id))!.recipients[0]!.nextAttemptAt, 4242);
  assert.throws(() => w.write(Buffer.from('x')), /already committed/);
  await assert.rejects(w.commit(), /committed/);
});

test('commit resolves only after the store has made the message durable', async () => {
  let finish!: () => void;
  const store = new MemoryQueueStore();
  const put = store.put.bind(store);
  store.put = async (env: Envelope, data: readonly Buffer[]) => {
    await new Promise<void>((r) => (finish = r));
    return put(env, data);
  };
  const sink = new QueueSink({ store });
  const w = sink.begin(envelope(sink.newId()));
  w.write(Buffer.from('x'));
  let done = false;
  const c = w.commit().then(() => (done = true));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(done, false);
  finish();
  await c;
  assert.equal(done, true);
});

test('a failing store rejects commit with its error code; abort forgets the message', async () => {
  const store = new MemoryQueueStore();
  store.put = async () => {
    throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  };
  const notified: string[] = [];
  const sink = new QueueSink({ store, onCommitted: (id) => notified.push(id) });
  const w = sink.begin(envelope(sink.newId()));
  w.write(Buffer.from('x'));
  await assert.rejects(w.commit(), { code: 'ENOSPC' });
  assert.deepEqual(notified, []);
  const a = sink.begin(envelope(sink.newId()));
  a.write(Buffer.from('x'));
  a.abort();
  a.write(Buffer.from('ignored after abort'));
  await assert.rejects(a.commit(), /aborted/);
});

test('a throwing notifier does not fail a durable commit', async () => {
  const store = new MemoryQueueStore();
  const sink = new QueueSink({
    store,
    onCommitted: () => {
      throw new Error('scheduler gone');
    },
  });
  const id = sink.newId();
  const w = sink.begin(envelope(id));
  w.write(Buffer.from('x'));
  await w.commit();
  assert.ok(await store.get(id));
});
