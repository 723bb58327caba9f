import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { xtextDecode, xtextEncode } from '../../src/smtp/xtext.js';

test('xtextDecode', () => {
  const cases: [string, string | null][] = [
    ['', ''],
    ['abc', 'abc'],
    ['a+2Bb', 'a+b'],
    ['rfc822;a+40b', 'rfc822;a@b'],
    ['+3D', '='],
    ['+20', ' '],
    ['+2B+2B', '++'],
    ['QQ314159', 'QQ314159'],
    ['!~', '!~'],
    ['j+C3+B6', 'jö'],
    ['+F0+9F+98+80', '😀'],
    ['+00', '\x00'],
    ['a+2bb', null], // lower-case hex is not xtext
    ['a+2', null],
    ['a+', null],
    ['+', null],
    ['+G0', null],
    ['a=b', null],
    ['a b', null],
    ['a\tb', null],
    ['ö', null],
    ['\x7f', null],
    ['+C3', null], // octets that are not UTF-8
    ['+FF', null],
  ];
  for (const [s, want] of cases) assert.equal(xtextDecode(s), want, JSON.stringify(s));
});

test('xtextEncode', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['abc', 'abc'],
    ['a+b', 'a+2Bb'],
    ['a=b', 'a+3Db'],
    ['a b', 'a+20b'],
    ['rfc822;a@b', 'rfc822;a@b'],
    ['\r\n', '+0D+0A'],
    ['\x7f', '+7F'],
    ['jö', 'j+C3+B6'],
    ['!~', '!~'],
  ];
  for (const [s, want] of cases) assert.equal(xtextEncode(s), want, JSON.stringify(s));
});

test('property: decode(encode(s)) === s and the encoding is valid esmtp-value text', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (s) => {
      const e = xtextEncode(s);
      assert.match(e, /^[\x21-\x2a\x2c-\x3c\x3e-\x7e]*(\+[0-9A-F]{2}[\x21-\x2a\x2c-\x3c\x3e-\x7e]*)*$/);
      assert.equal(xtextDecode(e), s);
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
      xtextDecode(s); // never throws
    }),
    { numRuns: 1000 },
  );
});
