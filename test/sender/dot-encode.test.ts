/**
 * The sender's DATA encoding (src/smtp/dot.ts `dotEncode`, shared with the lead's codec): the
 * sender-side smuggling invariant is pinned here too, since the client relies on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dotEncode } from '../../src/smtp/dot.js';

const enc = (s: string) => dotEncode(Buffer.from(s, 'latin1')).toString('latin1');

test('dot-stuffs lines that start with a dot and terminates with CRLF.CRLF', () => {
  assert.equal(enc('a\r\n.b\r\n..c\r\n'), 'a\r\n..b\r\n...c\r\n.\r\n');
  assert.equal(enc('.\r\n'), '..\r\n.\r\n');
  assert.equal(enc('.start'), '..start\r\n.\r\n');
});

test('an empty message is just the terminator; an unterminated last line gets CRLF', () => {
  assert.equal(enc(''), '.\r\n');
  assert.equal(enc('x'), 'x\r\n.\r\n');
  assert.equal(enc('x\r\n'), 'x\r\n.\r\n');
});

test('bare LF and bare CR become CRLF, so smuggling sequences cannot end the data', () => {
  assert.equal(enc('a\n.\nb'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(enc('a\r.\rb'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(enc('a\n.\r\nb'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(enc('a\r\n.\nb'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(enc('a\r\r\nb'), 'a\r\n\r\nb\r\n.\r\n');
  assert.equal(enc('a\r'), 'a\r\n.\r\n');
});

test('property: output has only CRLF line ends, one terminator at the end, and decodes back', () => {
  const bytes = fc
    .uint8Array({ maxLength: 200 })
    .map((a) => a.map((b) => [0x0d, 0x0a, 0x2e, 0x61, b][b % 5] as number));
  fc.assert(
    fc.property(bytes, (msg) => {
      const out = dotEncode(Buffer.from(msg)).toString('latin1');
      // no bare CR / bare LF
      assert.equal(/\r(?!\n)|(?<!\r)\n/.test(out), false);
      // the first CRLF.CRLF (counting the DATA line's CRLF before the body) is the very end
      const framed = '\r\n' + out;
      assert.equal(framed.indexOf('\r\n.\r\n'), framed.length - 5);
      // unstuffing gives the message with every line end normalised
      const body = out.slice(0, -3);
      const unstuffed = body
        .split('\r\n')
        .map((l) => (l.startsWith('.') ? l.slice(1) : l))
        .join('\r\n');
      const normal = Buffer.from(msg)
        .toString('latin1')
        .replace(/\r\n|\r|\n/g, '\r\n');
      assert.equal(unstuffed, normal.length === 0 || normal.endsWith('\r\n') ? normal : normal + '\r\n');
    }),
  );
});
