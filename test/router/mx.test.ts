import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mxCandidates, parseAddressLiteral, type MxLookup } from '../../src/router/mx.js';
import { FakeResolver, seeded } from './fake-resolver.js';

function hostsOf(r: MxLookup) {
  assert.equal(r.kind, 'hosts', JSON.stringify(r));
  return r.kind === 'hosts' ? r.hosts : [];
}

function errorOf(r: MxLookup) {
  assert.equal(r.kind, 'error', JSON.stringify(r));
  return r.kind === 'error' ? r : { result: '', reply: '', status: '' };
}

test('MX hosts come sorted by preference, each expanded to its addresses', async () => {
  const dns = new FakeResolver({
    'example.test': {
      MX: [
        [20, 'b.example.test'],
        [10, 'A.Example.TEST.'],
        [30, 'c.example.test'],
      ],
    },
    'a.example.test': { A: ['192.0.2.1'], AAAA: ['2001:db8::1'] },
    'b.example.test': { A: ['192.0.2.2'] },
    'c.example.test': { AAAA: ['2001:db8::3'] },
  });
  const hosts = hostsOf(await mxCandidates('example.test', dns, { random: seeded(1) }));
  assert.deepEqual(hosts, [
    { host: '192.0.2.1', port: 25, preference: 10, mx: 'a.example.test' },
    { host: '2001:db8::1', port: 25, preference: 10, mx: 'a.example.test' },
    { host: '192.0.2.2', port: 25, preference: 20, mx: 'b.example.test' },
    { host: '2001:db8::3', port: 25, preference: 30, mx: 'c.example.test' },
  ]);
});

test('equal preferences are shuffled by the injected random, reproducibly per seed', async () => {
  const zone: ConstructorParameters<typeof FakeResolver>[0] = {
    'example.test': {
      MX: [
        [10, 'a.test'],
        [10, 'b.test'],
        [10, 'c.test'],
        [10, 'd.test'],
        [20, 'e.test'],
        [5, 'z.test'],
      ],
    },
  };
  for (const h of ['a', 'b', 'c', 'd', 'e', 'z'])
    zone[`${h}.test`] = { A: [`192.0.2.${h.charCodeAt(0) - 96}`] };
  const orders = new Set<string>();
  for (let seed = 1; seed <= 12; seed++) {
    const names = hostsOf(
      await mxCandidates('example.test', new FakeResolver(zone), { random: seeded(seed) }),
    ).map((h) => h.mx);
    assert.equal(names[0], 'z.test');
    assert.deepEqual([...names.slice(1, 5)].sort(), ['a.test', 'b.test', 'c.test', 'd.test']);
    assert.equal(names[5], 'e.test');
    orders.add(names.join(','));
    const again = hostsOf(
      await mxCandidates('example.test', new FakeResolver(zone), { random: seeded(seed) }),
    );
    assert.deepEqual(
      again.map((h) => h.mx),
      names,
      'same seed, same order',
    );
  }
  assert.ok(orders.size >= 4, `expected several orders across seeds, got ${orders.size}`);
});

test('no MX records: implicit MX is the domain itself (A then AAAA, preference 0)', async () => {
  const dns = new FakeResolver({ 'plain.test': { A: ['192.0.2.7'], AAAA: ['2001:db8::7'] } });
  assert.deepEqual(hostsOf(await mxCandidates('plain.test', dns, { port: 2525 })), [
    { host: '192.0.2.7', port: 2525, preference: 0, mx: 'plain.test' },
    { host: '2001:db8::7', port: 2525, preference: 0, mx: 'plain.test' },
  ]);
  const v6first = hostsOf(await mxCandidates('plain.test', dns, { families: [6, 4] }));
  assert.equal(v6first[0]?.host, '2001:db8::7');
  const v4only = hostsOf(await mxCandidates('plain.test', dns, { families: [4] }));
  assert.deepEqual(
    v4only.map((h) => h.host),
    ['192.0.2.7'],
  );
});

test('no MX and no address records: permanent 5.1.2', async () => {
  const e = errorOf(await mxCandidates('empty.test', new FakeResolver({ 'empty.test': {} })));
  assert.equal(e.result, 'failed');
  assert.equal(e.status, '5.1.2');
});

test('null MX (RFC 7505) fails permanently with 556 5.1.10', async () => {
  const dns = new FakeResolver({ 'nomail.test': { MX: [[0, '.']], A: ['192.0.2.1'] } });
  const e = errorOf(await mxCandidates('nomail.test', dns));
  assert.equal(e.result, 'failed');
  assert.equal(e.status, '5.1.10');
  assert.match(e.reply, /^556 5\.1\.10 .*nomail\.test does not accept mail \(null MX\)/);
  assert.ok(!dns.calls.includes('nomail.test/A'), 'a null MX must not fall back to A records');
  // c-ares reports the root as an empty exchange
  const e2 = errorOf(
    await mxCandidates('nomail.test', new FakeResolver({ 'nomail.test': { MX: [[0, '']] } })),
  );
  assert.equal(e2.status, '5.1.10');
});

test('a "." MX among real MX records is ignored', async () => {
  const dns = new FakeResolver({
    'mixed.test': {
      MX: [
        [0, '.'],
        [10, 'mx.mixed.test'],
      ],
    },
    'mx.mixed.test': { A: ['192.0.2.10'] },
  });
  assert.deepEqual(
    hostsOf(await mxCandidates('mixed.test', dns)).map((h) => h.host),
    ['192.0.2.10'],
  );
});

test('NXDOMAIN fails permanently with 5.1.2; SERVFAIL defers with 4.4.3', async () => {
  const nx = errorOf(await mxCandidates('nowhere.test', new FakeResolver({})));
  assert.equal(nx.result, 'failed');
  assert.match(nx.reply, /^550 5\.1\.2 domain nowhere\.test not found/);
  const sf = errorOf(
    await mxCandidates('broken.test', new FakeResolver({ 'broken.test': { MX: 'SERVFAIL' } })),
  );
  assert.equal(sf.result, 'deferred');
  assert.equal(sf.status, '4.4.3');
  assert.match(sf.reply, /^451 4\.4\.3 /);
});

test('we are the best MX: mail would loop, permanent 5.4.6', async () => {
  const dns = new FakeResolver({
    'relay.test': {
      MX: [
        [10, 'mx.ours.test'],
        [20, 'backup.relay.test'],
      ],
    },
    'mx.ours.test': { A: ['192.0.2.1'] },
    'backup.relay.test': { A: ['192.0.2.2'] },
  });
  const e = errorOf(await mxCandidates('relay.test', dns, { selfNames: ['MX.Ours.Test'] }));
  assert.equal(e.result, 'failed');
  assert.equal(e.status, '5.4.6');
  assert.match(e.reply, /^554 5\.4\.6 mail for relay\.test loops back to myself/);
});

test('we are a secondary MX: only strictly better MX hosts remain', async () => {
  const dns = new FakeResolver({
    'relay.test': {
      MX: [
        [10, 'primary.relay.test'],
        [20, 'mx.ours.test'],
        [20, 'peer.relay.test'],
        [30, 'worse.relay.test'],
      ],
    },
    'primary.relay.test': { A: ['192.0.2.1'] },
    'mx.ours.test': { A: ['192.0.2.2'] },
    'peer.relay.test': { A: ['192.0.2.3'] },
    'worse.relay.test': { A: ['192.0.2.4'] },
  });
  const hosts = hostsOf(await mxCandidates('relay.test', dns, { selfNames: ['mx.ours.test'] }));
  assert.deepEqual(
    hosts.map((h) => h.mx),
    ['primary.relay.test'],
  );
});

test('self detection also works by address, and for an implicit MX', async () => {
  const dns = new FakeResolver({
    'relay.test': { MX: [[10, 'alias-of-me.test']] },
    'alias-of-me.test': { A: ['192.0.2.99'] },
    'me.test': { A: ['192.0.2.99'] },
  });
  assert.equal(errorOf(await mxCandidates('relay.test', dns, { selfNames: ['192.0.2.99'] })).status, '5.4.6');
  assert.equal(errorOf(await mxCandidates('me.test', dns, { selfNames: ['me.test'] })).status, '5.4.6');
});

test('MX hosts without addresses are skipped; none usable → 5.4.4, or 4.4.3 when DNS failed', async () => {
  const some = new FakeResolver({
    'd.test': {
      MX: [
        [10, 'gone.d.test'],
        [20, 'ok.d.test'],
      ],
    },
    'ok.d.test': { A: ['192.0.2.5'] },
  });
  assert.deepEqual(
    hostsOf(await mxCandidates('d.test', some)).map((h) => h.mx),
    ['ok.d.test'],
  );
  const none = new FakeResolver({ 'd.test': { MX: [[10, 'gone.d.test']] } });
  const e = errorOf(await mxCandidates('d.test', none));
  assert.equal(e.result, 'failed');
  assert.equal(e.status, '5.4.4');
  const flaky = new FakeResolver({ 'd.test': { MX: [[10, 'mx.d.test']] }, 'mx.d.test': { A: 'SERVFAIL' } });
  const t = errorOf(await mxCandidates('d.test', flaky));
  assert.equal(t.result, 'deferred');
  assert.equal(t.status, '4.4.3');
});

test('address literals route straight to the address, no DNS', async () => {
  const dns = new FakeResolver({});
  assert.deepEqual(hostsOf(await mxCandidates('[192.0.2.1]', dns)), [
    { host: '192.0.2.1', port: 25, preference: 0 },
  ]);
  assert.deepEqual(hostsOf(await mxCandidates('[IPv6:2001:db8::1]', dns)), [
    { host: '2001:db8::1', port: 25, preference: 0 },
  ]);
  assert.deepEqual(dns.calls, []);
  assert.equal(errorOf(await mxCandidates('[300.1.1.1]', dns)).status, '5.1.3');
  assert.equal(errorOf(await mxCandidates('[127.0.0.1]', dns, { selfNames: ['127.0.0.1'] })).status, '5.4.6');
  assert.equal(parseAddressLiteral('[ipv6:::1]'), '::1');
  assert.equal(parseAddressLiteral('[x-tag:foo]'), undefined);
});

test('bad options throw RangeError', async () => {
  await assert.rejects(mxCandidates('a.test', new FakeResolver({}), { port: 0 }), RangeError);
  await assert.rejects(mxCandidates('a.test', new FakeResolver({}), { families: [] }), RangeError);
});

test('property: hosts are ordered by preference, none lost, none below our own preference', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(
        fc.record({
          pref: fc.integer({ min: 0, max: 5 }),
          name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
        }),
        {
          selector: (r) => r.name,
          minLength: 1,
          maxLength: 6,
        },
      ),
      fc.option(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { nil: undefined }),
      fc.integer(),
      async (records, self, seed) => {
        const zone: ConstructorParameters<typeof FakeResolver>[0] = {
          'p.test': { MX: records.map((r) => [r.pref, `${r.name}.p.test`] as [number, string]) },
        };
        for (const r of records) zone[`${r.name}.p.test`] = { A: [`192.0.2.${r.name.charCodeAt(0)}`] };
        const selfNames = self ? [`${self}.p.test`] : [];
        const res = await mxCandidates('p.test', new FakeResolver(zone), { random: seeded(seed), selfNames });
        const selfPref = records.find((r) => r.name === self)?.pref ?? Infinity;
        const expected = records.filter((r) => r.pref < selfPref);
        if (expected.length === 0) {
          assert.equal(res.kind === 'error' && res.status, '5.4.6');
          return;
        }
        assert.equal(res.kind, 'hosts');
        const hosts = res.kind === 'hosts' ? res.hosts : [];
        assert.deepEqual(hosts.map((h) => h.mx).sort(), expected.map((r) => `${r.name}.p.test`).sort());
        for (let i = 1; i < hosts.length; i++) assert.ok(hosts[i - 1]!.preference <= hosts[i]!.preference);
      },
    ),
    { numRuns: 200 },
  );
});
