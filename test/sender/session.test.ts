import { test } from 'node:test';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { parseReply } from '../../src/smtp/reply.js';
import {
  ClientSession,
  type Action,
  type RcptResult,
  type SessionOptions,
} from '../../src/sender/session.js';
import type { TransactionSpec } from '../../src/sender/extensions.js';
import { mailLine, rcptLine, parseEhlo } from '../../src/sender/extensions.js';

/** Actions as one readable string: writes with CRLF shown as `|`, other actions by name. */
function show(actions: Action[]): string {
  return actions
    .map((a) => (a.type === 'write' ? a.data.replace(/\r\n$/, '').replace(/\r\n/g, '|') : `<${a.type}>`))
    .join(' ');
}

function ehlo(...exts: string[]): string {
  const lines = ['peer.test hi', ...exts];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n');
}

const spec = (over: Partial<TransactionSpec> = {}): TransactionSpec => ({
  sender: 'a@b.test',
  recipients: [{ address: 'x@y.test' }, { address: 'z@y.test' }],
  size: 100,
  eightBit: false,
  smtputf8: false,
  ...over,
});

/**
 * A dialogue table: each row is [server reply | 'BEGIN' | 'TLS-UP' | 'BROKEN', expected client actions].
 * Returns the results of the last transaction that finished.
 */
function dialogue(opts: Partial<SessionOptions>, rows: [string, string][], tx: TransactionSpec = spec()) {
  const s = new ClientSession({ heloName: 'me.test', ...opts });
  let done: RcptResult[] | null = null;
  let failed: Action | null = null;
  rows.forEach(([input, expected], i) => {
    const acts =
      input === 'BEGIN'
        ? s.begin(tx)
        : input === 'TLS-UP'
          ? s.onTlsUp()
          : input === 'BROKEN'
            ? s.onBroken('lost', 'reset')
            : input === 'QUIT'
              ? s.quit()
              : s.onReply(parseReply(input));
    for (const a of acts) {
      if (a.type === 'done') done = a.results;
      if (a.type === 'failed') failed = a;
    }
    assert.equal(show(acts), expected, `row ${i}: ${input}`);
  });
  return {
    s,
    done: done as RcptResult[] | null,
    failed: failed as Extract<Action, { type: 'failed' }> | null,
  };
}

test('plain dialogue without PIPELINING: one command per reply, then QUIT', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer.test ESMTP', 'EHLO me.test'],
    [ehlo('SIZE 1000', '8BITMIME'), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test> SIZE=100'],
    ['250 2.1.0 ok', 'RCPT TO:<x@y.test>'],
    ['250 2.1.5 ok', 'RCPT TO:<z@y.test>'],
    ['250 2.1.5 ok', 'DATA'],
    ['354 go ahead', '<body>'],
    ['250 2.0.0 queued as 1', '<done>'],
    ['QUIT', 'QUIT'],
    ['221 2.0.0 bye', '<close>'],
  ]);
  assert.deepEqual(
    done?.map((r) => r.kind),
    ['delivered', 'delivered'],
  );
});

test('PIPELINING: MAIL, every RCPT and DATA in one write; the only wait is for 354', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer.test ESMTP', 'EHLO me.test'],
    [ehlo('PIPELINING'), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>|RCPT TO:<x@y.test>|RCPT TO:<z@y.test>|DATA'],
    ['250 ok', ''],
    ['550 5.1.1 <x@y.test>: Recipient address rejected', ''],
    ['250 ok', ''],
    ['354 go', '<body>'],
    ['250 2.0.0 ok', '<done>'],
  ]);
  assert.equal(done?.[0]?.kind, 'failed');
  assert.equal(done?.[1]?.kind, 'delivered');
});

test('EHLO refused with 502 falls back to HELO; no extensions are used after HELO', () => {
  dialogue({ tls: 'opportunistic' }, [
    ['220 old.test SMTP', 'EHLO me.test'],
    ['502 5.5.2 what?', 'HELO me.test'],
    ['250 old.test', '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>'],
  ]);
  // other 5xx to EHLO is a refusal of the session, not an old server
  const { failed } = dialogue({}, [
    ['220 x', 'EHLO me.test'],
    ['550 5.7.1 go away', 'QUIT <failed> <close>'],
  ]);
  assert.equal(failed?.failure.kind, 'reply');
});

test('a 421 or 554 greeting fails the session (QUIT only after 554)', () => {
  dialogue({}, [['421 4.3.2 busy', '<failed> <close>']]);
  const { failed } = dialogue({}, [['554 5.3.2 no service', 'QUIT <failed> <close>']]);
  assert.deepEqual(failed?.failure, {
    kind: 'reply',
    stage: 'greeting',
    reply: parseReply('554 5.3.2 no service'),
  });
});

test('STARTTLS when offered, then EHLO again over TLS', () => {
  const { s } = dialogue({ tls: 'opportunistic' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('STARTTLS', 'PIPELINING'), 'STARTTLS'],
    ['220 2.0.0 ready', '<starttls>'],
    ['TLS-UP', 'EHLO me.test'],
    [ehlo('PIPELINING'), '<ready>'],
  ]);
  assert.equal(s.tlsActive, true);
});

test('STARTTLS refused: opportunistic goes on in clear, require fails with 4.7.x', () => {
  dialogue({ tls: 'opportunistic' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('STARTTLS'), 'STARTTLS'],
    ['454 4.7.0 TLS not available', '<ready>'],
  ]);
  const { failed } = dialogue({ tls: 'require' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('STARTTLS'), 'STARTTLS'],
    ['454 4.7.0 TLS not available', 'QUIT <failed> <close>'],
  ]);
  assert.equal(failed?.failure.kind, 'security');
  assert.match((failed?.failure as { status: string }).status, /^4\.7\./);
});

test('TLS required but not offered: QUIT and fail 4.7.10; handshake failure marks retryPlain only when opportunistic', () => {
  const { failed } = dialogue({ tls: 'verify' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('PIPELINING'), 'QUIT <failed> <close>'],
  ]);
  assert.deepEqual(failed?.failure, {
    kind: 'security',
    stage: 'starttls',
    status: '4.7.10',
    text: 'TLS is required but the peer does not offer STARTTLS',
  });
  for (const [tls, retry] of [
    ['opportunistic', true],
    ['require', undefined],
  ] as const) {
    const s = new ClientSession({ heloName: 'me.test', tls });
    s.onReply(parseReply('220 x'));
    s.onReply(parseReply(ehlo('STARTTLS')));
    s.onReply(parseReply('220 go'));
    const acts = s.onTlsFailed('bad record mac');
    const f = acts.find((a) => a.type === 'failed');
    assert.equal(f?.type === 'failed' && f.failure.kind === 'security' ? f.failure.retryPlain : 'x', retry);
  }
});

test('AUTH PLAIN over TLS, AUTH LOGIN, and no credentials over plain text unless allowed', () => {
  const auth = { user: 'u', pass: 'p' };
  dialogue({ tls: 'none', tlsActive: true, auth }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('AUTH LOGIN PLAIN'), `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`],
    ['235 2.7.0 ok', '<ready>'],
  ]);
  dialogue({ tls: 'none', tlsActive: true, auth }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('AUTH=LOGIN'), 'AUTH LOGIN'],
    ['334 VXNlcm5hbWU6', 'dQ=='],
    ['334 UGFzc3dvcmQ6', 'cA=='],
    ['235 2.7.0 ok', '<ready>'],
  ]);
  const { failed } = dialogue({ tls: 'none', auth }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('AUTH PLAIN'), 'QUIT <failed> <close>'],
  ]);
  assert.equal(failed?.failure.kind, 'security');
  dialogue({ tls: 'none', auth, authWithoutTls: true }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('AUTH PLAIN'), `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`],
    ['535 5.7.8 bad credentials', 'QUIT <failed> <close>'],
  ]);
});

test('MAIL and RCPT parameters follow the offered extensions; DSN values are xtext', () => {
  const all = parseEhlo(parseReply(ehlo('SIZE', '8BITMIME', 'SMTPUTF8', 'DSN')));
  const tx = spec({ eightBit: true, smtputf8: true, ret: 'HDRS', envid: 'id+1=x y' });
  assert.equal(
    mailLine(tx, all),
    'MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx+20y',
  );
  assert.equal(
    rcptLine({ address: 'x@y.test', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;X+1@Y.test' }, all),
    'RCPT TO:<x@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;X+2B1@Y.test',
  );
  const none = parseEhlo(parseReply(ehlo()));
  assert.equal(mailLine(tx, none), 'MAIL FROM:<a@b.test>');
  assert.equal(rcptLine({ address: 'x@y.test', notify: ['NEVER'] }, none), 'RCPT TO:<x@y.test>');
  assert.equal(mailLine(spec({ sender: '' }), none), 'MAIL FROM:<>');
  assert.equal(parseEhlo(parseReply(ehlo('SIZE 5000'))).maxSize, 5000);
});

test('needs SMTPUTF8 / 8BITMIME / a smaller SIZE than the peer has: every recipient fails, nothing is sent', () => {
  const cases: [string, Partial<TransactionSpec>, string][] = [
    [ehlo('8BITMIME'), { smtputf8: true }, '5.6.7'],
    [ehlo('SMTPUTF8'), { eightBit: true }, '5.6.3'],
    [ehlo('SIZE 50'), {}, '5.3.4'],
  ];
  for (const [peer, over, status] of cases) {
    const { done } = dialogue(
      { tls: 'none' },
      [
        ['220 peer', 'EHLO me.test'],
        [peer, '<ready>'],
        ['BEGIN', '<done>'],
      ],
      spec(over),
    );
    for (const r of done ?? []) {
      assert.equal(r.kind === 'failed' && r.failure.kind === 'local' ? r.failure.reply.enhanced : '', status);
    }
  }
});

test('452 after an accepted recipient means "too many": retry in the next transaction, which starts with RSET', () => {
  const three = spec({ recipients: [{ address: 'a@y' }, { address: 'b@y' }, { address: 'c@y' }] });
  const { s, done } = dialogue(
    { tls: 'none' },
    [
      ['220 peer', 'EHLO me.test'],
      [ehlo('PIPELINING'), '<ready>'],
      ['BEGIN', 'MAIL FROM:<a@b.test>|RCPT TO:<a@y>|RCPT TO:<b@y>|RCPT TO:<c@y>|DATA'],
      ['250 ok', ''],
      ['250 ok', ''],
      ['452 4.5.3 too many recipients', ''],
      ['452 4.5.3 too many recipients', ''],
      ['354 go', '<body>'],
      ['250 ok', '<done>'],
    ],
    three,
  );
  assert.deepEqual(
    done?.map((r) => r.kind),
    ['delivered', 'retry', 'retry'],
  );
  const again = s.begin(spec({ recipients: [{ address: 'c@y' }] }));
  assert.equal(show(again), 'RSET|MAIL FROM:<a@b.test>|RCPT TO:<c@y>|DATA');
});

test('452 with nothing accepted, or 452 4.2.2 (mailbox full), is an ordinary temporary failure', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo(), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>'],
    ['250 ok', 'RCPT TO:<x@y.test>'],
    ['452 4.5.3 too many', 'RCPT TO:<z@y.test>'],
    ['452 4.2.2 mailbox full', '<done>'],
  ]);
  assert.deepEqual(
    done?.map((r) => r.kind),
    ['failed', 'failed'],
  );
});

test('MAIL refused while pipelining: every recipient takes the MAIL reply; an unwanted 354 closes the connection', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('PIPELINING'), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>|RCPT TO:<x@y.test>|RCPT TO:<z@y.test>|DATA'],
    ['550 5.7.1 sender rejected', ''],
    ['250 ok', ''],
    ['250 ok', ''],
    ['354 go', '<done> <close>'],
  ]);
  for (const r of done ?? []) {
    assert.equal(r.kind === 'failed' && r.failure.kind === 'reply' ? r.failure.stage : '', 'mail');
  }
});

test('no recipient accepted without PIPELINING: DATA is never sent', () => {
  dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo(), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>'],
    ['250 ok', 'RCPT TO:<x@y.test>'],
    ['550 no', 'RCPT TO:<z@y.test>'],
    ['550 no', '<done>'],
  ]);
});

test('DATA refused: accepted recipients take the DATA reply', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo('PIPELINING'), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>|RCPT TO:<x@y.test>|RCPT TO:<z@y.test>|DATA'],
    ['250 ok', ''],
    ['250 ok', ''],
    ['550 5.1.1 unknown', ''],
    ['554 5.5.1 no valid recipients', '<done>'],
  ]);
  const stages = done?.map((r) =>
    r.kind === 'failed' && r.failure.kind === 'reply' ? r.failure.stage : r.kind,
  );
  assert.deepEqual(stages, ['data', 'rcpt']);
});

test('421 in the middle of a transaction ends it for everyone and closes', () => {
  const { done, s } = dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo(), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>'],
    ['250 ok', 'RCPT TO:<x@y.test>'],
    ['250 ok', 'RCPT TO:<z@y.test>'],
    ['421 4.4.2 closing', '<done> <close>'],
  ]);
  assert.equal(s.closed, true);
  for (const r of done ?? [])
    assert.equal(r.kind === 'failed' && r.failure.kind === 'reply' ? r.failure.reply.code : 0, 421);
});

test('connection lost after the body: accepted recipients fail as lost at data-end', () => {
  const { done } = dialogue({ tls: 'none' }, [
    ['220 peer', 'EHLO me.test'],
    [ehlo(), '<ready>'],
    ['BEGIN', 'MAIL FROM:<a@b.test>'],
    ['250 ok', 'RCPT TO:<x@y.test>'],
    ['250 ok', 'RCPT TO:<z@y.test>'],
    ['250 ok', 'DATA'],
    ['354 go', '<body>'],
    ['BROKEN', '<done> <close>'],
  ]);
  for (const r of done ?? [])
    assert.deepEqual(r, { kind: 'failed', failure: { kind: 'lost', stage: 'data-end', error: 'reset' } });
});

test('LMTP: LHLO, and one reply per accepted recipient after the data', () => {
  const three = spec({ recipients: [{ address: 'a@y' }, { address: 'b@y' }, { address: 'c@y' }] });
  const { done } = dialogue(
    { lmtp: true },
    [
      ['220 lmtp ready', 'LHLO me.test'],
      [ehlo('PIPELINING', 'ENHANCEDSTATUSCODES'), '<ready>'],
      ['BEGIN', 'MAIL FROM:<a@b.test>|RCPT TO:<a@y>|RCPT TO:<b@y>|RCPT TO:<c@y>|DATA'],
      ['250 ok', ''],
      ['250 ok', ''],
      ['550 5.1.1 no such user', ''],
      ['250 ok', ''],
      ['354 go', '<body>'],
      ['250 2.0.0 <a@y> saved', ''],
      ['452 4.2.2 <c@y> over quota', '<done>'],
    ],
    three,
  );
  assert.deepEqual(
    done?.map((r) => r.kind),
    ['delivered', 'failed', 'failed'],
  );
  const c = done?.[2];
  assert.equal(c?.kind === 'failed' && c.failure.kind === 'reply' ? c.failure.stage : '', 'data-end');
});

test('LMTP never falls back to HELO', () => {
  dialogue({ lmtp: true }, [
    ['220 lmtp', 'LHLO me.test'],
    ['500 what', 'QUIT <failed> <close>'],
  ]);
});

test('bad use is a TypeError/RangeError', () => {
  assert.throws(() => new ClientSession({ heloName: 'bad name' }), TypeError);
  const s = new ClientSession({ heloName: 'me.test' });
  assert.throws(() => s.begin(spec()), TypeError);
  s.onReply(parseReply('220 x'));
  s.onReply(parseReply(ehlo()));
  assert.throws(() => s.begin(spec({ recipients: [] })), RangeError);
});

test('property: whatever the peer answers, a transaction ends once with one result per recipient', () => {
  const code = fc.constantFrom(250, 251, 354, 421, 450, 451, 452, 500, 503, 550, 552, 554);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      fc.array(code, { minLength: 1, maxLength: 20 }),
      (n, pipelining, lmtp, second, codes) => {
        const s = new ClientSession({ heloName: 'me.test', tls: 'none', lmtp });
        s.onReply(parseReply('220 x'));
        s.onReply(parseReply(pipelining ? ehlo('PIPELINING') : ehlo()));
        const recipients = Array.from({ length: n }, (_, i) => ({ address: `r${i}@y` }));
        const rounds = second ? 2 : 1;
        for (let round = 0; round < rounds && s.usable; round++) {
          let acts = s.begin(spec({ recipients }));
          let done = 0;
          let results: RcptResult[] = [];
          for (let k = 0; k < 200 && !acts.some((a) => a.type === 'done'); k++) {
            acts = s.onReply(parseReply(`${codes[k % codes.length] ?? 250} x`));
            for (const a of acts) if (a.type === 'done') results = a.results;
          }
          for (const a of acts) if (a.type === 'done') done++;
          if (done === 0) {
            // the peer kept us waiting forever; a broken connection must still end it
            acts = s.onBroken('timeout');
            for (const a of acts) if (a.type === 'done') (done++, (results = a.results));
          }
          assert.equal(done, 1);
          assert.equal(results.length, n);
          assert.equal(s.usable || s.closed, true);
        }
      },
    ),
    { numRuns: 300 },
  );
});
