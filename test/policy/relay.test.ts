import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRcpt, decideLocalRcpt, mayRelay, type RcptContext } from '../../src/policy/relay.js';
import { CidrList } from '../../src/policy/cidr.js';
import { DomainPolicy } from '../../src/policy/domains.js';
import { LocalUsers } from '../../src/policy/users.js';
import { parsePath } from '../../src/smtp/address.js';
import type { Path } from '../../src/smtp/types.js';

const policy = new DomainPolicy({
  local: ['example.test', 'bücher.example'],
  relay: ['relay.test'],
  acceptLiterals: ['192.0.2.1'],
});
const relayNetworks = new CidrList(['127.0.0.1/32', '10.0.0.0/8', '2001:db8:aa::/48']);
const stranger: RcptContext = { clientIp: '203.0.113.50', relayNetworks };
const strangerMapped: RcptContext = { clientIp: '::ffff:203.0.113.50', relayNetworks };
const strangerEmptyAuth: RcptContext = { clientIp: '203.0.113.50', authUser: '', relayNetworks };
const trusted: RcptContext = { clientIp: '::ffff:10.1.2.3', relayNetworks };
const trustedV6: RcptContext = { clientIp: '2001:db8:aa::5', relayNetworks };
const authed: RcptContext = { clientIp: '198.51.100.9', authUser: 'alice', relayNetworks };

function path(wire: string): Path | null {
  const r = parsePath(wire, 0, { utf8: true });
  return r.ok && r.end === wire.length ? r.path : null;
}

type Want = 'local' | 'relay' | 'deny' | 'unparseable';
// What a stranger gets. 'deny' rows are accepted as 'remote' from the relay networks and with AUTH.
const tricks: [wire: string, want: Want][] = [
  ['<user@other.test>', 'deny'],
  ['<user%other.test@example.test>', 'local'],
  ['<"user@other.test"@example.test>', 'local'],
  ['<other.test!user@example.test>', 'local'],
  ['<"user%other.test"@example.test>', 'local'],
  ['<"@other.test:user"@example.test>', 'local'],
  ['<@other.test:user@example.test>', 'local'],
  ['<@other.test,@third.test:user@example.test>', 'local'],
  ['<@example.test:user@other.test>', 'deny'],
  ['<@example.test,@example.test:user@other.test>', 'deny'],
  ['<@relay.test:user@other.test>', 'deny'],
  ['<user%example.test@other.test>', 'deny'],
  ['<"user@example.test"@other.test>', 'deny'],
  ['<example.test!user@other.test>', 'deny'],
  ['<user@other.test.example.test>', 'deny'],
  ['<user@example.test.other.test>', 'deny'],
  ['<user@xample.test>', 'deny'],
  ['<user@sub.relay.test>', 'deny'],
  ['<user@EXAMPLE.TEST>', 'local'],
  ['<user@BÜCHER.example>', 'local'],
  ['<user@xn--bcher-kva.example>', 'local'],
  ['<user@relay.test>', 'relay'],
  ['<user%other.test@relay.test>', 'relay'],
  ['<user@[203.0.113.99]>', 'deny'],
  ['<user@[127.0.0.1]>', 'deny'],
  ['<user@[IPv6:2001:db8::99]>', 'deny'],
  ['<user@[IPv6:::1]>', 'deny'],
  ['<user@[x400:example.test]>', 'deny'],
  ['<user@[192.0.2.1]>', 'local'],
  ['<user@[IPv6:::ffff:192.0.2.1]>', 'local'],
  ['<postmaster>', 'local'],
  ['<Postmaster>', 'local'],
  ['<postmaster@example.test>', 'local'],
  ['<postmaster@other.test>', 'deny'],
  ['<user@localhost>', 'deny'],
  ['<user@other.test@example.test>', 'unparseable'],
  ['<user@example.test.>', 'unparseable'],
  ['<user@example.test,other.test>', 'unparseable'],
  ['<user@127.0.0.1>', 'unparseable'],
  ['<@example.test:postmaster>', 'unparseable'],
];

for (const [wire, want] of tricks) {
  test(`relay trick ${wire}: stranger gets ${want}`, () => {
    const p = path(wire);
    if (want === 'unparseable') {
      assert.equal(p, null);
      return;
    }
    assert.ok(p, `parses: ${wire}`);
    for (const ctx of [stranger, strangerMapped, strangerEmptyAuth]) {
      const d = decideRcpt(ctx, p, policy);
      if (want === 'deny') {
        assert.deepEqual(d, { accept: false, code: 550, enhanced: '5.7.1', text: 'Relay access denied' });
      } else {
        assert.deepEqual(d, { accept: true, kind: want });
      }
    }
    for (const ctx of [trusted, trustedV6, authed]) {
      const d = decideRcpt(ctx, p, policy);
      assert.deepEqual(d, { accept: true, kind: want === 'deny' ? 'remote' : want });
    }
  });
}

test('the null path is never a recipient', () => {
  const d = decideRcpt(trusted, { kind: 'null' }, policy);
  assert.equal(d.accept, false);
});

test('mayRelay: networks (v4, mapped, v6) or a non-empty auth user', () => {
  assert.equal(mayRelay(stranger), false);
  assert.equal(mayRelay(strangerEmptyAuth), false);
  assert.equal(mayRelay(trusted), true);
  assert.equal(mayRelay({ clientIp: '127.0.0.1', relayNetworks }), true);
  assert.equal(mayRelay({ clientIp: '::1', relayNetworks }), false);
  assert.equal(mayRelay(trustedV6), true);
  assert.equal(mayRelay(authed), true);
});

test('decideLocalRcpt adds the user and folder checks for local recipients', () => {
  const users = new LocalUsers({ users: ['alice', 'a/b'], aliases: { sales: 'bob@other.test' } }, policy);
  const d = (wire: string, ctx: RcptContext = stranger) => {
    const p = path(wire);
    assert.ok(p, wire);
    return decideLocalRcpt(ctx, p, policy, users);
  };
  assert.deepEqual(d('<alice@example.test>'), { accept: true, kind: 'local' });
  assert.deepEqual(d('<Alice+news@EXAMPLE.test>'), { accept: true, kind: 'local' });
  assert.deepEqual(d('<sales@example.test>'), { accept: true, kind: 'local' });
  assert.deepEqual(d('<postmaster>'), { accept: true, kind: 'local' });
  assert.deepEqual(d('<PostMaster@example.test>'), { accept: true, kind: 'local' });
  assert.deepEqual(d('<mallory@example.test>'), {
    accept: false,
    code: 550,
    enhanced: '5.1.1',
    text: 'No such user here',
  });
  const bad = d('<a/b@example.test>');
  assert.equal(bad.accept, false);
  assert.equal(!bad.accept && bad.enhanced, '5.1.3');
  assert.deepEqual(d('<x@other.test>').accept, false);
  assert.deepEqual(d('<x@other.test>', authed), { accept: true, kind: 'remote' });
  assert.deepEqual(d('<x@relay.test>'), { accept: true, kind: 'relay' });
});
