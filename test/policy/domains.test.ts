import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainPolicy, normalizeDomain, literalAddress } from '../../src/policy/domains.js';
import { parseMailbox } from '../../src/smtp/address.js';

const policy = new DomainPolicy({
  local: ['Example.TEST', 'bücher.example', 'trailing.test.'],
  relay: ['relay.test'],
  acceptLiterals: ['192.0.2.1', '2001:DB8::1'],
});

const table: [domain: string, local: boolean, relay: boolean][] = [
  ['example.test', true, false],
  ['EXAMPLE.test', true, false],
  ['xn--bcher-kva.example', true, false],
  ['XN--BCHER-KVA.EXAMPLE', true, false],
  ['trailing.test', true, false],
  ['relay.test', false, true],
  ['Relay.Test', false, true],
  ['sub.example.test', false, false],
  ['example.test.evil.test', false, false],
  ['xample.test', false, false],
  ['sub.relay.test', false, false],
  ['other.test', false, false],
  ['192.0.2.1', true, false],
  ['[192.0.2.1]', true, false],
  ['2001:db8::1', true, false],
  ['[IPv6:2001:db8:0::1]', true, false],
  ['::ffff:192.0.2.1', true, false],
  ['192.0.2.2', false, false],
  ['[IPv6:::1]', false, false],
  ['', false, false],
];

for (const [d, local, relay] of table) {
  test(`DomainPolicy ${JSON.stringify(d)}: local=${local} relay=${relay}`, () => {
    assert.equal(policy.isLocal(d), local);
    assert.equal(policy.isRelay(d), relay);
  });
}

test('classify uses the parsed mailbox kind', () => {
  const c = (s: string): string => {
    const m = parseMailbox(s, { utf8: true });
    assert.ok(m, s);
    return policy.classify(m);
  };
  assert.equal(c('a@Example.Test'), 'local');
  assert.equal(c('a@BÜCHER.example'), 'local');
  assert.equal(c('a@relay.test'), 'relay');
  assert.equal(c('a@other.test'), 'remote');
  assert.equal(c('a@[192.0.2.1]'), 'local');
  assert.equal(c('a@[IPv6:2001:0db8::0001]'), 'local');
  assert.equal(c('a@[192.0.2.9]'), 'remote');
  assert.equal(c('a@[x400:192.0.2.1]'), 'remote');
});

test('address literals are not local unless listed', () => {
  const p = new DomainPolicy({ local: ['example.test'], relay: [] });
  assert.equal(p.isLocal('[127.0.0.1]'), false);
  assert.equal(p.isLocal('127.0.0.1'), false);
  assert.equal(p.isRelay('127.0.0.1'), false);
});

test('bad config entries throw RangeError naming them', () => {
  for (const bad of ['a/b', 'exa mple.test', '', '.', 'a..b', '[127.0.0.1]', '-x.test', 'x@y.test']) {
    assert.throws(
      () => new DomainPolicy({ local: [bad], relay: [] }),
      (e: unknown) => e instanceof RangeError && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
  assert.throws(() => new DomainPolicy({ local: [], relay: [], acceptLiterals: ['nope'] }), RangeError);
  assert.throws(() => new DomainPolicy({ local: ['x.test'], relay: ['X.test'] }), /both local and relay/);
});

test('normalizeDomain and literalAddress', () => {
  assert.equal(normalizeDomain('Bücher.Example'), 'xn--bcher-kva.example');
  assert.equal(normalizeDomain('a/b'), null);
  assert.equal(literalAddress('[IPv6:2001:DB8:0:0::1]'), '2001:db8::1');
  assert.equal(literalAddress('[x400:foo]'), null);
  assert.equal(literalAddress('example.test'), null);
});
