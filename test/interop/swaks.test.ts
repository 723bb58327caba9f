/**
 * swaks, an SMTP client we did not write, against ferrymail's listeners: plain, STARTTLS, implicit
 * TLS (`submissions`), AUTH PLAIN and LOGIN on `submission`, refused AUTH and unauthenticated
 * submission, and PIPELINING. Skipped while `ferrymail serve` cannot start, or (outside CI) while
 * swaks/openssl are missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { interopSkip } from '../helpers/interop.js';
import { ferrymailSkip, startFerrymail, waitForFile, type Ferrymail } from '../helpers/ferrymail.js';
import { swaksSend, swaksTranscript } from '../helpers/swaks.js';

const skip = interopSkip('swaks', 'openssl') ?? (await ferrymailSkip());
const AUTH = (mech: string, password = 'secret') => [
  '--auth',
  mech,
  '--auth-user',
  'alice',
  '--auth-password',
  password,
];

describe('swaks -> ferrymail', { timeout: 50_000 }, () => {
  let fm: Ferrymail;
  before(async () => {
    if (skip) return; // hooks run even when every test is skipped
    fm = await startFerrymail({
      tls: true,
      config: {
        hostname: 'mx.fm.test',
        listeners: [
          { address: '127.0.0.1:0', mode: 'mx' },
          { address: '127.0.0.1:0', mode: 'submission' },
          { address: '127.0.0.1:0', mode: 'submissions' },
        ],
        domains: { local: ['fm.test'] },
        auth: { users: { alice: 'secret' } },
      },
    });
  });
  after(async () => {
    await fm?.close();
  });

  /** Each test mails its own user, so one file in its Maildir proves delivery. */
  async function delivered(user: string, subject: string): Promise<string> {
    const [file] = await waitForFile(path.join(fm.maildir('fm.test', user), 'new'), 1, 15_000);
    const text = await readFile(file ?? '', 'utf8');
    assert.match(text, new RegExp(`^Subject: ${subject}\\r?$`, 'm'));
    return text;
  }

  it('plain SMTP on the mx listener', { skip }, async () => {
    const r = await swaksSend({ port: fm.portOf('mx'), to: 'plain@fm.test', subject: 'plain' });
    assert.equal(r.code, 0, swaksTranscript(r));
    await delivered('plain', 'plain');
  });

  it('STARTTLS on the mx listener (--tls)', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('mx'),
      to: 'starttls@fm.test',
      subject: 'starttls',
      args: ['--tls'],
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /STARTTLS/);
    assert.match(r.stdout, /TLS started/);
    await delivered('starttls', 'starttls');
  });

  it('PIPELINING is advertised and a pipelined transaction goes through (--pipeline)', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('mx'),
      to: 'piped@fm.test',
      subject: 'pipelined',
      args: ['--pipeline'],
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /^<-\s+250[ -]PIPELINING/m);
    await delivered('piped', 'pipelined');
  });

  it('AUTH PLAIN after STARTTLS on the submission listener', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('submission'),
      from: 'alice@fm.test',
      to: 'authplain@fm.test',
      subject: 'auth plain',
      args: ['--tls', ...AUTH('PLAIN')],
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /^<[~-]\s+235/m);
    await delivered('authplain', 'auth plain');
  });

  it('AUTH LOGIN after STARTTLS on the submission listener', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('submission'),
      from: 'alice@fm.test',
      to: 'authlogin@fm.test',
      subject: 'auth login',
      args: ['--tls', ...AUTH('LOGIN')],
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    await delivered('authlogin', 'auth login');
  });

  it('a wrong password is refused with 535', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('submission'),
      from: 'alice@fm.test',
      to: 'never@fm.test',
      args: ['--tls', ...AUTH('PLAIN', 'wrong')],
    });
    assert.notEqual(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /^<[~*]+\s+535/m, swaksTranscript(r));
  });

  it('submission without AUTH cannot send', { skip }, async () => {
    const r = await swaksSend({ port: fm.portOf('submission'), to: 'never@fm.test', args: ['--tls'] });
    assert.notEqual(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /^<[~*]+\s+530/m, swaksTranscript(r));
  });

  it('implicit TLS on the submissions listener (--tlsc) with AUTH PLAIN', { skip }, async () => {
    const r = await swaksSend({
      port: fm.portOf('submissions'),
      from: 'alice@fm.test',
      to: 'implicit@fm.test',
      subject: 'implicit tls',
      args: ['--tlsc', ...AUTH('PLAIN')],
    });
    assert.equal(r.code, 0, swaksTranscript(r));
    assert.match(r.stdout, /TLS started/);
    await delivered('implicit', 'implicit tls');
  });
});
