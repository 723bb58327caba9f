import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { decodePickupFile } from '../../src/cli/pickup.js';
import { readInput } from '../../src/cli/read-input.js';
import {
  checkAddress,
  parseAddressList,
  formatRfc5322Date,
  splitMessage,
  toCrlf,
} from '../../src/cli/rfc5322.js';
import { prepareMessage, runSendmail, type PrepareOptions } from '../../src/cli/sendmail.js';

const prep: PrepareOptions = {
  extractRecipients: false,
  sender: 'me@x.test',
  fallbackFrom: 'me@x.test',
  hostname: 'h.test',
  now: Date.UTC(2026, 11, 4, 21, 7, 1),
  tzOffsetMinutes: 0,
  unique: 'u1',
};

describe('rfc5322 helpers', () => {
  it('toCrlf turns LF and bare CR into CRLF and ends with CRLF', () => {
    assert.equal(toCrlf(Buffer.from('a\nb\r\nc\rd')).toString(), 'a\r\nb\r\nc\r\nd\r\n');
    assert.equal(toCrlf(Buffer.from('')).toString(), '');
  });

  it('parseAddressList reads names, comments, quotes and groups', () => {
    assert.deepEqual(parseAddressList('a@x.test'), ['a@x.test']);
    assert.deepEqual(parseAddressList('"Doe, John" <j@x.test>, k@y.test (Kay)'), ['j@x.test', 'k@y.test']);
    assert.deepEqual(parseAddressList('Team: a@x.test, b@x.test;, c@y.test'), [
      'a@x.test',
      'b@x.test',
      'c@y.test',
    ]);
    assert.deepEqual(parseAddressList('undisclosed-recipients:;'), []);
    assert.deepEqual(parseAddressList('<@relay.test:u@x.test>'), ['u@x.test']);
    assert.deepEqual(parseAddressList('"a b"@x.test'), ['"a b"@x.test']);
    assert.deepEqual(parseAddressList('Joe (the (nested) one) <joe@x.test>'), ['joe@x.test']);
  });

  it('checkAddress qualifies bare names and rejects junk', () => {
    assert.equal(checkAddress('root', 'localhost'), 'root@localhost');
    assert.equal(checkAddress('a.b+c@Example.TEST', 'l'), 'a.b+c@Example.TEST');
    assert.equal(checkAddress('"x y"@x.test', 'l'), '"x y"@x.test');
    assert.equal(checkAddress('u@[192.0.2.1]', 'l'), 'u@[192.0.2.1]');
    assert.equal(checkAddress('jörg@bücher.example', 'l'), 'jörg@bücher.example');
    for (const bad of [
      'a b@x.test',
      'a@',
      '@x.test',
      'a@x..test',
      'a@-x.test',
      '',
      'a@[300.0.0.1]',
      'a..b@x.test',
    ]) {
      assert.equal(checkAddress(bad, 'l'), undefined, bad);
    }
  });

  it('dates look like RFC 5322', () => {
    assert.equal(formatRfc5322Date(prep.now, 0), 'Fri, 04 Dec 2026 21:07:01 +0000');
    assert.equal(formatRfc5322Date(prep.now, -330), 'Fri, 04 Dec 2026 15:37:01 -0530');
  });

  it('splitMessage keeps folded fields whole', () => {
    const s = splitMessage('Subject: a\r\n b\r\nTo: x@y\r\n\r\nbody\r\n');
    assert.deepEqual(
      s.fields.map((f) => f.raw),
      ['Subject: a\r\n b\r\n', 'To: x@y\r\n'],
    );
    assert.equal(s.body, 'body\r\n');
  });
});

describe('prepareMessage', () => {
  it('-t takes To, Cc and Bcc, and removes Bcc (folded lines too)', () => {
    const raw =
      'To: Bob <bob@x.test>\nCc: c@x.test\nBcc: hidden@x.test,\n  also@x.test\nSubject: s\n\nbody\n';
    const p = prepareMessage(Buffer.from(raw), { ...prep, extractRecipients: true });
    assert.deepEqual(p.headerRecipients, ['bob@x.test', 'c@x.test', 'hidden@x.test', 'also@x.test']);
    const text = p.message.toString('latin1');
    assert.doesNotMatch(text, /hidden|also@|^Bcc/im);
    assert.match(text, /^To: Bob <bob@x\.test>\r\nCc: c@x\.test\r\nSubject: s\r\n/);
    assert.ok(text.endsWith('\r\n\r\nbody\r\n'));
  });

  it('Resent- fields win when present', () => {
    const raw = 'To: old@x.test\nResent-To: new@x.test\nResent-Bcc: secret@x.test\n\nb\n';
    const p = prepareMessage(Buffer.from(raw), { ...prep, extractRecipients: true });
    assert.deepEqual(p.headerRecipients, ['new@x.test', 'secret@x.test']);
    assert.doesNotMatch(p.message.toString(), /secret/);
  });

  it('without -t no header is read for recipients, but Bcc is still removed', () => {
    const p = prepareMessage(Buffer.from('To: a@x.test\nBcc: b@x.test\n\nhi\n'), prep);
    assert.deepEqual(p.headerRecipients, []);
    assert.doesNotMatch(p.message.toString(), /Bcc/);
  });

  it('adds From, Date and Message-ID when missing', () => {
    const p = prepareMessage(Buffer.from('Subject: x\n\nhi\n'), { ...prep, fullName: 'Jo Doe' });
    assert.equal(
      p.message.toString(),
      'Subject: x\r\nFrom: Jo Doe <me@x.test>\r\nDate: Fri, 04 Dec 2026 21:07:01 +0000\r\nMessage-ID: <u1@h.test>\r\n\r\nhi\r\n',
    );
  });

  it('keeps From, Date and Message-ID that are there', () => {
    const raw = 'from: a@b.test\nDATE: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-Id: <x@y>\n\nhi\n';
    const p = prepareMessage(Buffer.from(raw), prep);
    assert.equal(p.message.toString(), raw.replace(/\n/g, '\r\n'));
  });

  it('a message with no header gets ours and a blank line before its text', () => {
    const p = prepareMessage(Buffer.from('just text\nmore\n'), prep);
    assert.match(
      p.message.toString(),
      /^From: me@x\.test\r\nDate: .*\r\nMessage-ID: <u1@h\.test>\r\n\r\njust text\r\nmore\r\n$/,
    );
  });

  it('quotes or encodes a full name that needs it, and drops an mbox From_ line', () => {
    const p1 = prepareMessage(Buffer.from('From me Thu Jan 1\nSubject: x\n\nb\n'), {
      ...prep,
      fullName: 'Doe, Jo',
    });
    assert.match(p1.message.toString(), /^Subject: x\r\nFrom: "Doe, Jo" <me@x\.test>\r\n/);
    const p2 = prepareMessage(Buffer.from('\nb\n'), { ...prep, fullName: 'Jörg' });
    assert.match(p2.message.toString(), /^From: =\?UTF-8\?B\?SsO2cmc=\?= <me@x\.test>\r\n/);
  });

  it('8-bit bytes pass through unchanged', () => {
    const body = Buffer.from([0x53, 0x3a, 0x20, 0xe9, 0x0a, 0x0a, 0xff, 0xfe, 0x0a]);
    const p = prepareMessage(body, prep);
    assert.ok(p.message.includes(Buffer.from([0xff, 0xfe, 0x0d, 0x0a])));
    assert.ok(p.message.includes(Buffer.from([0x53, 0x3a, 0x20, 0xe9, 0x0d, 0x0a])));
  });
});

describe('readInput', () => {
  const read = (chunks: string[], ignoreDots: boolean, maxBytes = 1000) =>
    readInput(Readable.from(chunks.map((c) => Buffer.from(c))), { ignoreDots, maxBytes });

  it('without -i a lone dot line ends the input', async () => {
    assert.deepEqual(await read(['a\n.\nb\n'], false), { ok: true, data: Buffer.from('a\n') });
    assert.deepEqual(await read(['a\r\n.\r\nb\r\n'], false), { ok: true, data: Buffer.from('a\r\n') });
    assert.deepEqual(await read(['.\nb\n'], false), { ok: true, data: Buffer.from('') });
    assert.deepEqual(await read(['a\n', '.', '\n', 'b'], false), { ok: true, data: Buffer.from('a\n') });
    assert.deepEqual(await read(['a\n.'], false), { ok: true, data: Buffer.from('a\n') });
  });

  it('dots that are not alone on their line are text', async () => {
    assert.deepEqual(await read(['a\n..\n.b\n x.\n'], false), {
      ok: true,
      data: Buffer.from('a\n..\n.b\n x.\n'),
    });
  });

  it('with -i only the end of input ends it', async () => {
    assert.deepEqual(await read(['a\n.\nb\n'], true), { ok: true, data: Buffer.from('a\n.\nb\n') });
  });

  it('stops reading at the dot without waiting for end of input', async () => {
    const s = new PassThrough();
    s.write('hello\n.\n');
    const r = await readInput(s, { ignoreDots: false, maxBytes: 100 });
    assert.deepEqual(r, { ok: true, data: Buffer.from('hello\n') });
    s.destroy();
  });

  it('too big', async () => {
    assert.deepEqual(await read(['x'.repeat(50), 'y'.repeat(60)], true, 100), { ok: false, tooBig: true });
  });
});

describe('runSendmail', () => {
  let dir = '';
  let config = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferrymail-sendmail-'));
    config = join(dir, 'ferrymail.toml');
    await writeFile(
      config,
      'hostname = "mx.example.test"\ndata_dir = "data"\n[domains]\nlocal = ["example.test"]\n[limits]\nmax_message_size = 2048\n',
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function io(input: string | Buffer): CliIo & { out: string; err: string } {
    const r = {
      out: '',
      err: '',
      stdin: Readable.from([Buffer.from(input)]),
      stdout: { write: (s: string) => (r.out += s) },
      stderr: { write: (s: string) => (r.err += s) },
      env: { LOGNAME: 'cron' },
      cwd: dir,
      now: () => 1_700_000_000_000,
    };
    return r;
  }
  const noQueue = async () => 99;

  async function pickupFiles(): Promise<{ header: unknown; message: string }[]> {
    const newDir = join(dir, 'data', 'pickup', 'new');
    const names = (await readdir(newDir).catch(() => [])).sort();
    const out = [];
    for (const n of names) {
      const d = decodePickupFile(await readFile(join(newDir, n)));
      assert.ok(!('error' in d));
      out.push({ header: d.header, message: d.message.toString() });
      await rm(join(newDir, n));
    }
    return out;
  }

  it('queues to the pickup folder with a qualified sender and recipient', async () => {
    const x = io('Subject: cron\n\noutput\n');
    assert.equal(await runSendmail(['-c', config, 'root'], x, noQueue), 0);
    assert.equal(x.err, '');
    assert.equal(x.out, '');
    const files = await pickupFiles();
    assert.equal(files.length, 1);
    assert.deepEqual(files[0]?.header, {
      v: 1,
      sender: 'cron@example.test',
      recipients: ['root@example.test'],
      receivedAt: 1_700_000_000_000,
      user: 'cron',
    });
    assert.match(
      files[0]?.message ?? '',
      /^Subject: cron\r\nFrom: cron@example\.test\r\nDate: .*\r\nMessage-ID: <.*@mx\.example\.test>\r\n\r\noutput\r\n$/,
    );
  });

  it('-t with Bcc: recipients from headers, Bcc gone, duplicates merged', async () => {
    const x = io('To: a@x.test\nBcc: b@x.test\n\nhi\n');
    assert.equal(await runSendmail(['-c', config, '-t', '-f', 'me@x.test', 'a@x.test'], x, noQueue), 0);
    const [f] = await pickupFiles();
    assert.deepEqual((f?.header as { recipients: string[] }).recipients, ['a@x.test', 'b@x.test']);
    assert.equal((f?.header as { sender: string }).sender, 'me@x.test');
    assert.doesNotMatch(f?.message ?? '', /Bcc/);
  });

  it('-f <> queues with the null sender', async () => {
    assert.equal(await runSendmail(['-c', config, '-f', '<>', 'a@x.test'], io('hi\n'), noQueue), 0);
    const [f] = await pickupFiles();
    assert.equal((f?.header as { sender: string }).sender, '');
  });

  it('no recipients: exit 64 with the sentence', async () => {
    const x = io('Subject: x\n\nhi\n');
    assert.equal(await runSendmail(['-c', config], x, noQueue), 64);
    assert.equal(x.err, 'sendmail: no recipients given (use -t or name them as arguments)\n');
    assert.deepEqual(await pickupFiles(), []);
  });

  it('malformed recipient or sender: exit 65 naming it', async () => {
    const x = io('hi\n');
    assert.equal(await runSendmail(['-c', config, 'bad address@x.test'], x, noQueue), 65);
    assert.equal(x.err, 'sendmail: malformed recipient address "bad address@x.test"\n');
    const y = io('To: ok@x.test, not@valid@@\n\nhi\n');
    assert.equal(await runSendmail(['-c', config, '-t'], y, noQueue), 65);
    assert.match(y.err, /malformed recipient address "not@valid@@"/);
    const z = io('hi\n');
    assert.equal(await runSendmail(['-c', config, '-f', 'a b', 'x@y.test'], z, noQueue), 65);
    assert.match(z.err, /malformed sender address "a b"/);
  });

  it('too big: exit 65 naming the limit', async () => {
    const x = io('x'.repeat(3000));
    assert.equal(await runSendmail(['-c', config, 'a@x.test'], x, noQueue), 65);
    assert.match(x.err, /limits\.max_message_size/);
  });

  it('usage and config errors: 64 and 78', async () => {
    const x = io('');
    assert.equal(await runSendmail(['-Z'], x, noQueue), 64);
    assert.match(x.err, /^sendmail: unknown option -Z/);
    const y = io('');
    assert.equal(await runSendmail(['-c', join(dir, 'missing.toml'), 'a@x.test'], y, noQueue), 78);
    assert.match(y.err, /missing\.toml: cannot read the config file/);
  });

  it('-bp and -q hand over to the queue command', async () => {
    const seen: string[][] = [];
    const q = async (a: string[]) => {
      seen.push(a);
      return 0;
    };
    assert.equal(await runSendmail(['-c', config, '-bp'], io(''), q), 0);
    assert.equal(await runSendmail(['-c', config, '-q'], io(''), q), 0);
    assert.deepEqual(seen, [['list'], ['flush']]);
  });
});
