import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpTransport, type SmtpTransportOptions } from '../../src/sender/transport.js';
import type { DeliveryRequest, NextHop, TlsPolicy } from '../../src/delivery/types.js';
import { startFakePeer, ehlo, type FakePeer, type Row } from './fake-peer.js';

const TINY = {
  connect: 1000,
  greeting: 1000,
  command: 1000,
  rset: 500,
  dataInit: 500,
  dataBlock: 1000,
  dataDone: 500,
};
let dir = '';
let creds: { key: Buffer; cert: Buffer };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferrymail-sender-tls-'));
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-days',
      '1',
      '-keyout',
      join(dir, 'k'),
      '-out',
      join(dir, 'c'),
    ],
    { stdio: 'ignore' },
  );
  assert.equal(r.status, 0, 'openssl could not make a test certificate');
  creds = { key: readFileSync(join(dir, 'k')), cert: readFileSync(join(dir, 'c')) };
});
after(() => rmSync(dir, { recursive: true, force: true }));

const request = (): DeliveryRequest => ({
  envelope: {
    id: 'Q1',
    sender: 'a@b.test',
    recipients: [{ address: 'x@y.test' }],
    receivedAt: 0,
    body: '7BIT',
    smtputf8: false,
  },
  recipients: [{ index: 0, address: 'x@y.test' }],
  message: Buffer.from('Subject: t\r\n\r\nhi\r\n'),
});

const hop = (
  peers: FakePeer[],
  tls: TlsPolicy,
  extra: Partial<Extract<NextHop, { kind: 'smtp' }>> = {},
): NextHop => ({
  kind: 'smtp',
  key: 'k',
  domain: 'y.test',
  hosts: peers.map((p) => ({ host: '127.0.0.1', port: p.port, preference: 0, mx: 'localhost' })),
  tls,
  ...extra,
});

const tx: Row[] = [
  ['MAIL FROM:<a@b.test>', '250 ok'],
  ['RCPT TO:<x@y.test>', '250 ok'],
  ['DATA', '354 go'],
  ['<data>', '250 2.0.0 ok'],
  ['QUIT', '221 bye'],
];

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  scripts: Row[][][],
  opts: Partial<SmtpTransportOptions> = {},
) {
  const peers: FakePeer[] = [];
  for (const s of scripts) peers.push(await startFakePeer({ scripts: s, tls: creds }));
  const transport = new SmtpTransport({ heloName: 'me.test', timeouts: TINY, ...opts });
  t.after(async () => {
    await transport.close();
    for (const p of peers) await p.close();
  });
  return { peers, transport };
}

test('opportunistic: STARTTLS when offered, EHLO again, then the transaction over TLS', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('STARTTLS', 'PIPELINING')],
        ['STARTTLS', 'TLS'],
        ['EHLO me.test', ehlo('PIPELINING')],
        ...tx,
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers, 'opportunistic'), request());
  await transport.close();
  assert.equal(out[0]?.result, 'delivered');
  assert.deepEqual(peers[0]?.errors, []);
  assert.deepEqual(peers[0]?.commands[0]?.slice(0, 4), [
    'EHLO me.test',
    'STARTTLS',
    'EHLO me.test',
    'MAIL FROM:<a@b.test>',
  ]);
});

test('opportunistic, handshake fails: retried once without TLS on a new connection', async (t) => {
  const warned: string[] = [];
  const { peers, transport } = await setup(
    t,
    [
      [
        [
          ['EHLO me.test', ehlo('STARTTLS')],
          ['STARTTLS', 'TLS-BREAK'],
        ],
        [['EHLO me.test', ehlo('STARTTLS')], ...tx],
      ],
    ],
    { log: { info: () => undefined, warn: (o, m) => warned.push(m) } },
  );
  const out = await transport.deliver(hop(peers, 'opportunistic'), request());
  await transport.close();
  assert.equal(out[0]?.result, 'delivered');
  assert.equal(peers[0]?.connections, 2);
  assert.deepEqual(warned, ['TLS handshake failed; retrying without TLS']);
  assert.deepEqual(peers[0]?.errors, []);
});

test('require, handshake fails: deferred 4.7.5, never sent in clear', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('STARTTLS')],
        ['STARTTLS', 'TLS-BREAK'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers, 'require'), request());
  assert.equal(out[0]?.result, 'deferred');
  assert.equal(out[0]?.status, '4.7.5');
  assert.equal(peers[0]?.connections, 1);
  assert.equal(peers[0]?.messages.length, 0);
});

test('require, STARTTLS not offered: next host; at the last host deferred 4.7.10', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING')],
        ['QUIT', '221 bye'],
      ],
    ],
    [[['EHLO me.test', ehlo('STARTTLS')], ['STARTTLS', 'TLS'], ['EHLO me.test', ehlo()], ...tx]],
  ]);
  const out = await transport.deliver(hop(peers, 'require'), request());
  assert.equal(out[0]?.result, 'delivered');
  const alone = await transport.deliver(hop([peers[0] as FakePeer], 'require'), request());
  assert.deepEqual([alone[0]?.result, alone[0]?.status], ['deferred', '4.7.10']);
});

test('verify: a self-signed certificate is refused (4.7.5); trusted through tlsOptions.ca it is accepted', async (t) => {
  const script: Row[][] = [
    [['EHLO me.test', ehlo('STARTTLS')], ['STARTTLS', 'TLS'], ['EHLO me.test', ehlo()], ...tx],
  ];
  const { peers, transport } = await setup(t, [script]);
  const refused = await transport.deliver(hop(peers, 'verify'), request());
  assert.deepEqual([refused[0]?.result, refused[0]?.status], ['deferred', '4.7.5']);
  assert.match(refused[0]?.reply ?? '', /certificate/i);
  const { peers: p2, transport: t2 } = await setup(t, [script], { tlsOptions: { ca: creds.cert } });
  const ok = await t2.deliver(hop(p2, 'verify'), request());
  assert.equal(ok[0]?.result, 'delivered');
});

test('AUTH PLAIN after STARTTLS with the hop credentials', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('STARTTLS', 'AUTH LOGIN')],
        ['STARTTLS', 'TLS'],
        ['EHLO me.test', ehlo('AUTH PLAIN LOGIN')],
        [`AUTH PLAIN ${Buffer.from('\0user\0secret').toString('base64')}`, '235 2.7.0 ok'],
        ...tx,
      ],
    ],
  ]);
  const out = await transport.deliver(
    hop(peers, 'require', { auth: { user: 'user', pass: 'secret' } }),
    request(),
  );
  await transport.close();
  assert.equal(out[0]?.result, 'delivered');
  assert.deepEqual(peers[0]?.errors, []);
});
