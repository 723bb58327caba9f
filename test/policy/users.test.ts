import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalUsers, MAX_ALIAS_DEPTH, type LocalUsersConfig } from '../../src/policy/users.js';
import { DomainPolicy } from '../../src/policy/domains.js';
import { parseMailbox } from '../../src/smtp/address.js';
import type { Mailbox } from '../../src/smtp/types.js';

const domains = new DomainPolicy({ local: ['example.test', 'other.example'], relay: ['relay.test'] });

function mb(s: string): Mailbox {
  const m = parseMailbox(s, { utf8: true });
  assert.ok(m, `parses: ${s}`);
  return m;
}

const config: LocalUsersConfig = {
  users: ['alice', 'Bob', 'carol@other.example'],
  aliases: {
    sales: ['alice', 'dave@remote.test'],
    'info@other.example': 'carol',
    team: ['sales', 'bob', 'team'],
    loop1: 'loop2',
    loop2: 'loop1',
    fwd: 'someone@relay.test',
    Root: 'alice',
  },
};
const users = new LocalUsers(config, domains);

const checks: [addr: string, ok: boolean][] = [
  ['alice@example.test', true],
  ['ALICE@example.test', true],
  ['alice@other.example', true],
  ['bob@example.test', true],
  ['alice+news@example.test', true],
  ['alice+news+more@example.test', true],
  ['"alice"@example.test', true],
  ['carol@other.example', true],
  ['carol@example.test', false],
  ['mallory@example.test', false],
  ['alice-news@example.test', false],
  ['+alice@example.test', false],
  ['postmaster@example.test', true],
  ['POSTMASTER@other.example', true],
  ['postmaster+x@example.test', true],
  ['sales@example.test', true],
  ['sales+q3@example.test', true],
  ['info@other.example', true],
  ['info@example.test', false],
  ['root@example.test', true],
];
for (const [addr, ok] of checks) {
  test(`LocalUsers.check(${addr}) is ${ok ? 'known' : 'unknown'}`, () => {
    const r = users.check(mb(addr));
    if (ok) assert.deepEqual(r, { ok: true });
    else assert.deepEqual(r, { ok: false, code: 550, enhanced: '5.1.1', text: 'No such user here' });
  });
}

test('without a users list every local part is known', () => {
  const open = new LocalUsers({}, domains);
  assert.deepEqual(open.check(mb('anyone@example.test')), { ok: true });
  assert.deepEqual(new LocalUsers({ users: [] }, domains).check(mb('x@example.test')), { ok: true });
});

test('case-sensitive local parts', () => {
  const cs = new LocalUsers({ users: ['Alice'], caseSensitive: true, aliases: { Sales: 'Alice' } }, domains);
  assert.equal(cs.check(mb('Alice@example.test')).ok, true);
  assert.equal(cs.check(mb('alice@example.test')).ok, false);
  assert.equal(cs.check(mb('Sales@example.test')).ok, true);
  assert.equal(cs.check(mb('sales@example.test')).ok, false);
  assert.equal(cs.check(mb('PostMaster@example.test')).ok, true);
  assert.deepEqual(cs.mailboxFolder(mb('Alice+x@Example.TEST')), {
    ok: true,
    domain: 'example.test',
    user: 'Alice',
  });
  assert.deepEqual(cs.mailboxFolder(mb('PostMaster@example.test')), {
    ok: true,
    domain: 'example.test',
    user: 'postmaster',
  });
});

const expansions: [addr: string, want: string[]][] = [
  ['alice@example.test', ['alice@example.test']],
  ['Alice+tag@Example.TEST', ['Alice+tag@Example.TEST']], // no alias: exactly as given
  ['sales@example.test', ['alice@example.test', 'dave@remote.test']],
  ['SALES+x@example.test', ['alice@example.test', 'dave@remote.test']],
  ['sales@other.example', ['alice@other.example', 'dave@remote.test']],
  ['info@other.example', ['carol@other.example']],
  ['info@example.test', ['info@example.test']],
  // team -> sales -> alice, dave; bob; team names itself: delivered to its own mailbox.
  ['team@example.test', ['alice@example.test', 'dave@remote.test', 'bob@example.test', 'team@example.test']],
  ['loop1@example.test', ['loop1@example.test']],
  ['loop2@example.test', ['loop2@example.test']],
  ['fwd@example.test', ['someone@relay.test']],
  ['root@example.test', ['alice@example.test']],
  ['sales@remote.test', ['sales@remote.test']], // remote addresses are never expanded
];
for (const [addr, want] of expansions) {
  test(`LocalUsers.expand(${addr})`, () => {
    assert.deepEqual(users.expand(mb(addr)), want);
  });
}

test('long alias chains stop at MAX_ALIAS_DEPTH', () => {
  const aliases: Record<string, string> = {};
  for (let i = 0; i < 50; i++) aliases[`a${i}`] = `a${i + 1}`;
  const u = new LocalUsers({ aliases }, domains);
  assert.deepEqual(u.expand(mb('a0@example.test')), [`a${MAX_ALIAS_DEPTH}@example.test`]);
});

test('alias fan-out is deduplicated and bounded', () => {
  const aliases: Record<string, string[]> = { all: [] };
  for (let i = 0; i < 5; i++) aliases[`g${i}`] = Array.from({ length: 500 }, (_, j) => `u${j}`);
  aliases['all'] = ['g0', 'g1', 'g2', 'g3', 'g4'];
  const u = new LocalUsers({ aliases }, domains);
  const out = u.expand(mb('all@example.test'));
  assert.equal(out.length, 500);
  assert.equal(new Set(out).size, 500);
});

test('mailboxFolder lowercases and strips the detail', () => {
  assert.deepEqual(users.mailboxFolder(mb('Alice+News@Example.TEST')), {
    ok: true,
    domain: 'example.test',
    user: 'alice',
  });
  assert.deepEqual(users.mailboxFolder(mb('"john smith"@example.test')), {
    ok: true,
    domain: 'example.test',
    user: 'john smith',
  });
  assert.deepEqual(users.mailboxFolder(mb('ü@Bücher.example')), {
    ok: true,
    domain: 'xn--bcher-kva.example',
    user: 'ü',
  });
  const noDetail = new LocalUsers({ detailSeparator: '' }, domains);
  assert.deepEqual(noDetail.mailboxFolder(mb('a+b@example.test')), {
    ok: true,
    domain: 'example.test',
    user: 'a+b',
  });
  const dash = new LocalUsers({ detailSeparator: '-' }, domains);
  assert.deepEqual(dash.mailboxFolder(mb('a-b+c@example.test')), {
    ok: true,
    domain: 'example.test',
    user: 'a',
  });
});

const escapes = [
  '"..\\/x"@example.test',
  '".."@example.test',
  '"."@example.test',
  '"../../etc"@example.test',
  'a/b@example.test',
  '"/etc/passwd"@example.test',
  '".hidden"@example.test',
  '"a\\\\b"@example.test',
  '"..+x"@example.test',
  '"a\tb"@example.test',
];
for (const addr of escapes) {
  test(`mailboxFolder refuses path escape ${addr}`, () => {
    const m = parseMailbox(addr, { utf8: true });
    if (m === null) return; // the parser already refuses it: nothing to escape with
    assert.deepEqual(users.mailboxFolder(m), {
      ok: false,
      code: 550,
      enhanced: '5.1.3',
      text: 'Mailbox name not allowed here',
    });
  });
}

test('the path-escape table is not vacuous: the parser lets most of it through', () => {
  assert.ok(escapes.filter((a) => parseMailbox(a, { utf8: true }) !== null).length >= 9);
});

test('mailboxFolder refuses a hand-built mailbox with NUL or a slash in the domain', () => {
  const base = mb('x@example.test');
  assert.equal(users.mailboxFolder({ ...base, localValue: 'a\u0000b' }).ok, false);
  assert.equal(users.mailboxFolder({ ...base, domainAscii: '../x' }).ok, false);
  assert.equal(users.mailboxFolder({ ...base, localValue: 'x'.repeat(300) }).ok, false);
});

test('bad config throws RangeError naming the entry', () => {
  const bad: [LocalUsersConfig, string][] = [
    [{ users: ['a b'] }, '"a b"'],
    [{ users: ['x@remote.test'] }, '"x@remote.test"'],
    [{ aliases: { 'a b': 'x' } }, '"a b"'],
    [{ aliases: { sales: [] } }, '"sales"'],
    [{ aliases: { sales: 'not an address' } }, '"not an address"'],
    [{ aliases: { 'x@remote.test': 'alice' } }, '"x@remote.test"'],
    [{ detailSeparator: '@' }, '"@"'],
  ];
  for (const [cfg, name] of bad) {
    assert.throws(
      () => new LocalUsers(cfg, domains),
      (e: unknown) => e instanceof RangeError && e.message.includes(name),
      JSON.stringify(cfg),
    );
  }
});
