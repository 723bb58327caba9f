import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseEsmtpParams,
  parseHeloArg,
  parseMailArg,
  parseRcptArg,
  splitCommand,
  type EsmtpParam,
} from '../../src/smtp/command.js';
import { mailboxToString, type Path } from '../../src/smtp/types.js';

const ASCII = { utf8: false };
const UTF8 = { utf8: true };

test('splitCommand', () => {
  const cases: [string, string, string][] = [
    ['MAIL FROM:<a@b.test>', 'MAIL', 'FROM:<a@b.test>'],
    ['mail from:<a@b.test>', 'MAIL', 'from:<a@b.test>'],
    ['Rcpt To:<A@B.test> NOTIFY=NEVER', 'RCPT', 'To:<A@B.test> NOTIFY=NEVER'],
    ['QUIT', 'QUIT', ''],
    ['quit', 'QUIT', ''],
    ['RSET ', 'RSET', ''],
    ['EHLO  two.spaces', 'EHLO', ' two.spaces'],
    ['', '', ''],
    [' NOOP', '', 'NOOP'],
    ['NOOP\targ', 'NOOP\tARG', ''],
    ['straße x', 'STRAßE', 'x'], // only ASCII letters change case
  ];
  for (const [line, verb, arg] of cases) assert.deepEqual(splitCommand(line), { verb, arg }, line);
});

function mailboxOf(p: Path): string {
  return p.kind === 'mailbox' ? mailboxToString(p.mailbox) : p.kind;
}

// [arg, utf8, mailbox (or 'null'), params]
const MAIL_OK: [string, boolean, string, EsmtpParam[]][] = [
  ['FROM:<>', false, 'null', []],
  ['FROM:<userx@y.foo.org>', false, 'userx@y.foo.org', []],
  ['from:<Smith@bar.com>', false, 'Smith@bar.com', []],
  ['From:<JQP@bar.com>', false, 'JQP@bar.com', []],
  ['FROM: <a@b.test>', false, 'a@b.test', []], // one SP after the colon, as Postfix
  ['FROM:<@a,@b:user@d>', false, 'user@d', []],
  ['FROM:<a@b.test> SIZE=100', false, 'a@b.test', [{ keyword: 'SIZE', value: '100' }]],
  [
    'FROM:<a@b.test> SIZE=100 BODY=8BITMIME',
    false,
    'a@b.test',
    [
      { keyword: 'SIZE', value: '100' },
      { keyword: 'BODY', value: '8BITMIME' },
    ],
  ],
  ['FROM:<> RET=HDRS', false, 'null', [{ keyword: 'RET', value: 'HDRS' }]],
  ['FROM:<a@b.test> ENVID=a+2Bb', false, 'a@b.test', [{ keyword: 'ENVID', value: 'a+2Bb' }]],
  ['FROM:<a@b.test> body=8bitmime', false, 'a@b.test', [{ keyword: 'BODY', value: '8bitmime' }]],
  ['FROM:<a@b.test> SMTPUTF8', false, 'a@b.test', [{ keyword: 'SMTPUTF8', value: null }]],
  ['FROM:<a@b.test> AUTH=<>', false, 'a@b.test', [{ keyword: 'AUTH', value: '<>' }]],
  ['FROM:<a@b.test> SIZE=1 ', false, 'a@b.test', [{ keyword: 'SIZE', value: '1' }]],
  ['FROM:<a@b.test>  SIZE=1', false, 'a@b.test', [{ keyword: 'SIZE', value: '1' }]],
  ['FROM:<a@b.test> ', false, 'a@b.test', []],
  ['FROM:<"a> b"@c.test> SIZE=1', false, '"a> b"@c.test', [{ keyword: 'SIZE', value: '1' }]],
  ['FROM:<jösé@b.test> SMTPUTF8', true, 'jösé@b.test', [{ keyword: 'SMTPUTF8', value: null }]],
  [
    'FROM:<a@b.test> SMTPUTF8 ENVID=ö',
    true,
    'a@b.test',
    [
      { keyword: 'SMTPUTF8', value: null },
      { keyword: 'ENVID', value: 'ö' },
    ],
  ],
  ['FROM:<a@[192.0.2.1]>', false, 'a@[192.0.2.1]', []],
];

test('parseMailArg accepts', () => {
  for (const [arg, utf8, mb, params] of MAIL_OK) {
    const r = parseMailArg(arg, { utf8 });
    assert.ok(r.ok, `${arg}: ${r.ok ? '' : r.error.text}`);
    assert.equal(mailboxOf(r.path), mb, arg);
    assert.deepEqual(r.params, params, arg);
  }
});

// [arg, utf8, code, enhanced, text]
const MAIL_BAD: [string, boolean, number, string, string][] = [
  ['FROM:user@x.test', false, 501, '5.1.7', 'angle brackets'],
  ['FROM:', false, 501, '5.1.7', 'missing path'],
  ['FROM: ', false, 501, '5.1.7', 'missing path'],
  ['FROM:  <a@b.test>', false, 501, '5.1.7', 'angle brackets'],
  ['FROM:\t<a@b.test>', false, 501, '5.1.7', 'angle brackets'],
  ['FROM <a@b.test>', false, 501, '5.5.4', 'Syntax: MAIL FROM:<address>'],
  ['<a@b.test>', false, 501, '5.5.4', 'Syntax: MAIL FROM:<address>'],
  ['TO:<a@b.test>', false, 501, '5.5.4', 'Syntax: MAIL FROM:<address>'],
  ['', false, 501, '5.5.4', 'Syntax'],
  ['FROM:<Postmaster>', false, 501, '5.1.7', '<Postmaster> without a domain'],
  ['FROM:<a..b@x.test>', false, 501, '5.1.7', 'Bad sender address syntax: local part has two dots'],
  ['FROM:<a@b.test>SIZE=1', false, 501, '5.5.4', 'after the path'],
  ['FROM:<a@b.test>>', false, 501, '5.5.4', 'after the path'],
  ['FROM:<a@b.test> SIZE=', false, 555, '5.5.4', 'SIZE has an empty value'],
  ['FROM:<a@b.test> =x', false, 555, '5.5.4', 'no keyword'],
  ['FROM:<a@b.test> SIZE=1 SIZE=2', false, 555, '5.5.4', 'given twice'],
  ['FROM:<a@b.test> size=1 SIZE=2', false, 555, '5.5.4', 'given twice'],
  ['FROM:<a@b.test> -X=1', false, 555, '5.5.4', "bad parameter keyword '-X'"],
  ['FROM:<a@b.test> X_Y=1', false, 555, '5.5.4', "bad parameter keyword 'X_Y'"],
  ['FROM:<a@b.test> ENVID=a=b', false, 555, '5.5.4', "'=' in its value"],
  ['FROM:<a@b.test> ENVID=a\x01b', false, 555, '5.5.4', 'invalid character'],
  ['FROM:<a@b.test> ENVID=ö', false, 555, '5.5.4', 'non-ASCII value without SMTPUTF8'],
  ['FROM:<a@b.test> ENVID=ö', true, 555, '5.5.4', 'non-ASCII value without SMTPUTF8'],
  ['FROM:<a@b.test> SIZE=1\tBODY=7BIT', false, 555, '5.5.4', 'SIZE has an invalid character'],
  ['FROM:<jösé@b.test>', false, 553, '5.6.7', 'requires SMTPUTF8'],
  ['FROM:<jösé@b.test> SMTPUTF8', false, 553, '5.6.7', 'requires SMTPUTF8'],
  ['FROM:<jösé@b.test>', true, 553, '5.6.7', 'requires SMTPUTF8'],
  ['FROM:<a@münchen.de> BODY=8BITMIME', true, 553, '5.6.7', 'requires SMTPUTF8'],
  [`FROM:<${'a'.repeat(65)}@b.test>`, false, 553, '5.1.7', 'local part longer than 64 octets'],
];

test('parseMailArg rejects', () => {
  for (const [arg, utf8, code, enhanced, text] of MAIL_BAD) {
    const r = parseMailArg(arg, { utf8 });
    assert.ok(!r.ok, `${JSON.stringify(arg)} should fail`);
    assert.equal(r.error.code, code, `${arg}: ${r.error.text}`);
    assert.equal(r.error.enhanced, enhanced, `${arg}: ${r.error.text}`);
    assert.ok(r.error.text.includes(text), `${arg}: '${r.error.text}' lacks '${text}'`);
  }
});

const RCPT_OK: [string, boolean, string, EsmtpParam[]][] = [
  ['TO:<Jones@foo.com>', false, 'Jones@foo.com', []],
  ['to:<Green@foo.com>', false, 'Green@foo.com', []],
  ['To:<@hosta.int,@jkl.org:userc@d.bar.org>', false, 'userc@d.bar.org', []],
  ['TO:<@jkl.org:userc@d.bar.org>', false, 'userc@d.bar.org', []],
  ['TO:<Postmaster>', false, 'postmaster', []],
  ['TO:<postmaster>', false, 'postmaster', []],
  ['TO:<Postmaster@foo.com>', false, 'Postmaster@foo.com', []],
  ['TO: <a@b.test>', false, 'a@b.test', []],
  ['TO:<user%other@local.test>', false, 'user%other@local.test', []],
  ['TO:<"user@other"@local.test>', false, '"user@other"@local.test', []],
  ['TO:<other!user@local.test>', false, 'other!user@local.test', []],
  ['TO:<@other.test:user@local.test>', false, 'user@local.test', []],
  [
    'TO:<a@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b',
    false,
    'a@b.test',
    [
      { keyword: 'NOTIFY', value: 'SUCCESS,FAILURE' },
      { keyword: 'ORCPT', value: 'rfc822;a+40b' },
    ],
  ],
  ['TO:<a@b.test> NOTIFY=NEVER', false, 'a@b.test', [{ keyword: 'NOTIFY', value: 'NEVER' }]],
  ['TO:<jösé@münchen.de>', true, 'jösé@münchen.de', []],
  ['TO:<a@b.test> ORCPT=utf-8;jö', true, 'a@b.test', [{ keyword: 'ORCPT', value: 'utf-8;jö' }]],
];

test('parseRcptArg accepts', () => {
  for (const [arg, utf8, mb, params] of RCPT_OK) {
    const r = parseRcptArg(arg, { utf8 });
    assert.ok(r.ok, `${arg}: ${r.ok ? '' : r.error.text}`);
    assert.equal(mailboxOf(r.path), mb, arg);
    assert.deepEqual(r.params, params, arg);
  }
  const pm = parseRcptArg('TO:<PostMaster>', ASCII);
  assert.ok(pm.ok, 'pm.ok');
  assert.deepEqual(pm.path, { kind: 'postmaster', raw: 'PostMaster' });
  const routed = parseRcptArg('TO:<@other.test:user@local.test>', ASCII);
  assert.ok(routed.ok && routed.path.kind === 'mailbox', 'routed.ok && routed.path.kind === mailbox');
  assert.deepEqual(routed.path.route, ['other.test']);
  assert.equal(routed.path.mailbox.domain, 'local.test');
});

const RCPT_BAD: [string, boolean, number, string, string][] = [
  ['TO:<>', false, 501, '5.1.3', '<> is not a recipient'],
  ['TO:user@x.test', false, 501, '5.1.3', 'angle brackets'],
  ['TO:', false, 501, '5.1.3', 'missing path'],
  ['TO <a@b.test>', false, 501, '5.5.4', 'Syntax: RCPT TO:<address>'],
  ['FROM:<a@b.test>', false, 501, '5.5.4', 'Syntax: RCPT TO:<address>'],
  ['TO:<a@b.test.>', false, 501, '5.1.3', 'domain ends with a dot'],
  ['TO:<a@[1.2.3.999]>', false, 501, '5.1.3', 'out of range'],
  ['TO:<jösé@b.test>', false, 553, '5.6.7', 'requires SMTPUTF8'],
  ['TO:<a@b.test> NOTIFY=', false, 555, '5.5.4', 'empty value'],
  ['TO:<a@b.test> ORCPT=rfc822;a=b', false, 555, '5.5.4', "'='"],
  ['TO:<a@b.test> ORCPT=utf-8;jö', false, 555, '5.5.4', 'non-ASCII'],
  ['TO:<a@b.test>x', false, 501, '5.5.4', 'after the path'],
  ['TO:<Postmaster> x=', false, 555, '5.5.4', 'empty value'],
];

test('parseRcptArg rejects', () => {
  for (const [arg, utf8, code, enhanced, text] of RCPT_BAD) {
    const r = parseRcptArg(arg, { utf8 });
    assert.ok(!r.ok, `${JSON.stringify(arg)} should fail`);
    assert.equal(r.error.code, code, `${arg}: ${r.error.text}`);
    assert.equal(r.error.enhanced, enhanced, `${arg}: ${r.error.text}`);
    assert.ok(r.error.text.includes(text), `${arg}: '${r.error.text}' lacks '${text}'`);
  }
});

test('parseEsmtpParams', () => {
  const ok: [string, EsmtpParam[]][] = [
    ['', []],
    ['SIZE=100', [{ keyword: 'SIZE', value: '100' }]],
    ['size=100', [{ keyword: 'SIZE', value: '100' }]],
    ['SMTPUTF8', [{ keyword: 'SMTPUTF8', value: null }]],
    ['X-FOO=bar-BAZ', [{ keyword: 'X-FOO', value: 'bar-BAZ' }]],
    ['9X=1', [{ keyword: '9X', value: '1' }]],
    ['A=!~<>', [{ keyword: 'A', value: '!~<>' }]],
    [
      'RET=FULL ENVID=QQ314159',
      [
        { keyword: 'RET', value: 'FULL' },
        { keyword: 'ENVID', value: 'QQ314159' },
      ],
    ],
    [
      ' A  B=1 ',
      [
        { keyword: 'A', value: null },
        { keyword: 'B', value: '1' },
      ],
    ],
  ];
  for (const [s, want] of ok) assert.deepEqual(parseEsmtpParams(s), want, s);
  const bad = [
    '=x',
    'SIZE=',
    'A=b=c',
    '-A',
    'A_B',
    'A.B=1',
    'A=\x7f',
    'A=b\tc',
    'A=\x00',
    'A=ö',
    'é=1',
    'A B A',
    'A\r\nB',
  ];
  for (const s of bad) assert.equal(parseEsmtpParams(s), null, JSON.stringify(s));
  assert.deepEqual(parseEsmtpParams('A=ö', true), [{ keyword: 'A', value: 'ö' }]);
  assert.equal(parseEsmtpParams('A=\u0085', true), null);
});

test('parseHeloArg', () => {
  const ok = [
    'mail.example.com',
    'MAIL.EXAMPLE.COM',
    'localhost',
    'a',
    '[192.0.2.1]',
    '[IPv6:::1]',
    '[IPv6:2001:db8::1]',
    'x.test  ',
  ];
  for (const a of ok) assert.deepEqual(parseHeloArg(a), { ok: true, domain: a.trimEnd() }, a);
  const bad = [
    '',
    ' ',
    'example.com.',
    'exa mple.com',
    'DESKTOP_ABC',
    '192.0.2.1',
    '[192.0.2.300]',
    '[IPv6:1::2::3]',
    'münchen.de',
    '-a.test',
    'a..b',
    'x.test extra',
    ' x.test',
    'x.test\r',
    '[1.2.3.4',
  ];
  for (const a of bad) assert.deepEqual(parseHeloArg(a), { ok: false }, JSON.stringify(a));
});

// ---- properties ----------------------------------------------------------------------------------

const local = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\.[A-Za-z0-9_-]{1,5}){0,2}$/);
const domain = fc.stringMatching(/^([a-z0-9]{1,8}\.){0,3}[a-z][a-z0-9]{0,6}$/);
const keyword = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,8}$/);
const value = fc.stringMatching(/^[\x21-\x3c\x3e-\x7e]{1,10}$/);
const params = fc.uniqueArray(fc.tuple(keyword, fc.option(value)), {
  maxLength: 4,
  selector: ([k]) => k.toUpperCase(),
});

test('property: MAIL/RCPT round-trip generated mailboxes and params', () => {
  fc.assert(
    fc.property(local, domain, params, fc.boolean(), (l, d, ps, mail) => {
      const mb = `${l}@${d}`;
      const tail = ps.map(([k, v]) => (v === null ? ` ${k}` : ` ${k}=${v}`)).join('');
      const r = mail ? parseMailArg(`FROM:<${mb}>${tail}`, ASCII) : parseRcptArg(`TO:<${mb}>${tail}`, ASCII);
      if (!r.ok) throw new Error(`${mb}${tail}: ${r.error.text}`);
      assert.equal(mailboxOf(r.path), mb);
      assert.deepEqual(
        r.params,
        ps.map(([k, v]) => ({ keyword: k.toUpperCase(), value: v })),
      );
    }),
    { numRuns: 500 },
  );
});

test('property: parseMailArg/parseRcptArg/parseHeloArg never throw', () => {
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: fc.constantFrom(...'FROMTO:<>@."\\[]=, aZ9-+\r\n\x00é'.split('')), maxLength: 50 }),
    fc
      .tuple(fc.constantFrom('FROM:', 'TO:', 'from: ', 'to:'), fc.string({ maxLength: 40 }))
      .map(([a, b]) => a + '<' + b),
  );
  fc.assert(
    fc.property(text, fc.boolean(), (s, utf8) => {
      for (const r of [parseMailArg(s, { utf8 }), parseRcptArg(s, { utf8 })]) {
        if (!r.ok) {
          assert.ok([501, 553, 555].includes(r.error.code), '[501, 553, 555].includes(r.error.code)');
          assert.match(r.error.text, /^[\x20-\x7e]+$/);
        }
      }
      parseHeloArg(s);
      parseEsmtpParams(s, utf8);
      splitCommand(s);
    }),
    { numRuns: 2000 },
  );
});

test('UTF8 opts are passed through to the path parser', () => {
  assert.equal(parseRcptArg('TO:<jö@x.test>', UTF8).ok, true);
  assert.equal(parseRcptArg('TO:<jö@x.test>', ASCII).ok, false);
});
