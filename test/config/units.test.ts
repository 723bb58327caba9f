import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration, parseSize } from '../../src/config/units.js';
import { levenshtein, suggest } from '../../src/config/errors.js';
import { checkNetwork, parseHostPort, parseRouteTarget } from '../../src/config/values.js';

describe('durations', () => {
  const table: [string, number | undefined][] = [
    ['30s', 30_000],
    ['5m', 300_000],
    ['4h', 14_400_000],
    ['5d', 432_000_000],
    ['1w', 604_800_000],
    ['250ms', 250],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['0', 0],
    [' 5m ', 300_000],
    ['5', undefined],
    ['', undefined],
    ['-5m', undefined],
    ['5 m', undefined],
    ['5y', undefined],
    ['m', undefined],
  ];
  for (const [text, ms] of table) {
    it(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  }
  it('formatDuration round-trips', () => {
    for (const ms of [1000, 300_000, 5_400_000, 432_000_000, 1500])
      assert.equal(parseDuration(formatDuration(ms)), ms);
    assert.equal(formatDuration(5_400_000), '1h30m');
  });
});

describe('sizes', () => {
  const table: [string, number | undefined][] = [
    ['512', 512],
    ['25MB', 25_000_000],
    ['25mb', 25_000_000],
    ['25MiB', 26_214_400],
    ['25M', 26_214_400],
    ['10k', 10_240],
    ['1.5KB', 1500],
    ['1 GiB', 1024 ** 3],
    ['big', undefined],
    ['25XB', undefined],
    ['-1', undefined],
  ];
  for (const [text, n] of table) it(`${JSON.stringify(text)} → ${n}`, () => assert.equal(parseSize(text), n));
});

describe('suggestions', () => {
  it('levenshtein', () => {
    assert.equal(levenshtein('hostnme', 'hostname'), 1);
    assert.equal(levenshtein('', 'abc'), 3);
    assert.equal(levenshtein('kitten', 'sitting'), 3);
  });
  it('suggest picks the closest, and nothing when far', () => {
    assert.equal(suggest('hostnme', ['data_dir', 'hostname', 'routes']), 'hostname');
    assert.equal(suggest('Listener', ['listeners', 'limits']), 'listeners');
    assert.equal(suggest('qqqqq', ['hostname', 'routes']), undefined);
  });
});

describe('value readers', () => {
  it('host:port', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:25'), { host: '127.0.0.1', port: 25 });
    assert.deepEqual(parseHostPort('[::1]:2525'), { host: '::1', port: 2525 });
    assert.deepEqual(parseHostPort('localhost:0'), { host: 'localhost', port: 0 });
    for (const bad of ['127.0.0.1', '::1:25', '[127.0.0.1]:25', 'a b:25', 'h:65536', ':25', '[::1]']) {
      assert.equal(parseHostPort(bad), undefined, bad);
    }
  });
  it('networks', () => {
    for (const ok of ['10.0.0.0/8', '192.0.2.1', '::1/128', '2001:db8::/32'])
      assert.equal(checkNetwork(ok), undefined, ok);
    for (const bad of ['10.0.0.0/33', '::/129', 'example.test/8', '10.0.0.0/8/8', '10.0.0.0/x']) {
      assert.notEqual(checkNetwork(bad), undefined, bad);
    }
  });
  it('route targets', () => {
    assert.deepEqual(parseRouteTarget('relay.test'), { kind: 'smtp', host: 'relay.test', port: 25 });
    assert.deepEqual(parseRouteTarget('127.0.0.1:2600'), { kind: 'smtp', host: '127.0.0.1', port: 2600 });
    assert.deepEqual(parseRouteTarget('[::1]:2600'), { kind: 'smtp', host: '::1', port: 2600 });
    assert.deepEqual(parseRouteTarget('lmtp:127.0.0.1:24'), { kind: 'lmtp', host: '127.0.0.1', port: 24 });
    assert.deepEqual(parseRouteTarget('lmtp:dovecot'), { kind: 'lmtp', host: 'dovecot', port: 24 });
    assert.deepEqual(parseRouteTarget('lmtp:/run/dovecot/lmtp'), {
      kind: 'lmtp',
      socketPath: '/run/dovecot/lmtp',
    });
    assert.equal(parseRouteTarget('a b'), undefined);
    assert.equal(parseRouteTarget('lmtp:'), undefined);
  });
});
