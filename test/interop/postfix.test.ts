/**
 * ferrymail and a real Postfix, both ways: Postfix relays into ferrymail (several recipients, 8-bit
 * data, local-part case kept), ferrymail relays into Postfix (one transaction for the recipients of
 * one host, RFC 5321 §3 / invariant 3) and returns a DSN when Postfix refuses a recipient; then the
 * same over STARTTLS both ways. Skipped while `ferrymail serve` cannot start, or (outside CI) while
 * postfix/swaks are not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { interopSkip } from '../helpers/interop.js';
import { ferrymailSkip, startFerrymail, waitForFile, type Ferrymail } from '../helpers/ferrymail.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { dialog } from '../helpers/smtp-client.js';
import { swaksSend, swaksTranscript } from '../helpers/swaks.js';
import { makeSelfSignedCert, type SelfSignedCert } from '../helpers/tls.js';
import { freePort, removeDir } from '../helpers/proc.js';

const skip = interopSkip('postfix', 'swaks', 'openssl') ?? (await ferrymailSkip());

interface Pair {
  fm: Ferrymail;
  pf: Postfix;
  cert?: SelfSignedCert;
  close(): Promise<void>;
}

/** Postfix final for pf.test and routing fm.test to ferrymail; ferrymail final for fm.test, routing pf.test to Postfix. */
async function startPair(withTls: boolean): Promise<Pair> {
  const fmPort = await freePort();
  const cert = withTls ? await makeSelfSignedCert({ commonName: 'pf.test' }) : undefined;
  const pf = await startPostfix({
    routes: { 'fm.test': `127.0.0.1:${fmPort}` },
    catchall: false,
    ...(cert ? { tls: cert } : {}),
  });
  try {
    const fm = await startFerrymail({
      tls: withTls,
      config: {
        hostname: 'mx.fm.test',
        listeners: [{ address: `127.0.0.1:${fmPort}`, mode: 'mx' }],
        domains: { local: ['fm.test'] },
        relay: { networks: ['127.0.0.1/32'] },
        routes: { 'pf.test': `127.0.0.1:${pf.port}` },
      },
    });
    return {
      fm,
      pf,
      ...(cert ? { cert } : {}),
      async close() {
        await fm.close();
        await pf.close();
        if (cert) await removeDir(cert.dir);
      },
    };
  } catch (e) {
    await pf.close();
    if (cert) await removeDir(cert.dir);
    throw e;
  }
}

const UTF8_LINE = 'Grüße aus Köln, ½ € — ünïcödé';

describe('Postfix <-> ferrymail (plain SMTP)', { timeout: 50_000 }, () => {
  let p: Pair;
  before(async () => {
    if (skip) return; // hooks run even when every test is skipped
    p = await startPair(false);
  });
  after(async () => {
    await p?.close();
  });

  it(
    'Postfix relays into ferrymail: one Maildir message per recipient, 8-bit intact, local-part case kept',
    { skip },
    async () => {
      const rcpts = ['Alice@fm.test', 'bob@fm.test', 'CAROL@fm.test'];
      const body = `Subject: eight bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${UTF8_LINE}\r\n`;
      await dialog(p.pf.port, [
        [null, /^220 /],
        ['EHLO client.test', /^250[ -]/],
        ['MAIL FROM:<sender@client.test> BODY=8BITMIME', /^250 /],
        ...rcpts.map((r) => [`RCPT TO:<${r}>`, /^250 /] as const),
        ['DATA', /^354 /],
        [Buffer.from(body + '.\r\n', 'utf8').toString('latin1'), /^250 /],
        ['QUIT', /^221 /],
      ]);
      for (const r of rcpts) {
        const [user = '', domain = ''] = r.split('@');
        const [file] = await waitForFile(path.join(p.fm.maildir(domain, user), 'new'), 1, 15_000);
        const bytes = await readFile(file ?? '');
        const text = bytes.toString('utf8');
        assert.ok(bytes.includes(Buffer.from(UTF8_LINE, 'utf8')), `8-bit body intact for ${r}`);
        assert.match(text, /^Subject: eight bit\r?$/m);
        assert.match(
          text,
          new RegExp(`^Delivered-To: ${r.replace('.', '\\.')}\\r?$`, 'm'),
          'Delivered-To keeps the case',
        );
        assert.match(text, /^Return-Path: <sender@client\.test>\r?$/m);
      }
      const log = await p.pf.waitForLog(/to=<CAROL@fm\.test>.*status=sent/);
      assert.match(log, /to=<Alice@fm\.test>.*status=sent/);
    },
  );

  it('Postfix relays an SMTPUTF8 message with a UTF-8 local part into ferrymail', { skip }, async () => {
    const rcpt = 'José.Ünal@fm.test';
    const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
    await dialog(p.pf.port, [
      [null, /^220 /],
      ['EHLO client.test', /SMTPUTF8/],
      ['MAIL FROM:<sender@client.test> SMTPUTF8 BODY=8BITMIME', /^250 /],
      [wire(`RCPT TO:<${rcpt}>\r\n`), /^250 /],
      ['DATA', /^354 /],
      [wire(`Subject: Grüße\r\nTo: ${rcpt}\r\n\r\nunicode all the way\r\n.\r\n`), /^250 /],
      ['QUIT', /^221 /],
    ]);
    await p.pf.waitForLog(/to=<José\.Ünal@fm\.test>.*status=sent/);
    const files = await waitForFile(path.join(p.fm.dataDir, 'mail', 'fm.test', '*', 'new'), 1, 15_000);
    const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    const mine = texts.find((x) => x.includes('unicode all the way'));
    assert.ok(mine, `delivered: ${files.join(', ')}`);
    assert.match(mine, /^Delivered-To: José\.Ünal@fm\.test\r?$/m);
    assert.match(mine, /^Subject: Grüße\r?$/m);
  });

  it('ferrymail relays into Postfix: both recipients in one transaction', { skip }, async () => {
    const r = await swaksSend({
      port: p.fm.port,
      to: ['bob@pf.test', 'Carol@pf.test'],
      subject: 'to postfix',
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    for (const user of ['bob', 'carol']) {
      const [file] = await waitForFile(path.join(p.pf.maildir(user), 'new'), 1, 15_000);
      const text = await readFile(file ?? '', 'utf8');
      assert.match(text, /^Subject: to postfix$/m);
      assert.match(text, /^Return-Path: <sender@client\.test>$/m);
    }
    const log = await p.pf.waitForLog(/to=<Carol@pf\.test>, relay=virtual.*status=sent/);
    // One Postfix queue file per received transaction: both recipients share its id.
    const idOf = (rcpt: string) => new RegExp(`(\\w+): to=<${rcpt}>, relay=virtual`).exec(log)?.[1];
    assert.ok(idOf('bob@pf\\.test'), log);
    assert.equal(idOf('bob@pf\\.test'), idOf('Carol@pf\\.test'), 'one transaction for both recipients');
  });

  it('a recipient Postfix refuses comes back to the sender as a DSN in ferrymail', { skip }, async () => {
    const r = await swaksSend({
      port: p.fm.port,
      from: 'dora@fm.test',
      to: 'nosuch@pf.test',
      subject: 'will bounce',
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    await p.pf.waitForLog(/reject: RCPT from [^\n]*<nosuch@pf\.test>/);
    const [file] = await waitForFile(path.join(p.fm.maildir('fm.test', 'dora'), 'new'), 1, 15_000);
    const text = await readFile(file ?? '', 'utf8');
    assert.match(text, /nosuch@pf\.test/);
    assert.match(text, /5\.1\.1/);
    assert.match(text, /^Return-Path: <>\r?$/m);
  });
});

describe('Postfix <-> ferrymail (STARTTLS both ways)', { timeout: 50_000 }, () => {
  let p: Pair;
  before(async () => {
    if (skip) return; // hooks run even when every test is skipped
    p = await startPair(true);
  });
  after(async () => {
    await p?.close();
  });

  it('Postfix uses STARTTLS when relaying into ferrymail', { skip }, async () => {
    const r = await swaksSend({ port: p.pf.port, to: 'erin@fm.test', subject: 'tls into ferrymail' });
    assert.equal(r.code, 0, swaksTranscript(r));
    await waitForFile(path.join(p.fm.maildir('fm.test', 'erin'), 'new'), 1, 15_000);
    await p.pf.waitForLog(/TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]/);
  });

  it('ferrymail uses STARTTLS when relaying into Postfix', { skip }, async () => {
    const r = await swaksSend({ port: p.fm.port, to: 'dave@pf.test', subject: 'tls into postfix' });
    assert.equal(r.code, 0, swaksTranscript(r));
    await waitForFile(path.join(p.pf.maildir('dave'), 'new'), 1, 15_000);
    await p.pf.waitForLog(/TLS connection established from localhost\[127\.0\.0\.1\]/);
  });
});

describe('ferrymail queue -> Postfix across a crash', { timeout: 50_000 }, () => {
  it(
    'mail accepted while Postfix is down survives kill -9 and reaches Postfix exactly once',
    { skip },
    async (t) => {
      const pfPort = await freePort();
      const fm = await startFerrymail({
        config: {
          domains: { local: ['fm.test'] },
          relay: { networks: ['127.0.0.1/32'] },
          routes: { 'pf.test': `127.0.0.1:${pfPort}` },
        },
      });
      t.after(() => fm.close());
      const r = await swaksSend({ port: fm.port, to: ['bob@pf.test', 'carol@pf.test'], subject: 'held' });
      assert.equal(r.code, 0, swaksTranscript(r));

      await fm.kill9();
      await fm.restart();
      const pf = await startPostfix({ port: pfPort });
      t.after(() => pf.close());
      const flush = await fm.cli(['queue', 'flush']);
      assert.equal(flush.code, 0, `queue flush: ${flush.stdout}${flush.stderr}`);

      for (const user of ['bob', 'carol']) {
        await waitForFile(path.join(pf.maildir(user), 'new'), 1, 20_000);
      }
      // A duplicate would show up as a second delivery in Postfix's log shortly after.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const log = await pf.maillog();
      assert.equal(log.match(/to=<bob@pf\.test>, relay=virtual.*status=sent/g)?.length, 1, log);
      assert.equal(log.match(/to=<carol@pf\.test>, relay=virtual.*status=sent/g)?.length, 1, log);
    },
  );
});
