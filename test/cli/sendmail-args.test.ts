import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSendmailArgs, type SendmailOptions } from '../../src/cli/sendmail-args.js';

const base: SendmailOptions = {
  mode: 'deliver',
  recipients: [],
  extractRecipients: false,
  ignoreDots: false,
  help: false,
};

describe('parseSendmailArgs', () => {
  const table: [string[], Partial<SendmailOptions>][] = [
    [['bob@example.test'], { recipients: ['bob@example.test'] }],
    [['a@x.test', 'b@y.test'], { recipients: ['a@x.test', 'b@y.test'] }],
    [['a@x.test, "Doe, J" <j@y.test>'], { recipients: ['a@x.test', '"Doe, J" <j@y.test>'] }],
    [['-t'], { extractRecipients: true }],
    [['-t', '-i'], { extractRecipients: true, ignoreDots: true }],
    [['-ti'], { extractRecipients: true, ignoreDots: true }],
    [['-oi', '-t'], { extractRecipients: true, ignoreDots: true }],
    [['-f', 'me@x.test', 'bob@y.test'], { sender: 'me@x.test', recipients: ['bob@y.test'] }],
    [['-fme@x.test', 'bob@y.test'], { sender: 'me@x.test', recipients: ['bob@y.test'] }],
    [['-f<me@x.test>'], { sender: 'me@x.test' }],
    [['-f', '<>'], { sender: '' }],
    [['-r', 'me@x.test'], { sender: 'me@x.test' }],
    [['-F', 'Full Name', '-f', 'me@x.test'], { fullName: 'Full Name', sender: 'me@x.test' }],
    [['-FFull'], { fullName: 'Full' }],
    [['-tif', 'me@x.test'], { extractRecipients: true, ignoreDots: true, sender: 'me@x.test' }],
    [
      ['-oem', '-odb', '-odi', '-v', '-m', '-n', '-U', '-N', 'success,failure', '-B', '8BITMIME', 'a@x.test'],
      { recipients: ['a@x.test'] },
    ],
    [['-O', 'IgnoreDots=true'], { ignoreDots: true }],
    [['-c', 'f.toml', 'a@x.test'], { configPath: 'f.toml', recipients: ['a@x.test'] }],
    [['-C', 'f.toml'], { configPath: 'f.toml' }],
    [['--config', 'f.toml'], { configPath: 'f.toml' }],
    [['--config=f.toml'], { configPath: 'f.toml' }],
    [['--', '-weird@x.test'], { recipients: ['-weird@x.test'] }],
    [['-bm', 'a@x.test'], { recipients: ['a@x.test'] }],
    [['-bp'], { mode: 'list-queue' }],
    [['-bi'], { mode: 'noop' }],
    [['-q'], { mode: 'flush-queue' }],
    [['--help'], { help: true }],
  ];
  for (const [argv, want] of table) {
    it(argv.join(' '), () => {
      assert.deepEqual(parseSendmailArgs(argv), {
        ok: true,
        options: { ...base, ...want, recipients: want.recipients ?? [] },
      });
    });
  }

  const errors: [string[], RegExp][] = [
    [['-Z'], /unknown option -Z/],
    [['-f'], /option -f needs a value/],
    [['-bs'], /-bs is not supported/],
    [['-bd'], /-bd is not supported/],
    [['--verbose'], /unknown option --verbose/],
    [['--config'], /--config needs a file name/],
  ];
  for (const [argv, re] of errors) {
    it(`${argv.join(' ')} is a usage error`, () => {
      const r = parseSendmailArgs(argv);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, re);
    });
  }
});
