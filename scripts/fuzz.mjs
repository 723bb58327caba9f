#!/usr/bin/env node
// A longer property-based fuzz run of the pure protocol core, outside CI (issue 7):
//   npm run build && node scripts/fuzz.mjs [runs per property, default 100000] [seed]
// Properties: the command/path parsers never throw and answer in their documented shapes; the
// DotDecoder never throws, gives the same result whatever the chunking, and undoes dotEncode; the
// receiver Session never throws on random command sequences and every reply it emits is
// well-formed; the ReplyParser only ever throws ReplySyntaxError, is chunking-independent, and
// round-trips formatReply. Prints a summary; exits 1 with the counterexample on a failure.
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => path.join(root, 'dist', 'src', p);
if (!existsSync(dist('smtp/command.js'))) {
  console.error('fuzz: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const runs = Number(process.argv[2] ?? 100000);
const seed =
  process.argv[3] !== undefined ? Number(process.argv[3]) : Date.now() ^ (Math.random() * 0x7fffffff);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node scripts/fuzz.mjs [runs >= 1] [seed]');
  process.exit(2);
}

const { splitCommand, parseMailArg, parseRcptArg, parseEsmtpParams } = await import(dist('smtp/command.js'));
const { parsePath, parseMailbox } = await import(dist('smtp/address.js'));
const { DotDecoder, dotEncode } = await import(dist('smtp/dot.js'));
const { ReplyParser, ReplySyntaxError, formatReply } = await import(dist('smtp/reply.js'));
const { Session } = await import(dist('receiver/session.js'));
const { rcptPolicy } = await import(dist('receiver/rcpt-policy.js'));
const { DomainPolicy } = await import(dist('policy/domains.js'));
const { LocalUsers } = await import(dist('policy/users.js'));
const { CidrList } = await import(dist('policy/cidr.js'));

// ---- generators ---------------------------------------------------------------------------------

/** Strings biased toward the characters that matter to the SMTP grammar. */
const smtpChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'<>@:,."\\[]%!=+- \t\r\n\0abcXYZ019'.split('')) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'IPv6:',
      'FROM:',
      'TO:',
      'SIZE=',
      'BODY=8BITMIME',
      'SMTPUTF8',
      'NOTIFY=',
      'ORCPT=rfc822;',
      'postmaster',
      'example.test',
      '\u00e9',
      '\u0430',
      '\uFF21',
      '\u3002',
      '\uD83D\uDE00',
      'xn--',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 1 }) },
);
const smtpString = fc.array(smtpChar, { maxLength: 80 }).map((a) => a.join(''));
const anyString = fc.oneof(
  smtpString,
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ maxLength: 600 }),
);

const byteChunks = (bytes) =>
  fc.array(fc.integer({ min: 1, max: Math.max(1, bytes.length) }), { maxLength: 40 }).map((cuts) => {
    const out = [];
    let at = 0;
    for (const c of cuts) {
      if (at >= bytes.length) break;
      out.push(bytes.subarray(at, Math.min(bytes.length, at + c)));
      at += c;
    }
    if (at < bytes.length) out.push(bytes.subarray(at));
    return out;
  });

/** Message bytes rich in CR, LF and dots. */
const messageBytes = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          [13, 10],
          [13, 10, 46, 13, 10],
          [46],
          [13],
          [10],
          [0],
          [32],
          [120, 120, 120],
        ),
      },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [b]) },
    ),
    { maxLength: 200 },
  )
  .map((a) => Buffer.from(a.flat()));
const crlfMessage = fc
  .array(
    fc
      .array(fc.oneof(fc.constant('.'), fc.constant('x'), fc.constant(' '), fc.constant('\u00ff')), {
        maxLength: 30,
      })
      .map((a) => a.join('')),
    { maxLength: 30 },
  )
  .map((lines) => Buffer.from(lines.map((l) => l + '\r\n').join(''), 'latin1'));

// ---- properties ----------------------------------------------------------------------------------

const isPathError = (e) =>
  e && typeof e.code === 'number' && e.code >= 400 && e.code < 600 && typeof e.text === 'string';
const checkArg = (r) => {
  if (r.ok) {
    if (!['null', 'postmaster', 'mailbox'].includes(r.path.kind))
      throw new Error(`bad path kind ${r.path.kind}`);
    if (!Array.isArray(r.params)) throw new Error('params is not an array');
  } else if (!isPathError(r.error)) throw new Error(`malformed error ${JSON.stringify(r.error)}`);
};

const properties = {
  'parser: splitCommand/parseMailArg/parseRcptArg/parsePath never throw, shapes hold': fc.property(
    anyString,
    fc.boolean(),
    (s, utf8) => {
      const c = splitCommand(s);
      if (typeof c.verb !== 'string' || typeof c.arg !== 'string') throw new Error('splitCommand shape');
      if (c.verb !== c.verb.replace(/[a-z]/g, (x) => x.toUpperCase())) throw new Error('verb not uppercased');
      checkArg(parseMailArg(s, { utf8 }));
      checkArg(parseRcptArg(s, { utf8 }));
      checkArg(parseMailArg('FROM:' + s, { utf8 }));
      checkArg(parseRcptArg('TO:' + s, { utf8 }));
      const p = parsePath(s.startsWith('<') ? s : '<' + s, 0, { utf8 });
      if (p.ok && (p.end < 2 || p.end > s.length + 1)) throw new Error(`parsePath end ${p.end}`);
      parseMailbox(s, { utf8 });
      const params = parseEsmtpParams(s, utf8);
      if (params !== null && !Array.isArray(params)) throw new Error('params shape');
    },
  ),

  'parser: an accepted recipient never holds CR, LF or NUL, and stays within 256 octets': fc.property(
    smtpString,
    (s) => {
      const r = parseRcptArg('TO:<' + s + '>', { utf8: true });
      if (r.ok && r.path.kind === 'mailbox') {
        const m = r.path.mailbox;
        const text = JSON.stringify(m);
        if (/\\[rn]|\\u0000/.test(text)) throw new Error(`control character accepted: ${text}`);
        if (Buffer.byteLength(s) + 2 > 256)
          throw new Error(`over-long path accepted (${Buffer.byteLength(s) + 2})`);
      }
    },
  ),

  'dot: DotDecoder never throws and gives the same result whatever the chunking': fc.property(
    messageBytes.chain((m) =>
      fc.tuple(
        fc.constant(m),
        byteChunks(m),
        fc.integer({ min: 0, max: 2000 }),
        fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 200 })),
      ),
    ),
    ([bytes, chunks, maxBytes, maxLine]) => {
      // Past maxBytes the decoder keeps nothing more and the message is refused (too-big), so the
      // kept prefix may depend on the chunking then; everything else may not.
      const run = (parts) => {
        const d = new DotDecoder({ maxBytes, maxLineLength: maxLine });
        const out = [];
        let consumed = 0;
        for (const p of parts) {
          const r = d.push(p);
          out.push(...r.chunks);
          consumed += r.consumed;
          if (r.done)
            return {
              out: d.tooBig ? '' : Buffer.concat(out).toString('latin1'),
              consumed,
              done: true,
              defect: d.defect,
            };
          if (r.consumed !== p.length) throw new Error('consumed less than the chunk without done');
        }
        return {
          out: d.tooBig ? '' : Buffer.concat(out).toString('latin1'),
          consumed,
          done: false,
          defect: d.defect,
        };
      };
      const whole = run([bytes]);
      const split = run(chunks);
      const bytewise = run([...bytes].map((b) => Buffer.from([b])));
      for (const [name, r] of [
        ['split', split],
        ['bytewise', bytewise],
      ]) {
        if (JSON.stringify(r) !== JSON.stringify(whole))
          throw new Error(`${name} differs: ${JSON.stringify(r)} vs ${JSON.stringify(whole)}`);
      }
      // Only CRLF.CRLF (or "." CRLF at the very start) ends the data.
      if (whole.done) {
        const s = bytes.subarray(0, whole.consumed).toString('latin1');
        if (!(s === '.\r\n' || s.endsWith('\r\n.\r\n')))
          throw new Error(`ended at ${JSON.stringify(s.slice(-8))}`);
        if (s !== '.\r\n' && s.slice(0, -3).includes('\r\n.\r\n'))
          throw new Error('missed an earlier terminator');
      }
    },
  ),

  'dot: decode(dotEncode(m)) is m for CRLF text, and the encoding has one terminator': fc.property(
    crlfMessage.chain((m) => fc.tuple(fc.constant(m), byteChunks(dotEncode(m)))),
    ([m, chunks]) => {
      const wire = dotEncode(m);
      const d = new DotDecoder();
      const out = [];
      let done = false;
      for (const c of chunks) {
        if (done) throw new Error('data after the terminator');
        const r = d.push(c);
        out.push(...r.chunks);
        done = r.done;
      }
      if (!done) throw new Error('no terminator found');
      if (!Buffer.concat(out).equals(m))
        throw new Error(
          `round trip changed the message: ${JSON.stringify(Buffer.concat(out).toString('latin1'))}`,
        );
      if (d.defect !== null) throw new Error(`defect ${d.defect} on clean text`);
    },
  ),

  'dot: dotEncode of any bytes emits no bare CR/LF and no early terminator': fc.property(
    messageBytes,
    (m) => {
      const s = dotEncode(m).toString('latin1');
      if (!s.endsWith('\r\n.\r\n') && s !== '.\r\n') throw new Error('no terminator');
      const body = s.slice(0, -3);
      if (/(^|[^\r])\n/.test(body) || /\r(?!\n)/.test(body))
        throw new Error(`bare line end in ${JSON.stringify(s)}`);
      if (body.includes('\r\n.\r\n') || body.startsWith('.\r\n'))
        throw new Error(`early terminator in ${JSON.stringify(s)}`);
    },
  ),

  'session: random command sequences never throw; every reply is well-formed': fc.property(
    fc.array(
      fc.oneof(
        fc.constantFrom(
          'EHLO c.test',
          'HELO c.test',
          'MAIL FROM:<a@c.test>',
          'MAIL FROM:<>',
          'RCPT TO:<u@example.test>',
          'RCPT TO:<x@else.test>',
          'RCPT TO:<postmaster>',
          'DATA',
          'BDAT 10',
          'BDAT 0 LAST',
          'RSET',
          'NOOP',
          'QUIT',
          'VRFY u',
          'EXPN l',
          'HELP',
          'STARTTLS',
          'AUTH PLAIN',
          'AUTH PLAIN AGFAAGI=',
          'AUTH LOGIN',
          '*',
          'YQ==',
          'MAIL FROM:<a@c.test> SIZE=99999999999',
          'MAIL FROM:<a@c.test> BODY=8BITMIME SMTPUTF8',
          'RCPT TO:<u@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.test',
        ),
        fc.constantFrom('@badline', '@timeout', '@shutdown', '@dataEnd', '@dataEndDefect', '@commitFail'),
        anyString.map((s) => s.replace(/[\r\n]/g, '')),
      ),
      { maxLength: 40 },
    ),
    fc.boolean(),
    (cmds, submission) => {
      const domains = new DomainPolicy({ local: ['example.test'], relay: [] });
      const users = new LocalUsers({ users: [] }, domains);
      const policy = rcptPolicy(domains, users, new CidrList(['127.0.0.1/32']));
      let n = 0;
      const s = new Session(
        {
          hostname: 'mx.example.test',
          mode: submission ? 'submission' : 'mx',
          maxMessageSize: 1000,
          maxRecipients: 3,
          maxErrors: 5,
          tlsAvailable: true,
          authOffered: true,
          authRequired: submission,
          allowInsecureAuth: true,
          maxAuthFailures: 2,
          commandLineLimit: 512,
        },
        { clientIp: '192.0.2.1', tls: false, now: () => new Date(0), newId: () => `ID${++n}` },
        policy,
      );
      let closed = false;
      const check = (o) => {
        for (const r of o.replies) {
          const wire = formatReply(r);
          if (!/^([2-5]\d\d)[ -]/.test(wire)) throw new Error(`bad reply ${JSON.stringify(wire)}`);
          const lines = wire.split('\r\n').slice(0, -1);
          if (lines.length === 0 || !wire.endsWith('\r\n'))
            throw new Error(`unterminated reply ${JSON.stringify(wire)}`);
          for (const [i, l] of lines.entries()) {
            if (!/^\d{3}[ -]/.test(l) && !/^\d{3}$/.test(l)) throw new Error(`bad line ${JSON.stringify(l)}`);
            if (i < lines.length - 1 !== (l[3] === '-'))
              throw new Error(`bad continuation in ${JSON.stringify(wire)}`);
            if (l.slice(0, 3) !== lines[0].slice(0, 3))
              throw new Error(`code changes in ${JSON.stringify(wire)}`);
            if (Buffer.byteLength(l) + 2 > 512) throw new Error(`reply line over 512 octets: ${l.length}`);
            if (/[\r\n\0]/.test(l)) throw new Error(`control character in reply ${JSON.stringify(l)}`);
          }
          if (closed) throw new Error(`reply after close: ${wire}`);
        }
        const a = o.action;
        if (!a) return;
        if (a.type === 'close') closed = true;
        else if (a.type === 'starttls') s.tlsStarted();
        else if (a.type === 'auth') check(s.authResult(a.user, a.password === 'b'));
        else if (a.type === 'bdat') check(s.bdatChunkDone());
        else if (a.type === 'commit') check(s.committed({ ok: true }));
      };
      check(s.greeting());
      for (const c of cmds) {
        if (closed) break;
        if (c === '@badline') check(s.badLine('bare-line-end'));
        else if (c === '@timeout') check(s.timeout());
        else if (c === '@shutdown') check(s.shutdown());
        else if (c === '@dataEnd') check(s.dataEnd(null));
        else if (c === '@dataEndDefect') check(s.dataEnd('bare-lf'));
        else if (c === '@commitFail') check(s.committed({ ok: false, code: 'ENOSPC' }));
        else check(s.command(c));
      }
    },
  ),

  'reply: the parser throws only ReplySyntaxError, whatever the bytes and chunking': fc.property(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc
        .array(
          fc.constantFrom('250', '250-', '250 ', '421 ', '5', 'x', '\r\n', '\n', '2.0.0 ', 'ok', '354 '),
          { maxLength: 40 },
        )
        .map((a) => a.join('')),
    ),
    fc.integer({ min: 1, max: 50 }),
    (text, step) => {
      const run = (parts) => {
        const p = new ReplyParser();
        const out = [];
        try {
          for (const x of parts) out.push(...p.push(x));
        } catch (e) {
          if (!(e instanceof ReplySyntaxError)) throw e;
          return { error: true, out: out.map((r) => [r.code, r.enhanced, r.lines]) };
        }
        return { error: false, out: out.map((r) => [r.code, r.enhanced, r.lines]), buffered: p.buffered };
      };
      const whole = run([text]);
      const parts = [];
      for (let i = 0; i < text.length; i += step) parts.push(text.slice(i, i + step));
      const split = run(parts);
      // Errors may surface at a different chunk; the replies before the first error must agree.
      if (!whole.error && !split.error && JSON.stringify(whole) !== JSON.stringify(split)) {
        throw new Error(`chunking changed the result: ${JSON.stringify(whole)} vs ${JSON.stringify(split)}`);
      }
    },
  ),

  'reply: formatReply then ReplyParser is the identity': fc.property(
    fc.integer({ min: 200, max: 599 }),
    fc.option(fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 })), {
      nil: undefined,
    }),
    fc.array(
      fc
        .string({ maxLength: 60 })
        .map((s) => s.replace(/[\r\n]/g, ' ').trim())
        .filter((s) => s !== ''),
      { minLength: 1, maxLength: 5 },
    ),
    (code, enh, lines) => {
      // RFC 3463: enhanced codes exist for the classes 2, 4 and 5 only.
      const enhanced =
        enh && [2, 4, 5].includes(Math.floor(code / 100))
          ? `${String(code)[0]}.${enh[0]}.${enh[1]}`
          : undefined;
      const r = { code, lines, ...(enhanced ? { enhanced } : {}) };
      const wire = formatReply(r);
      const [back, ...more] = new ReplyParser().push(Buffer.from(wire, 'utf8').toString('latin1'));
      if (more.length !== 0 || !back) throw new Error(`not exactly one reply from ${JSON.stringify(wire)}`);
      if (back.code !== code) throw new Error(`code ${back.code} != ${code}`);
      if ((back.enhanced ?? undefined) !== enhanced)
        throw new Error(`enhanced ${back.enhanced} != ${enhanced} in ${JSON.stringify(wire)}`);
      const got = back.lines.map((l) => Buffer.from(l, 'latin1').toString('utf8'));
      if (JSON.stringify(got) !== JSON.stringify(lines))
        throw new Error(`lines ${JSON.stringify(got)} != ${JSON.stringify(lines)}`);
    },
  ),
};

// ---- run -----------------------------------------------------------------------------------------

console.log(`fuzz: ${runs} runs per property, seed ${seed}`);
let failed = 0;
for (const [name, prop] of Object.entries(properties)) {
  const t0 = Date.now();
  const r = fc.check(prop, { numRuns: runs, seed });
  const ms = Date.now() - t0;
  if (r.failed) {
    failed++;
    console.log(`FAIL ${name} (${ms} ms)`);
    console.log(fc.defaultReportMessage(r));
    if (r.errorInstance) console.log(String(r.errorInstance.stack ?? r.errorInstance));
  } else {
    console.log(`ok   ${name}: ${r.numRuns} runs, ${ms} ms`);
  }
}
console.log(`${Object.keys(properties).length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
