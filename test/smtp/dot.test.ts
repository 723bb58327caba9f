import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DotDecoder, dotEncode } from '../../src/smtp/dot.js';

/** Feed `input` split at the given cut points; return decoded text, where it ended, and the decoder. */
function decode(input: Buffer, cuts: number[] = [], opts = {}) {
  const d = new DotDecoder(opts);
  const points = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
  let prev = 0;
  const out: Buffer[] = [];
  for (const end of [...points, input.length]) {
    const r = d.push(input.subarray(prev, end));
    out.push(...r.chunks);
    if (r.done) return { data: Buffer.concat(out).toString('latin1'), end: prev + r.consumed, d };
    prev = end;
  }
  return { data: Buffer.concat(out).toString('latin1'), end: -1, d };
}

const cases: [string, string, string | null, string | null][] = [
  // input, decoded data, rest after terminator (null: not terminated), defect
  ['.\r\n', '', '', null],
  ['hello\r\n.\r\n', 'hello\r\n', '', null],
  ['hello\r\n.\r\nQUIT\r\n', 'hello\r\n', 'QUIT\r\n', null],
  ['..dot\r\n.\r\n', '.dot\r\n', '', null],
  ['a\r\n..\r\n.\r\n', 'a\r\n.\r\n', '', null],
  ['.x\r\n.\r\n', 'x\r\n', '', null],
  ['a\r\n.\r', 'a\r\n', null, null],
  ['a\r\n.', 'a\r\n', null, null],
  // smuggling vectors: never a terminator, always a defect
  ['a\n.\nMAIL FROM:<x@y>\r\n', 'a\n.\nMAIL FROM:<x@y>\r\n', null, 'bare-lf'],
  ['a\n.\r\nMAIL FROM:<x@y>\r\n', 'a\n.\r\nMAIL FROM:<x@y>\r\n', null, 'bare-lf'],
  ['a\r.\rMAIL\r\n', 'a\r.\rMAIL\r\n', null, 'bare-cr'],
  ['a\r\n.\rMAIL\r\n', 'a\r\n\rMAIL\r\n', null, 'bare-cr'],
  ['a\r\n.\nMAIL\r\n', 'a\r\n\nMAIL\r\n', null, 'bare-lf'],
  ['a\r.\r\nMAIL\r\n', 'a\r.\r\nMAIL\r\n', null, 'bare-cr'],
  ['a\n.\n\r\n.\r\n', 'a\n.\n\r\n', '', 'bare-lf'],
  ['a\rb\r\n.\r\n', 'a\rb\r\n', '', 'bare-cr'],
  ['\n\r\n.\r\n', '\n\r\n', '', 'bare-lf'],
];

test('dot decoder table, whole and one byte at a time', () => {
  for (const [input, data, rest, defect] of cases) {
    const buf = Buffer.from(input, 'latin1');
    for (const cuts of [[], Array.from({ length: buf.length }, (_, i) => i)]) {
      const r = decode(buf, cuts);
      assert.equal(r.data, data, JSON.stringify(input));
      assert.equal(r.end === -1 ? null : input.slice(r.end), rest, JSON.stringify(input));
      assert.equal(r.d.defect, defect, JSON.stringify(input));
    }
  }
});

test('size limit keeps scanning for the terminator', () => {
  const r = decode(Buffer.from('x'.repeat(100) + '\r\n.\r\nNOOP\r\n'), [], { maxBytes: 10 });
  assert.equal(r.d.defect, 'too-big');
  assert.equal(r.d.size, 102);
  assert.equal(r.data, '');
});

test('line length limit counts CRLF', () => {
  assert.equal(
    decode(Buffer.from('x'.repeat(998) + '\r\n.\r\n'), [], { maxLineLength: 1000 }).d.defect,
    null,
  );
  assert.equal(
    decode(Buffer.from('x'.repeat(999) + '\r\n.\r\n'), [], { maxLineLength: 1000 }).d.defect,
    'long-line',
  );
});

test('linear time on input without CR', () => {
  const r = decode(Buffer.alloc(4_000_000, 10));
  assert.equal(r.d.bareLf, true);
});

const lineArb = fc
  .array(fc.constantFrom('a', '.', ' ', 'é', '\t', 'Z', '..'), { maxLength: 30 })
  .map((xs) => xs.join(''));
const msgArb = fc.array(lineArb, { maxLength: 20 }).map((ls) => ls.map((l) => l + '\r\n').join(''));

test('property: decode(encode(m)) == m under any chunking', () => {
  fc.assert(
    fc.property(msgArb, fc.array(fc.nat(2000), { maxLength: 10 }), (m, cuts) => {
      const enc = dotEncode(Buffer.from(m, 'latin1'));
      const r = decode(Buffer.concat([enc, Buffer.from('NEXT')]), cuts);
      assert.equal(r.data, m);
      assert.equal(r.end, enc.length);
      assert.equal(r.d.defect, null);
    }),
    { numRuns: 500 },
  );
});

test('property: any bytes, any chunking: same result, never throws', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(13, 10, 46, 97), { maxLength: 60 }),
      fc.array(fc.nat(60), { maxLength: 8 }),
      (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        const a = decode(buf);
        const b = decode(buf, cuts);
        assert.deepEqual([b.data, b.end, b.d.defect], [a.data, a.end, a.d.defect]);
      },
    ),
    { numRuns: 2000 },
  );
});

test('encoder normalises bare CR/LF and never emits a smuggling sequence', () => {
  assert.equal(dotEncode(Buffer.from('')).toString(), '.\r\n');
  assert.equal(dotEncode(Buffer.from('a')).toString(), 'a\r\n.\r\n');
  assert.equal(dotEncode(Buffer.from('.a\r\n')).toString(), '..a\r\n.\r\n');
  assert.equal(dotEncode(Buffer.from('a\n.\nb\r.\rc')).toString(), 'a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n');
});

test('line length is the same whatever the chunking (a CR ending a chunk counts)', () => {
  const line = Buffer.from('x'.repeat(999) + '\r\n.\r\n');
  for (const cut of [0, 500, 999, 1000, 1001]) {
    assert.equal(decode(line, [cut], { maxLineLength: 1000 }).d.defect, 'long-line', `cut at ${cut}`);
  }
  const ok = Buffer.from('x'.repeat(998) + '\r\n.\r\n');
  for (const cut of [0, 998, 999, 1000]) {
    assert.equal(decode(ok, [cut], { maxLineLength: 1000 }).d.defect, null, `cut at ${cut}`);
  }
  const tiny = Buffer.from([4, 13, 10]);
  assert.equal(
    decode(tiny, [1, 2], { maxLineLength: 2 }).d.longLine,
    decode(tiny, [], { maxLineLength: 2 }).d.longLine,
  );
});

test('property: line-length verdict does not depend on chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(13, 10, 46, 97), { maxLength: 40 }),
      fc.array(fc.nat(40), { maxLength: 6 }),
      fc.integer({ min: 2, max: 8 }),
      (bytes, cuts, max) => {
        const buf = Buffer.from(bytes);
        assert.equal(
          decode(buf, cuts, { maxLineLength: max }).d.longLine,
          decode(buf, [], { maxLineLength: max }).d.longLine,
        );
      },
    ),
    { numRuns: 3000 },
  );
});
