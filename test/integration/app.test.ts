/**
 * End to end in one process: the real app (queue on disk, scheduler, Maildir) on an ephemeral
 * loopback port, fed by clients nobody here wrote: nodemailer and Python's smtplib.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { parseConfig } from '../../src/config/load.js';
import { startApp, type App } from '../../src/main.js';
import { createLogger } from '../../src/lib/log.js';

let dir: string;
let app: App;
let port: number;

async function waitForFiles(d: string, n: number, ms = 8000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const files = existsSync(d) ? readdirSync(d) : [];
    if (files.length >= n || Date.now() > deadline) return files.map((f) => join(d, f));
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrymail-app-'));
  const config = parseConfig(
    `hostname = "mx.example.test"
data_dir = "var"
[[listeners]]
address = "127.0.0.1:0"
mode = "mx"
[domains]
local = ["example.test"]
`,
    'test.toml',
    dir,
  );
  app = await startApp(config, { logger: createLogger({ level: 'silent' }) });
  port = app.listeners[0]!.port;
});

after(async () => {
  await app.stop(100);
  rmSync(dir, { recursive: true, force: true });
});

test('nodemailer delivers to two local Maildirs, case and bytes kept', async () => {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  const info = await t.sendMail({
    envelope: { from: 'sender@client.test', to: ['Alice@example.test', 'bob+news@EXAMPLE.test'] },
    from: 'sender@client.test',
    to: 'Alice@example.test, bob+news@EXAMPLE.test',
    subject: 'hello from nodemailer',
    text: 'line one\n.line starting with a dot\nthe end\n',
  });
  assert.match(info.response, /^250 2\.0\.0 Ok: queued as [0-9A-Z]{14}/);
  const [a] = await waitForFiles(join(dir, 'var/mail/example.test/alice/new'), 1);
  const [b] = await waitForFiles(join(dir, 'var/mail/example.test/bob/new'), 1);
  assert.ok(a && b, 'both mailboxes got the message');
  const ta = readFileSync(a, 'utf8');
  const tb = readFileSync(b, 'utf8');
  assert.match(
    ta,
    /^Return-Path: <sender@client\.test>\r\nDelivered-To: Alice@example\.test\r\nReceived: from /,
  );
  assert.match(tb, /^Return-Path: <sender@client\.test>\r\nDelivered-To: bob\+news@example\.test\r\n/);
  assert.match(ta, /\r\n\.line starting with a dot\r\n/);
  assert.match(ta, /Subject: hello from nodemailer/);
  t.close();
});

test('Python smtplib sends to a local user', async () => {
  const py = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${port}, local_hostname='py.client.test', timeout=10)
s.ehlo()
r = s.sendmail('py@client.test', ['carol@example.test'], b'Subject: from python\\r\\n\\r\\nhi\\r\\n')
code, msg = s.noop()
s.quit()
print('ok', r, code)
`;
  // Async: the server runs in this process, so a blocking spawn would starve it.
  const r = await promisify(execFile)('python3', ['-c', py], { encoding: 'utf8', timeout: 15000 });
  assert.match(r.stdout, /^ok \{\} 250/);
  const [f] = await waitForFiles(join(dir, 'var/mail/example.test/carol/new'), 1);
  assert.ok(f);
  assert.match(readFileSync(f, 'utf8'), /Subject: from python/);
});

test('queue is empty once everything is delivered', async () => {
  const deadline = Date.now() + 5000;
  while ((await app.store.list()).length > 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 25));
  assert.equal((await app.store.list()).length, 0);
});
