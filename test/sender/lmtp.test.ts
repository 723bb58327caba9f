import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmtpTransport } from '../../src/sender/lmtp.js';
import type { DeliveryRequest } from '../../src/delivery/types.js';
import { startFakePeer, ehlo, type Row } from './fake-peer.js';

const TINY = {
  connect: 1000,
  greeting: 500,
  command: 500,
  rset: 500,
  dataInit: 500,
  dataBlock: 1000,
  dataDone: 500,
};

const request = (addresses: string[]): DeliveryRequest => ({
  envelope: {
    id: 'Q1',
    sender: 'a@b.test',
    recipients: addresses.map((address) => ({ address })),
    receivedAt: 0,
    body: '7BIT',
    smtputf8: false,
  },
  recipients: addresses.map((address, index) => ({ index, address })),
  message: Buffer.from('Subject: t\r\n\r\n.hi\r\n'),
});

const script: Row[] = [
  ['LHLO me.test', ehlo('PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME')],
  ['MAIL FROM:<a@b.test>', '250 2.1.0 ok'],
  ['RCPT TO:<a@y.test>', '250 2.1.5 ok'],
  ['RCPT TO:<b@y.test>', "550 5.1.1 <b@y.test> User doesn't exist"],
  ['RCPT TO:<c@y.test>', '250 2.1.5 ok'],
  ['DATA', '354 go'],
  ['<data>', '250 2.0.0 <a@y.test> Saved\n452 4.2.2 <c@y.test> Quota exceeded'],
  ['QUIT', '221 2.0.0 bye'],
];

test('LMTP over TCP: one reply per accepted recipient after the data', async (t) => {
  const peer = await startFakePeer({ scripts: [script], greeting: '220 lmtp.test LMTP ready' });
  t.after(() => peer.close());
  const lmtp = new LmtpTransport({ heloName: 'me.test', timeouts: TINY });
  const out = await lmtp.deliver(
    { kind: 'lmtp', key: 'lmtp', host: '127.0.0.1', port: peer.port },
    request(['a@y.test', 'b@y.test', 'c@y.test']),
  );
  assert.deepEqual(peer.errors, []);
  assert.deepEqual(
    out.map((o) => [o.index, o.result, o.status, o.reply]),
    [
      [0, 'delivered', '2.0.0', '250 2.0.0 <a@y.test> Saved'],
      [1, 'failed', '5.1.1', "550 5.1.1 <b@y.test> User doesn't exist"],
      [2, 'deferred', '4.2.2', '452 4.2.2 <c@y.test> Quota exceeded'],
    ],
  );
  assert.equal(out[0]?.remoteMta, `127.0.0.1:${peer.port}`);
  assert.equal(peer.messages[0]?.toString('latin1'), 'Subject: t\r\n\r\n..hi\r\n.\r\n');
});

test('LMTP over a unix socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrymail-lmtp-'));
  const path = join(dir, 'lmtp.sock');
  const peer = await startFakePeer({ scripts: [script], path });
  t.after(async () => {
    await peer.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const lmtp = new LmtpTransport({ heloName: 'me.test', timeouts: TINY });
  const out = await lmtp.deliver(
    { kind: 'lmtp', key: 'lmtp', socketPath: path },
    request(['a@y.test', 'b@y.test', 'c@y.test']),
  );
  assert.deepEqual(
    out.map((o) => o.result),
    ['delivered', 'failed', 'deferred'],
  );
  assert.equal(out[0]?.remoteMta, path);
});

test('LMTP server not there: every recipient deferred 4.4.1; a hop without an address is a TypeError', async () => {
  const lmtp = new LmtpTransport({ heloName: 'me.test', timeouts: TINY });
  const dir = mkdtempSync(join(tmpdir(), 'ferrymail-lmtp-'));
  try {
    const out = await lmtp.deliver(
      { kind: 'lmtp', key: 'lmtp', socketPath: join(dir, 'nope.sock') },
      request(['a@y.test', 'b@y.test']),
    );
    assert.deepEqual(
      out.map((o) => [o.result, o.status]),
      [
        ['deferred', '4.4.1'],
        ['deferred', '4.4.1'],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(lmtp.deliver({ kind: 'lmtp', key: 'lmtp' }, request(['a@y.test'])), TypeError);
});
