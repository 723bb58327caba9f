import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TIMEOUTS, timeoutFor } from '../../src/sender/timeouts.js';

test('RFC 5321 §4.5.3.2 defaults, and which timeout each awaited reply uses', () => {
  const t = DEFAULT_TIMEOUTS;
  assert.equal(timeoutFor(t, 'greeting'), 5 * 60_000);
  assert.equal(timeoutFor(t, 'mail'), 5 * 60_000);
  assert.equal(timeoutFor(t, 'rcpt'), 5 * 60_000);
  assert.equal(timeoutFor(t, 'data'), 2 * 60_000);
  assert.equal(t.dataBlock, 3 * 60_000);
  assert.equal(timeoutFor(t, 'data-end'), 10 * 60_000);
  const custom = { ...t, command: 7, mail: 3 };
  assert.deepEqual(
    (['helo', 'starttls', 'auth', 'mail', 'rcpt'] as const).map((s) => timeoutFor(custom, s)),
    [7, 7, 7, 3, 7],
  );
});
