import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrList } from '../../src/policy/cidr.js';
import { parseIp, formatIp } from '../../src/policy/ip.js';

const list = new CidrList([
  '127.0.0.1/32',
  '10.0.0.0/8',
  '::1/128',
  '2001:db8::/32',
  '192.0.2.7',
  '172.16.5.9/12',
  '::ffff:198.51.100.0/120',
]);

const table: [ip: string, inside: boolean][] = [
  ['127.0.0.1', true],
  ['127.0.0.2', false],
  ['::ffff:127.0.0.1', true],
  ['::FFFF:127.0.0.1', true],
  ['0:0:0:0:0:ffff:7f00:1', true],
  ['10.0.0.0', true],
  ['10.255.255.255', true],
  ['11.0.0.0', false],
  ['9.255.255.255', false],
  ['::ffff:10.20.30.40', true],
  ['::1', true],
  ['0:0:0:0:0:0:0:1', true],
  ['::2', false],
  ['2001:db8::1', true],
  ['2001:DB8:ffff:ffff::', true],
  ['2001:db9::1', false],
  ['2001:db8::1%eth0', true],
  ['192.0.2.7', true],
  ['192.0.2.8', false],
  ['172.16.0.1', true], // host bits of 172.16.5.9/12 are ignored
  ['172.31.255.255', true],
  ['172.32.0.0', false],
  ['198.51.100.200', true],
  ['::ffff:198.51.100.1', true],
  ['198.51.101.1', false],
  ['::ffff:1.2.3.4', false],
  ['::127.0.0.1', false], // IPv4-compatible (deprecated) is not IPv4-mapped
  ['', false],
  ['not-an-ip', false],
  ['127.0.0.1/32', false],
  ['010.0.0.1', false],
];

for (const [ip, inside] of table) {
  test(`CidrList.contains(${JSON.stringify(ip)}) is ${inside}`, () => {
    assert.equal(list.contains(ip), inside);
  });
}

test('an empty list contains nothing; /0 entries cover one family each', () => {
  assert.equal(new CidrList([]).contains('127.0.0.1'), false);
  const v4all = new CidrList(['0.0.0.0/0']);
  assert.equal(v4all.contains('203.0.113.9'), true);
  assert.equal(v4all.contains('::ffff:203.0.113.9'), true);
  assert.equal(v4all.contains('2001:db8::1'), false);
  const v6all = new CidrList(['::/0']);
  assert.equal(v6all.contains('2001:db8::1'), true);
  assert.equal(v6all.contains('203.0.113.9'), false);
});

const invalid = [
  '10.0.0.0/33',
  '::1/129',
  '10.0.0.0/',
  '10.0.0.0/a',
  '10.0.0/8',
  '300.0.0.1',
  'localhost',
  '',
  '10.0.0.0/8/8',
  '::ffff:10.0.0.0/64',
  'fe80::1%eth0',
  '1::2::3/64',
  '10.0.0.0/-1',
  '10.0.0.0/+8',
];
for (const entry of invalid) {
  test(`CidrList rejects ${JSON.stringify(entry)} with a RangeError naming it`, () => {
    assert.throws(
      () => new CidrList(['127.0.0.1', entry]),
      (e: unknown) => e instanceof RangeError && e.message.includes(JSON.stringify(entry)),
    );
  });
}

test('toStrings gives canonical networks', () => {
  assert.deepEqual(
    new CidrList(['10.1.2.3/8', '2001:DB8:0:0::/32', '::1', '::ffff:10.0.0.0/104']).toStrings(),
    ['10.0.0.0/8', '2001:db8::/32', '::1/128', '10.0.0.0/8'],
  );
});

test('parseIp/formatIp round trip to RFC 5952 text', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
  ];
  for (const [input, want] of cases) {
    const ip = parseIp(input);
    assert.ok(ip, input);
    assert.equal(formatIp(ip), want);
  }
});

test('property: formatIp(parseIp(x)) matches the WHATWG URL canonical IPv6 text', async () => {
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(fc.ipV6(), (ip) => {
      const parsed = parseIp(ip);
      assert.ok(parsed, ip);
      if (parsed.version === 4) return; // IPv4-mapped: matched as IPv4 by design
      assert.equal(formatIp(parsed), new URL(`http://[${ip}]/`).hostname.slice(1, -1));
    }),
    { numRuns: 500 },
  );
});

test('property: contains agrees with integer arithmetic for IPv4 networks', async () => {
  const fc = (await import('fast-check')).default;
  const toInt = (s: string): number => s.split('.').reduce((a, p) => a * 256 + Number(p), 0);
  fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (net, ip, prefix) => {
      const size = 2 ** (32 - prefix);
      const inside = Math.floor(toInt(net) / size) === Math.floor(toInt(ip) / size);
      const list = new CidrList([`${net}/${prefix}`]);
      assert.equal(list.contains(ip), inside);
      assert.equal(list.contains(`::ffff:${ip}`), inside);
    }),
    { numRuns: 500 },
  );
});
