/**
 * Proves the interop fixtures against the real peers alone (no ferrymail needed): a private
 * Postfix accepts from swaks and writes its Maildir, relays a routed domain to a scripted server and
 * offers STARTTLS; the raw dialogue helper reads multi-line and pipelined replies; a private Dovecot
 * serves a hand-written Maildir over IMAP and accepts LMTP from a raw dialogue.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { interopSkip } from '../helpers/interop.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { startDovecot, imapMessages, imapSubjects, type Dovecot } from '../helpers/dovecot.js';
import { chownTree, waitForFile } from '../helpers/ferrymail.js';
import { dialog, rawSession } from '../helpers/smtp-client.js';
import { swaksSend, swaksTranscript } from '../helpers/swaks.js';
import { makeSelfSignedCert, type SelfSignedCert } from '../helpers/tls.js';
import { removeDir } from '../helpers/proc.js';

interface Captured {
  from: string;
  rcpts: string[];
  data: string;
}

/** A scripted receiver that accepts everything and records the transactions (the fake next hop). */
async function startSink(): Promise<{ port: number; got: Captured[]; close(): Promise<void> }> {
  const got: Captured[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.setEncoding('latin1');
    let buf = '';
    let tx: Captured = { from: '', rcpts: [], data: '' };
    let inData = false;
    sock.write('220 sink.test ESMTP\r\n');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            got.push(tx);
            tx = { from: '', rcpts: [], data: '' };
            sock.write('250 2.0.0 stored\r\n');
          } else tx.data += (line.startsWith('.') ? line.slice(1) : line) + '\r\n';
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
        else if (verb === 'MAIL') {
          tx.from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          sock.write('250 2.1.0 ok\r\n');
        } else if (verb === 'RCPT') {
          tx.rcpts.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          sock.write('250 2.1.5 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') sock.end('221 2.0.0 bye\r\n');
        else sock.write('250 ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    got,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of open) sock.destroy();
      }),
  };
}

const postfixSkip = interopSkip('postfix', 'swaks', 'openssl');

describe('Postfix fixture', () => {
  let pf: Postfix;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let cert: SelfSignedCert;

  before(async () => {
    if (postfixSkip) return; // hooks run even when every test is skipped
    sink = await startSink();
    cert = await makeSelfSignedCert({ commonName: 'pf.test' });
    pf = await startPostfix({ routes: { 'sink.test': `127.0.0.1:${sink.port}` }, tls: cert });
  });
  after(async () => {
    await pf?.close();
    await sink?.close();
    if (cert) await removeDir(cert.dir);
  });

  it('accepts a message from swaks and writes it into its Maildir', { skip: postfixSkip }, async () => {
    const r = await swaksSend({
      port: pf.port,
      to: 'Bob@pf.test',
      subject: 'fixture hello',
      body: 'hello bob',
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    const [file] = await waitForFile(path.join(pf.maildir('bob'), 'new'), 1);
    const text = await readFile(file ?? '', 'utf8');
    assert.match(text, /^Subject: fixture hello$/m);
    assert.match(text, /^Delivered-To: Bob@pf\.test$/m);
    assert.match(text, /hello bob/);
  });

  it(
    'relays a routed domain to the configured next hop, one copy for two recipients',
    { skip: postfixSkip },
    async () => {
      const r = await swaksSend({ port: pf.port, to: 'x@sink.test,Y@sink.test', subject: 'routed' });
      assert.equal(r.code, 0, swaksTranscript(r));
      await pf.waitForLog(/to=<Y@sink\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/);
      assert.equal(sink.got.length, 1);
      assert.deepEqual(sink.got[0]?.rcpts.slice().sort(), ['Y@sink.test', 'x@sink.test']);
      assert.match(sink.got[0]?.data ?? '', /^Subject: routed\r$/m);
    },
  );

  it('offers STARTTLS with the throwaway certificate', { skip: postfixSkip }, async () => {
    const r = await swaksSend({ port: pf.port, to: 'carol@pf.test', subject: 'over tls', args: ['--tls'] });
    assert.equal(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /TLS started/);
    await waitForFile(path.join(pf.maildir('carol'), 'new'), 1);
    await pf.waitForLog(/Anonymous TLS connection established from|TLS connection established from/);
  });

  it('the raw dialogue helper reads multi-line and pipelined replies', { skip: postfixSkip }, async () => {
    const replies = await dialog(pf.port, [
      [null, /^220 /],
      ['EHLO client.test', /^250-[\s\S]*^250-PIPELINING[\s\S]*^250 /m],
      [
        'MAIL FROM:<a@client.test>\r\nRCPT TO:<dave@pf.test>\r\nRCPT TO:<no spaces allowed>\r\nDATA\r\n',
        /^250 /,
      ],
      [null, /^250 /],
      [null, /^501 /],
      [null, /^354 /],
      ['Subject: raw\r\n\r\n..dot-stuffed line\r\n.\r\n', /^250 /],
      ['QUIT', /^221 /],
    ]);
    assert.ok((replies[1]?.lines.length ?? 0) > 2, 'EHLO reply has several lines');
    const [file] = await waitForFile(path.join(pf.maildir('dave'), 'new'), 1);
    assert.match(await readFile(file ?? '', 'utf8'), /^\.dot-stuffed line$/m);
  });
});

const dovecotSkip = interopSkip('dovecot-imapd', 'dovecot-lmtpd', 'python3');

describe('Dovecot fixture', () => {
  let dv: Dovecot;
  before(async () => {
    if (dovecotSkip) return; // hooks run even when every test is skipped
    dv = await startDovecot();
  });
  after(async () => {
    await dv?.close();
  });

  it('serves a hand-written Maildir over IMAP (Python imaplib)', { skip: dovecotSkip }, async () => {
    const box = path.join(dv.mailRoot, 'ex.test', 'alice');
    await Promise.all(['new', 'cur', 'tmp'].map((d) => mkdir(path.join(box, d), { recursive: true })));
    await writeFile(
      path.join(box, 'new', '1700000000.M1P1.fixture'),
      'From: x@ex.test\r\nTo: alice@ex.test\r\nSubject: Hand made\r\n\r\nbody caf\xc3\xa9\r\n',
      'latin1',
    );
    await chownTree(path.join(dv.mailRoot, 'ex.test'), 65534, 65534);
    const msgs = await imapMessages(dv.imapPort, 'alice@ex.test', dv.password);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]?.subject, 'Hand made');
    assert.match(msgs[0]?.raw ?? '', /body caf\xc3\xa9/);
  });

  it(
    'accepts LMTP from a raw socket dialogue, one reply per recipient after DATA',
    { skip: dovecotSkip },
    async () => {
      const s = await rawSession(dv.lmtpPort);
      try {
        assert.match((await s.readReply()).raw, /^220 /);
        assert.match((await s.command('LHLO client.test')).raw, /^250[ -]/);
        assert.match((await s.command('MAIL FROM:<sender@client.test>')).raw, /^250 /);
        assert.match((await s.command('RCPT TO:<dave@lmtp.test>')).raw, /^250 /);
        assert.match((await s.command('RCPT TO:<Eve@lmtp.test>')).raw, /^250 /);
        assert.match((await s.command('DATA')).raw, /^354 /);
        await s.send('From: sender@client.test\r\nSubject: via lmtp\r\n\r\nhi\r\n.\r\n');
        assert.match((await s.readReply()).raw, /^250 .*dave@lmtp\.test/);
        assert.match((await s.readReply()).raw, /^250 .*Eve@lmtp\.test/);
        assert.match((await s.command('QUIT')).raw, /^221 /);
      } finally {
        s.close();
      }
      assert.deepEqual(await imapSubjects(dv.imapPort, 'dave@lmtp.test', dv.password), ['via lmtp']);
      assert.deepEqual(await imapSubjects(dv.imapPort, 'eve@lmtp.test', dv.password), ['via lmtp']);
    },
  );
});
