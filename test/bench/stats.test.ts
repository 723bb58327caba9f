import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, percentile, mean } from '../../bench/stats.js';

test('median of odd and even counts, ignoring non-finite samples', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, NaN, 1, Infinity, 3]), 3);
  assert.ok(Number.isNaN(median([])));
});

test('percentile uses the nearest rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(percentile(xs, 0.5), 50);
  assert.equal(percentile(xs, 0.99), 99);
  assert.equal(percentile(xs, 1), 100);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile([7], 0.99), 7);
  assert.equal(percentile([10, 1, 5], 0.99), 10);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

test('percentile rejects a quantile outside 0..1', () => {
  assert.throws(() => percentile([1], 1.5), RangeError);
  assert.throws(() => percentile([1], NaN), RangeError);
});

test('mean', () => {
  assert.equal(mean([1, 2, 3, 6]), 3);
  assert.ok(Number.isNaN(mean([])));
});
