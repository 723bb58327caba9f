/**
 * ferrymail and a real Dovecot: Dovecot serves over IMAP the Maildir ferrymail's local delivery
 * wrote (format and layout compatible), and ferrymail delivers to Dovecot over LMTP (route
 * `"lmtp.test" = "lmtp:127.0.0.1:PORT"`). Dovecot will not access mail as root, so it runs as
 * nobody and the test hands ferrymail's Maildirs over (chown) before reading them, as an install
 * would by running ferrymail as the mail user. (ferrymail itself stays root: a CI checkout may not be
 * readable by nobody.) Skipped while `ferrymail serve` cannot start, or (outside CI) while the Dovecot
 * packages, swaks or python3 are missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { interopSkip } from '../helpers/interop.js';
import {
  chownTree,
  ferrymailSkip,
  startFerrymail,
  waitForFile,
  type Ferrymail,
} from '../helpers/ferrymail.js';
import { imapMessages, imapSubjects, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { swaksSend, swaksTranscript } from '../helpers/swaks.js';
import { makeTempDir, removeDir, waitFor } from '../helpers/proc.js';

const skip = interopSkip('dovecot-imapd', 'dovecot-lmtpd', 'python3', 'swaks') ?? (await ferrymailSkip());
const NOBODY = 65534;

describe('Dovecot <-> ferrymail', { timeout: 50_000 }, () => {
  let shared: string;
  let dv: Dovecot;
  let fm: Ferrymail;

  before(async () => {
    if (skip) return; // hooks run even when every test is skipped
    // ferrymail's data_dir lives here so Dovecot can be told its mail root before ferrymail starts.
    shared = await makeTempDir('ferrymail-dovecot-data-', 0o755);
    const dataDir = path.join(shared, 'data');
    await mkdir(path.join(dataDir, 'mail'), { recursive: true });
    await chown(dataDir, NOBODY, NOBODY);
    await chown(path.join(dataDir, 'mail'), NOBODY, NOBODY);
    dv = await startDovecot({ mailRoot: path.join(dataDir, 'mail'), uid: NOBODY, gid: NOBODY });
    fm = await startFerrymail({
      config: {
        data_dir: dataDir,
        domains: { local: ['fm.test'], relay: ['lmtp.test'] },
        routes: { 'lmtp.test': `lmtp:127.0.0.1:${dv.lmtpPort}` },
      },
    });
  });
  after(async () => {
    await fm?.close();
    await dv?.close();
    if (shared) await removeDir(shared);
  });

  it('Dovecot reads the Maildir ferrymail delivered into, over IMAP', { skip }, async () => {
    const r = await swaksSend({
      port: fm.port,
      to: 'Alice@fm.test',
      subject: 'read me with imap',
      body: 'first line\n.leading dot\nlast line',
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    await waitForFile(path.join(fm.maildir('fm.test', 'alice'), 'new'), 1, 15_000);
    await chownTree(path.join(fm.dataDir, 'mail', 'fm.test'), NOBODY, NOBODY);
    const msgs = await imapMessages(dv.imapPort, 'alice@fm.test', dv.password);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]?.subject, 'read me with imap');
    assert.match(msgs[0]?.raw ?? '', /^Delivered-To: Alice@fm\.test\r$/m);
    assert.match(msgs[0]?.raw ?? '', /^\.leading dot\r$/m, 'dot-stuffing undone once');
    assert.doesNotMatch(msgs[0]?.flags ?? '', /\\Seen/, 'new mail is unseen');
  });

  it('ferrymail delivers to Dovecot over LMTP, every recipient', { skip }, async () => {
    const r = await swaksSend({
      port: fm.port,
      to: ['dave@lmtp.test', 'Eve@lmtp.test'],
      subject: 'via ferrymail lmtp',
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    for (const user of ['dave@lmtp.test', 'eve@lmtp.test']) {
      const subjects = await waitFor(
        `the LMTP message in ${user}'s INBOX`,
        async () => {
          const s = await imapSubjects(dv.imapPort, user, dv.password);
          return s.length > 0 ? s : undefined;
        },
        15_000,
        250,
      );
      assert.deepEqual(subjects, ['via ferrymail lmtp']);
    }
    const log = await dv.logs();
    assert.match(log, /lmtp\([^)]*\): Info: Connect from 127\.0\.0\.1/);
  });
});
