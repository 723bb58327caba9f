import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { rmSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { startReceiver, Raw } from './harness.js';
import { makeSelfSignedCert } from '../helpers/tls.js';

let dir: string;
let cert: Buffer;
let key: Buffer;
let srv: Awaited<ReturnType<typeof startReceiver>>;

before(async () => {
  const made = await makeSelfSignedCert();
  dir = made.dir;
  cert = Buffer.from(made.cert);
  key = Buffer.from(made.key);
  srv = await startReceiver({
    tls: { cert, key },
    listeners: [
      { host: '127.0.0.1', port: 0, mode: 'mx' },
      { host: '127.0.0.1', port: 0, mode: 'submission' },
      { host: '127.0.0.1', port: 0, mode: 'submissions' },
    ],
    checkAuth: async (u, p) => u === 'alice' && p === 'secret',
  });
});
after(async () => {
  await srv.server.stop(100);
  rmSync(dir, { recursive: true, force: true });
});

const port = (i: number) => srv.bound[i]!.port;

function upgrade(raw: Raw): Promise<Raw> {
  return new Promise((resolve, reject) => {
    raw.sock.removeAllListeners('data');
    const s = tls.connect({ socket: raw.sock, rejectUnauthorized: false, servername: 'localhost' }, () =>
      resolve(new Raw(s)),
    );
    s.once('error', reject);
  });
}

test('STARTTLS is offered, resets the session, and EHLO after it drops STARTTLS', async () => {
  const c = await Raw.connect(port(0));
  await c.reply();
  assert.match(await c.cmd('EHLO c.test'), /250-STARTTLS/);
  assert.match(await c.cmd('MAIL FROM:<a@b.test>'), /^250/);
  assert.match(await c.cmd('STARTTLS'), /^503/); // not inside a transaction
  assert.match(await c.cmd('RSET'), /^250/);
  assert.match(await c.cmd('STARTTLS'), /^220 2\.0\.0/);
  const s = await upgrade(c);
  assert.match(await s.cmd('MAIL FROM:<a@b.test>'), /^503/); // state was reset: EHLO again first
  const ehlo = await s.cmd('EHLO c.test');
  assert.doesNotMatch(ehlo, /STARTTLS/);
  assert.match(await s.cmd('STARTTLS'), /^503/);
  s.end();
});

test('STARTTLS command injection: pipelined plaintext after STARTTLS is discarded (CVE-2011-0411)', async () => {
  const c = await Raw.connect(port(0));
  await c.reply();
  await c.cmd('EHLO c.test');
  c.send('STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n');
  assert.match(await c.reply(), /^220/);
  // The injected MAIL travels in clear before the handshake: the TLS layer sees garbage, or the
  // session sees nothing. Either way no MAIL is ever accepted.
  const s = await upgrade(c).catch(() => null);
  if (s) {
    assert.match(await s.cmd('EHLO c.test'), /^250-/);
    assert.match(await s.cmd('RCPT TO:<bob@example.test>'), /^503/, 'no MAIL survived the upgrade');
    s.end();
  }
});

test('a clean STARTTLS with nothing injected works end to end with nodemailer (requireTLS)', async () => {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: port(0),
    requireTLS: true,
    tls: { rejectUnauthorized: false },
  });
  const info = await t.sendMail({ from: 'a@client.test', to: 'bob@example.test', subject: 'tls', text: 'x' });
  assert.match(info.response, /^250 /);
  const last = srv.sink.stored.at(-1)!;
  assert.match(last.data.toString(), /with ESMTPS id/);
  t.close();
});

test('submission: AUTH only after STARTTLS, MAIL needs AUTH, bad password 535, good one 235', async () => {
  const c = await Raw.connect(port(1));
  await c.reply();
  const e1 = await c.cmd('EHLO c.test');
  assert.doesNotMatch(e1, /AUTH/);
  assert.match(await c.cmd('MAIL FROM:<a@b.test>'), /^530 5\.7\.0/);
  assert.match(await c.cmd('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), /^538 5\.7\.11/);
  await c.cmd('STARTTLS');
  const s = await upgrade(c);
  assert.match(await s.cmd('EHLO c.test'), /250-AUTH PLAIN LOGIN/);
  assert.match(await s.cmd('AUTH PLAIN ' + Buffer.from('\0alice\0wrong').toString('base64')), /^535 5\.7\.8/);
  assert.match(await s.cmd('AUTH LOGIN'), /^334 VXNlcm5hbWU6/);
  assert.match(await s.cmd(Buffer.from('alice').toString('base64')), /^334 UGFzc3dvcmQ6/);
  assert.match(await s.cmd(Buffer.from('secret').toString('base64')), /^235 2\.7\.0/);
  assert.match(await s.cmd('AUTH PLAIN x'), /^503/);
  assert.match(await s.cmd('MAIL FROM:<a@b.test>'), /^250/);
  assert.match(await s.cmd('RCPT TO:<someone@elsewhere.test>'), /^250/, 'authenticated users may relay');
  s.end();
});

test('AUTH cancel and malformed base64', async () => {
  const s = await new Promise<Raw>((resolve, reject) => {
    const t = tls.connect({ host: '127.0.0.1', port: port(2), rejectUnauthorized: false }, () =>
      resolve(new Raw(t)),
    );
    t.once('error', reject);
  });
  assert.match(await s.reply(), /^220 /);
  assert.match(await s.cmd('EHLO c.test'), /250-AUTH PLAIN LOGIN/);
  assert.match(await s.cmd('AUTH PLAIN'), /^334 ?\r\n/);
  assert.match(await s.cmd('*'), /^501 5\.0\.0/);
  assert.match(await s.cmd('AUTH PLAIN !!!'), /^501/);
  assert.match(await s.cmd('AUTH CRAM-MD5'), /^504/);
  s.end();
});

test('AUTH failures are bounded: 421 after the third', async () => {
  const s = await new Promise<Raw>((resolve, reject) => {
    const t = tls.connect({ host: '127.0.0.1', port: port(2), rejectUnauthorized: false }, () =>
      resolve(new Raw(t)),
    );
    t.once('error', reject);
  });
  await s.reply();
  await s.cmd('EHLO c.test');
  const bad = 'AUTH PLAIN ' + Buffer.from('\0alice\0nope').toString('base64');
  assert.match(await s.cmd(bad), /^535/);
  assert.match(await s.cmd(bad), /^535/);
  assert.match(await s.cmd(bad), /^421 4\.7\.0/);
  assert.ok(await s.waitClose());
});

test('implicit TLS (submissions) with nodemailer and AUTH', async () => {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: port(2),
    secure: true,
    auth: { user: 'alice', pass: 'secret' },
    tls: { rejectUnauthorized: false },
  });
  const info = await t.sendMail({
    from: 'alice@example.test',
    to: 'friend@elsewhere.test',
    subject: 's',
    text: 'x',
  });
  assert.match(info.response, /^250 /);
  assert.match(srv.sink.stored.at(-1)!.data.toString(), /with ESMTPSA id/);
  t.close();
});
