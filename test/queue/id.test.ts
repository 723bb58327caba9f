import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQueueId, QueueIdGenerator, queueIdTime } from '../../src/queue/id.js';

test('ids are 14 base32 characters and encode the time', () => {
  const gen = new QueueIdGenerator({ now: () => 1_796_000_000_123, random: () => 0.5 });
  const id = gen.next();
  assert.equal(id.length, 14);
  assert.ok(isQueueId(id), id);
  assert.equal(queueIdTime(id), 1_796_000_000_123);
});

test('ids from one generator strictly increase, even in one ms or when the clock steps back', () => {
  const times = [5000, 5000, 5000, 4000, 4000, 6000, 6000];
  let i = 0;
  const gen = new QueueIdGenerator({
    now: () => times[Math.min(i++, times.length - 1)]!,
    random: () => 0.99,
  });
  const ids = times.map(() => gen.next());
  for (let k = 1; k < ids.length; k++) assert.ok(ids[k - 1]! < ids[k]!, `${ids[k - 1]} < ${ids[k]}`);
  assert.equal(new Set(ids).size, ids.length);
});

test('more than 1024 ids in one millisecond borrow the next millisecond and stay unique and sorted', () => {
  const gen = new QueueIdGenerator({ now: () => 10_000, random: () => 0 });
  const ids = Array.from({ length: 3000 }, () => gen.next());
  assert.equal(new Set(ids).size, 3000);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(queueIdTime(ids[2999]!), 10_002);
});

test('ids sort by time across generators', () => {
  const a = new QueueIdGenerator({ now: () => 1000, random: () => 0.999 }).next();
  const b = new QueueIdGenerator({ now: () => 1001, random: () => 0 }).next();
  assert.ok(a < b);
});

test('a clock out of range is a RangeError; a non-id is a TypeError', () => {
  assert.throws(() => new QueueIdGenerator({ now: () => -1 }).next(), RangeError);
  assert.throws(() => new QueueIdGenerator({ now: () => Number.NaN }).next(), RangeError);
  assert.throws(() => queueIdTime('not-an-id'), TypeError);
  assert.equal(isQueueId('0123456789ABCI'), false);
});
