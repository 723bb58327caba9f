import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffOptions, DEFAULT_BACKOFF, isExpired, nextAttemptDelay } from '../../src/queue/backoff.js';

const MIN = 60_000;

test('default schedule: 5m, 10m, 20m, 40m, then hourly (no jitter at random = 0.5)', () => {
  const table: [number, number][] = [
    [1, 5 * MIN],
    [2, 10 * MIN],
    [3, 20 * MIN],
    [4, 40 * MIN],
    [5, 60 * MIN],
    [6, 60 * MIN],
    [50, 60 * MIN],
    [5000, 60 * MIN],
  ];
  for (const [attempts, delay] of table)
    assert.equal(
      nextAttemptDelay(attempts, {}, () => 0.5),
      delay,
      `attempt ${attempts}`,
    );
});

test('jitter stays within +-15% by default and spans the range', () => {
  assert.equal(
    nextAttemptDelay(1, {}, () => 0),
    Math.round(5 * MIN * 0.85),
  );
  assert.equal(
    nextAttemptDelay(1, {}, () => 0.999999),
    Math.round(5 * MIN * (1 + 0.15 * (2 * 0.999999 - 1))),
  );
  for (let i = 0; i < 200; i++) {
    const d = nextAttemptDelay(5, {}, Math.random);
    assert.ok(d >= 60 * MIN * 0.85 && d <= 60 * MIN * 1.15, String(d));
  }
});

test('options change the schedule', () => {
  const o = { initialMs: 1000, factor: 3, maxMs: 20_000, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => nextAttemptDelay(n, o)),
    [1000, 3000, 9000, 20_000],
  );
});

test('bad arguments are RangeErrors naming the option', () => {
  assert.throws(() => nextAttemptDelay(0), RangeError);
  assert.throws(() => nextAttemptDelay(1.5), RangeError);
  assert.throws(() => backoffOptions({ jitter: 1 }), /'jitter'/);
  assert.throws(() => backoffOptions({ maxMs: 10, initialMs: 100 }), /'maxMs'/);
  assert.throws(() => backoffOptions({ maxAgeMs: 0 }), /'maxAgeMs'/);
});

test('a message expires after 5 days by default', () => {
  const day = 86_400_000;
  assert.equal(DEFAULT_BACKOFF.maxAgeMs, 5 * day);
  assert.equal(isExpired(0, 5 * day - 1), false);
  assert.equal(isExpired(0, 5 * day), true);
  assert.equal(isExpired(0, 2 * day, day), true);
});

test('an explicit schedule (config queue.retry) is followed, its last step repeating', async () => {
  const { nextAttemptDelay: delay } = await import('../../src/queue/backoff.js');
  const s = { schedule: [1000, 5000, 60000], jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 9].map((a) => delay(a, s, () => 0.5)),
    [1000, 5000, 60000, 60000, 60000],
  );
});
