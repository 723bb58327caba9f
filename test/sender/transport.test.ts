import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { SmtpTransport } from '../../src/sender/transport.js';
import type { DeliveryRequest, NextHop, TlsPolicy } from '../../src/delivery/types.js';
import type { Envelope } from '../../src/queue/types.js';
import { startFakePeer, ehlo, type FakePeer, type Row } from './fake-peer.js';

const TINY = {
  connect: 1000,
  greeting: 300,
  helo: 300,
  starttls: 1000,
  auth: 300,
  rset: 300,
  mail: 300,
  rcpt: 300,
  data: 300,
  dataBlock: 1000,
  dataEnd: 300,
  quit: 300,
};

function request(
  addresses: string[],
  message = 'Subject: hi\r\n\r\nhello\r\n',
  env: Partial<Envelope> = {},
): DeliveryRequest {
  return {
    envelope: {
      id: 'Q1',
      sender: 'a@b.test',
      recipients: addresses.map((address) => ({ address })),
      receivedAt: 0,
      body: '7BIT',
      smtputf8: false,
      ...env,
    },
    recipients: addresses.map((address, index) => ({ index, address })),
    message: Buffer.from(message, 'latin1'),
  };
}

function hop(peers: (FakePeer | number)[], tls: TlsPolicy = 'none'): NextHop {
  return {
    kind: 'smtp',
    key: 'mx:y.test',
    domain: 'y.test',
    hosts: peers.map((p, i) => ({
      host: '127.0.0.1',
      port: typeof p === 'number' ? p : p.port,
      preference: i,
      mx: `mx${i + 1}.y.test`,
    })),
    tls,
  };
}

/** Start peers and a transport; both are cleaned up when the test ends. */
async function setup(
  t: { after: (fn: () => Promise<void> | void) => void },
  scripts: Row[][][],
  greetings: (string | undefined)[] = [],
) {
  const peers: FakePeer[] = [];
  for (let i = 0; i < scripts.length; i++) {
    const g = greetings[i];
    peers.push(await startFakePeer({ scripts: scripts[i] as Row[][], ...(g ? { greeting: g } : {}) }));
  }
  const transport = new SmtpTransport({ heloName: 'me.test', timeouts: TINY });
  t.after(async () => {
    await transport.close();
    for (const p of peers) await p.close();
  });
  return { peers, transport };
}

/** Rows of one transaction: MAIL (with `mail` as the exact line), RCPT per recipient, DATA, data. */
const txRows = (rcpts: [string, string][], mail = 'MAIL FROM:<a@b.test>'): Row[] => [
  [mail, '250 2.1.0 ok'],
  ...rcpts.map(([a, r]): Row => [`RCPT TO:<${a}>`, r]),
  ['DATA', '354 go'],
  ['<data>', '250 2.0.0 queued'],
];
const SIZED = 'MAIL FROM:<a@b.test> SIZE=22';

test('pipelined transaction: MAIL, RCPTs and DATA in one packet, SIZE declared, one copy of the data', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING', 'SIZE 1000000')],
        ...txRows(
          [
            ['x@y.test', '250 ok'],
            ['z@y.test', '250 ok'],
          ],
          SIZED,
        ),
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['x@y.test', 'z@y.test']));
  await transport.close();
  const p = peers[0] as FakePeer;
  assert.deepEqual(p.errors, []);
  assert.deepEqual(
    out.map((o) => [o.index, o.result, o.remoteMta]),
    [
      [0, 'delivered', 'mx1.y.test'],
      [1, 'delivered', 'mx1.y.test'],
    ],
  );
  const packet = p.packets[0]?.find((c) => c.includes('MAIL FROM'));
  assert.equal(
    packet,
    'MAIL FROM:<a@b.test> SIZE=22\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n',
  );
  assert.equal(p.messages.length, 1);
  assert.equal(p.messages[0]?.toString('latin1'), 'Subject: hi\r\n\r\nhello\r\n.\r\n');
});

test('421 greeting at the first host: the second host gets the message', async (t) => {
  const { peers, transport } = await setup(
    t,
    [
      [[]],
      [
        [
          ['EHLO me.test', ehlo('PIPELINING', 'SIZE')],
          ...txRows([['x@y.test', '250 ok']], SIZED),
          ['QUIT', '221 bye'],
        ],
      ],
    ],
    ['421 4.3.2 too busy'],
  );
  const out = await transport.deliver(hop(peers), request(['x@y.test']));
  assert.equal(out[0]?.result, 'delivered');
  assert.equal(out[0]?.remoteMta, 'mx2.y.test');
  assert.equal(peers[0]?.connections, 1);
});

test('connection refused at the first host: next host; refused everywhere: deferred 4.4.1', async (t) => {
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const { peers, transport } = await setup(t, [
    [[['EHLO me.test', ehlo('SIZE')], ...txRows([['x@y.test', '250 ok']], SIZED), ['QUIT', '221 bye']]],
  ]);
  const ok = await transport.deliver(hop([closed, peers[0] as FakePeer]), request(['x@y.test']));
  assert.equal(ok[0]?.result, 'delivered');
  const bad = await transport.deliver(hop([closed]), request(['x@y.test']));
  assert.equal(bad[0]?.result, 'deferred');
  assert.equal(bad[0]?.status, '4.4.1');
  assert.match(bad[0]?.reply ?? '', /^451 4\.4\.1 cannot connect to mx1\.y\.test: ECONNREFUSED/);
});

test('452 on some RCPTs: those go in a second transaction on the same connection; 5xx ones fail with the reply', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING', 'SIZE')],
        ...txRows(
          [
            ['a@y.test', '250 ok'],
            ['b@y.test', '550 5.1.1 <b@y.test>: Recipient address rejected'],
            ['c@y.test', '452 4.5.3 too many recipients'],
            ['d@y.test', '452 4.5.3 too many recipients'],
          ],
          SIZED,
        ),
        ['RSET', '250 ok'],
        ...txRows(
          [
            ['c@y.test', '250 ok'],
            ['d@y.test', '250 ok'],
          ],
          SIZED,
        ),
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['a@y.test', 'b@y.test', 'c@y.test', 'd@y.test']));
  await transport.close();
  assert.deepEqual(peers[0]?.errors, []);
  assert.equal(peers[0]?.connections, 1);
  assert.equal(peers[0]?.messages.length, 2);
  assert.deepEqual(
    out.map((o) => o.result),
    ['delivered', 'failed', 'delivered', 'delivered'],
  );
  assert.equal(out[1]?.reply, '550 5.1.1 <b@y.test>: Recipient address rejected');
  assert.equal(out[1]?.status, '5.1.1');
});

test('connection dropped in the middle of DATA: deferred for all', async (t) => {
  const big = 'Subject: big\r\n\r\n' + 'x'.repeat(998).concat('\r\n').repeat(2000);
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING')],
        ['MAIL FROM:<a@b.test>', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['RCPT TO:<z@y.test>', '250 ok'],
        ['DATA', 'THEN-DROP:354 go'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['x@y.test', 'z@y.test'], big));
  assert.deepEqual(
    out.map((o) => [o.result, o.status]),
    [
      ['deferred', '4.4.2'],
      ['deferred', '4.4.2'],
    ],
  );
});

test('a peer that stops reading the data: backpressure, then the data-block timeout defers', async (t) => {
  const huge = 'Subject: huge\r\n\r\n' + 'y'.repeat(998).concat('\r\n').repeat(20000);
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING')],
        ['MAIL FROM:<a@b.test>', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['DATA', 'STALL:354 go'],
      ],
    ],
  ]);
  const t0 = Date.now();
  const out = await transport.deliver(hop(peers), request(['x@y.test'], huge));
  assert.deepEqual([out[0]?.result, out[0]?.status], ['deferred', '4.4.2']);
  assert.match(out[0]?.reply ?? '', /timeout waiting for the data reply/);
  assert.ok(Date.now() - t0 < 5000);
});

test('a reply slower than its timeout: deferred (last host) or the next host (before MAIL)', async (t) => {
  const { peers, transport } = await setup(
    t,
    [
      [
        [
          ['EHLO me.test', ehlo()],
          ['MAIL FROM:<a@b.test>', '250 ok'],
          ['RCPT TO:<x@y.test>', 'DELAY:2000:250 ok'],
        ],
      ],
      [[['EHLO me.test', ehlo()]]],
      [[['EHLO me.test', ehlo()], ...txRows([['x@y.test', '250 ok']]), ['QUIT', '221 bye']]],
    ],
    [undefined, 'DELAY:2000:220 slow'],
  );
  const slowRcpt = await transport.deliver(hop([peers[0] as FakePeer]), request(['x@y.test']));
  assert.equal(slowRcpt[0]?.result, 'deferred');
  assert.match(slowRcpt[0]?.reply ?? '', /timeout waiting for the rcpt reply/);
  const t0 = Date.now();
  const slowGreeting = await transport.deliver(
    hop([peers[1] as FakePeer, peers[2] as FakePeer]),
    request(['x@y.test']),
  );
  assert.equal(slowGreeting[0]?.result, 'delivered');
  assert.equal(slowGreeting[0]?.remoteMta, 'mx2.y.test');
  assert.ok(Date.now() - t0 < 1500);
});

test('EHLO 502: HELO fallback, no ESMTP parameters', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', '502 5.5.2 no'],
        ['HELO me.test', '250 old.test'],
        ['MAIL FROM:<a@b.test>', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['DATA', '354 go'],
        ['<data>', '250 ok'],
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['x@y.test']));
  await transport.close();
  assert.deepEqual(peers[0]?.errors, []);
  assert.equal(out[0]?.result, 'delivered');
});

test('byte-exact data: dot-stuffing, and smuggling sequences never end the data early at the peer', async (t) => {
  const stored = 'Subject: s\r\n\r\n.leading dot\r\nA\n.\nB\r.\rC\n.\r\nD\r\n..two\r\nend';
  const { peers, transport } = await setup(t, [
    [[['EHLO me.test', ehlo('PIPELINING')], ...txRows([['x@y.test', '250 ok']]), ['QUIT', '221 bye']]],
  ]);
  const out = await transport.deliver(hop(peers), request(['x@y.test'], stored));
  await transport.close();
  assert.equal(out[0]?.result, 'delivered');
  assert.deepEqual(peers[0]?.errors, []);
  assert.equal(peers[0]?.messages.length, 1);
  assert.equal(
    peers[0]?.messages[0]?.toString('latin1'),
    'Subject: s\r\n\r\n..leading dot\r\nA\r\n..\r\nB\r\n..\r\nC\r\n..\r\nD\r\n...two\r\nend\r\n.\r\n',
  );
});

test('8-bit message to a peer without 8BITMIME: failed 5.6.3 and no MAIL is sent; with 8BITMIME: BODY=8BITMIME', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING')],
        ['QUIT', '221 bye'],
      ],
    ],
    [
      [
        ['EHLO me.test', ehlo('8BITMIME')],
        ['MAIL FROM:<a@b.test> BODY=8BITMIME', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['DATA', '354 go'],
        ['<data>', '250 ok'],
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const req = request(['x@y.test'], 'Subject: caf\xe9\r\n\r\n\xe9\r\n', { body: '8BITMIME' });
  const out = await transport.deliver(hop([peers[0] as FakePeer]), req);
  assert.equal(out[0]?.result, 'failed');
  assert.equal(out[0]?.status, '5.6.3');
  const ok = await transport.deliver(hop([peers[1] as FakePeer]), req);
  await transport.close();
  assert.equal(ok[0]?.result, 'delivered');
  assert.deepEqual(peers[0]?.commands[0], ['EHLO me.test', 'QUIT']);
  assert.deepEqual(peers[1]?.errors, []);
  // declared 8BITMIME but really 7-bit: still goes to a 7-bit peer
  const { peers: p2, transport: t2 } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo()],
        ['MAIL FROM:<a@b.test>', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['DATA', '354 go'],
        ['<data>', '250 ok'],
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const plain = await t2.deliver(
    hop(p2),
    request(['x@y.test'], 'Subject: ascii\r\n\r\nhi\r\n', { body: '8BITMIME' }),
  );
  assert.equal(plain[0]?.result, 'delivered');
});

test('SMTPUTF8 message to a peer without SMTPUTF8: failed 5.6.7, no data sent', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('8BITMIME')],
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['δ@y.test'], 'x\r\n', { smtputf8: true }));
  await transport.close();
  assert.equal(out[0]?.result, 'failed');
  assert.equal(out[0]?.status, '5.6.7');
  assert.match(out[0]?.reply ?? '', /SMTPUTF8 required/);
  assert.equal(peers[0]?.messages.length, 0);
});

test('connection reuse: two requests to the same host share one connection (RSET between)', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo('PIPELINING')],
        ...txRows([['x@y.test', '250 ok']]),
        ['RSET', '250 ok'],
        ...txRows([['z@y.test', '250 ok']]),
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const a = await transport.deliver(hop(peers), request(['x@y.test']));
  const b = await transport.deliver(hop(peers), request(['z@y.test']));
  await transport.close();
  assert.deepEqual(peers[0]?.errors, []);
  assert.equal(a[0]?.result, 'delivered');
  assert.equal(b[0]?.result, 'delivered');
  assert.equal(peers[0]?.connections, 1);
  assert.equal(
    peers[0]?.packets[0]?.some((c) => c.startsWith('RSET\r\nMAIL FROM')),
    true,
  );
});

test('a cached connection that went stale is replaced by a fresh one', async (t) => {
  const tx = txRows([['x@y.test', '250 ok']]);
  const { peers, transport } = await setup(t, [
    [
      [['EHLO me.test', ehlo('PIPELINING')], ...tx, ['RSET', 'DROP']],
      [['EHLO me.test', ehlo('PIPELINING')], ...tx, ['QUIT', '221 bye']],
    ],
  ]);
  await transport.deliver(hop(peers), request(['x@y.test']));
  const b = await transport.deliver(hop(peers), request(['x@y.test']));
  await transport.close();
  assert.equal(b[0]?.result, 'delivered');
  assert.equal(peers[0]?.connections, 2);
  assert.equal(peers[0]?.messages.length, 2);
});

test('MAIL refused with 5xx: every recipient failed; no hosts: deferred 4.4.3', async (t) => {
  const { peers, transport } = await setup(t, [
    [
      [
        ['EHLO me.test', ehlo()],
        ['MAIL FROM:<a@b.test>', '553 5.7.1 sender not allowed'],
        ['QUIT', '221 bye'],
      ],
    ],
  ]);
  const out = await transport.deliver(hop(peers), request(['x@y.test', 'z@y.test']));
  await transport.close();
  assert.deepEqual(
    out.map((o) => [o.result, o.reply]),
    [
      ['failed', '553 5.7.1 sender not allowed'],
      ['failed', '553 5.7.1 sender not allowed'],
    ],
  );
  const none = await transport.deliver(
    { kind: 'smtp', key: 'k', domain: 'y.test', hosts: [], tls: 'none' },
    request(['x@y.test']),
  );
  assert.deepEqual(none, [
    { index: 0, result: 'deferred', reply: '451 4.4.3 no hosts to try', status: '4.4.3' },
  ]);
  await assert.rejects(transport.deliver({ kind: 'local' }, request(['x@y.test'])), TypeError);
});

test('IPv6: delivers to [::1] when the machine has it', async (t) => {
  const probe = net.createServer();
  const hasV6 = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
  if (!hasV6) return t.skip('no ::1');
  const peer = await startFakePeer({
    host: '::1',
    scripts: [
      [
        ['EHLO me.test', ehlo()],
        ['MAIL FROM:<a@b.test>', '250 ok'],
        ['RCPT TO:<x@y.test>', '250 ok'],
        ['DATA', '354 go'],
        ['<data>', '250 ok'],
        ['QUIT', '221 bye'],
      ],
    ],
  });
  const transport = new SmtpTransport({ heloName: 'me.test', timeouts: TINY });
  t.after(async () => {
    await transport.close();
    await peer.close();
  });
  const out = await transport.deliver(
    {
      kind: 'smtp',
      key: 'k',
      domain: 'y.test',
      hosts: [{ host: '::1', port: peer.port, preference: 0 }],
      tls: 'none',
    },
    request(['x@y.test']),
  );
  assert.equal(out[0]?.result, 'delivered');
  assert.equal(out[0]?.remoteMta, '::1');
});

test('idle cached connections say QUIT after idleTimeout; maxIdle 0 says QUIT at once', async (t) => {
  const rows: Row[] = [['EHLO me.test', ehlo()], ...txRows([['x@y.test', '250 ok']]), ['QUIT', '221 bye']];
  const peer = await startFakePeer({ scripts: [rows] });
  const idle = new SmtpTransport({ heloName: 'me.test', timeouts: TINY, idleTimeout: 50 });
  const none = new SmtpTransport({ heloName: 'me.test', timeouts: TINY, maxIdle: 0 });
  t.after(async () => {
    await idle.close();
    await none.close();
    await peer.close();
  });
  for (const tr of [idle, none]) {
    const out = await tr.deliver(hop([peer]), request(['x@y.test']));
    assert.equal(out[0]?.result, 'delivered');
  }
  const deadline = Date.now() + 2000;
  while (peer.commands.some((c) => c.at(-1) !== 'QUIT') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(
    peer.commands.map((c) => c.at(-1)),
    ['QUIT', 'QUIT'],
  );
  assert.deepEqual(peer.errors, []);
  assert.throws(() => new SmtpTransport({ heloName: '' }), TypeError);
  assert.throws(() => new SmtpTransport({ heloName: 'h', idleTimeout: -1 }), RangeError);
});

test('an injected dialer decides where a host name goes; 5xx greeting at the only host defers', async (t) => {
  const good = await startFakePeer({
    scripts: [[['EHLO me.test', ehlo()], ...txRows([['x@y.test', '250 ok']]), ['QUIT', '221 bye']]],
  });
  const bad = await startFakePeer({
    scripts: [[['QUIT', '221 bye']]],
    greeting: '554 5.7.1 no service for you',
  });
  const dialed: string[] = [];
  const transport = new SmtpTransport({
    heloName: 'me.test',
    timeouts: TINY,
    dialer: (host, port) => {
      dialed.push(`${host}:${port}`);
      return net.connect({ host: '127.0.0.1', port: host === 'mx.good.invalid' ? good.port : bad.port });
    },
  });
  t.after(async () => {
    await transport.close();
    await good.close();
    await bad.close();
  });
  const route = (host: string): NextHop => ({
    kind: 'smtp',
    key: host,
    domain: 'y.test',
    hosts: [{ host, port: 25, preference: 10 }],
    tls: 'none',
  });
  const ok = await transport.deliver(route('mx.good.invalid'), request(['x@y.test']));
  assert.deepEqual([ok[0]?.result, ok[0]?.remoteMta], ['delivered', 'mx.good.invalid']);
  const refused = await transport.deliver(route('mx.bad.invalid'), request(['x@y.test']));
  assert.deepEqual(
    [refused[0]?.result, refused[0]?.status, refused[0]?.reply],
    ['deferred', '4.7.1', '554 5.7.1 no service for you'],
  );
  assert.deepEqual(dialed, ['mx.good.invalid:25', 'mx.bad.invalid:25']);
});
