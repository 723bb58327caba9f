/**
 * ferrymail and a real Exim 4, both ways: Exim relays into ferrymail (several recipients in one
 * transaction, local-part case kept, 8-bit data, an SMTPUTF8 local part); ferrymail relays into
 * Exim (both recipients of one host in one transaction, RFC 5321 §3 / invariant 3; the message
 * intact, dot-stuffed lines included) and returns a DSN when Exim refuses; then STARTTLS both ways.
 * Exim is the Debian package unpacked by `.ci/run` (see test/helpers/exim.ts). Skipped while
 * `ferrymail serve` cannot start, or (outside CI) while Exim cannot run here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chown, readFile } from 'node:fs/promises';
import path from 'node:path';
import { interopSkip } from '../helpers/interop.js';
import {
  ferrymailSkip,
  globFiles,
  startFerrymail,
  waitForFile,
  type Ferrymail,
} from '../helpers/ferrymail.js';
import { eximSkip, eximUser, startExim, type Exim } from '../helpers/exim.js';
import { dialog } from '../helpers/smtp-client.js';
import { makeSelfSignedCert, type SelfSignedCert } from '../helpers/tls.js';
import { freePort, removeDir, waitFor } from '../helpers/proc.js';

const skip = eximSkip() ?? interopSkip('openssl') ?? (await ferrymailSkip());

interface Pair {
  fm: Ferrymail;
  ex: Exim;
  close(): Promise<void>;
}

/** Exim final for peer.test, routing fm.test to ferrymail; ferrymail final for fm.test, routing peer.test to Exim. */
async function startPair(withTls: boolean): Promise<Pair> {
  const fmPort = await freePort();
  let cert: SelfSignedCert | undefined;
  if (withTls) {
    cert = await makeSelfSignedCert({ commonName: 'peer.test' });
    // Exim gives up root before it reads the key: hand both files to the user it runs as.
    const { uid, gid } = eximUser();
    await Promise.all([cert.dir, cert.certPath, cert.keyPath].map((f) => chown(f, uid, gid)));
  }
  const ex = await startExim({
    domain: 'peer.test',
    routes: { 'fm.test': `127.0.0.1:${fmPort}` },
    catchall: false,
    ...(cert ? { tls: cert } : {}),
  }).catch(async (e: unknown) => {
    if (cert) await removeDir(cert.dir);
    throw e;
  });
  try {
    const fm = await startFerrymail({
      tls: withTls,
      config: {
        hostname: 'mx.fm.test',
        listeners: [{ address: `127.0.0.1:${fmPort}`, mode: 'mx' }],
        domains: { local: ['fm.test'] },
        relay: { networks: ['127.0.0.1/32'] },
        routes: { 'peer.test': `127.0.0.1:${ex.port}` },
      },
    });
    return {
      fm,
      ex,
      async close() {
        await fm.close();
        await ex.close();
        if (cert) await removeDir(cert.dir);
      },
    };
  } catch (e) {
    await ex.close();
    if (cert) await removeDir(cert.dir);
    throw e;
  }
}

/** Exim's `<=` (received) lines for the message with this Message-ID (logged as `id=...`). */
function receivedLines(log: string, msgId: string): string[] {
  return log.split('\n').filter((l) => / <= /.test(l) && l.includes(`id=${msgId}`));
}

const UTF8_LINE = 'Grüße aus Köln, ½ € — ünïcödé';
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

describe('Exim <-> ferrymail (plain SMTP)', { timeout: 40_000 }, () => {
  let p: Pair;
  before(async () => {
    if (skip) return; // hooks run even when every test is skipped
    p = await startPair(false);
  });
  after(async () => {
    await p?.close();
  });

  it(
    'Exim relays into ferrymail: one transaction, one Maildir message per recipient, case kept, 8-bit intact',
    { skip },
    async () => {
      const rcpts = ['Alice@fm.test', 'bob@fm.test', 'CAROL@fm.test'];
      const body =
        'Subject: via exim\r\nMessage-ID: <exim-in-1@client.test>\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
        `${UTF8_LINE}\r\n`;
      await dialog(p.ex.port, [
        [null, /^220 /],
        ['EHLO client.test', /^250[ -]/],
        ['MAIL FROM:<sender@client.test> BODY=8BITMIME', /^250 /],
        ...rcpts.map((r) => [`RCPT TO:<${r}>`, /^250 /] as const),
        ['DATA', /^354 /],
        [wire(body + '.\r\n'), /^250 /],
        ['QUIT', /^221 /],
      ]);
      for (const r of rcpts) {
        const [user = '', domain = ''] = r.split('@');
        const [file] = await waitForFile(path.join(p.fm.maildir(domain, user), 'new'), 1, 15_000);
        const bytes = await readFile(file ?? '');
        const text = bytes.toString('utf8');
        assert.ok(bytes.includes(Buffer.from(UTF8_LINE, 'utf8')), `8-bit body intact for ${r}`);
        assert.match(text, /^Subject: via exim\r?$/m);
        assert.match(
          text,
          new RegExp(`^Delivered-To: ${r.replace('.', '\\.')}\\r?$`, 'm'),
          'Delivered-To keeps the case',
        );
        assert.match(text, /^Return-Path: <sender@client\.test>\r?$/m);
        assert.match(text, /^\s+by peer\.test with esmtp \(Exim 4\.\d+\)\r?$/m, 'Exim was on the path');
      }
      // Exim logs the first recipient of a delivery with `=>`, the others of the same SMTP
      // transaction with `->`: three addresses, one `=>`, all to ferrymail's port.
      const log = await p.ex.waitForLog(/[=-]> carol@fm\.test <CAROL@fm\.test>.* C="250/);
      const deliveries = log.split('\n').filter((l) => / [=-]> \S+@fm\.test /.test(l));
      assert.equal(deliveries.length, 3, log);
      assert.equal(deliveries.filter((l) => / => /.test(l)).length, 1, `one transaction:\n${log}`);
      for (const l of deliveries)
        assert.match(l, new RegExp(`T=smtp_0 H=127\\.0\\.0\\.1 \\[127\\.0\\.0\\.1\\]:${p.fm.port} `));
    },
  );

  it('ferrymail relays into Exim: both recipients in one transaction, message intact', { skip }, async () => {
    const msgId = 'fm-to-exim-1@client.test';
    const lines = [
      'Subject: to exim',
      `Message-ID: <${msgId}>`,
      'From: <sender@client.test>',
      '',
      'first line',
      '.a line that starts with a dot',
      '..two dots',
      'x'.repeat(900),
      'last line',
    ];
    const stuffed = lines.map((l) => (l.startsWith('.') ? '.' + l : l));
    await dialog(p.fm.port, [
      [null, /^220 /],
      ['EHLO client.test', /^250[ -]/],
      ['MAIL FROM:<sender@client.test>', /^250 /],
      ['RCPT TO:<bob@peer.test>', /^250 /],
      ['RCPT TO:<Carol@peer.test>', /^250 /],
      ['DATA', /^354 /],
      [stuffed.join('\r\n') + '\r\n.\r\n', /^250 /],
      ['QUIT', /^221 /],
    ]);
    for (const user of ['bob', 'carol']) {
      const [file] = await waitForFile(path.join(p.ex.maildir(user), 'new'), 1, 15_000);
      const text = await readFile(file ?? '', 'utf8');
      // Exim's appendfile writes LF line ends; the body must be the one we sent, line for line.
      const body = text.slice(text.indexOf('\n\n') + 2);
      assert.equal(body, lines.slice(lines.indexOf('') + 1).join('\n') + '\n', `body intact for ${user}`);
      assert.match(text, /^Subject: to exim$/m);
      assert.match(text, new RegExp(`^Message-ID: <${msgId}>$`, 'm'));
      assert.match(text, /^Return-path: <sender@client\.test>$/m);
      assert.match(text, /^\s+by mx\.fm\.test \(ferrymail\) with ESMTP/m, 'ferrymail was on the path');
    }
    // Local deliveries are logged as `=> <local part> <original address> R=router T=transport`.
    const log = await p.ex.waitForLog(/=> carol <Carol@peer\.test> R=mailbox T=maildir/);
    const received = receivedLines(log, msgId);
    assert.equal(received.length, 1, `one transaction from ferrymail:\n${log}`);
    // +received_recipients: the one `<=` line lists every recipient of that transaction.
    assert.match(received[0] ?? '', / for bob@peer\.test Carol@peer\.test$/);
    assert.match(received[0] ?? '', /<= sender@client\.test H=\(mx\.fm\.test\) \[127\.0\.0\.1\]/);
  });

  it('Exim relays an SMTPUTF8 message with a UTF-8 local part into ferrymail', { skip }, async () => {
    const rcpt = 'José.Ünal@fm.test';
    await dialog(p.ex.port, [
      [null, /^220 /],
      ['EHLO client.test', /SMTPUTF8/],
      ['MAIL FROM:<sender@client.test> SMTPUTF8 BODY=8BITMIME', /^250 /],
      [wire(`RCPT TO:<${rcpt}>\r\n`), /^250 /],
      ['DATA', /^354 /],
      [wire(`Subject: Grüße\r\nTo: ${rcpt}\r\n\r\nunicode via exim\r\n.\r\n`), /^250 /],
      ['QUIT', /^221 /],
    ]);
    const mine = await waitFor(
      'the UTF-8 message in ferrymail',
      async () => {
        const all = await globFiles(path.join(p.fm.dataDir, 'mail', 'fm.test', '*', 'new'));
        const texts = await Promise.all(all.map((f) => readFile(f, 'utf8')));
        return texts.find((x) => x.includes('unicode via exim'));
      },
      15_000,
    );
    assert.match(mine, /^Delivered-To: José\.Ünal@fm\.test\r?$/m);
    assert.match(mine, /^Subject: Grüße\r?$/m);
    const log = await p.ex.waitForLog(/=> [^\n]*José\.Ünal@fm\.test[^\n]* C="250/);
    assert.match(log, /<= sender@client\.test [^\n]*for José\.Ünal@fm\.test/);
  });

  it('Exim refuses an unknown recipient and ferrymail returns a DSN to the sender', { skip }, async () => {
    await dialog(p.fm.port, [
      [null, /^220 /],
      ['EHLO client.test', /^250[ -]/],
      ['MAIL FROM:<dora@fm.test>', /^250 /],
      ['RCPT TO:<nosuch@peer.test>', /^250 /],
      ['DATA', /^354 /],
      ['Subject: will bounce\r\n\r\nhello\r\n.\r\n', /^250 /],
      ['QUIT', /^221 /],
    ]);
    await p.ex.waitForLog(/rejected RCPT <nosuch@peer\.test>/);
    const [file] = await waitForFile(path.join(p.fm.maildir('fm.test', 'dora'), 'new'), 1, 15_000);
    const text = await readFile(file ?? '', 'utf8');
    assert.match(text, /nosuch@peer\.test/);
    assert.match(text, /^Return-Path: <>\r?$/m);
    assert.match(text, /550/);
  });
});

describe('Exim <-> ferrymail (STARTTLS both ways)', { timeout: 40_000 }, () => {
  let p: Pair;
  before(async () => {
    if (skip) return;
    p = await startPair(true);
  });
  after(async () => {
    await p?.close();
  });

  it('Exim uses STARTTLS when relaying into ferrymail', { skip }, async () => {
    await dialog(p.ex.port, [
      [null, /^220 /],
      ['EHLO client.test', /^250[ -]/],
      ['MAIL FROM:<sender@client.test>', /^250 /],
      ['RCPT TO:<erin@fm.test>', /^250 /],
      ['DATA', /^354 /],
      ['Subject: tls into ferrymail\r\n\r\nhello\r\n.\r\n', /^250 /],
      ['QUIT', /^221 /],
    ]);
    await waitForFile(path.join(p.fm.maildir('fm.test', 'erin'), 'new'), 1, 15_000);
    const log = await p.ex.waitForLog(/=> erin@fm\.test .*C="250/);
    assert.match(log, /=> erin@fm\.test [^\n]* X=TLS1\.[23]:/);
  });

  it('ferrymail uses STARTTLS when relaying into Exim', { skip }, async () => {
    await dialog(p.fm.port, [
      [null, /^220 /],
      ['EHLO client.test', /^250[ -]/],
      ['MAIL FROM:<sender@client.test>', /^250 /],
      ['RCPT TO:<dave@peer.test>', /^250 /],
      ['DATA', /^354 /],
      ['Subject: tls into exim\r\n\r\nhello\r\n.\r\n', /^250 /],
      ['QUIT', /^221 /],
    ]);
    await waitForFile(path.join(p.ex.maildir('dave'), 'new'), 1, 15_000);
    const log = await p.ex.waitForLog(/<= sender@client\.test H=\(mx\.fm\.test\)[^\n]* for dave@peer\.test/);
    assert.match(
      log,
      /<= sender@client\.test H=\(mx\.fm\.test\)[^\n]* X=TLS1\.[23]:[^\n]* for dave@peer\.test/,
    );
  });
});
