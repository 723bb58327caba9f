/**
 * Two ferrymail hosts in one process: A relays to B by a [routes] entry. Checks the SMTP model's
 * promises end to end: one transaction (one copy of the data) per destination host, byte-exact
 * relay with local-part case kept, and a permanent refusal at B coming back to the sender as a
 * proper RFC 3464 DSN in A's Maildir.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { parseConfig } from '../../src/config/load.js';
import { startApp, type App } from '../../src/main.js';
import { createLogger } from '../../src/lib/log.js';
import { Raw } from '../receiver/harness.js';
import { freePort } from '../helpers/proc.js';

let dir: string;
let a: App;
let b: App;
const bLog: Record<string, unknown>[] = [];

function capture(into: Record<string, unknown>[]) {
  return createLogger({
    level: 'info',
    format: 'json',
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l) into.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  });
}

async function files(d: string, n: number, ms = 10_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const f = existsSync(d) ? readdirSync(d).map((x) => join(d, x)) : [];
    if (f.length >= n || Date.now() > deadline) return f;
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrymail-relay-'));
  const bPort = await freePort();
  b = await startApp(
    parseConfig(
      `hostname = "b.example.test"
data_dir = "b"
[[listeners]]
address = "127.0.0.1:${bPort}"
mode = "mx"
[domains]
local = ["b.test"]
[users]
list = ["alice", "bob", "carol"]
`,
      'b.toml',
      dir,
    ),
    { logger: capture(bLog) },
  );
  a = await startApp(
    parseConfig(
      `hostname = "a.example.test"
data_dir = "a"
[[listeners]]
address = "127.0.0.1:0"
mode = "mx"
[domains]
local = ["a.test"]
[relay]
networks = ["127.0.0.1/32"]
[routes]
"b.test" = "127.0.0.1:${bPort}"
`,
      'a.toml',
      dir,
    ),
    { logger: createLogger({ level: 'silent' }) },
  );
});

after(async () => {
  await a.stop(100);
  await b.stop(100);
  rmSync(dir, { recursive: true, force: true });
});

async function send(port: number, from: string, to: string[], body: string): Promise<string> {
  const c = await Raw.connect(port);
  await c.reply();
  await c.cmd('EHLO sender.test');
  assert.match(await c.cmd(`MAIL FROM:<${from}>`), /^250/);
  for (const t of to) assert.match(await c.cmd(`RCPT TO:<${t}>`), /^250/);
  assert.match(await c.cmd('DATA'), /^354/);
  c.send(body + '.\r\n'); // body ends with CRLF
  const r = await c.reply();
  await c.cmd('QUIT');
  c.end();
  return r;
}

test('three recipients on one host travel as one transaction, byte-exact, case kept', async () => {
  const body = 'Subject: relay test\r\nX-Check: 1\r\n\r\n..dot line\r\nsecond line\r\n';
  const r = await send(
    a.listeners[0]!.port,
    'sender@a.test',
    ['Alice@b.test', 'BOB@b.test', 'carol@B.TEST'],
    body,
  );
  assert.match(r, /^250 /);
  const mails = [
    ...(await files(join(dir, 'b/mail/b.test/alice/new'), 1)),
    ...(await files(join(dir, 'b/mail/b.test/bob/new'), 1)),
    ...(await files(join(dir, 'b/mail/b.test/carol/new'), 1)),
  ];
  assert.equal(mails.length, 3);
  const accepted = bLog.filter((l) => l.msg === 'accepted');
  assert.equal(accepted.length, 1, 'B saw exactly one message (one transaction)');
  assert.equal(accepted[0]!.rcpts, 3);
  const text = readFileSync(mails[0]!, 'latin1');
  assert.match(
    text,
    /^Return-Path: <sender@a\.test>\r\nDelivered-To: Alice@b\.test\r\nReceived: from a\.example\.test /,
  );
  // Two Received headers (B's then A's), then the exact original bytes.
  assert.ok(text.endsWith('\r\nSubject: relay test\r\nX-Check: 1\r\n\r\n.dot line\r\nsecond line\r\n'), text);
  assert.equal((text.match(/^Received: /gm) ?? []).length, 2);
  // The delivery log line follows the Maildir write: wait for it rather than race it.
  const deadline = Date.now() + 5000;
  while (bLog.filter((l) => l.msg === 'delivery').length < 3 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const delivered = bLog.filter((l) => l.msg === 'delivery').map((l) => l.to);
  assert.deepEqual(new Set(delivered), new Set(['Alice@b.test', 'BOB@b.test', 'carol@B.TEST']));
});

test('a recipient refused by B comes back to the sender as a DSN', async () => {
  const r = await send(
    a.listeners[0]!.port,
    'sender@a.test',
    ['nobody@b.test', 'alice@b.test'],
    'Subject: will bounce\r\n\r\nx\r\n',
  );
  assert.match(r, /^250 /);
  const [dsnFile] = await files(join(dir, 'a/mail/a.test/sender/new'), 1);
  assert.ok(dsnFile, 'a DSN arrived in the sender mailbox');
  const raw = readFileSync(dsnFile);
  assert.match(raw.toString('latin1'), /^Return-Path: <>\r\n/);
  const mail = await simpleParser(raw);
  assert.match(
    String(mail.headers.get('content-type') && (mail.headers.get('content-type') as { value: string }).value),
    /multipart\/report/,
  );
  const text = raw.toString('latin1');
  assert.match(text, /report-type=delivery-status/);
  assert.match(text, /Final-Recipient: rfc822; ?nobody@b\.test/);
  assert.match(text, /Action: failed/);
  assert.match(text, /Status: 5\.1\.1/);
  assert.match(text, /Remote-MTA: dns; ?/);
  assert.match(text, /Diagnostic-Code: smtp; ?550 5\.1\.1/);
  assert.doesNotMatch(text, /Final-Recipient: rfc822; ?alice@b\.test/);
});
