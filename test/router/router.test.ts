import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, parseRoute } from '../../src/router/router.js';
import { FakeResolver, seeded } from './fake-resolver.js';

const dns = () =>
  new FakeResolver({
    'remote.test': { MX: [[10, 'mx.remote.test']] },
    'mx.remote.test': { A: ['192.0.2.10'] },
    'other.test': { A: ['192.0.2.20'] },
    'backup.test': { MX: [[10, 'mx.ours.test']] },
    'mx.ours.test': { A: ['192.0.2.1'] },
  });

test('local domains route to local, case-insensitively, IDN in either form; bare postmaster is local', async () => {
  const r = new Router({ localDomains: ['Example.TEST', 'bücher.test'], resolver: dns() });
  assert.deepEqual(await r.route('User@example.test'), { kind: 'local' });
  assert.deepEqual(await r.route('a@EXAMPLE.test.'), { kind: 'local' });
  assert.deepEqual(await r.route('a@BÜCHER.test'), { kind: 'local' });
  assert.deepEqual(await r.route('a@xn--bcher-kva.test'), { kind: 'local' });
  assert.deepEqual(await r.route('Postmaster'), { kind: 'local' });
  assert.deepEqual(await r.route('"odd@local"@example.test'), { kind: 'local' });
  assert.ok(r.isLocal('EXAMPLE.test'));
});

test('remote domains resolve MX and are keyed by domain', async () => {
  const resolver = dns();
  const r = new Router({ localDomains: ['example.test'], resolver, random: seeded(3), mxPort: 2525 });
  assert.deepEqual(await r.route('bob@Remote.Test'), {
    kind: 'smtp',
    key: 'mx:remote.test',
    domain: 'remote.test',
    hosts: [{ host: '192.0.2.10', port: 2525, preference: 10, mx: 'mx.remote.test' }],
    tls: 'opportunistic',
  });
  const hop = await r.route('x@other.test');
  assert.equal(hop.kind, 'smtp');
  assert.equal(hop.kind === 'smtp' && hop.key, 'mx:other.test');
});

test('routing errors come back as results: NXDOMAIN, bad syntax, MX loop for a relay domain', async () => {
  const r = new Router({
    localDomains: ['example.test'],
    relayDomains: ['backup.test'],
    resolver: dns(),
    selfNames: ['mx.ours.test'],
  });
  assert.deepEqual(await r.route('a@nowhere.test'), {
    kind: 'error',
    result: 'failed',
    reply: '550 5.1.2 domain nowhere.test not found',
    status: '5.1.2',
  });
  const loop = await r.route('a@backup.test');
  assert.equal(loop.kind === 'error' && loop.status, '5.4.6');
  assert.ok(r.isRelay('Backup.test'));
  for (const bad of ['nobody', '@example.test', 'a@']) {
    const e = await r.route(bad);
    assert.equal(e.kind === 'error' && e.status, '5.1.3', bad);
  }
});

test('configured routes skip MX lookup; several domains on one route share a key', async () => {
  const resolver = dns();
  const r = new Router({
    localDomains: ['example.test'],
    routes: { 'relay.test': '127.0.0.1:2600', 'Relay2.test': '127.0.0.1:2600', 'v6.test': '[::1]:2601' },
    resolver,
  });
  const a = await r.route('x@relay.test');
  const b = await r.route('y@RELAY2.test');
  assert.deepEqual(a, {
    kind: 'smtp',
    key: 'route:127.0.0.1:2600',
    domain: 'relay.test',
    hosts: [{ host: '127.0.0.1', port: 2600, preference: 0 }],
    tls: 'opportunistic',
  });
  assert.equal(b.kind === 'smtp' && b.key, 'route:127.0.0.1:2600');
  const v6 = await r.route('z@v6.test');
  assert.equal(v6.kind === 'smtp' && v6.key, 'route:[::1]:2601');
  assert.deepEqual(v6.kind === 'smtp' && v6.hosts, [{ host: '::1', port: 2601, preference: 0 }]);
  assert.deepEqual(resolver.calls, []);
});

test('"*" catches every remote domain but not local ones; ".parent" catches subdomains', async () => {
  const r = new Router({
    localDomains: ['example.test'],
    routes: {
      '*': { host: 'smarthost.test', port: 587, tls: 'require', auth: { user: 'u', pass: 'p' } },
      '.corp.test': 'gw.corp.test',
    },
    resolver: dns(),
  });
  assert.deepEqual(await r.route('a@example.test'), { kind: 'local' });
  assert.deepEqual(await r.route('a@remote.test'), {
    kind: 'smtp',
    key: 'route:smarthost.test:587:u/require',
    domain: '*',
    hosts: [{ host: 'smarthost.test', port: 587, preference: 0 }],
    tls: 'require',
    auth: { user: 'u', pass: 'p' },
  });
  const sub = await r.route('a@eu.corp.test');
  assert.equal(sub.kind === 'smtp' && sub.key, 'route:gw.corp.test:25');
  const star = await r.route('a@corp.test');
  assert.equal(star.kind === 'smtp' && star.key, 'route:smarthost.test:587:u/require');
});

test('LMTP routes, including an exact route for a local domain', async () => {
  const r = new Router({
    localDomains: ['example.test', 'plain.test'],
    routes: {
      'example.test': 'lmtp:/run/dovecot/lmtp',
      'tcp.test': 'lmtp:127.0.0.1:2424',
      'd.test': 'lmtp:mda.test',
    },
    resolver: dns(),
  });
  assert.deepEqual(await r.route('a@example.test'), {
    kind: 'lmtp',
    key: 'lmtp:/run/dovecot/lmtp',
    socketPath: '/run/dovecot/lmtp',
  });
  assert.deepEqual(await r.route('a@tcp.test'), {
    kind: 'lmtp',
    key: 'lmtp:127.0.0.1:2424',
    host: '127.0.0.1',
    port: 2424,
  });
  assert.deepEqual(await r.route('a@d.test'), {
    kind: 'lmtp',
    key: 'lmtp:mda.test:24',
    host: 'mda.test',
    port: 24,
  });
  assert.deepEqual(await r.route('a@plain.test'), { kind: 'local' });
});

test('bad route values throw TypeError naming the route', () => {
  for (const bad of ['host:99999', 'host:', '[::1', '[nothex]:25', 'a b:25', 'lmtp:', '']) {
    assert.throws(
      () => parseRoute('x.test', bad),
      (e: unknown) => e instanceof TypeError && /routes\."x\.test"/.test(e.message),
      bad,
    );
  }
  assert.throws(() => parseRoute('x.test', { host: 'h', tls: 'maybe' as never }), TypeError);
  assert.throws(() => new Router({ localDomains: [], routes: { '.': 'h:25' }, resolver: dns() }), TypeError);
  assert.equal(parseRoute('x', 'smtp:h.test:26').kind, 'smtp');
  assert.deepEqual(parseRoute('x', '::1'), {
    kind: 'smtp',
    key: 'route:[::1]:25',
    domain: 'x',
    hosts: [{ host: '::1', port: 25, preference: 0 }],
    tls: 'opportunistic',
  });
});

test('address literals route directly', async () => {
  const r = new Router({ localDomains: [], resolver: dns(), mxPort: 2525 });
  const hop = await r.route('a@[127.0.0.1]');
  assert.equal(hop.kind === 'smtp' && hop.key, 'mx:[127.0.0.1]');
  assert.deepEqual(hop.kind === 'smtp' && hop.hosts, [{ host: '127.0.0.1', port: 2525, preference: 0 }]);
  const v6 = await r.route('a@[IPv6:::1]');
  assert.deepEqual(v6.kind === 'smtp' && v6.hosts, [{ host: '::1', port: 2525, preference: 0 }]);
});

test('a resolver that throws defers instead of rejecting', async () => {
  const r = new Router({
    localDomains: [],
    resolver: {
      resolveMx: () => Promise.reject(new Error('boom')),
      resolve4: () => Promise.reject(new Error('boom')),
      resolve6: () => Promise.reject(new Error('boom')),
    },
  });
  const e = await r.route('a@x.test');
  assert.equal(e.kind === 'error' && e.result, 'deferred');
});

test('config-shaped routes: auth.password, bracketed IPv6 host, default TLS from the router', async () => {
  const r = new Router({
    localDomains: [],
    routes: {
      'a.test': { host: '[::1]', port: 2602, auth: { user: 'u', password: 'secret' } },
      'b.test': 'relay.test:2603',
    },
    resolver: dns(),
    tls: 'require',
  });
  assert.deepEqual(await r.route('x@a.test'), {
    kind: 'smtp',
    key: 'route:[::1]:2602:u',
    domain: 'a.test',
    hosts: [{ host: '::1', port: 2602, preference: 0 }],
    tls: 'require',
    auth: { user: 'u', pass: 'secret' },
  });
  const b = await r.route('x@b.test');
  assert.equal(b.kind === 'smtp' && b.tls, 'require');
  const mx = await r.route('x@remote.test');
  assert.equal(mx.kind === 'smtp' && mx.tls, 'require');
});
