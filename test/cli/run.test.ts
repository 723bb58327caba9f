import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { runCli, takeConfigFlag } from '../../src/cli/run.js';
import { renderConfigDocs } from '../../src/config/docs.js';
import { verifyPassword } from '../../src/config/password.js';

describe('runCli in process', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fm-run-'));
    await writeFile(join(dir, 'ferrymail.toml'), 'hostname = "local.test"\n');
    await writeFile(join(dir, 'other.toml'), 'hostname = "other.test"\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function io(stdin = '', env: Record<string, string> = {}): CliIo & { out: string; err: string } {
    const r = {
      out: '',
      err: '',
      stdin: Readable.from([Buffer.from(stdin)]),
      stdout: { write: (s: string) => (r.out += s) },
      stderr: { write: (s: string) => (r.err += s) },
      env,
      cwd: dir,
      now: () => 0,
    };
    return r;
  }

  it('takeConfigFlag reads every spelling', () => {
    assert.deepEqual(takeConfigFlag(['-c', 'a', 'x']), { configPath: 'a', rest: ['x'] });
    assert.deepEqual(takeConfigFlag(['x', '--config', 'b']), { configPath: 'b', rest: ['x'] });
    assert.deepEqual(takeConfigFlag(['--config=c']), { configPath: 'c', rest: [] });
    assert.deepEqual(takeConfigFlag(['-c']), { rest: [], error: '-c needs a file name' });
  });

  it('finds ./ferrymail.toml, and -c / $FERRYMAIL_CONFIG override it', async () => {
    let x = io();
    assert.equal(await runCli(['check-config'], x), 0);
    assert.match(x.out, /hostname {3}local\.test/);
    x = io();
    assert.equal(await runCli(['-c', 'other.toml', 'check-config'], x), 0);
    assert.match(x.out, /^other\.toml: OK\n.*other\.test/s);
    x = io('', { FERRYMAIL_CONFIG: 'other.toml' });
    assert.equal(await runCli(['check-config'], x), 0);
    assert.match(x.out, /other\.test/);
  });

  it('help for each command, and for an unknown topic a usage error', async () => {
    for (const cmd of ['serve', 'check-config', 'queue', 'sendmail', 'version', 'hash-password']) {
      const x = io();
      assert.equal(await runCli([cmd, '--help'], x), 0, cmd);
      assert.match(x.out, /^Usage: ferrymail /, cmd);
      const y = io();
      assert.equal(await runCli(['help', cmd], y), 0, cmd);
      assert.equal(y.out, x.out);
    }
    const z = io();
    assert.equal(await runCli(['help', 'nope'], z), 64);
  });

  it('stray arguments and a flag without its value are usage errors', async () => {
    const x = io();
    assert.equal(await runCli(['check-config', 'extra'], x), 64);
    assert.equal(
      x.err,
      'ferrymail check-config: unexpected argument "extra" (see ferrymail check-config --help)\n',
    );
    const y = io();
    assert.equal(await runCli(['check-config', '--config'], y), 64);
    assert.equal(y.err, 'ferrymail check-config: --config needs a file name\n');
  });

  it('config-docs prints the generated reference', async () => {
    const x = io();
    assert.equal(await runCli(['config-docs'], x), 0);
    assert.equal(x.out, renderConfigDocs());
  });

  it('hash-password reads stdin and prints a hash that verifies', async () => {
    const x = io('s3cret\n');
    assert.equal(await runCli(['hash-password'], x), 0);
    assert.equal(await verifyPassword(x.out.trim(), 's3cret'), true);
    assert.equal(await runCli(['hash-password'], io('')), 64);
  });

  it('invoked as mailq it lists the queue; as sendmail it is sendmail', async () => {
    const x = io();
    assert.equal(await runCli([], x, '/usr/bin/mailq'), 0);
    assert.equal(x.out, 'queue is empty\n');
    const y = io('hi\n');
    assert.equal(await runCli(['--help'], y, '/usr/sbin/sendmail'), 0);
    assert.match(y.out, /^Usage: ferrymail sendmail/);
  });
});
