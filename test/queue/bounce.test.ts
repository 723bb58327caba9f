import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import {
  buildDsn,
  buildPostmasterNotice,
  dsnEnvelope,
  dsnMessages,
  formatDate,
  planDsns,
  type DsnInput,
} from '../../src/queue/bounce.js';
import type { DsnNotify, QueuedMessage, RecipientState } from '../../src/queue/types.js';

const NOW = Date.UTC(2026, 11, 4, 21, 0, 0);
const ORIGINAL = Buffer.from(
  'Received: from client.test by mx.example.test; Fri, 04 Dec 2026 20:00:00 +0000\r\n' +
    'Message-ID: <orig-1@sender.test>\r\nFrom: Alice <alice@sender.test>\r\nSubject: hello\r\n\r\n' +
    'First line\r\nCaf\u00e9 8-bit body\r\n',
  'utf8',
);

function message(
  over: Partial<QueuedMessage['envelope']> = {},
  states: Partial<RecipientState>[] = [],
): QueuedMessage {
  const envelope: QueuedMessage['envelope'] = {
    id: 'Q1AB',
    sender: 'alice@sender.test',
    recipients: [
      { address: 'bob@remote.test', orcpt: 'rfc822;Bob@Remote.test' },
      { address: 'carol@other.test' },
      { address: 'dan@remote.test' },
    ],
    receivedAt: Date.UTC(2026, 11, 4, 20, 0, 0),
    body: '8BITMIME',
    smtputf8: false,
    envid: 'ENV-42',
    ...over,
  };
  return {
    envelope,
    recipients: envelope.recipients.map((_, index) => ({
      index,
      status: 'failed',
      attempts: 1,
      nextAttemptAt: 0,
      ...(states[index] ?? {}),
    })),
    size: ORIGINAL.length,
  };
}

const FAILED_STATES: Partial<RecipientState>[] = [
  {
    lastReply: '550 5.1.1 <bob@remote.test>: no such user',
    lastStatus: '5.1.1',
    remoteMta: 'mx.remote.test',
  },
  { lastReply: 'local delivery failed: mailbox is a directory', lastStatus: '5.2.0' },
  { lastReply: '452 4.2.2 over quota', lastStatus: '4.2.2' },
];

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    hostname: 'mx.example.test',
    kind: 'failed',
    msg: message({}, FAILED_STATES),
    indices: [0, 1],
    message: ORIGINAL,
    now: NOW,
    ...over,
  };
}

/** Split a multipart body on its boundary: each part's header lines (unfolded) and body. */
function parts(dsn: Buffer): { headers: Map<string, string>; body: string }[] {
  const text = dsn.toString('utf8');
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  assert.ok(boundary);
  const pieces = text.split(`\r\n--${boundary}`);
  assert.ok(pieces.at(-1)!.startsWith('--\r\n'), 'closing delimiter');
  return pieces.slice(1, -1).map((p) => {
    const [head = '', ...rest] = p.replace(/^\r\n/, '').split('\r\n\r\n');
    const headers = new Map<string, string>();
    for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
      const i = line.indexOf(':');
      headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
    }
    return { headers, body: rest.join('\r\n\r\n') };
  });
}

/** Parse a message/delivery-status body into field groups (per-message first). */
function statusGroups(body: string): Map<string, string>[] {
  return body
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n\r\n')
    .filter((g) => g.trim() !== '')
    .map((g) => {
      const m = new Map<string, string>();
      for (const line of g.split('\r\n').filter((l) => l !== '')) {
        const i = line.indexOf(':');
        m.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
      }
      return m;
    });
}

function assertWellFormed(dsn: Buffer): void {
  const text = dsn.toString('latin1');
  assert.ok(!/[^\r]\n/.test(text) && !/\r[^\n]/.test(text), 'CRLF line ends only');
  for (const line of text.split('\r\n'))
    assert.ok(Buffer.byteLength(line, 'latin1') <= 998, `line of ${line.length}`);
  assert.ok(text.endsWith('\r\n'));
}

test('a failure DSN is an RFC 3464 multipart/report that mailparser reads', async () => {
  const dsn = buildDsn(input());
  assertWellFormed(dsn);
  const p = await simpleParser(dsn);
  assert.equal(p.subject, 'Undelivered Mail Returned to Sender');
  assert.deepEqual(p.from?.value, [
    { address: 'MAILER-DAEMON@mx.example.test', name: 'Mail Delivery System' },
  ]);
  assert.equal(Array.isArray(p.to) ? '' : p.to?.text, 'alice@sender.test');
  assert.equal(p.headers.get('auto-submitted'), 'auto-replied');
  assert.equal(p.headers.get('mime-version'), '1.0');
  assert.equal(p.date?.getTime(), NOW);
  assert.ok(p.messageId?.endsWith('@mx.example.test>'));
  assert.equal(p.inReplyTo, '<orig-1@sender.test>');
  const ct = p.headers.get('content-type') as { value: string; params: Record<string, string> };
  assert.equal(ct.value, 'multipart/report');
  assert.equal(ct.params['report-type'], 'delivery-status');
  assert.match(p.text ?? '', /<bob@remote\.test> \(host mx\.remote\.test said\): 550 5\.1\.1/);
  assert.match(p.text ?? '', /<carol@other\.test>: local delivery failed/);
  assert.equal(p.attachments.length, 1);
  assert.equal(p.attachments[0]?.contentType, 'message/rfc822');
  assert.deepEqual(p.attachments[0]?.content, ORIGINAL);
});

test('the three parts carry the right types and RFC 3464 fields', () => {
  const [human, status, original] = parts(buildDsn(input()));
  assert.equal(human?.headers.get('content-type'), 'text/plain; charset=us-ascii');
  assert.equal(status?.headers.get('content-type'), 'message/delivery-status');
  assert.equal(original?.headers.get('content-type'), 'message/rfc822');
  assert.equal(original?.headers.get('content-transfer-encoding'), '8bit', 'the 8-bit original is marked');
  const groups = statusGroups(status!.body);
  assert.equal(groups.length, 3);
  const [perMessage, bob, carol] = groups;
  assert.equal(perMessage?.get('reporting-mta'), 'dns; mx.example.test');
  assert.equal(perMessage?.get('original-envelope-id'), 'ENV-42');
  assert.equal(perMessage?.get('arrival-date'), 'Fri, 04 Dec 2026 20:00:00 +0000');
  assert.equal(bob?.get('original-recipient'), 'rfc822;Bob@Remote.test');
  assert.equal(bob?.get('final-recipient'), 'rfc822; bob@remote.test');
  assert.equal(bob?.get('action'), 'failed');
  assert.equal(bob?.get('status'), '5.1.1');
  assert.equal(bob?.get('remote-mta'), 'dns; mx.remote.test');
  assert.equal(bob?.get('diagnostic-code'), 'smtp; 550 5.1.1 <bob@remote.test>: no such user');
  assert.equal(bob?.get('last-attempt-date'), 'Fri, 04 Dec 2026 21:00:00 +0000');
  assert.equal(bob?.has('will-retry-until'), false);
  assert.equal(carol?.has('original-recipient'), false);
  assert.equal(carol?.has('remote-mta'), false);
  assert.equal(carol?.get('diagnostic-code'), 'X-Ferrymail; local delivery failed: mailbox is a directory');
});

test('RET=HDRS returns only the headers, as text/rfc822-headers', () => {
  const dsn = buildDsn(input({ msg: message({ ret: 'HDRS' }, FAILED_STATES) }));
  const p = parts(dsn);
  assert.equal(p[2]?.headers.get('content-type'), 'text/rfc822-headers');
  assert.match(p[2]!.body, /^Received: from client\.test/);
  assert.match(p[2]!.body, /Subject: hello\r\n$/);
  assert.ok(!dsn.includes('First line'));
});

test('a message over maxReturnSize, or not 8bit-clean, is returned as headers with a note', () => {
  const big = buildDsn(input({ maxReturnSize: 100 }));
  assert.equal(parts(big)[2]?.headers.get('content-type'), 'text/rfc822-headers');
  assert.match(parts(big)[0]!.body, /too large to return in full \(\d+ bytes\)/);
  const longLine = Buffer.concat([ORIGINAL, Buffer.from('x'.repeat(2000) + '\r\n')]);
  assert.equal(
    parts(buildDsn(input({ message: longLine })))[2]?.headers.get('content-type'),
    'text/rfc822-headers',
  );
  const binary = buildDsn(input({ msg: message({ body: 'BINARYMIME' }, FAILED_STATES) }));
  assert.equal(parts(binary)[2]?.headers.get('content-type'), 'text/rfc822-headers');
  const none = buildDsn(input({ message: undefined }));
  assert.equal(parts(none).length, 2);
});

test('a delay DSN: delayed action, 4.x status, Will-Retry-Until, headers only', async () => {
  const until = NOW + 4 * 86400_000;
  const dsn = buildDsn(input({ kind: 'delayed', indices: [2], willRetryUntil: until }));
  assertWellFormed(dsn);
  const p = await simpleParser(dsn);
  assert.equal(p.subject, 'Delayed Mail (still being retried)');
  const [, status, headers] = parts(dsn);
  const rcpt = statusGroups(status!.body)[1];
  assert.equal(rcpt?.get('action'), 'delayed');
  assert.equal(rcpt?.get('status'), '4.2.2');
  assert.equal(rcpt?.get('will-retry-until'), formatDate(until));
  assert.equal(headers?.headers.get('content-type'), 'text/rfc822-headers');
});

test('a success DSN reports delivered with 2.0.0 by default', async () => {
  const msg = message({}, [{ status: 'delivered' }]);
  const dsn = buildDsn(input({ kind: 'delivered', indices: [0], msg }));
  assert.equal((await simpleParser(dsn)).subject, 'Successful Mail Delivery Report');
  const rcpt = statusGroups(parts(dsn)[1]!.body)[1];
  assert.equal(rcpt?.get('action'), 'delivered');
  assert.equal(rcpt?.get('status'), '2.0.0');
});

test('long diagnostics are folded and no line exceeds 998 octets', () => {
  const huge = '550 5.7.1 ' + 'x'.repeat(3000) + ' and some words after it '.repeat(20);
  const dsn = buildDsn(input({ msg: message({}, [{ lastReply: huge, lastStatus: '5.7.1' }]), indices: [0] }));
  assertWellFormed(dsn);
  const rcpt = statusGroups(parts(dsn)[1]!.body)[1];
  assert.equal(rcpt?.get('diagnostic-code')?.replace(/ /g, ''), ('smtp; ' + huge).replace(/ /g, ''));
});

test('the boundary never occurs in the content, and output is deterministic', () => {
  const first = buildDsn(input());
  const boundary = /boundary="([^"]+)"/.exec(first.toString())![1]!;
  const tricky = Buffer.concat([ORIGINAL, Buffer.from(`--${boundary}\r\n`)]);
  const dsn = buildDsn(input({ message: tricky }));
  const b2 = /boundary="([^"]+)"/.exec(dsn.toString())![1]!;
  assert.notEqual(b2, boundary);
  assert.equal(parts(dsn).length, 3);
  assert.deepEqual(buildDsn(input()), first);
});

test('non-ASCII addresses use RFC 6533 message/global-delivery-status and utf-8 address type', () => {
  const msg = message(
    { sender: 'alice@sender.test', smtputf8: true, recipients: [{ address: 'jörg@bücher.test' }] },
    [{ lastReply: '550 5.1.1 unknown', lastStatus: '5.1.1' }],
  );
  const dsn = buildDsn(input({ msg, indices: [0] }));
  const [, status, returned] = parts(dsn);
  assert.equal(status?.headers.get('content-type'), 'message/global-delivery-status');
  assert.equal(statusGroups(status!.body)[1]?.get('final-recipient'), 'utf-8; jörg@bücher.test');
  assert.equal(returned?.headers.get('content-type'), 'message/global');
  const env = dsnEnvelope(msg.envelope, { id: 'Q2', now: NOW, dsn });
  assert.equal(env.body, '8BITMIME');
  assert.equal(env.smtputf8, true);
});

test('buildDsn refuses the null reverse-path and empty recipient lists', () => {
  assert.throws(() => buildDsn(input({ msg: message({ sender: '' }, FAILED_STATES) })), TypeError);
  assert.throws(() => buildDsn(input({ indices: [7] })), RangeError);
  assert.throws(() => buildDsn(input({ maxReturnSize: -1 })), RangeError);
});

test('dsnEnvelope: null sender, the original sender as recipient, NOTIFY=NEVER, isBounce', () => {
  const msg = message({}, FAILED_STATES);
  const dsn = buildDsn(input({ message: Buffer.from('Subject: plain\r\n\r\nascii\r\n') }));
  assert.deepEqual(dsnEnvelope(msg.envelope, { id: 'Q2', now: NOW, dsn }), {
    id: 'Q2',
    sender: '',
    recipients: [{ address: 'alice@sender.test', notify: ['NEVER'] }],
    receivedAt: NOW,
    body: '7BIT',
    smtputf8: false,
    isBounce: true,
  });
  assert.equal(dsnEnvelope(msg.envelope, { id: 'Q3', now: NOW, dsn: buildDsn(input()) }).body, '8BITMIME');
  assert.throws(() => dsnEnvelope(message({ sender: '' }).envelope, { id: 'Q4', now: NOW, dsn }), TypeError);
});

test('a failed bounce: postmaster notice, headers only, itself never bounced', async () => {
  const bounce = message({ sender: '', isBounce: true, recipients: [{ address: 'alice@sender.test' }] }, [
    { lastReply: '550 5.1.1 gone', lastStatus: '5.1.1' },
  ]);
  const notice = buildPostmasterNotice({
    hostname: 'mx.example.test',
    postmaster: 'postmaster@mx.example.test',
    msg: bounce,
    indices: [0],
    message: ORIGINAL,
    now: NOW,
  });
  assertWellFormed(notice);
  const p = await simpleParser(notice);
  assert.equal(Array.isArray(p.to) ? '' : p.to?.text, 'postmaster@mx.example.test');
  assert.match(p.subject ?? '', /Postmaster/);
  assert.match(p.text ?? '', /from <> \(queue id Q1AB\)/);
  assert.equal(parts(notice)[2]?.headers.get('content-type'), 'text/rfc822-headers');
  const env = dsnEnvelope(bounce.envelope, {
    id: 'Q9',
    now: NOW,
    dsn: notice,
    to: 'postmaster@mx.example.test',
  });
  assert.equal(env.sender, '');
  assert.equal(env.isBounce, true);
  assert.deepEqual(planDsns({ envelope: env, recipients: [], size: 0 }, [0], [], []), []);
});

test('planDsns: NOTIFY matrix', () => {
  const cases: [DsnNotify[] | undefined, 'failed' | 'delivered' | 'delayed', boolean][] = [
    [undefined, 'failed', true],
    [undefined, 'delayed', true],
    [undefined, 'delivered', false],
    [[], 'failed', true],
    [['NEVER'], 'failed', false],
    [['NEVER'], 'delayed', false],
    [['NEVER'], 'delivered', false],
    [['SUCCESS'], 'delivered', true],
    [['SUCCESS'], 'failed', false],
    [['SUCCESS'], 'delayed', false],
    [['FAILURE'], 'failed', true],
    [['FAILURE'], 'delayed', false],
    [['DELAY'], 'delayed', true],
    [['DELAY'], 'failed', false],
    [['SUCCESS', 'FAILURE', 'DELAY'], 'delivered', true],
    [['SUCCESS', 'FAILURE', 'DELAY'], 'failed', true],
    [['SUCCESS', 'FAILURE', 'DELAY'], 'delayed', true],
  ];
  for (const [notify, event, expected] of cases) {
    const msg = message({ recipients: [notify ? { address: 'a@b.test', notify } : { address: 'a@b.test' }] });
    const plan = planDsns(
      msg,
      event === 'failed' ? [0] : [],
      event === 'delivered' ? [0] : [],
      event === 'delayed' ? [0] : [],
    );
    assert.deepEqual(
      plan,
      expected ? [{ kind: event, indices: [0] }] : [],
      `${JSON.stringify(notify)} ${event}`,
    );
  }
});

test('planDsns: one DSN per kind listing every recipient; none for <> or bounces', () => {
  const msg = message({
    recipients: [
      { address: 'a@x.test' },
      { address: 'b@x.test', notify: ['SUCCESS', 'FAILURE'] },
      { address: 'c@x.test' },
      { address: 'd@x.test', notify: ['NEVER'] },
      { address: 'e@x.test' },
    ],
  });
  msg.recipients[4]!.delayNotified = true;
  assert.deepEqual(planDsns(msg, [2, 0, 3], [1], [4]), [
    { kind: 'failed', indices: [0, 2] },
    { kind: 'delivered', indices: [1] },
  ]);
  assert.deepEqual(planDsns(msg, [], [], [0, 2, 4]), [{ kind: 'delayed', indices: [0, 2] }]);
  assert.deepEqual(planDsns(message({ sender: '' }), [0, 1], [], []), []);
  assert.deepEqual(planDsns(message({ isBounce: true }), [0, 1], [], []), []);
});

test('formatDate is RFC 5322', () => {
  assert.equal(formatDate(Date.UTC(2026, 0, 5, 3, 4, 5)), 'Mon, 05 Jan 2026 03:04:05 +0000');
});

test('dsnMessages: planned DSNs with envelopes, or a postmaster notice for a failed bounce', () => {
  let n = 0;
  const opts = {
    hostname: 'mx.example.test',
    now: NOW,
    newId: () => `N${++n}`,
    postmaster: 'postmaster@mx.example.test',
  };
  const msg = message({}, FAILED_STATES);
  msg.envelope.recipients[2]!.notify = ['DELAY'];
  const out = dsnMessages(msg, [0, 1], [], [2], ORIGINAL, { ...opts, willRetryUntil: NOW + 1000 });
  assert.deepEqual(
    out.map((m) => [m.kind, m.envelope.id, m.envelope.sender, m.envelope.recipients[0]?.address]),
    [
      ['failed', 'N1', '', 'alice@sender.test'],
      ['delayed', 'N2', '', 'alice@sender.test'],
    ],
  );
  assert.match(out[1]!.data.toString(), /Will-Retry-Until: /);
  assert.equal(statusGroups(parts(out[0]!.data)[1]!.body).length, 3, 'one DSN lists both failed recipients');

  const bounce = message({ sender: '', isBounce: true, recipients: [{ address: 'alice@sender.test' }] }, [
    { lastReply: '550 5.1.1 gone', lastStatus: '5.1.1' },
  ]);
  const notice = dsnMessages(bounce, [0], [], [], ORIGINAL, opts);
  assert.equal(notice.length, 1);
  assert.equal(notice[0]?.kind, 'postmaster');
  assert.deepEqual(notice[0]?.envelope.recipients, [
    { address: 'postmaster@mx.example.test', notify: ['NEVER'] },
  ]);
  assert.equal(notice[0]?.envelope.isBounce, true);
  // The notice failing in turn produces nothing: no chains of notices.
  const failedNotice: QueuedMessage = {
    envelope: notice[0]!.envelope,
    recipients: [{ index: 0, status: 'failed', attempts: 1, nextAttemptAt: 0 }],
    size: 0,
  };
  assert.deepEqual(dsnMessages(failedNotice, [0], [], [], notice[0]!.data, opts), []);
  assert.deepEqual(dsnMessages(bounce, [0], [], [], ORIGINAL, { ...opts, postmaster: undefined }), []);
  assert.deepEqual(dsnMessages(bounce, [], [0], [], ORIGINAL, opts), []);
});

test('a peer reply with UTF-8 stays 8-bit in the text part only', () => {
  const msg = message({}, [{ lastReply: '550 5.1.1 Empfänger unbekannt', lastStatus: '5.1.1' }]);
  const [human, status] = parts(buildDsn(input({ msg, indices: [0], message: undefined })));
  assert.equal(human?.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(human?.headers.get('content-transfer-encoding'), '8bit');
  assert.match(human!.body, /Empfänger/);
  assert.equal(status?.headers.get('content-type'), 'message/delivery-status');
  assert.equal(statusGroups(status!.body)[1]?.get('diagnostic-code'), 'smtp; 550 5.1.1 Empf?nger unbekannt');
});

test('headers that are not line-clean are left out, with a note', () => {
  const bad = Buffer.from('Subject: a\nbare LF\r\n\r\nbody\r\n');
  const dsn = buildDsn(input({ message: bad }));
  assertWellFormed(dsn);
  const p = parts(dsn);
  assert.equal(p.length, 2);
  assert.match(p[0]!.body, /malformed/);
});

test('property: any replies, addresses and message bytes give a well-formed DSN', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          reply: fc.string({ unit: 'grapheme', maxLength: 1500 }),
          local: fc.string({ minLength: 1, maxLength: 40 }),
        }),
        {
          minLength: 1,
          maxLength: 4,
        },
      ),
      fc.uint8Array({ maxLength: 3000 }),
      fc.constantFrom<'FULL' | 'HDRS' | undefined>('FULL', 'HDRS', undefined),
      (rcpts, bytes, ret) => {
        const msg = message(
          {
            recipients: rcpts.map((r) => ({ address: `${r.local.replace(/[\s<>@]/g, 'x') || 'x'}@d.test` })),
            ...(ret ? { ret } : {}),
          },
          rcpts.map((r) => ({ lastReply: r.reply, lastStatus: '5.0.0' })),
        );
        const dsn = buildDsn(input({ msg, indices: rcpts.map((_, i) => i), message: Buffer.from(bytes) }));
        assertWellFormed(dsn);
        assert.ok(parts(dsn).length >= 2);
      },
    ),
    { numRuns: 150 },
  );
});
