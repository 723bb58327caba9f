import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver, Raw } from './harness.js';

test('idle client gets 421 4.4.2 after the command timeout', async () => {
  const srv = await startReceiver({ limits: { commandTimeoutMs: 200 } });
  const c = await Raw.connect(srv.port);
  await c.reply();
  assert.match(await c.reply(3000), /^421 4\.4\.2 /);
  assert.ok(await c.waitClose());
  await srv.server.stop(100);
});

test('a client that stalls in DATA is cut off and nothing is stored', async () => {
  const srv = await startReceiver({ limits: { dataTimeoutMs: 200 } });
  const c = await Raw.connect(srv.port);
  await c.reply();
  for (const l of ['EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<bob@example.test>', 'DATA'])
    await c.cmd(l);
  c.send('Subject: half\r\n');
  assert.match(await c.reply(3000), /^421 4\.4\.2 /);
  assert.ok(await c.waitClose());
  assert.equal(srv.sink.stored.length, 0);
  await srv.server.stop(100);
});

test('connection limits: total and per IP answer 421 4.7.0', async () => {
  const srv = await startReceiver({ limits: { maxConnections: 3, maxConnectionsPerIp: 2 } });
  const a = await Raw.connect(srv.port);
  const b = await Raw.connect(srv.port);
  assert.match(await a.reply(), /^220/);
  assert.match(await b.reply(), /^220/);
  const c = await Raw.connect(srv.port);
  assert.match(await c.reply(), /^421 4\.7\.0 .*your address/);
  const d = await Raw.connect(srv.port, '127.0.0.1', '127.0.0.2');
  assert.match(await d.reply(), /^220/);
  const e = await Raw.connect(srv.port, '127.0.0.1', '127.0.0.3');
  assert.match(await e.reply(), /^421 4\.7\.0 .*Too many connections/);
  for (const x of [a, b, c, d, e]) x.end();
  await srv.server.stop(100);
});

test('shutdown: idle sessions and new clients get 421, a transaction in flight finishes', async () => {
  const srv = await startReceiver();
  const idle = await Raw.connect(srv.port);
  await idle.reply();
  const busy = await Raw.connect(srv.port);
  await busy.reply();
  for (const l of ['EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<bob@example.test>', 'DATA'])
    await busy.cmd(l);
  const stopping = srv.server.stop(5000);
  assert.match(await idle.reply(), /^421 4\.3\.2 /);
  const late = await Raw.connect(srv.port);
  assert.match(await late.reply(), /^421 4\.3\.2 /);
  busy.send('x\r\n.\r\n');
  const r = await busy.reply();
  assert.match(r, /^250 2\.0\.0 Ok: queued/);
  assert.match(await busy.reply(), /^421 4\.3\.2 /);
  await stopping;
  assert.equal(srv.sink.stored.length, 1);
});

test('200 concurrent clients each get their message through', async () => {
  const srv = await startReceiver();
  const one = async (i: number) => {
    const c = await Raw.connect(srv.port);
    await c.reply();
    c.send(`EHLO c${i}.test\r\nMAIL FROM:<s${i}@b.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n`);
    for (let k = 0; k < 4; k++) await c.reply(15000);
    c.send(`Subject: ${i}\r\n\r\nbody ${i}\r\n.\r\nQUIT\r\n`);
    const r = await c.reply(15000);
    await c.reply(15000);
    c.end();
    return r;
  };
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
  assert.equal(replies.filter((r) => r.startsWith('250 ')).length, 200);
  assert.equal(srv.sink.stored.length, 200);
  await srv.server.stop(100);
});

test('a client that never reads its replies does not grow our memory without bound', async () => {
  const srv = await startReceiver();
  const c = await Raw.connect(srv.port);
  c.sock.pause(); // never read
  const line = Buffer.from('NOOP\r\n'.repeat(10000));
  let writes = 0;
  // Keep writing until the kernel buffers fill: our server must stop reading (backpressure).
  while (writes < 2000 && c.sock.write(line)) writes++;
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(writes < 2000, 'the server stopped reading at some point');
  c.end();
  await srv.server.stop(100);
});

test('a client trickling one byte at a time is cut off after the command timeout (slowloris)', async () => {
  const srv = await startReceiver({ limits: { commandTimeoutMs: 300 } });
  const c = await Raw.connect(srv.port);
  await c.reply();
  const started = Date.now();
  let got = '';
  const reading = c.reply(5000).then((r) => (got = r));
  for (let i = 0; i < 40 && got === ''; i++) {
    c.send('N');
    await new Promise((r) => setTimeout(r, 100));
  }
  await reading;
  assert.match(got, /^421 4\.4\.2 /);
  assert.ok(Date.now() - started < 2000, 'cut off well before the line limit is reached');
  await srv.server.stop(100);
});

test('clients in the relay networks are exempt from the per-IP limit', async () => {
  const srv = await startReceiver({
    limits: { maxConnectionsPerIp: 2 },
    perIpExempt: (ip) => ip === '127.0.0.1',
  });
  const cs = await Promise.all([1, 2, 3, 4].map(() => Raw.connect(srv.port)));
  for (const c of cs) assert.match(await c.reply(), /^220 /);
  const a = await Raw.connect(srv.port, '127.0.0.1', '127.0.0.2');
  const b = await Raw.connect(srv.port, '127.0.0.1', '127.0.0.2');
  const c = await Raw.connect(srv.port, '127.0.0.1', '127.0.0.2');
  assert.match(await a.reply(), /^220 /);
  assert.match(await b.reply(), /^220 /);
  assert.match(await c.reply(), /^421 4\.7\.0 /);
  for (const x of [...cs, a, b, c]) x.end();
  await srv.server.stop(100);
});
