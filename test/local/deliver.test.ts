import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { LocalTransport, expandRecipient } from '../../src/local/deliver.js';
import { MaildirWriter } from '../../src/local/maildir.js';
import { LocalUsers } from '../../src/policy/users.js';
import { DomainPolicy } from '../../src/policy/domains.js';
import type { DeliveryRequest } from '../../src/delivery/types.js';
import type { Envelope } from '../../src/queue/types.js';
import { faultyFs, withTempDir, listMaildir } from './fakes.js';

const domains = new DomainPolicy({ local: ['example.test', 'bücher.example'], relay: [] });
const users = new LocalUsers({ aliases: { sales: ['alice', 'bob@remote.test'] } }, domains);

const MESSAGE = Buffer.concat([
  Buffer.from('Received: from client.test by mx.example.test; Fri, 4 Dec 2026 21:00:00 +0000\r\n'),
  Buffer.from('From: <sender@remote.test>\r\nSubject: hello\r\n\r\n'),
  Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0d, 0x0a, 0x2e, 0x2e, 0x0d, 0x0a, 0x00, 0xff, 0x0d, 0x0a]),
]);

function request(addresses: string[], sender = 'sender@remote.test'): DeliveryRequest {
  const envelope: Envelope = {
    id: 'Q1',
    sender,
    recipients: addresses.map((address) => ({ address })),
    receivedAt: 0,
    body: '8BITMIME',
    smtputf8: true,
  };
  return { envelope, recipients: addresses.map((address, index) => ({ index, address })), message: MESSAGE };
}

test('each recipient gets Return-Path + Delivered-To + the exact stored bytes', () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    const out = await t.deliver({ kind: 'local' }, request(['Alice+News@Example.TEST', 'bob@example.test']));
    assert.deepEqual(out, [
      { index: 0, result: 'delivered', reply: '250 2.0.0 delivered to maildir', status: '2.0.0' },
      { index: 1, result: 'delivered', reply: '250 2.0.0 delivered to maildir', status: '2.0.0' },
    ]);
    for (const [user, rcpt] of [
      ['alice', 'Alice+News@Example.TEST'],
      ['bob', 'bob@example.test'],
    ] as const) {
      const md = join(root, 'example.test', user);
      const l = await listMaildir(md);
      assert.deepEqual(l.tmp, []);
      assert.equal(l.new.length, 1);
      const bytes = await readFile(join(md, 'new', l.new[0] ?? ''));
      const head = Buffer.from(`Return-Path: <sender@remote.test>\r\nDelivered-To: ${rcpt}\r\n`);
      assert.deepEqual(bytes, Buffer.concat([head, MESSAGE]));
    }
  }));

test('two recipients with one mailbox get two files; the body buffer is shared, not copied', () =>
  withTempDir(async (root) => {
    const seen: Uint8Array[][] = [];
    class SpyWriter extends MaildirWriter {
      override deliver(domain: string, user: string, parts: readonly Uint8Array[]): Promise<string> {
        seen.push([...parts]);
        return super.deliver(domain, user, parts);
      }
    }
    const req = request(['carol@example.test', 'Carol+x@example.test']);
    const t = new LocalTransport({ writer: new SpyWriter({ root }), users });
    const out = await t.deliver({ kind: 'local' }, req);
    assert.deepEqual(
      out.map((o) => o.result),
      ['delivered', 'delivered'],
    );
    assert.equal((await listMaildir(join(root, 'example.test', 'carol'))).new.length, 2);
    assert.equal(seen.length, 2);
    for (const parts of seen) assert.equal(parts[1], req.message);
  }));

test('null reverse-path and UTF-8 recipients', () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    const out = await t.deliver({ kind: 'local' }, request(['Ünïcode@Bücher.example'], ''));
    assert.equal(out[0]?.result, 'delivered');
    const md = join(root, 'xn--bcher-kva.example', 'ünïcode');
    const l = await listMaildir(md);
    const text = await readFile(join(md, 'new', l.new[0] ?? ''), 'utf8');
    assert.ok(text.startsWith('Return-Path: <>\r\nDelivered-To: Ünïcode@Bücher.example\r\nReceived: '));
  }));

const fsFailures: [code: string, result: string, reply: string][] = [
  ['ENOSPC', 'deferred', '452 4.3.1 insufficient system storage'],
  ['EDQUOT', 'deferred', '452 4.2.2 mailbox full'],
  ['EIO', 'deferred', '451 4.3.0 local delivery failed (EIO), will retry'],
  ['EACCES', 'deferred', '451 4.3.0 local delivery failed (EACCES), will retry'],
];
for (const [code, result, reply] of fsFailures) {
  test(`a write failing with ${code} is ${result} (${reply}) and leaves tmp/ empty`, () =>
    withTempDir(async (root) => {
      const writer = new MaildirWriter({ root, fs: faultyFs({ at: 'write', code }) });
      const t = new LocalTransport({ writer, users });
      const out = await t.deliver({ kind: 'local' }, request(['alice@example.test']));
      assert.deepEqual(out, [{ index: 0, result, reply, status: reply.split(' ')[1] }]);
      assert.deepEqual(await listMaildir(join(root, 'example.test', 'alice')), { tmp: [], new: [], cur: [] });
    }));
}

test('one failing recipient does not stop the others', () =>
  withTempDir(async (root) => {
    const writer = new MaildirWriter({ root, fs: faultyFs({ at: 'write', code: 'ENOSPC', times: 1 }) });
    const t = new LocalTransport({ writer, users });
    const out = await t.deliver(
      { kind: 'local' },
      request(['alice@example.test', '"../x"@example.test', 'bob@example.test']),
    );
    // Mailboxes are written in parallel, so which of alice and bob meets the one failing write
    // is not fixed: exactly one of them is deferred, the other delivered, the bad name fails.
    const got = out.map((o) => [o.index, o.result, o.status]);
    assert.deepEqual(got[1], [1, 'failed', '5.1.3']);
    const others = [got[0], got[2]].map((g) => `${g?.[1]} ${g?.[2]}`).sort();
    assert.deepEqual(others, ['deferred 4.3.1', 'delivered 2.0.0']);
    assert.deepEqual([got[0]?.[0], got[2]?.[0]], [0, 2]);
  }));

test('bad mailbox names and unparseable addresses fail permanently with 5.1.3', () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    const bad = [
      '".."@example.test',
      'a/b@example.test',
      '".hidden"@example.test',
      'not an address',
      'x@example.test\r\nBcc: y',
      '',
    ];
    const out = await t.deliver({ kind: 'local' }, request(bad));
    for (const o of out) {
      assert.equal(o.result, 'failed');
      assert.equal(o.status, '5.1.3');
      assert.match(o.reply, /^550 5\.1\.3 /);
    }
    assert.deepEqual(await listMaildir(root).catch(() => null), null); // nothing was created
  }));

test('a bare Postmaster recipient goes to the postmaster of postmasterDomain', () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({
      writer: new MaildirWriter({ root }),
      users,
      postmasterDomain: 'example.test',
    });
    const out = await t.deliver({ kind: 'local' }, request(['Postmaster']));
    assert.equal(out[0]?.result, 'delivered');
    const md = join(root, 'example.test', 'postmaster');
    const l = await listMaildir(md);
    const text = await readFile(join(md, 'new', l.new[0] ?? ''), 'utf8');
    assert.ok(text.startsWith('Return-Path: <sender@remote.test>\r\nDelivered-To: Postmaster\r\n'));
    assert.deepEqual(t.expandRecipient('postmaster'), ['postmaster@example.test']);
    const without = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    assert.equal((await without.deliver({ kind: 'local' }, request(['postmaster'])))[0]?.status, '5.1.3');
  }));

test('a sender with a line break never reaches a header', () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    const out = await t.deliver({ kind: 'local' }, request(['alice@example.test'], 'a@b.test>\r\nX-Evil: 1'));
    assert.equal(out[0]?.result, 'failed');
    assert.equal(out[0]?.status, '5.1.7');
  }));

test('a hop that is not local is a programming error', async () => {
  const t = new LocalTransport({ writer: new MaildirWriter({ root: '/nonexistent' }), users });
  await assert.rejects(
    t.deliver({ kind: 'lmtp', key: 'lmtp:x' }, request(['alice@example.test'])),
    TypeError,
  );
});

test('expandRecipient resolves aliases for the dispatcher', () => {
  assert.deepEqual(expandRecipient(users, 'sales@example.test'), ['alice@example.test', 'bob@remote.test']);
  assert.deepEqual(expandRecipient(users, 'Alice@Example.TEST'), ['Alice@Example.TEST']);
  assert.deepEqual(expandRecipient(users, 'garbage'), ['garbage']);
  const t = new LocalTransport({ writer: new MaildirWriter({ root: '/nonexistent' }), users });
  assert.deepEqual(t.expandRecipient('SALES+x@example.test'), ['alice@example.test', 'bob@remote.test']);
});

test("Python's mailbox module reads the Maildir", () =>
  withTempDir(async (root) => {
    const t = new LocalTransport({ writer: new MaildirWriter({ root }), users });
    await t.deliver({ kind: 'local' }, request(['alice@example.test', 'Alice+two@example.test']));
    const script = [
      'import mailbox, sys, json',
      'md = mailbox.Maildir(sys.argv[1], create=False)',
      'msgs = sorted((m["Delivered-To"], m["Return-Path"], m["Subject"]) for m in md)',
      'print(json.dumps(msgs))',
    ].join('\n');
    const out = execFileSync('python3', ['-c', script, join(root, 'example.test', 'alice')], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.deepEqual(JSON.parse(out), [
      ['Alice+two@example.test', '<sender@remote.test>', 'hello'],
      ['alice@example.test', '<sender@remote.test>', 'hello'],
    ]);
  }));
