/**
 * SMTP smuggling (CVE-2023-51764/51765/51766 family; DESIGN invariant 5), both directions, against
 * the real `ferrymail serve`.
 *
 * Receiver: each published end-of-data variant is followed by a smuggled `MAIL / RCPT
 * TO:<victim> / DATA / ... / .` and then the real CRLF.CRLF. Pinned: the DotDecoder ends data only
 * at CRLF.CRLF, so there is exactly one end-of-data reply per DATA (a second reply, or a victim
 * mailbox, means a variant ended the data early), and the session stays in step (the next command's
 * reply is the next reply). Make the decoder accept LF.LF (or `\r.\r`) as an end and the matching
 * rows fail.
 *
 * Sender: a stored message holding those sequences (put in through BDAT, which carries bare LF/CR,
 * and through the sendmail pickup folder) is relayed to a recording peer. Pinned: dotEncode turns
 * every bare CR and LF into CRLF and stuffs dots, so the peer sees exactly one message per
 * relayed message, only CRLF line ends, and a CRLF.CRLF only at its very end. Drop the bare-LF/CR
 * normalisation from dotEncode and the peer sees the bare line ends (and, for a peer that honours
 * LF.LF, a second message).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startFerrymail, globFiles, type Ferrymail } from '../helpers/ferrymail.js';
import { waitFor, sleep } from '../helpers/proc.js';
import { Raw } from '../receiver/harness.js';
import { writePickupFile } from '../../src/cli/pickup.js';
import { relayToPeer, startRecordingPeer, type RecordingPeer } from './peer.js';

let fm: Ferrymail;
let peer: RecordingPeer;

before(async () => {
  peer = await startRecordingPeer();
  fm = await startFerrymail({ config: relayToPeer(peer.port) });
});

after(async () => {
  await fm?.close();
  await peer?.close();
});

/** The published end-of-data look-alikes (SEC Consult 2023, Postfix/Sendmail/Exim advisories). */
const VARIANTS: Array<[name: string, bytes: string]> = [
  ['LF.LF', '\n.\n'],
  ['LF.CRLF', '\n.\r\n'],
  ['CR.CR', '\r.\r'],
  ['CRLF.CR', '\r\n.\r'],
  ['CR.CRLF', '\r.\r\n'],
  ['CRLF.LF', '\r\n.\n'],
  ['LF.CR', '\n.\r'],
  ['CR.LF', '\r.\n'],
  ['CRLF.CRCRLF', '\r\n.\r\r\n'],
  ['CRCRLF.CRCRLF', '\r\r\n.\r\r\n'],
  ['LFLF.LFLF', '\n\n.\n\n'],
  ['CRLF NUL.CRLF', '\r\n\x00.\r\n'],
  ['CRLF.NUL CRLF', '\r\n.\x00\r\n'],
  ['CR NUL LF.CRLF', '\r\x00\n.\r\n'],
  ['CRLF.SP CRLF', '\r\n. \r\n'],
  ['CRLF SP.CRLF', '\r\n .\r\n'],
  ['CRLF TAB.CRLF', '\r\n\t.\r\n'],
  ['CRLF..CRLF', '\r\n..\r\n'],
  ['LF.LF after CRLF', '\r\n\n.\n'],
];

/** Data that starts with the look-alike: the start of the data counts as a line start. */
const AT_START: Array<[name: string, bytes: string]> = [
  ['.LF at start', '.\n'],
  ['.CR at start', '.\r'],
  ['.CRLF missing LF at start', '.\r\r\n'],
];

const smuggled = (victim: string) =>
  `MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<${victim}>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n`;

interface Run {
  name: string;
  endReply: string;
  after: string;
  extra: string;
}

/** One connection: a real transaction whose data holds a variant and a smuggled transaction. */
async function smuggle(name: string, data: string, split: boolean): Promise<Run> {
  const c = await Raw.connect(fm.port, '127.0.0.1', '127.0.0.2');
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO attacker.example'), /^250/);
    assert.match(await c.cmd('MAIL FROM:<attacker@evil.example>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<alice@ferry.test>'), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    const payload = Buffer.from(data + '\r\n.\r\n', 'latin1');
    if (split) {
      // A packet boundary right after the look-alike: the decoder's state must carry across.
      const cut = payload.indexOf('MAIL FROM');
      c.send(payload.subarray(0, cut));
      await sleep(30);
      c.send(payload.subarray(cut));
    } else {
      c.send(payload);
    }
    const endReply = await c.reply();
    const after = await c.cmd('NOOP');
    // Anything more would be the replies of smuggled commands.
    await sleep(50);
    c.send('QUIT\r\n');
    const bye = await c.reply();
    return { name, endReply, after, extra: /^221 /.test(bye) ? '' : bye };
  } finally {
    c.end();
  }
}

test(`receiver: no end-of-data look-alike ends the data (${VARIANTS.length + AT_START.length} variants, 2 chunkings)`, async () => {
  const runs: Run[] = [];
  for (const split of [false, true]) {
    for (const [name, v] of VARIANTS) {
      runs.push(
        await smuggle(
          `${name}${split ? ' (split)' : ''}`,
          `Subject: ${name}\r\n\r\nhello${v}${smuggled('victim@ferry.test')}`,
          split,
        ),
      );
    }
    for (const [name, v] of AT_START) {
      runs.push(
        await smuggle(`${name}${split ? ' (split)' : ''}`, `${v}${smuggled('victim@ferry.test')}`, split),
      );
    }
  }
  const accepted = runs.filter((r) => /^250 /.test(r.endReply)).length;
  for (const r of runs) {
    // One reply to the data: 250 (held as text) or 5xx (refused as a whole), never 354 or 503.
    assert.match(r.endReply, /^(250|550|554) /, `${r.name}: end-of-data reply ${JSON.stringify(r.endReply)}`);
    assert.match(
      r.after,
      /^250 2\.0\.0 /,
      `${r.name}: session out of step, NOOP got ${JSON.stringify(r.after)}`,
    );
    assert.equal(r.extra, '', `${r.name}: stray replies ${JSON.stringify(r.extra)}`);
  }
  // Every accepted message is in alice's mailbox, once; the victim's mailbox never appears.
  if (accepted > 0) await waitForFiles(path.join(fm.maildir('ferry.test', 'alice'), 'new'), accepted);
  await sleep(500);
  assert.equal((await globFiles(path.join(fm.maildir('ferry.test', 'alice'), 'new'))).length, accepted);
  assert.equal(existsSync(fm.maildir('ferry.test', 'victim')), false, 'the victim got mail');
});

async function waitForFiles(dir: string, n: number): Promise<string[]> {
  return waitFor(
    `${n} files in ${dir}`,
    async () => {
      const f = await globFiles(dir);
      return f.length >= n ? f : undefined;
    },
    15_000,
    50,
  );
}

/** What a relayed message's wire data must look like: CRLF only, one terminator, at the end. */
function assertCleanWire(raw: Buffer, what: string): void {
  const s = raw.toString('latin1');
  assert.ok(s.endsWith('\r\n.\r\n'), `${what}: no proper terminator`);
  const body = s.slice(0, -3); // keep the CRLF before the final dot
  assert.doesNotMatch(body, /(^|[^\r])\n/, `${what}: bare LF on the wire ${JSON.stringify(s)}`);
  assert.doesNotMatch(body, /\r(?!\n)/, `${what}: bare CR on the wire ${JSON.stringify(s)}`);
  assert.equal(body.indexOf('\r\n.\r\n'), -1, `${what}: early terminator ${JSON.stringify(s)}`);
  assert.ok(!/^\.\r\n/.test(s) || s.length === 3, `${what}: terminator at the start`);
}

test('sender: messages holding the look-alikes (via BDAT) reach the next hop as exactly one clean message each', async () => {
  const all = [...VARIANTS, ...AT_START];
  const start = peer.messages.length;
  const c = await Raw.connect(fm.port);
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO relay-client.test'), /CHUNKING/);
    for (const [name, v] of all) {
      assert.match(await c.cmd('MAIL FROM:<sender@ferry.test>'), /^250/);
      assert.match(await c.cmd('RCPT TO:<dest@peer.test>'), /^250/);
      // BDAT carries the bytes as they are: bare CR/LF and the look-alike reach the queue intact.
      const body = Buffer.from(
        `Subject: ${name}\r\n\r\nhello${v}${smuggled('victim@peer.test')}.\r\nend\r\n`,
        'latin1',
      );
      c.send(Buffer.concat([Buffer.from(`BDAT ${body.length} LAST\r\n`), body]));
      assert.match(await c.reply(), /^250 /, name);
    }
    await c.cmd('QUIT');
  } finally {
    c.end();
  }
  await waitFor('every message at the peer', () => peer.messages.length >= start + all.length, 20_000);
  await sleep(300);
  assert.equal(peer.messages.length, start + all.length, 'one message at the peer per message sent');
  assert.equal(peer.dataSeen, peer.messages.length);
  for (const m of peer.messages.slice(start)) {
    assert.deepEqual(m.rcpts, ['<dest@peer.test>']);
    assertCleanWire(m.raw, m.raw.toString('latin1').slice(0, 60));
  }
  assert.ok(!peer.rcpts.some((r) => r.includes('victim')), 'a smuggled RCPT reached the peer');
});

test('sender: a message from the pickup folder with bare line ends is relayed clean', async () => {
  const start = peer.messages.length;
  const message = Buffer.from(
    'Subject: pickup smuggle\n\nhello\n.\nMAIL FROM:<a@evil.example>\r\nRCPT TO:<victim@peer.test>\r\nDATA\r\nx\r.\rmore\r\n.\n.\r\n',
    'latin1',
  );
  await writePickupFile(
    path.join(fm.dataDir, 'pickup'),
    {
      v: 1,
      sender: 'sender@ferry.test',
      recipients: ['dest@peer.test'],
      receivedAt: Date.now(),
      user: 'test',
    },
    message,
  );
  await waitFor('the pickup message at the peer', () => peer.messages.length > start, 20_000);
  await sleep(300);
  assert.equal(peer.messages.length, start + 1);
  const m = peer.messages[start];
  assert.ok(m);
  assertCleanWire(m.raw, 'pickup message');
  assert.ok(!peer.rcpts.some((r) => r.includes('victim')));
});
