import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { DnsMxResolver, classifyDnsError } from '../../src/router/resolver.js';
import { mxCandidates } from '../../src/router/mx.js';
import { Router } from '../../src/router/router.js';
import { startDnsServer, type DnsServer } from './dns-server.js';
import { seeded } from './fake-resolver.js';

let server: DnsServer;

before(async () => {
  server = await startDnsServer({
    'example.test': {
      MX: [
        [20, 'mx2.example.test'],
        [10, 'mx1.example.test'],
      ],
    },
    'mx1.example.test': { A: ['127.0.0.1'], AAAA: ['::1'] },
    'mx2.example.test': { A: ['127.0.0.2'] },
    'nomail.test': { MX: [[0, '.']], A: ['127.0.0.9'] },
    'implicit.test': { A: ['127.0.0.3'] },
    'broken.test': { rcode: 'SERVFAIL' },
  });
});

after(async () => {
  await server.close();
});

const resolver = () => new DnsMxResolver({ servers: [server.address], timeoutMs: 500, tries: 1 });

test('real resolver: MX records, A and AAAA, NODATA, NXDOMAIN, SERVFAIL', async () => {
  const r = resolver();
  const mx = await r.resolveMx('example.test');
  assert.equal(mx.kind, 'ok');
  assert.deepEqual(mx.kind === 'ok' && [...mx.records].sort((a, b) => a.priority - b.priority), [
    { exchange: 'mx1.example.test', priority: 10 },
    { exchange: 'mx2.example.test', priority: 20 },
  ]);
  assert.deepEqual(await r.resolve4('mx1.example.test'), { kind: 'ok', records: ['127.0.0.1'] });
  assert.deepEqual(await r.resolve6('mx1.example.test'), { kind: 'ok', records: ['::1'] });
  assert.deepEqual(await r.resolveMx('implicit.test'), { kind: 'nodata' });
  assert.deepEqual(await r.resolveMx('missing.test'), { kind: 'nxdomain' });
  const sf = await r.resolveMx('broken.test');
  assert.equal(sf.kind, 'temporary');
});

test('real resolver through mxCandidates: preference order, null MX, NXDOMAIN, implicit MX', async () => {
  const r = resolver();
  const hosts = await mxCandidates('example.test', r, { random: seeded(1), port: 2525 });
  assert.deepEqual(hosts, {
    kind: 'hosts',
    hosts: [
      { host: '127.0.0.1', port: 2525, preference: 10, mx: 'mx1.example.test' },
      { host: '::1', port: 2525, preference: 10, mx: 'mx1.example.test' },
      { host: '127.0.0.2', port: 2525, preference: 20, mx: 'mx2.example.test' },
    ],
  });
  const nul = await mxCandidates('nomail.test', r);
  assert.equal(
    nul.kind === 'error' && nul.reply,
    '556 5.1.10 domain nomail.test does not accept mail (null MX)',
  );
  const nx = await mxCandidates('missing.test', r);
  assert.equal(nx.kind === 'error' && nx.status, '5.1.2');
  const imp = await mxCandidates('implicit.test', r);
  assert.deepEqual(imp.kind === 'hosts' && imp.hosts.map((h) => h.host), ['127.0.0.3']);
  assert.ok(server.queries.includes('example.test/MX'));
});

test('real resolver through the Router with our name as secondary MX', async () => {
  const router = new Router({ localDomains: [], resolver: resolver(), selfNames: ['mx2.example.test'] });
  const hop = await router.route('someone@EXAMPLE.test');
  assert.equal(hop.kind, 'smtp');
  assert.deepEqual(hop.kind === 'smtp' && [...new Set(hop.hosts.map((h) => h.mx))], ['mx1.example.test']);
});

test('a server that never answers is a temporary failure (timeout)', async () => {
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  try {
    const r = new DnsMxResolver({
      servers: [`127.0.0.1:${silent.address().port}`],
      timeoutMs: 100,
      tries: 1,
    });
    const res = await r.resolveMx('example.test');
    assert.equal(res.kind, 'temporary');
    const m = await mxCandidates('example.test', r);
    assert.equal(m.kind === 'error' && m.result, 'deferred');
  } finally {
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('classifyDnsError and option checks', () => {
  assert.deepEqual(classifyDnsError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), {
    kind: 'nxdomain',
  });
  assert.deepEqual(classifyDnsError(Object.assign(new Error('x'), { code: 'ENODATA' })), { kind: 'nodata' });
  assert.equal(classifyDnsError(Object.assign(new Error('x'), { code: 'ESERVFAIL' })).kind, 'temporary');
  assert.equal(classifyDnsError('weird').kind, 'temporary');
  assert.throws(() => new DnsMxResolver({ timeoutMs: 0 }), RangeError);
  assert.throws(() => new DnsMxResolver({ tries: 1.5 }), RangeError);
  assert.throws(() => new DnsMxResolver({ servers: ['not an ip'] }));
});
