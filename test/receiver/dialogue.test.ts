import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver, Raw } from './harness.js';

type Step = [send: string | null, expect: RegExp];
const EHLO: Step[] = [
  [null, /^220 mx\.example\.test /],
  ['EHLO client.test', /^250-mx\.example\.test Hello client\.test/],
];
const MAIL: Step[] = [...EHLO, ['MAIL FROM:<a@client.test>', /^250 2\.1\.0 /]];
const RCPT: Step[] = [...MAIL, ['RCPT TO:<bob@example.test>', /^250 2\.1\.5 /]];

// [name, steps]; each step sends a line (CRLF added unless it already ends with \n) and matches the reply.
const dialogues: [string, Step[]][] = [
  ['greeting names the host', [[null, /^220 mx\.example\.test ESMTP/]]],
  [
    'EHLO lists the extensions',
    [
      [null, /^220/],
      [
        'EHLO c.test',
        /250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n250 HELP\r\n$/,
      ],
    ],
  ],
  [
    'HELO is plain',
    [
      [null, /^220/],
      ['HELO c.test', /^250 mx\.example\.test Hello c\.test \[127\.0\.0\.1\]\r\n$/],
    ],
  ],
  [
    'lowercase verbs',
    [
      [null, /^220/],
      ['ehlo c.test', /^250-/],
      ['mail from:<a@b.test>', /^250 /],
      ['rcpt to:<x@EXAMPLE.test>', /^250 /],
      ['rset', /^250 /],
      ['QuIt', /^221 /],
    ],
  ],
  [
    'EHLO without a name',
    [
      [null, /^220/],
      ['EHLO', /^501 5\.5\.4 /],
    ],
  ],
  [
    'HELO without a name',
    [
      [null, /^220/],
      ['HELO ', /^501 5\.5\.4 /],
    ],
  ],
  [
    'EHLO with address literal',
    [
      [null, /^220/],
      ['EHLO [127.0.0.1]', /^250-/],
    ],
  ],
  [
    'MAIL before EHLO',
    [
      [null, /^220/],
      ['MAIL FROM:<a@b.test>', /^503 5\.5\.1 /],
    ],
  ],
  ['RCPT before MAIL', [...EHLO, ['RCPT TO:<bob@example.test>', /^503 5\.5\.1 /]]],
  ['DATA before MAIL', [...EHLO, ['DATA', /^503 5\.5\.1 /]]],
  ['DATA without recipients', [...MAIL, ['DATA', /^554 5\.5\.1 /]]],
  ['nested MAIL', [...MAIL, ['MAIL FROM:<c@d.test>', /^503 5\.5\.1 /]]],
  ['unknown command', [...EHLO, ['FOO bar', /^500 5\.5\.2 /]]],
  ['TURN not implemented', [...EHLO, ['TURN', /^502 5\.5\.1 /]]],
  ['MAIL without brackets', [...EHLO, ['MAIL FROM:a@b.test', /^501 /]]],
  ['MAIL with a space after colon is tolerated', [...EHLO, ['MAIL FROM: <a@b.test>', /^250 /]]],
  ['null sender', [...EHLO, ['MAIL FROM:<>', /^250 2\.1\.0 Sender <> ok/]]],
  ['unknown MAIL parameter', [...EHLO, ['MAIL FROM:<a@b.test> FOO=bar', /^555 5\.5\.4 /]]],
  ['SIZE over the limit', [...EHLO, ['MAIL FROM:<a@b.test> SIZE=999999999999', /^552 5\.3\.4 /]]],
  ['SIZE under the limit', [...EHLO, ['MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME', /^250 /]]],
  ['bad BODY', [...EHLO, ['MAIL FROM:<a@b.test> BODY=9BIT', /^501 /]]],
  [
    'DSN params',
    [
      ...EHLO,
      ['MAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B1', /^250 /],
      ['RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.test', /^250 /],
    ],
  ],
  ['bad NOTIFY', [...MAIL, ['RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS', /^501 /]]],
  [
    'params after HELO are refused',
    [
      [null, /^220/],
      ['HELO c.test', /^250 /],
      ['MAIL FROM:<a@b.test> SIZE=10', /^555 /],
    ],
  ],
  [
    'relay denied to strangers',
    [...MAIL, ['RCPT TO:<x@elsewhere.test>', /^550 5\.7\.1 /], ['RCPT TO:<bob@example.test>', /^250 /]],
  ],
  ['percent hack is local', [...MAIL, ['RCPT TO:<x%elsewhere.test@example.test>', /^250 /]]],
  ['quoted at is local', [...MAIL, ['RCPT TO:<"x@elsewhere.test"@example.test>', /^250 /]]],
  ['bang path is local', [...MAIL, ['RCPT TO:<elsewhere.test!x@example.test>', /^250 /]]],
  ['source route to a local mailbox', [...MAIL, ['RCPT TO:<@elsewhere.test:bob@example.test>', /^250 /]]],
  [
    'source route to a remote mailbox',
    [...MAIL, ['RCPT TO:<@example.test:x@elsewhere.test>', /^550 5\.7\.1 /]],
  ],
  ['IP literal of a stranger', [...MAIL, ['RCPT TO:<x@[192.0.2.1]>', /^550 5\.7\.1 /]]],
  ['relay domain accepted', [...MAIL, ['RCPT TO:<x@relay.test>', /^250 /]]],
  ['postmaster without domain', [...MAIL, ['RCPT TO:<Postmaster>', /^250 /]]],
  ['trailing dot refused', [...MAIL, ['RCPT TO:<x@example.test.>', /^50[01] /]]],
  ['null recipient refused', [...MAIL, ['RCPT TO:<>', /^5\d\d /]]],
  ['utf8 address needs SMTPUTF8', [...MAIL, ['RCPT TO:<jöran@example.test>', /^553 5\.6\.7 /]]],
  [
    'utf8 address with SMTPUTF8',
    [...EHLO, ['MAIL FROM:<jöran@b.test> SMTPUTF8', /^250 /], ['RCPT TO:<jöran@example.test>', /^250 /]],
  ],
  ['RSET with argument', [...EHLO, ['RSET x', /^501 /]]],
  ['NOOP with argument', [...EHLO, ['NOOP hello', /^250 2\.0\.0 /]]],
  ['VRFY answers 252', [...EHLO, ['VRFY bob', /^252 2\.5\.0 /]]],
  ['EXPN answers 252', [...EHLO, ['EXPN list', /^252 2\.5\.0 /]]],
  ['HELP', [...EHLO, ['HELP', /^214/]]],
  ['STARTTLS without certificates', [...EHLO, ['STARTTLS', /^502 5\.5\.1 /]]],
  ['AUTH not offered on mx', [...EHLO, ['AUTH PLAIN AGJvYgBzZWNyZXQ=', /^502 5\.5\.1 /]]],
  ['QUIT closes', [...EHLO, ['QUIT', /^221 2\.0\.0 /]]],
  [
    'MAIL line with long parameters fits the extension allowance',
    [
      ...EHLO,
      ['MAIL FROM:<a@b.test> ENVID=' + 'e'.repeat(90) + ' SIZE=100 BODY=8BITMIME RET=HDRS AUTH=<>', /^250 /],
    ],
  ],
  [
    'RCPT line with ORCPT over 512 octets',
    [
      ...MAIL,
      [
        'RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;' +
          'o'.repeat(60) +
          '@' +
          'd'.repeat(60) +
          '.' +
          'e'.repeat(60) +
          '.' +
          'f'.repeat(60) +
          '.' +
          'g'.repeat(60) +
          '.' +
          'h'.repeat(60) +
          '.test' +
          ' '.repeat(40),
        /^250 /,
      ],
    ],
  ],
  ['command line of exactly 512 octets is fine', [...EHLO, ['NOOP ' + 'x'.repeat(505), /^250 /]]],
  ['command line of 513 octets is too long', [...EHLO, ['NOOP ' + 'x'.repeat(506), /^500 5\.5\.2 /]]],
  [
    'command line too long',
    [...EHLO, ['NOOP ' + 'x'.repeat(600), /^500 5\.5\.2 Line too long/], ['NOOP', /^250 /]],
  ],
  ['bare LF in command is not a line end', [...EHLO, ['NOOP\n', /^500 5\.5\.2 Bare/], ['NOOP', /^250 /]]],
  ['DATA with argument', [...RCPT, ['DATA x', /^501 /]]],
  [
    'message and queue id',
    [...RCPT, ['DATA', /^354 /], ['Subject: hi\r\n\r\nbody\r\n.', /^250 2\.0\.0 Ok: queued as TEST\d+/]],
  ],
  [
    'bare LF smuggling rejected',
    [
      ...RCPT,
      ['DATA', /^354 /],
      ['a\n.\nMAIL FROM:<e@vil>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.', /^550 5\.6\.0 /],
      ['NOOP', /^250 /],
    ],
  ],
  [
    'BDAT',
    [
      ...RCPT,
      ['BDAT 5\r\nhello', /^250 2\.0\.0 5 octets/],
      ['BDAT 2 LAST\r\n\r\n', /^250 2\.0\.0 Ok: queued/],
    ],
  ],
  ['BDAT without MAIL still reads the chunk', [...EHLO, ['BDAT 4\r\nNOOP', /^503 /], ['NOOP', /^250 /]]],
  ['DATA after BDAT', [...RCPT, ['BDAT 1\r\nx', /^250 /], ['DATA', /^503 /]]],
];

let srv: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  srv = await startReceiver();
});
after(async () => {
  await srv.server.stop(100);
});

for (const [name, steps] of dialogues) {
  test(`dialogue: ${name}`, async () => {
    const c = await Raw.connect(srv.port);
    try {
      for (const [send, expect] of steps) {
        if (send !== null) c.send(send.endsWith('\n') || send.startsWith('BDAT') ? send : send + '\r\n');
        const r = await c.reply();
        assert.match(r, expect, `after ${JSON.stringify(send)}`);
      }
    } finally {
      c.end();
    }
  });
}

test('pipelined batch gets replies in order', async () => {
  const c = await Raw.connect(srv.port);
  await c.reply();
  c.send(
    'EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n',
  );
  assert.match(await c.reply(), /^250-/);
  assert.match(await c.reply(), /^250 2\.1\.0/);
  assert.match(await c.reply(), /^550 5\.7\.1/);
  assert.match(await c.reply(), /^250 2\.1\.5/);
  assert.match(await c.reply(), /^354/);
  c.send('x\r\n.\r\nQUIT\r\n');
  assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued/);
  assert.match(await c.reply(), /^221/);
  assert.ok(await c.waitClose());
});

test('stored message: Received header, exact bytes, envelope, case kept', async () => {
  const before = srv.sink.stored.length;
  const c = await Raw.connect(srv.port);
  await c.reply();
  for (const l of [
    'EHLO c.test',
    'MAIL FROM:<Alice@B.test> RET=HDRS',
    'RCPT TO:<Bob.Smith@Example.TEST> NOTIFY=NEVER',
    'DATA',
  ])
    await c.cmd(l);
  c.send('Subject: x\r\n\r\n..leading dot\r\nline2\r\n.\r\n');
  assert.match(await c.reply(), /^250 /);
  c.end();
  const m = srv.sink.stored[before]!;
  assert.equal(m.envelope.sender, 'Alice@B.test');
  assert.deepEqual(m.envelope.recipients, [{ address: 'Bob.Smith@Example.TEST', notify: ['NEVER'] }]);
  assert.equal(m.envelope.ret, 'HDRS');
  const text = m.data.toString();
  assert.match(
    text,
    /^Received: from c\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(ferrymail\) with ESMTP id TEST\d+\r\n\tfor <Bob\.Smith@Example\.TEST>; \w{3}, /,
  );
  assert.ok(text.endsWith('\r\nSubject: x\r\n\r\n.leading dot\r\nline2\r\n'));
});

test('too many errors closes with 421', async () => {
  const c = await Raw.connect(srv.port);
  await c.reply();
  let last = '';
  for (let i = 0; i < 30 && !c.closed; i++) {
    c.send('BOGUS\r\n');
    last = await c.reply();
    if (last.startsWith('421')) break;
  }
  assert.match(last, /^500[\s\S]*421 4\.7\.0|^421 4\.7\.0/);
  assert.ok(await c.waitClose());
});

test('disk full at commit gives 452 4.3.1', async () => {
  const c = await Raw.connect(srv.port);
  await c.reply();
  for (const l of ['EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<bob@example.test>', 'DATA'])
    await c.cmd(l);
  srv.sink.failNext = 'ENOSPC';
  assert.match(await c.cmd('x\r\n.'), /^452 4\.3\.1 /);
  assert.match(await c.cmd('NOOP'), /^250 /);
  c.end();
});

test('VRFY, when turned on, verifies local users', async () => {
  const s2 = await startReceiver({ users: ['alice'] });
  const { rcptPolicy } = await import('../../src/receiver/rcpt-policy.js');
  const { DomainPolicy } = await import('../../src/policy/domains.js');
  const { LocalUsers } = await import('../../src/policy/users.js');
  const { CidrList } = await import('../../src/policy/cidr.js');
  const domains = new DomainPolicy({ local: ['example.test'], relay: [] });
  const p = rcptPolicy(domains, new LocalUsers({ users: ['alice'] }, domains), new CidrList([]), {
    vrfy: true,
  });
  assert.match(p.vrfy!('alice')!.lines[0]!, /alice@example\.test/);
  assert.equal(p.vrfy!('<alice@example.test>').code, 250);
  assert.equal(p.vrfy!('mallory@example.test').code, 550);
  assert.equal(p.vrfy!('x@elsewhere.test').code, 252);
  await s2.server.stop(100);
});
